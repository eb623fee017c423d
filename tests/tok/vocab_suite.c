/*
 * vocab_suite.c - runs one vocabulary of llama.cpp's tokenizer test suite
 * (models/ggml-vocab-NAME.gguf with .gguf.inp and .gguf.out) through
 * lamina's tokenizer, the way llama.cpp's test-tokenizer-0 does: every
 * input tokenized without BOS/EOS and with special tokens read as plain
 * text, the ids compared exactly.
 *
 *   vocab_suite VOCAB.gguf
 *
 * File formats: .inp holds the inputs, each followed by the marker line
 * "__ggml_vocab_test__" (the last marker may be missing); .out holds one
 * line per input with its expected ids, space-separated.
 *
 * Prints "EXACT TOTAL" on the first line, then, for the first mismatching
 * case, a few lines describing it (input, expected ids, ours).  Exit
 * status: 0 all exact, 1 some mismatch, 2 the files or the vocabulary
 * could not be read (the message is printed).  Used by vocab_suite.sh.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "tokenizer.h"

static const char MARKER[] = "\n__ggml_vocab_test__\n";

/* Whole file into a malloc'd buffer (NUL-terminated); NULL on error. */
static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, cap + 1);
            if (nb == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    buf[len] = 0;
    *n = len;
    return buf;
}

/* First occurrence of the marker in s[0..n), or NULL (inputs may hold NULs). */
static const char *find_marker(const char *s, size_t n)
{
    const size_t m = sizeof(MARKER) - 1;
    for (size_t i = 0; i + m <= n; i++)
        if (s[i] == MARKER[0] && memcmp(s + i, MARKER, m) == 0)
            return s + i;
    return NULL;
}

/* Input text with control characters and non-ASCII bytes escaped. */
static void print_escaped(const char *s, size_t n)
{
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c == '\r')
            fputs("\\r", stdout);
        else if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20 || c == 0x7F)
            printf("\\x%02X", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void print_ids(const char *label, const lamina_tokenizer *t, const lamina_token *ids,
                      size_t n)
{
    printf("%s (%zu):", label, n);
    for (size_t i = 0; i < n; i++) {
        size_t l;
        const char *p = lamina_tokenizer_piece(t, ids[i], 1, &l);
        printf(" %d", (int)ids[i]);
        putchar('=');
        print_escaped(p, l);
    }
    putchar('\n');
}

/* Parse one .out line into ids; returns the count or -1 if malformed. */
static long parse_ids(const char *line, size_t len, lamina_token *ids, size_t cap)
{
    size_t n = 0, i = 0;
    while (i < len) {
        while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
            i++;
        if (i == len)
            break;
        char *end;
        errno = 0;
        long v = strtol(line + i, &end, 10);
        if (end == line + i || errno != 0 || v < 0 || v > INT32_MAX || n == cap)
            return -1;
        ids[n++] = (lamina_token)v;
        i = (size_t)(end - line);
    }
    return (long)n;
}

/* The first mismatch, printed after the summary line. */
struct mismatch {
    size_t index;             /* 1-based case number; 0: none */
    const char *text;
    size_t len;
    lamina_token *want, *got;
    size_t n_want, n_got;
};

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s VOCAB.gguf\n", argv[0]);
        return 2;
    }
    const char *vocab = argv[1];
    size_t plen = strlen(vocab);
    char *pinp = malloc(plen + 5), *pout = malloc(plen + 5);
    if (pinp == NULL || pout == NULL)
        return 2;
    snprintf(pinp, plen + 5, "%s.inp", vocab);
    snprintf(pout, plen + 5, "%s.out", vocab);

    int rc = 2;
    size_t ninp = 0, nout = 0;
    char *inp = slurp(pinp, &ninp), *out = slurp(pout, &nout);
    lamina_gguf *g = NULL;
    lamina_tokenizer *t = NULL;
    lamina_token *want = NULL;
    struct mismatch first = {0};
    char err[2048] = "";
    if (inp == NULL || out == NULL) {
        printf("cannot read %s: %s\n", inp == NULL ? pinp : pout, strerror(errno));
        goto done;
    }
    if (lamina_gguf_open(vocab, &g, err, sizeof err) != 0 ||
        lamina_tokenizer_load(g, &t, err, sizeof err) != 0) {
        printf("cannot load: %s\n", err);
        goto done;
    }
    want = malloc((nout + 1) * sizeof(*want));
    if (want == NULL)
        goto done;

    /* Walk the inputs and the .out lines side by side. */
    const size_t mlen = sizeof(MARKER) - 1;
    size_t ip = 0, op = 0, total = 0, exact = 0;
    while (ip < ninp) {
        const char *next = find_marker(inp + ip, ninp - ip);
        const char *text = inp + ip;
        size_t len = next ? (size_t)(next - text) : ninp - ip;
        ip = next ? (size_t)(next - inp) + mlen : ninp;

        if (op >= nout) {
            printf("%s has more inputs than %s has lines\n", pinp, pout);
            goto done;
        }
        const char *nl = memchr(out + op, '\n', nout - op);
        size_t llen = nl ? (size_t)(nl - (out + op)) : nout - op;
        long nw = parse_ids(out + op, llen, want, nout + 1);
        op += llen + (nl != NULL);
        total++;
        if (nw < 0) {
            printf("%s: line %zu is not a list of token ids\n", pout, total);
            goto done;
        }

        lamina_token *got = NULL;
        size_t ng = 0;
        if (lamina_tokenizer_encode(t, text, len, 0, &got, &ng, err, sizeof err) != 0) {
            printf("case %zu: tokenize failed: %s\n", total, err);
            goto done;
        }
        if (ng == (size_t)nw && (ng == 0 || memcmp(got, want, ng * sizeof(*got)) == 0)) {
            exact++;
            free(got);
        } else if (first.index == 0) {
            first.index = total;
            first.text = text;
            first.len = len;
            first.got = got;
            first.n_got = ng;
            first.n_want = (size_t)nw;
            first.want = malloc((first.n_want + 1) * sizeof(*first.want));
            if (first.want == NULL)
                goto done;
            memcpy(first.want, want, first.n_want * sizeof(*want));
        } else {
            free(got);
        }
    }
    if (op < nout && strspn(out + op, " \t\r\n") != nout - op) {
        printf("%s has more lines than %s has inputs\n", pout, pinp);
        goto done;
    }
    printf("%zu %zu\n", exact, total);
    if (first.index != 0) {
        printf("first mismatch: case %zu, input ", first.index);
        print_escaped(first.text, first.len);
        putchar('\n');
        print_ids("expected", t, first.want, first.n_want);
        print_ids("ours    ", t, first.got, first.n_got);
    }
    rc = exact == total && total > 0 ? 0 : 1;

done:
    free(first.want);
    free(first.got);
    free(want);
    lamina_tokenizer_free(t);
    lamina_gguf_close(g);
    free(inp);
    free(out);
    free(pinp);
    free(pout);
    return rc;
}
