/* test_spm.c - SentencePiece-style tokenizer on a small in-memory vocabulary:
 * merge order by score, ties leftmost, byte fallback, special tokens,
 * space prefix, pieces, round trips, streaming UTF-8. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/plugin.h"
#include "tokenizer.h"
#include "tap.h"

#define NV 280
static const char *toks[NV];
static float scores[NV];
static int32_t types[NV];
static char bytebuf[256][7];

enum {
    UNK = 0, BOS = 1, EOS = 2, BYTE0 = 3,
    SP = 259, A, B, C, AB, BC, SPA, CTL, NL, SPSP, D, E, DE, ED, UUML, EOT
};

static void build_vocab(void)
{
    for (int i = 0; i < NV; i++) {
        toks[i] = "";
        types[i] = LAMINA_TOKTYPE_UNUSED;
    }
    toks[UNK] = "<unk>"; types[UNK] = LAMINA_TOKTYPE_UNKNOWN;
    toks[BOS] = "<s>"; types[BOS] = LAMINA_TOKTYPE_CONTROL;
    toks[EOS] = "</s>"; types[EOS] = LAMINA_TOKTYPE_CONTROL;
    for (int b = 0; b < 256; b++) {
        snprintf(bytebuf[b], sizeof(bytebuf[b]), "<0x%02X>", b);
        toks[BYTE0 + b] = bytebuf[b];
        types[BYTE0 + b] = LAMINA_TOKTYPE_BYTE;
    }
    struct { int id; const char *s; float sc; int ty; } n[] = {
        {SP, "\xE2\x96\x81", -1.0f, 1}, {A, "a", -2.0f, 1}, {B, "b", -2.0f, 1},
        {C, "c", -2.0f, 1}, {AB, "ab", -1.5f, 1}, {BC, "bc", -1.0f, 1},
        {SPA, "\xE2\x96\x81" "a", -0.5f, 1}, {CTL, "<ctl>", 0.0f, LAMINA_TOKTYPE_CONTROL},
        {NL, "\n", 0.0f, LAMINA_TOKTYPE_USER_DEFINED},
        {SPSP, "\xE2\x96\x81\xE2\x96\x81", -3.0f, 1}, {D, "d", -2.0f, 1}, {E, "e", -2.0f, 1},
        {DE, "de", -1.0f, 1}, {ED, "ed", -1.0f, 1}, {UUML, "\xC3\xBC", -2.0f, 1},
        {EOT, "<end_of_turn>", 0.0f, LAMINA_TOKTYPE_CONTROL},
    };
    for (size_t i = 0; i < sizeof(n) / sizeof(n[0]); i++) {
        toks[n[i].id] = n[i].s;
        scores[n[i].id] = n[i].sc;
        types[n[i].id] = n[i].ty;
    }
    /* the rest: unused, but distinct texts */
    static char filler[NV][12];
    for (int i = EOT + 1; i < NV; i++) {
        snprintf(filler[i], sizeof(filler[i]), "~unused%d", i);
        toks[i] = filler[i];
    }
}

static lamina_tokenizer *make(int space_prefix)
{
    lamina_tokenizer_spec sp;
    memset(&sp, 0, sizeof(sp));
    sp.kind = LAMINA_TOKENIZER_SPM;
    sp.n_vocab = NV;
    sp.tokens = toks;
    sp.scores = scores;
    sp.types = types;
    sp.bos = BOS;
    sp.eos = EOS;
    sp.eot = LAMINA_TOKEN_NONE;
    sp.eom = LAMINA_TOKEN_NONE;
    sp.unk = UNK;
    sp.pad = LAMINA_TOKEN_NONE;
    sp.add_bos = 1;
    sp.add_space_prefix = space_prefix;
    lamina_tokenizer *t = NULL;
    char err[256];
    if (lamina_tokenizer_create(&sp, &t, err, sizeof(err)) != 0)
        diag("create: %s", err);
    return t;
}

static void check(const lamina_tokenizer *t, const char *text, unsigned flags,
                  const int32_t *want, size_t nw, const char *what)
{
    lamina_token *ids = NULL;
    size_t n = 0;
    char err[256];
    int rc = lamina_tokenizer_encode(t, text, strlen(text), flags, &ids, &n, err, sizeof(err));
    if (rc != 0) {
        ok(0, "%s (encode failed: %s)", what, err);
        return;
    }
    ids_eq(ids, n, want, nw, what);
    free(ids);
}

