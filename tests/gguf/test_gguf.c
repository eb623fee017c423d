/*
 * test_gguf.c - TAP tests of the GGUF reader (runtime/ops/gguf.c).
 *
 *  1. A GGUF file built here byte by byte (every value type, arrays of
 *     each, six tensors of five types): every getter, conversion and error
 *     code, v2 and v3, custom alignment.
 *  2. Corruption: thousands of deterministic mutations of that file
 *     (truncation at every field boundary and at pseudo-random lengths,
 *     byte flips over the whole header, huge counts and lengths in every
 *     count field, bad type ids, bad dims, misaligned / overlapping /
 *     out-of-range tensor offsets, duplicate keys and names, bad magic and
 *     versions).  Each parse runs on an exactly-sized heap copy so
 *     AddressSanitizer sees any over-read.  A corrupt file must fail with
 *     a message; truncation must never succeed.
 *  3. Tiny models written by tests/tools/make_tiny_model.py ($PYTHON with
 *     the gguf package; skipped otherwise), compared with its --manifest.
 *  4. The real default model, when present (skipped otherwise).
 *
 * `test_gguf --write-seeds DIR` writes the built files into DIR as a seed
 * corpus for the fuzzer (tests/fuzz/fuzz_gguf.c).
 */
#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf.h"
#include "lamina/quant.h"
#include "testenv.h"

#define NEG(c) ((c) < 0 ? (int)(c) : -(int)(c))

/* ------------------------------------------------------------------ TAP */

static int n_test, n_fail;

