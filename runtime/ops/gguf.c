/*
 * gguf.c - GGUF (v2/v3) reader over mmap.  See gguf.h for the contract and
 * the limits enforced.
 *
 * Layout read here (all little endian):
 *   u32 magic "GGUF", u32 version, u64 n_tensors, u64 n_kv,
 *   n_kv x { string key, u32 type, value },
 *   n_tensors x { string name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset },
 *   padding to general.alignment, tensor data (offsets relative to here).
 * A string is u64 length + bytes; an array is u32 element type, u64 count,
 * elements.
 *
 * Every read goes through the cursor helpers below, which check the bytes
 * are there before touching them; all size arithmetic is checked.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf.h"
#include "lamina/quant.h"

#define MAX_COUNT      (UINT64_C(1) << 20)   /* n_kv, n_tensors */
#define MAX_NAME       65535u                /* key / tensor name bytes */
#define MAX_STRING     (UINT64_C(1) << 30)   /* string value bytes */
#define MAX_ALIGNMENT  (UINT64_C(1) << 30)
#define MAX_DIM        (INT64_C(1) << 62)
#define DEFAULT_ALIGNMENT 32u

/* Negative whatever the sign convention of enum lamina_error_code. */
#define NEG(code) ((code) < 0 ? (int)(code) : -(int)(code))

struct kv {
    char    *key;        /* NUL-terminated copy */
    uint32_t type;       /* enum lamina_gguf_type */
    uint32_t elem_type;  /* arrays */
    uint64_t off;        /* value bytes (strings: after the length; arrays: first element) */
    uint64_t n;          /* strings: byte length; arrays: element count */
    uint64_t *str_off;   /* string arrays: offset of each element's length prefix */
};

/* Open-addressing table of indices + 1 (0 = empty); cap is a power of two. */
struct table {
    uint32_t *slot;
    uint64_t  cap;
};

struct lamina_gguf {
    char          *path;
    const uint8_t *base;
    uint64_t       size;
    int            mapped;       /* base came from mmap */
    uint32_t       version;
    uint64_t       alignment;
    uint64_t       data_offset;
    int64_t        n_kv;
    struct kv     *kv;
    struct table   kv_index;
    int64_t        n_tensors;
    lamina_gguf_tensor *tensors;
    struct table   tensor_index;
};

/* ---- messages ---- */

