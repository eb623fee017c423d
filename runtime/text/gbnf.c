/* gbnf.c - GBNF text -> symbol graph (see gbnf.h). */
#include "config.h"

#include "gbnf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/plugin.h"

#define MAX_GROUPS 64       /* nesting of ( ... ) */
#define MAX_NAME 128

typedef struct grule {
    char name[MAX_NAME + 1];
    int32_t sym;            /* its ALT */
    size_t ref_pos;         /* first use */
    int defined;
} grule;

typedef struct gp {
    const char *s;
    size_t len, pos;
    lamina_gbnf *g;
    int32_t cap;
    size_t *sym_pos;        /* per symbol: where it comes from */
    int32_t *sym_rule;      /* per symbol: the rule it is part of */
    grule *rules;
    int32_t n_rules, cap_rules;
    int32_t cur_rule;
    int32_t empty;          /* the shared empty SEQ, -1 until made */
    int depth;
    int oom;
    char *err;
    size_t err_size;
} gp;

/* "line L, column C" of byte offset at (columns count characters). */
static void where(const gp *p, size_t at, int *line, int *col)
{
    int l = 1, c = 1;
    for (size_t i = 0; i < at && i < p->len; i++) {
        unsigned char b = (unsigned char)p->s[i];
        if (b == '\n') { l++; c = 1; }
        else if ((b & 0xC0) != 0x80) c++;
    }
    *line = l;
    *col = c;
}

static int gfail(gp *p, size_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int gfail(gp *p, size_t at, const char *fmt, ...)
{
    if (p->err && p->err_size) {
        char msg[300];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        int line, col;
        where(p, at, &line, &col);
        snprintf(p->err, p->err_size, "line %d, column %d: %s", line, col, msg);
    }
    return -1;
}

static int oom(gp *p)
{
    p->oom = 1;
    if (p->err && p->err_size) snprintf(p->err, p->err_size, "out of memory");
    return -1;
}

static int32_t new_sym(gp *p, int kind)
{
    lamina_gbnf *g = p->g;
    if (g->n_syms >= LAMINA_GBNF_MAX_SYMS)
        return gfail(p, p->pos, "the grammar is too large (more than %d symbols, repetitions counted)",
                     LAMINA_GBNF_MAX_SYMS);
    if (g->n_syms == p->cap) {
        int32_t cap = p->cap ? p->cap * 2 : 64;
        lamina_gsym *s = realloc(g->syms, (size_t)cap * sizeof *s);
        if (!s) return oom(p);
        g->syms = s;
        size_t *sp = realloc(p->sym_pos, (size_t)cap * sizeof *sp);
        if (!sp) return oom(p);
        p->sym_pos = sp;
        int32_t *sr = realloc(p->sym_rule, (size_t)cap * sizeof *sr);
        if (!sr) return oom(p);
        p->sym_rule = sr;
        p->cap = cap;
    }
    lamina_gsym *s = &g->syms[g->n_syms];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    p->sym_pos[g->n_syms] = p->pos;
    p->sym_rule[g->n_syms] = p->cur_rule;
    return g->n_syms++;
}

static int add_kid(gp *p, int32_t sym, int32_t kid)
{
    lamina_gsym *s = &p->g->syms[sym];
    if ((s->n_kids & (s->n_kids - 1)) == 0) {      /* grow at powers of two */
        int32_t cap = s->n_kids ? s->n_kids * 2 : 2;
        int32_t *k = realloc(s->kids, (size_t)cap * sizeof *k);
        if (!k) return oom(p);
        s->kids = k;
    }
    s->kids[s->n_kids++] = kid;
    return 0;
}

static int32_t empty_sym(gp *p)
{
    if (p->empty < 0) p->empty = new_sym(p, LAMINA_GS_SEQ);
    return p->empty;
}

static int is_name_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static int peek(const gp *p) { return p->pos < p->len ? (unsigned char)p->s[p->pos] : -1; }

/* Spaces, newlines and comments. */
static void skip_ws(gp *p)
{
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') p->pos++;
        else if (c == '#') { while (p->pos < p->len && p->s[p->pos] != '\n') p->pos++; }
        else break;
    }
}

/* Does a rule definition (`name ::=`) start at pos? */
static int at_definition(const gp *p)
{
    size_t i = p->pos;
    while (i < p->len && is_name_char((unsigned char)p->s[i])) i++;
    if (i == p->pos) return 0;
    while (i < p->len && (p->s[i] == ' ' || p->s[i] == '\t')) i++;
    return i + 3 <= p->len && !memcmp(p->s + i, "::=", 3);
}

