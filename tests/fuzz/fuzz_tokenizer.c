/* fuzz_tokenizer.c - libFuzzer harness for tokenizer encoding
 * (runtime/text/tokenizer.c): prompts are untrusted text.  Small fixed
 * vocabularies are built once through lamina_tokenizer_create, one per
 * algorithm and pre-tokenizer: SentencePiece with byte fallback, byte-level
 * BPE under every pre-tokenizer, Gemma 4's raw-UTF-8 BPE, WordPiece and
 * unigram (with a small precompiled charsmap and extra spaces removed, and
 * without a charsmap).
 * The first input byte picks the vocabulary (bits 0-4) and the encode flags
 * (bits 5-6); the rest is the text.  Checked: no crash, leak or sanitizer
 * report; every id is inside the vocabulary; decoding works; byte-level BPE
 * (and SentencePiece on valid UTF-8 without U+2581) gives back the exact
 * text when control tokens are not parsed; the pre-tokenizer alone gives strictly
 * increasing word ends that end at the text's end.  Built by tests/fuzz.am. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/plugin.h"
#include "tokenizer.h"

#define MAX_TOK 400

/* one vocabulary under construction */
struct vb {
    char *text[MAX_TOK];
    int32_t type[MAX_TOK];
    float score[MAX_TOK];
    int n;
};

static int vb_add(struct vb *v, const char *s, int type, float score)
{
    if (v->n >= MAX_TOK)
        abort();
    v->text[v->n] = strdup(s);
    v->type[v->n] = type;
    v->score[v->n] = score;
    return v->n++;
}

/* A word as a SentencePiece vocabulary writes it: spaces as U+2581
 * (out holds 32 bytes; the words are short). */
static void sp_text(const char *w, char out[32])
{
    size_t k = 0;
    for (const char *p = w; *p; p++) {
        if (*p == ' ') {
            memcpy(out + k, "\xE2\x96\x81", 3);
            k += 3;
        } else {
            out[k++] = *p;
        }
    }
    out[k] = 0;
}

