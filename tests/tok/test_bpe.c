/* test_bpe.c - byte-level BPE: pre-tokenizer splits on tricky strings,
 * merges by rank, llama3's whole-word rule, byte mapping round trips. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/plugin.h"
#include "tokenizer.h"
#include "tap.h"

/* split s with pre-tokenizer kind and compare with the '|'-separated want */
static void split_is(int kind, const char *s, const char *want)
{
    size_t b[64], nb = 0;
    char got[512];
    size_t gl = 0, prev = 0;
    lamina_tokenizer_pretok_split(kind, s, strlen(s), b, 64, &nb);
    for (size_t i = 0; i < nb && i < 64; i++) {
        if (i > 0)
            got[gl++] = '|';
        memcpy(got + gl, s + prev, b[i] - prev);
        gl += b[i] - prev;
        prev = b[i];
    }
    got[gl] = 0;
    static const char *const names[] = {"", "gpt2", "llama3", "qwen2"};
    char shown[256];
    size_t k = 0;
    for (const char *p = s; *p && k < sizeof(shown) - 3; p++) {
        if (*p == '\n') { shown[k++] = '\\'; shown[k++] = 'n'; }
        else if (*p == '\r') { shown[k++] = '\\'; shown[k++] = 'r'; }
        else if (*p == '\t') { shown[k++] = '\\'; shown[k++] = 't'; }
        else shown[k++] = *p;
    }
    shown[k] = 0;
    if (!ok(strcmp(got, want) == 0, "%s split of \"%s\"", names[kind], shown))
        diag("got '%s' want '%s'", got, want);
}

/* GPT-2 byte -> code point, written independently of the library */
static unsigned mapped_cp(unsigned b)
{
    static unsigned table[256];
    static int init;
    if (!init) {
        unsigned extra = 0;
        for (unsigned x = 0; x < 256; x++) {
            int printable = (x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE);
            table[x] = printable ? x : 256 + extra++;
        }
        init = 1;
    }
    return table[b];
}

