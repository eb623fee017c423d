/*
 * quant_tool - drive the reference conversions from a script.
 *
 *   quant_tool dequantize TYPE N   < row bytes   > N little-endian floats
 *   quant_tool quantize   TYPE N   < N floats    > row bytes
 *   quant_tool info       TYPE                   > "name block_size type_size"
 *
 * TYPE is the numeric lamina_dtype (= GGUF type).  Used by quant_gguf.py.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/quant.h"

static int read_all(void *buf, size_t n)
{
    return fread(buf, 1, n, stdin) == n ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: quant_tool dequantize|quantize|info TYPE [N]\n");
        return 2;
    }
    uint32_t type = (uint32_t)strtoul(argv[2], NULL, 10);
    const lamina_type_traits *t = lamina_type_get(type);
    if (strcmp(argv[1], "info") == 0) {
        printf("%s %u %u %d\n", t->name, t->block_size, t->type_size, t->is_quantized);
        return 0;
    }
    if (argc < 4)
        return 2;
    int64_t n = strtoll(argv[3], NULL, 10);
    uint64_t bytes = lamina_row_size(type, n);
    if (bytes == 0 || n <= 0 || n > (1 << 24)) {
        fprintf(stderr, "bad type/size\n");
        return 2;
    }
    float *f = malloc((size_t)n * sizeof *f);
    unsigned char *q = malloc(bytes);
    int rc = 1;
    if (!f || !q)
        goto out;
    if (strcmp(argv[1], "dequantize") == 0) {
        if (read_all(q, bytes) != 0) goto out;
        int r = lamina_dequantize_row(type, q, f, n);
        if (r != 0) { fprintf(stderr, "dequantize: %d\n", r); goto out; }
        if (fwrite(f, sizeof *f, (size_t)n, stdout) != (size_t)n) goto out;
    } else if (strcmp(argv[1], "quantize") == 0) {
        if (read_all(f, (size_t)n * sizeof *f) != 0) goto out;
        int r = lamina_quantize_row(type, f, q, n);
        if (r != 0) { fprintf(stderr, "quantize: %d\n", r); goto out; }
        if (fwrite(q, 1, bytes, stdout) != bytes) goto out;
    } else {
        goto out;
    }
    rc = 0;
out:
    free(f);
    free(q);
    return rc;
}
