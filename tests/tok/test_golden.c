/*
 * test_golden.c - lamina's tokenizer against llama.cpp's on the same model
 * file: tests/golden/gemma3-270m-tokenizer.json, recorded by
 * scripts/record-golden.sh from llama_tokenize / llama_token_to_piece /
 * llama_detokenize.
 *
 * Every recorded string is checked in both recorded variants:
 *   special: add BOS, parse control tokens; pieces and text rendered with
 *            control tokens written out;
 *   plain:   no BOS, control tokens are text; pieces and text without them.
 * For each: the ids are exactly llama.cpp's, every piece's bytes are
 * exactly llama.cpp's, and decoding the ids gives llama.cpp's bytes.
 *
 * The model comes from $LAMINA_DEFAULT_MODEL, else where setup.sh puts it.
 * Without it the test skips, unless LAMINA_REQUIRE_MODEL=1 (CI).
 *
 *   test_golden [GOLDEN.json MODEL.gguf]
 *
 * checks another recording of the same form against its vocabulary
 * instead (tests/tok/ugm_golden.sh: the unigram ones).
 */
#include "config.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf.h"
#include "tokenizer.h"
#include "tap.h"
#include "testenv.h"

/* hex string -> malloc'd bytes; NULL on malformed input */
static unsigned char *unhex(const char *hex, size_t *n)
{
    size_t len = hex ? strlen(hex) : 0;
    if (!hex || len % 2) return NULL;
    unsigned char *out = malloc(len / 2 + 1);
    if (!out) return NULL;
    for (size_t i = 0; i < len / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1) { free(out); return NULL; }
        out[i] = (unsigned char)v;
    }
    *n = len / 2;
    out[*n] = 0;
    return out;
}

/* One variant of one case: ids, pieces, decoded text. */
static void check_variant(const lamina_tokenizer *tok, const unsigned char *in, size_t n_in,
                          json_t *v, int special, int idx)
{
    const char *what = special ? "special" : "plain";
    char err[512] = "";
    json_t *jids = json_object_get(v, "ids"), *jpieces = json_object_get(v, "pieces_hex");
    size_t nw = json_array_size(jids);
    int32_t *want = malloc((nw + 1) * sizeof *want);
    for (size_t i = 0; i < nw; i++) want[i] = (int32_t)json_integer_value(json_array_get(jids, i));

    lamina_token *got = NULL;
    size_t ng = 0;
    unsigned flags = special ? LAMINA_TOKENIZE_ADD_SPECIAL | LAMINA_TOKENIZE_PARSE_SPECIAL : 0;
    int rc = lamina_tokenizer_encode(tok, (const char *)in, n_in, flags, &got, &ng, err, sizeof err);
    char label[96];
    snprintf(label, sizeof label, "case %d %s: %zu ids equal llama.cpp's", idx, what, nw);
    if (rc < 0) ok(0, "case %d %s: encode: %s", idx, what, err);
    else ids_eq(got, ng, want, nw, label);

    /* pieces of llama.cpp's ids */
    int pieces_ok = json_array_size(jpieces) == nw;
    for (size_t i = 0; pieces_ok && i < nw; i++) {
        size_t pl = 0, wl = 0;
        const char *p = lamina_tokenizer_piece(tok, want[i], special, &pl);
        unsigned char *w = unhex(json_string_value(json_array_get(jpieces, i)), &wl);
        pieces_ok = w && pl == wl && memcmp(p, w, wl) == 0;
        if (!pieces_ok) diag("case %d %s: piece of id %d differs (%zu vs %zu bytes)", idx, what, want[i], pl, wl);
        free(w);
    }
    ok(pieces_ok, "case %d %s: pieces equal llama.cpp's", idx, what);

    /* decoded text of llama.cpp's ids */
    size_t dl = 0;
    unsigned char *dw = unhex(json_string_value(json_object_get(v, "detok_hex")), &dl);
    char *text = NULL;
    size_t tl = 0;
    rc = lamina_tokenizer_decode(tok, want, nw, special ? LAMINA_DECODE_RENDER_SPECIAL : 0, &text, &tl,
                                 err, sizeof err);
    int same = rc == 0 && dw && tl == dl && memcmp(text, dw, dl) == 0;
    ok(same, "case %d %s: decoded text equals llama.cpp's (%zu bytes)", idx, what, dl);
    if (!same && text) diag("got '%s' want '%s'", text, dw ? (const char *)dw : "?");
    free(text);
    free(dw);
    free(got);
    free(want);
}

int main(int argc, char **argv)
{
    const char *src = getenv("top_srcdir");
    char golden[4096], model[4096], err[1024] = "";
    snprintf(golden, sizeof golden, "%s/tests/golden/gemma3-270m-tokenizer.json", src ? src : "..");
    test_default_model(model, sizeof model);
    if (argc == 3) {
        snprintf(golden, sizeof golden, "%s", argv[1]);
        snprintf(model, sizeof model, "%s", argv[2]);
    }
    if (access(model, R_OK) != 0) {
        const char *req = getenv("LAMINA_REQUIRE_MODEL");
        if (req && strcmp(req, "1") == 0) {
            ok(0, "default model present at %s", model);
            return done_testing();
        }
        skip_all("default model not installed (run ./setup.sh)");
        return 0;
    }
    json_error_t je;
    json_t *root = json_load_file(golden, JSON_ALLOW_NUL, &je);
    if (!ok(root != NULL, "golden file %s loads (%s)", golden, root ? "ok" : je.text)) return done_testing();

    lamina_gguf *g = NULL;
    lamina_tokenizer *tok = NULL;
    if (!ok(lamina_gguf_open(model, &g, err, sizeof err) == 0, "open %s %s", model, err) ||
        !ok(lamina_tokenizer_load(g, &tok, err, sizeof err) == 0, "tokenizer loads %s", err)) {
        lamina_gguf_close(g);
        json_decref(root);
        return done_testing();
    }
    lamina_gguf_close(g);       /* the tokenizer borrows nothing */

    json_t *cases = json_object_get(root, "cases");
    ok(json_array_size(cases) >= 40, "%zu recorded cases", json_array_size(cases));
    for (size_t i = 0; i < json_array_size(cases); i++) {
        json_t *c = json_array_get(cases, i);
        size_t n_in = 0;
        unsigned char *in = unhex(json_string_value(json_object_get(c, "input_hex")), &n_in);
        if (!in) { ok(0, "case %zu: malformed input_hex", i); continue; }
        check_variant(tok, in, n_in, json_object_get(c, "special"), 1, (int)i);
        check_variant(tok, in, n_in, json_object_get(c, "plain"), 0, (int)i);
        free(in);
    }
    lamina_tokenizer_free(tok);
    json_decref(root);
    return done_testing();
}
