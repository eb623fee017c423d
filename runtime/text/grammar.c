/* grammar.c - JSON schema -> token constraint (see grammar.h). */
#include "config.h"

#include "grammar.h"

#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gbnf.h"
#include "lamina/plugin.h"

#define MAXD LAMINA_GRAMMAR_MAX_DEPTH
#define MAXS 8              /* parse stacks (live alternatives) kept */
#define WS_MAX 20           /* spaces or tabs after a newline */
#define MAX_NODES 4096
#define MAX_PROPS 64
#define MAX_LITS 4096
#define MAX_MIN_ITEMS 1024
#define MAX_MIN_LEN 65536
#define INT_DIGITS 16
#define FRAC_DIGITS 16
#define EXP_DIGITS 2
#define INF_NEED 1000000

__extension__ typedef __int128 i128;

/* A pattern or format: a DFA over the decoded string content's bytes.
 * Every state can still reach an accepting one. */
typedef struct gdfa {
    int32_t n, ncls;
    uint8_t cls[256];       /* byte -> class */
    int32_t *next;          /* [n * ncls]; -1: not allowed */
    uint8_t *acc;           /* [n] the content may end here */
} gdfa;

/* N_SEQ and N_TERM come from GBNF grammars (gbnf.h): a sequence of nodes
 * and a terminal (a DFA whose accepting states end it). */
enum { N_OBJECT, N_ARRAY, N_STRING, N_NUMBER, N_INTEGER, N_LITERAL, N_ALT, N_SEQ, N_TERM };

typedef struct gprop {
    char *name;             /* JSON-encoded, without the quotes */
    size_t len;
    int32_t node;
    int required;
} gprop;

typedef struct gnode {
    int kind;
    int32_t need;           /* frames needed to complete (this one included) */
    /* object */
    gprop *props;
    int n_props;
    int32_t addl;           /* -1: no additional properties */
    /* array */
    int32_t items;          /* -1: none beyond the prefix */
    int32_t *prefix;
    int n_prefix;
    int32_t min_items, max_items;   /* max < 0: unbounded */
    /* string */
    int32_t min_len, max_len;       /* max < 0: unbounded */
    int32_t dfa;                    /* pattern/format: index in dfas, or -1 */
    /* number, integer: bounds (ranged), in units of 10^-16 (number) or 1 */
    int ranged;
    i128 num_lo, num_hi;
    i128 step;              /* multipleOf in the same units; 0: none */
    /* literal: sorted, distinct */
    char **lits;
    size_t *lit_lens;
    int n_lits;
    /* alternatives (after flattening: never N_ALT themselves) */
    int32_t *alts;
    int n_alts;
    /* sequence: its parts in order (the last one replaces the sequence's
     * frame when it starts, so right recursion takes no stack) */
    int32_t *seq;
    int n_seq;
    uint8_t nullable;       /* matches the empty text (sequences, alternatives) */
} gnode;

struct lamina_grammar {
    int refs;
    gnode *nodes;
    int32_t n_nodes, cap_nodes;
    int32_t root;
    int32_t any;            /* the "any value" node, -1 until made */
    gdfa *dfas;
    int32_t n_dfas;
    size_t dfa_cells;       /* transitions in all the DFAs */
    int gbnf;               /* from GBNF: finitely many matcher states, memoized */
};

/* ------------------------------------------------------------------ */
/* Compiling                                                          */

typedef struct cctx {
    lamina_grammar *g;
    json_t *root;
    json_t **memo_key;
    int32_t *memo_node;
    int n_memo, cap_memo;
    int depth;
    char *err;
    size_t err_size;
} cctx;

