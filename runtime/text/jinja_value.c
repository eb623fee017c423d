/* jinja_value.c - the values of the Jinja interpreter and what Python does
 * with them: str(), repr(), ==, <, len(), iteration, json.dumps and
 * json.loads (see jinja_impl.h). */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_impl.h"
#include "jinja_unicode.h"
#include "lamina/plugin.h"

/* ---- arena -------------------------------------------------------------- */

struct jj_chunk {
    jj_chunk *next;
    size_t size, used;
};

#define JJ_ALIGN 16
#define JJ_HDR ((sizeof(jj_chunk) + JJ_ALIGN - 1) & ~(size_t)(JJ_ALIGN - 1))
#define JJ_CHUNK 65536

void *jj_alloc(jj_arena *a, size_t n)
{
    if (a->over)
        return NULL;
    if (n > SIZE_MAX / 4) {
        a->over = 1;
        return NULL;
    }
    n = n ? (n + JJ_ALIGN - 1) & ~(size_t)(JJ_ALIGN - 1) : JJ_ALIGN;
    jj_chunk *c = a->head;
    if (c == NULL || c->size - c->used < n) {
        int big = n > JJ_CHUNK / 4;
        size_t sz = big ? n : JJ_CHUNK;
        if (a->limit && (a->total > a->limit || sz + JJ_HDR > a->limit - a->total)) {
            a->over = 1;
            return NULL;
        }
        c = malloc(JJ_HDR + sz);
        if (c == NULL) {
            a->over = 1;
            return NULL;
        }
        c->size = sz;
        c->used = 0;
        a->total += JJ_HDR + sz;
        if (big && a->head != NULL) {
            /* keep filling the current chunk */
            c->next = a->head->next;
            a->head->next = c;
        } else {
            c->next = a->head;
            a->head = c;
        }
    }
    void *p = (char *)c + JJ_HDR + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

void jj_arena_free(jj_arena *a)
{
    jj_chunk *c = a->head;
    while (c != NULL) {
        jj_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->total = 0;
}

/* ---- UTF-8 ---------------------------------------------------------------- */

uint32_t jj_utf8_next(const char *s, size_t n, size_t *i)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t k = *i;
    unsigned c = u[k];
    if (c < 0x80) {
        *i = k + 1;
        return c;
    }
    int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    if (len == 1 || k + (size_t)len > n) {
        *i = k + 1;
        return 0xFFFD;
    }
    uint32_t cp = c & (0x3F >> (len - 1));
    for (int j = 1; j < len; j++) {
        if ((u[k + j] & 0xC0) != 0x80) {
            *i = k + 1;
            return 0xFFFD;
        }
        cp = cp << 6 | (u[k + j] & 0x3F);
    }
    *i = k + (size_t)len;
    return cp;
}

size_t jj_utf8_put(char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

int jj_utf8_valid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = u[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        int len;
        uint32_t min;
        if (c >= 0xC2 && c <= 0xDF) { len = 2; min = 0x80; }
        else if (c >= 0xE0 && c <= 0xEF) { len = 3; min = 0x800; }
        else if (c >= 0xF0 && c <= 0xF4) { len = 4; min = 0x10000; }
        else return 0;
        if (i + (size_t)len > n)
            return 0;
        uint32_t cp = c & (0x3F >> (len - 1));
        for (int j = 1; j < len; j++) {
            if ((u[i + j] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (u[i + j] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000))
            return 0;
        i += (size_t)len;
    }
    return 1;
}

size_t jj_utf8_count(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            c++;
    return c;
}

/* ---- Unicode properties ------------------------------------------------- */

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static int in_ranges(const struct jj_cp_range *r, size_t n, uint32_t cp)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < r[mid].first)
            hi = mid;
        else if (cp > r[mid].last)
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

int jj_isspace(uint32_t cp)
{
    if (cp < 0x80)
        return cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F);
    for (size_t i = 0; i < NELEM(jj_space); i++)
        if (jj_space[i] == cp)
            return 1;
    return 0;
}

int jj_isprint(uint32_t cp)
{
    if (cp < 0x80)
        return cp >= 0x20 && cp < 0x7F;
    return !in_ranges(jj_nonprint, NELEM(jj_nonprint), cp);
}

int jj_iscased(uint32_t cp)
{
    return in_ranges(jj_cased, NELEM(jj_cased), cp);
}

void jj_case(lamina_strbuf *b, uint32_t cp, int which)
{
    char tmp[4];
    if (cp < 0x80) {
        char c = (char)cp;
        if (which == JJ_LOWER) {
            if (c >= 'A' && c <= 'Z')
                c = (char)(c + 32);
        } else if (c >= 'a' && c <= 'z') {
            c = (char)(c - 32);
        }
        lamina_strbuf_ch(b, c);
        return;
    }
    const struct jj_case_run *runs;
    const struct jj_case_multi *multi;
    size_t nr, nm;
    if (which == JJ_UPPER) {
        runs = jj_upper_runs; nr = NELEM(jj_upper_runs);
        multi = jj_upper_multi; nm = NELEM(jj_upper_multi);
    } else if (which == JJ_LOWER) {
        runs = jj_lower_runs; nr = NELEM(jj_lower_runs);
        multi = jj_lower_multi; nm = NELEM(jj_lower_multi);
    } else {
        runs = jj_title_runs; nr = NELEM(jj_title_runs);
        multi = jj_title_multi; nm = NELEM(jj_title_multi);
    }
    for (size_t i = 0; i < nm; i++)
        if (multi[i].cp == cp) {
            lamina_strbuf_str(b, multi[i].utf8);
            return;
        }
    for (size_t i = 0; i < nr && runs[i].first <= cp; i++)
        if (cp <= runs[i].last && (cp - runs[i].first) % runs[i].stride == 0) {
            cp = (uint32_t)((int64_t)cp + runs[i].delta);
            break;
        }
    lamina_strbuf_add(b, tmp, jj_utf8_put(tmp, cp));
}

/* ---- errors --------------------------------------------------------------- */

void jj_fail(jj_render *R, int code, const char *fmt, ...)
{
    if (R->failed)
        return;
    R->failed = 1;
    R->code = code;
    if (R->err != NULL && R->err_size > 0) {
        int k = snprintf(R->err, R->err_size, "template line %d: ", R->line);
        if (k < 0 || (size_t)k >= R->err_size)
            return;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(R->err + k, R->err_size - (size_t)k, fmt, ap);
        va_end(ap);
    }
}

static void mem_fail(jj_render *R)
{
    jj_fail(R, LAMINA_ERANGE, "the template needs more than %zu bytes of memory", R->A.limit);
}

void jj_check_buf(jj_render *R, lamina_strbuf *b)
{
    if (b->over)
        jj_fail(R, LAMINA_ERANGE, "the template's output is longer than %zu bytes", b->limit);
}

static const char *type_obj_name(int t, int sub)
{
    switch (t) {
    case JV_NONE: return "None";
    case JV_BOOL: return "bool object";
    case JV_INT: return "int object";
    case JV_FLOAT: return "float object";
    case JV_STR: return sub ? "markupsafe.Markup object" : "str object";
    case JV_DICT: return "dict object";
    case JV_NS: return "jinja2.utils.Namespace object";
    case JV_LOOP: return "jinja2.runtime.LoopContext object";
    case JV_MACRO: return "jinja2.runtime.Macro object";
    case JV_LIST:
        switch (sub) {
        case JL_TUPLE: return "tuple object";
        case JL_GEN: return "generator object";
        case JL_REVITER: return "list_reverseiterator object";
        case JL_RANGE: return "range object";
        case JL_ITEMS: return "dict_items object";
        case JL_KEYS: return "dict_keys object";
        case JL_VALUES: return "dict_values object";
        default: return "list object";
        }
    default: return "object";
    }
}

void jj_fail_undef(jj_render *R, jv u)
{
    const jundef *d = u.u;
    if (d == NULL || d->kind == UD_PLAIN) {
        jj_fail(R, LAMINA_EINVAL, "undefined value used");
        return;
    }
    switch (d->kind) {
    case UD_NAME:
        jj_fail(R, LAMINA_EINVAL, "'%s' is undefined", d->name);
        return;
    case UD_ATTR:
        jj_fail(R, LAMINA_EINVAL, "'%s' has no attribute '%s'", type_obj_name(d->objt, d->objsub),
                d->name);
        return;
    case UD_ITEM: {
        lamina_strbuf b = {.limit = 200};
        jv_repr_into(R, &b, d->key, 0);
        jj_fail(R, LAMINA_EINVAL, "%s has no element %s", type_obj_name(d->objt, d->objsub),
                b.p ? b.p : "?");
        lamina_strbuf_free(&b);
        return;
    }
    default:
        jj_fail(R, LAMINA_EINVAL, "%s", d->name);
        return;
    }
}

/* ---- constructors ------------------------------------------------------- */

jv jv_undef(void)
{
    jv v = {.t = JV_UNDEF};
    return v;
}

static jv undef_new(jj_render *R, int kind)
{
    jv v = {.t = JV_UNDEF};
    v.u = jj_alloc(&R->A, sizeof(jundef));
    if (v.u == NULL)
        mem_fail(R);
    else
        v.u->kind = (uint8_t)kind;
    return v;
}

jv jv_undef_name(jj_render *R, const char *name)
{
    jv v = undef_new(R, UD_NAME);
    if (v.u)
        v.u->name = name;
    return v;
}

jv jv_undef_attr(jj_render *R, jv obj, const char *name)
{
    jv v = undef_new(R, UD_ATTR);
    if (v.u) {
        v.u->name = name;
        v.u->objt = obj.t;
        v.u->objsub = obj.sub;
    }
    return v;
}

jv jv_undef_item(jj_render *R, jv obj, jv key)
{
    if (key.t == JV_STR)
        return jv_undef_attr(R, obj, key.s->p);
    jv v = undef_new(R, UD_ITEM);
    if (v.u) {
        v.u->key = key;
        v.u->objt = obj.t;
        v.u->objsub = obj.sub;
    }
    return v;
}

jv jv_undef_hint(jj_render *R, const char *hint, int unsafe)
{
    jv v = undef_new(R, UD_HINT);
    if (v.u) {
        jv h = jv_cstr(R, hint);
        v.u->name = h.s->p;
        v.u->unsafe = (uint8_t)unsafe;
    }
    return v;
}

jv jv_none(void)
{
    jv v = {.t = JV_NONE};
    return v;
}

jv jv_bool(int b)
{
    jv v = {.t = JV_BOOL};
    v.i = b != 0;
    return v;
}

jv jv_int(int64_t i)
{
    jv v = {.t = JV_INT};
    v.i = i;
    return v;
}

jv jv_float(double f)
{
    jv v = {.t = JV_FLOAT};
    v.f = f;
    return v;
}

jv jv_str(jj_render *R, const char *s, size_t n)
{
    jv v = {.t = JV_STR};
    jstr *p = n <= SIZE_MAX / 2 ? jj_alloc(&R->A, sizeof(jstr) + n + 1) : NULL;
    if (p == NULL) {
        mem_fail(R);
        v.s = R->empty;
        return v;
    }
    p->len = n;
    if (n)
        memcpy(p->p, s, n);
    p->p[n] = 0;
    p->ncp = jj_utf8_count(p->p, n);
    v.s = p;
    return v;
}

jv jv_cstr(jj_render *R, const char *s)
{
    return jv_str(R, s, strlen(s));
}

jv jv_buf(jj_render *R, lamina_strbuf *b)
{
    jv v;
    if (b->over) {
        jj_check_buf(R, b);
        v = jv_str(R, "", 0);
    } else {
        v = jv_str(R, b->p ? b->p : "", b->n);
    }
    lamina_strbuf_free(b);
    return v;
}

jv jv_list(jj_render *R, size_t cap, int kind)
{
    jv v = {.t = JV_LIST, .sub = (uint8_t)kind};
    jlist *l = jj_alloc(&R->A, sizeof(jlist));
    if (l != NULL && cap > 0) {
        l->v = cap <= SIZE_MAX / sizeof(jv) / 2 ? jj_alloc(&R->A, cap * sizeof(jv)) : NULL;
        if (l->v == NULL)
            l = NULL;
        else
            l->cap = cap;
    }
    if (l == NULL) {
        mem_fail(R);
        l = R->nil_list;
    }
    v.l = l;
    return v;
}

void jl_push(jj_render *R, jv list, jv item)
{
    jlist *l = list.l;
    if (R->failed)
        return;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 4;
        jv *nv = nc <= SIZE_MAX / sizeof(jv) / 2 ? jj_alloc(&R->A, nc * sizeof(jv)) : NULL;
        if (nv == NULL) {
            mem_fail(R);
            return;
        }
        if (l->n)
            memcpy(nv, l->v, l->n * sizeof(jv));
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = item;
}

jv jv_dict(jj_render *R, size_t cap, int type)
{
    jv v = {.t = (uint8_t)type};
    jdict *d = jj_alloc(&R->A, sizeof(jdict));
    if (d != NULL && cap > 0) {
        d->k = cap <= SIZE_MAX / sizeof(jv) / 4 ? jj_alloc(&R->A, cap * sizeof(jv)) : NULL;
        d->v = d->k ? jj_alloc(&R->A, cap * sizeof(jv)) : NULL;
        if (d->v == NULL)
            d = NULL;
        else
            d->cap = cap;
    }
    if (d == NULL) {
        mem_fail(R);
        d = R->nil_dict;
    }
    v.d = d;
    return v;
}

static int key_eq(jv a, jv b)
{
    if (a.t == JV_STR && b.t == JV_STR)
        return a.s->len == b.s->len && memcmp(a.s->p, b.s->p, a.s->len) == 0;
    if (jv_is_num(a) && jv_is_num(b))
        return jv_num(a) == jv_num(b) &&
               (a.t == JV_FLOAT || b.t == JV_FLOAT || a.i == b.i);
    if (a.t != b.t)
        return 0;
    switch (a.t) {
    case JV_NONE:
    case JV_UNDEF: return 1;
    case JV_LIST: return a.l == b.l;   /* tuples as keys: by identity, good enough */
    default: return a.p == b.p;
    }
}

int jd_get(const jdict *d, jv key, jv *out)
{
    for (size_t i = 0; i < d->n; i++)
        if (key_eq(d->k[i], key)) {
            *out = d->v[i];
            return 1;
        }
    return 0;
}

int jd_get_str(const jdict *d, const char *key, jv *out)
{
    size_t n = strlen(key);
    for (size_t i = 0; i < d->n; i++)
        if (d->k[i].t == JV_STR && d->k[i].s->len == n && memcmp(d->k[i].s->p, key, n) == 0) {
            *out = d->v[i];
            return 1;
        }
    return 0;
}

void jd_set(jj_render *R, jv dict, jv key, jv val)
{
    jdict *d = dict.d;
    if (R->failed)
        return;
    for (size_t i = 0; i < d->n; i++)
        if (key_eq(d->k[i], key)) {
            d->v[i] = val;
            return;
        }
    if (d->n == d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 4;
        jv *nk = nc <= SIZE_MAX / sizeof(jv) / 4 ? jj_alloc(&R->A, nc * sizeof(jv)) : NULL;
        jv *nv = nk ? jj_alloc(&R->A, nc * sizeof(jv)) : NULL;
        if (nv == NULL) {
            mem_fail(R);
            return;
        }
        if (d->n) {
            memcpy(nk, d->k, d->n * sizeof(jv));
            memcpy(nv, d->v, d->n * sizeof(jv));
        }
        d->k = nk;
        d->v = nv;
        d->cap = nc;
    }
    d->k[d->n] = key;
    d->v[d->n] = val;
    d->n++;
}

/* ---- Python semantics --------------------------------------------------- */

int jv_truthy(jv v)
{
    switch (v.t) {
    case JV_UNDEF:
    case JV_NONE:
    case JV_MISSING: return 0;
    case JV_BOOL:
    case JV_INT: return v.i != 0;
    case JV_FLOAT: return v.f != 0.0;
    case JV_STR: return v.s->len > 0;
    case JV_LIST: return v.sub == JL_GEN || v.sub == JL_REVITER || v.l->n > 0;
    case JV_DICT: return v.d->n > 0;
    default: return 1;
    }
}

const char *jv_type_name(jv v)
{
    switch (v.t) {
    case JV_UNDEF: return "Undefined";
    case JV_NONE: return "NoneType";
    case JV_BOOL: return "bool";
    case JV_INT: return "int";
    case JV_FLOAT: return "float";
    case JV_STR: return v.sub ? "Markup" : "str";
    case JV_DICT: return "dict";
    case JV_NS: return "Namespace";
    case JV_MACRO: return "Macro";
    case JV_FUNC: return "function";
    case JV_METHOD: return "builtin_function_or_method";
    case JV_LOOP: return "LoopContext";
    case JV_LIST:
        switch (v.sub) {
        case JL_TUPLE: return "tuple";
        case JL_GEN: return "generator";
        case JL_REVITER: return v.l->pyname ? v.l->pyname : "list_reverseiterator";
        case JL_RANGE: return "range";
        case JL_ITEMS: return "dict_items";
        case JL_KEYS: return "dict_keys";
        case JL_VALUES: return "dict_values";
        default: return "list";
        }
    default: return "object";
    }
}

static int seq_kind_cmpable(int sub)
{
    return sub == JL_LIST || sub == JL_TUPLE || sub == JL_RANGE;
}

static int eq_depth(jj_render *R, jv a, jv b, int depth)
{
    if (depth > JJ_MAX_NEST) {
        jj_fail(R, LAMINA_ERANGE, "values nested too deeply to compare");
        return 0;
    }
    if (jv_is_num(a) && jv_is_num(b)) {
        if (a.t == JV_FLOAT || b.t == JV_FLOAT)
            return jv_num(a) == jv_num(b);
        return a.i == b.i;
    }
    if (a.t != b.t)
        return 0;
    switch (a.t) {
    case JV_UNDEF:
    case JV_NONE: return 1;
    case JV_STR: return a.s->len == b.s->len && memcmp(a.s->p, b.s->p, a.s->len) == 0;
    case JV_LIST:
        if (a.l == b.l && a.sub == b.sub)
            return 1;
        if (a.sub != b.sub || !seq_kind_cmpable(a.sub) || a.l->n != b.l->n)
            return 0;
        for (size_t i = 0; i < a.l->n; i++)
            if (!eq_depth(R, a.l->v[i], b.l->v[i], depth + 1))
                return 0;
        return 1;
    case JV_DICT:
        if (a.d->n != b.d->n)
            return 0;
        for (size_t i = 0; i < a.d->n; i++) {
            jv bv;
            if (!jd_get(b.d, a.d->k[i], &bv) || !eq_depth(R, a.d->v[i], bv, depth + 1))
                return 0;
        }
        return 1;
    case JV_FUNC: return a.sub == b.sub;
    case JV_METHOD: return a.id == b.id && a.bm == b.bm;
    default: return a.p == b.p;
    }
}

int jv_eq(jj_render *R, jv a, jv b)
{
    return eq_depth(R, a, b, 0);
}

static int cmp_depth(jj_render *R, jv a, jv b, int *res, int depth)
{
    if (depth > JJ_MAX_NEST) {
        jj_fail(R, LAMINA_ERANGE, "values nested too deeply to compare");
        return -1;
    }
    if (a.t == JV_UNDEF) {
        jj_fail_undef(R, a);
        return -1;
    }
    if (b.t == JV_UNDEF) {
        jj_fail_undef(R, b);
        return -1;
    }
    if (jv_is_num(a) && jv_is_num(b)) {
        if (a.t == JV_FLOAT || b.t == JV_FLOAT) {
            double x = jv_num(a), y = jv_num(b);
            *res = x < y ? -1 : x > y ? 1 : 0;
            if (isnan(x) || isnan(y))
                *res = 2;   /* unordered: every comparison false */
        } else {
            *res = a.i < b.i ? -1 : a.i > b.i;
        }
        return 0;
    }
    if (a.t == JV_STR && b.t == JV_STR) {
        size_t n = a.s->len < b.s->len ? a.s->len : b.s->len;
        int c = memcmp(a.s->p, b.s->p, n);
        *res = c < 0 ? -1 : c > 0 ? 1 : a.s->len < b.s->len ? -1 : a.s->len > b.s->len;
        return 0;
    }
    if (a.t == JV_LIST && b.t == JV_LIST && a.sub == b.sub &&
        (a.sub == JL_LIST || a.sub == JL_TUPLE)) {
        size_t n = a.l->n < b.l->n ? a.l->n : b.l->n;
        for (size_t i = 0; i < n; i++) {
            int e = eq_depth(R, a.l->v[i], b.l->v[i], depth + 1);
            if (R->failed)
                return -1;
            if (!e)
                return cmp_depth(R, a.l->v[i], b.l->v[i], res, depth + 1);
        }
        *res = a.l->n < b.l->n ? -1 : a.l->n > b.l->n;
        return 0;
    }
    jj_fail(R, LAMINA_EINVAL, "'<' not supported between instances of '%s' and '%s'",
            jv_type_name(a), jv_type_name(b));
    return -1;
}

int jv_cmp(jj_render *R, jv a, jv b, int *res)
{
    return cmp_depth(R, a, b, res, 0);
}

int jv_contains(jj_render *R, jv c, jv item, int *res)
{
    *res = 0;
    switch (c.t) {
    case JV_UNDEF: return 0;
    case JV_STR:
        if (item.t != JV_STR) {
            jj_fail(R, LAMINA_EINVAL, "'in <string>' requires string as left operand, not %s",
                    jv_type_name(item));
            return -1;
        }
        if (item.s->len == 0) {
            *res = 1;
            return 0;
        }
        *res = memmem(c.s->p, c.s->len, item.s->p, item.s->len) != NULL;
        return 0;
    case JV_DICT:
        if (item.t == JV_LIST || item.t == JV_DICT || item.t == JV_NS) {
            if (!(item.t == JV_LIST && item.sub == JL_TUPLE)) {
                jj_fail(R, LAMINA_EINVAL, "unhashable type: '%s'", jv_type_name(item));
                return -1;
            }
        }
        {
            jv tmp;
            *res = jd_get(c.d, item, &tmp);
        }
        return 0;
    case JV_LIST: {
        jv *items;
        size_t n;
        if (jv_items(R, c, &items, &n) < 0)
            return -1;
        for (size_t i = 0; i < n; i++) {
            if (jv_eq(R, items[i], item)) {
                *res = 1;
                break;
            }
        }
        return R->failed ? -1 : 0;
    }
    default:
        jj_fail(R, LAMINA_EINVAL, "argument of type '%s' is not iterable", jv_type_name(c));
        return -1;
    }
}

int jv_items(jj_render *R, jv v, jv **items, size_t *n)
{
    *items = NULL;
    *n = 0;
    switch (v.t) {
    case JV_UNDEF: return 0;
    case JV_LIST:
        if (v.sub == JL_GEN || v.sub == JL_REVITER) {
            jlist *l = v.l;
            if (l->gen_err != NULL) {
                jj_fail(R, LAMINA_EINVAL, "%s", l->gen_err);
                return -1;
            }
            if (l->v == NULL)
                return 0;
            *items = l->v + l->pos;
            *n = l->n - l->pos;
            if (l->pos != l->n)
                l->pos = l->n;
            return 0;
        }
        *items = v.l->v;
        *n = v.l->n;
        return 0;
    case JV_DICT:
        *items = v.d->k;
        *n = v.d->n;
        return 0;
    case JV_STR: {
        jv l = jv_list(R, v.s->ncp, JL_LIST);
        size_t i = 0;
        while (i < v.s->len && !R->failed) {
            size_t s = i;
            jj_utf8_next(v.s->p, v.s->len, &i);
            jl_push(R, l, jv_str(R, v.s->p + s, i - s));
        }
        if (R->failed)
            return -1;
        *items = l.l->v;
        *n = l.l->n;
        return 0;
    }
    default:
        jj_fail(R, LAMINA_EINVAL, "'%s' object is not iterable", jv_type_name(v));
        return -1;
    }
}

int jv_len(jj_render *R, jv v, size_t *n)
{
    switch (v.t) {
    case JV_UNDEF: *n = 0; return 0;
    case JV_STR: *n = v.s->ncp; return 0;
    case JV_DICT: *n = v.d->n; return 0;
    case JV_LIST:
        if (v.sub != JL_GEN && v.sub != JL_REVITER) {
            *n = v.l->n;
            return 0;
        }
        break;
    default: break;
    }
    jj_fail(R, LAMINA_EINVAL, "object of type '%s' has no len()", jv_type_name(v));
    return -1;
}

/* ---- str() and repr() ------------------------------------------------------ */

void jj_float_repr(char *out, size_t size, double f)
{
    if (isnan(f)) {
        snprintf(out, size, "nan");
        return;
    }
    if (isinf(f)) {
        snprintf(out, size, f < 0 ? "-inf" : "inf");
        return;
    }
    if (f == 0.0) {
        snprintf(out, size, signbit(f) ? "-0.0" : "0.0");
        return;
    }
    char tmp[48];
    for (int p = 1; p <= 17; p++) {
        snprintf(tmp, sizeof tmp, "%.*e", p - 1, f);
        if (strtod(tmp, NULL) == f)
            break;
    }
    /* tmp: [-]d[.ddd]e[+-]xx */
    char digits[24];
    int nd = 0, neg = 0;
    const char *p = tmp;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    while (*p && *p != 'e') {
        if (*p >= '0' && *p <= '9' && nd < 20)
            digits[nd++] = *p;
        p++;
    }
    int e = *p == 'e' ? atoi(p + 1) : 0;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    int decpt = e + 1;
    char res[64];
    size_t k = 0;
    if (neg)
        res[k++] = '-';
    if (decpt > -4 && decpt <= 16) {
        if (decpt <= 0) {
            res[k++] = '0';
            res[k++] = '.';
            for (int i = 0; i < -decpt; i++)
                res[k++] = '0';
            for (int i = 0; i < nd; i++)
                res[k++] = digits[i];
        } else if (decpt >= nd) {
            for (int i = 0; i < nd; i++)
                res[k++] = digits[i];
            for (int i = nd; i < decpt; i++)
                res[k++] = '0';
            res[k++] = '.';
            res[k++] = '0';
        } else {
            for (int i = 0; i < nd; i++) {
                if (i == decpt)
                    res[k++] = '.';
                res[k++] = digits[i];
            }
        }
        res[k] = 0;
    } else {
        res[k++] = digits[0];
        if (nd > 1) {
            res[k++] = '.';
            for (int i = 1; i < nd; i++)
                res[k++] = digits[i];
        }
        int x = decpt - 1;
        snprintf(res + k, sizeof res - k, "e%c%02d", x < 0 ? '-' : '+', x < 0 ? -x : x);
    }
    snprintf(out, size, "%s", res);
}

static void str_repr(lamina_strbuf *b, const char *s, size_t n)
{
    int has_sq = memchr(s, '\'', n) != NULL, has_dq = memchr(s, '"', n) != NULL;
    char q = has_sq && !has_dq ? '"' : '\'';
    lamina_strbuf_ch(b, q);
    size_t i = 0;
    while (i < n) {
        size_t st = i;
        uint32_t c = jj_utf8_next(s, n, &i);
        char tmp[16];
        if (c == (uint32_t)q || c == '\\') {
            lamina_strbuf_ch(b, '\\');
            lamina_strbuf_ch(b, (char)c);
        } else if (c == '\t') {
            lamina_strbuf_str(b, "\\t");
        } else if (c == '\n') {
            lamina_strbuf_str(b, "\\n");
        } else if (c == '\r') {
            lamina_strbuf_str(b, "\\r");
        } else if (c < 0x20 || c == 0x7F) {
            snprintf(tmp, sizeof tmp, "\\x%02x", (unsigned)c);
            lamina_strbuf_str(b, tmp);
        } else if (c < 0x80 || jj_isprint(c)) {
            lamina_strbuf_add(b, s + st, i - st);
        } else {
            if (c <= 0xFF)
                snprintf(tmp, sizeof tmp, "\\x%02x", (unsigned)c);
            else if (c <= 0xFFFF)
                snprintf(tmp, sizeof tmp, "\\u%04x", (unsigned)c);
            else
                snprintf(tmp, sizeof tmp, "\\U%08x", (unsigned)c);
            lamina_strbuf_str(b, tmp);
        }
    }
    lamina_strbuf_ch(b, q);
}

static void scalar_str(lamina_strbuf *b, jv v)
{
    char tmp[64];
    switch (v.t) {
    case JV_NONE: lamina_strbuf_str(b, "None"); break;
    case JV_BOOL: lamina_strbuf_str(b, v.i ? "True" : "False"); break;
    case JV_INT:
        snprintf(tmp, sizeof tmp, "%" PRId64, v.i);
        lamina_strbuf_str(b, tmp);
        break;
    case JV_FLOAT:
        jj_float_repr(tmp, sizeof tmp, v.f);
        lamina_strbuf_str(b, tmp);
        break;
    default: break;
    }
}

static void seq_repr(jj_render *R, lamina_strbuf *b, const jv *items, size_t n, const char *open,
                     const char *close, int tuple, int depth)
{
    lamina_strbuf_str(b, open);
    for (size_t i = 0; i < n; i++) {
        if (i)
            lamina_strbuf_str(b, ", ");
        jv_repr_into(R, b, items[i], depth + 1);
    }
    if (tuple && n == 1)
        lamina_strbuf_ch(b, ',');
    lamina_strbuf_str(b, close);
}

static void dict_repr(jj_render *R, lamina_strbuf *b, const jdict *d, int depth)
{
    lamina_strbuf_ch(b, '{');
    for (size_t i = 0; i < d->n; i++) {
        if (i)
            lamina_strbuf_str(b, ", ");
        jv_repr_into(R, b, d->k[i], depth + 1);
        lamina_strbuf_str(b, ": ");
        jv_repr_into(R, b, d->v[i], depth + 1);
    }
    lamina_strbuf_ch(b, '}');
}

static void other_repr(jj_render *R, lamina_strbuf *b, jv v, int depth)
{
    char tmp[64];
    switch (v.t) {
    case JV_NS:
        lamina_strbuf_str(b, "<Namespace ");
        dict_repr(R, b, v.d, depth);
        lamina_strbuf_ch(b, '>');
        break;
    case JV_MACRO:
        lamina_strbuf_str(b, "<Macro '");
        lamina_strbuf_str(b, v.m->def->name);
        lamina_strbuf_str(b, "'>");
        break;
    case JV_FUNC: lamina_strbuf_str(b, "<function>"); break;
    case JV_METHOD:
        lamina_strbuf_str(b, "<built-in method ");
        lamina_strbuf_str(b, jj_method_name(v.id));
        lamina_strbuf_str(b, ">");
        break;
    case JV_LOOP:
        snprintf(tmp, sizeof tmp, "<LoopContext %zu/%zu>", v.lp->i + 1, v.lp->n);
        lamina_strbuf_str(b, tmp);
        break;
    default: break;
    }
}

void jv_repr_into(jj_render *R, lamina_strbuf *b, jv v, int depth)
{
    if (depth > JJ_MAX_NEST) {
        jj_fail(R, LAMINA_ERANGE, "values nested too deeply to print");
        return;
    }
    if (R->failed || b->over)
        return;
    switch (v.t) {
    case JV_UNDEF: lamina_strbuf_str(b, "Undefined"); break;
    case JV_STR:
        if (v.sub) {
            lamina_strbuf_str(b, "Markup(");
            str_repr(b, v.s->p, v.s->len);
            lamina_strbuf_ch(b, ')');
        } else {
            str_repr(b, v.s->p, v.s->len);
        }
        break;
    case JV_LIST:
        switch (v.sub) {
        case JL_TUPLE: seq_repr(R, b, v.l->v, v.l->n, "(", ")", 1, depth); break;
        case JL_LIST: seq_repr(R, b, v.l->v, v.l->n, "[", "]", 0, depth); break;
        case JL_RANGE: {
            char tmp[96];
            if (v.l->r2 == 1)
                snprintf(tmp, sizeof tmp, "range(%" PRId64 ", %" PRId64 ")", v.l->r0, v.l->r1);
            else
                snprintf(tmp, sizeof tmp, "range(%" PRId64 ", %" PRId64 ", %" PRId64 ")",
                         v.l->r0, v.l->r1, v.l->r2);
            lamina_strbuf_str(b, tmp);
            break;
        }
        case JL_ITEMS: seq_repr(R, b, v.l->v, v.l->n, "dict_items([", "])", 0, depth); break;
        case JL_KEYS: seq_repr(R, b, v.l->v, v.l->n, "dict_keys([", "])", 0, depth); break;
        case JL_VALUES: seq_repr(R, b, v.l->v, v.l->n, "dict_values([", "])", 0, depth); break;
        default:
            /* Python prints an address here: a made-up one of the usual length */
            if (v.sub == JL_GEN) {
                lamina_strbuf_str(b, "<generator object ");
                lamina_strbuf_str(b, v.l->pyname ? v.l->pyname : "genexpr");
                lamina_strbuf_str(b, " at 0x7f0000000000>");
            } else {
                lamina_strbuf_str(b, "<");
                lamina_strbuf_str(b, v.l->pyname ? v.l->pyname : jv_type_name(v));
                lamina_strbuf_str(b, " object at 0x7f0000000000>");
            }
            break;
        }
        break;
    case JV_DICT: dict_repr(R, b, v.d, depth); break;
    case JV_NONE:
    case JV_BOOL:
    case JV_INT:
    case JV_FLOAT: scalar_str(b, v); break;
    default: other_repr(R, b, v, depth); break;
    }
}

void jv_str_into(jj_render *R, lamina_strbuf *b, jv v)
{
    switch (v.t) {
    case JV_UNDEF:
    case JV_MISSING: break;
    case JV_STR: lamina_strbuf_add(b, v.s->p, v.s->len); break;
    case JV_NONE:
    case JV_BOOL:
    case JV_INT:
    case JV_FLOAT: scalar_str(b, v); break;
    default: jv_repr_into(R, b, v, 0); break;
    }
}

jv jv_to_str(jj_render *R, jv v)
{
    if (v.t == JV_STR)
        return v;
    lamina_strbuf b = {.limit = R->max_output};
    jv_str_into(R, &b, v);
    return jv_buf(R, &b);
}

void jj_escape_into(lamina_strbuf *b, const char *s, size_t n)
{
    size_t st = 0;
    for (size_t i = 0; i < n; i++) {
        const char *rep = NULL;
        switch (s[i]) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&#34;"; break;
        case '\'': rep = "&#39;"; break;
        default: break;
        }
        if (rep) {
            lamina_strbuf_add(b, s + st, i - st);
            lamina_strbuf_str(b, rep);
            st = i + 1;
        }
    }
    lamina_strbuf_add(b, s + st, n - st);
}

