/* fuzz_grammar.c - libFuzzer harness for structured output
 * (runtime/text/grammar.c, gbnf.c): the JSON schema or GBNF grammar comes
 * from the request, the bytes it constrains from the model.  An input is a
 * schema (JSON text; an empty one means "any JSON value") or, with mode bit
 * 1 set, a GBNF grammar, then a NUL byte, a mode byte and the rest.
 * Mode bit 0 clear: the rest is output fed byte by byte; each byte refused
 * must stay refused (the state is unchanged), and a fresh matcher fed the
 * accepted bytes at once must agree.  Bit 0 set: each byte of the rest picks
 * a token of a small byte-level vocabulary; the mask must allow exactly the
 * tokens that lamina_gmatch_accept takes, and a byte-level matcher fed the
 * same pieces must take and refuse the same.  Either way, accepted output that
 * may end must be valid JSON (jansson), nothing may follow output that is
 * done, and the tokenizer-level and byte-level matchers must agree on
 * whether the output may end (for a GBNF grammar the output is not JSON;
 * the other checks hold).  Built by tests/fuzz.am. */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "grammar.h"
#include "lamina/plugin.h"
#include "tokenizer.h"

static lamina_tokenizer *tok;
static lamina_gvocab *gv;
static int32_t n_vocab, n_normal;
static float *logits;

