/* fuzz_tokload.c - libFuzzer harness for tokenizer loading
 * (lamina_tokenizer_load in runtime/text/tokenizer.c): the vocabulary, its
 * types, scores, merges and special ids come from the model file.  An input
 * is a GGUF file followed by a text and, in its last two bytes, the text's
 * length (little-endian, clamped to what is there).  The GGUF part is opened
 * from an exactly-sized copy; when a tokenizer loads, the text is encoded
 * with every flag combination, each id checked against the vocabulary,
 * decoded and looked up.  A refused file must leave *out NULL with a
 * message.  Seeds: tests/fuzz/make_seeds.py.  Built by tests/fuzz.am. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "lamina/plugin.h"
#include "tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t tl = (size_t)data[size - 2] | (size_t)data[size - 1] << 8;
    size -= 2;
    if (tl > size)
        tl = size;
    size_t gl = size - tl;
    const char *text = (const char *)data + gl;

    uint8_t *copy = malloc(gl ? gl : 1);
    if (copy == NULL)
        abort();
    memcpy(copy, data, gl);
    char err[512];
    lamina_gguf *g = NULL;
    if (lamina_gguf_open_memory(copy, gl, "fuzz.gguf", &g, err, sizeof err) != 0) {
        free(copy);
        return 0;
    }
    lamina_tokenizer *t = (lamina_tokenizer *)0x1;
    err[0] = 0;
    int rc = lamina_tokenizer_load(g, &t, err, sizeof err);
    lamina_gguf_close(g);   /* the tokenizer borrows nothing */
    free(copy);
    if (rc != 0) {
        if (rc > 0 || t != NULL || err[0] == 0)
            abort();
        return 0;
    }
    int32_t nv = lamina_tokenizer_n_vocab(t);
    if (nv <= 0)
        abort();
    for (unsigned flags = 0; flags < 4; flags++) {
        lamina_token *ids = NULL;
        size_t n = 0;
        if (lamina_tokenizer_encode(t, text, tl, flags, &ids, &n, err, sizeof err) != 0)
            abort();
        for (size_t i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= nv)
                abort();
        char *out = NULL;
        size_t ol = 0;
        if (lamina_tokenizer_decode(t, ids, n, flags & 1 ? LAMINA_DECODE_SKIP_BOS : LAMINA_DECODE_RENDER_SPECIAL,
                                    &out, &ol, err, sizeof err) != 0 || out == NULL || out[ol] != 0)
            abort();
        free(out);
        for (size_t i = 0; i < n && i < 64; i++) {
            size_t len;
            const char *s = lamina_tokenizer_token_text(t, ids[i], &len);
            if (s == NULL)
                abort();
            lamina_token f = lamina_tokenizer_find(t, s, len);
            if (f < 0 || f >= nv)
                abort();
            (void)lamina_tokenizer_is_eog(t, ids[i]);
        }
        free(ids);
    }
    lamina_token sp[] = {lamina_tokenizer_bos(t), lamina_tokenizer_eos(t), lamina_tokenizer_eot(t),
                         lamina_tokenizer_eom(t), lamina_tokenizer_unk(t)};
    for (size_t i = 0; i < sizeof sp / sizeof sp[0]; i++)
        if (sp[i] != LAMINA_TOKEN_NONE && (sp[i] < 0 || sp[i] >= nv))
            abort();
    const char *tmpl = lamina_tokenizer_chat_template(t);
    if (tmpl != NULL)
        (void)strlen(tmpl);
    lamina_tokenizer_free(t);
    return 0;
}