/* ---- json.dumps ------------------------------------------------------------ */

static void json_string(lamina_strbuf *b, const char *s, size_t n, int ensure_ascii)
{
    char tmp[16];
    lamina_strbuf_ch(b, '"');
    size_t i = 0, st = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        const char *rep = NULL;
        if (c == '"') rep = "\\\"";
        else if (c == '\\') rep = "\\\\";
        else if (c == '\n') rep = "\\n";
        else if (c == '\r') rep = "\\r";
        else if (c == '\t') rep = "\\t";
        else if (c == '\b') rep = "\\b";
        else if (c == '\f') rep = "\\f";
        if (rep != NULL || c < 0x20 || (ensure_ascii && c >= 0x7F)) {
            lamina_strbuf_add(b, s + st, i - st);
            if (rep != NULL) {
                lamina_strbuf_str(b, rep);
                i++;
            } else if (c < 0x80) {
                snprintf(tmp, sizeof tmp, "\\u%04x", c);
                lamina_strbuf_str(b, tmp);
                i++;
            } else {
                uint32_t cp = jj_utf8_next(s, n, &i);
                if (cp >= 0x10000) {
                    cp -= 0x10000;
                    snprintf(tmp, sizeof tmp, "\\u%04x\\u%04x", 0xD800 + (cp >> 10),
                             0xDC00 + (cp & 0x3FF));
                } else {
                    snprintf(tmp, sizeof tmp, "\\u%04x", cp);
                }
                lamina_strbuf_str(b, tmp);
            }
            st = i;
            continue;
        }
        i++;
    }
    lamina_strbuf_add(b, s + st, n - st);
    lamina_strbuf_ch(b, '"');
}