/* GPT-2 byte-level vocabulary: every byte, some JSON pieces, two controls */
static void setup(void)
{
    static const char *const extra[] = {"{\"", "\":", "\",", "true", "false", "null", "[]", "{}", "  ",
                                        "0.", "-1", "e+", "\\u00", "\"}", "]}", "ab", "\xC3\xA9"};
    enum { N_EXTRA = sizeof extra / sizeof extra[0] };
    static char texts[256 + N_EXTRA + 2][32];
    static const char *toks[256 + N_EXTRA + 2];
    static int32_t types[256 + N_EXTRA + 2];
    unsigned cp[256], more = 0;
    for (unsigned x = 0; x < 256; x++) {
        int printable = (x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE;
        cp[x] = printable ? x : 256 + more++;
    }
    int n = 0;
    for (unsigned b = 0; b < 256 + N_EXTRA; b++) {
        const char *src = NULL;
        char one[2] = {(char)b, 0};
        src = b < 256 ? one : extra[b - 256];
        size_t len = b < 256 ? 1 : strlen(src), k = 0;
        for (size_t i = 0; i < len; i++) {
            unsigned c = cp[(unsigned char)src[i]];
            if (c < 0x80) {
                texts[n][k++] = (char)c;
            } else {
                texts[n][k++] = (char)(0xC0 | (c >> 6));
                texts[n][k++] = (char)(0x80 | (c & 0x3F));
            }
        }
        texts[n][k] = 0;
        toks[n] = texts[n];
        types[n] = LAMINA_TOKTYPE_NORMAL;
        n++;
    }
    n_normal = n;
    toks[n] = "<|eot_id|>";
    types[n++] = LAMINA_TOKTYPE_CONTROL;
    toks[n] = "<|end_of_text|>";
    types[n++] = LAMINA_TOKTYPE_CONTROL;
    lamina_tokenizer_spec sp;
    memset(&sp, 0, sizeof sp);
    sp.kind = LAMINA_TOKENIZER_BPE;
    sp.pretok = LAMINA_PRETOK_LLAMA3;
    sp.n_vocab = n;
    sp.tokens = toks;
    sp.types = types;
    sp.bos = sp.eom = sp.unk = sp.pad = sp.sep = LAMINA_TOKEN_NONE;
    sp.eot = n - 2;
    sp.eos = n - 1;
    char err[256];
    if (lamina_tokenizer_create(&sp, &tok, err, sizeof err) != 0 ||
        lamina_gvocab_create(tok, n, &gv, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_grammar: %s\n", err);
        abort();
    }
    n_vocab = n;
    logits = malloc(sizeof(float) * (size_t)n);
    if (logits == NULL)
        abort();
}

static void check_json(const char *out, size_t len)
{
    json_error_t je;
    json_t *j = json_loadb(out, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (j == NULL) {
        fprintf(stderr, "fuzz_grammar: complete output is not JSON (%s): %.*s\n", je.text, (int)len, out);
        abort();
    }
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (tok == NULL)
        setup();
    const uint8_t *nul = memchr(data, 0, size);
    if (nul == NULL || (size_t)(nul - data) + 2 > size)
        return 0;
    size_t sl = (size_t)(nul - data);
    uint8_t mode = nul[1];
    const uint8_t *rest = nul + 2;
    size_t rl = size - sl - 2;

    lamina_grammar *g = NULL;
    char err[512];
    err[0] = 0;
    int gbnf = (mode & 2) != 0;
    int rc = gbnf ? lamina_grammar_compile_gbnf((const char *)data, sl, &g, err, sizeof err)
             : sl == 0 ? lamina_grammar_compile(NULL, &g, err, sizeof err)
                       : lamina_grammar_compile_text((const char *)data, sl, &g, err, sizeof err);
    if (rc != 0) {
        if (rc > 0 || g != NULL || err[0] == 0)
            abort();
        return 0;
    }
    lamina_gmatch *m = NULL, *check = NULL;
    if (lamina_gmatch_create(g, (mode & 1) ? gv : NULL, &m, err, sizeof err) != 0 ||
        lamina_gmatch_create(g, NULL, &check, err, sizeof err) != 0)
        abort();
    char *out = malloc(rl * 8 + 1);
    if (out == NULL)
        abort();
    size_t ol = 0;

    if (!(mode & 1)) {
        for (size_t i = 0; i < rl; i++) {
            char c = (char)rest[i];
            int done = lamina_gmatch_done(m);
            if (lamina_gmatch_feed(m, &c, 1) == 0) {
                if (done)
                    abort();   /* a done output took one more byte */
                out[ol++] = c;
            } else if (lamina_gmatch_feed(m, &c, 1) == 0) {
                abort();       /* refused, then taken: the state moved */
            }
        }
        if (ol > 0 && lamina_gmatch_feed(check, out, ol) != 0)
            abort();
    } else {
        for (size_t i = 0; i < rl; i++) {
            lamina_token t = (lamina_token)(((unsigned)rest[i] * 7919u + (unsigned)i) % (unsigned)n_normal);
            /* the mask walks the whole vocabulary: at the first four steps and
             * every sixteenth, which keeps the harness fast */
            int masked = i < 4 || i % 16 == 0, allowed = 0;
            if (masked) {
                for (int32_t k = 0; k < n_vocab; k++)
                    logits[k] = 0.0f;
                lamina_gmatch_mask(m, logits);
                allowed = !isinf(logits[t]);
                if (lamina_gmatch_done(m)) {
                    for (int32_t k = 0; k < n_normal; k++)
                        if (!isinf(logits[k]))
                            abort();   /* only end-of-generation tokens after a done value */
                    if (isinf(logits[lamina_tokenizer_eot(tok)]) && isinf(logits[lamina_tokenizer_eos(tok)]))
                        abort();
                }
            }
            int arc = lamina_gmatch_accept(m, t);
            if (masked && (arc == 0) != allowed) {
                fprintf(stderr, "fuzz_grammar: token %d: mask says %s, accept returned %d\n", t,
                        allowed ? "allowed" : "refused", arc);
                abort();
            }
            size_t pl;
            const char *p = lamina_tokenizer_piece(tok, t, 0, &pl);
            if ((lamina_gmatch_feed(check, p, pl) == 0) != (arc == 0))
                abort();   /* the byte-level matcher disagrees */
            if (arc == 0) {
                memcpy(out + ol, p, pl);
                ol += pl;
            }
        }
    }
    if (lamina_gmatch_can_end(m) != lamina_gmatch_can_end(check) ||
        lamina_gmatch_done(m) != lamina_gmatch_done(check))
        abort();
    if (lamina_gmatch_can_end(m) && !gbnf)
        check_json(out, ol);
    free(out);
    lamina_gmatch_free(m);
    lamina_gmatch_free(check);
    lamina_grammar_unref(g);
    return 0;
}
