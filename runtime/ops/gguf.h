/*
 * gguf.h - GGUF (v2/v3) file reader over mmap.
 *
 * lamina_gguf_open() maps the file read-only and validates everything before
 * returning: magic, version, every count, string length, array length and
 * value type, key uniqueness, tensor names, dims, types, element counts,
 * alignment, and that every tensor's extent lies inside the file, with all
 * size arithmetic checked for overflow.  A corrupt or truncated file fails
 * with a message naming the field and its byte offset, e.g.
 *   "model.gguf: tensor 12 'blk.0.attn_q.weight': data [1234, 99999) ends past end of file (5000 bytes) (offset 812)"
 * After a successful open, lookups never fail on malformed data.
 *
 * Ownership: the handle owns the mapping; every pointer returned (names,
 * strings, array data, tensor data) stays valid until lamina_gguf_close().
 * Strings in GGUF are not NUL-terminated: they are returned as (ptr, len).
 * Key and tensor names are NUL-terminated copies.
 * Internal to liblamina.
 *
 * Error codes: every failing function returns a negative value (the
 * LAMINA_E* code made negative whatever the sign convention of the enum).
 *
 * Limits enforced at open (beyond "everything lies inside the file"):
 *   n_kv, n_tensors           <= 2^20 each
 *   key and tensor names      1 .. 65535 bytes, no NUL byte, unique
 *   string values             <= 2^30 bytes
 *   array values              elements of one scalar type or strings
 *                             (nested arrays are refused); bool bytes 0/1
 *   general.alignment         integer, power of two, 1 .. 2^30 (default 32)
 *   tensors                   1..4 dims, each 1 .. 2^62, element count and
 *                             byte size fit in int64; type known to
 *                             lamina_type_get() with ne[0] a multiple of the
 *                             block size; offset a multiple of the alignment;
 *                             no two tensors overlap.  Padding after the last
 *                             tensor's bytes is not required.
 * Versions 2 and 3 (little-endian) are read; v1 and byte-swapped files are
 * refused with a message saying so.
 */
#ifndef LAMINA_GGUF_H
#define LAMINA_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "lamina/plugin.h"

/* Value types (GGUF numbering). */
enum lamina_gguf_type {
    LAMINA_GGUF_U8 = 0, LAMINA_GGUF_I8 = 1, LAMINA_GGUF_U16 = 2, LAMINA_GGUF_I16 = 3,
    LAMINA_GGUF_U32 = 4, LAMINA_GGUF_I32 = 5, LAMINA_GGUF_F32 = 6, LAMINA_GGUF_BOOL = 7,
    LAMINA_GGUF_STRING = 8, LAMINA_GGUF_ARRAY = 9, LAMINA_GGUF_U64 = 10,
    LAMINA_GGUF_I64 = 11, LAMINA_GGUF_F64 = 12
};

typedef struct lamina_gguf lamina_gguf;

typedef struct lamina_gguf_tensor {
    const char *name;     /* NUL-terminated */
    uint32_t type;        /* lamina_dtype */
    uint32_t n_dims;      /* 1..4 */
    int64_t  ne[4];       /* unused dims are 1 */
    uint64_t offset;      /* absolute file offset of the data */
    uint64_t size;        /* bytes */
    const void *data;     /* inside the mapping */
} lamina_gguf_tensor;

/* Open and validate.  *out owned by the caller (lamina_gguf_close).
 * LAMINA_ENOENT: cannot open; LAMINA_EFORMAT: corrupt (message says where);
 * LAMINA_ENOTSUP: unknown tensor type (named). */
int  lamina_gguf_open(const char *path, lamina_gguf **out, char *err, size_t err_size);
/* Same validation over a caller-owned buffer, which is not copied and must
 * stay unchanged until lamina_gguf_close(); `name` (copied) is used in
 * messages and by lamina_gguf_path().  Used by tests and the fuzzer. */
int  lamina_gguf_open_memory(const void *data, size_t size, const char *name,
                             lamina_gguf **out, char *err, size_t err_size);