static void json_float(lamina_strbuf *b, double f)
{
    char tmp[64];
    if (isnan(f))
        lamina_strbuf_str(b, "NaN");
    else if (isinf(f))
        lamina_strbuf_str(b, f < 0 ? "-Infinity" : "Infinity");
    else {
        jj_float_repr(tmp, sizeof tmp, f);
        lamina_strbuf_str(b, tmp);
    }
}

static void json_newline(lamina_strbuf *b, const jj_json_opts *o, int level)
{
    lamina_strbuf_ch(b, '\n');
    for (int i = 0; i < level; i++)
        lamina_strbuf_str(b, o->indent);
}

static int json_key(jj_render *R, lamina_strbuf *b, jv k, const jj_json_opts *o)
{
    char tmp[64];
    switch (k.t) {
    case JV_STR: json_string(b, k.s->p, k.s->len, o->ensure_ascii); return 0;
    case JV_FLOAT:
        lamina_strbuf_ch(b, '"');
        json_float(b, k.f);
        lamina_strbuf_ch(b, '"');
        return 0;
    case JV_BOOL: lamina_strbuf_str(b, k.i ? "\"true\"" : "\"false\""); return 0;
    case JV_INT:
        snprintf(tmp, sizeof tmp, "\"%" PRId64 "\"", k.i);
        lamina_strbuf_str(b, tmp);
        return 0;
    case JV_NONE: lamina_strbuf_str(b, "\"null\""); return 0;
    default:
        jj_fail(R, LAMINA_EINVAL, "keys must be str, int, float, bool or None, not %s",
                jv_type_name(k));
        return -1;
    }
}