static int cfail(cctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int cfail(cctx *c, const char *fmt, ...)
{
    if (c->err && c->err_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, c->err_size, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int32_t new_node(cctx *c, int kind)
{
    lamina_grammar *g = c->g;
    if (g->n_nodes >= MAX_NODES) return cfail(c, "the schema is too large (more than %d nodes)", MAX_NODES);
    if (g->n_nodes == g->cap_nodes) {
        int32_t cap = g->cap_nodes ? g->cap_nodes * 2 : 32;
        gnode *n = realloc(g->nodes, (size_t)cap * sizeof *n);
        if (!n) return cfail(c, "out of memory");
        g->nodes = n;
        g->cap_nodes = cap;
    }
    gnode *n = &g->nodes[g->n_nodes];
    memset(n, 0, sizeof *n);
    n->kind = kind;
    n->addl = -1;
    n->items = -1;
    n->max_items = -1;
    n->max_len = -1;
    n->dfa = -1;
    return g->n_nodes++;
}

static int add_alt(cctx *c, int32_t alt_node, int32_t x)
{
    gnode *n = &c->g->nodes[alt_node];
    int32_t *a = realloc(n->alts, (size_t)(n->n_alts + 1) * sizeof *a);
    if (!a) return cfail(c, "out of memory");
    n->alts = a;
    a[n->n_alts++] = x;
    return 0;
}

static int cmp_lit(const void *x, const void *y)
{
    const char *const *a = x, *const *b = y;
    return strcmp(*a, *b);
}

/* A literal node from compact JSON texts of values. */
static int32_t literal_node(cctx *c, json_t **vals, int n)
{
    if (n > MAX_LITS) return cfail(c, "enum with more than %d values", MAX_LITS);
    int32_t id = new_node(c, N_LITERAL);
    if (id < 0) return -1;
    char **l = calloc((size_t)n + 1, sizeof *l);
    size_t *ll = calloc((size_t)n + 1, sizeof *ll);
    gnode *nd = &c->g->nodes[id];
    nd->lits = l;
    nd->lit_lens = ll;
    if (!l || !ll) return cfail(c, "out of memory");
    for (int i = 0; i < n; i++) {
        l[i] = json_dumps(vals[i], JSON_COMPACT | JSON_ENCODE_ANY);
        if (!l[i]) { nd->n_lits = i; return cfail(c, "out of memory"); }
        nd->n_lits = i + 1;
    }
    qsort(l, (size_t)n, sizeof *l, cmp_lit);
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (k > 0 && strcmp(l[k - 1], l[i]) == 0) { free(l[i]); continue; }
        l[k++] = l[i];
    }
    nd->n_lits = k;
    for (int i = 0; i < k; i++) ll[i] = strlen(l[i]);
    return id;
}

static int32_t literal_words(cctx *c, const char *const *words, int n)
{
    json_t *v[3];
    for (int i = 0; i < n; i++) v[i] = json_loads(words[i], JSON_DECODE_ANY, NULL);
    int32_t id = -1;
    if (v[0] && (n < 2 || v[1]) && (n < 3 || v[2])) id = literal_node(c, v, n);
    else cfail(c, "out of memory");
    for (int i = 0; i < n; i++) json_decref(v[i]);
    return id;
}

/* ------------------------------------------------------------------ */
/* Patterns and formats: a regular expression over the decoded string  */
/* content, compiled to a DFA over its UTF-8 bytes                      */

#define RX_MAX_NFA 20000    /* NFA states per pattern */
#define RX_MAX_DFA 4000     /* DFA states per pattern (after length folding) */
#define RX_MAX_REPEAT 1000  /* largest {n,m} count */
#define RX_MAX_RANGES 512   /* code point ranges in one class */
#define RX_MAX_GROUPS 64    /* group nesting */
#define RX_MAX_WORK 30000000 /* NFA state visits while building the DFA */
#define RX_MAX_CELLS (8u << 20) /* DFA transitions in one schema (32 MiB) */

typedef struct nfa_edge { int32_t from, to; int16_t lo, hi; } nfa_edge;   /* lo < 0: epsilon */

typedef struct rxc {
    const char *src;
    size_t len, pos;
    nfa_edge *e;
    int32_t ne, cap, ns;
    int depth;
    int any_byte;           /* GBNF terminals: every byte may be produced */
    cctx *c;
    const char *kw, *path;
} rxc;

typedef struct rfrag { int32_t s, t; } rfrag;

typedef struct cset { int n; uint32_t lo[RX_MAX_RANGES], hi[RX_MAX_RANGES]; } cset;

static int rx_fail(rxc *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int rx_fail(rxc *r, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!r->kw) return cfail(r->c, "%s: %s", r->path, msg);
    return cfail(r->c, "keyword '%s' at %s: %s", r->kw, r->path, msg);
}

static int32_t rx_state(rxc *r)
{
    if (r->ns >= RX_MAX_NFA) return rx_fail(r, "the pattern is too large (more than %d NFA states)", RX_MAX_NFA);
    return r->ns++;
}

static int rx_edge(rxc *r, int32_t a, int32_t b, int lo, int hi)
{
    if (r->ne == r->cap) {
        int32_t cap = r->cap ? r->cap * 2 : 256;
        nfa_edge *e = realloc(r->e, (size_t)cap * sizeof *e);
        if (!e) return cfail(r->c, "out of memory");
        r->e = e;
        r->cap = cap;
    }
    r->e[r->ne++] = (nfa_edge){ a, b, (int16_t)lo, (int16_t)hi };
    return 0;
}

static int rx_eps(rxc *r, int32_t a, int32_t b) { return rx_edge(r, a, b, -1, -1); }

static int cset_add(rxc *r, cset *cs, uint32_t lo, uint32_t hi)
{
    if (cs->n >= RX_MAX_RANGES) return rx_fail(r, "a character class has more than %d ranges", RX_MAX_RANGES);
    cs->lo[cs->n] = lo;
    cs->hi[cs->n++] = hi;
    return 0;
}

/* Sort and merge the ranges. */
static void cset_norm(cset *cs)
{
    for (int i = 1; i < cs->n; i++)     /* insertion sort: classes are small */
        for (int j = i; j > 0 && cs->lo[j - 1] > cs->lo[j]; j--) {
            uint32_t t = cs->lo[j]; cs->lo[j] = cs->lo[j - 1]; cs->lo[j - 1] = t;
            t = cs->hi[j]; cs->hi[j] = cs->hi[j - 1]; cs->hi[j - 1] = t;
        }
    int k = 0;
    for (int i = 0; i < cs->n; i++) {
        if (k > 0 && cs->lo[i] <= cs->hi[k - 1] + 1) {
            if (cs->hi[i] > cs->hi[k - 1]) cs->hi[k - 1] = cs->hi[i];
            continue;
        }
        cs->lo[k] = cs->lo[i];
        cs->hi[k++] = cs->hi[i];
    }
    cs->n = k;
}

/* Complement within [0, top]. */
static void cset_negate(cset *cs, uint32_t top)
{
    cset_norm(cs);
    cset o;
    o.n = 0;
    uint32_t next = 0;
    for (int i = 0; i < cs->n && next <= top; i++) {
        if (cs->lo[i] > next) { o.lo[o.n] = next; o.hi[o.n++] = cs->lo[i] - 1 < top ? cs->lo[i] - 1 : top; }
        next = cs->hi[i] + 1;
    }
    if (next <= top) { o.lo[o.n] = next; o.hi[o.n++] = top; }
    *cs = o;
}

static int utf8_len(uint32_t c) { return c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4; }

static void utf8_enc(uint32_t c, uint8_t *b)
{
    int n = utf8_len(c);
    if (n == 1) { b[0] = (uint8_t)c; return; }
    for (int i = n - 1; i > 0; i--) { b[i] = (uint8_t)(0x80 | (c & 0x3F)); c >>= 6; }
    b[0] = (uint8_t)((n == 2 ? 0xC0 : n == 3 ? 0xE0 : 0xF0) | c);
}

/* Edges from s to t for the code points lo..hi (no surrogates), as
 * sequences of byte ranges. */
static int emit_range(rxc *r, int32_t s, int32_t t, uint32_t lo, uint32_t hi)
{
    static const uint32_t lim[3] = { 0x7F, 0x7FF, 0xFFFF };
    for (int i = 0; i < 3; i++)
        if (lo <= lim[i] && hi > lim[i])
            return emit_range(r, s, t, lo, lim[i]) || emit_range(r, s, t, lim[i] + 1, hi) ? -1 : 0;
    if (hi < 0x80) return rx_edge(r, s, t, (int)lo, (int)hi);
    int n = utf8_len(lo);
    for (int i = 1; i < n; i++) {
        uint32_t m = (1u << (6 * i)) - 1;
        if ((lo & ~m) != (hi & ~m)) {
            if ((lo & m) != 0)
                return emit_range(r, s, t, lo, lo | m) || emit_range(r, s, t, (lo | m) + 1, hi) ? -1 : 0;
            if ((hi & m) != m)
                return emit_range(r, s, t, lo, (hi & ~m) - 1) || emit_range(r, s, t, hi & ~m, hi) ? -1 : 0;
        }
    }
    uint8_t a[4], b[4];
    utf8_enc(lo, a);
    utf8_enc(hi, b);
    int32_t cur = s;
    for (int i = 0; i < n; i++) {
        int32_t nx = i == n - 1 ? t : rx_state(r);
        if (nx < 0 || rx_edge(r, cur, nx, a[i], b[i])) return -1;
        cur = nx;
    }
    return 0;
}

static int rx_set_frag(rxc *r, cset *cs, rfrag *out)
{
    cset_norm(cs);
    out->s = rx_state(r);
    out->t = rx_state(r);
    if (out->s < 0 || out->t < 0) return -1;
    for (int i = 0; i < cs->n; i++) {
        uint32_t lo = cs->lo[i], hi = cs->hi[i] > 0x10FFFF ? 0x10FFFF : cs->hi[i];
        if (lo < 0xD800 && emit_range(r, out->s, out->t, lo, hi < 0xD7FF ? hi : 0xD7FF)) return -1;
        if (hi > 0xDFFF && emit_range(r, out->s, out->t, lo > 0xE000 ? lo : 0xE000, hi)) return -1;
    }
    return 0;
}

static int rx_peek(const rxc *r) { return r->pos < r->len ? (unsigned char)r->src[r->pos] : -1; }

/* The code point at pos (the text is valid UTF-8), advancing past it. */
static uint32_t rx_cp(rxc *r)
{
    const unsigned char *p = (const unsigned char *)r->src + r->pos;
    uint32_t c = p[0];
    int n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    if (r->pos + (size_t)n > r->len) n = 1;
    if (n > 1) {
        c &= n == 2 ? 0x1F : n == 3 ? 0x0F : 0x07;
        for (int i = 1; i < n; i++) c = c << 6 | (p[i] & 0x3F);
    }
    r->pos += (size_t)n;
    return c;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* After a backslash (pos at the escaped character): a class shorthand
 * (added to cs, returns 1) or a literal (*cp, returns 0); -1 refused. */
static int rx_escape(rxc *r, cset *cs, uint32_t *cp)
{
    size_t at = r->pos - 1;
    int e = rx_peek(r);
    if (e < 0) return rx_fail(r, "trailing backslash at position %zu", at);
    r->pos++;
    switch (e) {
    case 'd': return cset_add(r, cs, '0', '9') ? -1 : 1;
    case 'D': return cset_add(r, cs, 0, '0' - 1) || cset_add(r, cs, '9' + 1, 0x7F) ? -1 : 1;
    case 'w':
        return cset_add(r, cs, '0', '9') || cset_add(r, cs, 'A', 'Z') || cset_add(r, cs, '_', '_') ||
               cset_add(r, cs, 'a', 'z') ? -1 : 1;
    case 'W':
        return cset_add(r, cs, 0, '0' - 1) || cset_add(r, cs, '9' + 1, 'A' - 1) || cset_add(r, cs, 'Z' + 1, '_' - 1) ||
               cset_add(r, cs, '_' + 1, 'a' - 1) || cset_add(r, cs, 'z' + 1, 0x7F) ? -1 : 1;
    case 's': return cset_add(r, cs, 0x09, 0x0D) || cset_add(r, cs, ' ', ' ') ? -1 : 1;
    case 'S': return cset_add(r, cs, 0, 0x08) || cset_add(r, cs, 0x0E, 0x1B) || cset_add(r, cs, 0x21, 0x7F) ? -1 : 1;
    case 'n': *cp = '\n'; return 0;
    case 't': *cp = '\t'; return 0;
    case 'r': *cp = '\r'; return 0;
    case 'f': *cp = '\f'; return 0;
    case 'v': *cp = '\v'; return 0;
    case 'a': *cp = 7; return 0;
    case '0': *cp = 0; return 0;
    case 'x': case 'u': case 'U': {
        int n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
        uint32_t v = 0;
        for (int i = 0; i < n; i++) {
            int h = hexval(rx_peek(r));
            if (h < 0) return rx_fail(r, "escape '\\%c' at position %zu: expected %d hex digits", e, at, n);
            v = v * 16 + (uint32_t)h;
            r->pos++;
        }
        if (v > 0x10FFFF) return rx_fail(r, "escape at position %zu: not a code point", at);
        *cp = v;
        return 0;
    }
    case 'b': case 'B': case 'A': case 'Z': case 'z': case 'G':
        return rx_fail(r, "assertion '\\%c' at position %zu is not supported", e, at);
    case 'p': case 'P':
        return rx_fail(r, "unicode property class '\\%c' at position %zu is not supported", e, at);
    default:
        if (e >= '1' && e <= '9') return rx_fail(r, "backreference '\\%c' at position %zu is not supported", e, at);
        if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || e >= 0x80)
            return rx_fail(r, "escape '\\%c' at position %zu is not supported", e, at);
        *cp = (uint32_t)e;
        return 0;
    }
}

static int rx_class(rxc *r, rfrag *out)
{
    size_t at = r->pos;
    r->pos++;   /* [ */
    cset *cs = malloc(sizeof *cs);
    if (!cs) return cfail(r->c, "out of memory");
    cs->n = 0;
    int neg = 0, shorthand = 0, first = 1, rc = -1;
    if (rx_peek(r) == '^') { neg = 1; r->pos++; }
    for (;;) {
        int ch = rx_peek(r);
        if (ch < 0) { rx_fail(r, "missing ']' for the class at position %zu", at); goto out; }
        if (ch == ']' && !first) { r->pos++; break; }
        first = 0;
        uint32_t lo, hi;
        if (ch == '\\') {
            r->pos++;
            int k = rx_escape(r, cs, &lo);
            if (k < 0) goto out;
            if (k == 1) { shorthand = 1; continue; }
        } else lo = rx_cp(r);
        hi = lo;
        if (rx_peek(r) == '-' && r->pos + 1 < r->len && r->src[r->pos + 1] != ']') {
            size_t dash = r->pos;
            r->pos++;
            if (rx_peek(r) == '\\') {
                r->pos++;
                int k = rx_escape(r, cs, &hi);
                if (k < 0) goto out;
                if (k == 1) { rx_fail(r, "bad range at position %zu", dash); goto out; }
            } else hi = rx_cp(r);
            if (hi < lo) { rx_fail(r, "bad range at position %zu", dash); goto out; }
        }
        if (cset_add(r, cs, lo, hi)) goto out;
    }
    /* a negated class with \d, \w or \s stays in ASCII: Python's shorthands
     * also match non-ASCII characters */
    if (neg) cset_negate(cs, shorthand ? 0x7F : 0x10FFFF);
    rc = rx_set_frag(r, cs, out);
out:
    free(cs);
    return rc;
}

static int rx_alt(rxc *r, rfrag *out);

static int rx_atom(rxc *r, rfrag *out)
{
    size_t at = r->pos;
    int ch = rx_peek(r);
    if (ch == '(') {
        r->pos++;
        if (rx_peek(r) == '?') {
            if (r->pos + 1 < r->len && r->src[r->pos + 1] == ':') r->pos += 2;
            else if (r->pos + 2 < r->len && r->src[r->pos + 1] == 'P' && r->src[r->pos + 2] == '<') {
                const char *gt = memchr(r->src + r->pos, '>', r->len - r->pos);
                if (!gt) return rx_fail(r, "bad group name at position %zu", at);
                r->pos = (size_t)(gt - r->src) + 1;
            } else
                return rx_fail(r, "group '(?%c' at position %zu (lookaround or flags) is not supported",
                               r->pos + 1 < r->len ? r->src[r->pos + 1] : ' ', at);
        }
        if (++r->depth > RX_MAX_GROUPS) return rx_fail(r, "groups nested more than %d deep", RX_MAX_GROUPS);
        if (rx_alt(r, out)) return -1;
        r->depth--;
        if (rx_peek(r) != ')') return rx_fail(r, "missing ')' for the group at position %zu", at);
        r->pos++;
        return 0;
    }
    if (ch == '[') return rx_class(r, out);
    if (ch == '*' || ch == '+' || ch == '?' || ch == '{')
        return rx_fail(r, "nothing to repeat at position %zu", at);
    cset cs;
    cs.n = 0;
    if (ch == '.') {
        r->pos++;
        if (cset_add(r, &cs, 0, '\n' - 1) || cset_add(r, &cs, '\n' + 1, 0x10FFFF)) return -1;
        return rx_set_frag(r, &cs, out);
    }
    uint32_t cp;
    if (ch == '\\') {
        r->pos++;
        int k = rx_escape(r, &cs, &cp);
        if (k < 0) return -1;
        if (k == 1) return rx_set_frag(r, &cs, out);
    } else cp = rx_cp(r);
    if (cset_add(r, &cs, cp, cp)) return -1;
    return rx_set_frag(r, &cs, out);
}

static int rx_count(rxc *r, long *v)
{
    long x = -1;
    while (rx_peek(r) >= '0' && rx_peek(r) <= '9') {
        x = (x < 0 ? 0 : x) * 10 + (rx_peek(r) - '0');
        if (x > 1000000) x = 1000000;
        r->pos++;
    }
    *v = x;
    return x >= 0;
}

static int rx_repeat(rxc *r, rfrag *out)
{
    size_t start = r->pos;
    rfrag a;
    if (rx_atom(r, &a)) return -1;
    size_t qat = r->pos;
    int ch = rx_peek(r);
    long mn, mx;
    if (ch == '*') mn = 0, mx = -1;
    else if (ch == '+') mn = 1, mx = -1;
    else if (ch == '?') mn = 0, mx = 1;
    else if (ch == '{') {
        r->pos++;
        int h1 = rx_count(r, &mn), h2 = 0;
        if (!h1) mn = 0;
        if (rx_peek(r) == ',') {
            r->pos++;
            h2 = rx_count(r, &mx);
            if (!h2) mx = -1;
        } else mx = mn;
        if ((!h1 && !h2) || rx_peek(r) != '}')
            return rx_fail(r, "'{' at position %zu is not a quantifier (escape it as '\\{')", qat);
        if (mn > RX_MAX_REPEAT || mx > RX_MAX_REPEAT)
            return rx_fail(r, "quantifier at position %zu: counts above %d are not supported", qat, RX_MAX_REPEAT);
        if (mx >= 0 && mx < mn) return rx_fail(r, "quantifier at position %zu: min > max", qat);
    } else { *out = a; return 0; }
    r->pos++;
    size_t after = r->pos;
    ch = rx_peek(r);
    if (ch == '?') return rx_fail(r, "lazy quantifier at position %zu is not supported", after);
    if (ch == '+') return rx_fail(r, "possessive quantifier at position %zu is not supported", after);
    if (ch == '*' || ch == '{') return rx_fail(r, "multiple repeat at position %zu", after);
    int used = 0;
    int32_t s = rx_state(r), cur = s;
    if (s < 0) return -1;
    /* each copy of the atom: the one parsed, then parsed again */
#define RX_COPY(x) do { if (!used) { x = a; used = 1; } else { r->pos = start; if (rx_atom(r, &x)) return -1; r->pos = after; } } while (0)
    for (long i = 0; i < mn; i++) {
        rfrag x;
        RX_COPY(x);
        if (rx_eps(r, cur, x.s)) return -1;
        cur = x.t;
    }
    if (mx < 0) {
        rfrag x;
        RX_COPY(x);
        int32_t q = rx_state(r);
        if (q < 0 || rx_eps(r, cur, q) || rx_eps(r, q, x.s) || rx_eps(r, x.t, q)) return -1;
        cur = q;
    } else if (mx > mn) {
        int32_t t = rx_state(r);
        if (t < 0) return -1;
        for (long i = mn; i < mx; i++) {
            rfrag x;
            RX_COPY(x);
            if (rx_eps(r, cur, x.s) || rx_eps(r, cur, t)) return -1;
            cur = x.t;
        }
        if (rx_eps(r, cur, t)) return -1;
        cur = t;
    }
#undef RX_COPY
    out->s = s;
    out->t = cur;
    return 0;
}

static int rx_cat(rxc *r, rfrag *out)
{
    int32_t s = rx_state(r), cur = s;
    if (s < 0) return -1;
    for (;;) {
        int ch = rx_peek(r);
        if (ch < 0 || ch == '|' || ch == ')') break;
        if (ch == '^') {
            if (r->depth == 0 && cur == s) { r->pos++; continue; }
            return rx_fail(r, "anchor '^' at position %zu (only at the start of the pattern) is not supported", r->pos);
        }
        if (ch == '$') {
            if (r->depth == 0 && (r->pos + 1 == r->len || r->src[r->pos + 1] == '|')) { r->pos++; continue; }
            return rx_fail(r, "anchor '$' at position %zu (only at the end of the pattern) is not supported", r->pos);
        }
        rfrag a = { -1, -1 };
        if (rx_repeat(r, &a) || rx_eps(r, cur, a.s)) return -1;
        cur = a.t;
    }
    out->s = s;
    out->t = cur;
    return 0;
}

static int rx_alt(rxc *r, rfrag *out)
{
    rfrag f;
    if (rx_cat(r, &f)) return -1;
    if (rx_peek(r) != '|') { *out = f; return 0; }
    int32_t s = rx_state(r), t = rx_state(r);
    if (s < 0 || t < 0 || rx_eps(r, s, f.s) || rx_eps(r, f.t, t)) return -1;
    while (rx_peek(r) == '|') {
        r->pos++;
        if (rx_cat(r, &f) || rx_eps(r, s, f.s) || rx_eps(r, f.t, t)) return -1;
    }
    out->s = s;
    out->t = t;
    return 0;
}

/* The bytes a JSON string's content can decode to (raw, or through the
 * escapes \b \t \n \f \r); other control characters would need \u escapes,
 * which constrained strings do not use. */
static int producible(unsigned b) { return b >= 0x20 || (b >= 0x08 && b <= 0x0A) || b == 0x0C || b == 0x0D; }

static int cmp_i32(const void *x, const void *y)
{
    int32_t a = *(const int32_t *)x, b = *(const int32_t *)y;
    return (a > b) - (a < b);
}

typedef struct dfab {       /* DFA under construction */
    int32_t n, cap;
    int32_t *off, *len, *cnt;       /* per state: its NFA set in pool, char count */
    int32_t *pool;
    size_t npool, cappool;
    int32_t *next;                  /* [cap * ncls] */
    int32_t *hash;                  /* open addressing, -1 empty */
    int32_t hsize;
} dfab;

static uint32_t set_hash(const int32_t *s, int32_t n, int32_t cnt)
{
    uint32_t h = 2166136261u ^ (uint32_t)cnt;
    for (int32_t i = 0; i < n; i++) h = (h ^ (uint32_t)s[i]) * 16777619u;
    return h;
}

/* The DFA state for NFA set s (sorted) and count: found or added; -1 with
 * the error set. */
static int32_t dfab_get(rxc *r, dfab *d, const int32_t *s, int32_t n, int32_t cnt, int ncls)
{
    uint32_t h = set_hash(s, n, cnt);
    int32_t i = (int32_t)(h & (uint32_t)(d->hsize - 1));
    while (d->hash[i] >= 0) {
        int32_t k = d->hash[i];
        if (d->len[k] == n && d->cnt[k] == cnt && !memcmp(d->pool + d->off[k], s, (size_t)n * sizeof *s)) return k;
        i = (i + 1) & (d->hsize - 1);
    }
    if (d->n >= RX_MAX_DFA)
        return rx_fail(r, "the pattern is too complex (more than %d automaton states%s)", RX_MAX_DFA,
                       "; with minLength/maxLength, each length counts");
    if (d->n == d->cap) {
        int32_t cap = d->cap ? d->cap * 2 : 64;
        int32_t *o = realloc(d->off, (size_t)cap * sizeof *o);
        if (o) d->off = o;
        int32_t *l = realloc(d->len, (size_t)cap * sizeof *l);
        if (l) d->len = l;
        int32_t *cn = realloc(d->cnt, (size_t)cap * sizeof *cn);
        if (cn) d->cnt = cn;
        int32_t *nx = realloc(d->next, (size_t)cap * (size_t)ncls * sizeof *nx);
        if (nx) d->next = nx;
        if (!o || !l || !cn || !nx) return cfail(r->c, "out of memory");
        d->cap = cap;
    }
    if (d->npool + (size_t)n > d->cappool) {
        size_t cap = (d->cappool ? d->cappool * 2 : 4096) + (size_t)n;
        int32_t *p = realloc(d->pool, cap * sizeof *p);
        if (!p) return cfail(r->c, "out of memory");
        d->pool = p;
        d->cappool = cap;
    }
    int32_t k = d->n++;
    d->off[k] = (int32_t)d->npool;
    d->len[k] = n;
    d->cnt[k] = cnt;
    memcpy(d->pool + d->npool, s, (size_t)n * sizeof *s);
    d->npool += (size_t)n;
    d->hash[i] = k;
    return k;
}

/* Compile the NFA (start, final) with the length bounds folded in
 * (characters counted at UTF-8 lead bytes; max_len < 0: none) into *out:
 * dead states pruned, state 0 the start. */
static int rx_build_dfa(rxc *r, int32_t start, int32_t final, int32_t min_len, int32_t max_len, gdfa *out)
{
    int32_t ns = r->ns;
    int rc = -1;
    int32_t *eoff = calloc((size_t)ns + 1, sizeof *eoff), *eidx = malloc(((size_t)r->ne + 1) * sizeof *eidx);
    int32_t *mark = calloc((size_t)ns, sizeof *mark), *stack = malloc((size_t)ns * sizeof *stack);
    int32_t *set = malloc((size_t)ns * sizeof *set);
    dfab d;
    memset(&d, 0, sizeof d);
    d.hsize = 8192;
    d.hash = malloc((size_t)d.hsize * sizeof *d.hash);
    int32_t *live = NULL, *rcnt = NULL, *roff = NULL, *radj = NULL, *map = NULL;
    if (!eoff || !eidx || !mark || !stack || !set || !d.hash) { cfail(r->c, "out of memory"); goto done; }
    memset(d.hash, -1, (size_t)d.hsize * sizeof *d.hash);
    for (int32_t i = 0; i < r->ne; i++) eoff[r->e[i].from + 1]++;
    for (int32_t i = 0; i < ns; i++) eoff[i + 1] += eoff[i];
    {
        int32_t *fill = calloc((size_t)ns, sizeof *fill);
        if (!fill) { cfail(r->c, "out of memory"); goto done; }
        for (int32_t i = 0; i < r->ne; i++) eidx[eoff[r->e[i].from] + fill[r->e[i].from]++] = i;
        free(fill);
    }
    /* byte classes: uniform in edges, producibility and lead/continuation */
    uint8_t bnd[257];
    memset(bnd, 0, sizeof bnd);
    static const int fixed[] = { 0x08, 0x0B, 0x0C, 0x0E, 0x20, 0x80, 0xC0 };
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) bnd[fixed[i]] = 1;
    for (int32_t i = 0; i < r->ne; i++)
        if (r->e[i].lo >= 0) { bnd[r->e[i].lo] = 1; bnd[r->e[i].hi + 1] = 1; }
    int ncls = 0, rep[256];
    for (int b = 0; b < 256; b++) {
        if (b > 0 && bnd[b]) ncls++;
        if (b == 0 || bnd[b]) rep[ncls] = b;
        out->cls[b] = (uint8_t)ncls;
    }
    ncls++;
    out->ncls = ncls;
    int32_t cap_cnt = max_len >= 0 ? max_len : min_len;
    int32_t stamp = 0;
    /* closure of {start} */
    int32_t n = 0, sp = 0;
    stamp++;
    mark[start] = stamp;
    stack[sp++] = start;
#define RX_CLOSE() \
    while (sp) { \
        int32_t x = stack[--sp]; \
        set[n++] = x; \
        for (int32_t j = eoff[x]; j < eoff[x + 1]; j++) { \
            const nfa_edge *ed = &r->e[eidx[j]]; \
            if (ed->lo < 0 && mark[ed->to] != stamp) { mark[ed->to] = stamp; stack[sp++] = ed->to; } \
        } \
    }
    RX_CLOSE();
    qsort(set, (size_t)n, sizeof *set, cmp_i32);
    if (dfab_get(r, &d, set, n, 0, ncls) < 0) goto done;
    long work = 0;
    for (int32_t k = 0; k < d.n; k++) {
        work += (long)d.len[k] * ncls;
        if (work > RX_MAX_WORK) {
            rx_fail(r, "the pattern is too complex (its automaton takes too long to build)");
            goto done;
        }
        for (int cl = 0; cl < ncls; cl++) {
            int b = rep[cl];
            int32_t to = -1;
            int32_t cnt = d.cnt[k] + (b < 0x80 || b >= 0xC0);
            if (cnt > cap_cnt) cnt = max_len >= 0 ? -1 : cap_cnt;
            if ((r->any_byte || producible((unsigned)b)) && cnt >= 0) {
                stamp++;
                n = 0;
                sp = 0;
                for (int32_t i = 0; i < d.len[k]; i++) {
                    int32_t x = d.pool[d.off[k] + i];
                    for (int32_t j = eoff[x]; j < eoff[x + 1]; j++) {
                        const nfa_edge *ed = &r->e[eidx[j]];
                        if (ed->lo >= 0 && ed->lo <= b && b <= ed->hi && mark[ed->to] != stamp) {
                            mark[ed->to] = stamp;
                            stack[sp++] = ed->to;
                        }
                    }
                }
                RX_CLOSE();
                if (n) {
                    qsort(set, (size_t)n, sizeof *set, cmp_i32);
                    to = dfab_get(r, &d, set, n, cnt, ncls);
                    if (to < 0) goto done;
                }
            }
            d.next[(size_t)k * (size_t)ncls + (size_t)cl] = to;
        }
    }
#undef RX_CLOSE
    /* live: states from which an accepting state is reachable */
    int32_t N = d.n;
    size_t NZ = (size_t)(uint32_t)N + 1;
    live = calloc(NZ, sizeof *live);
    rcnt = calloc(NZ, sizeof *rcnt);
    map = malloc(NZ * sizeof *map);
    if (!live || !rcnt || !map) { cfail(r->c, "out of memory"); goto done; }
    size_t ntr = 0;
    for (int32_t k = 0; k < N; k++)
        for (int cl = 0; cl < ncls; cl++) {
            int32_t to = d.next[(size_t)k * (size_t)ncls + (size_t)cl];
            if (to >= 0) { rcnt[to + 1]++; ntr++; }
        }
    for (int32_t k = 0; k < N; k++) rcnt[k + 1] += rcnt[k];
    roff = calloc(NZ, sizeof *roff);
    radj = malloc((ntr + 1) * sizeof *radj);
    int32_t *q = malloc(NZ * sizeof *q);
    if (!roff || !radj || !q) { free(q); cfail(r->c, "out of memory"); goto done; }
    for (int32_t k = 0; k < N; k++)
        for (int cl = 0; cl < ncls; cl++) {
            int32_t to = d.next[(size_t)k * (size_t)ncls + (size_t)cl];
            if (to >= 0) radj[rcnt[to] + roff[to]++] = k;
        }
    int32_t qh = 0, qt = 0;
    for (int32_t k = 0; k < N; k++) {
        int acc = d.cnt[k] >= min_len && bsearch(&final, d.pool + d.off[k], (size_t)d.len[k], sizeof final, cmp_i32);
        if (acc) { live[k] = 2; q[qt++] = k; }
    }
    while (qh < qt) {
        int32_t k = q[qh++];
        for (int32_t j = rcnt[k]; j < rcnt[k + 1]; j++)
            if (!live[radj[j]]) { live[radj[j]] = 1; q[qt++] = radj[j]; }
    }
    if (!live[0]) { free(q); rx_fail(r, "no string matches (within the length bounds)"); goto done; }
    /* renumber the live states reachable from the start */
    for (int32_t k = 0; k < N; k++) map[k] = -1;
    qh = qt = 0;
    map[0] = 0;
    q[qt++] = 0;
    while (qh < qt) {
        int32_t k = q[qh++];
        for (int cl = 0; cl < ncls; cl++) {
            int32_t to = d.next[(size_t)k * (size_t)ncls + (size_t)cl];
            if (to >= 0 && live[to] && map[to] < 0) { map[to] = qt; q[qt++] = to; }
        }
    }
    out->n = qt;
    out->next = malloc((size_t)qt * (size_t)ncls * sizeof *out->next);
    out->acc = malloc((size_t)qt);
    if (!out->next || !out->acc) { free(q); cfail(r->c, "out of memory"); goto done; }
    for (int32_t i = 0; i < qt; i++) {
        int32_t k = q[i];
        out->acc[i] = live[k] == 2;
        for (int cl = 0; cl < ncls; cl++) {
            int32_t to = d.next[(size_t)k * (size_t)ncls + (size_t)cl];
            out->next[(size_t)i * (size_t)ncls + (size_t)cl] = to >= 0 && live[to] ? map[to] : -1;
        }
    }
    free(q);
    rc = 0;
done:
    free(eoff); free(eidx); free(mark); free(stack); free(set);
    free(d.off); free(d.len); free(d.cnt); free(d.pool); free(d.next); free(d.hash);
    free(live); free(rcnt); free(roff); free(radj); free(map);
    return rc;
}

/* The NFA (s, t) of r as a DFA appended to g->dfas: its index, or -1
 * with the error set. */
static int32_t rx_add_dfa(rxc *r, int32_t s, int32_t t, int32_t min_len, int32_t max_len)
{
    lamina_grammar *g = r->c->g;
    gdfa *ds = realloc(g->dfas, ((size_t)g->n_dfas + 1) * sizeof *ds);
    if (!ds) return cfail(r->c, "out of memory");
    g->dfas = ds;
    gdfa *d = &ds[g->n_dfas];
    memset(d, 0, sizeof *d);
    if (rx_build_dfa(r, s, t, min_len, max_len, d) == 0) {
        g->dfa_cells += (size_t)d->n * (size_t)d->ncls;
        if (g->dfa_cells <= RX_MAX_CELLS) return g->n_dfas++;
        rx_fail(r, "the automata take more than %u transitions", RX_MAX_CELLS);
    }
    free(d->next);
    free(d->acc);
    return -1;
}

/* The regular expression `src` (whole-string match) with length bounds
 * as a DFA; its index in g->dfas, or -1 with the error set. */
static int32_t rx_compile(cctx *c, const char *src, size_t len, const char *kw, const char *path,
                          int32_t min_len, int32_t max_len)
{
    rxc r;
    memset(&r, 0, sizeof r);
    r.src = src;
    r.len = len;
    r.c = c;
    r.kw = kw;
    r.path = path;
    rfrag f;
    int32_t id = -1;
    if (rx_alt(&r, &f) == 0) {
        if (r.pos < r.len) rx_fail(&r, "unbalanced ')' at position %zu", r.pos);
        else id = rx_add_dfa(&r, f.s, f.t, min_len, max_len);
    }
    free(r.e);
    return id;
}

static inline int32_t dfa_next(const gdfa *d, int32_t s, unsigned c)
{
    return d->next[(size_t)s * (size_t)d->ncls + d->cls[c]];
}

/* Does the DFA accept the whole of bytes[0..n)? */
static int dfa_match(const gdfa *d, const char *bytes, size_t n)
{
    int32_t s = 0;
    for (size_t i = 0; i < n && s >= 0; i++) s = dfa_next(d, s, (unsigned char)bytes[i]);
    return s >= 0 && d->acc[s];
}

/* Formats with a real constraint, as patterns (whole-string).  Dates are
 * checked against the calendar (29 February only in leap years); times
 * take at most 9 fraction digits and no leap second; upper-case T and Z;
 * email: a plain dot-atom local part and a dotted domain (a subset of RFC
 * 5321); ipv4: dotted decimal without leading zeros. */
#define RX_YEAR "(000[1-9]|00[1-9][0-9]|0[1-9][0-9][0-9]|[1-9][0-9][0-9][0-9])"
#define RX_LEAP "([0-9][0-9](0[48]|[2468][048]|[13579][26])|(0[48]|[2468][048]|[13579][26])00)"
#define RX_MD "((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))"
#define RX_DATE "(" RX_YEAR "-" RX_MD "|" RX_LEAP "-02-29)"
#define RX_TIME "([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
#define RX_HEX4 "[0-9a-fA-F]{4}"
#define RX_EMAIL "[A-Za-z0-9_%+-]{1,32}(\\.[A-Za-z0-9_%+-]{1,32}){0,3}@[A-Za-z0-9]{1,20}(\\.[A-Za-z0-9]{1,20}){0,3}\\.[a-z]{2,8}"
#define RX_OCTET "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
static const char *format_rx(const char *f)
{
    if (!strcmp(f, "date")) return RX_DATE;
    if (!strcmp(f, "time")) return RX_TIME;
    if (!strcmp(f, "date-time")) return RX_DATE "T" RX_TIME;
    if (!strcmp(f, "uuid")) return RX_HEX4 RX_HEX4 "-" RX_HEX4 "-" RX_HEX4 "-" RX_HEX4 "-" RX_HEX4 RX_HEX4 RX_HEX4;
    if (!strcmp(f, "email")) return RX_EMAIL;
    if (!strcmp(f, "ipv4")) return RX_OCTET "(\\." RX_OCTET "){3}";
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Numeric bounds                                                      */

/* Values are kept exactly as integers in units of 10^-fs (fs = 16 for
 * numbers, 0 for integers): 16 integer and 16 fraction digits fit. */
static i128 p10(int k)
{
    i128 x = 1;
    while (k-- > 0) x *= 10;
    return x;
}

/* ceil (up) or floor of d * 10^fs, exactly; |d| is clamped to 10^17. */
static i128 scale_double(double d, int fs, int up)
{
    if (d != d) return 0;
    int neg = d < 0;
    if (neg) { d = -d; up = !up; }
    i128 r;
    if (d >= 1e17) r = p10(17 + fs);
    else {
        int e;
        double f = frexp(d, &e);
        int64_t m = (int64_t)ldexp(f, 53);
        e -= 53;
        if (e >= 0) r = ((i128)m << e) * p10(fs);
        else {
            i128 num = (i128)m * p10(fs);
            int sh = -e;
            if (sh >= 120) r = (num != 0 && up) ? 1 : 0;
            else {
                r = num >> sh;
                if (up && (r << sh) != num) r++;
            }
        }
    }
    return neg ? -r : r;
}

/* One bound keyword; *have set when present.  lower: minimum side. */
static int num_bound(cctx *c, json_t *s, const char *kw, const char *xkw, int lower, int fs, const char *path,
                     i128 *out, int *have)
{
    json_t *v = json_object_get(s, kw), *x = json_object_get(s, xkw);
    int excl_flag = 0;
    if (x && json_is_boolean(x)) {     /* draft 4: exclusiveMinimum: true modifies minimum */
        excl_flag = json_is_true(x);
        x = NULL;
    }
    for (int pass = 0; pass < 2; pass++) {
        json_t *b = pass ? x : v;
        const char *name = pass ? xkw : kw;
        if (!b) continue;
        if (!json_is_number(b)) return cfail(c, "keyword '%s' at %s: expected a number", name, path);
        int excl = pass || excl_flag;
        i128 r;
        if (json_is_integer(b) && (fs == 0 || (json_integer_value(b) < (1ll << 53) && json_integer_value(b) > -(1ll << 53)))) {
            json_int_t iv = json_integer_value(b);
            if (fs == 0) r = (i128)iv + (excl ? (lower ? 1 : -1) : 0);
            else if (!excl) r = (i128)iv * p10(fs);
            else r = scale_double(nextafter((double)iv, lower ? INFINITY : -INFINITY), fs, lower);
        } else {
            if (json_is_integer(b))
                return cfail(c, "keyword '%s' at %s: integers beyond 2^53 are not supported as bounds of numbers", name, path);
            double d = json_real_value(b);
            if (!isfinite(d)) return cfail(c, "keyword '%s' at %s: expected a finite number", name, path);
            if (excl) d = nextafter(d, lower ? INFINITY : -INFINITY);
            r = scale_double(d, fs, lower);
        }
        if (!*have || (lower ? r > *out : r < *out)) *out = r;
        *have = 1;
    }
    return 0;
}

/* Can a number whose magnitude lies in [a, b] (scaled) have the sign neg
 * and still be within the node's bounds? */
static int range_meets(const gnode *nd, int neg, i128 a, i128 b)
{
    i128 lo = neg ? -nd->num_hi : nd->num_lo, hi = neg ? -nd->num_lo : nd->num_hi;
    if (a < lo) a = lo;
    if (b > hi) b = hi;
    if (a > b) return 0;
    if (nd->step <= 0) return 1;
    /* a multiple of step in [a, b] (multiples are symmetric around 0) */
    i128 m = b >= 0 ? b / nd->step * nd->step : -((-b + nd->step - 1) / nd->step * nd->step);
    return m >= a;
}

/* Number prefix state: neg, I (integer part) with di digits; frac: in the
 * fraction with F of fd digits.  Can it be completed into a value within
 * the bounds? */
static int num_viable(const gnode *nd, int neg, uint64_t I, int di, int frac, uint64_t F, int fd)
{
    int fs = nd->kind == N_NUMBER ? FRAC_DIGITS : 0;
    i128 U = p10(fs);
    if (frac) {
        i128 base = (i128)I * U + (i128)F * p10(fs - fd);
        return range_meets(nd, neg, base, base + p10(fs - fd) - 1);
    }
    if (di == 0) return range_meets(nd, neg, 0, p10(INT_DIGITS) * U - 1);
    if (I == 0) return range_meets(nd, neg, 0, U - 1);
    for (int k = 0; di + k <= INT_DIGITS; k++) {
        i128 a = (i128)I * p10(k);
        if (range_meets(nd, neg, a * U, (a + p10(k)) * U - 1)) return 1;
    }
    return 0;
}

/* Is the number, complete as it is, within the bounds? */
static int num_in_range(const gnode *nd, int neg, uint64_t I, int frac, uint64_t F, int fd)
{
    int fs = nd->kind == N_NUMBER ? FRAC_DIGITS : 0;
    i128 v = (i128)I * p10(fs);
    if (frac) v += (i128)F * p10(fs - fd);
    if (neg) v = -v;
    return v >= nd->num_lo && v <= nd->num_hi && (nd->step <= 0 || v % nd->step == 0);
}

#define MAX_STEP_DIGITS 17      /* multipleOf below 10^17 */

/* multipleOf of schema s as an exact integer in units of 10^-fs: 0 when
 * absent, -1 refused.  A decimal such as 0.01 is taken as written (the
 * double nearest it, read back with at most 16 decimals); for integers
 * (fs 0) a fractional step becomes the smallest integer step it allows
 * (0.4 -> 2). */
static i128 num_step(cctx *c, json_t *s, int fs, const char *path)
{
    json_t *v = json_object_get(s, "multipleOf");
    if (!v) return 0;
    if (!json_is_number(v) || json_number_value(v) <= 0 || !isfinite(json_number_value(v)))
        return cfail(c, "keyword 'multipleOf' at %s: expected a number above 0", path);
    i128 u = 0; /* in units of 10^-FRAC_DIGITS */
    if (json_is_integer(v)) {
        if (json_integer_value(v) >= 100000000000000000ll)
            return cfail(c, "keyword 'multipleOf' at %s: at most 10^%d is supported", path, MAX_STEP_DIGITS);
        u = (i128)json_integer_value(v) * p10(FRAC_DIGITS);
    } else {
        double d = json_real_value(v);
        if (d >= 1e17) return cfail(c, "keyword 'multipleOf' at %s: at most 10^%d is supported", path, MAX_STEP_DIGITS);
        int k = 0;
        for (; k <= FRAC_DIGITS; k++) {
            double x = d * (double)p10(k);
            double r = nearbyint(x);
            if (r >= 1 && fabs(x - r) <= 1e-9 * r) { u = (i128)r * p10(FRAC_DIGITS - k); break; }
        }
        if (k > FRAC_DIGITS)
            return cfail(c, "keyword 'multipleOf' at %s: more than %d decimal places are not supported", path,
                         FRAC_DIGITS);
    }
    if (fs == FRAC_DIGITS) return u;
    /* integers n with n * 10^16 a multiple of u: multiples of u / gcd(u, 10^16) */
    i128 a = u, b = p10(FRAC_DIGITS);
    while (b) { i128 t = a % b; a = b; b = t; }
    return u / a;
}

static int32_t compile(cctx *c, json_t *s, const char *path);

/* The "any JSON value" node (made once). */
static int32_t any_node(cctx *c)
{
    lamina_grammar *g = c->g;
    if (g->any >= 0) return g->any;
    int32_t alt = new_node(c, N_ALT);
    if (alt < 0) return -1;
    g->any = alt;
    int32_t o = new_node(c, N_OBJECT), a = new_node(c, N_ARRAY), s = new_node(c, N_STRING),
            num = new_node(c, N_NUMBER);
    static const char *const w[3] = { "true", "false", "null" };
    int32_t lit = literal_words(c, w, 3);
    if (o < 0 || a < 0 || s < 0 || num < 0 || lit < 0) return -1;
    g->nodes[o].addl = alt;
    g->nodes[a].items = alt;
    if (add_alt(c, alt, o) || add_alt(c, alt, a) || add_alt(c, alt, s) || add_alt(c, alt, num) ||
        add_alt(c, alt, lit))
        return -1;
    return alt;
}

static int is_annotation(const char *k)
{
    static const char *const ann[] = { "description", "title", "default", "examples", "$schema", "$id",
                                       "$comment", "deprecated", "readOnly", "writeOnly", "discriminator",
                                       "$defs", "definitions", NULL };
    for (int i = 0; ann[i]; i++)
        if (strcmp(k, ann[i]) == 0) return 1;
    return 0;
}

static int is_supported(const char *k)
{
    static const char *const kw[] = { "type", "properties", "required", "additionalProperties", "items",
                                      "prefixItems", "enum", "const", "anyOf", "oneOf", "allOf", "nullable",
                                      "$ref", "minItems", "maxItems", "minLength", "maxLength", "format",
                                      "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                                      "multipleOf", NULL };
    for (int i = 0; kw[i]; i++)
        if (strcmp(k, kw[i]) == 0) return 1;
    return is_annotation(k);
}

static void sub_path(char *out, size_t size, const char *path, const char *a, const char *b)
{
    snprintf(out, size, "%s.%s%s%s", path, a, b ? "." : "", b ? b : "");
}

static int get_count(cctx *c, json_t *s, const char *key, const char *path, int32_t lim, int32_t *out)
{
    json_t *v = json_object_get(s, key);
    if (!v) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return cfail(c, "keyword '%s' at %s: expected a non-negative integer", key, path);
    json_int_t x = json_integer_value(v);
    if (x > lim) {
        if (strncmp(key, "max", 3) == 0) x = -1;   /* as good as unbounded */
        else return cfail(c, "keyword '%s' at %s: at most %d is supported", key, path, (int)lim);
    }
    *out = (int32_t)x;
    return 1;
}

/* Does JSON value v have JSON-schema type t? */
static int value_is_type(json_t *v, const char *t)
{
    if (!strcmp(t, "object")) return json_is_object(v);
    if (!strcmp(t, "array")) return json_is_array(v);
    if (!strcmp(t, "string")) return json_is_string(v);
    if (!strcmp(t, "boolean")) return json_is_boolean(v);
    if (!strcmp(t, "null")) return json_is_null(v);
    if (!strcmp(t, "number")) return json_is_number(v);
    if (!strcmp(t, "integer"))
        return json_is_integer(v) || (json_is_real(v) && floor(json_real_value(v)) == json_real_value(v));
    return 0;
}

#define PROD_MAX_STATES 20000   /* format and pattern together */

/* The intersection of DFAs ia and ib (both must accept), dead states
 * pruned; its index, or -1 with the error set. */
static int32_t dfa_intersect(cctx *c, int32_t ia, int32_t ib, const char *path, const char *fmt)
{
    lamina_grammar *g = c->g;
    gdfa A = g->dfas[ia], B = g->dfas[ib];     /* copies: g->dfas moves when it grows */
    gdfa P;
    memset(&P, 0, sizeof P);
    int32_t key[256];   /* product class -> A class * B.ncls + B class */
    int nk = 0;
    for (int x = 0; x < 256; x++) {
        int32_t k = (int32_t)A.cls[x] * B.ncls + B.cls[x], j = 0;
        while (j < nk && key[j] != k) j++;
        if (j == nk) key[nk++] = k;
        P.cls[x] = (uint8_t)j;
    }
    P.ncls = nk;
    int32_t cap = 64, n = 0, id = -1;
    int32_t *pa = malloc((size_t)cap * sizeof *pa), *pb = malloc((size_t)cap * sizeof *pb);
    int32_t *next = malloc((size_t)cap * (size_t)nk * sizeof *next);
    size_t hsize = 1;
    while (hsize < 4 * (size_t)PROD_MAX_STATES) hsize <<= 1;
    int32_t *hash = malloc(hsize * sizeof *hash);
    uint8_t *live = NULL;
    int32_t *map = NULL;
    if (!pa || !pb || !next || !hash) { cfail(c, "out of memory"); goto done; }
    memset(hash, -1, hsize * sizeof *hash);
    pa[0] = 0; pb[0] = 0; n = 1;
    hash[0 % hsize] = 0;
    for (int32_t k = 0; k < n; k++) {
        for (int cl = 0; cl < nk; cl++) {
            int32_t ta = A.next[(size_t)pa[k] * (size_t)A.ncls + (size_t)(key[cl] / B.ncls)];
            int32_t tb = B.next[(size_t)pb[k] * (size_t)B.ncls + (size_t)(key[cl] % B.ncls)];
            int32_t to = -1;
            if (ta >= 0 && tb >= 0) {
                uint64_t hk = (uint64_t)ta * (uint64_t)B.n + (uint64_t)tb;
                size_t h = (size_t)((hk * 0x9E3779B97F4A7C15ull) >> 20) & (hsize - 1);
                while (hash[h] >= 0 && !(pa[hash[h]] == ta && pb[hash[h]] == tb)) h = (h + 1) & (hsize - 1);
                if (hash[h] >= 0) to = hash[h];
                else {
                    if (n >= PROD_MAX_STATES) {
                        cfail(c, "keywords 'format' ('%s') and 'pattern' at %s: together more than %d automaton states",
                              fmt, path, PROD_MAX_STATES);
                        goto done;
                    }
                    if (n == cap) {
                        cap *= 2;
                        int32_t *x1 = realloc(pa, (size_t)cap * sizeof *x1);
                        if (x1) pa = x1;
                        int32_t *x2 = realloc(pb, (size_t)cap * sizeof *x2);
                        if (x2) pb = x2;
                        int32_t *x3 = realloc(next, (size_t)cap * (size_t)nk * sizeof *x3);
                        if (x3) next = x3;
                        if (!x1 || !x2 || !x3) { cfail(c, "out of memory"); goto done; }
                    }
                    pa[n] = ta; pb[n] = tb;
                    hash[h] = to = n++;
                }
            }
            next[(size_t)k * (size_t)nk + (size_t)cl] = to;
        }
    }
    /* live: an accepting state is reachable (a fixpoint; the automata are small) */
    live = calloc((size_t)n, 1);
    map = malloc((size_t)n * sizeof *map);
    if (!live || !map) { cfail(c, "out of memory"); goto done; }
    for (int32_t k = 0; k < n; k++) live[k] = A.acc[pa[k]] && B.acc[pb[k]];
    for (int changed = 1; changed;) {
        changed = 0;
        for (int32_t k = n - 1; k >= 0; k--) {
            if (live[k]) continue;
            for (int cl = 0; cl < nk && !live[k]; cl++) {
                int32_t to = next[(size_t)k * (size_t)nk + (size_t)cl];
                if (to >= 0 && live[to]) { live[k] = 1; changed = 1; }
            }
        }
    }
    if (!live[0]) {
        cfail(c, "keywords 'format' ('%s') and 'pattern' at %s: no string meets both (within the length bounds)", fmt, path);
        goto done;
    }
    int32_t m = 0;
    for (int32_t k = 0; k < n; k++) map[k] = live[k] ? m++ : -1;
    P.n = m;
    P.next = malloc((size_t)m * (size_t)nk * sizeof *P.next);
    P.acc = malloc((size_t)m);
    if (!P.next || !P.acc) { free(P.next); free(P.acc); cfail(c, "out of memory"); goto done; }
    for (int32_t k = 0; k < n; k++) {
        if (map[k] < 0) continue;
        P.acc[map[k]] = A.acc[pa[k]] && B.acc[pb[k]];
        for (int cl = 0; cl < nk; cl++) {
            int32_t to = next[(size_t)k * (size_t)nk + (size_t)cl];
            P.next[(size_t)map[k] * (size_t)nk + (size_t)cl] = to >= 0 ? map[to] : -1;
        }
    }
    gdfa *ds = realloc(g->dfas, ((size_t)g->n_dfas + 1) * sizeof *ds);
    if (!ds) { free(P.next); free(P.acc); cfail(c, "out of memory"); goto done; }
    g->dfas = ds;
    g->dfa_cells += (size_t)m * (size_t)nk;
    if (g->dfa_cells > RX_MAX_CELLS) {
        free(P.next); free(P.acc);
        cfail(c, "keywords 'format' and 'pattern' at %s: the automata take more than %u transitions", path, RX_MAX_CELLS);
        goto done;
    }
    ds[g->n_dfas] = P;
    id = g->n_dfas++;
done:
    free(pa); free(pb); free(next); free(hash); free(live); free(map);
    return id;
}

/* The DFA of a string schema's pattern and/or format (both: their
 * intersection), lengths folded in: its index; -2 when it has neither;
 * -1 refused. */
static int32_t string_dfa(cctx *c, json_t *s, const char *path, int32_t mn, int32_t mx)
{
    json_t *f = json_object_get(s, "format"), *pat = json_object_get(s, "pattern");
    if (f && !json_is_string(f)) return cfail(c, "keyword 'format' at %s: expected a string", path);
    if (pat && !json_is_string(pat)) return cfail(c, "keyword 'pattern' at %s: expected a string", path);
    const char *frx = f ? format_rx(json_string_value(f)) : NULL;
    int32_t dp = -2, df = -2;
    if (pat && (dp = rx_compile(c, json_string_value(pat), json_string_length(pat), "pattern", path, mn, mx)) < 0)
        return -1;
    if (frx && (df = rx_compile(c, frx, strlen(frx), "format", path, mn, mx)) < 0) return -1;
    if (dp >= 0 && df >= 0) return dfa_intersect(c, dp, df, path, json_string_value(f));
    return dp >= 0 ? dp : df;
}

/* Does enum/const value x also meet the schema's string and number
 * keywords?  1 yes, 0 no, -1 refused (error set). */
static int value_meets(cctx *c, json_t *s, json_t *x, const char *path, int32_t *dfa)
{
    if (json_is_number(x)) {
        i128 lo = 0, hi = 0;
        int hlo = 0, hhi = 0;
        if (num_bound(c, s, "minimum", "exclusiveMinimum", 1, FRAC_DIGITS, path, &lo, &hlo) < 0 ||
            num_bound(c, s, "maximum", "exclusiveMaximum", 0, FRAC_DIGITS, path, &hi, &hhi) < 0)
            return -1;
        i128 step = num_step(c, s, FRAC_DIGITS, path);
        if (step < 0) return -1;
        i128 vlo, vhi;      /* the value, rounded down and up */
        if (json_is_integer(x)) vlo = vhi = (i128)json_integer_value(x) * p10(FRAC_DIGITS);
        else {
            vlo = scale_double(json_real_value(x), FRAC_DIGITS, 0);
            vhi = scale_double(json_real_value(x), FRAC_DIGITS, 1);
        }
        if (step > 0 && vlo % step != 0 && vhi % step != 0) return 0;
        return (!hlo || vlo >= lo) && (!hhi || vhi <= hi);
    }
    if (!json_is_string(x)) return 1;
    int32_t mn = 0, mx = -1;
    if (get_count(c, s, "minLength", path, MAX_MIN_LEN, &mn) < 0) return -1;
    if (get_count(c, s, "maxLength", path, INT32_MAX / 2, &mx) < 0) return -1;
    const char *v = json_string_value(x);
    size_t n = json_string_length(x);
    if (*dfa == -1) *dfa = string_dfa(c, s, path, mn, mx);     /* once per enum */
    if (*dfa == -1) return -1;
    if (*dfa >= 0) return dfa_match(&c->g->dfas[*dfa], v, n);
    int32_t chars = 0;
    for (size_t i = 0; i < n; i++) chars += ((unsigned char)v[i] & 0xC0) != 0x80;
    return chars >= mn && (mx < 0 || chars <= mx);
}

static int32_t compile_type(cctx *c, json_t *s, const char *t, const char *path)
{
    char p[1024];
    if (!strcmp(t, "string")) {
        int32_t id = new_node(c, N_STRING);
        if (id < 0) return -1;
        int32_t mn = 0, mx = -1;
        if (get_count(c, s, "minLength", path, MAX_MIN_LEN, &mn) < 0) return -1;
        if (get_count(c, s, "maxLength", path, INT32_MAX / 2, &mx) < 0) return -1;
        if (mx >= 0 && mx < mn) return cfail(c, "maxLength < minLength at %s: no string fits", path);
        int32_t d = string_dfa(c, s, path, mn, mx);
        if (d == -1) return -1;
        if (d >= 0) {
            c->g->nodes[id].dfa = d;
            mn = 0;
            mx = -1;    /* folded into the automaton */
        }
        c->g->nodes[id].min_len = mn;
        c->g->nodes[id].max_len = mx;
        return id;
    }
    if (!strcmp(t, "number") || !strcmp(t, "integer")) {
        int isnum = !strcmp(t, "number");
        int fs = isnum ? FRAC_DIGITS : 0;
        i128 lo = -(p10(INT_DIGITS) * p10(fs) - 1), hi = -lo;
        int hlo = 0, hhi = 0;
        if (num_bound(c, s, "minimum", "exclusiveMinimum", 1, fs, path, &lo, &hlo) < 0 ||
            num_bound(c, s, "maximum", "exclusiveMaximum", 0, fs, path, &hi, &hhi) < 0)
            return -1;
        i128 step = num_step(c, s, fs, path);
        if (step < 0) return -1;
        int32_t id = new_node(c, isnum ? N_NUMBER : N_INTEGER);
        if (id < 0 || !(hlo || hhi || step)) return id;
        gnode *nd = &c->g->nodes[id];
        nd->ranged = 1;
        nd->num_lo = lo;
        nd->num_hi = hi;
        nd->step = step;
        if (lo > hi || (!num_viable(nd, 0, 0, 0, 0, 0, 0) && !num_viable(nd, 1, 0, 0, 0, 0, 0)))
            return cfail(c, "minimum/maximum%s at %s: no %s fits (with at most %d integer digits)",
                         step ? "/multipleOf" : "", path, t, INT_DIGITS);
        return id;
    }
    if (!strcmp(t, "boolean")) { static const char *const w[2] = { "false", "true" }; return literal_words(c, w, 2); }
    if (!strcmp(t, "null")) { static const char *const w[1] = { "null" }; return literal_words(c, w, 1); }
    if (!strcmp(t, "array")) {
        int32_t id = new_node(c, N_ARRAY);
        if (id < 0) return -1;
        int32_t mn = 0, mx = -1;
        if (get_count(c, s, "minItems", path, MAX_MIN_ITEMS, &mn) < 0) return -1;
        if (get_count(c, s, "maxItems", path, INT32_MAX / 2, &mx) < 0) return -1;
        json_t *pre = json_object_get(s, "prefixItems"), *it = json_object_get(s, "items");
        int tuple = 0;
        if (json_is_array(it)) {
            if (pre) return cfail(c, "keyword 'items' at %s: an array next to prefixItems is not supported", path);
            pre = it;
            it = json_false();
            tuple = 1;
        }
        if (pre) {
            if (!json_is_array(pre)) return cfail(c, "keyword 'prefixItems' at %s: expected an array", path);
            size_t n = json_array_size(pre);
            if (n > MAX_PROPS) return cfail(c, "keyword 'prefixItems' at %s: more than %d entries", path, MAX_PROPS);
            int32_t *pf = calloc(n + 1, sizeof *pf);
            if (!pf) return cfail(c, "out of memory");
            c->g->nodes[id].prefix = pf;
            for (size_t i = 0; i < n; i++) {
                char idx[24];
                snprintf(idx, sizeof idx, "%zu", i);
                sub_path(p, sizeof p, path, tuple ? "items" : "prefixItems", idx);
                int32_t x = compile(c, json_array_get(pre, i), p);
                if (x < 0) return -1;
                c->g->nodes[id].prefix[i] = x;
                c->g->nodes[id].n_prefix = (int)i + 1;
            }
        }
        int32_t items;
        if (json_is_false(it)) items = -1;
        else if (!it || json_is_true(it)) items = any_node(c);
        else {
            sub_path(p, sizeof p, path, "items", NULL);
            items = compile(c, it, p);
        }
        if (items < 0 && !json_is_false(it)) return -1;
        gnode *nd = &c->g->nodes[id];
        nd->items = items;
        if (items < 0 && (mx < 0 || mx > nd->n_prefix)) mx = nd->n_prefix;
        if (mx >= 0 && mx < mn) return cfail(c, "maxItems < minItems at %s: no array fits", path);
        nd->min_items = mn;
        nd->max_items = mx;
        return id;
    }
    if (!strcmp(t, "object")) {
        int32_t id = new_node(c, N_OBJECT);
        if (id < 0) return -1;
        json_t *props = json_object_get(s, "properties"), *req = json_object_get(s, "required"),
               *ap = json_object_get(s, "additionalProperties");
        if (props && !json_is_object(props)) return cfail(c, "keyword 'properties' at %s: expected an object", path);
        if (req && !json_is_array(req)) return cfail(c, "keyword 'required' at %s: expected an array", path);
        int32_t addl;
        if (json_is_false(ap)) addl = -1;
        else if (json_is_true(ap) || (!ap && !props)) { addl = any_node(c); if (addl < 0) return -1; }
        else if (!ap) addl = -1;        /* properties given: only those (as llama.cpp and Ollama) */
        else {
            sub_path(p, sizeof p, path, "additionalProperties", NULL);
            if ((addl = compile(c, ap, p)) < 0) return -1;
        }
        c->g->nodes[id].addl = addl;
        size_t np = props ? json_object_size(props) : 0;
        size_t nr = req ? json_array_size(req) : 0;
        if (np + nr > MAX_PROPS) return cfail(c, "object at %s: more than %d properties", path, MAX_PROPS);
        gprop *pr = calloc(np + nr + 1, sizeof *pr);
        if (!pr) return cfail(c, "out of memory");
        c->g->nodes[id].props = pr;
        int n = 0;
        const char *key;
        json_t *sub;
        if (props) json_object_foreach(props, key, sub) {
            json_t *ks = json_string(key);
            char *enc = ks ? json_dumps(ks, JSON_ENCODE_ANY) : NULL;
            json_decref(ks);
            if (!enc) return cfail(c, "out of memory");
            size_t el = strlen(enc);
            memmove(enc, enc + 1, el - 2);
            enc[el - 2] = 0;
            pr = c->g->nodes[id].props;
            pr[n].name = enc;
            pr[n].len = el - 2;
            c->g->nodes[id].n_props = ++n;
            sub_path(p, sizeof p, path, "properties", key);
            int32_t x = compile(c, sub, p);
            if (x < 0) return -1;
            c->g->nodes[id].props[n - 1].node = x;
        }
        for (size_t i = 0; i < nr; i++) {
            json_t *r = json_array_get(req, i);
            if (!json_is_string(r)) return cfail(c, "keyword 'required' at %s: expected strings", path);
            int found = 0;
            pr = c->g->nodes[id].props;
            for (int j = 0; j < n; j++) {
                json_t *ks = json_string(json_string_value(r));
                char *enc = ks ? json_dumps(ks, JSON_ENCODE_ANY) : NULL;
                json_decref(ks);
                if (!enc) return cfail(c, "out of memory");
                if (strlen(enc) == pr[j].len + 2 && !memcmp(enc + 1, pr[j].name, pr[j].len)) found = 1, pr[j].required = 1;
                free(enc);
                if (found) break;
            }
            if (found) continue;
            if (addl < 0)
                return cfail(c, "required property '%s' at %s is not in properties and additional properties are not allowed",
                             json_string_value(r), path);
            json_t *ks = json_string(json_string_value(r));
            char *enc = ks ? json_dumps(ks, JSON_ENCODE_ANY) : NULL;
            json_decref(ks);
            if (!enc) return cfail(c, "out of memory");
            size_t el = strlen(enc);
            memmove(enc, enc + 1, el - 2);
            enc[el - 2] = 0;
            pr[n].name = enc;
            pr[n].len = el - 2;
            pr[n].node = addl;
            pr[n].required = 1;
            c->g->nodes[id].n_props = ++n;
        }
        return id;
    }
    return cfail(c, "keyword 'type' at %s: unknown type '%s'", path, t);
}

/* JSON pointer "#/a/b" (with ~0 ~1) from the root. */
static json_t *resolve_ref(cctx *c, const char *ref, const char *path)
{
    if (ref[0] != '#') { cfail(c, "keyword '$ref' at %s: only local references (#...) are supported", path); return NULL; }
    json_t *cur = c->root;
    const char *p = ref + 1;
    while (*p) {
        if (*p != '/') { cfail(c, "keyword '$ref' at %s: bad reference '%s'", path, ref); return NULL; }
        p++;
        char tok[256];
        size_t k = 0;
        while (*p && *p != '/') {
            char ch = *p++;
            if (ch == '~' && *p == '0') { ch = '~'; p++; }
            else if (ch == '~' && *p == '1') { ch = '/'; p++; }
            if (k + 1 >= sizeof tok) { cfail(c, "keyword '$ref' at %s: reference too long", path); return NULL; }
            tok[k++] = ch;
        }
        tok[k] = 0;
        if (json_is_object(cur)) cur = json_object_get(cur, tok);
        else if (json_is_array(cur)) {
            char *end;
            long i = strtol(tok, &end, 10);
            cur = *end || i < 0 ? NULL : json_array_get(cur, (size_t)i);
        } else cur = NULL;
        if (!cur) { cfail(c, "keyword '$ref' at %s: '%s' does not resolve", path, ref); return NULL; }
    }
    return cur;
}

/* Only annotations may stand next to keyword `kw`. */
static int only_annotations(cctx *c, json_t *s, const char *kw, const char *path)
{
    const char *k;
    json_t *v;
    json_object_foreach(s, k, v) {
        if (strcmp(k, kw) && !is_annotation(k))
            return cfail(c, "keyword '%s' next to '%s' at %s is not supported", k, kw, path);
    }
    return 0;
}

static int32_t compile_inner(cctx *c, json_t *s, const char *path)
{
    char p[1024];
    if (json_is_true(s)) return any_node(c);
    if (json_is_false(s)) return cfail(c, "schema false at %s: no value fits", path);
    if (!json_is_object(s)) return cfail(c, "schema at %s: expected an object or a boolean", path);
    const char *k;
    json_t *v;
    json_object_foreach(s, k, v) {
        if (!is_supported(k)) return cfail(c, "keyword '%s' at %s is not supported", k, path);
    }
    json_t *nullable = json_object_get(s, "nullable");
    if (nullable && json_is_true(nullable)) {
        json_t *copy = json_copy(s);
        if (!copy) return cfail(c, "out of memory");
        json_object_del(copy, "nullable");
        int32_t alt = new_node(c, N_ALT);
        int32_t x = alt < 0 ? -1 : compile(c, copy, path);
        json_decref(copy);
        static const char *const w[1] = { "null" };
        int32_t nl = x < 0 ? -1 : literal_words(c, w, 1);
        if (nl < 0 || add_alt(c, alt, x) || add_alt(c, alt, nl)) return -1;
        return alt;
    }
    json_t *ref = json_object_get(s, "$ref");
    if (ref) {
        if (!json_is_string(ref)) return cfail(c, "keyword '$ref' at %s: expected a string", path);
        if (only_annotations(c, s, "$ref", path) < 0) return -1;
        json_t *t = resolve_ref(c, json_string_value(ref), path);
        if (!t) return -1;
        for (int i = 0; i < c->n_memo; i++)
            if (c->memo_key[i] == t) return c->memo_node[i];
        int32_t alt = new_node(c, N_ALT);
        if (alt < 0) return -1;
        if (c->n_memo == c->cap_memo) {
            int cap = c->cap_memo ? c->cap_memo * 2 : 16;
            json_t **mk = realloc(c->memo_key, (size_t)cap * sizeof *mk);
            if (mk) c->memo_key = mk;
            int32_t *mn = realloc(c->memo_node, (size_t)cap * sizeof *mn);
            if (mn) c->memo_node = mn;
            if (!mk || !mn) return cfail(c, "out of memory");
            c->cap_memo = cap;
        }
        c->memo_key[c->n_memo] = t;
        c->memo_node[c->n_memo++] = alt;
        int32_t x = compile(c, t, json_string_value(ref));
        if (x < 0 || add_alt(c, alt, x)) return -1;
        return alt;
    }
    json_t *allof = json_object_get(s, "allOf");
    if (allof) {
        if (!json_is_array(allof) || json_array_size(allof) != 1)
            return cfail(c, "keyword 'allOf' at %s: only one subschema is supported", path);
        if (only_annotations(c, s, "allOf", path) < 0) return -1;
        sub_path(p, sizeof p, path, "allOf", "0");
        return compile(c, json_array_get(allof, 0), p);
    }
    json_t *any = json_object_get(s, "anyOf");
    const char *anykw = "anyOf";
    if (!any) { any = json_object_get(s, "oneOf"); anykw = "oneOf"; }
    if (any) {
        if (!json_is_array(any) || json_array_size(any) == 0)
            return cfail(c, "keyword '%s' at %s: expected a non-empty array", anykw, path);
        if (only_annotations(c, s, anykw, path) < 0) return -1;
        int32_t alt = new_node(c, N_ALT);
        if (alt < 0) return -1;
        for (size_t i = 0; i < json_array_size(any); i++) {
            char idx[24];
            snprintf(idx, sizeof idx, "%zu", i);
            sub_path(p, sizeof p, path, anykw, idx);
            int32_t x = compile(c, json_array_get(any, i), p);
            if (x < 0 || add_alt(c, alt, x)) return -1;
        }
        return alt;
    }
    /* the types asked for */
    const char *types[8];
    int nt = 0;
    json_t *type = json_object_get(s, "type");
    if (json_is_string(type)) types[nt++] = json_string_value(type);
    else if (json_is_array(type)) {
        if (json_array_size(type) == 0 || json_array_size(type) > 7)
            return cfail(c, "keyword 'type' at %s: expected 1 to 7 types", path);
        for (size_t i = 0; i < json_array_size(type); i++) {
            if (!json_is_string(json_array_get(type, i))) return cfail(c, "keyword 'type' at %s: expected strings", path);
            types[nt++] = json_string_value(json_array_get(type, i));
        }
    } else if (type) return cfail(c, "keyword 'type' at %s: expected a string or an array", path);
    json_t *en = json_object_get(s, "enum"), *cn = json_object_get(s, "const");
    if (en || cn) {
        if (en && !json_is_array(en)) return cfail(c, "keyword 'enum' at %s: expected an array", path);
        size_t n = en ? json_array_size(en) : 1;
        json_t **vals = calloc(n + 1, sizeof *vals);
        if (!vals) return cfail(c, "out of memory");
        int k2 = 0;
        int32_t dfa = -1;       /* -1 not compiled yet, -2 no pattern or format */
        for (size_t i = 0; i < n; i++) {
            json_t *x = en ? json_array_get(en, i) : cn;
            int ok = nt == 0;
            for (int t = 0; t < nt && !ok; t++) ok = value_is_type(x, types[t]);
            if (ok && cn && en && !json_equal(x, cn)) ok = 0;
            if (ok) ok = value_meets(c, s, x, path, &dfa);
            if (ok < 0) { free(vals); return -1; }
            if (ok) vals[k2++] = x;
        }
        int32_t id = k2 ? literal_node(c, vals, k2) : cfail(c, "enum/const at %s: no value fits the type", path);
        free(vals);
        return id;
    }
    if (nt == 0) {  /* inferred from the keywords */
        if (json_object_get(s, "properties") || json_object_get(s, "additionalProperties") ||
            json_object_get(s, "required"))
            types[nt++] = "object";
        else if (json_object_get(s, "items") || json_object_get(s, "prefixItems") ||
                 json_object_get(s, "minItems") || json_object_get(s, "maxItems"))
            types[nt++] = "array";
        else if (json_object_get(s, "minLength") || json_object_get(s, "maxLength") || json_object_get(s, "format") ||
                 json_object_get(s, "pattern"))
            types[nt++] = "string";
        else if (json_object_get(s, "minimum") || json_object_get(s, "maximum") ||
                 json_object_get(s, "exclusiveMinimum") || json_object_get(s, "exclusiveMaximum") ||
                 json_object_get(s, "multipleOf"))
            types[nt++] = "number";
        else
            return any_node(c);
    }
    if (nt == 1) return compile_type(c, s, types[0], path);
    int32_t alt = new_node(c, N_ALT);
    if (alt < 0) return -1;
    for (int t = 0; t < nt; t++) {
        int32_t x = compile_type(c, s, types[t], path);
        if (x < 0 || add_alt(c, alt, x)) return -1;
    }
    return alt;
}

static int32_t compile(cctx *c, json_t *s, const char *path)
{
    if (++c->depth > 64) return cfail(c, "schema nested too deeply (more than 64 levels) at %.120s...", path);
    int32_t x = compile_inner(c, s, path);
    c->depth--;
    return x;
}

/* Replace every N_ALT's alternatives by the non-ALT nodes they reach. */
static int flatten_alts(cctx *c)
{
    lamina_grammar *g = c->g;
    int32_t n = g->n_nodes;
    char *seen = malloc((size_t)n);
    int32_t *stack = malloc((size_t)n * sizeof *stack), *out = malloc((size_t)n * sizeof *out);
    int32_t **res = calloc((size_t)n, sizeof *res);
    int *nres = calloc((size_t)n, sizeof *nres);
    int rc = 0;
    if (!seen || !stack || !out || !res || !nres) { rc = cfail(c, "out of memory"); goto done; }
    for (int32_t i = 0; i < n; i++) {
        if (g->nodes[i].kind != N_ALT) continue;
        memset(seen, 0, (size_t)n);
        int sp = 0, no = 0;
        stack[sp++] = i;
        seen[i] = 1;
        while (sp) {
            gnode *x = &g->nodes[stack[--sp]];
            for (int j = 0; j < x->n_alts; j++) {
                int32_t y = x->alts[j];
                if (seen[y]) continue;
                seen[y] = 1;
                if (g->nodes[y].kind == N_ALT) stack[sp++] = y;
                else out[no++] = y;
            }
        }
        res[i] = malloc(((size_t)no + 1) * sizeof(int32_t));
        if (!res[i]) { rc = cfail(c, "out of memory"); goto done; }
        memcpy(res[i], out, (size_t)no * sizeof(int32_t));
        nres[i] = no;
    }
    for (int32_t i = 0; i < n; i++) {
        if (g->nodes[i].kind != N_ALT) continue;
        free(g->nodes[i].alts);
        g->nodes[i].alts = res[i];
        g->nodes[i].n_alts = nres[i];
        res[i] = NULL;
    }
done:
    if (res) for (int32_t i = 0; i < n; i++) free(res[i]);
    free(res);
    free(nres);
    free(seen);
    free(stack);
    free(out);
    return rc;
}

/* need: the frames a node's smallest instance takes (fixpoint); and
 * which nodes match the empty text. */
static void compute_need(lamina_grammar *g)
{
    for (int changed = 1; changed;) {
        changed = 0;
        for (int32_t i = 0; i < g->n_nodes; i++) {
            gnode *x = &g->nodes[i];
            int nl = 0;
            if (x->kind == N_SEQ) {
                nl = 1;
                for (int j = 0; j < x->n_seq && nl; j++) nl = g->nodes[x->seq[j]].nullable;
            } else if (x->kind == N_ALT) {
                for (int j = 0; j < x->n_alts && !nl; j++) nl = g->nodes[x->alts[j]].nullable;
            }
            if (nl && !x->nullable) { x->nullable = 1; changed = 1; }
        }
    }
    for (int32_t i = 0; i < g->n_nodes; i++) g->nodes[i].need = INF_NEED;
    for (int round = 0; round <= g->n_nodes + 1; round++) {
        int changed = 0;
        for (int32_t i = 0; i < g->n_nodes; i++) {
            gnode *x = &g->nodes[i];
            int32_t v = 1;
            switch (x->kind) {
            case N_OBJECT:
                for (int j = 0; j < x->n_props; j++)
                    if (x->props[j].required && g->nodes[x->props[j].node].need + 1 > v)
                        v = g->nodes[x->props[j].node].need + 1;
                break;
            case N_ARRAY:
                for (int j = 0; j < x->min_items; j++) {
                    int32_t it = j < x->n_prefix ? x->prefix[j] : x->items;
                    if (it < 0) { v = INF_NEED; break; }
                    if (g->nodes[it].need + 1 > v) v = g->nodes[it].need + 1;
                    if (j >= x->n_prefix) break;    /* the rest are the same node */
                }
                break;
            case N_ALT:
                v = INF_NEED;
                for (int j = 0; j < x->n_alts; j++)
                    if (g->nodes[x->alts[j]].need < v) v = g->nodes[x->alts[j]].need;
                break;
            case N_SEQ:     /* the last part takes the sequence's frame */
                for (int j = 0; j < x->n_seq; j++) {
                    int32_t k = g->nodes[x->seq[j]].need + (j < x->n_seq - 1);
                    if (k > v) v = k;
                }
                break;
            default:
                break;
            }
            if (v > INF_NEED) v = INF_NEED;
            if (v < x->need) { x->need = v; changed = 1; }
        }
        if (!changed) break;
    }
}

static void grammar_free(lamina_grammar *g)
{
    if (!g) return;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        gnode *x = &g->nodes[i];
        for (int j = 0; j < x->n_props; j++) free(x->props[j].name);
        free(x->props);
        free(x->prefix);
        for (int j = 0; j < x->n_lits; j++) free(x->lits[j]);
        free(x->lits);
        free(x->lit_lens);
        free(x->alts);
        free(x->seq);
    }
    for (int32_t i = 0; i < g->n_dfas; i++) {
        free(g->dfas[i].next);
        free(g->dfas[i].acc);
    }
    free(g->dfas);
    free(g->nodes);
    free(g);
}

int lamina_grammar_compile(json_t *schema, lamina_grammar **out, char *err, size_t err_size)
{
    *out = NULL;
    lamina_grammar *g = calloc(1, sizeof *g);
    if (!g) { if (err) snprintf(err, err_size, "out of memory"); return LAMINA_ENOMEM; }
    g->refs = 1;
    g->any = -1;
    cctx c = { .g = g, .root = schema, .err = err, .err_size = err_size };
    int32_t root = schema ? compile(&c, schema, "$") : any_node(&c);
    int rc = root < 0 ? -1 : flatten_alts(&c);
    free(c.memo_key);
    free(c.memo_node);
    if (rc == 0) {
        g->root = root;
        compute_need(g);
        if (g->nodes[root].need > MAXD)
            rc = cfail(&c, "the schema has no instance nested at most %d deep (a $ref cycle without an end?)", MAXD);
    }
    if (rc < 0) {
        grammar_free(g);
        return LAMINA_EINVAL;
    }
    *out = g;
    return 0;
}

int lamina_grammar_compile_text(const char *text, size_t len, lamina_grammar **out, char *err, size_t err_size)
{
    json_error_t je;
    *out = NULL;
    json_t *j = json_loadb(text, len, JSON_DECODE_ANY, &je);
    if (!j) {
        if (err) snprintf(err, err_size, "the schema is not JSON: %s (line %d)", je.text, je.line);
        return LAMINA_EINVAL;
    }
    int rc = lamina_grammar_compile(j, out, err, err_size);
    json_decref(j);
    return rc;
}

/* A GBNF terminal (one character of a class, or a literal) as a DFA
 * whose accepting state ends it; its index, or -1. */
static int32_t term_dfa(cctx *c, const lamina_gsym *s)
{
    rxc r;
    memset(&r, 0, sizeof r);
    r.c = c;
    r.path = "grammar";
    r.any_byte = 1;
    int32_t id = -1;
    rfrag f = { -1, -1 };
    if (s->kind == LAMINA_GS_CHARS) {
        cset *cs = malloc(sizeof *cs);
        if (!cs) return cfail(c, "out of memory");
        cs->n = 0;
        int bad = 0;
        for (int32_t i = 0; i < s->n_ranges && !bad; i++) bad = cset_add(&r, cs, s->ranges[2 * i], s->ranges[2 * i + 1]);
        if (!bad) bad = rx_set_frag(&r, cs, &f);
        free(cs);
        if (bad) goto done;
    } else {
        f.s = rx_state(&r);
        int32_t cur = f.s;
        for (size_t i = 0; i < s->n_bytes && cur >= 0; i++) {
            int32_t nx = rx_state(&r);
            if (nx < 0 || rx_edge(&r, cur, nx, (unsigned char)s->bytes[i], (unsigned char)s->bytes[i])) goto done;
            cur = nx;
        }
        if (cur < 0) goto done;
        f.t = cur;
    }
    id = rx_add_dfa(&r, f.s, f.t, 0, -1);
done:
    free(r.e);
    return id;
}

/* A one-part sequence stands for its part. */
static int32_t skip_unit(const lamina_grammar *g, int32_t x)
{
    while (g->nodes[x].kind == N_SEQ && g->nodes[x].n_seq == 1) x = g->nodes[x].seq[0];
    return x;
}

#define GBNF_MAX_ENTER 64   /* rules entered before a character is read */

/* The most frames pushed from node x before a byte is read (memo in
 * hops[], -1 unknown); -1 when over GBNF_MAX_ENTER.  There is no left
 * recursion (gbnf.c refused it), so this ends. */
static int left_hops(const lamina_grammar *g, int32_t x, int32_t *hops, int depth)
{
    if (hops[x] >= 0) return hops[x];
    if (depth > 2 * GBNF_MAX_ENTER + 2) return -1;   /* alternatives take no frame */
    const gnode *nd = &g->nodes[x];
    int best = 0;
    if (nd->kind == N_ALT) {
        for (int j = 0; j < nd->n_alts; j++) {
            int h = left_hops(g, nd->alts[j], hops, depth + 1);
            if (h < 0) return -1;
            if (h > best) best = h;
        }
    } else if (nd->kind == N_SEQ) {
        for (int j = 0; j < nd->n_seq; j++) {
            int h = left_hops(g, nd->seq[j], hops, depth + 1);
            if (h < 0) return -1;
            if (j + 1 + h > best) best = j + 1 + h;
            if (!g->nodes[nd->seq[j]].nullable) break;
        }
    }
    if (best > GBNF_MAX_ENTER) return -1;
    return hops[x] = best;
}

int lamina_grammar_compile_gbnf(const char *text, size_t len, lamina_grammar **out, char *err, size_t err_size)
{
    *out = NULL;
    lamina_gbnf *gb = NULL;
    int rc = lamina_gbnf_parse(text, len, &gb, err, err_size);
    if (rc < 0) return rc;
    lamina_grammar *g = calloc(1, sizeof *g);
    if (!g) {
        lamina_gbnf_free(gb);
        if (err) snprintf(err, err_size, "out of memory");
        return LAMINA_ENOMEM;
    }
    g->refs = 1;
    g->any = -1;
    cctx c = { .g = g, .err = err, .err_size = err_size };
    rc = 0;
    /* node i is symbol i */
    for (int32_t i = 0; i < gb->n_syms && rc == 0; i++) {
        const lamina_gsym *sy = &gb->syms[i];
        int kind = sy->kind == LAMINA_GS_ALT ? N_ALT : sy->kind == LAMINA_GS_SEQ ? N_SEQ : N_TERM;
        if (new_node(&c, kind) != i) { rc = -1; break; }
        gnode *nd = &g->nodes[i];
        if (sy->kind == LAMINA_GS_ALT || sy->kind == LAMINA_GS_SEQ) {
            int32_t *k = malloc(((size_t)sy->n_kids + 1) * sizeof *k);
            if (!k) { rc = cfail(&c, "out of memory"); break; }
            if (sy->n_kids) memcpy(k, sy->kids, (size_t)sy->n_kids * sizeof *k);
            if (kind == N_ALT) { nd->alts = k; nd->n_alts = sy->n_kids; }
            else { nd->seq = k; nd->n_seq = sy->n_kids; }
        } else if ((nd->dfa = term_dfa(&c, sy)) < 0) rc = -1;
    }
    for (int32_t i = 0; i < g->n_nodes && rc == 0; i++) {
        gnode *nd = &g->nodes[i];
        for (int j = 0; j < nd->n_alts; j++) nd->alts[j] = skip_unit(g, nd->alts[j]);
        for (int j = 0; j < nd->n_seq; j++) nd->seq[j] = skip_unit(g, nd->seq[j]);
    }
    if (rc == 0) rc = flatten_alts(&c);
    if (rc == 0) {
        g->root = skip_unit(g, gb->root);
        g->gbnf = 1;
        compute_need(g);
        if (g->nodes[g->root].need > MAXD)
            rc = cfail(&c, "the grammar's shortest output nests rules more than %d deep", MAXD);
    }
    if (rc == 0) {
        int32_t *hops = malloc((size_t)g->n_nodes * sizeof *hops);
        if (!hops) rc = cfail(&c, "out of memory");
        else {
            memset(hops, -1, (size_t)g->n_nodes * sizeof *hops);
            for (int32_t i = 0; i < g->n_nodes && rc == 0; i++)
                if (left_hops(g, i, hops, 0) < 0)
                    rc = cfail(&c, "the grammar enters more than %d rules (or optional parts) before reading a "
                               "character", GBNF_MAX_ENTER);
            free(hops);
        }
    }
    lamina_gbnf_free(gb);
    if (rc < 0) {
        grammar_free(g);
        return LAMINA_EINVAL;
    }
    *out = g;
    return 0;
}

lamina_grammar *lamina_grammar_ref(lamina_grammar *g)
{
    if (g) __atomic_add_fetch(&g->refs, 1, __ATOMIC_RELAXED);
    return g;
}

void lamina_grammar_unref(lamina_grammar *g)
{
    if (g && __atomic_sub_fetch(&g->refs, 1, __ATOMIC_ACQ_REL) == 0) grammar_free(g);
}

/* ------------------------------------------------------------------ */
/* Matching                                                           */

typedef struct gframe {
    int32_t node;
    uint8_t st, ws, u8, flags;
    int32_t a, b;
    int32_t pos, pad;
    uint64_t m1, m2;
} gframe;

typedef struct gset {
    int n;                      /* stacks */
    int nf;                     /* frames in use */
    int off[MAXS + 1];
    gframe f[MAXS * MAXD];
} gset;

enum {  /* frame states; 0 is "before the value" for every kind */
    ST_START = 0,
    O_OPEN, O_KEY, O_COLON, O_VALUE, O_AFTER, O_COMMA,
    A_OPEN, A_ITEM, A_AFTER,
    S_IN, S_ESC, S_U1, S_U2, S_U3, S_U4,
    N_SIGN, N_ZERO, N_INT, N_FRAC0, N_FRAC, N_EXP0, N_EXPS, N_EXP,
    L_IN
};

enum { R_FAIL, R_OK, R_DONE, R_POP, R_PUSH, R_PUSH_RETRY, R_TAIL_RETRY };

#define MAX_HOPS 128    /* frames pushed for one byte before it is read */

#define F_ADDL 1        /* object key: the additional-property path is alive */
#define F_ESC 2         /* object key: the byte before was an escaping backslash */

static int is_ws(unsigned c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

/* A whitespace run (as llama.cpp's JSON grammar): one space, or a newline
 * and at most WS_MAX spaces or tabs.  ws: 0 none yet, 1..WS_MAX+1 after a
 * newline, WS_ONE after a single space. */
#define WS_ONE 255
static int ws_step(gframe *f, unsigned c)
{
    if (f->ws == 0) {
        if (c == ' ') { f->ws = WS_ONE; return 1; }
        if (c == '\n') { f->ws = 1; return 1; }
        return 0;
    }
    if (f->ws != WS_ONE && f->ws <= WS_MAX && (c == ' ' || c == '\t')) { f->ws++; return 1; }
    return 0;
}

/* The next-property state of an object frame: allowed declared props
 * (mask) and whether required ones remain. */
static uint64_t allowed_props(const gnode *o, int32_t p, int *req_left)
{
    uint64_t m = 0;
    int rl = 0;
    for (int j = p; j < o->n_props; j++) {
        if (!rl) m |= 1ull << j;
        if (o->props[j].required) rl = 1;
    }
    *req_left = rl;
    return m;
}

/* UTF-8 inside strings: the lead byte sets u8 = range << 2 | pending. */
static int utf8_step(uint8_t *u8, unsigned c, int *counted)
{
    *counted = 0;
    if (*u8 & 3) {
        int range = *u8 >> 2;
        unsigned lo = 0x80, hi = 0xBF;
        if (range == 1) lo = 0xA0;
        else if (range == 2) hi = 0x9F;
        else if (range == 3) lo = 0x90;
        else if (range == 4) hi = 0x8F;
        if (c < lo || c > hi) return 0;
        *u8 = (uint8_t)((*u8 & 3) - 1);
        return 1;
    }
    if (c < 0x80) { *counted = 1; return 1; }
    if (c >= 0xC2 && c <= 0xDF) *u8 = 1;
    else if (c == 0xE0) *u8 = 1 << 2 | 2;
    else if (c == 0xED) *u8 = 2 << 2 | 2;
    else if (c >= 0xE1 && c <= 0xEF) *u8 = 2;
    else if (c == 0xF0) *u8 = 3 << 2 | 3;
    else if (c == 0xF4) *u8 = 4 << 2 | 3;
    else if (c >= 0xF1 && c <= 0xF3) *u8 = 3;
    else return 0;
    *counted = 1;
    return 1;
}

static int fits(const lamina_grammar *g, int depth, int32_t node)
{
    return depth + g->nodes[node].need <= MAXD;
}

/* One byte on the top frame f (at stack depth `depth`, counting f).
 * *push gets the node for R_PUSH / R_PUSH_RETRY. */
static int frame_step(const lamina_grammar *g, gframe *f, int depth, unsigned c, int32_t *push)
{
    const gnode *nd = &g->nodes[f->node];
    int counted;
    if (nd->kind == N_SEQ) {    /* the next part takes the byte */
        if (f->a >= nd->n_seq) return R_POP;
        *push = nd->seq[f->a++];
        return f->a == nd->n_seq ? R_TAIL_RETRY : R_PUSH_RETRY;
    }
    if (nd->kind == N_TERM) {
        const gdfa *d = &g->dfas[nd->dfa];
        int32_t to = dfa_next(d, f->b, c);
        if (to < 0) return R_FAIL;
        f->b = to;
        return d->acc[to] ? R_DONE : R_OK;
    }
    switch (f->st) {
    case ST_START:
        if (is_ws(c)) return ws_step(f, c) ? R_OK : R_FAIL;
        f->ws = 0;
        switch (nd->kind) {
        case N_OBJECT: if (c != '{') return R_FAIL; f->st = O_OPEN; f->a = 0; return R_OK;
        case N_ARRAY: if (c != '[') return R_FAIL; f->st = A_OPEN; f->a = 0; return R_OK;
        case N_STRING: if (c != '"') return R_FAIL; f->st = S_IN; f->a = 0; return R_OK;
        case N_NUMBER: case N_INTEGER:
            if (c == '-') {
                if (nd->ranged && !num_viable(nd, 1, 0, 0, 0, 0, 0)) return R_FAIL;
                f->st = N_SIGN;
                f->flags = 1;
                return R_OK;
            }
            f->flags = 0;
            goto first_digit;
        case N_LITERAL: f->st = L_IN; f->a = 0; f->b = nd->n_lits - 1; f->pos = 0; break;
        default: return R_FAIL;
        }
        /* fall through: literal */
        /* FALLTHROUGH */
    case L_IN: {
        int lo = f->a, hi = f->b, nlo = -1, nhi = -1;
        for (int i = lo; i <= hi; i++) {
            if (nd->lit_lens[i] > (size_t)f->pos && (unsigned char)nd->lits[i][f->pos] == c) {
                if (nlo < 0) nlo = i;
                nhi = i;
            }
        }
        if (nlo < 0) return nd->lit_lens[lo] == (size_t)f->pos ? R_POP : R_FAIL;
        f->a = nlo;
        f->b = nhi;
        f->pos++;
        if (nlo == nhi && nd->lit_lens[nlo] == (size_t)f->pos) return R_DONE;
        return R_OK;
    }
    /* ---- objects ---- */
    case O_OPEN: case O_COMMA: case O_AFTER:
        if (is_ws(c)) return ws_step(f, c) ? R_OK : R_FAIL;
        {
            int rl;
            uint64_t allowed = allowed_props(nd, f->a, &rl);
            for (int j = 0; j < nd->n_props; j++)
                if ((allowed >> j & 1) && !fits(g, depth, nd->props[j].node)) allowed &= ~(1ull << j);
            int addl = nd->addl >= 0 && !rl && fits(g, depth, nd->addl);
            if (f->st == O_AFTER) {
                if (c == '}' && !rl) return R_DONE;
                if (c == ',' && (allowed || addl)) { f->st = O_COMMA; f->ws = 0; return R_OK; }
                return R_FAIL;
            }
            if (c == '}' && f->st == O_OPEN && !rl) return R_DONE;
            if (c != '"' || (!allowed && !addl)) return R_FAIL;
            f->st = O_KEY;
            f->ws = 0;
            f->m1 = nd->n_props ? (nd->n_props == 64 ? ~0ull : (1ull << nd->n_props) - 1) : 0;
            f->m2 = allowed;
            f->flags = addl ? F_ADDL : 0;
            f->u8 = 0;
            f->pos = 0;
            return R_OK;
        }
    case O_KEY:
        if (c == '"' && !(f->flags & F_ESC)) {
            for (int j = 0; j < nd->n_props; j++)
                if ((f->m1 & f->m2) >> j & 1 && nd->props[j].len == (size_t)f->pos) {
                    f->b = j;
                    f->st = O_COLON;
                    return R_OK;
                }
            if (!(f->flags & F_ADDL) || f->u8) return R_FAIL;
            for (int j = 0; j < nd->n_props; j++)
                if (f->m1 >> j & 1 && nd->props[j].len == (size_t)f->pos) return R_FAIL;
            f->b = -1;
            f->st = O_COLON;
            return R_OK;
        } else {
            uint64_t m = 0;
            for (int j = 0; j < nd->n_props; j++)
                if (f->m1 >> j & 1 && nd->props[j].len > (size_t)f->pos &&
                    (unsigned char)nd->props[j].name[f->pos] == c)
                    m |= 1ull << j;
            if ((f->flags & F_ADDL) && (c < 0x20 || c == '\\' || !utf8_step(&f->u8, c, &counted)))
                f->flags &= (uint8_t)~F_ADDL;
            if (!(m & f->m2) && !(f->flags & F_ADDL)) return R_FAIL;
            if (c == '\\' && !(f->flags & F_ESC)) f->flags |= F_ESC;
            else f->flags &= (uint8_t)~F_ESC;
            f->m1 = m;
            f->pos++;
            return R_OK;
        }
    case O_COLON:
        if (is_ws(c)) return ws_step(f, c) ? R_OK : R_FAIL;
        if (c != ':') return R_FAIL;
        f->ws = 0;
        f->st = O_VALUE;
        *push = f->b >= 0 ? nd->props[f->b].node : nd->addl;
        return R_PUSH;
    /* ---- arrays ---- */
    case A_OPEN: case A_AFTER:
        if (is_ws(c)) return ws_step(f, c) ? R_OK : R_FAIL;
        {
            int32_t it = f->a < nd->n_prefix ? nd->prefix[f->a] : nd->items;
            int more = it >= 0 && (nd->max_items < 0 || f->a < nd->max_items) &&
                       (f->a < nd->min_items || fits(g, depth, it));
            if (c == ']' && f->a >= nd->min_items) return R_DONE;
            if (f->st == A_AFTER) {
                if (c != ',' || !more) return R_FAIL;
                f->ws = 0;
                f->st = A_ITEM;
                *push = it;
                return R_PUSH;
            }
            if (!more) return R_FAIL;
            f->ws = 0;
            f->st = A_ITEM;
            *push = it;
            return R_PUSH_RETRY;
        }
    /* ---- strings ---- */
    case S_IN:
        if (nd->dfa >= 0) {     /* pattern/format: the DFA state in b */
            const gdfa *d = &g->dfas[nd->dfa];
            if (c == '"') return d->acc[f->b] ? R_DONE : R_FAIL;
            if (c == '\\') {
                static const unsigned char esc[8] = { '"', '\\', '/', 8, 9, 10, 12, 13 };
                for (int i = 0; i < 8; i++)
                    if (dfa_next(d, f->b, esc[i]) >= 0) { f->st = S_ESC; return R_OK; }
                return R_FAIL;
            }
            if (c < 0x20) return R_FAIL;
            int32_t to = dfa_next(d, f->b, c);
            if (to < 0) return R_FAIL;
            f->b = to;
            return R_OK;
        }
        if (f->u8 == 0) {
            if (c == '"') return f->a >= nd->min_len ? R_DONE : R_FAIL;
            if (c == '\\') {
                if (nd->max_len >= 0 && f->a >= nd->max_len) return R_FAIL;
                f->st = S_ESC;
                return R_OK;
            }
            if (c < 0x20) return R_FAIL;
            if (nd->max_len >= 0 && f->a >= nd->max_len) return R_FAIL;
        }
        if (!utf8_step(&f->u8, c, &counted)) return R_FAIL;
        if (counted) f->a++;
        return R_OK;
    case S_ESC:
        if (nd->dfa >= 0) {     /* no \u escapes: the decoded byte goes to the DFA */
            static const char escs[] = "\"\\/bfnrt";
            static const unsigned char dec[8] = { '"', '\\', '/', 8, 12, 10, 13, 9 };
            const char *p = c ? strchr(escs, (int)c) : NULL;
            if (!p) return R_FAIL;
            int32_t to = dfa_next(&g->dfas[nd->dfa], f->b, dec[p - escs]);
            if (to < 0) return R_FAIL;
            f->b = to;
            f->st = S_IN;
            return R_OK;
        }
        if (c == 'u') { f->st = S_U1; f->flags = 0; return R_OK; }
        if (!strchr("\"\\/bfnrt", (int)c) || c == 0) return R_FAIL;
        f->a++;
        f->st = S_IN;
        return R_OK;
    case S_U1: case S_U2: case S_U3: case S_U4: {
        int hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if (!hex) return R_FAIL;
        if (f->st == S_U1) f->flags = (c == 'd' || c == 'D');
        else if (f->st == S_U2 && f->flags && !(c >= '0' && c <= '7')) return R_FAIL;
        if (f->st == S_U4) { f->a++; f->st = S_IN; f->flags = 0; return R_OK; }
        f->st++;
        return R_OK;
    }
    /* ---- numbers ---- */
    /* with bounds (ranged), m1 holds the integer part, m2 the fraction
     * digits, flags the sign; a digit is taken only if the number can
     * still end within the bounds; no exponent */
    case N_SIGN:
    first_digit:
        if (c < '0' || c > '9') return R_FAIL;
        if (nd->ranged) {
            if (!num_viable(nd, f->flags, c - '0', 1, 0, 0, 0)) return R_FAIL;
            f->m1 = c - '0';
        }
        f->st = c == '0' ? N_ZERO : N_INT;
        f->a = 1;
        return R_OK;
    case N_ZERO: case N_INT:
        if (c >= '0' && c <= '9' && f->st == N_INT && f->a < INT_DIGITS) {
            if (nd->ranged) {
                if (!num_viable(nd, f->flags, f->m1 * 10 + (c - '0'), f->a + 1, 0, 0, 0)) return R_FAIL;
                f->m1 = f->m1 * 10 + (c - '0');
            }
            f->a++;
            return R_OK;
        }
        if (nd->kind == N_NUMBER && c == '.') {
            if (nd->ranged && !num_viable(nd, f->flags, f->m1, f->a, 1, 0, 0)) return R_FAIL;
            f->st = N_FRAC0;
            f->a = 0;
            return R_OK;
        }
        if (nd->kind == N_NUMBER && (c == 'e' || c == 'E') && !nd->ranged) { f->st = N_EXP0; return R_OK; }
        if (c >= '0' && c <= '9') return R_FAIL;
        return !nd->ranged || num_in_range(nd, f->flags, f->m1, 0, 0, 0) ? R_POP : R_FAIL;
    case N_FRAC0: case N_FRAC:
        if (c >= '0' && c <= '9') {
            if (f->a >= FRAC_DIGITS) return R_FAIL;
            if (nd->ranged) {
                if (!num_viable(nd, f->flags, f->m1, 0, 1, f->m2 * 10 + (c - '0'), f->a + 1)) return R_FAIL;
                f->m2 = f->m2 * 10 + (c - '0');
            }
            f->st = N_FRAC;
            f->a++;
            return R_OK;
        }
        if (f->st == N_FRAC0) return R_FAIL;
        if ((c == 'e' || c == 'E') && !nd->ranged) { f->st = N_EXP0; return R_OK; }
        if (c == 'e' || c == 'E') return R_FAIL;
        return !nd->ranged || num_in_range(nd, f->flags, f->m1, 1, f->m2, f->a) ? R_POP : R_FAIL;
    case N_EXP0:
        if (c == '+' || c == '-') { f->st = N_EXPS; return R_OK; }
        /* FALLTHROUGH */
    case N_EXPS:
        if (c >= '0' && c <= '9') { f->st = N_EXP; f->a = 1; return R_OK; }
        return R_FAIL;
    case N_EXP:
        if (c >= '0' && c <= '9') { if (f->a >= EXP_DIGITS) return R_FAIL; f->a++; return R_OK; }
        return R_POP;
    default:
        return R_FAIL;
    }
}

static int frame_can_end(const lamina_grammar *g, const gframe *f)
{
    const gnode *nd = &g->nodes[f->node];
    if (nd->kind == N_SEQ) {
        for (int j = f->a; j < nd->n_seq; j++)
            if (!g->nodes[nd->seq[j]].nullable) return 0;
        return 1;
    }
    if (nd->kind == N_TERM) return 0;
    switch (f->st) {
    case N_ZERO: case N_INT: case N_FRAC:
        return !nd->ranged || num_in_range(nd, f->flags, f->m1, f->st == N_FRAC, f->m2, f->a);
    case N_EXP: return 1;
    case L_IN: return nd->lit_lens[f->a] == (size_t)f->pos;
    default: return 0;
    }
}

/* The parent learns that its child value is complete. */
static void child_done(const lamina_grammar *g, gframe *f)
{
    const gnode *nd = &g->nodes[f->node];
    f->ws = 0;
    if (nd->kind == N_SEQ) return;     /* already at the next part */
    if (nd->kind == N_OBJECT) {
        f->a = f->b >= 0 ? f->b + 1 : nd->n_props;
        f->st = O_AFTER;
    } else {
        if (f->a < INT32_MAX / 2) f->a++;
        f->st = A_AFTER;
    }
}

static void frame_init(gframe *f, int32_t node)
{
    memset(f, 0, sizeof *f);
    f->node = node;
}

/* Append stack w[0..n) to dst, pushing node (ALT expanded into its
 * alternatives that fit) when node >= 0. */
static void emit_stack(const lamina_grammar *g, gset *dst, const gframe *w, int n, int32_t node)
{
    const gnode *nd = node >= 0 ? &g->nodes[node] : NULL;
    int nalt = nd && nd->kind == N_ALT ? nd->n_alts : 1;
    for (int k = 0; k < nalt; k++) {
        int32_t x = nd && nd->kind == N_ALT ? nd->alts[k] : node;
        if (x >= 0 && !fits(g, n, x)) continue;
        int total = n + (x >= 0);
        if (dst->n >= MAXS || dst->nf + total > MAXS * MAXD) return;
        gframe *o = &dst->f[dst->nf];
        if (n) memcpy(o, w, (size_t)n * sizeof *o);
        if (x >= 0) frame_init(&o[n], x);
        /* the same stack twice adds nothing */
        int dup = 0;
        for (int i = 0; i < dst->n && !dup; i++)
            dup = dst->off[i + 1] - dst->off[i] == total &&
                  !memcmp(&dst->f[dst->off[i]], o, (size_t)total * sizeof *o);
        if (dup) continue;
        dst->nf += total;
        dst->off[++dst->n] = dst->nf;
    }
}

/* Feed byte c to one stack (copied into w, which may be src), appending
 * the results to dst; hops: frames pushed for this byte so far. */
static void stack_step(const lamina_grammar *g, const gframe *src, int n, unsigned c, gset *dst, gframe *w,
                       int hops)
{
    if (w != src) memcpy(w, src, (size_t)n * sizeof *w);
    for (;;) {
        if (n == 0) return;
        int32_t push = -1;
        int r = frame_step(g, &w[n - 1], n, c, &push);
        switch (r) {
        case R_FAIL: return;
        case R_OK: emit_stack(g, dst, w, n, -1); return;
        case R_DONE:
            n--;
            if (n > 0) child_done(g, &w[n - 1]);
            emit_stack(g, dst, w, n, -1);
            return;
        case R_POP:
            n--;
            if (n > 0) child_done(g, &w[n - 1]);
            continue;
        case R_PUSH: emit_stack(g, dst, w, n, push); return;
        case R_TAIL_RETRY:      /* the sequence's last part replaces it */
            n--;
            /* FALLTHROUGH */
        case R_PUSH_RETRY: {
            /* each alternative of the pushed node takes the byte */
            if (hops >= MAX_HOPS || n >= MAXD) return;
            const gnode *pn = &g->nodes[push];
            int nalt = pn->kind == N_ALT ? pn->n_alts : 1;
            gframe w2[MAXD];
            for (int k = 0; k < nalt; k++) {
                int32_t x = pn->kind == N_ALT ? pn->alts[k] : push;
                if (!fits(g, n, x)) continue;
                memcpy(w2, w, (size_t)n * sizeof *w2);
                frame_init(&w2[n], x);
                stack_step(g, w2, n + 1, c, dst, w2, hops + 1);
            }
            return;
        }
        }
    }
}

static void set_step(const lamina_grammar *g, const gset *src, unsigned c, gset *dst)
{
    gframe w[MAXD];
    dst->n = 0;
    dst->nf = 0;
    dst->off[0] = 0;
    for (int i = 0; i < src->n; i++)
        stack_step(g, &src->f[src->off[i]], src->off[i + 1] - src->off[i], c, dst, w, 0);
}

static int set_can_end(const lamina_grammar *g, const gset *s)
{
    for (int i = 0; i < s->n; i++) {
        int ok = 1;     /* every frame, from the top, can end */
        for (int k = s->off[i + 1] - 1; k >= s->off[i] && ok; k--) ok = frame_can_end(g, &s->f[k]);
        if (ok) return 1;
    }
    return 0;
}

static int set_done(const gset *s)
{
    for (int i = 0; i < s->n; i++)
        if (s->off[i + 1] != s->off[i]) return 0;
    return s->n > 0;
}

static size_t set_bytes(const gset *s)
{
    return offsetof(gset, f) + (size_t)s->nf * sizeof(gframe);
}

/* ------------------------------------------------------------------ */
/* Vocabulary                                                         */

enum { T_NONE = 0, T_NORMAL = 1, T_EOG = 2 };

struct lamina_gvocab {
    int32_t n_vocab;
    const char **bytes;
    uint32_t *len;
    uint8_t *kind;
    uint8_t *plain;         /* only string characters, whole UTF-8 */
    int32_t *nchars;
    int32_t *order, *lcp;   /* normal tokens sorted by bytes */
    int32_t n_order;
    int32_t *order2, *lcp2; /* the normal tokens that are not plain */
    int32_t n_order2;
    /* by position in order: bytes (contiguous, for cache-friendly walks),
     * offsets into them, lengths, plain */
    char *obytes;
    uint32_t *ooff, *olen;
    uint8_t *oplain;
    uint32_t max_len;
};

static const lamina_gvocab *sort_vocab;
static int cmp_tok_bytes(const void *x, const void *y)
{
    int32_t a = *(const int32_t *)x, b = *(const int32_t *)y;
    const lamina_gvocab *v = sort_vocab;
    uint32_t la = v->len[a], lb = v->len[b];
    int c = memcmp(v->bytes[a], v->bytes[b], la < lb ? la : lb);
    if (c) return c;
    return la < lb ? -1 : la > lb ? 1 : (a < b ? -1 : a > b);
}

static void make_lcp(const lamina_gvocab *v, const int32_t *order, int32_t n, int32_t *lcp)
{
    for (int32_t i = 0; i < n; i++) {
        if (i == 0) { lcp[i] = 0; continue; }
        int32_t a = order[i - 1], b = order[i];
        uint32_t k = 0, m = v->len[a] < v->len[b] ? v->len[a] : v->len[b];
        while (k < m && v->bytes[a][k] == v->bytes[b][k]) k++;
        lcp[i] = (int32_t)k;
    }
}

void lamina_gvocab_free(lamina_gvocab *v)
{
    if (!v) return;
    free(v->bytes); free(v->len); free(v->kind); free(v->plain); free(v->nchars);
    free(v->order); free(v->lcp); free(v->order2); free(v->lcp2);
    free(v->obytes); free(v->ooff); free(v->olen); free(v->oplain);
    free(v);
}

int lamina_gvocab_create(const lamina_tokenizer *tok, int32_t n_vocab, lamina_gvocab **out,
                         char *err, size_t err_size)
{
    *out = NULL;
    lamina_gvocab *v = calloc(1, sizeof *v);
    size_t n = n_vocab > 0 ? (size_t)n_vocab : 1;
    if (v) {
        v->n_vocab = n_vocab;
        v->bytes = calloc(n, sizeof *v->bytes);
        v->len = calloc(n, sizeof *v->len);
        v->kind = calloc(n, 1);
        v->plain = calloc(n, 1);
        v->nchars = calloc(n, sizeof *v->nchars);
        v->order = malloc(n * sizeof *v->order);
        v->lcp = malloc(n * sizeof *v->lcp);
        v->order2 = malloc(n * sizeof *v->order2);
        v->lcp2 = malloc(n * sizeof *v->lcp2);
    }
    if (!v || !v->bytes || !v->len || !v->kind || !v->plain || !v->nchars || !v->order || !v->lcp ||
        !v->order2 || !v->lcp2) {
        lamina_gvocab_free(v);
        if (err) snprintf(err, err_size, "out of memory");
        return LAMINA_ENOMEM;
    }
    int32_t nt = lamina_tokenizer_n_vocab(tok);
    for (int32_t i = 0; i < n_vocab; i++) {
        v->bytes[i] = "";
        if (i >= nt) continue;
        if (lamina_tokenizer_is_eog(tok, i)) { v->kind[i] = T_EOG; continue; }
        size_t len;
        const char *p = lamina_tokenizer_piece(tok, i, 0, &len);
        if (!p || len == 0 || len > 4096) continue;
        v->bytes[i] = p;
        v->len[i] = (uint32_t)len;
        v->kind[i] = T_NORMAL;
        v->order[v->n_order++] = i;
        if (len > v->max_len) v->max_len = (uint32_t)len;
        /* plain: string content with no quote, backslash or control byte, whole UTF-8 */
        uint8_t u8 = 0;
        int ok = 1, chars = 0, counted;
        for (size_t k = 0; k < len && ok; k++) {
            unsigned c = (unsigned char)p[k];
            if (c < 0x20 || c == '"' || c == '\\') ok = 0;
            else if (!utf8_step(&u8, c, &counted)) ok = 0;
            else chars += counted;
        }
        v->plain[i] = (uint8_t)(ok && u8 == 0);
        v->nchars[i] = chars;
        if (!v->plain[i]) v->order2[v->n_order2++] = i;
    }
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&mu);
    sort_vocab = v;
    qsort(v->order, (size_t)v->n_order, sizeof *v->order, cmp_tok_bytes);
    qsort(v->order2, (size_t)v->n_order2, sizeof *v->order2, cmp_tok_bytes);
    sort_vocab = NULL;
    pthread_mutex_unlock(&mu);
    make_lcp(v, v->order, v->n_order, v->lcp);
    make_lcp(v, v->order2, v->n_order2, v->lcp2);
    size_t total = 0, no = (size_t)v->n_order + 1;
    for (int32_t i = 0; i < v->n_order; i++) total += v->len[v->order[i]];
    v->obytes = malloc(total + 1);
    v->ooff = malloc(no * sizeof *v->ooff);
    v->olen = malloc(no * sizeof *v->olen);
    v->oplain = malloc(no);
    if (!v->obytes || !v->ooff || !v->olen || !v->oplain || total > UINT32_MAX) {
        lamina_gvocab_free(v);
        if (err) snprintf(err, err_size, "out of memory");
        return LAMINA_ENOMEM;
    }
    total = 0;
    for (int32_t i = 0; i < v->n_order; i++) {
        int32_t t = v->order[i];
        memcpy(v->obytes + total, v->bytes[t], v->len[t]);
        v->ooff[i] = (uint32_t)total;
        v->olen[i] = v->len[t];
        v->oplain[i] = v->plain[t];
        total += v->len[t];
    }
    *out = v;
    return 0;
}

/* ------------------------------------------------------------------ */
/* The matcher                                                        */

/* GBNF grammars: the parse-stack sets met while masking, interned, with
 * their transitions by byte filled in as they are taken (a lazily built
 * DFA of the grammar's states), kept across steps; cleared when full. */
#define MEMO_MAX_STATES 4096
#define MEMO_MAX_BYTES (32u << 20)

typedef struct gmemo {
    int32_t n, cap;
    gset **st;              /* [cap] interned sets (exact size) */
    int32_t *trans;         /* [cap * 256]: -2 not yet taken, -1 refused */
    int32_t *ht;            /* hash table of state ids, -1 empty */
    uint32_t hsize;
    size_t bytes;
} gmemo;

struct lamina_gmatch {
    const lamina_grammar *g;
    const lamina_gvocab *v;
    gset cur;
    gset *scratch;          /* [max_len + 1] states by depth */
    uint32_t n_scratch;
    uint8_t *allowed;       /* [n_vocab] */
    int32_t *dstate;        /* [max_len + 1] DFA states by depth */
    gmemo memo;             /* GBNF grammars only */
};

static void memo_clear(gmemo *mo)
{
    for (int32_t i = 0; i < mo->n; i++) free(mo->st[i]);
    mo->n = 0;
    mo->bytes = 0;
    if (mo->ht) memset(mo->ht, -1, (size_t)mo->hsize * sizeof *mo->ht);
}

static void memo_free(gmemo *mo)
{
    memo_clear(mo);
    free(mo->st);
    free(mo->trans);
    free(mo->ht);
    memset(mo, 0, sizeof *mo);
}

static uint32_t memo_hash(const gset *s)
{
    uint32_t h = 2166136261u;
    const unsigned char *p = (const unsigned char *)s->f;
    for (size_t i = 0; i < (size_t)s->nf * sizeof(gframe); i++) h = (h ^ p[i]) * 16777619u;
    for (int i = 0; i <= s->n; i++) h = (h ^ (uint32_t)s->off[i]) * 16777619u;
    return h;
}

static int memo_same(const gset *a, const gset *b)
{
    return a->n == b->n && a->nf == b->nf && !memcmp(a->off, b->off, (size_t)(a->n + 1) * sizeof a->off[0]) &&
           !memcmp(a->f, b->f, (size_t)a->nf * sizeof(gframe));
}

/* The id of set s (interned when new); -1 when the memo is full or
 * memory runs out. */
static int32_t memo_intern(gmemo *mo, const gset *s)
{
    if (!mo->ht) {
        mo->hsize = 2 * MEMO_MAX_STATES;
        mo->ht = malloc((size_t)mo->hsize * sizeof *mo->ht);
        if (!mo->ht) return -1;
        memset(mo->ht, -1, (size_t)mo->hsize * sizeof *mo->ht);
    }
    uint32_t h = memo_hash(s) & (mo->hsize - 1);
    while (mo->ht[h] >= 0) {
        if (memo_same(mo->st[mo->ht[h]], s)) return mo->ht[h];
        h = (h + 1) & (mo->hsize - 1);
    }
    size_t sz = set_bytes(s);
    if (mo->n >= MEMO_MAX_STATES || mo->bytes + sz > MEMO_MAX_BYTES) return -1;
    if (mo->n == mo->cap) {
        int32_t cap = mo->cap ? mo->cap * 2 : 64;
        gset **st = realloc(mo->st, (size_t)cap * sizeof *st);
        if (!st) return -1;
        mo->st = st;
        int32_t *tr = realloc(mo->trans, (size_t)cap * 256 * sizeof *tr);
        if (!tr) return -1;
        mo->trans = tr;
        mo->cap = cap;
    }
    gset *c = malloc(sz);
    if (!c) return -1;
    memcpy(c, s, sz);
    int32_t id = mo->n++;
    mo->st[id] = c;
    mo->bytes += sz;
    for (int b = 0; b < 256; b++) mo->trans[(size_t)id * 256 + (size_t)b] = -2;
    mo->ht[h] = id;
    return id;
}

int lamina_gmatch_create(const lamina_grammar *g, const lamina_gvocab *v, lamina_gmatch **out,
                         char *err, size_t err_size)
{
    *out = NULL;
    lamina_gmatch *m = calloc(1, sizeof *m);
    if (!m) goto oom;
    m->g = g;
    m->v = v;
    m->cur.off[0] = 0;
    emit_stack(g, &m->cur, NULL, 0, g->root);
    if (v) {
        m->n_scratch = v->max_len + 1;
        m->scratch = malloc((size_t)m->n_scratch * sizeof *m->scratch);
        m->allowed = malloc(v->n_vocab > 0 ? (size_t)v->n_vocab : 1);
        m->dstate = malloc((size_t)m->n_scratch * sizeof *m->dstate);
        if (!m->scratch || !m->allowed || !m->dstate) goto oom;
    }
    *out = m;
    return 0;
oom:
    lamina_gmatch_free(m);
    if (err) snprintf(err, err_size, "out of memory");
    return LAMINA_ENOMEM;
}

void lamina_gmatch_free(lamina_gmatch *m)
{
    if (!m) return;
    memo_free(&m->memo);
    free(m->scratch);
    free(m->allowed);
    free(m->dstate);
    free(m);
}

int lamina_gmatch_feed(lamina_gmatch *m, const char *bytes, size_t n)
{
    gset *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    if (!a || !b) { free(a); free(b); return LAMINA_ENOMEM; }
    memcpy(a, &m->cur, set_bytes(&m->cur));
    for (size_t i = 0; i < n; i++) {
        set_step(m->g, a, (unsigned char)bytes[i], b);
        gset *t = a; a = b; b = t;
        if (a->n == 0) break;
    }
    int rc = LAMINA_EINVAL;
    if (a->n > 0) { memcpy(&m->cur, a, set_bytes(a)); rc = 0; }
    free(a);
    free(b);
    return rc;
}

int lamina_gmatch_can_end(const lamina_gmatch *m) { return set_can_end(m->g, &m->cur); }
int lamina_gmatch_done(const lamina_gmatch *m) { return set_done(&m->cur); }

/* Walk tokens in trie order: state after k bytes of the current token in
 * scratch[k]; a token sharing k bytes with the previous restarts there. */
static void walk(lamina_gmatch *m, const int32_t *order, const int32_t *lcp, int32_t n)
{
    const lamina_gvocab *v = m->v;
    gset *S = m->scratch;
    memcpy(&S[0], &m->cur, set_bytes(&m->cur));
    for (int32_t i = 0; i < n;) {
        int32_t t = order[i];
        uint32_t d = (uint32_t)lcp[i];
        uint32_t len = v->len[t];
        const unsigned char *p = (const unsigned char *)v->bytes[t];
        /* scratch[0..d] are valid: the previous token got at least d bytes in */
        uint32_t k = d;
        while (k < len) {
            set_step(m->g, &S[k], p[k], &S[k + 1]);
            if (S[k + 1].n == 0) break;
            k++;
        }
        if (k == len) { m->allowed[t] = 1; i++; continue; }
        /* byte k failed: skip every token sharing its first k+1 bytes */
        i++;
        while (i < n && (uint32_t)lcp[i] > k) i++;
    }
}

/* Inside a pattern/format string: the plain tokens (string characters
 * only) through the DFA alone, in trie order from state s0. */
static void dfa_walk(lamina_gmatch *m, const gdfa *d, int32_t s0)
{
    const lamina_gvocab *v = m->v;
    int32_t *st = m->dstate;
    st[0] = s0;
    uint32_t good = 0;      /* st[0..good] hold the previous token's states */
    for (int32_t i = 0; i < v->n_order;) {
        uint32_t k = (uint32_t)v->lcp[i], len = v->olen[i];
        if (k > good) k = good;
        const unsigned char *p = (const unsigned char *)v->obytes + v->ooff[i];
        while (k < len) {
            unsigned c = p[k];
            if (c < 0x20 || c == '"' || c == '\\') break;
            int32_t to = dfa_next(d, st[k], c);
            if (to < 0) break;
            st[++k] = to;
        }
        good = k;
        if (k == len) { if (v->oplain[i]) m->allowed[v->order[i]] = 1; i++; continue; }
        i++;
        while (i < v->n_order && (uint32_t)v->lcp[i] > k) i++;
    }
}

/* The trie walk over memoized states (GBNF grammars): ids by depth in
 * dstate.  0, or -1 when the memo filled up (nothing is then decided). */
static int memo_walk(lamina_gmatch *m)
{
    const lamina_gvocab *v = m->v;
    gmemo *mo = &m->memo;
    if (mo->n > MEMO_MAX_STATES / 2 || mo->bytes > MEMO_MAX_BYTES / 2) memo_clear(mo);
    int32_t *ids = m->dstate;
    if ((ids[0] = memo_intern(mo, &m->cur)) < 0) return -1;
    gset *tmp = &m->scratch[0];
    uint32_t good = 0;
    for (int32_t i = 0; i < v->n_order;) {
        uint32_t k = (uint32_t)v->lcp[i], len = v->olen[i];
        if (k > good) k = good;
        const unsigned char *p = (const unsigned char *)v->obytes + v->ooff[i];
        while (k < len) {
            int32_t *tr = &mo->trans[(size_t)ids[k] * 256 + p[k]];
            if (*tr == -2) {
                set_step(m->g, mo->st[ids[k]], p[k], tmp);
                int32_t to = tmp->n == 0 ? -1 : memo_intern(mo, tmp);
                if (to < 0 && tmp->n) return -1;
                tr = &mo->trans[(size_t)ids[k] * 256 + p[k]];   /* the table may have moved */
                *tr = to;
            }
            if (*tr < 0) break;
            ids[k + 1] = *tr;
            k++;
        }
        good = k;
        if (k == len) { m->allowed[v->order[i]] = 1; i++; continue; }
        i++;
        while (i < v->n_order && (uint32_t)v->lcp[i] > k) i++;
    }
    return 0;
}

void lamina_gmatch_mask(lamina_gmatch *m, float *logits)
{
    const lamina_gvocab *v = m->v;
    memset(m->allowed, 0, (size_t)v->n_vocab);
    const gset *c = &m->cur;
    int fast = 0;   /* 1: the string fast paths; 2: the memo walk (GBNF) */
    if (m->g->gbnf && !set_done(c)) {
        if (memo_walk(m) == 0) fast = 2;
        else {
            memo_clear(&m->memo);
            memset(m->allowed, 0, (size_t)v->n_vocab);
        }
    }
    if (!fast && c->n == 1 && c->nf > 0) {
        const gframe *top = &c->f[c->nf - 1];
        const gnode *nd = &m->g->nodes[top->node];
        if (top->st == S_IN && nd->kind == N_STRING && nd->dfa >= 0) {
            fast = 1;
            dfa_walk(m, &m->g->dfas[nd->dfa], top->b);
        } else if (top->st == S_IN && top->u8 == 0 && nd->kind == N_STRING) {
            fast = 1;
            int64_t room = nd->max_len < 0 ? INT64_MAX : (int64_t)nd->max_len - top->a;
            for (int32_t i = 0; i < v->n_vocab; i++)
                if (v->plain[i] && v->nchars[i] <= room) m->allowed[i] = 1;
        } else if (top->st == O_KEY && (top->flags & F_ADDL) && !(top->flags & F_ESC) && top->u8 == 0) {
            /* an additional property's name: string characters never end it */
            fast = 1;
            memcpy(m->allowed, v->plain, (size_t)v->n_vocab);
        }
    }
    if (fast == 1) walk(m, v->order2, v->lcp2, v->n_order2);
    else if (!fast && !set_done(c)) walk(m, v->order, v->lcp, v->n_order);
    int end = set_can_end(m->g, c);
    for (int32_t i = 0; i < v->n_vocab; i++) {
        if (v->kind[i] == T_EOG) { if (!end) logits[i] = -INFINITY; }
        else if (!m->allowed[i]) logits[i] = -INFINITY;
    }
}

int lamina_gmatch_accept(lamina_gmatch *m, lamina_token t)
{
    const lamina_gvocab *v = m->v;
    if (!v || t < 0 || t >= v->n_vocab) return LAMINA_EINVAL;
    if (v->kind[t] == T_EOG) return set_can_end(m->g, &m->cur) ? 0 : LAMINA_EINVAL;
    if (v->kind[t] != T_NORMAL) return LAMINA_EINVAL;
    return lamina_gmatch_feed(m, v->bytes[t], v->len[t]);
}
