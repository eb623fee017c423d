/*
 * strbuf.h - the one growable byte buffer of the text code (chat
 * formats, reply parsing, the Jinja interpreter's output and temporaries).
 *
 *   lamina_strbuf b = {0};          empty, no limit
 *   b.limit = N;                    optional: at most N bytes
 *   lamina_strbuf_add(&b, s, n);    append; b.p stays NUL-terminated
 *   if (b.over) ...                 malloc failed or the limit was passed:
 *                                   later appends are ignored
 *   lamina_strbuf_free(&b);
 *
 * Appends return 0, or LAMINA_ENOMEM once the buffer is over, so callers
 * may either check each append or only `over` at the end.
 * Internal to liblamina (header only).
 */
#ifndef LAMINA_STRBUF_H
#define LAMINA_STRBUF_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/plugin.h"

typedef struct lamina_strbuf {
    char *p;                /* NULL until the first append */
    size_t n, cap, limit;   /* limit 0: none */
    int over;               /* limit passed or malloc failed */
} lamina_strbuf;

static inline int lamina_strbuf_add(lamina_strbuf *b, const char *s, size_t n)
{
    if (b->over)
        return LAMINA_ENOMEM;
    if ((b->limit && (b->n > b->limit || n > b->limit - b->n)) || n > SIZE_MAX / 4 - b->n) {
        b->over = 1;
        return LAMINA_ENOMEM;
    }
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->n + n + 1)
            nc *= 2;
        char *np = realloc(b->p, nc);
        if (np == NULL) {
            b->over = 1;
            return LAMINA_ENOMEM;
        }
        b->p = np;
        b->cap = nc;
    }
    if (n)
        memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return 0;
}

static inline int lamina_strbuf_str(lamina_strbuf *b, const char *s)
{
    return lamina_strbuf_add(b, s, strlen(s));
}

static inline int lamina_strbuf_ch(lamina_strbuf *b, char c)
{
    return lamina_strbuf_add(b, &c, 1);
}

/* drop the first `from` bytes (from <= n) */
static inline void lamina_strbuf_cut(lamina_strbuf *b, size_t from)
{
    if (b->p == NULL)
        return;
    memmove(b->p, b->p + from, b->n - from + 1);
    b->n -= from;
}

static inline void lamina_strbuf_free(lamina_strbuf *b)
{
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

#endif