void lamina_gguf_close(lamina_gguf *g);   /* NULL is a no-op */

/* "u32", "string", "array", ...; "?" for an unknown id.  Static string. */
const char *lamina_gguf_type_name(uint32_t type);

uint32_t    lamina_gguf_version(const lamina_gguf *g);
const char *lamina_gguf_path(const lamina_gguf *g);
uint64_t    lamina_gguf_file_size(const lamina_gguf *g);
const void *lamina_gguf_map(const lamina_gguf *g);      /* byte 0 of the file */
uint64_t    lamina_gguf_alignment(const lamina_gguf *g);
uint64_t    lamina_gguf_data_offset(const lamina_gguf *g); /* start of tensor data */

/* ---- key/value metadata ---- */
int64_t     lamina_gguf_n_kv(const lamina_gguf *g);
int64_t     lamina_gguf_find(const lamina_gguf *g, const char *key); /* -1 absent */
const char *lamina_gguf_key(const lamina_gguf *g, int64_t i);     /* NULL if i out of range */
uint32_t    lamina_gguf_kv_type(const lamina_gguf *g, int64_t i); /* UINT32_MAX if out of range */

/* Typed getters by key.  Return 0, LAMINA_ENOENT when the key is absent,
 * LAMINA_EINVAL when its type does not convert (message names key, type).
 * Integer getters accept any integer type whose value fits. */
int lamina_gguf_get_u32(const lamina_gguf *g, const char *key, uint32_t *out, char *err, size_t err_size);
int lamina_gguf_get_i64(const lamina_gguf *g, const char *key, int64_t *out, char *err, size_t err_size);
int lamina_gguf_get_f32(const lamina_gguf *g, const char *key, float *out, char *err, size_t err_size);   /* F32 or F64 */
int lamina_gguf_get_bool(const lamina_gguf *g, const char *key, int *out, char *err, size_t err_size);
int lamina_gguf_get_str(const lamina_gguf *g, const char *key, const char **s, size_t *len, char *err, size_t err_size);

/* Arrays.  lamina_gguf_get_arr gives the element type and count; for
 * numeric element types *data points at the packed little-endian elements
 * in the mapping (possibly unaligned: read with memcpy or the helpers).
 * For string arrays use lamina_gguf_arr_str (O(1), index built at open). */
int lamina_gguf_get_arr(const lamina_gguf *g, const char *key, uint32_t *elem_type,
                        uint64_t *n, const void **data, char *err, size_t err_size);
/* For a string array *data is the first element's 8-byte length prefix.
 * lamina_gguf_arr_str: 0, LAMINA_ENOENT absent key, LAMINA_EINVAL not a
 * string array, LAMINA_ERANGE when i >= n. */
int lamina_gguf_arr_str(const lamina_gguf *g, const char *key, uint64_t i,
                        const char **s, size_t *len);
/* Element i of a numeric array converted (any int type / float / bool).
 * No bounds check (the caller has n).  Floats convert to int64 truncating
 * toward zero, saturating, NaN -> 0; u64 above INT64_MAX saturates; an
 * element type that is not numeric gives 0. */
int64_t lamina_gguf_arr_i64(uint32_t elem_type, const void *data, uint64_t i);
double  lamina_gguf_arr_f64(uint32_t elem_type, const void *data, uint64_t i);

/* ---- tensors ---- */
int64_t lamina_gguf_n_tensors(const lamina_gguf *g);
const lamina_gguf_tensor *lamina_gguf_tensor_at(const lamina_gguf *g, int64_t i); /* NULL out of range; file order */
/* The index of t in g's table (lamina_gguf_tensor_at(g, i) == t), or -1
 * when t is not one of g's tensors.  O(1). */
int64_t lamina_gguf_tensor_index(const lamina_gguf *g, const lamina_gguf_tensor *t);
const lamina_gguf_tensor *lamina_gguf_tensor_find(const lamina_gguf *g, const char *name); /* NULL absent */

#endif