#define CHECK(t, text, flags, what, ...)                                             \
    do {                                                                             \
        const int32_t w_[] = {__VA_ARGS__};                                          \
        check(t, text, flags, w_, sizeof(w_) / sizeof(w_[0]), what);                 \
    } while (0)

static int roundtrip(const lamina_tokenizer *t, const char *s, size_t n, unsigned eflags,
                     unsigned dflags)
{
    lamina_token *ids = NULL;
    size_t ni = 0;
    char *out = NULL;
    size_t no = 0;
    int good = lamina_tokenizer_encode(t, s, n, eflags, &ids, &ni, NULL, 0) == 0 &&
               lamina_tokenizer_decode(t, ids, ni, dflags, &out, &no, NULL, 0) == 0 && no == n &&
               memcmp(out, s, n) == 0;
    /* streaming the pieces through the UTF-8 buffer gives the same bytes */
    if (good) {
        lamina_utf8_stream us;
        lamina_utf8_stream_init(&us);
        char *acc = malloc(n + 8), tmp[64];
        size_t na = 0;
        size_t start = (dflags & LAMINA_DECODE_SKIP_BOS) && ni > 0 && ids[0] == BOS ? 1 : 0;
        for (size_t i = start; i < ni && good; i++) {
            size_t pl;
            const char *p = lamina_tokenizer_piece(t, ids[i], (dflags & LAMINA_DECODE_RENDER_SPECIAL) != 0, &pl);
            if (pl + 4 > sizeof(tmp)) {
                good = 0;
                break;
            }
            size_t k = lamina_utf8_stream_push(&us, p, pl, tmp);
            if (na + k > n) {
                good = 0;
                break;
            }
            memcpy(acc + na, tmp, k);
            na += k;
        }
        na += lamina_utf8_stream_flush(&us, acc + na);
        good = good && na == n && memcmp(acc, s, n) == 0;
        free(acc);
    }
    free(ids);
    free(out);
    return good;
}