static lamina_tokenizer *vb_build(struct vb *v, lamina_tokenizer_spec *sp)
{
    sp->n_vocab = v->n;
    sp->tokens = (const char *const *)v->text;
    sp->types = v->type;
    sp->scores = v->score;
    lamina_tokenizer *t = NULL;
    char err[256];
    if (lamina_tokenizer_create(sp, &t, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_tokenizer: vocabulary refused: %s\n", err);
        abort();
    }
    for (int i = 0; i < v->n; i++)
        free(v->text[i]);
    v->n = 0;
    return t;
}

static void none_ids(lamina_tokenizer_spec *sp)
{
    sp->bos = sp->eos = sp->eot = sp->eom = sp->unk = sp->pad = sp->sep = LAMINA_TOKEN_NONE;
}

/* GPT-2's byte to printable code point, as UTF-8 */
static void mapped_byte(unsigned b, char out[3])
{
    static unsigned cp[256];
    static int init;
    if (!init) {
        unsigned extra = 0;
        for (unsigned x = 0; x < 256; x++) {
            int printable = (x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE;
            cp[x] = printable ? x : 256 + extra++;
        }
        init = 1;
    }
    unsigned c = cp[b];
    if (c < 0x80) {
        out[0] = (char)c;
        out[1] = 0;
    } else {
        out[0] = (char)(0xC0 | (c >> 6));
        out[1] = (char)(0x80 | (c & 0x3F));
        out[2] = 0;
    }
}

static void mapped(const char *s, char *out)
{
    size_t n = 0;
    for (; *s; s++) {
        char b[3];
        mapped_byte((unsigned char)*s, b);
        n += (size_t)sprintf(out + n, "%s", b);
    }
}

static const char *const words[] = {"he", "ll", "hell", "hello", " w", "or", " wor", " world", "ld", "in",
                                    " t", "th", " th", "the", " the", "12", "123", "  ", "\n\n", "é"};
#define N_WORDS (sizeof words / sizeof words[0])

enum { V_SPM, V_SPM_PREFIX, V_WPM, V_BPE0 };
#define N_PRETOK 11   /* LAMINA_PRETOK_GPT2 .. LAMINA_PRETOK_GEMMA4 */
#define V_UGM (V_BPE0 + N_PRETOK)   /* unigram with a charsmap, then without */
#define V_GPT4O (V_UGM + 2)         /* LAMINA_PRETOK_GPT4O, last: the seeds keep their vocabularies */
#define N_VOCABS (V_GPT4O + 1)

static lamina_tokenizer *vocabs[N_VOCABS];

static lamina_tokenizer *make_spm(int prefix)
{
    static struct vb v;
    lamina_tokenizer_spec sp;
    memset(&sp, 0, sizeof sp);
    none_ids(&sp);
    sp.kind = LAMINA_TOKENIZER_SPM;
    sp.unk = vb_add(&v, "<unk>", LAMINA_TOKTYPE_UNKNOWN, 0);
    sp.bos = vb_add(&v, "<s>", LAMINA_TOKTYPE_CONTROL, 0);
    sp.eos = vb_add(&v, "</s>", LAMINA_TOKTYPE_CONTROL, 0);
    sp.eot = vb_add(&v, "<end_of_turn>", LAMINA_TOKTYPE_CONTROL, 0);
    vb_add(&v, "<start_of_turn>", LAMINA_TOKTYPE_CONTROL, 0);
    vb_add(&v, "\n\n", LAMINA_TOKTYPE_USER_DEFINED, 0);
    vb_add(&v, "<tool>", LAMINA_TOKTYPE_USER_DEFINED, 0);
    for (unsigned b = 0; b < 256; b++) {
        char s[8];
        snprintf(s, sizeof s, "<0x%02X>", b);
        vb_add(&v, s, LAMINA_TOKTYPE_BYTE, 0);
    }
    vb_add(&v, "\xE2\x96\x81", LAMINA_TOKTYPE_NORMAL, -1.0f);
    for (char c = 'a'; c <= 'z'; c++) {
        char s[2] = {c, 0};
        vb_add(&v, s, LAMINA_TOKTYPE_NORMAL, -2.0f);
    }
    for (size_t i = 0; i < N_WORDS; i++) {
        char s[32];
        sp_text(words[i], s);
        if (strcmp(s, "\n\n") != 0)
            vb_add(&v, s, LAMINA_TOKTYPE_NORMAL, -1.0f - (float)i / 8);
    }
    vb_add(&v, "~unused", LAMINA_TOKTYPE_UNUSED, 0);
    sp.add_bos = 1;
    sp.add_space_prefix = prefix;
    return vb_build(&v, &sp);
}

static lamina_tokenizer *make_wpm(void)
{
    static struct vb v;
    lamina_tokenizer_spec sp;
    memset(&sp, 0, sizeof sp);
    none_ids(&sp);
    sp.kind = LAMINA_TOKENIZER_WPM;
    sp.pad = vb_add(&v, "[PAD]", LAMINA_TOKTYPE_CONTROL, 0);
    sp.unk = vb_add(&v, "[UNK]", LAMINA_TOKTYPE_UNKNOWN, 0);
    sp.bos = vb_add(&v, "[CLS]", LAMINA_TOKTYPE_CONTROL, 0);
    sp.sep = vb_add(&v, "[SEP]", LAMINA_TOKTYPE_CONTROL, 0);
    vb_add(&v, "[MASK]", LAMINA_TOKTYPE_CONTROL, 0);
    for (int c = '!'; c <= '~'; c++) {
        char s[4] = {(char)c, 0};
        vb_add(&v, s, LAMINA_TOKTYPE_NORMAL, 0);
        if (c >= 'a' && c <= 'z') {
            char h[4] = {'#', '#', (char)c, 0};
            vb_add(&v, h, LAMINA_TOKTYPE_NORMAL, 0);
        }
    }
    vb_add(&v, "the", LAMINA_TOKTYPE_NORMAL, 0);
    vb_add(&v, "hello", LAMINA_TOKTYPE_NORMAL, 0);
    vb_add(&v, "##llo", LAMINA_TOKTYPE_NORMAL, 0);
    vb_add(&v, "\xE4\xB8\xAD", LAMINA_TOKTYPE_NORMAL, 0);   /* 中 */
    return vb_build(&v, &sp);
}

static lamina_tokenizer *make_bpe(int pretok)
{
    static struct vb v;
    static char merge_buf[N_WORDS][64];
    static const char *merges[N_WORDS];
    lamina_tokenizer_spec sp;
    memset(&sp, 0, sizeof sp);
    none_ids(&sp);
    sp.kind = LAMINA_TOKENIZER_BPE;
    sp.pretok = pretok;
    int gemma = pretok == LAMINA_PRETOK_GEMMA4;
    if (gemma) {
        for (unsigned b = 0; b < 256; b++) {
            char s[8];
            snprintf(s, sizeof s, "<0x%02X>", b);
            vb_add(&v, s, LAMINA_TOKTYPE_BYTE, 0);
        }
        for (int c = ' ' + 1; c <= '~'; c++) {
            char s[2] = {(char)c, 0};
            vb_add(&v, s, LAMINA_TOKTYPE_NORMAL, 0);
        }
        vb_add(&v, "\xE2\x96\x81", LAMINA_TOKTYPE_NORMAL, 0);
        vb_add(&v, "\n", LAMINA_TOKTYPE_NORMAL, 0);
    } else {
        for (unsigned b = 0; b < 256; b++) {
            char s[3];
            mapped_byte(b, s);
            vb_add(&v, s, LAMINA_TOKTYPE_NORMAL, 0);
        }
    }
    /* merges: each word from its first character and the rest, both tokens */
    int n_merges = 0;
    for (size_t i = 0; i < N_WORDS; i++) {
        const char *w = words[i];
        size_t first = ((unsigned char)w[0] >= 0xC0) ? 2 : 1;
        if (strlen(w) <= first)
            continue;
        char a[32], b[32], whole[64];
        char wa[8], wb[32];
        memcpy(wa, w, first);
        wa[first] = 0;
        snprintf(wb, sizeof wb, "%s", w + first);
        if (gemma) {
            const char *src[3] = {wa, wb, w};
            char *dst[3] = {a, b, whole};
            for (int k = 0; k < 3; k++) {
                size_t n = 0;
                for (const char *p = src[k]; *p; p++) {
                    if (*p == ' ') {
                        memcpy(dst[k] + n, "\xE2\x96\x81", 3);
                        n += 3;
                    } else {
                        dst[k][n++] = *p;
                    }
                }
                dst[k][n] = 0;
            }
        } else {
            mapped(wa, a);
            mapped(wb, b);
            mapped(w, whole);
        }
        /* the rest must be a token for the merge to be reachable */
        if (strlen(wb) > 1 && n_merges > 0) {
            int found = 0;
            for (int k = 0; k < v.n && !found; k++)
                found = strcmp(v.text[k], b) == 0;
            if (!found)
                continue;
        } else if (strlen(wb) > 1) {
            continue;
        }
        int dup = 0;
        for (int k = 0; k < v.n && !dup; k++)
            dup = strcmp(v.text[k], whole) == 0;
        if (dup)
            continue;
        vb_add(&v, whole, LAMINA_TOKTYPE_NORMAL, 0);
        snprintf(merge_buf[n_merges], sizeof merge_buf[0], "%s %s", a, b);
        merges[n_merges] = merge_buf[n_merges];
        n_merges++;
    }
    sp.bos = vb_add(&v, "<|begin_of_text|>", LAMINA_TOKTYPE_CONTROL, 0);
    sp.eos = vb_add(&v, "<|end_of_text|>", LAMINA_TOKTYPE_CONTROL, 0);
    sp.eot = vb_add(&v, "<|eot_id|>", LAMINA_TOKTYPE_CONTROL, 0);
    vb_add(&v, "<|start_header_id|>", LAMINA_TOKTYPE_CONTROL, 0);
    vb_add(&v, "<think>", LAMINA_TOKTYPE_USER_DEFINED, 0);
    if (gemma)
        sp.unk = vb_add(&v, "<unk>", LAMINA_TOKTYPE_UNKNOWN, 0);
    sp.n_merges = n_merges;
    sp.merges = merges;
    sp.add_bos = 1;
    return vb_build(&v, &sp);
}

/* A precompiled charsmap for rules from -> to: the trie size, a double
 * array with a 256-unit block per trie state (state s's child by byte c at
 * unit s ^ c: label c, bit 8 where a rule ends, BASE in bits 10..30 leading
 * to the child's state, whose unit 0 holds the string's offset with bit
 * 31 set), then the NUL-terminated replacements.  Written into buf; returns
 * its length. */
static size_t make_charsmap(const char *const (*rules)[2], size_t n_rules, uint8_t *buf, size_t cap)
{
    enum { MAX_STATES = 32 };
    static char prefix[MAX_STATES][8];
    static uint32_t units[256 * (MAX_STATES + 1)];
    size_t n_states = 1, n_str = 0;
    memset(units, 0, sizeof units);
    prefix[0][0] = 0;                    /* the root: block 1 */
    units[0] = 256u << 10;
    char strings[256];
    for (size_t r = 0; r < n_rules; r++) {
        const char *from = rules[r][0];
        size_t state = 0;                /* index into prefix[], block state + 1 */
        for (size_t i = 0; from[i]; i++) {
            size_t next = n_states;
            for (size_t k = 1; k < n_states; k++)
                if (strlen(prefix[k]) == i + 1 && memcmp(prefix[k], from, i + 1) == 0)
                    next = k;
            if (next == n_states) {
                if (n_states == MAX_STATES || i + 1 >= sizeof prefix[0])
                    abort();
                memcpy(prefix[next], from, i + 1);
                prefix[next][i + 1] = 0;
                n_states++;
            }
            uint32_t c = (unsigned char)from[i];
            uint32_t p = (uint32_t)(256 * (state + 1)) ^ c, child = (uint32_t)(256 * (next + 1));
            units[p] = ((p ^ child) << 10) | (units[p] & 0x100) | c;
            if (from[i + 1] == 0) {
                size_t l = strlen(rules[r][1]) + 1;
                if (n_str + l > sizeof strings)
                    abort();
                units[p] |= 0x100;
                units[child] = 0x80000000u | (uint32_t)n_str;
                memcpy(strings + n_str, rules[r][1], l);
                n_str += l;
            }
            state = next;
        }
    }
    size_t n_units = 256 * (n_states + 1), len = 4 + 4 * n_units + n_str;
    if (len > cap)
        abort();
    uint32_t blob = (uint32_t)(4 * n_units);
    for (int b = 0; b < 4; b++)
        buf[b] = (uint8_t)(blob >> (8 * b));
    for (size_t i = 0; i < n_units; i++)
        for (int b = 0; b < 4; b++)
            buf[4 + 4 * i + b] = (uint8_t)(units[i] >> (8 * b));
    memcpy(buf + 4 + 4 * n_units, strings, n_str);
    return len;
}

static lamina_tokenizer *make_ugm(int with_charsmap)
{
    static struct vb v;
    static uint8_t cm[4 + 4 * 256 * 33 + 256];
    static const char *const rules[][2] = {
        {"\xEF\xBC\xA1", "a"},            /* full-width A */
        {"\xEF\xAC\x81", "fi"},           /* the fi ligature */
        {"\t", " "},
        {"Ab", "ab"},
        {"e\xCC\x81", "\xC3\xA9"},       /* e + combining acute: e-acute */
        {"\xE2\x80\x8B", ""},             /* zero-width space: nothing */
    };
    lamina_tokenizer_spec sp;
    memset(&sp, 0, sizeof sp);
    none_ids(&sp);
    sp.kind = LAMINA_TOKENIZER_UGM;
    sp.pad = vb_add(&v, "<pad>", LAMINA_TOKTYPE_CONTROL, 0);
    sp.eos = vb_add(&v, "</s>", LAMINA_TOKTYPE_CONTROL, 0);
    sp.unk = vb_add(&v, "<unk>", LAMINA_TOKTYPE_UNKNOWN, 0);
    sp.bos = vb_add(&v, "<s>", LAMINA_TOKTYPE_CONTROL, 0);
    vb_add(&v, "<tool>", LAMINA_TOKTYPE_USER_DEFINED, 0);
    vb_add(&v, "\xE2\x96\x81", LAMINA_TOKTYPE_NORMAL, -1.5f);
    for (char c = 'a'; c <= 'z'; c++) {
        char s[2] = {c, 0};
        vb_add(&v, s, LAMINA_TOKTYPE_NORMAL, -3.0f - (float)(c - 'a') / 16);
    }
    for (size_t i = 0; i < N_WORDS; i++) {
        char s[32];
        sp_text(words[i], s);
        int dup = 0;
        for (int j = 0; j < v.n && !dup; j++)
            dup = strcmp(v.text[j], s) == 0;
        if (!dup)
            vb_add(&v, s, LAMINA_TOKTYPE_NORMAL, -1.0f - (float)i / 8);
    }
    vb_add(&v, "~unused", LAMINA_TOKTYPE_UNUSED, -2.0f);
    sp.add_bos = 1;
    sp.add_eos = 1;
    if (with_charsmap) {
        sp.charsmap = cm;
        sp.charsmap_len = make_charsmap(rules, sizeof rules / sizeof rules[0], cm, sizeof cm);
        sp.add_space_prefix = 1;
        sp.remove_extra_ws = 1;
    }
    return vb_build(&v, &sp);
}

static void setup(void)
{
    vocabs[V_SPM] = make_spm(0);
    vocabs[V_SPM_PREFIX] = make_spm(1);
    vocabs[V_WPM] = make_wpm();
    for (int p = 0; p < N_PRETOK; p++)
        vocabs[V_BPE0 + p] = make_bpe(LAMINA_PRETOK_GPT2 + p);
    vocabs[V_UGM] = make_ugm(1);
    vocabs[V_UGM + 1] = make_ugm(0);
    vocabs[V_GPT4O] = make_bpe(LAMINA_PRETOK_GPT4O);
}

static void check_split(int kind, const char *s, size_t n)
{
    static size_t bounds[4096];
    size_t nb = 0;
    if (lamina_tokenizer_pretok_split(kind, s, n, bounds, 4096, &nb) != 0)
        abort();
    if (n > 0 && nb == 0)
        abort();
    size_t shown = nb < 4096 ? nb : 4096;
    for (size_t i = 0; i < shown; i++)
        if (bounds[i] > n || (i > 0 && bounds[i] <= bounds[i - 1]) || (i == 0 && bounds[0] == 0))
            abort();
    if (nb > 0 && nb <= 4096 && bounds[nb - 1] != n)
        abort();
}

/* Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF).
 * SentencePiece groups bytes into characters by their lead byte, as
 * llama.cpp does, so a malformed sequence can swallow an escaped space
 * into byte tokens: the exact round trip holds for valid text only. */
static int utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (k == 0 || i + k > n)
            return 0;
        uint32_t cp = k == 1 ? c : k == 2 ? (c & 0x1F) : k == 3 ? (c & 0x0F) : (c & 0x07);
        for (size_t j = 1; j < k; j++) {
            if ((p[i + j] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (p[i + j] & 0x3F);
        }
        static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[k] || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000))
            return 0;
        i += k;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (vocabs[0] == NULL)
        setup();
    if (size == 0)
        return 0;
    int which = (data[0] & 31) % N_VOCABS;
    unsigned flags = (data[0] >> 5) & 3;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    const lamina_tokenizer *t = vocabs[which];

    lamina_token *ids = NULL;
    size_t n = 0;
    char err[256];
    if (lamina_tokenizer_encode(t, text, len, flags, &ids, &n, err, sizeof err) != 0)
        abort();
    int32_t nv = lamina_tokenizer_n_vocab(t);
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= nv)
            abort();
    char *out = NULL;
    size_t out_len = 0;
    if (lamina_tokenizer_decode(t, ids, n, LAMINA_DECODE_SKIP_BOS, &out, &out_len, err, sizeof err) != 0)
        abort();
    if (out == NULL || out[out_len] != 0)
        abort();
    int pretok = which == V_GPT4O                     ? LAMINA_PRETOK_GPT4O
                 : which >= V_BPE0 && which < V_UGM ? LAMINA_PRETOK_GPT2 + which - V_BPE0
                                                    : LAMINA_PRETOK_NONE;
    int exact = !(flags & LAMINA_TOKENIZE_PARSE_SPECIAL) &&
                ((pretok != LAMINA_PRETOK_NONE && pretok != LAMINA_PRETOK_GEMMA4) ||
                 (which == V_SPM && memmem(text, len, "\xE2\x96\x81", 3) == NULL && utf8_valid(text, len)));
    if (exact && (out_len != len || memcmp(out, text, len) != 0)) {
        fprintf(stderr, "fuzz_tokenizer: vocabulary %d: decode(encode(text)) differs (%zu bytes, got %zu):",
                which, len, out_len);
        for (size_t i = 0; i < out_len; i++)
            fprintf(stderr, " %02x", (unsigned char)out[i]);
        fprintf(stderr, "\nids:");
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, "\n");
        abort();
    }
    free(out);
    char *rendered = NULL;
    if (lamina_tokenizer_decode(t, ids, n, LAMINA_DECODE_RENDER_SPECIAL, &rendered, &out_len, err, sizeof err) != 0)
        abort();
    free(rendered);
    for (size_t i = 0; i < n; i++) {
        size_t pl;
        if (lamina_tokenizer_piece(t, ids[i], 1, &pl) == NULL)
            abort();
    }
    free(ids);
    if (pretok != LAMINA_PRETOK_NONE)
        check_split(pretok, text, len);
    return 0;
}