static void ok(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ok(int cond, const char *fmt, ...)
{
    va_list ap;
    printf("%s %d - ", cond ? "ok" : "not ok", ++n_test);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    if (!cond) n_fail++;
    fflush(stdout);
}

static void skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void skip(const char *fmt, ...)
{
    va_list ap;
    printf("ok %d # SKIP ", ++n_test);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

static void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void diag(const char *fmt, ...)
{
    va_list ap;
    printf("# ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

/* ------------------------------------------------------- file builder */

/* Field kinds recorded while building, for targeted mutations. */
enum fkind { F_COUNT, F_VTYPE, F_ETYPE, F_NDIMS, F_DIM, F_TTYPE, F_TOFF, F_BOOL };

struct field { size_t off; enum fkind kind; int tensor; };

struct buf {
    uint8_t *p;
    size_t n, cap;
    size_t bound[4096];     /* offsets after every field of the header */
    int n_bound;
    struct field fld[1024];
    int n_fld;
};

static void grow(struct buf *b, size_t add)
{
    if (b->n + add <= b->cap) return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + add) cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p) { fprintf(stderr, "out of memory\n"); exit(99); }
    b->p = p;
    b->cap = cap;
}

static void mark(struct buf *b)
{
    if (b->n_bound < (int)(sizeof b->bound / sizeof b->bound[0])) b->bound[b->n_bound++] = b->n;
}

static void field(struct buf *b, enum fkind k, int tensor)
{
    if (b->n_fld < (int)(sizeof b->fld / sizeof b->fld[0]))
        b->fld[b->n_fld++] = (struct field){ b->n, k, tensor };
}

static void put(struct buf *b, const void *d, size_t n)
{
    grow(b, n);
    memcpy(b->p + b->n, d, n);
    b->n += n;
    mark(b);
}

static void put_u8(struct buf *b, uint8_t v) { put(b, &v, 1); }
static void put_u16(struct buf *b, uint16_t v) { uint8_t x[2] = { (uint8_t)v, (uint8_t)(v >> 8) }; put(b, x, 2); }
static void put_u32(struct buf *b, uint32_t v)
{
    uint8_t x[4];
    for (int i = 0; i < 4; i++) x[i] = (uint8_t)(v >> (8 * i));
    put(b, x, 4);
}
static void put_u64(struct buf *b, uint64_t v)
{
    uint8_t x[8];
    for (int i = 0; i < 8; i++) x[i] = (uint8_t)(v >> (8 * i));
    put(b, x, 8);
}
static void put_f32(struct buf *b, float f) { uint32_t u; memcpy(&u, &f, 4); put_u32(b, u); }
static void put_f64(struct buf *b, double f) { uint64_t u; memcpy(&u, &f, 8); put_u64(b, u); }

static void put_strn(struct buf *b, const char *s, size_t n)
{
    field(b, F_COUNT, -1);
    put_u64(b, n);
    put(b, s, n);
}
static void put_str(struct buf *b, const char *s) { put_strn(b, s, strlen(s)); }

static void kv_head(struct buf *b, const char *key, uint32_t type)
{
    put_str(b, key);
    field(b, F_VTYPE, -1);
    put_u32(b, type);
}

static void arr_head(struct buf *b, const char *key, uint32_t et, uint64_t n)
{
    kv_head(b, key, LAMINA_GGUF_ARRAY);
    field(b, F_ETYPE, -1);
    put_u32(b, et);
    field(b, F_COUNT, -1);
    put_u64(b, n);
}

struct spec {
    uint32_t version;
    uint32_t alignment;       /* 0: no general.alignment key (default 32) */
    int dup_key;
    int dup_tensor;
    int overlap;              /* tensor 1 placed on tensor 0 */
    int nested_array;
    int bool_two;             /* a bool value of 2 */
    int nul_key;              /* a key with a NUL byte */
    int empty_key;
    int ne0_odd;              /* q8_0 tensor with ne[0] not a multiple of 32 */
    int huge_dims;            /* element count overflows int64 */
    uint32_t bad_ttype;       /* nonzero: type id of tensor 2 */
};

struct ttest { const char *name; uint32_t type; uint32_t n_dims; int64_t ne[4]; uint64_t size; };

/* Tensors of the built file; sizes from the block layouts. */
static const struct ttest T[] = {
    { "token_embd.weight", LAMINA_TYPE_F32,  2, { 64, 3, 1, 1 },  64 * 3 * 4 },
    { "blk.0.w_f16",       LAMINA_TYPE_F16,  2, { 32, 4, 1, 1 },  32 * 4 * 2 },
    { "blk.0.w_q8_0",      LAMINA_TYPE_Q8_0, 2, { 64, 2, 1, 1 },  2 * 2 * 34 },
    { "blk.0.w_q4_K",      LAMINA_TYPE_Q4_K, 1, { 256, 1, 1, 1 }, 144 },
    { "blk.1.v_bf16",      LAMINA_TYPE_BF16, 4, { 8, 2, 2, 3 },   8 * 2 * 2 * 3 * 2 },
    { "blk.1.n_q5_0",      LAMINA_TYPE_Q5_0, 3, { 32, 1, 2, 1 },  2 * 22 },
};
#define NT ((int)(sizeof T / sizeof T[0]))

static const char *const STRS[] = { "", "x", "hello \xe2\x96\x81world", "<0xFF>", "a longer string of some bytes" };
#define NSTRS ((int)(sizeof STRS / sizeof STRS[0]))

static uint8_t data_byte(uint64_t i) { return (uint8_t)(i * 7u + 3u); }

/* Build a GGUF file into b per spec; returns the number of kvs written.
 * The data region holds data_byte(offset - data_offset). */
static int build(struct buf *b, const struct spec *sp, uint64_t *data_off_out, uint64_t *tensor_end_out)
{
    memset(b, 0, sizeof *b);
    /* layout alignment; silly values (refused by the reader) lay out at 32 */
    uint32_t align = (sp->alignment && sp->alignment <= 4096) ? sp->alignment : 32;
    int n_kv = 0;
    put(b, "GGUF", 4);
    put_u32(b, sp->version ? sp->version : 3);
    field(b, F_COUNT, -1);
    put_u64(b, (uint64_t)NT);
    size_t nkv_at = b->n;
    field(b, F_COUNT, -1);
    put_u64(b, 0);                                /* patched below */

    kv_head(b, "general.architecture", LAMINA_GGUF_STRING); put_str(b, "test"); n_kv++;
    kv_head(b, "t.u8", LAMINA_GGUF_U8);   put_u8(b, 200); n_kv++;
    kv_head(b, "t.i8", LAMINA_GGUF_I8);   put_u8(b, (uint8_t)-100); n_kv++;
    kv_head(b, "t.u16", LAMINA_GGUF_U16); put_u16(b, 60000); n_kv++;
    kv_head(b, "t.i16", LAMINA_GGUF_I16); put_u16(b, (uint16_t)-30000); n_kv++;
    kv_head(b, "t.u32", LAMINA_GGUF_U32); put_u32(b, 4000000000u); n_kv++;
    kv_head(b, "t.i32", LAMINA_GGUF_I32); put_u32(b, (uint32_t)-2000000000); n_kv++;
    kv_head(b, "t.f32", LAMINA_GGUF_F32); put_f32(b, 1.5f); n_kv++;
    kv_head(b, "t.bool", LAMINA_GGUF_BOOL); field(b, F_BOOL, -1); put_u8(b, sp->bool_two ? 2 : 1); n_kv++;
    kv_head(b, "t.str", LAMINA_GGUF_STRING); put_str(b, STRS[2]); n_kv++;
    kv_head(b, "t.u64", LAMINA_GGUF_U64); put_u64(b, (UINT64_C(1) << 63) + 5); n_kv++;
    kv_head(b, "t.i64", LAMINA_GGUF_I64); put_u64(b, (uint64_t)-(INT64_C(1) << 40)); n_kv++;
    kv_head(b, "t.f64", LAMINA_GGUF_F64); put_f64(b, 0.1); n_kv++;
    kv_head(b, "t.empty", LAMINA_GGUF_STRING); put_str(b, ""); n_kv++;
    kv_head(b, "t.small", LAMINA_GGUF_U64); put_u64(b, 7); n_kv++;
    if (sp->alignment) { kv_head(b, "general.alignment", LAMINA_GGUF_U32); put_u32(b, sp->alignment); n_kv++; }

    arr_head(b, "a.u8", LAMINA_GGUF_U8, 3); put_u8(b, 1); put_u8(b, 2); put_u8(b, 255); n_kv++;
    arr_head(b, "a.i8", LAMINA_GGUF_I8, 2); put_u8(b, (uint8_t)-128); put_u8(b, 127); n_kv++;
    arr_head(b, "a.u16", LAMINA_GGUF_U16, 2); put_u16(b, 0); put_u16(b, 65535); n_kv++;
    arr_head(b, "a.i16", LAMINA_GGUF_I16, 2); put_u16(b, (uint16_t)-32768); put_u16(b, 5); n_kv++;
    arr_head(b, "a.u32", LAMINA_GGUF_U32, 2); put_u32(b, 4294967295u); put_u32(b, 9); n_kv++;
    arr_head(b, "a.i32", LAMINA_GGUF_I32, 4);
    put_u32(b, (uint32_t)-1); put_u32(b, 0); put_u32(b, 1); put_u32(b, 2147483647u); n_kv++;
    arr_head(b, "a.f32", LAMINA_GGUF_F32, 3); put_f32(b, -2.5f); put_f32(b, 0.0f); put_f32(b, 1e-6f); n_kv++;
    arr_head(b, "a.bool", LAMINA_GGUF_BOOL, 3);
    field(b, F_BOOL, -1); put_u8(b, 1); put_u8(b, 0); put_u8(b, 1); n_kv++;
    arr_head(b, "a.str", LAMINA_GGUF_STRING, NSTRS);
    for (int i = 0; i < NSTRS; i++) put_str(b, STRS[i]);
    n_kv++;
    arr_head(b, "a.u64", LAMINA_GGUF_U64, 2); put_u64(b, UINT64_MAX); put_u64(b, 3); n_kv++;
    arr_head(b, "a.i64", LAMINA_GGUF_I64, 2); put_u64(b, (uint64_t)INT64_MIN); put_u64(b, 4); n_kv++;
    arr_head(b, "a.f64", LAMINA_GGUF_F64, 2); put_f64(b, 1e300); put_f64(b, -0.25); n_kv++;
    arr_head(b, "a.empty", LAMINA_GGUF_U32, 0); n_kv++;
    if (sp->nested_array) {
        arr_head(b, "a.nested", LAMINA_GGUF_ARRAY, 1);
        put_u32(b, LAMINA_GGUF_U8); put_u64(b, 1); put_u8(b, 1); n_kv++;
    }
    if (sp->dup_key) { kv_head(b, "t.u8", LAMINA_GGUF_U8); put_u8(b, 1); n_kv++; }
    if (sp->nul_key) { put_strn(b, "bad\0key", 7); put_u32(b, LAMINA_GGUF_U8); put_u8(b, 1); n_kv++; }
    if (sp->empty_key) { put_strn(b, "", 0); put_u32(b, LAMINA_GGUF_U8); put_u8(b, 1); n_kv++; }
    for (int i = 0; i < 8; i++) b->p[nkv_at + i] = (uint8_t)((uint64_t)n_kv >> (8 * i));

    /* tensor infos */
    uint64_t off = 0, offs[NT];
    for (int t = 0; t < NT; t++) {
        offs[t] = off;
        off += (T[t].size + align - 1) / align * align;
    }
    if (sp->overlap) offs[1] = offs[0];
    for (int t = 0; t < NT; t++) {
        put_str(b, (sp->dup_tensor && t == 3) ? T[1].name : T[t].name);
        field(b, F_NDIMS, t);
        put_u32(b, T[t].n_dims);
        for (uint32_t d = 0; d < T[t].n_dims; d++) {
            int64_t v = T[t].ne[d];
            if (sp->ne0_odd && t == 2 && d == 0) v = 48;
            if (sp->huge_dims && t == 4) v = INT64_C(1) << 31;
            field(b, F_DIM, t);
            put_u64(b, (uint64_t)v);
        }
        field(b, F_TTYPE, t);
        put_u32(b, (sp->bad_ttype && t == 2) ? sp->bad_ttype : T[t].type);
        field(b, F_TOFF, t);
        put_u64(b, offs[t]);
    }
    /* padding, then data */
    uint64_t data_off = (b->n + align - 1) / align * align;
    grow(b, data_off - b->n + off);
    memset(b->p + b->n, 0, data_off - b->n);
    for (uint64_t i = 0; i < off; i++) b->p[data_off + i] = data_byte(i);
    b->n = data_off + off;
    if (data_off_out) *data_off_out = data_off;
    if (tensor_end_out) *tensor_end_out = data_off + offs[NT - 1] + T[NT - 1].size;
    return n_kv;
}

/* Parse `n` bytes of `p` from an exactly-sized heap copy.  Returns rc;
 * on success touches every value and tensor byte, then closes. */
static int parse_copy(const uint8_t *p, size_t n, char *err, size_t err_size)
{
    uint8_t *c = malloc(n ? n : 1);
    if (!c) { fprintf(stderr, "out of memory\n"); exit(99); }
    memcpy(c, p, n);
    lamina_gguf *g = (lamina_gguf *)0x1;
    err[0] = 0;
    int rc = lamina_gguf_open_memory(c, n, "mut.gguf", &g, err, err_size);
    if (rc == 0) {
        /* read everything through the API: any over-read shows under ASan */
        volatile unsigned sum = 0;
        for (int64_t i = 0; i < lamina_gguf_n_kv(g); i++) {
            const char *k = lamina_gguf_key(g, i);
            uint32_t et; uint64_t an; const void *d;
            const char *s; size_t len;
            if (lamina_gguf_get_str(g, k, &s, &len, NULL, 0) == 0)
                for (size_t j = 0; j < len; j++) sum += (uint8_t)s[j];
            if (lamina_gguf_get_arr(g, k, &et, &an, &d, NULL, 0) == 0) {
                for (uint64_t j = 0; j < an; j++) {
                    if (et == LAMINA_GGUF_STRING) {
                        if (lamina_gguf_arr_str(g, k, j, &s, &len) == 0)
                            for (size_t q = 0; q < len; q++) sum += (uint8_t)s[q];
                    } else {
                        sum += (unsigned)lamina_gguf_arr_i64(et, d, j);
                    }
                }
            }
            uint32_t u; int64_t v; float f; int bo;
            lamina_gguf_get_u32(g, k, &u, NULL, 0);
            lamina_gguf_get_i64(g, k, &v, NULL, 0);
            lamina_gguf_get_f32(g, k, &f, NULL, 0);
            lamina_gguf_get_bool(g, k, &bo, NULL, 0);
        }
        for (int64_t i = 0; i < lamina_gguf_n_tensors(g); i++) {
            const lamina_gguf_tensor *t = lamina_gguf_tensor_at(g, i);
            const uint8_t *d = t->data;
            for (uint64_t j = 0; j < t->size; j++) sum += d[j];
            if (lamina_gguf_tensor_find(g, t->name) != t) sum = 0, rc = -1000;
        }
        (void)sum;
        lamina_gguf_close(g);
    } else if (g != NULL) {
        rc = -1001;         /* *out must be NULL after a failure */
    }
    free(c);
    return rc;
}

/* ------------------------------------------------ 1. API on built file */

static void test_api(uint32_t version, uint32_t alignment)
{
    struct buf b;
    struct spec sp = { .version = version, .alignment = alignment };
    uint64_t data_off;
    int n_kv = build(&b, &sp, &data_off, NULL);
    char err[512] = "";
    lamina_gguf *g = NULL;
    int rc = lamina_gguf_open_memory(b.p, b.n, "built.gguf", &g, err, sizeof err);
    ok(rc == 0 && g, "v%u align %u: built file opens (%s)", version, alignment, rc ? err : "ok");
    if (!g) { free(b.p); return; }

    ok(lamina_gguf_version(g) == version, "version %u", lamina_gguf_version(g));
    ok(lamina_gguf_alignment(g) == (alignment ? alignment : 32), "alignment %llu",
       (unsigned long long)lamina_gguf_alignment(g));
    ok(lamina_gguf_data_offset(g) == data_off, "data offset %llu", (unsigned long long)data_off);
    ok(lamina_gguf_file_size(g) == b.n && lamina_gguf_map(g) == b.p, "size and map");
    ok(strcmp(lamina_gguf_path(g), "built.gguf") == 0, "path");
    ok(lamina_gguf_n_kv(g) == n_kv, "n_kv %d", n_kv);
    ok(lamina_gguf_find(g, "general.architecture") == 0 && lamina_gguf_find(g, "t.u8") == 1 &&
       lamina_gguf_find(g, "a.empty") == n_kv - 1 && lamina_gguf_find(g, "nope") == -1 &&
       lamina_gguf_find(g, "") == -1, "find gives file order, -1 when absent");
    ok(strcmp(lamina_gguf_key(g, 1), "t.u8") == 0 && lamina_gguf_key(g, -1) == NULL &&
       lamina_gguf_key(g, n_kv) == NULL, "key(i)");
    ok(lamina_gguf_kv_type(g, 1) == LAMINA_GGUF_U8 && lamina_gguf_kv_type(g, 9) == LAMINA_GGUF_STRING &&
       lamina_gguf_kv_type(g, n_kv) == UINT32_MAX, "kv_type(i)");

    uint32_t u = 0; int64_t v = 0; float f = 0; int bo = 0;
    const char *s = NULL; size_t len = 0;
    ok(lamina_gguf_get_u32(g, "t.u8", &u, err, sizeof err) == 0 && u == 200, "u32 from u8");
    ok(lamina_gguf_get_u32(g, "t.u16", &u, err, sizeof err) == 0 && u == 60000, "u32 from u16");
    ok(lamina_gguf_get_u32(g, "t.u32", &u, err, sizeof err) == 0 && u == 4000000000u, "u32 from u32");
    ok(lamina_gguf_get_u32(g, "t.small", &u, err, sizeof err) == 0 && u == 7, "u32 from small u64");
    err[0] = 0;
    ok(lamina_gguf_get_u32(g, "t.i8", &u, err, sizeof err) == NEG(LAMINA_EINVAL) && strstr(err, "t.i8"),
       "u32 from negative i8 refused: %s", err);
    ok(lamina_gguf_get_u32(g, "t.u64", &u, err, sizeof err) == NEG(LAMINA_EINVAL), "u32 from big u64 refused");
    ok(lamina_gguf_get_u32(g, "t.str", &u, err, sizeof err) == NEG(LAMINA_EINVAL) && strstr(err, "string"),
       "u32 from string refused: %s", err);
    ok(lamina_gguf_get_u32(g, "t.bool", &u, err, sizeof err) == NEG(LAMINA_EINVAL), "u32 from bool refused");
    err[0] = 0;
    ok(lamina_gguf_get_u32(g, "nope", &u, err, sizeof err) == NEG(LAMINA_ENOENT) && err[0], "absent: ENOENT: %s", err);
    ok(lamina_gguf_get_u32(g, "nope", &u, NULL, 0) == NEG(LAMINA_ENOENT), "NULL err buffer is fine");
    ok(lamina_gguf_get_i64(g, "t.i8", &v, err, sizeof err) == 0 && v == -100, "i64 from i8");
    ok(lamina_gguf_get_i64(g, "t.i16", &v, err, sizeof err) == 0 && v == -30000, "i64 from i16");
    ok(lamina_gguf_get_i64(g, "t.i32", &v, err, sizeof err) == 0 && v == -2000000000, "i64 from i32");
    ok(lamina_gguf_get_i64(g, "t.u32", &v, err, sizeof err) == 0 && v == 4000000000, "i64 from u32");
    ok(lamina_gguf_get_i64(g, "t.i64", &v, err, sizeof err) == 0 && v == -(INT64_C(1) << 40), "i64 from i64");
    ok(lamina_gguf_get_i64(g, "t.u64", &v, err, sizeof err) == NEG(LAMINA_EINVAL), "i64 from u64 > INT64_MAX refused");
    ok(lamina_gguf_get_i64(g, "t.f32", &v, err, sizeof err) == NEG(LAMINA_EINVAL), "i64 from f32 refused");
    ok(lamina_gguf_get_f32(g, "t.f32", &f, err, sizeof err) == 0 && f == 1.5f, "f32");
    ok(lamina_gguf_get_f32(g, "t.f64", &f, err, sizeof err) == 0 && f == (float)0.1, "f32 from f64");
    ok(lamina_gguf_get_f32(g, "t.u8", &f, err, sizeof err) == NEG(LAMINA_EINVAL), "f32 from u8 refused");
    ok(lamina_gguf_get_bool(g, "t.bool", &bo, err, sizeof err) == 0 && bo == 1, "bool");
    ok(lamina_gguf_get_bool(g, "t.u8", &bo, err, sizeof err) == NEG(LAMINA_EINVAL), "bool from u8 refused");
    ok(lamina_gguf_get_str(g, "t.str", &s, &len, err, sizeof err) == 0 && len == strlen(STRS[2]) &&
       memcmp(s, STRS[2], len) == 0, "string");
    ok(lamina_gguf_get_str(g, "t.empty", &s, &len, err, sizeof err) == 0 && len == 0, "empty string");
    ok(lamina_gguf_get_str(g, "a.str", &s, &len, err, sizeof err) == NEG(LAMINA_EINVAL), "string from array refused");

    uint32_t et = 0; uint64_t n = 0; const void *d = NULL;
    ok(lamina_gguf_get_arr(g, "a.u8", &et, &n, &d, err, sizeof err) == 0 && et == LAMINA_GGUF_U8 && n == 3 &&
       lamina_gguf_arr_i64(et, d, 2) == 255 && lamina_gguf_arr_f64(et, d, 1) == 2.0, "u8 array");
    ok(lamina_gguf_get_arr(g, "a.i8", &et, &n, &d, err, sizeof err) == 0 && n == 2 &&
       lamina_gguf_arr_i64(et, d, 0) == -128 && lamina_gguf_arr_i64(et, d, 1) == 127, "i8 array");
    ok(lamina_gguf_get_arr(g, "a.u16", &et, &n, &d, err, sizeof err) == 0 &&
       lamina_gguf_arr_i64(et, d, 1) == 65535, "u16 array");
    ok(lamina_gguf_get_arr(g, "a.i16", &et, &n, &d, err, sizeof err) == 0 &&
       lamina_gguf_arr_i64(et, d, 0) == -32768 && lamina_gguf_arr_f64(et, d, 1) == 5.0, "i16 array");
    ok(lamina_gguf_get_arr(g, "a.u32", &et, &n, &d, err, sizeof err) == 0 &&
       lamina_gguf_arr_i64(et, d, 0) == 4294967295 && lamina_gguf_arr_i64(et, d, 1) == 9, "u32 array");
    ok(lamina_gguf_get_arr(g, "a.i32", &et, &n, &d, err, sizeof err) == 0 && et == LAMINA_GGUF_I32 && n == 4 &&
       lamina_gguf_arr_i64(et, d, 0) == -1 && lamina_gguf_arr_i64(et, d, 3) == 2147483647, "i32 array");
    ok(lamina_gguf_get_arr(g, "a.f32", &et, &n, &d, err, sizeof err) == 0 && et == LAMINA_GGUF_F32 &&
       lamina_gguf_arr_f64(et, d, 0) == -2.5 && lamina_gguf_arr_f64(et, d, 2) == (double)1e-6f &&
       lamina_gguf_arr_i64(et, d, 0) == -2, "f32 array (i64 truncates)");
    ok(lamina_gguf_get_arr(g, "a.bool", &et, &n, &d, err, sizeof err) == 0 && et == LAMINA_GGUF_BOOL &&
       lamina_gguf_arr_i64(et, d, 0) == 1 && lamina_gguf_arr_i64(et, d, 1) == 0, "bool array");
    ok(lamina_gguf_get_arr(g, "a.u64", &et, &n, &d, err, sizeof err) == 0 &&
       lamina_gguf_arr_i64(et, d, 0) == INT64_MAX && lamina_gguf_arr_f64(et, d, 0) == 18446744073709551615.0 &&
       lamina_gguf_arr_i64(et, d, 1) == 3, "u64 array (i64 saturates)");
    ok(lamina_gguf_get_arr(g, "a.i64", &et, &n, &d, err, sizeof err) == 0 &&
       lamina_gguf_arr_i64(et, d, 0) == INT64_MIN && lamina_gguf_arr_i64(et, d, 1) == 4, "i64 array");
    ok(lamina_gguf_get_arr(g, "a.f64", &et, &n, &d, err, sizeof err) == 0 &&
       lamina_gguf_arr_f64(et, d, 0) == 1e300 && lamina_gguf_arr_i64(et, d, 0) == INT64_MAX &&
       lamina_gguf_arr_f64(et, d, 1) == -0.25, "f64 array (i64 saturates)");
    ok(lamina_gguf_get_arr(g, "a.empty", &et, &n, &d, err, sizeof err) == 0 && n == 0 && et == LAMINA_GGUF_U32,
       "empty array");
    ok(lamina_gguf_get_arr(g, "t.u8", &et, &n, &d, err, sizeof err) == NEG(LAMINA_EINVAL), "array from u8 refused");
    ok(lamina_gguf_arr_i64(LAMINA_GGUF_STRING, d, 0) == 0 && lamina_gguf_arr_f64(99, d, 0) == 0.0,
       "non-numeric element type gives 0");
    int sok = lamina_gguf_get_arr(g, "a.str", &et, &n, &d, err, sizeof err) == 0 && et == LAMINA_GGUF_STRING &&
              n == NSTRS;
    for (int i = 0; i < NSTRS; i++)
        sok = sok && lamina_gguf_arr_str(g, "a.str", (uint64_t)i, &s, &len) == 0 && len == strlen(STRS[i]) &&
              memcmp(s, STRS[i], len) == 0;
    ok(sok, "string array elements");
    ok(lamina_gguf_arr_str(g, "a.str", NSTRS, &s, &len) == NEG(LAMINA_ERANGE) &&
       lamina_gguf_arr_str(g, "a.u8", 0, &s, &len) == NEG(LAMINA_EINVAL) &&
       lamina_gguf_arr_str(g, "t.str", 0, &s, &len) == NEG(LAMINA_EINVAL) &&
       lamina_gguf_arr_str(g, "nope", 0, &s, &len) == NEG(LAMINA_ENOENT), "arr_str error codes");

    ok(lamina_gguf_n_tensors(g) == NT, "n_tensors %d", NT);
    int tok = 1;
    uint64_t expect_off = data_off;
    uint32_t al = alignment ? alignment : 32;
    for (int i = 0; i < NT; i++) {
        const lamina_gguf_tensor *t = lamina_gguf_tensor_at(g, i);
        int good = t && strcmp(t->name, T[i].name) == 0 && t->type == T[i].type &&
                   t->n_dims == T[i].n_dims && t->size == T[i].size && t->offset == expect_off &&
                   t->data == b.p + t->offset && t->offset % al == 0 &&
                   lamina_gguf_tensor_find(g, T[i].name) == t;
        for (int k = 0; k < 4 && good; k++) good = t->ne[k] == T[i].ne[k];
        for (uint64_t j = 0; j < T[i].size && good; j++)
            good = ((const uint8_t *)t->data)[j] == data_byte(t->offset - data_off + j);
        if (!good) diag("tensor %d '%s' differs", i, T[i].name);
        tok = tok && good;
        expect_off += (T[i].size + al - 1) / al * al;
    }
    ok(tok, "tensor names, types, dims, sizes, offsets, data");
    ok(lamina_gguf_tensor_at(g, -1) == NULL && lamina_gguf_tensor_at(g, NT) == NULL &&
       lamina_gguf_tensor_find(g, "nope") == NULL && lamina_gguf_tensor_find(g, "") == NULL,
       "absent tensors give NULL");
    ok(strcmp(lamina_gguf_type_name(LAMINA_GGUF_F64), "f64") == 0 && strcmp(lamina_gguf_type_name(13), "?") == 0,
       "type names");
    lamina_gguf_close(g);
    lamina_gguf_close(NULL);
    free(b.p);
}

/* ---------------------------------------------- 2. corruption suite */

struct tally { int cases, ok_fail, bad; char first[600]; };

/* Expect failure with a message naming an offset (or at least non-empty). */
static void expect_fail(struct tally *t, const uint8_t *p, size_t n, const char *what, int need_offset)
{
    char err[512];
    int rc = parse_copy(p, n, err, sizeof err);
    t->cases++;
    int good = rc < 0 && rc > -1000 && err[0] && (!need_offset || strstr(err, "(offset "));
    if (good) t->ok_fail++;
    else {
        if (!t->bad)
            snprintf(t->first, sizeof t->first, "%s: rc %d, message '%s'", what, rc, err);
        t->bad++;
    }
}

/* Either outcome is fine, but failure needs a message and success must
 * leave everything readable (parse_copy reads it all). */
static void expect_no_crash(struct tally *t, const uint8_t *p, size_t n, const char *what)
{
    char err[512];
    int rc = parse_copy(p, n, err, sizeof err);
    t->cases++;
    int good = rc == 0 || (rc < 0 && rc > -1000 && err[0]);
    if (!good) {
        if (!t->bad) snprintf(t->first, sizeof t->first, "%s: rc %d, message '%s'", what, rc, err);
        t->bad++;
    }
}

static void report(const struct tally *t, const char *what)
{
    ok(t->bad == 0 && t->cases > 0, "%s: %d cases", what, t->cases);
    if (t->bad) diag("%d bad, first: %s", t->bad, t->first);
}

static uint64_t lcg(uint64_t *s)
{
    *s = *s * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
    return *s >> 33;
}

static void put64_at(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put32_at(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }

static void test_corruption(void)
{
    struct buf b;
    struct spec sp = { .version = 3 };
    uint64_t data_off, tensor_end;
    build(&b, &sp, &data_off, &tensor_end);
    char what[128];
    uint64_t seed = 12345;

    /* truncation at every field boundary, one byte either side, and at
     * random lengths below the end of the last tensor's bytes */
    struct tally tr = { 0 };
    for (int i = 0; i < b.n_bound; i++) {
        for (int delta = -1; delta <= 1; delta++) {
            int64_t n = (int64_t)b.bound[i] + delta;
            if (n < 0 || (uint64_t)n >= tensor_end) continue;
            snprintf(what, sizeof what, "truncate at %lld", (long long)n);
            expect_fail(&tr, b.p, (size_t)n, what, 1);
        }
    }
    for (int i = 0; i < 1500; i++) {
        uint64_t n = lcg(&seed) % tensor_end;
        snprintf(what, sizeof what, "truncate at %llu", (unsigned long long)n);
        expect_fail(&tr, b.p, (size_t)n, what, 1);
    }
    for (uint64_t n = data_off; n < tensor_end; n += 61) {
        snprintf(what, sizeof what, "truncate in data at %llu", (unsigned long long)n);
        expect_fail(&tr, b.p, (size_t)n, what, 1);
    }
    report(&tr, "truncation always fails with a message and offset");
    {   /* trailing padding after the last tensor is not required */
        char err[512];
        ok(parse_copy(b.p, (size_t)tensor_end, err, sizeof err) == 0, "file ending right after the last tensor opens");
    }

    /* byte flips over the whole header and tensor-info region */
    struct tally fl = { 0 };
    static const uint8_t masks[] = { 0x01, 0x80, 0xff, 0x10 };
    uint8_t *m = malloc(b.n);
    memcpy(m, b.p, b.n);
    for (uint64_t i = 0; i < data_off; i++) {
        for (size_t k = 0; k < sizeof masks; k++) {
            m[i] ^= masks[k];
            snprintf(what, sizeof what, "flip byte %llu ^ 0x%02x", (unsigned long long)i, masks[k]);
            expect_no_crash(&fl, m, b.n, what);
            m[i] ^= masks[k];
        }
    }
    /* random multi-byte scribbles */
    for (int i = 0; i < 2000; i++) {
        uint64_t pos[4];
        uint8_t old[4];
        for (int k = 0; k < 4; k++) {
            pos[k] = lcg(&seed) % data_off;
            old[k] = m[pos[k]];
            m[pos[k]] = (uint8_t)lcg(&seed);
        }
        snprintf(what, sizeof what, "scribble %d", i);
        expect_no_crash(&fl, m, b.n, what);
        for (int k = 3; k >= 0; k--) m[pos[k]] = old[k];
    }
    report(&fl, "byte flips and scribbles: no crash, failures carry a message");

    /* huge and off-by-one values in every count / length field */
    struct tally cnt = { 0 };
    static const uint64_t big[] = { UINT64_MAX, UINT64_MAX - 7, INT64_MAX, (UINT64_C(1) << 32) + 1,
                                    UINT64_C(1) << 20 | 1, 0x4000000000000000u };
    for (int f = 0; f < b.n_fld; f++) {
        if (b.fld[f].kind != F_COUNT) continue;
        uint8_t save[8];
        memcpy(save, m + b.fld[f].off, 8);
        for (size_t k = 0; k < sizeof big / sizeof big[0]; k++) {
            put64_at(m + b.fld[f].off, big[k]);
            snprintf(what, sizeof what, "count at %zu = %llu", b.fld[f].off, (unsigned long long)big[k]);
            expect_fail(&cnt, m, b.n, what, 1);
        }
        memcpy(m + b.fld[f].off, save, 8);
    }
    report(&cnt, "huge counts and lengths fail");

    /* bad type ids, dims, tensor types, offsets */
    struct tally ty = { 0 };
    for (int f = 0; f < b.n_fld; f++) {
        struct field *fd = &b.fld[f];
        uint8_t save[8];
        memcpy(save, m + fd->off, 8);
        static const uint32_t bad_vt[] = { 13, 99, 0xffffffffu, 0x80000008u };
        static const uint32_t bad_tt[] = { 4, 5, 27, 38, 40, 1000, 0xffffffffu };
        static const uint32_t bad_nd[] = { 0, 5, 0xffffffffu };
        switch (fd->kind) {
        case F_VTYPE: case F_ETYPE:
            for (size_t k = 0; k < sizeof bad_vt / sizeof bad_vt[0]; k++) {
                put32_at(m + fd->off, bad_vt[k]);
                snprintf(what, sizeof what, "value type at %zu = %u", fd->off, bad_vt[k]);
                expect_fail(&ty, m, b.n, what, 1);
            }
            if (fd->kind == F_ETYPE) {
                put32_at(m + fd->off, LAMINA_GGUF_ARRAY);
                snprintf(what, sizeof what, "nested array type at %zu", fd->off);
                expect_fail(&ty, m, b.n, what, 1);
            }
            break;
        case F_TTYPE:
            for (size_t k = 0; k < sizeof bad_tt / sizeof bad_tt[0]; k++) {
                put32_at(m + fd->off, bad_tt[k]);
                snprintf(what, sizeof what, "tensor type at %zu = %u", fd->off, bad_tt[k]);
                expect_fail(&ty, m, b.n, what, 1);
            }
            break;
        case F_NDIMS:
            for (size_t k = 0; k < sizeof bad_nd / sizeof bad_nd[0]; k++) {
                put32_at(m + fd->off, bad_nd[k]);
                snprintf(what, sizeof what, "n_dims at %zu = %u", fd->off, bad_nd[k]);
                expect_fail(&ty, m, b.n, what, 1);
            }
            break;
        case F_DIM:
            for (int k = 0; k < 4; k++) {
                uint64_t v = k == 0 ? 0 : k == 1 ? UINT64_MAX : k == 2 ? (UINT64_C(1) << 62) + 1 : UINT64_C(1) << 40;
                put64_at(m + fd->off, v);
                snprintf(what, sizeof what, "ne at %zu = %llu", fd->off, (unsigned long long)v);
                expect_fail(&ty, m, b.n, what, 1);
            }
            break;
        case F_TOFF: {
            uint64_t cur = 0;
            for (int i = 7; i >= 0; i--) cur = cur << 8 | save[i];
            uint64_t vals[] = { cur + 1, cur + 16, b.n, b.n - data_off, UINT64_MAX, UINT64_MAX - 31,
                                (b.n - data_off) / 32 * 32 };
            for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++) {
                put64_at(m + fd->off, vals[k]);
                snprintf(what, sizeof what, "tensor %d offset = %llu", fd->tensor, (unsigned long long)vals[k]);
                expect_fail(&ty, m, b.n, what, 1);
            }
            if (fd->tensor > 0) {     /* onto the previous tensor */
                put64_at(m + fd->off, 0);
                snprintf(what, sizeof what, "tensor %d offset 0 overlaps tensor 0", fd->tensor);
                expect_fail(&ty, m, b.n, what, 1);
            }
            break;
        }
        case F_BOOL:
            m[fd->off] = 2;
            snprintf(what, sizeof what, "bool at %zu = 2", fd->off);
            expect_fail(&ty, m, b.n, what, 1);
            break;
        default:
            break;
        }
        memcpy(m + fd->off, save, 8);
    }
    report(&ty, "bad type ids, dims, tensor types and offsets fail");
    ok(memcmp(m, b.p, b.n) == 0, "mutation buffer restored");

    /* header */
    struct tally hd = { 0 };
    m[0] = 'g';
    expect_fail(&hd, m, b.n, "bad magic", 1);
    m[0] = 'G';
    static const uint32_t bad_versions[] = { 0, 1, 4, 0x03000000u, 0x02000000u, 0xffffffffu };
    for (size_t k = 0; k < sizeof bad_versions / sizeof bad_versions[0]; k++) {
        put32_at(m + 4, bad_versions[k]);
        snprintf(what, sizeof what, "version %u", bad_versions[k]);
        expect_fail(&hd, m, b.n, what, 1);
    }
    put32_at(m + 4, 3);
    expect_fail(&hd, m, 0, "empty buffer", 1);
    report(&hd, "bad magic, versions, empty input fail");
    {
        char err[512];
        put32_at(m + 4, 1);
        parse_copy(m, b.n, err, sizeof err);
        ok(strstr(err, "version 1") != NULL, "v1 message names the version: %s", err);
        put32_at(m + 4, 0x03000000u);
        parse_copy(m, b.n, err, sizeof err);
        ok(strstr(err, "big-endian") != NULL, "byte-swapped version says big-endian: %s", err);
        put32_at(m + 4, 3);
        put32_at(m + 8, 0xffffffffu);
        put32_at(m + 12, 0xffffffffu);
        parse_copy(m, b.n, err, sizeof err);
        ok(strstr(err, "tensor count") && strstr(err, "(offset 8)"), "huge tensor count message: %s", err);
    }
    free(m);

    /* structural problems built in */
    struct {
        struct spec sp;
        const char *what;
        const char *needle;
        int code;
    } cases[] = {
        { { .dup_key = 1 }, "duplicate key", "duplicate key", LAMINA_EFORMAT },
        { { .dup_tensor = 1 }, "duplicate tensor name", "duplicate tensor", LAMINA_EFORMAT },
        { { .overlap = 1 }, "overlapping tensors", "overlaps", LAMINA_EFORMAT },
        { { .nested_array = 1 }, "nested array", "nested", LAMINA_EFORMAT },
        { { .bool_two = 1 }, "bool value 2", "bool", LAMINA_EFORMAT },
        { { .nul_key = 1 }, "key with NUL", "NUL", LAMINA_EFORMAT },
        { { .empty_key = 1 }, "empty key", "empty", LAMINA_EFORMAT },
        { { .ne0_odd = 1 }, "ne[0] not a block multiple", "multiple of", LAMINA_EFORMAT },
        { { .huge_dims = 1 }, "element count overflow", "overflow", LAMINA_EFORMAT },
        { { .bad_ttype = 4 }, "removed tensor type 4", "unsupported tensor type 4", LAMINA_ENOTSUP },
        { { .bad_ttype = 77 }, "unknown tensor type 77", "unsupported tensor type 77", LAMINA_ENOTSUP },
        { { .alignment = 3 }, "alignment 3", "power of two", LAMINA_EFORMAT },
        { { .alignment = 48 }, "alignment 48", "power of two", LAMINA_EFORMAT },
        { { .alignment = 0x80000000u }, "alignment 2^31", "power of two", LAMINA_EFORMAT },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct buf c;
        build(&c, &cases[i].sp, NULL, NULL);
        char err[512];
        int rc = parse_copy(c.p, c.n, err, sizeof err);
        ok(rc == NEG(cases[i].code) && strstr(err, cases[i].needle) && strstr(err, "(offset "),
           "%s refused: %s", cases[i].what, err);
        free(c.p);
    }
    {   /* an alignment key whose value is 0 */
        struct buf c;
        struct spec s0 = { .alignment = 64 };
        build(&c, &s0, NULL, NULL);
        int64_t pos = -1;
        for (size_t i = 0; i + 17 < c.n; i++)
            if (memcmp(c.p + i, "general.alignment", 17) == 0) { pos = (int64_t)i; break; }
        put32_at(c.p + pos + 17 + 4, 0);
        char err[512];
        ok(parse_copy(c.p, c.n, err, sizeof err) == NEG(LAMINA_EFORMAT) && strstr(err, "alignment"),
           "alignment 0 refused: %s", err);
        free(c.p);
    }
    free(b.p);
}

/* ------------------------------------------------- files on disk */

static char tmpdir[256];

static int write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(p, 1, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

static void test_files(void)
{
    char path[512], err[512];
    lamina_gguf *g = (lamina_gguf *)0x1;
    snprintf(path, sizeof path, "%s/does-not-exist.gguf", tmpdir);
    ok(lamina_gguf_open(path, &g, err, sizeof err) == NEG(LAMINA_ENOENT) && g == NULL && strstr(err, path),
       "missing file: ENOENT: %s", err);
    ok(lamina_gguf_open(tmpdir, &g, err, sizeof err) < 0 && g == NULL, "directory refused: %s", err);
    snprintf(path, sizeof path, "%s/empty.gguf", tmpdir);
    write_file(path, "", 0);
    ok(lamina_gguf_open(path, &g, err, sizeof err) == NEG(LAMINA_EFORMAT) && g == NULL, "empty file: %s", err);

    struct buf b;
    struct spec sp = { .version = 3, .alignment = 64 };
    uint64_t data_off;
    build(&b, &sp, &data_off, NULL);
    snprintf(path, sizeof path, "%s/built.gguf", tmpdir);
    write_file(path, b.p, b.n);
    int rc = lamina_gguf_open(path, &g, err, sizeof err);
    ok(rc == 0 && g, "built file opens from disk (%s)", rc ? err : "ok");
    if (rc == 0) {
        const lamina_gguf_tensor *t = lamina_gguf_tensor_find(g, "blk.0.w_q8_0");
        ok(t && memcmp(t->data, b.p + t->offset, t->size) == 0 && lamina_gguf_alignment(g) == 64 &&
           lamina_gguf_data_offset(g) == data_off && strcmp(lamina_gguf_path(g), path) == 0,
           "mapped data matches");
        lamina_gguf_close(g);
    }
    write_file(path, b.p, b.n - 100);
    rc = lamina_gguf_open(path, &g, err, sizeof err);
    ok(rc == NEG(LAMINA_EFORMAT) && g == NULL && strstr(err, "past end of file") && strstr(err, path),
       "truncated file on disk: %s", err);
    unlink(path);
    snprintf(path, sizeof path, "%s/empty.gguf", tmpdir);
    unlink(path);
    free(b.p);
}

/* ------------------------------------------- 3. generated tiny models */

static uint32_t crc32_bytes(const uint8_t *p, uint64_t n)
{
    static uint32_t table[256];
    if (!table[1])
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
    uint32_t c = 0xFFFFFFFFu;
    for (uint64_t i = 0; i < n; i++) c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

/* One value (scalar, or element j of an array when arr) against JSON. */
static int value_matches(const lamina_gguf *g, const char *key, uint32_t type, json_t *jv,
                         const void *arr_data, uint64_t j, int arr)
{
    const char *s; size_t len;
    char err[256];
    switch (type) {
    case LAMINA_GGUF_STRING:
        if (arr) { if (lamina_gguf_arr_str(g, key, j, &s, &len)) return 0; }
        else if (lamina_gguf_get_str(g, key, &s, &len, err, sizeof err)) return 0;
        return json_is_string(jv) && json_string_length(jv) == len && memcmp(json_string_value(jv), s, len) == 0;
    case LAMINA_GGUF_F32: case LAMINA_GGUF_F64: {
        double want = json_number_value(jv);
        if (arr) return lamina_gguf_arr_f64(type, arr_data, j) == want;
        float f;
        return lamina_gguf_get_f32(g, key, &f, err, sizeof err) == 0 && (double)f == want;
    }
    case LAMINA_GGUF_BOOL: {
        if (arr) return lamina_gguf_arr_i64(type, arr_data, j) == (json_is_true(jv) ? 1 : 0);
        int b;
        return lamina_gguf_get_bool(g, key, &b, err, sizeof err) == 0 && b == json_is_true(jv);
    }
    default: {
        if (!json_is_integer(jv)) return 0;
        if (arr) return lamina_gguf_arr_i64(type, arr_data, j) == json_integer_value(jv);
        int64_t v;
        return lamina_gguf_get_i64(g, key, &v, err, sizeof err) == 0 && v == json_integer_value(jv);
    }
    }
}

static void compare_manifest(const char *label, const char *gguf_path, const char *json_path)
{
    json_error_t je;
    json_t *man = json_load_file(json_path, 0, &je);
    ok(man != NULL, "%s: manifest loads", label);
    if (!man) { diag("%s", je.text); return; }
    char err[512];
    lamina_gguf *g = NULL;
    int rc = lamina_gguf_open(gguf_path, &g, err, sizeof err);
    ok(rc == 0, "%s: opens (%s)", label, rc ? err : "ok");
    if (rc) { json_decref(man); return; }

    ok(lamina_gguf_version(g) == json_integer_value(json_object_get(man, "version")) &&
       lamina_gguf_alignment(g) == (uint64_t)json_integer_value(json_object_get(man, "alignment")) &&
       lamina_gguf_data_offset(g) == (uint64_t)json_integer_value(json_object_get(man, "data_offset")),
       "%s: version, alignment, data offset", label);

    json_t *kvs = json_object_get(man, "kv");
    size_t nkv = json_array_size(kvs);
    int kv_ok = lamina_gguf_n_kv(g) == (int64_t)nkv;
    uint64_t n_values = 0;
    for (size_t i = 0; i < nkv && kv_ok; i++) {
        json_t *e = json_array_get(kvs, i);
        const char *key = json_string_value(json_object_get(e, "key"));
        uint32_t type = (uint32_t)json_integer_value(json_object_get(e, "type"));
        json_t *val = json_object_get(e, "value");
        int good = strcmp(lamina_gguf_key(g, (int64_t)i), key) == 0 && lamina_gguf_find(g, key) == (int64_t)i &&
                   lamina_gguf_kv_type(g, (int64_t)i) == type;
        if (good && type == LAMINA_GGUF_ARRAY) {
            uint32_t et, want_et = (uint32_t)json_integer_value(json_object_get(e, "elem_type"));
            uint64_t n;
            const void *d;
            good = lamina_gguf_get_arr(g, key, &et, &n, &d, err, sizeof err) == 0 && et == want_et &&
                   n == json_array_size(val);
            for (uint64_t j = 0; j < n && good; j++, n_values++)
                good = value_matches(g, key, et, json_array_get(val, j), d, j, 1);
        } else if (good) {
            good = value_matches(g, key, type, val, NULL, 0, 0);
            n_values++;
        }
        if (!good) diag("%s: kv %zu '%s' differs", label, i, key);
        kv_ok = kv_ok && good;
    }
    ok(kv_ok, "%s: %zu keys, %llu values match the manifest", label, nkv, (unsigned long long)n_values);

    json_t *ts = json_object_get(man, "tensors");
    size_t nt = json_array_size(ts);
    int t_ok = lamina_gguf_n_tensors(g) == (int64_t)nt;
    for (size_t i = 0; i < nt && t_ok; i++) {
        json_t *e = json_array_get(ts, i);
        const char *name = json_string_value(json_object_get(e, "name"));
        const lamina_gguf_tensor *t = lamina_gguf_tensor_at(g, (int64_t)i);
        json_t *ne = json_object_get(e, "ne");
        int good = t && strcmp(t->name, name) == 0 && lamina_gguf_tensor_find(g, name) == t &&
                   t->type == (uint32_t)json_integer_value(json_object_get(e, "type")) &&
                   t->n_dims == json_array_size(ne) &&
                   t->offset == (uint64_t)json_integer_value(json_object_get(e, "offset")) &&
                   t->size == (uint64_t)json_integer_value(json_object_get(e, "size")) &&
                   t->data == (const uint8_t *)lamina_gguf_map(g) + t->offset &&
                   t->offset % lamina_gguf_alignment(g) == 0;
        for (uint32_t d = 0; d < 4 && good; d++)
            good = t->ne[d] == (d < t->n_dims ? json_integer_value(json_array_get(ne, d)) : 1);
        good = good && crc32_bytes(t->data, t->size) ==
                       (uint32_t)json_integer_value(json_object_get(e, "crc32"));
        if (!good) diag("%s: tensor %zu '%s' differs", label, i, name);
        t_ok = t_ok && good;
    }
    ok(t_ok, "%s: %zu tensors match (type, ne, offset, size, CRC-32 of data)", label, nt);
    lamina_gguf_close(g);
    json_decref(man);
}

static void test_models(void)
{
    const char *py = getenv("PYTHON");
    const char *src = getenv("top_srcdir");
    if (!py || !*py || strcmp(py, "no") == 0 || strcmp(py, ":") == 0) {
        skip("generated models: no $PYTHON");
        return;
    }
    if (!src) src = ".";
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' -c 'import gguf, numpy' >/dev/null 2>&1", py);
    if (system(cmd) != 0) {
        skip("generated models: python package gguf or numpy missing for %s", py);
        return;
    }
    static const struct { const char *arch, *type; int layers; } models[] = {
        { "gemma3", "mixed", 0 }, { "llama", "mixed", 0 },
        { "gemma3", "f32", 1 }, { "gemma3", "f16", 1 }, { "gemma3", "bf16", 1 },
        { "gemma3", "q8_0", 1 }, { "gemma3", "q4_0", 1 }, { "gemma3", "q5_0", 1 },
        { "gemma3", "q4_k", 1 }, { "gemma3", "q5_k", 1 }, { "gemma3", "q6_k", 1 },
        { "llama", "q6_k", 1 },
    };
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        char out[512], man[512], label[64], layers[32] = "";
        snprintf(out, sizeof out, "%s/%s-%s.gguf", tmpdir, models[i].arch, models[i].type);
        snprintf(man, sizeof man, "%s/%s-%s.json", tmpdir, models[i].arch, models[i].type);
        snprintf(label, sizeof label, "%s %s", models[i].arch, models[i].type);
        if (models[i].layers) snprintf(layers, sizeof layers, "--layers %d", models[i].layers);
        snprintf(cmd, sizeof cmd,
                 "'%s' '%s/tests/tools/make_tiny_model.py' --arch %s --type %s %s --seed %zu --out '%s' --manifest '%s' >'%s/py.log' 2>&1",
                 py, src, models[i].arch, models[i].type, layers, i + 1, out, man, tmpdir);
        int rc = system(cmd);
        ok(rc == 0, "%s: make_tiny_model.py ran", label);
        if (rc != 0) {
            snprintf(cmd, sizeof cmd, "sed 's/^/# /' '%s/py.log'", tmpdir);
            fflush(stdout);
            if (system(cmd) != 0) diag("(no log)");
        }
        if (rc == 0) compare_manifest(label, out, man);
        unlink(out);
        unlink(man);
        snprintf(out, sizeof out, "%s/py.log", tmpdir);
        unlink(out);
    }
}

/* ----------------------------------------------- 4. the real model */

static void test_real_model(void)
{
    char path[4096];
    test_default_model(path, sizeof path);
    if (access(path, R_OK) != 0) {
        const char *req = getenv("LAMINA_REQUIRE_MODEL");
        if (req && strcmp(req, "1") == 0) ok(0, "real model present at %s", path);
        else skip("real model: %s not present", path);
        return;
    }
    char err[512];
    lamina_gguf *g = NULL;
    int rc = lamina_gguf_open(path, &g, err, sizeof err);
    ok(rc == 0, "real model opens (%s)", rc ? err : "ok");
    if (rc) return;
    const char *s; size_t len;
    ok(lamina_gguf_get_str(g, "general.architecture", &s, &len, err, sizeof err) == 0 && len == 6 &&
       memcmp(s, "gemma3", 6) == 0, "architecture gemma3");
    ok(lamina_gguf_version(g) == 3 && lamina_gguf_n_tensors(g) == 236 && lamina_gguf_n_kv(g) == 33,
       "v3, 236 tensors, 33 kvs");
    const lamina_gguf_tensor *t = lamina_gguf_tensor_find(g, "token_embd.weight");
    ok(t && t->type == LAMINA_TYPE_Q8_0 && t->n_dims == 2 && t->ne[0] == 640 && t->ne[1] == 262144 &&
       t->size == (uint64_t)262144 * 20 * 34, "token_embd q8_0 [640, 262144]");
    uint32_t et; uint64_t n; const void *d;
    ok(lamina_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &n, &d, err, sizeof err) == 0 &&
       et == LAMINA_GGUF_STRING && n == 262144, "vocab of 262144 strings");
    ok(lamina_gguf_arr_str(g, "tokenizer.ggml.tokens", 2, &s, &len) == 0 && len == 5 && memcmp(s, "<bos>", 5) == 0 &&
       lamina_gguf_arr_str(g, "tokenizer.ggml.tokens", 106, &s, &len) == 0 && len == 13 &&
       memcmp(s, "<end_of_turn>", 13) == 0, "token 2 <bos>, token 106 <end_of_turn>");
    uint32_t u = 0;
    ok(lamina_gguf_get_u32(g, "gemma3.embedding_length", &u, err, sizeof err) == 0 && u == 640 &&
       lamina_gguf_get_u32(g, "gemma3.block_count", &u, err, sizeof err) == 0 && u == 18 &&
       lamina_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &u, err, sizeof err) == 0 && u == 2,
       "n_embd 640, 18 blocks, bos 2");
    int counts[LAMINA_TYPE_COUNT] = { 0 };
    uint64_t total = 0;
    for (int64_t i = 0; i < lamina_gguf_n_tensors(g); i++) {
        const lamina_gguf_tensor *x = lamina_gguf_tensor_at(g, i);
        if (x->type < LAMINA_TYPE_COUNT) counts[x->type]++;
        total += x->size;
    }
    ok(counts[LAMINA_TYPE_F32] == 109 && counts[LAMINA_TYPE_Q5_0] == 81 && counts[LAMINA_TYPE_Q4_K] == 27 &&
       counts[LAMINA_TYPE_Q8_0] == 10 && counts[LAMINA_TYPE_Q6_K] == 9, "tensor types F32/Q5_0/Q4_K/Q8_0/Q6_K");
    ok(lamina_gguf_data_offset(g) + total <= lamina_gguf_file_size(g) && lamina_gguf_alignment(g) == 32,
       "tensor bytes fit in the file");
    lamina_gguf_close(g);
}

/* ------------------------------------------------------------- main */

static int write_seeds(const char *dir)
{
    struct spec specs[] = { { .version = 3 }, { .version = 2 }, { .version = 3, .alignment = 64 } };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        struct buf b;
        build(&b, &specs[i], NULL, NULL);
        char path[512];
        snprintf(path, sizeof path, "%s/seed%zu.gguf", dir, i);
        int rc = write_file(path, b.p, b.n);
        free(b.p);
        if (rc) { fprintf(stderr, "cannot write %s\n", path); return 1; }
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0) return write_seeds(argv[2]);

    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/lamina-gguf-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(tmpdir)) {
        printf("1..0 # SKIP cannot create a temporary directory: %s\n", strerror(errno));
        return 0;
    }
    test_api(3, 0);
    test_api(2, 0);
    test_api(3, 64);
    test_api(3, 1);
    test_corruption();
    test_files();
    test_models();
    test_real_model();
    rmdir(tmpdir);
    printf("1..%d\n", n_test);
    return n_fail ? 1 : 0;
}