void jv_tojson_into(jj_render *R, lamina_strbuf *b, jv v, const jj_json_opts *o, int depth)
{
    char tmp[64];
    if (R->failed || b->over)
        return;
    if (depth > JJ_MAX_NEST) {
        jj_fail(R, LAMINA_ERANGE, "values nested too deeply for tojson");
        return;
    }
    switch (v.t) {
    case JV_NONE: lamina_strbuf_str(b, "null"); return;
    case JV_BOOL: lamina_strbuf_str(b, v.i ? "true" : "false"); return;
    case JV_INT:
        snprintf(tmp, sizeof tmp, "%" PRId64, v.i);
        lamina_strbuf_str(b, tmp);
        return;
    case JV_FLOAT: json_float(b, v.f); return;
    case JV_STR: json_string(b, v.s->p, v.s->len, o->ensure_ascii); return;
    case JV_LIST:
        if (v.sub != JL_LIST && v.sub != JL_TUPLE)
            break;
        if (v.l->n == 0) {
            lamina_strbuf_str(b, "[]");
            return;
        }
        lamina_strbuf_ch(b, '[');
        for (size_t i = 0; i < v.l->n; i++) {
            if (i)
                lamina_strbuf_str(b, o->item_sep);
            if (o->indent)
                json_newline(b, o, depth + 1);
            jv_tojson_into(R, b, v.l->v[i], o, depth + 1);
        }
        if (o->indent)
            json_newline(b, o, depth);
        lamina_strbuf_ch(b, ']');
        return;
    case JV_DICT: {
        const jdict *d = v.d;
        if (d->n == 0) {
            lamina_strbuf_str(b, "{}");
            return;
        }
        size_t *order = NULL;
        if (o->sort_keys && d->n > 1) {
            order = jj_alloc(&R->A, d->n * sizeof(size_t));
            if (order == NULL) {
                mem_fail(R);
                return;
            }
            for (size_t i = 0; i < d->n; i++)
                order[i] = i;
            /* insertion sort: stable, and compares as Python does */
            for (size_t i = 1; i < d->n; i++) {
                size_t x = order[i], j = i;
                while (j > 0) {
                    int c;
                    if (jv_cmp(R, d->k[order[j - 1]], d->k[x], &c) < 0)
                        return;
                    if (c <= 0)
                        break;
                    order[j] = order[j - 1];
                    j--;
                }
                order[j] = x;
            }
        }
        lamina_strbuf_ch(b, '{');
        for (size_t i = 0; i < d->n; i++) {
            size_t k = order ? order[i] : i;
            if (i)
                lamina_strbuf_str(b, o->item_sep);
            if (o->indent)
                json_newline(b, o, depth + 1);
            if (json_key(R, b, d->k[k], o) < 0)
                return;
            lamina_strbuf_str(b, o->key_sep);
            jv_tojson_into(R, b, d->v[k], o, depth + 1);
        }
        if (o->indent)
            json_newline(b, o, depth);
        lamina_strbuf_ch(b, '}');
        return;
    }
    default: break;
    }
    jj_fail(R, LAMINA_EINVAL, "Object of type %s is not JSON serializable", jv_type_name(v));
}

