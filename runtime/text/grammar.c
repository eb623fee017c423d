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

enum { N_OBJECT, N_ARRAY, N_STRING, N_NUMBER, N_INTEGER, N_LITERAL, N_ALT };

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
    /* literal: sorted, distinct */
    char **lits;
    size_t *lit_lens;
    int n_lits;
    /* alternatives (after flattening: never N_ALT themselves) */
    int32_t *alts;
    int n_alts;
} gnode;

struct lamina_grammar {
    int refs;
    gnode *nodes;
    int32_t n_nodes, cap_nodes;
    int32_t root;
    int32_t any;            /* the "any value" node, -1 until made */
    /* per object node: precomputed masks by next-property index */
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
                                      NULL };
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

static int32_t compile_type(cctx *c, json_t *s, const char *t, const char *path)
{
    char p[1024];
    if (!strcmp(t, "string")) {
        int32_t id = new_node(c, N_STRING);
        if (id < 0) return -1;
        int32_t mn = 0, mx = -1;
        if (get_count(c, s, "minLength", path, MAX_MIN_LEN, &mn) < 0) return -1;
        if (get_count(c, s, "maxLength", path, INT32_MAX / 2, &mx) < 0) return -1;
        json_t *f = json_object_get(s, "format");
        if (f && !json_is_string(f)) return cfail(c, "keyword 'format' at %s: expected a string", path);
        if (mx >= 0 && mx < mn) return cfail(c, "maxLength < minLength at %s: no string fits", path);
        c->g->nodes[id].min_len = mn;
        c->g->nodes[id].max_len = mx;
        return id;
    }
    if (!strcmp(t, "number")) return new_node(c, N_NUMBER);
    if (!strcmp(t, "integer")) return new_node(c, N_INTEGER);
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
        for (size_t i = 0; i < n; i++) {
            json_t *x = en ? json_array_get(en, i) : cn;
            int ok = nt == 0;
            for (int t = 0; t < nt && !ok; t++) ok = value_is_type(x, types[t]);
            if (ok && cn && en && !json_equal(x, cn)) ok = 0;
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
        else if (json_object_get(s, "minLength") || json_object_get(s, "maxLength") || json_object_get(s, "format"))
            types[nt++] = "string";
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

/* need: the frames a node's smallest instance takes (fixpoint). */
static void compute_need(lamina_grammar *g)
{
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
    }
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

enum { R_FAIL, R_OK, R_DONE, R_POP, R_PUSH, R_PUSH_RETRY };

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
    switch (f->st) {
    case ST_START:
        if (is_ws(c)) return ws_step(f, c) ? R_OK : R_FAIL;
        f->ws = 0;
        switch (nd->kind) {
        case N_OBJECT: if (c != '{') return R_FAIL; f->st = O_OPEN; f->a = 0; return R_OK;
        case N_ARRAY: if (c != '[') return R_FAIL; f->st = A_OPEN; f->a = 0; return R_OK;
        case N_STRING: if (c != '"') return R_FAIL; f->st = S_IN; f->a = 0; return R_OK;
        case N_NUMBER: case N_INTEGER:
            if (c == '-') { f->st = N_SIGN; return R_OK; }
            if (c == '0') { f->st = N_ZERO; return R_OK; }
            if (c >= '1' && c <= '9') { f->st = N_INT; f->a = 1; return R_OK; }
            return R_FAIL;
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
    case N_SIGN:
        if (c == '0') { f->st = N_ZERO; return R_OK; }
        if (c >= '1' && c <= '9') { f->st = N_INT; f->a = 1; return R_OK; }
        return R_FAIL;
    case N_ZERO: case N_INT:
        if (c >= '0' && c <= '9' && f->st == N_INT && f->a < INT_DIGITS) { f->a++; return R_OK; }
        if (nd->kind == N_NUMBER && c == '.') { f->st = N_FRAC0; return R_OK; }
        if (nd->kind == N_NUMBER && (c == 'e' || c == 'E')) { f->st = N_EXP0; return R_OK; }
        return (c >= '0' && c <= '9') ? R_FAIL : R_POP;
    case N_FRAC0:
        if (c >= '0' && c <= '9') { f->st = N_FRAC; f->a = 1; return R_OK; }
        return R_FAIL;
    case N_FRAC:
        if (c >= '0' && c <= '9') { if (f->a >= FRAC_DIGITS) return R_FAIL; f->a++; return R_OK; }
        if (c == 'e' || c == 'E') { f->st = N_EXP0; return R_OK; }
        return R_POP;
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
    switch (f->st) {
    case N_ZERO: case N_INT: case N_FRAC: case N_EXP: return 1;
    case L_IN: return nd->lit_lens[f->a] == (size_t)f->pos;
    default: return 0;
    }
}

/* The parent learns that its child value is complete. */
static void child_done(const lamina_grammar *g, gframe *f)
{
    const gnode *nd = &g->nodes[f->node];
    f->ws = 0;
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

/* Feed byte c to one stack (copied into w), appending the results to dst. */
static void stack_step(const lamina_grammar *g, const gframe *src, int n, unsigned c, gset *dst, gframe *w)
{
    memcpy(w, src, (size_t)n * sizeof *w);
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
        case R_PUSH_RETRY: {
            /* each alternative of the pushed node takes the byte */
            gset tmp;
            tmp.n = 0; tmp.nf = 0; tmp.off[0] = 0;
            emit_stack(g, &tmp, w, n, push);
            gframe w2[MAXD];
            for (int i = 0; i < tmp.n; i++)
                stack_step(g, &tmp.f[tmp.off[i]], tmp.off[i + 1] - tmp.off[i], c, dst, w2);
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
        stack_step(g, &src->f[src->off[i]], src->off[i + 1] - src->off[i], c, dst, w);
}

static int set_can_end(const lamina_grammar *g, const gset *s)
{
    for (int i = 0; i < s->n; i++) {
        int n = s->off[i + 1] - s->off[i];
        if (n == 0 || (n == 1 && frame_can_end(g, &s->f[s->off[i]]))) return 1;
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
    *out = v;
    return 0;
}

/* ------------------------------------------------------------------ */
/* The matcher                                                        */

struct lamina_gmatch {
    const lamina_grammar *g;
    const lamina_gvocab *v;
    gset cur;
    gset *scratch;          /* [max_len + 1] states by depth */
    uint32_t n_scratch;
    uint8_t *allowed;       /* [n_vocab] */
};

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
        if (!m->scratch || !m->allowed) goto oom;
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
    free(m->scratch);
    free(m->allowed);
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

void lamina_gmatch_mask(lamina_gmatch *m, float *logits)
{
    const lamina_gvocab *v = m->v;
    memset(m->allowed, 0, (size_t)v->n_vocab);
    const gset *c = &m->cur;
    int fast = 0;
    if (c->n == 1 && c->nf > 0) {
        const gframe *top = &c->f[c->nf - 1];
        const gnode *nd = &m->g->nodes[top->node];
        if (top->st == S_IN && top->u8 == 0 && nd->kind == N_STRING) {
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
    if (fast) walk(m, v->order2, v->lcp2, v->n_order2);
    else if (!set_done(c)) walk(m, v->order, v->lcp, v->n_order);
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