/* The rule named s[at..at+n) (made on first sight). */
static int32_t rule_sym(gp *p, size_t at, size_t n, int define)
{
    if (n > MAX_NAME) return gfail(p, at, "rule name longer than %d characters", MAX_NAME);
    for (int32_t i = 0; i < p->n_rules; i++) {
        grule *r = &p->rules[i];
        if (strlen(r->name) == n && !memcmp(r->name, p->s + at, n)) {
            if (define) {
                if (!r->defined) p->sym_pos[r->sym] = at;
                r->defined = 1;
                p->cur_rule = i;
            }
            return r->sym;
        }
    }
    if (p->n_rules == p->cap_rules) {
        int32_t cap = p->cap_rules ? p->cap_rules * 2 : 16;
        grule *r = realloc(p->rules, (size_t)cap * sizeof *r);
        if (!r) return oom(p);
        p->rules = r;
        p->cap_rules = cap;
    }
    grule *r = &p->rules[p->n_rules];
    memcpy(r->name, p->s + at, n);
    r->name[n] = 0;
    r->ref_pos = at;
    r->defined = define;
    int32_t keep = p->cur_rule;
    p->cur_rule = p->n_rules;
    size_t save = p->pos;
    p->pos = at;
    r->sym = new_sym(p, LAMINA_GS_ALT);
    p->pos = save;
    if (r->sym < 0) { p->cur_rule = keep; return -1; }
    p->n_rules++;
    if (!define) p->cur_rule = keep;
    return r->sym;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* One character of a string or class (an escape or a UTF-8 sequence). */
static int read_char(gp *p, uint32_t *cp)
{
    size_t at = p->pos;
    const unsigned char *s = (const unsigned char *)p->s;
    unsigned c = s[p->pos];
    if (c == '\\') {
        if (p->pos + 1 >= p->len) return gfail(p, at, "a backslash at the end of the grammar");
        unsigned e = s[p->pos + 1];
        p->pos += 2;
        int nd = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0;
        if (nd) {
            uint32_t v = 0;
            for (int i = 0; i < nd; i++) {
                int h = p->pos < p->len ? hexval(s[p->pos]) : -1;
                if (h < 0) return gfail(p, at, "escape \\%c needs %d hex digits", (char)e, nd);
                v = v << 4 | (uint32_t)h;
                p->pos++;
            }
            if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
                return gfail(p, at, "escape \\%c%0*X is not a Unicode character", (char)e, nd, (unsigned)v);
            *cp = v;
            return 0;
        }
        switch (e) {
        case 'n': *cp = '\n'; return 0;
        case 'r': *cp = '\r'; return 0;
        case 't': *cp = '\t'; return 0;
        case 'f': *cp = '\f'; return 0;
        case 'v': *cp = '\v'; return 0;
        case '0': *cp = 0; return 0;
        default:
            if (e < 0x80 && e > 0x20 && !is_name_char((int)e)) { *cp = e; return 0; }
            if (e >= 0x20 && e < 0x7F) return gfail(p, at, "unknown escape '\\%c'", (char)e);
            return gfail(p, at, "unknown escape (a backslash before byte 0x%02X)", e);
        }
    }
    int n = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
    if (n == 0 || p->pos + (size_t)n > p->len) return gfail(p, at, "invalid UTF-8");
    uint32_t v = n == 1 ? c : c & (n == 2 ? 0x1Fu : n == 3 ? 0x0Fu : 0x07u);
    for (int i = 1; i < n; i++) {
        unsigned b = s[p->pos + (size_t)i];
        if ((b & 0xC0) != 0x80) return gfail(p, at, "invalid UTF-8");
        v = v << 6 | (b & 0x3F);
    }
    static const uint32_t min[5] = { 0, 0, 0x80, 0x800, 0x10000 };
    if (v < min[n] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return gfail(p, at, "invalid UTF-8");
    p->pos += (size_t)n;
    *cp = v;
    return 0;
}

static size_t utf8_put(uint32_t c, char *b)
{
    if (c < 0x80) { b[0] = (char)c; return 1; }
    if (c < 0x800) { b[0] = (char)(0xC0 | c >> 6); b[1] = (char)(0x80 | (c & 0x3F)); return 2; }
    if (c < 0x10000) {
        b[0] = (char)(0xE0 | c >> 12); b[1] = (char)(0x80 | ((c >> 6) & 0x3F)); b[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    b[0] = (char)(0xF0 | c >> 18); b[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    b[2] = (char)(0x80 | ((c >> 6) & 0x3F)); b[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/* "...": a BYTES symbol, or the empty sequence for "". */
static int32_t parse_string(gp *p)
{
    size_t open = p->pos++;
    size_t cap = 64, n = 0;
    char *buf = malloc(cap);
    if (!buf) return oom(p);
    for (;;) {
        if (p->pos >= p->len) { free(buf); return gfail(p, open, "unterminated string"); }
        char c = p->s[p->pos];
        if (c == '"') { p->pos++; break; }
        if (c == '\n' || c == '\r') { free(buf); return gfail(p, open, "unterminated string (a line ends before its closing quote)"); }
        uint32_t cp;
        if (read_char(p, &cp)) { free(buf); return -1; }
        if (n + 4 > cap) {
            cap *= 2;
            char *b = realloc(buf, cap);
            if (!b) { free(buf); return oom(p); }
            buf = b;
        }
        n += utf8_put(cp, buf + n);
    }
    if (n == 0) { free(buf); return empty_sym(p); }
    size_t save = p->pos;
    p->pos = open;
    int32_t id = new_sym(p, LAMINA_GS_BYTES);
    p->pos = save;
    if (id < 0) { free(buf); return -1; }
    p->g->syms[id].bytes = buf;
    p->g->syms[id].n_bytes = n;
    return id;
}

typedef struct crange { uint32_t lo, hi; } crange;

static int cmp_range(const void *x, const void *y)
{
    const crange *a = x, *b = y;
    return a->lo < b->lo ? -1 : a->lo > b->lo;
}

/* A CHARS symbol from ranges r[0..n) (sorted and merged here), negated
 * within the code points when neg. */
static int32_t chars_sym(gp *p, size_t at, crange *r, int n, int neg)
{
    qsort(r, (size_t)n, sizeof *r, cmp_range);
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (k > 0 && r[i].lo <= r[k - 1].hi + 1) { if (r[i].hi > r[k - 1].hi) r[k - 1].hi = r[i].hi; continue; }
        r[k++] = r[i];
    }
    uint32_t *out = malloc(((size_t)k + 1) * 2 * sizeof *out);
    if (!out) return oom(p);
    int m = 0;
    if (neg) {
        uint32_t next = 0;
        for (int i = 0; i < k; i++) {
            if (r[i].lo > next) { out[2 * m] = next; out[2 * m + 1] = r[i].lo - 1; m++; }
            next = r[i].hi + 1;
        }
        if (next <= 0x10FFFF) { out[2 * m] = next; out[2 * m + 1] = 0x10FFFF; m++; }
    } else {
        for (int i = 0; i < k; i++) { out[2 * m] = r[i].lo; out[2 * m + 1] = r[i].hi; m++; }
    }
    if (m == 0) { free(out); return gfail(p, at, "the character class matches no character"); }
    size_t save = p->pos;
    p->pos = at;
    int32_t id = new_sym(p, LAMINA_GS_CHARS);
    p->pos = save;
    if (id < 0) { free(out); return -1; }
    p->g->syms[id].ranges = out;
    p->g->syms[id].n_ranges = m;
    return id;
}

static int32_t parse_class(gp *p)
{
    size_t open = p->pos++;
    int neg = 0;
    if (peek(p) == '^') { neg = 1; p->pos++; }
    crange r[LAMINA_GBNF_MAX_RANGES];
    int n = 0;
    for (;;) {
        if (p->pos >= p->len) return gfail(p, open, "unterminated character class");
        if (p->s[p->pos] == ']') { p->pos++; break; }
        if (p->s[p->pos] == '\n') return gfail(p, open, "unterminated character class (a line ends before its ']')");
        size_t at = p->pos;
        uint32_t lo, hi;
        if (read_char(p, &lo)) return -1;
        hi = lo;
        if (p->pos + 1 < p->len && p->s[p->pos] == '-' && p->s[p->pos + 1] != ']') {
            p->pos++;
            if (read_char(p, &hi)) return -1;
            if (hi < lo) return gfail(p, at, "character range out of order (U+%04X after U+%04X)", (unsigned)hi, (unsigned)lo);
        }
        if (n >= LAMINA_GBNF_MAX_RANGES)
            return gfail(p, open, "a character class has more than %d ranges", LAMINA_GBNF_MAX_RANGES);
        r[n].lo = lo;
        r[n++].hi = hi;
    }
    return chars_sym(p, open, r, n, neg);
}

/* x*: R ::= x R | (empty) */
static int32_t star(gp *p, int32_t x)
{
    int32_t e = empty_sym(p), r = new_sym(p, LAMINA_GS_ALT), s = r < 0 ? -1 : new_sym(p, LAMINA_GS_SEQ);
    if (e < 0 || s < 0) return -1;
    if (add_kid(p, s, x) || add_kid(p, s, r) || add_kid(p, r, s) || add_kid(p, r, e)) return -1;
    return r;
}

static int32_t opt(gp *p, int32_t x)
{
    int32_t e = empty_sym(p), a = new_sym(p, LAMINA_GS_ALT);
    if (e < 0 || a < 0 || add_kid(p, a, x) || add_kid(p, a, e)) return -1;
    return a;
}

static int read_count(gp *p, long *v)
{
    size_t at = p->pos;
    long x = 0;
    int nd = 0;
    while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
        if (x <= LAMINA_GBNF_MAX_REPEAT) x = x * 10 + (p->s[p->pos] - '0');
        p->pos++;
        nd++;
    }
    if (!nd) return 0;
    if (x > LAMINA_GBNF_MAX_REPEAT)
        return gfail(p, at, "repetition count over the limit of %d", LAMINA_GBNF_MAX_REPEAT);
    *v = x;
    return 1;
}

/* {m}, {m,}, {m,n} after item x (pos at '{'). */
static int32_t repeat(gp *p, int32_t x)
{
    size_t open = p->pos++;
    long m = -1, n = -1;
    skip_ws(p);
    int r = read_count(p, &m);
    if (r < 0) return -1;
    if (!r) return gfail(p, open, "bad repetition bounds: expected {m}, {m,} or {m,n}");
    skip_ws(p);
    if (peek(p) == ',') {
        p->pos++;
        skip_ws(p);
        if ((r = read_count(p, &n)) < 0) return -1;
        if (!r) n = -1;
        skip_ws(p);
    } else n = m;
    if (peek(p) != '}') return gfail(p, open, "bad repetition bounds: expected {m}, {m,} or {m,n}");
    p->pos++;
    if (n >= 0 && n < m) return gfail(p, open, "bad repetition bounds {%ld,%ld}: the minimum is above the maximum", m, n);
    int32_t s = new_sym(p, LAMINA_GS_SEQ);
    if (s < 0) return -1;
    for (long i = 0; i < m; i++)
        if (add_kid(p, s, x)) return -1;
    int32_t tail = -1;
    if (n < 0) tail = star(p, x);
    else if (n > m) {
        tail = opt(p, x);
        for (long i = m + 1; i < n && tail >= 0; i++) {
            int32_t q = new_sym(p, LAMINA_GS_SEQ);
            if (q < 0 || add_kid(p, q, x) || add_kid(p, q, tail)) return -1;
            tail = opt(p, q);
        }
        if (tail < 0) return -1;
    } else return s;
    if (tail < 0 || add_kid(p, s, tail)) return -1;
    return s;
}

static int parse_alts(gp *p, int32_t alt);

static int parse_seq(gp *p, int32_t seq)
{
    for (;;) {
        skip_ws(p);
        int c = peek(p);
        if (c < 0 || c == '|' || c == ')' || at_definition(p)) return 0;
        size_t at = p->pos;
        int32_t x;
        if (c == '"') x = parse_string(p);
        else if (c == '[') x = parse_class(p);
        else if (c == '.') {
            p->pos++;
            crange all = { 0, 0x10FFFF };
            x = chars_sym(p, at, &all, 1, 0);
        } else if (c == '(') {
            if (++p->depth > MAX_GROUPS) return gfail(p, at, "groups nested more than %d deep", MAX_GROUPS);
            p->pos++;
            x = new_sym(p, LAMINA_GS_ALT);
            if (x < 0 || parse_alts(p, x)) return -1;
            skip_ws(p);
            if (peek(p) != ')') {
                if (peek(p) < 0) return gfail(p, at, "'(' is never closed");
                return gfail(p, p->pos, "expected ')' (the group opened before is not closed)");
            }
            p->pos++;
            p->depth--;
        } else if (is_name_char(c)) {
            while (p->pos < p->len && is_name_char((unsigned char)p->s[p->pos])) p->pos++;
            x = rule_sym(p, at, p->pos - at, 0);
        } else if (c == '<') return gfail(p, at, "token references (<...>) are not supported");
        else if (c == ':' && p->pos + 2 < p->len && !memcmp(p->s + p->pos, "::=", 3))
            return gfail(p, at, "'::=' without a rule name before it");
        else if (c >= 0x21 && c < 0x7F) return gfail(p, at, "unexpected character '%c'", (char)c);
        else return gfail(p, at, "unexpected character (byte 0x%02X)", (unsigned)c);
        if (x < 0) return -1;
        for (;;) {
            size_t save = p->pos;
            skip_ws(p);
            int o = peek(p);
            if (o == '*') { p->pos++; x = star(p, x); }
            else if (o == '?') { p->pos++; x = opt(p, x); }
            else if (o == '+') {
                p->pos++;
                int32_t s = new_sym(p, LAMINA_GS_SEQ), r = s < 0 ? -1 : star(p, x);
                if (r < 0 || add_kid(p, s, x) || add_kid(p, s, r)) return -1;
                x = s;
            } else if (o == '{') x = repeat(p, x);
            else { p->pos = save; break; }
            if (x < 0) return -1;
        }
        if (add_kid(p, seq, x)) return -1;
    }
}

static int parse_alts(gp *p, int32_t alt)
{
    for (;;) {
        int32_t seq = new_sym(p, LAMINA_GS_SEQ);
        if (seq < 0 || parse_seq(p, seq) || add_kid(p, alt, seq)) return -1;
        skip_ws(p);
        if (peek(p) != '|') return 0;
        p->pos++;
    }
}

/* Fixpoints: nullable (matches the empty text), productive (matches some
 * finite text). */
static void props(const lamina_gbnf *g, uint8_t *nullable, uint8_t *productive)
{
    memset(nullable, 0, (size_t)g->n_syms);
    memset(productive, 0, (size_t)g->n_syms);
    for (int changed = 1; changed;) {
        changed = 0;
        for (int32_t i = 0; i < g->n_syms; i++) {
            const lamina_gsym *s = &g->syms[i];
            int nl = 0, pr = 0;
            if (s->kind == LAMINA_GS_CHARS || s->kind == LAMINA_GS_BYTES) pr = 1;
            else if (s->kind == LAMINA_GS_SEQ) {
                nl = pr = 1;
                for (int32_t j = 0; j < s->n_kids; j++) {
                    nl &= nullable[s->kids[j]];
                    pr &= productive[s->kids[j]];
                }
            } else {
                for (int32_t j = 0; j < s->n_kids; j++) {
                    nl |= nullable[s->kids[j]];
                    pr |= productive[s->kids[j]];
                }
            }
            if (nl > nullable[i] || pr > productive[i]) { nullable[i] |= (uint8_t)nl; productive[i] |= (uint8_t)pr; changed = 1; }
        }
    }
}

/* Edges a top-down matcher follows without reading: an ALT to each
 * alternative, a SEQ to its parts up to the first that cannot be empty. */
static int32_t n_left(const lamina_gbnf *g, const uint8_t *nullable, int32_t v)
{
    const lamina_gsym *s = &g->syms[v];
    if (s->kind == LAMINA_GS_ALT) return s->n_kids;
    if (s->kind != LAMINA_GS_SEQ) return 0;
    int32_t j = 0;
    while (j < s->n_kids && nullable[s->kids[j]]) j++;
    return j < s->n_kids ? j + 1 : s->n_kids;
}

/* The symbol on a left-recursive cycle, or -1. */
static int32_t left_cycle(gp *p, const uint8_t *nullable)
{
    const lamina_gbnf *g = p->g;
    int32_t n = g->n_syms, found = -1;
    uint8_t *color = calloc((size_t)n + 1, 1);
    int32_t *st = malloc(((size_t)n + 1) * sizeof *st), *ix = malloc(((size_t)n + 1) * sizeof *ix);
    if (!color || !st || !ix) { free(color); free(st); free(ix); oom(p); return -2; }
    for (int32_t r = 0; r < n && found < 0; r++) {
        if (color[r]) continue;
        int32_t sp = 0;
        st[sp] = r; ix[sp++] = 0;
        color[r] = 1;
        while (sp && found < 0) {
            int32_t v = st[sp - 1];
            if (ix[sp - 1] >= n_left(g, nullable, v)) { color[v] = 2; sp--; continue; }
            int32_t w = g->syms[v].kids[ix[sp - 1]++];
            if (color[w] == 1) found = w;
            else if (!color[w]) { color[w] = 1; st[sp] = w; ix[sp++] = 0; }
        }
    }
    free(color); free(st); free(ix);
    return found;
}

void lamina_gbnf_free(lamina_gbnf *g)
{
    if (!g) return;
    for (int32_t i = 0; i < g->n_syms; i++) {
        free(g->syms[i].kids);
        free(g->syms[i].ranges);
        free(g->syms[i].bytes);
    }
    free(g->syms);
    free(g);
}

int lamina_gbnf_parse(const char *text, size_t len, lamina_gbnf **out, char *err, size_t err_size)
{
    *out = NULL;
    lamina_gbnf *g = calloc(1, sizeof *g);
    gp p = { .s = text, .len = len, .g = g, .cur_rule = -1, .empty = -1, .err = err, .err_size = err_size };
    uint8_t *nullable = NULL, *productive = NULL;
    int rc = -1;
    if (!g) { oom(&p); goto done; }
    g->root = -1;
    skip_ws(&p);
    while (p.pos < p.len) {
        size_t at = p.pos;
        while (p.pos < p.len && is_name_char((unsigned char)p.s[p.pos])) p.pos++;
        if (p.pos == at) {
            gfail(&p, at, "expected a rule name (a definition 'name ::= ...')");
            goto done;
        }
        size_t nend = p.pos;
        while (p.pos < p.len && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t')) p.pos++;
        if (p.pos + 3 > p.len || memcmp(p.s + p.pos, "::=", 3)) {
            gfail(&p, p.pos, "expected '::=' after the rule name '%.*s'", (int)(nend - at > 40 ? 40 : nend - at), p.s + at);
            goto done;
        }
        p.pos += 3;
        int32_t r = rule_sym(&p, at, nend - at, 1);
        if (r < 0 || parse_alts(&p, r)) goto done;
        skip_ws(&p);
        if (peek(&p) == ')') { gfail(&p, p.pos, "')' without a '(' before it"); goto done; }
    }
    for (int32_t i = 0; i < p.n_rules; i++)
        if (!p.rules[i].defined) {
            gfail(&p, p.rules[i].ref_pos, "rule '%s' is not defined", p.rules[i].name);
            goto done;
        }
    for (int32_t i = 0; i < p.n_rules; i++)
        if (!strcmp(p.rules[i].name, "root")) g->root = p.rules[i].sym;
    if (g->root < 0) {
        if (err && err_size) snprintf(err, err_size, "the grammar has no 'root' rule (where the output starts)");
        goto done;
    }
    nullable = malloc((size_t)g->n_syms + 1);
    productive = malloc((size_t)g->n_syms + 1);
    if (!nullable || !productive) { oom(&p); goto done; }
    props(g, nullable, productive);
    for (int32_t i = 0; i < p.n_rules; i++)
        if (!productive[p.rules[i].sym]) {
            gfail(&p, p.sym_pos[p.rules[i].sym],
                  "rule '%s' can never finish (every alternative recurses without end, or needs a rule that does)",
                  p.rules[i].name);
            goto done;
        }
    int32_t cyc = left_cycle(&p, nullable);
    if (cyc == -2) goto done;
    if (cyc >= 0) {
        int32_t ri = p.sym_rule[cyc];
        gfail(&p, p.sym_pos[cyc],
              "left recursion in rule '%s': it can reach itself before reading a character (directly, or through "
              "parts that can match empty text such as a repeated group that can be empty); the matcher does not "
              "support it, rewrite it with repetition",
              ri >= 0 ? p.rules[ri].name : "?");
        goto done;
    }
    *out = g;
    g = NULL;
    rc = 0;
done:
    free(nullable);
    free(productive);
    free(p.sym_pos);
    free(p.sym_rule);
    free(p.rules);
    lamina_gbnf_free(g);
    if (rc < 0) return p.oom ? LAMINA_ENOMEM : LAMINA_EINVAL;
    return 0;
}
