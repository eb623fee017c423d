/*
 * fuzz_gguf.c - libFuzzer harness for the GGUF reader.
 *
 * Each input is parsed from an exactly-sized buffer (so AddressSanitizer
 * sees any read past its end); when it opens, every key, value, array
 * element and tensor byte is read back through the API.  A failed open
 * must leave *out NULL and a non-empty message.
 *
 * Built by tests/fuzz.am; seeds in tests/fuzz/corpus/gguf (from
 * `tests/gguf/test_gguf --write-seeds DIR` and make_seeds.py's tokload files).
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    err[0] = 0;
    lamina_gguf *g = (lamina_gguf *)0x1;
    int rc = lamina_gguf_open_memory(data, size, "fuzz.gguf", &g, err, sizeof err);
    if (rc != 0) {
        if (g != NULL || err[0] == 0 || rc > 0) abort();
        return 0;
    }
    volatile unsigned sum = 0;
    for (int64_t i = 0; i < lamina_gguf_n_kv(g); i++) {
        const char *k = lamina_gguf_key(g, i);
        const char *s;
        size_t len;
        uint32_t et, u;
        uint64_t n;
        const void *d;
        int64_t v;
        float f;
        int b;
        if (lamina_gguf_find(g, k) != i) abort();
        if (lamina_gguf_get_str(g, k, &s, &len, NULL, 0) == 0)
            for (size_t j = 0; j < len; j++) sum += (uint8_t)s[j];
        if (lamina_gguf_get_arr(g, k, &et, &n, &d, NULL, 0) == 0) {
            for (uint64_t j = 0; j < n; j++) {
                if (et == LAMINA_GGUF_STRING) {
                    if (lamina_gguf_arr_str(g, k, j, &s, &len) != 0) abort();
                    for (size_t q = 0; q < len; q++) sum += (uint8_t)s[q];
                } else {
                    sum += (unsigned)lamina_gguf_arr_i64(et, d, j);
                    sum += (unsigned)(lamina_gguf_arr_f64(et, d, j) != 0);
                }
            }
        }
        lamina_gguf_get_u32(g, k, &u, err, sizeof err);
        lamina_gguf_get_i64(g, k, &v, err, sizeof err);
        lamina_gguf_get_f32(g, k, &f, err, sizeof err);
        lamina_gguf_get_bool(g, k, &b, err, sizeof err);
    }
    for (int64_t i = 0; i < lamina_gguf_n_tensors(g); i++) {
        const lamina_gguf_tensor *t = lamina_gguf_tensor_at(g, i);
        if (lamina_gguf_tensor_find(g, t->name) != t) abort();
        if (t->offset < lamina_gguf_data_offset(g) || t->offset + t->size > size) abort();
        const uint8_t *p = t->data;
        for (uint64_t j = 0; j < t->size; j++) sum += p[j];
    }
    (void)sum;
    lamina_gguf_close(g);
    return 0;
}