static void put_err(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void put_err(char *err, size_t err_size, const char *fmt, ...)
{
    if (!err || err_size == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

/* Printable, bounded copy of file bytes for a message. */
static void printable(char *dst, size_t dst_size, const uint8_t *s, uint64_t len)
{
    size_t n = 0;
    for (uint64_t i = 0; i < len && n + 4 < dst_size; i++)
        dst[n++] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\'') ? (char)s[i] : '?';
    if (len > n && n + 4 <= dst_size) { memcpy(dst + n, "...", 3); n += 3; }
    dst[n] = 0;
}

/* ---- cursor over untrusted bytes ---- */

struct rd {
    const uint8_t *p;
    uint64_t size;
    uint64_t pos;
    const char *path;
    char *err;
    size_t err_size;
    char ctx[160];      /* "kv 3 'general.name'" - prefix of messages */
};

static int fail(struct rd *r, uint64_t off, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(struct rd *r, uint64_t off, int code, const char *fmt, ...)
{
    if (r->err && r->err_size) {
        char msg[384];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        snprintf(r->err, r->err_size, "%s: %s%s%s (offset %llu)", r->path, r->ctx,
                 r->ctx[0] ? ": " : "", msg, (unsigned long long)off);
    }
    return NEG(code);
}

/* Ensure n bytes at the cursor. */
static int need(struct rd *r, uint64_t n, const char *what)
{
    if (n > r->size - r->pos)
        return fail(r, r->pos, LAMINA_EFORMAT,
                    "truncated: %s needs %llu bytes, %llu left in file (%llu bytes)", what,
                    (unsigned long long)n, (unsigned long long)(r->size - r->pos),
                    (unsigned long long)r->size);
    return 0;
}

static uint32_t ld_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t ld_u64(const uint8_t *p)
{
    return (uint64_t)ld_u32(p) | (uint64_t)ld_u32(p + 4) << 32;
}

static int rd_u32(struct rd *r, uint32_t *v, const char *what)
{
    int rc = need(r, 4, what);
    if (rc) return rc;
    *v = ld_u32(r->p + r->pos);
    r->pos += 4;
    return 0;
}

static int rd_u64(struct rd *r, uint64_t *v, const char *what)
{
    int rc = need(r, 8, what);
    if (rc) return rc;
    *v = ld_u64(r->p + r->pos);
    r->pos += 8;
    return 0;
}

/* A string: length (<= max) then bytes; returns the offset of the bytes. */
static int rd_str(struct rd *r, uint64_t max, uint64_t *off, uint64_t *len, const char *what)
{
    uint64_t at = r->pos, n;
    int rc = rd_u64(r, &n, what);
    if (rc) return rc;
    if (n > max)
        return fail(r, at, LAMINA_EFORMAT, "%s length %llu exceeds the limit %llu", what,
                    (unsigned long long)n, (unsigned long long)max);
    if ((rc = need(r, n, what))) return rc;
    *off = r->pos;
    *len = n;
    r->pos += n;
    return 0;
}

/* A name (key / tensor): 1..MAX_NAME bytes, no NUL; returns a malloc'd copy. */
static int rd_name(struct rd *r, char **out, const char *what)
{
    uint64_t at = r->pos, off, len;
    int rc = rd_str(r, MAX_NAME, &off, &len, what);
    if (rc) return rc;
    if (len == 0) return fail(r, at, LAMINA_EFORMAT, "%s is empty", what);
    if (memchr(r->p + off, 0, len))
        return fail(r, at, LAMINA_EFORMAT, "%s contains a NUL byte", what);
    char *s = malloc(len + 1);
    if (!s) return fail(r, at, LAMINA_ENOMEM, "out of memory for %s", what);
    memcpy(s, r->p + off, len);
    s[len] = 0;
    *out = s;
    return 0;
}

/* ---- value types ---- */

static uint64_t scalar_size(uint32_t type)
{
    switch (type) {
    case LAMINA_GGUF_U8: case LAMINA_GGUF_I8: case LAMINA_GGUF_BOOL: return 1;
    case LAMINA_GGUF_U16: case LAMINA_GGUF_I16: return 2;
    case LAMINA_GGUF_U32: case LAMINA_GGUF_I32: case LAMINA_GGUF_F32: return 4;
    case LAMINA_GGUF_U64: case LAMINA_GGUF_I64: case LAMINA_GGUF_F64: return 8;
    default: return 0;
    }
}

const char *lamina_gguf_type_name(uint32_t type)
{
    static const char *const names[] = {
        "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool",
        "string", "array", "u64", "i64", "f64",
    };
    return type < sizeof names / sizeof names[0] ? names[type] : "?";
}

static int is_int_type(uint32_t t)
{
    return t == LAMINA_GGUF_U8 || t == LAMINA_GGUF_I8 || t == LAMINA_GGUF_U16 ||
           t == LAMINA_GGUF_I16 || t == LAMINA_GGUF_U32 || t == LAMINA_GGUF_I32 ||
           t == LAMINA_GGUF_U64 || t == LAMINA_GGUF_I64;
}

/* Integer at p of integer type t: *neg set when negative, *mag the value
 * (as unsigned two's complement bits for negatives: *sv holds it signed). */
static void load_int(uint32_t t, const uint8_t *p, int *neg, uint64_t *uv, int64_t *sv)
{
    uint64_t u = 0;
    int64_t s = 0;
    switch (t) {
    case LAMINA_GGUF_U8:  u = p[0]; s = (int64_t)u; break;
    case LAMINA_GGUF_I8:  s = (int8_t)p[0]; break;
    case LAMINA_GGUF_U16: u = (uint64_t)p[0] | (uint64_t)p[1] << 8; s = (int64_t)u; break;
    case LAMINA_GGUF_I16: s = (int16_t)(uint16_t)(p[0] | p[1] << 8); break;
    case LAMINA_GGUF_U32: u = ld_u32(p); s = (int64_t)u; break;
    case LAMINA_GGUF_I32: s = (int32_t)ld_u32(p); break;
    case LAMINA_GGUF_U64: u = ld_u64(p); s = u > INT64_MAX ? INT64_MAX : (int64_t)u; break;
    case LAMINA_GGUF_I64: s = (int64_t)ld_u64(p); break;
    default: break;
    }
    if (t == LAMINA_GGUF_I8 || t == LAMINA_GGUF_I16 || t == LAMINA_GGUF_I32 || t == LAMINA_GGUF_I64) {
        *neg = s < 0;
        u = s < 0 ? 0 : (uint64_t)s;
    } else {
        *neg = 0;
    }
    *uv = u;
    *sv = s;
}

static float ld_f32(const uint8_t *p)
{
    uint32_t b = ld_u32(p);
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

static double ld_f64(const uint8_t *p)
{
    uint64_t b = ld_u64(p);
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

/* ---- hash tables over names ---- */

static uint64_t hash_name(const char *s)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);           /* FNV-1a */
    for (; *s; s++) { h ^= (uint8_t)*s; h *= UINT64_C(0x100000001b3); }
    return h;
}

static int table_init(struct table *t, uint64_t n)
{
    uint64_t cap = 16;
    while (cap < 2 * n) cap <<= 1;
    t->slot = calloc(cap, sizeof *t->slot);
    t->cap = t->slot ? cap : 0;
    return t->slot ? 0 : -1;
}

/* Index of `name` (names[i] via get), or -1; *slot_out is where it would go. */
typedef const char *(*name_fn)(const lamina_gguf *g, uint64_t i);

static int64_t table_lookup(const struct table *t, const lamina_gguf *g, name_fn get,
                            const char *name, uint64_t *slot_out)
{
    if (t->cap == 0) return -1;
    uint64_t mask = t->cap - 1, i = hash_name(name) & mask;
    for (;;) {
        uint32_t v = t->slot[i];
        if (v == 0) { if (slot_out) *slot_out = i; return -1; }
        if (strcmp(get(g, v - 1), name) == 0) return (int64_t)(v - 1);
        i = (i + 1) & mask;
    }
}

static const char *kv_name(const lamina_gguf *g, uint64_t i) { return g->kv[i].key; }
static const char *tensor_name(const lamina_gguf *g, uint64_t i) { return g->tensors[i].name; }

/* ---- parsing ---- */

/* One value of type `type` at the cursor, into kv (which already has key). */
static int parse_value(struct rd *r, struct kv *kv)
{
    uint64_t at = r->pos;
    int rc;
    if (kv->type == LAMINA_GGUF_STRING) {
        return rd_str(r, MAX_STRING, &kv->off, &kv->n, "string value");
    }
    if (kv->type == LAMINA_GGUF_ARRAY) {
        uint64_t n;
        if ((rc = rd_u32(r, &kv->elem_type, "array element type"))) return rc;
        uint32_t et = kv->elem_type;
        if (et == LAMINA_GGUF_ARRAY)
            return fail(r, at, LAMINA_EFORMAT, "nested arrays are not supported");
        if (et != LAMINA_GGUF_STRING && scalar_size(et) == 0)
            return fail(r, at, LAMINA_EFORMAT, "unknown array element type %u", et);
        uint64_t at_n = r->pos;
        if ((rc = rd_u64(r, &n, "array length"))) return rc;
        kv->off = r->pos;
        kv->n = n;
        if (et == LAMINA_GGUF_STRING) {
            /* each element takes at least its 8-byte length */
            if (n > (r->size - r->pos) / 8)
                return fail(r, at_n, LAMINA_EFORMAT,
                            "string array length %llu cannot fit in the %llu bytes left",
                            (unsigned long long)n, (unsigned long long)(r->size - r->pos));
            kv->str_off = malloc((n ? n : 1) * sizeof *kv->str_off);
            if (!kv->str_off) return fail(r, at_n, LAMINA_ENOMEM, "out of memory for string array");
            for (uint64_t i = 0; i < n; i++) {
                uint64_t eat = r->pos, len;
                if (8 > r->size - r->pos)
                    return fail(r, eat, LAMINA_EFORMAT,
                                "truncated: string array element %llu of %llu needs its length",
                                (unsigned long long)i, (unsigned long long)n);
                len = ld_u64(r->p + eat);
                if (len > MAX_STRING || len > r->size - eat - 8)
                    return fail(r, eat, LAMINA_EFORMAT,
                                "string array element %llu of %llu: length %llu runs past end of file (%llu bytes)",
                                (unsigned long long)i, (unsigned long long)n,
                                (unsigned long long)len, (unsigned long long)r->size);
                kv->str_off[i] = eat;
                r->pos = eat + 8 + len;
            }
            return 0;
        }
        uint64_t es = scalar_size(et);
        if (n > (r->size - r->pos) / es)
            return fail(r, at_n, LAMINA_EFORMAT,
                        "truncated: array of %llu x %s needs more than the %llu bytes left",
                        (unsigned long long)n, lamina_gguf_type_name(et),
                        (unsigned long long)(r->size - r->pos));
        if (et == LAMINA_GGUF_BOOL) {
            for (uint64_t i = 0; i < n; i++)
                if (r->p[r->pos + i] > 1)
                    return fail(r, r->pos + i, LAMINA_EFORMAT, "bool array element %llu is %u (not 0/1)",
                                (unsigned long long)i, r->p[r->pos + i]);
        }
        r->pos += n * es;
        return 0;
    }
    uint64_t es = scalar_size(kv->type);
    if (es == 0)
        return fail(r, at - 4, LAMINA_EFORMAT, "unknown value type %u", kv->type);
    if ((rc = need(r, es, lamina_gguf_type_name(kv->type)))) return rc;
    if (kv->type == LAMINA_GGUF_BOOL && r->p[r->pos] > 1)
        return fail(r, r->pos, LAMINA_EFORMAT, "bool value is %u (not 0/1)", r->p[r->pos]);
    kv->off = r->pos;
    r->pos += es;
    return 0;
}

static void set_ctx(struct rd *r, const char *kind, uint64_t i, const char *name)
{
    char nm[72];
    printable(nm, sizeof nm, (const uint8_t *)name, strlen(name));
    snprintf(r->ctx, sizeof r->ctx, "%s %llu '%s'", kind, (unsigned long long)i, nm);
}

static int parse_kvs(struct rd *r, lamina_gguf *g)
{
    int rc;
    for (int64_t i = 0; i < g->n_kv; i++) {
        struct kv *kv = &g->kv[i];
        uint64_t at = r->pos;
        snprintf(r->ctx, sizeof r->ctx, "kv %lld", (long long)i);
        if ((rc = rd_name(r, &kv->key, "key"))) return rc;
        set_ctx(r, "kv", (uint64_t)i, kv->key);
        uint64_t slot = 0;
        if (table_lookup(&g->kv_index, g, kv_name, kv->key, &slot) >= 0)
            return fail(r, at, LAMINA_EFORMAT, "duplicate key");
        g->kv_index.slot[slot] = (uint32_t)i + 1;
        if ((rc = rd_u32(r, &kv->type, "value type"))) return rc;
        if ((rc = parse_value(r, kv))) return rc;
    }
    r->ctx[0] = 0;
    return 0;
}

/* general.alignment, validated; default when absent. */
static int read_alignment(struct rd *r, lamina_gguf *g)
{
    g->alignment = DEFAULT_ALIGNMENT;
    int64_t i = lamina_gguf_find(g, "general.alignment");
    if (i < 0) return 0;
    const struct kv *kv = &g->kv[i];
    snprintf(r->ctx, sizeof r->ctx, "kv %lld 'general.alignment'", (long long)i);
    if (!is_int_type(kv->type))
        return fail(r, kv->off, LAMINA_EFORMAT, "type %s is not an integer",
                    lamina_gguf_type_name(kv->type));
    int neg; uint64_t u; int64_t s;
    load_int(kv->type, r->p + kv->off, &neg, &u, &s);
    if (neg || u == 0 || u > MAX_ALIGNMENT || (u & (u - 1)))
        return fail(r, kv->off, LAMINA_EFORMAT,
                    "alignment %lld is not a power of two in 1..%llu",
                    neg ? (long long)s : (long long)u, (unsigned long long)MAX_ALIGNMENT);
    g->alignment = u;
    r->ctx[0] = 0;
    return 0;
}

struct extent { uint64_t start, end, info_off; int64_t idx; };

static int cmp_extent(const void *a, const void *b)
{
    const struct extent *x = a, *y = b;
    if (x->start != y->start) return x->start < y->start ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int parse_tensors(struct rd *r, lamina_gguf *g, struct extent *ext)
{
    int rc;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        lamina_gguf_tensor *t = &g->tensors[i];
        char *name = NULL;
        uint64_t at = r->pos;
        snprintf(r->ctx, sizeof r->ctx, "tensor %lld", (long long)i);
        if ((rc = rd_name(r, &name, "name"))) return rc;
        t->name = name;
        set_ctx(r, "tensor", (uint64_t)i, name);
        uint64_t slot = 0;
        if (table_lookup(&g->tensor_index, g, tensor_name, name, &slot) >= 0)
            return fail(r, at, LAMINA_EFORMAT, "duplicate tensor name");
        g->tensor_index.slot[slot] = (uint32_t)i + 1;

        uint64_t at_nd = r->pos;
        if ((rc = rd_u32(r, &t->n_dims, "n_dims"))) return rc;
        if (t->n_dims < 1 || t->n_dims > 4)
            return fail(r, at_nd, LAMINA_EFORMAT, "n_dims %u not in 1..4", t->n_dims);
        int64_t nel = 1;
        for (uint32_t d = 0; d < 4; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            uint64_t at_d = r->pos, v;
            if ((rc = rd_u64(r, &v, "dimension"))) return rc;
            if (v == 0 || v > (uint64_t)MAX_DIM)
                return fail(r, at_d, LAMINA_EFORMAT, "ne[%u] = %llu not in 1..2^62", d,
                            (unsigned long long)v);
            t->ne[d] = (int64_t)v;
            if (nel > INT64_MAX / t->ne[d])
                return fail(r, at_d, LAMINA_EFORMAT, "element count overflows at ne[%u]", d);
            nel *= t->ne[d];
        }
        uint64_t at_ty = r->pos;
        if ((rc = rd_u32(r, &t->type, "type"))) return rc;
        const lamina_type_traits *tr = lamina_type_get(t->type);
        if (!tr || tr->block_size == 0 || tr->type_size == 0)
            return fail(r, at_ty, LAMINA_ENOTSUP, "unsupported tensor type %u", t->type);
        if (t->ne[0] % tr->block_size != 0)
            return fail(r, at_ty, LAMINA_EFORMAT, "ne[0] = %lld is not a multiple of the %s block size %u",
                        (long long)t->ne[0], tr->name ? tr->name : "?", tr->block_size);
        /* bytes = blocks per row * block bytes * rows */
        uint64_t row = (uint64_t)(t->ne[0] / tr->block_size), rows = (uint64_t)(nel / t->ne[0]);
        if (row > (uint64_t)INT64_MAX / tr->type_size ||
            row * tr->type_size > (uint64_t)INT64_MAX / rows)
            return fail(r, at_ty, LAMINA_EFORMAT, "byte size overflows");
        t->size = row * tr->type_size * rows;

        uint64_t at_off = r->pos, off;
        if ((rc = rd_u64(r, &off, "data offset"))) return rc;
        if (off % g->alignment)
            return fail(r, at_off, LAMINA_EFORMAT, "data offset %llu is not a multiple of the alignment %llu",
                        (unsigned long long)off, (unsigned long long)g->alignment);
        t->offset = off;          /* relative for now */
        ext[i].info_off = at_off;
        ext[i].idx = i;
    }
    r->ctx[0] = 0;
    return 0;
}

/* Place tensor data after the infos: bounds and overlaps. */
static int place_tensors(struct rd *r, lamina_gguf *g, struct extent *ext)
{
    uint64_t end_infos = r->pos, pad = (g->alignment - end_infos % g->alignment) % g->alignment;
    if (pad > UINT64_MAX - end_infos)
        return fail(r, end_infos, LAMINA_EFORMAT, "data section offset overflows");
    g->data_offset = end_infos + pad;
    if (g->n_tensors == 0) {
        if (g->data_offset > r->size) g->data_offset = r->size;
        return 0;
    }
    if (g->data_offset > r->size)
        return fail(r, end_infos, LAMINA_EFORMAT,
                    "truncated: data section starts at %llu, past end of file (%llu bytes)",
                    (unsigned long long)g->data_offset, (unsigned long long)r->size);
    for (int64_t i = 0; i < g->n_tensors; i++) {
        lamina_gguf_tensor *t = &g->tensors[i];
        set_ctx(r, "tensor", (uint64_t)i, t->name);
        uint64_t rel = t->offset;
        if (rel > r->size - g->data_offset || t->size > r->size - g->data_offset - rel)
            return fail(r, ext[i].info_off, LAMINA_EFORMAT,
                        "data [%llu, +%llu bytes) ends past end of file (%llu bytes)",
                        (unsigned long long)(rel > UINT64_MAX - g->data_offset ? rel : g->data_offset + rel),
                        (unsigned long long)t->size, (unsigned long long)r->size);
        t->offset = g->data_offset + rel;
        t->data = r->p + t->offset;
        ext[i].start = t->offset;
        ext[i].end = t->offset + t->size;
    }
    qsort(ext, (size_t)g->n_tensors, sizeof *ext, cmp_extent);
    for (int64_t i = 1; i < g->n_tensors; i++) {
        if (ext[i].start < ext[i - 1].end) {
            const lamina_gguf_tensor *a = &g->tensors[ext[i - 1].idx];
            set_ctx(r, "tensor", (uint64_t)ext[i].idx, g->tensors[ext[i].idx].name);
            char an[72];
            printable(an, sizeof an, (const uint8_t *)a->name, strlen(a->name));
            return fail(r, ext[i].info_off, LAMINA_EFORMAT,
                        "data [%llu, %llu) overlaps tensor %lld '%s' [%llu, %llu)",
                        (unsigned long long)ext[i].start, (unsigned long long)ext[i].end,
                        (long long)ext[i - 1].idx, an,
                        (unsigned long long)a->offset, (unsigned long long)(a->offset + a->size));
        }
    }
    r->ctx[0] = 0;
    return 0;
}

static int parse(lamina_gguf *g, char *err, size_t err_size)
{
    struct rd r = { .p = g->base, .size = g->size, .pos = 0, .path = g->path,
                    .err = err, .err_size = err_size };
    struct extent *ext = NULL;
    int rc;
    uint64_t n_tensors, n_kv;

    /* header */
    if ((rc = need(&r, 4, "magic"))) return rc;
    if (memcmp(r.p, "GGUF", 4) != 0)
        return fail(&r, 0, LAMINA_EFORMAT, "bad magic %02x %02x %02x %02x (expected 'GGUF')",
                    r.p[0], r.p[1], r.p[2], r.p[3]);
    r.pos = 4;
    if ((rc = rd_u32(&r, &g->version, "version"))) return rc;
    if (g->version == 0x02000000u || g->version == 0x03000000u)
        return fail(&r, 4, LAMINA_EFORMAT, "big-endian GGUF files are not supported");
    if (g->version != 2 && g->version != 3)
        return fail(&r, 4, LAMINA_EFORMAT, "unsupported GGUF version %u (supported: 2, 3)", g->version);
    if ((rc = rd_u64(&r, &n_tensors, "tensor count"))) return rc;
    if ((rc = rd_u64(&r, &n_kv, "kv count"))) return rc;
    if (n_tensors > MAX_COUNT)
        return fail(&r, 8, LAMINA_EFORMAT, "tensor count %llu exceeds the limit %llu",
                    (unsigned long long)n_tensors, (unsigned long long)MAX_COUNT);
    if (n_kv > MAX_COUNT)
        return fail(&r, 16, LAMINA_EFORMAT, "kv count %llu exceeds the limit %llu",
                    (unsigned long long)n_kv, (unsigned long long)MAX_COUNT);
    /* a kv takes >= 8 + 1 + 4 + 1 bytes, a tensor info >= 8 + 1 + 4 + 8 + 4 + 8:
     * refuse counts the file cannot hold before allocating for them */
    if (n_kv > (r.size - r.pos) / 14)
        return fail(&r, 16, LAMINA_EFORMAT, "kv count %llu cannot fit in the %llu bytes left",
                    (unsigned long long)n_kv, (unsigned long long)(r.size - r.pos));
    if (n_tensors > (r.size - r.pos - n_kv * 14) / 33)
        return fail(&r, 8, LAMINA_EFORMAT, "tensor count %llu cannot fit in the %llu bytes left",
                    (unsigned long long)n_tensors, (unsigned long long)(r.size - r.pos));
    g->n_kv = (int64_t)n_kv;
    g->n_tensors = (int64_t)n_tensors;

    g->kv = calloc(n_kv ? n_kv : 1, sizeof *g->kv);
    g->tensors = calloc(n_tensors ? n_tensors : 1, sizeof *g->tensors);
    ext = calloc(n_tensors ? n_tensors : 1, sizeof *ext);
    if (!g->kv || !g->tensors || !ext ||
        table_init(&g->kv_index, n_kv) || table_init(&g->tensor_index, n_tensors)) {
        rc = fail(&r, 0, LAMINA_ENOMEM, "out of memory");
        goto out;
    }

    if ((rc = parse_kvs(&r, g))) goto out;
    if ((rc = read_alignment(&r, g))) goto out;
    if ((rc = parse_tensors(&r, g, ext))) goto out;
    rc = place_tensors(&r, g, ext);
out:
    free(ext);
    return rc;
}

/* ---- open / close ---- */

static int open_common(lamina_gguf *g, lamina_gguf **out, char *err, size_t err_size)
{
    int rc = parse(g, err, err_size);
    if (rc) {
        lamina_gguf_close(g);
        return rc;
    }
    *out = g;
    return 0;
}

int lamina_gguf_open(const char *path, lamina_gguf **out, char *err, size_t err_size)
{
    int fd = -1;
    lamina_gguf *g = NULL;
    struct stat st;

    if (!out || !path) {
        put_err(err, err_size, "lamina_gguf_open: NULL argument");
        return NEG(LAMINA_EINVAL);
    }
    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        put_err(err, err_size, "%s: cannot open: %s", path, strerror(errno));
        return NEG(LAMINA_ENOENT);
    }
    if (fstat(fd, &st) != 0) {
        put_err(err, err_size, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return NEG(LAMINA_ENOENT);
    }
    if (!S_ISREG(st.st_mode)) {
        put_err(err, err_size, "%s: not a regular file", path);
        close(fd);
        return NEG(LAMINA_ENOENT);
    }
    if (st.st_size == 0) {
        put_err(err, err_size, "%s: empty file, not GGUF (offset 0)", path);
        close(fd);
        return NEG(LAMINA_EFORMAT);
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        put_err(err, err_size, "%s: file too large to map", path);
        close(fd);
        return NEG(LAMINA_ERANGE);
    }
    g = calloc(1, sizeof *g);
    if (!g || !(g->path = strdup(path))) {
        free(g);
        close(fd);
        put_err(err, err_size, "%s: out of memory", path);
        return NEG(LAMINA_ENOMEM);
    }
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int map_errno = errno;
    close(fd);
    if (m == MAP_FAILED) {
        put_err(err, err_size, "%s: cannot map: %s", path, strerror(map_errno));
        lamina_gguf_close(g);
        return NEG(LAMINA_EIO);
    }
    g->base = m;
    g->size = (uint64_t)st.st_size;
    g->mapped = 1;
    return open_common(g, out, err, err_size);
}

int lamina_gguf_open_memory(const void *data, size_t size, const char *name,
                            lamina_gguf **out, char *err, size_t err_size)
{
    if (!out || (!data && size)) {
        put_err(err, err_size, "lamina_gguf_open_memory: NULL argument");
        return NEG(LAMINA_EINVAL);
    }
    *out = NULL;
    lamina_gguf *g = calloc(1, sizeof *g);
    if (!g || !(g->path = strdup(name ? name : "<memory>"))) {
        free(g);
        put_err(err, err_size, "%s: out of memory", name ? name : "<memory>");
        return NEG(LAMINA_ENOMEM);
    }
    g->base = data;
    g->size = size;
    return open_common(g, out, err, err_size);
}

void lamina_gguf_close(lamina_gguf *g)
{
    if (!g) return;
    if (g->kv)
        for (int64_t i = 0; i < g->n_kv; i++) { free(g->kv[i].key); free(g->kv[i].str_off); }
    if (g->tensors)
        for (int64_t i = 0; i < g->n_tensors; i++) free((char *)g->tensors[i].name);
    free(g->kv);
    free(g->tensors);
    free(g->kv_index.slot);
    free(g->tensor_index.slot);
    if (g->mapped && g->base) munmap((void *)g->base, (size_t)g->size);
    free(g->path);
    free(g);
}

/* ---- accessors ---- */

uint32_t    lamina_gguf_version(const lamina_gguf *g)     { return g->version; }
const char *lamina_gguf_path(const lamina_gguf *g)        { return g->path; }
uint64_t    lamina_gguf_file_size(const lamina_gguf *g)   { return g->size; }
const void *lamina_gguf_map(const lamina_gguf *g)         { return g->base; }
uint64_t    lamina_gguf_alignment(const lamina_gguf *g)   { return g->alignment; }
uint64_t    lamina_gguf_data_offset(const lamina_gguf *g) { return g->data_offset; }
int64_t     lamina_gguf_n_kv(const lamina_gguf *g)        { return g->n_kv; }
int64_t     lamina_gguf_n_tensors(const lamina_gguf *g)   { return g->n_tensors; }

int64_t lamina_gguf_find(const lamina_gguf *g, const char *key)
{
    if (!g || !key) return -1;
    return table_lookup(&g->kv_index, g, kv_name, key, NULL);
}

const char *lamina_gguf_key(const lamina_gguf *g, int64_t i)
{
    return (i >= 0 && i < g->n_kv) ? g->kv[i].key : NULL;
}

uint32_t lamina_gguf_kv_type(const lamina_gguf *g, int64_t i)
{
    return (i >= 0 && i < g->n_kv) ? g->kv[i].type : UINT32_MAX;
}

/* The kv for key, or NULL with -ENOENT in *rc (and a message). */
static const struct kv *lookup(const lamina_gguf *g, const char *key, int *rc,
                               char *err, size_t err_size)
{
    int64_t i = lamina_gguf_find(g, key);
    if (i < 0) {
        put_err(err, err_size, "%s: no key '%s'", g->path, key ? key : "(null)");
        *rc = NEG(LAMINA_ENOENT);
        return NULL;
    }
    return &g->kv[i];
}

static int bad_type(const lamina_gguf *g, const struct kv *kv, const char *want,
                    char *err, size_t err_size)
{
    put_err(err, err_size, "%s: key '%s' has type %s, expected %s", g->path, kv->key,
            lamina_gguf_type_name(kv->type), want);
    return NEG(LAMINA_EINVAL);
}

int lamina_gguf_get_u32(const lamina_gguf *g, const char *key, uint32_t *out, char *err, size_t err_size)
{
    int rc = 0;
    const struct kv *kv = lookup(g, key, &rc, err, err_size);
    if (!kv) return rc;
    if (!is_int_type(kv->type)) return bad_type(g, kv, "an integer", err, err_size);
    int neg; uint64_t u; int64_t s;
    load_int(kv->type, g->base + kv->off, &neg, &u, &s);
    if (neg || u > UINT32_MAX) {
        put_err(err, err_size, "%s: key '%s' value %s%llu does not fit in u32", g->path, kv->key,
                neg ? "-" : "", neg ? 0ull - (unsigned long long)s : (unsigned long long)u);
        return NEG(LAMINA_EINVAL);
    }
    *out = (uint32_t)u;
    return 0;
}

int lamina_gguf_get_i64(const lamina_gguf *g, const char *key, int64_t *out, char *err, size_t err_size)
{
    int rc = 0;
    const struct kv *kv = lookup(g, key, &rc, err, err_size);
    if (!kv) return rc;
    if (!is_int_type(kv->type)) return bad_type(g, kv, "an integer", err, err_size);
    int neg; uint64_t u; int64_t s;
    load_int(kv->type, g->base + kv->off, &neg, &u, &s);
    if (!neg && u > INT64_MAX) {
        put_err(err, err_size, "%s: key '%s' value %llu does not fit in i64", g->path, kv->key,
                (unsigned long long)u);
        return NEG(LAMINA_EINVAL);
    }
    *out = s;
    return 0;
}

int lamina_gguf_get_f32(const lamina_gguf *g, const char *key, float *out, char *err, size_t err_size)
{
    int rc = 0;
    const struct kv *kv = lookup(g, key, &rc, err, err_size);
    if (!kv) return rc;
    if (kv->type == LAMINA_GGUF_F32) *out = ld_f32(g->base + kv->off);
    else if (kv->type == LAMINA_GGUF_F64) *out = (float)ld_f64(g->base + kv->off);
    else return bad_type(g, kv, "f32 or f64", err, err_size);
    return 0;
}

int lamina_gguf_get_bool(const lamina_gguf *g, const char *key, int *out, char *err, size_t err_size)
{
    int rc = 0;
    const struct kv *kv = lookup(g, key, &rc, err, err_size);
    if (!kv) return rc;
    if (kv->type != LAMINA_GGUF_BOOL) return bad_type(g, kv, "bool", err, err_size);
    *out = g->base[kv->off] != 0;
    return 0;
}

int lamina_gguf_get_str(const lamina_gguf *g, const char *key, const char **s, size_t *len,
                        char *err, size_t err_size)
{
    int rc = 0;
    const struct kv *kv = lookup(g, key, &rc, err, err_size);
    if (!kv) return rc;
    if (kv->type != LAMINA_GGUF_STRING) return bad_type(g, kv, "string", err, err_size);
    *s = (const char *)g->base + kv->off;
    *len = (size_t)kv->n;
    return 0;
}

int lamina_gguf_get_arr(const lamina_gguf *g, const char *key, uint32_t *elem_type,
                        uint64_t *n, const void **data, char *err, size_t err_size)
{
    int rc = 0;
    const struct kv *kv = lookup(g, key, &rc, err, err_size);
    if (!kv) return rc;
    if (kv->type != LAMINA_GGUF_ARRAY) return bad_type(g, kv, "array", err, err_size);
    *elem_type = kv->elem_type;
    *n = kv->n;
    *data = g->base + kv->off;
    return 0;
}

int lamina_gguf_arr_str(const lamina_gguf *g, const char *key, uint64_t i,
                        const char **s, size_t *len)
{
    int64_t k = lamina_gguf_find(g, key);
    if (k < 0) return NEG(LAMINA_ENOENT);
    const struct kv *kv = &g->kv[k];
    if (kv->type != LAMINA_GGUF_ARRAY || kv->elem_type != LAMINA_GGUF_STRING)
        return NEG(LAMINA_EINVAL);
    if (i >= kv->n) return NEG(LAMINA_ERANGE);
    uint64_t at = kv->str_off[i];
    *len = (size_t)ld_u64(g->base + at);
    *s = (const char *)g->base + at + 8;
    return 0;
}

int64_t lamina_gguf_arr_i64(uint32_t elem_type, const void *data, uint64_t i)
{
    uint64_t es = scalar_size(elem_type);
    if (es == 0) return 0;
    const uint8_t *p = (const uint8_t *)data + i * es;
    if (elem_type == LAMINA_GGUF_F32 || elem_type == LAMINA_GGUF_F64) {
        double d = elem_type == LAMINA_GGUF_F32 ? (double)ld_f32(p) : ld_f64(p);
        if (isnan(d)) return 0;
        if (d >= 9223372036854775807.0) return INT64_MAX;
        if (d <= -9223372036854775808.0) return INT64_MIN;
        return (int64_t)d;
    }
    if (elem_type == LAMINA_GGUF_BOOL) return p[0] != 0;
    int neg; uint64_t u; int64_t s;
    load_int(elem_type, p, &neg, &u, &s);
    return s;
}

double lamina_gguf_arr_f64(uint32_t elem_type, const void *data, uint64_t i)
{
    uint64_t es = scalar_size(elem_type);
    if (es == 0) return 0;
    const uint8_t *p = (const uint8_t *)data + i * es;
    if (elem_type == LAMINA_GGUF_F32) return (double)ld_f32(p);
    if (elem_type == LAMINA_GGUF_F64) return ld_f64(p);
    if (elem_type == LAMINA_GGUF_BOOL) return p[0] != 0;
    int neg; uint64_t u; int64_t s;
    load_int(elem_type, p, &neg, &u, &s);
    return elem_type == LAMINA_GGUF_U64 ? (double)u : (double)s;
}

const lamina_gguf_tensor *lamina_gguf_tensor_at(const lamina_gguf *g, int64_t i)
{
    return (i >= 0 && i < g->n_tensors) ? &g->tensors[i] : NULL;
}

int64_t lamina_gguf_tensor_index(const lamina_gguf *g, const lamina_gguf_tensor *t)
{
    if (!g || !t || g->n_tensors <= 0) return -1;
    /* compared as addresses: t need not point into this table */
    const uintptr_t a = (uintptr_t)t, lo = (uintptr_t)g->tensors;
    if (a < lo || a >= lo + (uintptr_t)g->n_tensors * sizeof *g->tensors) return -1;
    if ((a - lo) % sizeof *g->tensors) return -1;
    return (int64_t)((a - lo) / sizeof *g->tensors);
}

const lamina_gguf_tensor *lamina_gguf_tensor_find(const lamina_gguf *g, const char *name)
{
    if (!g || !name) return NULL;
    int64_t i = table_lookup(&g->tensor_index, g, tensor_name, name, NULL);
    return i < 0 ? NULL : &g->tensors[i];
}