static size_t put_utf8(unsigned cp, char *o)
{
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    o[0] = (char)(0xC0 | (cp >> 6));
    o[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

/* byte string -> mapped text */
static char *mapped(const char *s)
{
    char *o = malloc(strlen(s) * 2 + 1);
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        n += put_utf8(mapped_cp(*p), o + n);
    o[n] = 0;
    return o;
}

enum { HE = 256, LL, HELL, GW, OR, GWOR, LD, BOT, EOT, SHI, HELLO, NV };

static lamina_tokenizer *make(int pretok)
{
    static char bytes[256][3];
    static const char *toks[NV];
    static int32_t types[NV];
    for (unsigned b = 0; b < 256; b++) {
        size_t l = put_utf8(mapped_cp(b), bytes[b]);
        bytes[b][l] = 0;
        toks[b] = bytes[b];
        types[b] = LAMINA_TOKTYPE_NORMAL;
    }
    static char *m[8];
    const char *words[] = {"he", "ll", "hell", " w", "or", " wor", "ld"};
    for (int i = 0; i < 7; i++) {
        free(m[i]);
        m[i] = mapped(words[i]);
        toks[HE + i] = m[i];
        types[HE + i] = LAMINA_TOKTYPE_NORMAL;
    }
    toks[BOT] = "<|begin_of_text|>"; types[BOT] = LAMINA_TOKTYPE_CONTROL;
    toks[EOT] = "<|eot_id|>"; types[EOT] = LAMINA_TOKTYPE_CONTROL;
    toks[SHI] = "<|start_header_id|>"; types[SHI] = LAMINA_TOKTYPE_CONTROL;
    toks[HELLO] = "hello"; types[HELLO] = LAMINA_TOKTYPE_NORMAL;
    static const char *merges[] = {"h e", "l l", "he ll", "\xC4\xA0 w", "o r", "\xC4\xA0w or", "l d"};
    lamina_tokenizer_spec sp;
    memset(&sp, 0, sizeof(sp));
    sp.kind = LAMINA_TOKENIZER_BPE;
    sp.pretok = pretok;
    sp.n_vocab = NV;
    sp.tokens = toks;
    sp.types = types;
    sp.n_merges = 7;
    sp.merges = merges;
    sp.bos = BOT;
    sp.eos = LAMINA_TOKEN_NONE;
    sp.eot = sp.eom = sp.unk = sp.pad = LAMINA_TOKEN_NONE;
    sp.add_bos = 1;
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
    if (lamina_tokenizer_encode(t, text, strlen(text), flags, &ids, &n, NULL, 0) != 0) {
        ok(0, "%s (encode failed)", what);
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

static int roundtrip(const lamina_tokenizer *t, const char *s, size_t n)
{
    lamina_token *ids = NULL;
    size_t ni = 0, no = 0;
    char *out = NULL;
    int good = lamina_tokenizer_encode(t, s, n, 0, &ids, &ni, NULL, 0) == 0 &&
               lamina_tokenizer_decode(t, ids, ni, 0, &out, &no, NULL, 0) == 0 && no == n &&
               memcmp(out, s, n) == 0;
    free(ids);
    free(out);
    return good;
}

int main(void)
{
    const int L3 = LAMINA_PRETOK_LLAMA3, Q2 = LAMINA_PRETOK_QWEN2, G2 = LAMINA_PRETOK_GPT2;

    /* pre-tokenizer splits */
    split_is(L3, "Hello world", "Hello| world");
    split_is(L3, "I'm here", "I|'m| here");
    split_is(L3, "I'M HERE", "I|'M| HERE");
    split_is(L3, "they'll've", "they|'ll|'ve");
    split_is(L3, "don't", "don|'t");
    split_is(L3, "'hello", "'hello");
    split_is(L3, "12345", "123|45");
    split_is(L3, "a1b2", "a|1|b|2");
    split_is(L3, "a  b", "a| | b");
    split_is(L3, "a\n\nb", "a|\n\n|b");
    split_is(L3, "hi!!! ok", "hi|!!!| ok");
    split_is(L3, "x = 1;\n", "x| =| |1|;\n");
    split_is(L3, "  \n  x", "  \n| | x");
    split_is(L3, "end   ", "end|   ");
    split_is(L3, "\t\tx", "\t|\tx");
    split_is(L3, "$100", "$|100");
    split_is(L3, "\xC3\xBC" "ber caf\xC3\xA9", "\xC3\xBC" "ber| caf\xC3\xA9");
    split_is(L3, "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E", "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E");
    split_is(L3, "\xF0\x9F\x98\x80\xF0\x9F\x98\x80 ok", "\xF0\x9F\x98\x80\xF0\x9F\x98\x80| ok");
    split_is(L3, "a\r\n\r\nb", "a|\r\n\r\n|b");
    split_is(L3, "..\n\nx", "..\n\n|x");
    split_is(L3, "\xD9\xA3\xD9\xA4", "\xD9\xA3\xD9\xA4");           /* Arabic-Indic digits are \p{N} */
    split_is(L3, "\xC2\xA0x", "\xC2\xA0x");                         /* NBSP then letter: one word */
    split_is(L3, "(\xE2\x80\x94)", "(\xE2\x80\x94)");
    split_is(Q2, "12345", "1|2|3|4|5");
    split_is(Q2, "I'm 42", "I|'m| |4|2");
    split_is(G2, "Hello world", "Hello| world");
    split_is(G2, "  x", " | x");
    split_is(G2, "12345 678", "12345| 678");
    split_is(G2, "I'M", "I|'|M");
    split_is(G2, "x\n\ny", "x|\n|\n|y");

    /* merges */
    lamina_tokenizer *t3 = make(L3), *tq = make(Q2);
    if (!ok(t3 && tq, "create toy BPE tokenizers"))
        return done_testing();
    CHECK(t3, "hello world", 0, "llama3: whole-word token taken as is; merges by rank", HELLO, GWOR, LD);
    CHECK(tq, "hello world", 0, "qwen2: no whole-word rule: he+ll -> hell, o", HELL, 'o', GWOR, LD);
    CHECK(t3, "hell", 0, "hell", HELL);
    CHECK(t3, "hello", LAMINA_TOKENIZE_ADD_SPECIAL, "BOS added", BOT, HELLO);
    CHECK(t3, "<|start_header_id|>hell<|eot_id|>", LAMINA_TOKENIZE_PARSE_SPECIAL, "specials parsed",
          SHI, HELL, EOT);
    {
        lamina_token *ids = NULL;
        size_t n = 0;
        lamina_tokenizer_encode(t3, "<|eot_id|>", 10, 0, &ids, &n, NULL, 0);
        ok(n > 1 && ids[0] == '<', "specials not parsed: plain text");
        free(ids);
    }
    CHECK(t3, "\xC3\xA9", 0, "non-ASCII goes through the byte map", 0xC3, 0xA9);
    ok(lamina_tokenizer_is_eog(t3, EOT) && lamina_tokenizer_eot(t3) == EOT, "<|eot_id|> ends generation");
    size_t l;
    const char *p = lamina_tokenizer_piece(t3, GWOR, 0, &l);
    ok(l == 4 && memcmp(p, " wor", 4) == 0, "piece of \xC4\xA0wor is ' wor'");
    p = lamina_tokenizer_piece(t3, 0x0A, 0, &l);
    ok(l == 1 && p[0] == '\n', "piece of the mapped newline is a newline");

    static const char *const samples[] = {
        "hello world", "  spaces  everywhere  ", "tabs\tand\nnewlines\r\n", "caf\xC3\xA9",
        "\xF0\x9F\x98\x80 emoji", "\xE4\xB8\xAD\xE6\x96\x87", "x = 1;\n", "\x01\x02\xFF\xFE", "",
    };
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++)
        ok(roundtrip(t3, samples[i], strlen(samples[i])) && roundtrip(tq, samples[i], strlen(samples[i])),
           "round trip #%zu", i);
    uint64_t x = 99;
    int all = 1;
    char buf[256];
    for (int it = 0; it < 200; it++) {
        size_t n = (size_t)it;
        for (size_t i = 0; i < n; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            buf[i] = (char)(x >> 56);
        }
        all &= roundtrip(t3, buf, n);
    }
    ok(all, "200 pseudo-random byte strings round trip");

    lamina_tokenizer_free(t3);
    lamina_tokenizer_free(tq);
    return done_testing();
}