/* ---- json.loads ------------------------------------------------------------ */

typedef struct jparse {
    jj_render *R;
    const char *s;
    size_t n, i;
} jparse;

static void jp_ws(jparse *p)
{
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' ||
                           p->s[p->i] == '\r'))
        p->i++;
}

static int jp_fail(jparse *p, const char *what)
{
    jj_fail(p->R, LAMINA_EINVAL, "context JSON: %s at byte %zu", what, p->i);
    return -1;
}

static int jp_hex4(jparse *p, uint32_t *out)
{
    if (p->n - p->i < 4)
        return jp_fail(p, "bad \\u escape");
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
        char c = p->s[p->i++];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else return jp_fail(p, "bad \\u escape");
    }
    *out = v;
    return 0;
}

static int jp_string(jparse *p, jv *out)
{
    lamina_strbuf b = {0};
    p->i++; /* opening quote */
    for (;;) {
        if (p->i >= p->n) {
            lamina_strbuf_free(&b);
            return jp_fail(p, "unterminated string");
        }
        unsigned char c = (unsigned char)p->s[p->i];
        if (c == '"') {
            p->i++;
            break;
        }
        if (c < 0x20) {
            lamina_strbuf_free(&b);
            return jp_fail(p, "control character in string");
        }
        if (c != '\\') {
            size_t st = p->i;
            while (p->i < p->n && p->s[p->i] != '"' && p->s[p->i] != '\\' &&
                   (unsigned char)p->s[p->i] >= 0x20)
                p->i++;
            lamina_strbuf_add(&b, p->s + st, p->i - st);
            continue;
        }
        p->i++;
        if (p->i >= p->n) {
            lamina_strbuf_free(&b);
            return jp_fail(p, "unterminated string");
        }
        char e = p->s[p->i++];
        char tmp[4];
        switch (e) {
        case '"': lamina_strbuf_ch(&b, '"'); break;
        case '\\': lamina_strbuf_ch(&b, '\\'); break;
        case '/': lamina_strbuf_ch(&b, '/'); break;
        case 'b': lamina_strbuf_ch(&b, '\b'); break;
        case 'f': lamina_strbuf_ch(&b, '\f'); break;
        case 'n': lamina_strbuf_ch(&b, '\n'); break;
        case 'r': lamina_strbuf_ch(&b, '\r'); break;
        case 't': lamina_strbuf_ch(&b, '\t'); break;
        case 'u': {
            uint32_t cp, lo;
            if (jp_hex4(p, &cp) < 0) {
                lamina_strbuf_free(&b);
                return -1;
            }
            if (cp >= 0xD800 && cp < 0xDC00) {
                if (p->n - p->i < 6 || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u') {
                    lamina_strbuf_free(&b);
                    return jp_fail(p, "lone surrogate");
                }
                p->i += 2;
                if (jp_hex4(p, &lo) < 0) {
                    lamina_strbuf_free(&b);
                    return -1;
                }
                if (lo < 0xDC00 || lo >= 0xE000) {
                    lamina_strbuf_free(&b);
                    return jp_fail(p, "lone surrogate");
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp < 0xE000) {
                lamina_strbuf_free(&b);
                return jp_fail(p, "lone surrogate");
            }
            lamina_strbuf_add(&b, tmp, jj_utf8_put(tmp, cp));
            break;
        }
        default:
            lamina_strbuf_free(&b);
            return jp_fail(p, "bad escape");
        }
    }
    if (b.over) {
        lamina_strbuf_free(&b);
        return jp_fail(p, "out of memory");
    }
    *out = jv_str(p->R, b.p ? b.p : "", b.n);
    lamina_strbuf_free(&b);
    return p->R->failed ? -1 : 0;
}

static int jp_number(jparse *p, jv *out)
{
    size_t st = p->i;
    int is_float = 0;
    if (p->s[p->i] == '-')
        p->i++;
    if (p->i < p->n && p->s[p->i] == '0') {
        p->i++;
    } else if (p->i < p->n && p->s[p->i] >= '1' && p->s[p->i] <= '9') {
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
            p->i++;
    } else {
        return jp_fail(p, "bad number");
    }
    if (p->i < p->n && p->s[p->i] == '.') {
        p->i++;
        if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9')
            return jp_fail(p, "bad number");
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
            p->i++;
        is_float = 1;
    }
    if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
        p->i++;
        if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-'))
            p->i++;
        if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9')
            return jp_fail(p, "bad number");
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
            p->i++;
        is_float = 1;
    }
    char tmp[128];
    size_t len = p->i - st;
    if (len >= sizeof tmp)
        return jp_fail(p, "number too long");
    memcpy(tmp, p->s + st, len);
    tmp[len] = 0;
    if (is_float) {
        *out = jv_float(strtod(tmp, NULL));
        return 0;
    }
    errno = 0;
    long long v = strtoll(tmp, NULL, 10);
    if (errno == ERANGE)
        return jp_fail(p, "integer out of range");
    *out = jv_int((int64_t)v);
    return 0;
}