int main(void)
{
    build_vocab();
    lamina_tokenizer *t = make(0), *tp = make(1);
    if (!ok(t != NULL && tp != NULL, "create toy SPM tokenizers"))
        return done_testing();

    /* merge order */
    CHECK(t, "abc", 0, "bc (score -1) merges before ab (-1.5): abc -> a bc", A, BC);
    CHECK(t, "ab", 0, "ab -> ab", AB);
    CHECK(t, "ded", 0, "equal scores: leftmost pair first: ded -> de d", DE, D);
    CHECK(t, "eded", 0, "eded -> ed ed", ED, ED);
    CHECK(t, " a", 0, "space escaped: ' a' -> \u2581a", SPA);
    CHECK(t, "a a", 0, "a a -> a \u2581a", A, SPA);
    CHECK(t, "  a", 0, "two spaces: ' ' ' a' -> \u2581 \u2581a (\u2581a outscores \u2581\u2581)", SP, SPA);
    CHECK(t, "", 0, "empty text -> nothing");
    CHECK(t, "", LAMINA_TOKENIZE_ADD_SPECIAL, "empty text with specials -> BOS", BOS);
    /* byte fallback */
    CHECK(t, "\xC3\xA9", 0, "missing character falls back to its bytes", BYTE0 + 0xC3, BYTE0 + 0xA9);
    CHECK(t, "\xC3\xBC", 0, "present multibyte character is one token", UUML);
    CHECK(t, "a\xFF" "b", 0,
          "invalid lead byte takes its would-be length (as llama.cpp): \\xFFb -> bytes",
          A, BYTE0 + 0xFF, BYTE0 + 'b');
    CHECK(t, "\xFF\xFE b", 0,
          "an escaped space swallowed by an invalid sequence goes out as bytes (as llama.cpp)",
          BYTE0 + 0xFF, BYTE0 + 0xFE, BYTE0 + 0xE2, BYTE0 + 0x96, BYTE0 + 0x81, B);
    CHECK(t, "\xE2\x96", 0, "truncated sequence: each byte", BYTE0 + 0xE2, BYTE0 + 0x96);
    /* specials */
    CHECK(t, "a<ctl>b", LAMINA_TOKENIZE_PARSE_SPECIAL, "control token parsed when asked", A, CTL, B);
    CHECK(t, "<ctl>", 0, "control token as text when not parsing specials",
          BYTE0 + '<', C, BYTE0 + 't', BYTE0 + 'l', BYTE0 + '>');
    CHECK(t, "a\nb", 0, "user-defined token split out even without parse_special", A, NL, B);
    CHECK(t, "ab", LAMINA_TOKENIZE_ADD_SPECIAL, "BOS added", BOS, AB);
    CHECK(t, "<s>ab", LAMINA_TOKENIZE_ADD_SPECIAL | LAMINA_TOKENIZE_PARSE_SPECIAL,
          "BOS in text parsed as well", BOS, BOS, AB);
    /* space prefix */
    CHECK(tp, "a", 0, "space prefix: a -> \u2581a", SPA);
    CHECK(tp, "<ctl>a", LAMINA_TOKENIZE_PARSE_SPECIAL, "space prefix after a special token", CTL, SPA);
    CHECK(tp, "a\na", 0, "space prefix after a user-defined token", SPA, NL, SPA);

    /* pieces */
    size_t l;
    const char *p = lamina_tokenizer_piece(t, SPA, 0, &l);
    ok(l == 2 && memcmp(p, " a", 2) == 0, "piece of \u2581a is ' a'");
    p = lamina_tokenizer_piece(t, BYTE0 + 0xC3, 0, &l);
    ok(l == 1 && (unsigned char)p[0] == 0xC3, "byte token piece is the raw byte");
    p = lamina_tokenizer_piece(t, CTL, 0, &l);
    ok(l == 0, "control token renders empty");
    p = lamina_tokenizer_piece(t, CTL, 1, &l);
    ok(l == 5 && memcmp(p, "<ctl>", 5) == 0, "control token rendered when asked");
    p = lamina_tokenizer_piece(t, NL, 0, &l);
    ok(l == 1 && p[0] == '\n', "user-defined token renders its text");
    p = lamina_tokenizer_piece(t, NV + 5, 1, &l);
    ok(l == 0, "out-of-range id renders empty");

    /* queries */
    ok(lamina_tokenizer_n_vocab(t) == NV, "n_vocab");
    ok(lamina_tokenizer_bos(t) == BOS && lamina_tokenizer_eos(t) == EOS, "bos/eos");
    ok(lamina_tokenizer_eot(t) == EOT, "<end_of_turn> recognised as end of turn");
    ok(lamina_tokenizer_is_eog(t, EOS) && lamina_tokenizer_is_eog(t, EOT) &&
       !lamina_tokenizer_is_eog(t, A) && !lamina_tokenizer_is_eog(t, -1),
       "end-of-generation set is {eos, <end_of_turn>}");
    ok(lamina_tokenizer_find(t, "bc", 2) == BC && lamina_tokenizer_find(t, "zz", 2) == LAMINA_TOKEN_NONE,
       "vocabulary lookup");
    ok(lamina_tokenizer_token_type(t, BYTE0) == LAMINA_TOKTYPE_BYTE, "token type");

    /* round trips */
    static const char *const samples[] = {
        "abc", "a a  a   a", " leading space", "trailing space ", "\n\n", "tab\there",
        "caf\xC3\xA9 na\xC3\xAFve \xC3\xBC", "emoji \xF0\x9F\x98\x80\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD",
        "\xE4\xB8\xAD\xE6\x96\x87", "ctrl \x01\x02\x7F", "mixed <ctl> text",
    };
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++)
        ok(roundtrip(t, samples[i], strlen(samples[i]), 0, 0), "round trip #%zu", i);
    ok(roundtrip(t, "x<ctl>y", 7, LAMINA_TOKENIZE_PARSE_SPECIAL, LAMINA_DECODE_RENDER_SPECIAL),
       "round trip with a parsed control token rendered back");
    {
        char *out = NULL;
        lamina_token ids[] = {BOS, SPA, B};
        lamina_tokenizer_decode(tp, ids, 3, LAMINA_DECODE_SKIP_BOS, &out, NULL, NULL, 0);
        ok(out && strcmp(out, "ab") == 0, "decode skipping BOS drops the space prefix");
        free(out);
    }
    /* pseudo-random valid UTF-8 (invalid UTF-8 cannot round-trip exactly: see above) */
    uint64_t x = 12345;
    int all = 1;
    char buf[1024];
    for (int it = 0; it < 300; it++) {
        size_t n = 0, want = (size_t)(it % 150);
        while (n < want) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            uint32_t v = (uint32_t)(x >> 33);
            uint32_t cp;
            switch (v % 5) {
            case 0: cp = (uint32_t)"ab cde\n"[v % 7]; break;
            case 1: cp = 1 + (v >> 3) % 0x7F; break;
            case 2: cp = 0x80 + (v >> 3) % 0x780; break;
            case 3: cp = 0x800 + (v >> 3) % 0xF800; if (cp >= 0xD800 && cp < 0xE000) cp = 'x'; break;
            default: cp = 0x10000 + (v >> 3) % 0x100000; break;
            }
            if (cp < 0x80) buf[n++] = (char)cp;
            else if (cp < 0x800) { buf[n++] = (char)(0xC0 | cp >> 6); buf[n++] = (char)(0x80 | (cp & 63)); }
            else if (cp < 0x10000) { buf[n++] = (char)(0xE0 | cp >> 12); buf[n++] = (char)(0x80 | ((cp >> 6) & 63)); buf[n++] = (char)(0x80 | (cp & 63)); }
            else { buf[n++] = (char)(0xF0 | cp >> 18); buf[n++] = (char)(0x80 | ((cp >> 12) & 63)); buf[n++] = (char)(0x80 | ((cp >> 6) & 63)); buf[n++] = (char)(0x80 | (cp & 63)); }
        }
        if (!roundtrip(t, buf, n, 0, 0)) {
            all = 0;
            diag("round trip failed for random string %d", it);
        }
    }
    ok(all, "300 pseudo-random UTF-8 strings round trip (also streamed piece by piece)");
    /* a long input goes through (the merge loop is O(n log n)) */
    {
        size_t n = 200000;
        char *big = malloc(n);
        for (size_t i = 0; i < n; i++)
            big[i] = "abcde "[i % 6];
        ok(roundtrip(t, big, n, 0, 0), "200 KB input round trips");
        free(big);
    }

    /* UTF-8 streaming */
    {
        lamina_utf8_stream s;
        lamina_utf8_stream_init(&s);
        char o[16];
        size_t k1 = lamina_utf8_stream_push(&s, "\xF0\x9F", 2, o);
        size_t k2 = lamina_utf8_stream_push(&s, "\x98", 1, o);
        size_t k3 = lamina_utf8_stream_push(&s, "\x80!", 2, o);
        ok(k1 == 0 && k2 == 0 && k3 == 5 && memcmp(o, "\xF0\x9F\x98\x80!", 5) == 0,
           "emoji split over three pieces comes out whole");
        size_t k4 = lamina_utf8_stream_push(&s, "a\xC3", 2, o);
        size_t k5 = lamina_utf8_stream_flush(&s, o + k4);
        ok(k4 == 1 && k5 == 1 && (unsigned char)o[1] == 0xC3, "flush returns a held partial byte");
        size_t k6 = lamina_utf8_stream_push(&s, "\xFF", 1, o);
        ok(k6 == 1, "invalid byte is not held");
        size_t k7 = lamina_utf8_stream_push(&s, "\xE2", 1, o);
        size_t k8 = lamina_utf8_stream_push(&s, "x", 1, o);
        ok(k7 == 0 && k8 == 2, "a lead byte followed by ASCII is released");
        size_t k9 = lamina_utf8_stream_push(&s, "\xBF\xBF", 2, o);
        ok(k9 == 2, "stray continuation bytes are not held");
    }

    /* errors */
    {
        lamina_tokenizer_spec sp;
        memset(&sp, 0, sizeof(sp));
        sp.kind = LAMINA_TOKENIZER_SPM;
        sp.n_vocab = NV;
        sp.tokens = toks;
        sp.bos = NV;
        sp.eos = sp.eot = sp.eom = sp.unk = sp.pad = LAMINA_TOKEN_NONE;
        lamina_tokenizer *bad = NULL;
        char err[128] = "";
        int rc = lamina_tokenizer_create(&sp, &bad, err, sizeof(err));
        ok(rc == LAMINA_EINVAL && bad == NULL && strstr(err, "bos") != NULL,
           "bos id outside the vocabulary rejected: %s", err);
        sp.bos = LAMINA_TOKEN_NONE;
        sp.n_vocab = 0;
        ok(lamina_tokenizer_create(&sp, &bad, err, sizeof(err)) == LAMINA_EINVAL, "empty vocabulary rejected");
    }

    lamina_tokenizer_free(t);
    lamina_tokenizer_free(tp);
    return done_testing();
}