static int jp_lit(jparse *p, const char *w)
{
    size_t n = strlen(w);
    if (p->n - p->i >= n && memcmp(p->s + p->i, w, n) == 0) {
        p->i += n;
        return 1;
    }
    return 0;
}

static int jp_value(jparse *p, jv *out, int depth)
{
    jj_render *R = p->R;
    if (depth > 200)
        return jp_fail(p, "nested too deeply");
    jp_ws(p);
    if (p->i >= p->n)
        return jp_fail(p, "unexpected end");
    char c = p->s[p->i];
    if (c == '{') {
        jv d = jv_dict(R, 0, JV_DICT);
        p->i++;
        jp_ws(p);
        if (p->i < p->n && p->s[p->i] == '}') {
            p->i++;
            *out = d;
            return 0;
        }
        for (;;) {
            jv k, v;
            jp_ws(p);
            if (p->i >= p->n || p->s[p->i] != '"')
                return jp_fail(p, "expected a string key");
            if (jp_string(p, &k) < 0)
                return -1;
            jp_ws(p);
            if (p->i >= p->n || p->s[p->i] != ':')
                return jp_fail(p, "expected ':'");
            p->i++;
            if (jp_value(p, &v, depth + 1) < 0)
                return -1;
            jd_set(R, d, k, v);
            jp_ws(p);
            if (p->i < p->n && p->s[p->i] == ',') {
                p->i++;
                continue;
            }
            if (p->i < p->n && p->s[p->i] == '}') {
                p->i++;
                break;
            }
            return jp_fail(p, "expected ',' or '}'");
        }
        *out = d;
        return R->failed ? -1 : 0;
    }
    if (c == '[') {
        jv l = jv_list(R, 0, JL_LIST);
        p->i++;
        jp_ws(p);
        if (p->i < p->n && p->s[p->i] == ']') {
            p->i++;
            *out = l;
            return 0;
        }
        for (;;) {
            jv v;
            if (jp_value(p, &v, depth + 1) < 0)
                return -1;
            jl_push(R, l, v);
            jp_ws(p);
            if (p->i < p->n && p->s[p->i] == ',') {
                p->i++;
                continue;
            }
            if (p->i < p->n && p->s[p->i] == ']') {
                p->i++;
                break;
            }
            return jp_fail(p, "expected ',' or ']'");
        }
        *out = l;
        return R->failed ? -1 : 0;
    }
    if (c == '"')
        return jp_string(p, out);
    if (c == '-' || (c >= '0' && c <= '9')) {
        if (jp_lit(p, "-Infinity")) {
            *out = jv_float(-INFINITY);
            return 0;
        }
        return jp_number(p, out);
    }
    if (jp_lit(p, "true")) { *out = jv_bool(1); return 0; }
    if (jp_lit(p, "false")) { *out = jv_bool(0); return 0; }
    if (jp_lit(p, "null")) { *out = jv_none(); return 0; }
    if (jp_lit(p, "NaN")) { *out = jv_float(NAN); return 0; }
    if (jp_lit(p, "Infinity")) { *out = jv_float(INFINITY); return 0; }
    return jp_fail(p, "unexpected character");
}

int jj_json_parse(jj_render *R, const char *s, size_t n, jv *out)
{
    jparse p = {R, s, n, 0};
    if (!jj_utf8_valid(s, n)) {
        jj_fail(R, LAMINA_EINVAL, "context JSON is not valid UTF-8");
        return -1;
    }
    if (jp_value(&p, out, 0) < 0)
        return -1;
    jp_ws(&p);
    if (p.i != n)
        return jp_fail(&p, "extra data");
    return 0;
}

int lamina_jinja_json_str(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    lamina_strbuf b = {.p = *buf, .n = *len, .cap = *cap};
    json_string(&b, s, n, 0);
    *buf = b.p;
    *cap = b.cap;
    if (b.over)
        return LAMINA_ENOMEM;
    *len = b.n;
    return 0;
}
