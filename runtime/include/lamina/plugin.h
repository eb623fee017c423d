/*
 * lamina/plugin.h - the backend plugin ABI.
 *
 * A backend plugin is a shared object that exports exactly one symbol,
 * LAMINA_PLUGIN_ENTRY_NAME, of type lamina_plugin_entry_fn.  The core calls it
 * with a description of itself (lamina_host) and receives a static descriptor
 * (lamina_plugin_desc) that names the plugin, what it was built against, and
 * its entry points.  Everything else a plugin exports is hidden.
 *
 * Versioning rules (append-only, in the manner of sqlite3_vfs):
 *   - Every struct that crosses the boundary starts with a size or version
 *     field.  Fields are only ever appended; each is marked with the ABI minor
 *     that added it.  Nothing is removed or reordered within a major.
 *   - ABI major must match exactly.  A plugin built for a newer minor (larger
 *     struct) still loads; the core ignores the fields it does not know.  A
 *     plugin built for an older minor is used within what it declares: the
 *     core reads a field only when struct_size covers it and, for function
 *     pointers, when it is not NULL (LAMINA_HAS below).
 *   - The host offers [LAMINA_PLUGIN_ABI_MIN_MINOR, LAMINA_PLUGIN_ABI_MINOR];
 *     a refusal names both sides' numbers.
 *
 * Interface changelog:
 *   1.0  first version: descriptor, probe sink, device info, backend
 *        interface, ops GET_ROWS .. COPY.
 *   1.1  mixture-of-experts ops TOPK, MOE_WEIGHTS, MUL_MAT_ID, MOE_SUM (a
 *        plugin built for 1.0 never receives them: the planner routes
 *        those layers to a backend that declares them); the descriptor
 *        flag LAMINA_PLUGIN_F_HOST_MEMORY; lamina_graph.node_size, so that
 *        later minors can append fields to lamina_node.
 *   1.2  encoder ops NORM (mean-subtracting layer norm with weight and
 *        bias) and UNARY (an activation alone, the ungated FFN of BERT);
 *        a plugin built for 1.0 or 1.1 never receives them: the planner
 *        routes the layers that need them to a backend that declares them.
 *        Encoders attend to every position of their sequence with the 1.0
 *        ATTENTION op: the host gives each query the position of the
 *        sequence's last token (see ATTENTION), so no plugin can compute a
 *        causal mask for them by mistake.
 *   1.3  gpt-oss: the weight type MXFP4; lamina_node.src4, a fifth
 *        operand (ATTENTION's per-head sinks); GLU's LAMINA_ACT_SWIGLU_OAI;
 *        ROPE's YaRN parameters (fp[2..5], ip[2]).  The planner gives a
 *        node that uses any of these only to a plugin built for 1.3
 *        (lamina_node_min_minor), and hands a plugin built for an older
 *        minor its nodes at the size it knows (lamina_graph.node_size).
 *
 * Conventions:
 *   - Functions return 0 on success or a negative LAMINA_E* code, and on
 *     failure write a NUL-terminated, one-line message into (err, err_size)
 *     when err is not NULL.  No plugin function may call exit(), abort() on
 *     bad input, or print to stdout; diagnostics go through lamina_host.log.
 *   - Ownership is stated beside each function.  Strings handed to the core
 *     by a plugin (descriptor, probe sink calls) are borrowed: the core copies
 *     what it keeps before the call returns.
 */
#ifndef LAMINA_PLUGIN_H
#define LAMINA_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LAMINA_PLUGIN_ABI_MAJOR     1
#define LAMINA_PLUGIN_ABI_MINOR     3
#define LAMINA_PLUGIN_ABI_MIN_MINOR 0

/* The one symbol a plugin exports. */
#define LAMINA_PLUGIN_ENTRY_NAME "lamina_plugin_entry"
#define LAMINA_PLUGIN_ENTRY      lamina_plugin_entry

#if defined(__GNUC__)
#define LAMINA_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define LAMINA_PLUGIN_EXPORT
#endif

/* True when `obj` (a pointer to a versioned struct starting with
 * uint32_t struct_size) is large enough to hold `field` and, for pointers,
 * the field is set.  The core reads plugin structs only through this. */
#define LAMINA_HAS(obj, field)                                              \
    ((obj) != NULL &&                                                       \
     (obj)->struct_size >= offsetof(__typeof__(*(obj)), field) +            \
                              sizeof((obj)->field))
#define LAMINA_HAS_FN(obj, field) (LAMINA_HAS(obj, field) && (obj)->field != NULL)

/* ------------------------------------------------------------------------ */
/* Error codes.  The values are negative already: return LAMINA_EINVAL,    */
/* never -LAMINA_EINVAL.                                                    */

enum lamina_error_code {
    LAMINA_OK         = 0,
    LAMINA_EINVAL     = -1,  /* bad argument or malformed input */
    LAMINA_ENOMEM     = -2,  /* host or device memory exhausted */
    LAMINA_ENOTSUP    = -3,  /* operation, type or feature not supported */
    LAMINA_EIO        = -4,  /* I/O or driver call failed */
    LAMINA_ENODEV     = -5,  /* no such device */
    LAMINA_EDEVLOST   = -6,  /* device lost during work; instance unusable */
    LAMINA_EVERSION   = -7,  /* version or ABI mismatch */
    LAMINA_EFORMAT    = -8,  /* malformed file */
    LAMINA_ETIMEOUT   = -9,  /* timed out */
    LAMINA_ECRASH     = -10, /* a child process died */
    LAMINA_ECANCELED  = -11, /* cancelled by the caller */
    LAMINA_ENOENT     = -12, /* not found */
    LAMINA_ERANGE     = -13, /* value or size out of range */
    LAMINA_EREJECTED  = -14  /* refused by a rule */
};

/* ------------------------------------------------------------------------ */
/* Data types.  Numeric values are those of the GGUF file format, so a      */
/* tensor type read from a file maps to a lamina_dtype unchanged.          */
/* Block layouts are in lamina/quant.h.                                     */

enum lamina_dtype {
    LAMINA_TYPE_F32  = 0,
    LAMINA_TYPE_F16  = 1,
    LAMINA_TYPE_Q4_0 = 2,
    LAMINA_TYPE_Q4_1 = 3,
    LAMINA_TYPE_Q5_0 = 6,
    LAMINA_TYPE_Q5_1 = 7,
    LAMINA_TYPE_Q8_0 = 8,
    LAMINA_TYPE_Q8_1 = 9,
    LAMINA_TYPE_Q2_K = 10,
    LAMINA_TYPE_Q3_K = 11,
    LAMINA_TYPE_Q4_K = 12,
    LAMINA_TYPE_Q5_K = 13,
    LAMINA_TYPE_Q6_K = 14,
    LAMINA_TYPE_Q8_K = 15,
    LAMINA_TYPE_IQ4_NL = 20,
    LAMINA_TYPE_IQ4_XS = 23,
    LAMINA_TYPE_I32  = 26,
    LAMINA_TYPE_BF16 = 30,
    LAMINA_TYPE_MXFP4 = 39,     /* 1.3 */
    LAMINA_TYPE_COUNT = 40
};

/* ------------------------------------------------------------------------ */
/* Services the core hands to a plugin.  Owned by the core; valid from the  */
/* entry call until the plugin is unloaded.                                 */

enum lamina_log_level {
    LAMINA_LOG_ERROR = 0,
    LAMINA_LOG_WARN  = 1,
    LAMINA_LOG_INFO  = 2,
    LAMINA_LOG_DEBUG = 3
};

typedef struct lamina_host {
    uint32_t struct_size;
    uint32_t abi_major;      /* LAMINA_PLUGIN_ABI_MAJOR of the host */
    uint32_t abi_minor;      /* newest minor the host speaks */
    uint32_t abi_min_minor;  /* oldest minor the host accepts */
    const char *host_version;   /* lamina release, e.g. "0.1.0" */
    void *log_ctx;
    /* Log one line (no trailing newline needed).  May be called from any
     * thread.  `plugin` is the caller's name. */
    void (*log)(void *log_ctx, int level, const char *plugin, const char *msg);
    /* end of 1.0 */
} lamina_host;

/* ------------------------------------------------------------------------ */
/* Probe: what the plugin finds on this host.  Probing has no side effects  */
/* beyond loading the libraries it inspects, and does not open a backend.   */

/* How a found version must relate to the built-against one.  The plugin    */
/* declares the rule; the core evaluates it and writes the rejection line.  */
enum lamina_version_rule {
    LAMINA_RULE_NONE        = 0, /* informational only */
    LAMINA_RULE_SAME_MAJOR  = 1, /* found.major == built.major */
    LAMINA_RULE_SAME_MINOR  = 2, /* found.major.minor == built.major.minor */
    LAMINA_RULE_AT_LEAST    = 3, /* found >= built (e.g. driver vs runtime) */
    LAMINA_RULE_EXACT       = 4, /* found == built, every component */
    LAMINA_RULE_PRESENT     = 5  /* must be found at all (found != NULL) */
};

/* One device as the plugin sees it.  Strings may be NULL when unknown. */
typedef struct lamina_device_info {
    uint32_t struct_size;
    uint32_t index;             /* plugin-defined; passed back to open() */
    const char *name;           /* "llvmpipe (LLVM 15.0.6, 256 bits)" */
    const char *type;           /* "cpu", "discrete-gpu", "integrated-gpu",
                                   "virtual-gpu", "other" */
    const char *driver_name;    /* "llvmpipe", "amdgpu", "NVIDIA" */
    const char *driver_version; /* decoded, e.g. "22.3.6" */
    const char *runtime_version;/* version of the user-space runtime library */
    const char *api_version;    /* e.g. Vulkan "1.3.230" */
    const char *arch;           /* "gfx906:sramecc+:xnack-", "sm_90", "x86_64" */
    const char *features;       /* space-separated capability names */
    uint64_t mem_total;         /* bytes; 0 when unknown */
    uint64_t mem_free;          /* bytes; 0 when unknown */
    const char *unusable;       /* NULL when usable, else why not, naming the
                                   missing feature: "lacks shaderInt8" */
    uint32_t vendor_id;
    uint32_t device_id;
    /* end of 1.0 */
} lamina_device_info;

/* Owned by the core, valid during the probe call only. */
typedef struct lamina_probe_sink {
    uint32_t struct_size;
    void *ctx;
    /* A library, driver or runtime the plugin depends on.  `found` is the
     * version on this host (NULL when not found), `built` the one it was
     * compiled against (may be NULL), `rule` a lamina_version_rule, `path`
     * the file that was loaded (its identity keys the probe cache; may be
     * NULL). */
    void (*component)(void *ctx, const char *name, const char *found,
                      const char *built, uint32_t rule, const char *path);
    /* A further file whose change must invalidate a cached probe
     * (an ICD manifest, a driver library, a sysfs version file). */
    void (*file)(void *ctx, const char *path);
    /* One device; call once per device, in index order. */
    void (*device)(void *ctx, const lamina_device_info *dev);
    /* A free-form line shown by `lamina backends` under the plugin. */
    void (*note)(void *ctx, const char *text);
    /* end of 1.0 */
} lamina_probe_sink;

/* ------------------------------------------------------------------------ */
/* Tensors and graphs.                                                      */

typedef struct lamina_buffer  lamina_buffer;   /* opaque, plugin-defined */
typedef struct lamina_backend lamina_backend;  /* opaque, plugin-defined */

/*
 * A view of memory in one buffer.  ne[0] is the innermost, contiguous
 * dimension (a "row"); unused dimensions have ne = 1.  The row with indices
 * (i1, i2, i3) starts at byte  offset + i1*nb[1] + i2*nb[2] + i3*nb[3]
 * and holds ne[0] elements packed as the type's blocks (quant.h), so ne[0]
 * is a multiple of the type's block size.  nb[0] is the size of one block.
 */
typedef struct lamina_tensor {
    uint32_t type;              /* lamina_dtype */
    uint32_t flags;             /* reserved, 0 */
    int64_t  ne[4];
    uint64_t nb[4];
    lamina_buffer *buffer;
    uint64_t offset;
} lamina_tensor;

#define LAMINA_MAX_SRC 4
#define LAMINA_MAX_PARAMS 8

/*
 * Operations.  Each line gives the operands, types and the exact maths.
 * Shapes are written [ne0, ne1, ne2].  "rows" means every (i1,i2,i3).
 * Unless stated otherwise dst is F32, may alias src[0] exactly (same buffer
 * and offset, same shape) for in-place work, and must not partially overlap
 * any source.  Node fields not named for an op are zero.
 *
 * GET_ROWS   src0 table [K, R] any weight type; src1 ids I32 [N]; dst [K, N]
 *            dst[:, i] = dequant(src0[:, ids[i]]).  The core guarantees
 *            0 <= ids[i] < R.
 * MUL_MAT    src0 W [K, N] any weight type; src1 X F32 [K, M]; dst [N, M]
 *            dst[n, m] = sum_k W[k, n] * X[k, m].  A plugin may round X to
 *            8-bit blocks for quantized W (the self-test tolerance allows it).
 * RMS_NORM   src0 X F32 [K, ...]; optional src1 w F32 [K]; fp[0] = eps
 *            per row: dst[k] = X[k] / sqrt(mean_k(X^2) + eps) * (w ? w[k] : 1)
 * ADD        src0 A F32 [K, ...]; src1 B F32 of A's shape, or [K] (broadcast
 *            to every row);  dst = A + B
 * MUL        as ADD with dst = A * B
 * SCALE      src0 A F32; fp[0] = s;  dst = s * A
 * ROPE       src0 X F32 [D, H, N]; src1 pos I32 [N]; optional src2 freq
 *            factors F32 [n_rot/2]; ip[0] = mode (LAMINA_ROPE_NORM: pairs
 *            (2i, 2i+1); LAMINA_ROPE_NEOX: pairs (i, i + n_rot/2));
 *            ip[1] = n_rot (even, <= D; dims >= n_rot are copied);
 *            fp[0] = freq_base; fp[1] = freq_scale (0 means 1).
 *            for i < n_rot/2: theta = pos*freq_scale * base^(-2i/n_rot) / ff[i]
 *            (x0, x1) -> (x0 cos(theta) - x1 sin(theta),
 *                         x0 sin(theta) + x1 cos(theta))
 *            Since 1.3, YaRN (all 0 before: none): fp[2] = ext_factor,
 *            fp[3] = attn_factor (0 means 1), fp[4] = beta_fast,
 *            fp[5] = beta_slow, ip[2] = n_ctx_orig.  With e = ext_factor
 *            != 0, te = pos * base^(-2i/n_rot) / ff[i] and s = freq_scale:
 *              c(b) = n_rot ln(n_ctx_orig / (2 pi b)) / (2 ln base)
 *              lo = max(0, floor(c(beta_fast))), hi = min(n_rot-1, ceil(c(beta_slow)))
 *              r = 1 - clamp((i - lo) / max(0.001, hi - lo), 0, 1)
 *              theta = s te (1 - r e) + te r e
 *              m = attn_factor (1 + 0.1 ln(1/s))
 *            and the pair becomes m times the rotation above; with e = 0,
 *            m = attn_factor (all in F32).
 * SET_ROWS   src0 X F32 [K, N]; src1 rows I32 [N]; dst [K, R] F32 or F16
 *            (not an alias of src0):  dst[:, rows[i]] = convert(X[:, i]).
 *            Used to write the KV cache; rows are distinct.
 * ATTENTION  src0 Q F32 [D, Hq, N]; src1 K cache [D*Hkv, R] F16 or F32;
 *            src2 V cache [Dv*Hkv, R] F16 or F32; src3 I32 [2, N] with
 *            (base_i, pos_i) per query token; ip[0] = window (0 = none);
 *            fp[0] = scale; fp[1] = softcap (0 = none).  dst [Dv*Hq, N].
 *            Query token i, head h reads KV head g = h / (Hq/Hkv) at cache
 *            rows base_i + j for j in [0, pos_i] with
 *            (window == 0 || pos_i - j < window):
 *              s_j = scale * dot(Q[:, h, i], K[g*D:(g+1)*D, base_i + j])
 *              s_j = softcap ? softcap * tanh(s_j / softcap) : s_j
 *              p = softmax_j(s);  dst[h*Dv:(h+1)*Dv, i] = sum_j p_j V[g*Dv.., base_i+j]
 *            Softmax is computed in F32 with the maximum subtracted.
 *            pos_i need not be query i's own position: for an encoder (a
 *            whole sequence in one batch, attending both ways) the host
 *            sets pos_i to the sequence's last position for every query.
 *            Since 1.3, n_src = 5 adds src4 sinks F32 [Hq]: head h's
 *            softmax has one more logit, sinks[h], in its denominator
 *            only (gpt-oss):  p_j = e^(s_j) / (e^(sinks[h]) + sum_j e^(s_j))
 * GLU        src0 gate F32 [F, ...]; src1 up F32 same shape; ip[0] = act
 *            dst = act(gate) * up, act = LAMINA_ACT_SILU: x / (1 + e^-x),
 *            LAMINA_ACT_GELU_TANH: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
 *            Since 1.3, LAMINA_ACT_SWIGLU_OAI (GLU only), fp[0] = alpha,
 *            fp[1] = limit:  x = min(gate, limit), y = clamp(up, -limit, limit),
 *              dst = x / (1 + e^(-alpha x)) * (y + 1)
 * COPY       src0 [K, ...] F32, F16 or BF16; dst same shape, F32 or F16
 *            dst = convert(src0), row by row (strides may differ).
 *
 * Since 1.1 (mixture of experts; a 1.0 plugin is never given these):
 * TOPK       src0 X F32 [N, T]; ip[0] = k (1 <= k <= N); dst I32 [k, T]:
 *            the indices of the k largest values of each column, largest
 *            first (equal values: the lower index first).
 * MOE_WEIGHTS src0 router logits F32 [N, T]; src1 ids I32 [k, T] (distinct
 *            per column, < N); ip[0] = 1: normalize over the selected, 0:
 *            over all N.  dst F32 [k, T]:
 *              dst[j, t] = exp(X[ids[j,t], t]) / sum_{i in S} exp(X[i, t])
 *            with S the k selected (ip[0] = 1) or all N, in F32 with the
 *            maximum subtracted.
 * MUL_MAT_ID src0 W [K, N, X] any weight type (X experts, each a MUL_MAT
 *            weight [K, N], nb[2] apart); src1 A F32 [K, M, T] with M = 1
 *            (every slot reads the same column) or M = k; src2 ids I32
 *            [k, T] (< X).  dst F32 [N, k, T]:
 *              dst[:, j, t] = W[:, :, ids[j,t]]^T . A[:, M == 1 ? 0 : j, t]
 *            (rounding A as MUL_MAT may).
 * MOE_SUM    src0 Y F32 [E, k, T]; src1 w F32 [k, T]; dst F32 [E, T]:
 *              dst[:, t] = sum_j w[j, t] * Y[:, j, t]   (j in order)
 *
 * Since 1.2 (encoders; a 1.0 or 1.1 plugin is never given these):
 * NORM       src0 X F32 [K, ...]; optional src1 w F32 [K]; optional src2 b
 *            F32 [K] (only with src1); fp[0] = eps.  Per row:
 *              mu = mean_k(X), var = mean_k((X - mu)^2)
 *              dst[k] = (X[k] - mu) / sqrt(var + eps) * (w ? w[k] : 1) + (b ? b[k] : 0)
 * UNARY      src0 X F32 [K, ...]; ip[0] = act (as GLU's);  dst = act(X)
 */
enum lamina_op {
    LAMINA_OP_NONE      = 0,
    LAMINA_OP_GET_ROWS  = 1,
    LAMINA_OP_MUL_MAT   = 2,
    LAMINA_OP_RMS_NORM  = 3,
    LAMINA_OP_ADD       = 4,
    LAMINA_OP_MUL       = 5,
    LAMINA_OP_SCALE     = 6,
    LAMINA_OP_ROPE      = 7,
    LAMINA_OP_SET_ROWS  = 8,
    LAMINA_OP_ATTENTION = 9,
    LAMINA_OP_GLU       = 10,
    LAMINA_OP_COPY      = 11,
    /* 1.1 */
    LAMINA_OP_TOPK        = 12,
    LAMINA_OP_MOE_WEIGHTS = 13,
    LAMINA_OP_MUL_MAT_ID  = 14,
    LAMINA_OP_MOE_SUM     = 15,
    /* 1.2 */
    LAMINA_OP_NORM        = 16,
    LAMINA_OP_UNARY       = 17,
    LAMINA_OP_COUNT       = 18  /* one past the last op of this minor */
};

/* An op's name for messages ("mul_mat"); "unknown" past this minor's. */
static inline const char *lamina_op_name(uint32_t op)
{
    static const char *const names[LAMINA_OP_COUNT] = {
        "none", "get_rows", "mul_mat", "rms_norm", "add", "mul", "scale", "rope",
        "set_rows", "attention", "glu", "copy", "topk", "moe_weights", "mul_mat_id", "moe_sum",
        "norm", "unary",
    };
    return op < LAMINA_OP_COUNT ? names[op] : "unknown";
}

/* The minor that added each op: a plugin built for an older minor is
 * never given the op (it could not know to refuse it). */
#define LAMINA_OP_COUNT_1_0 12
#define LAMINA_OP_COUNT_1_1 16
#define LAMINA_OP_MIN_MINOR(op) ((op) < LAMINA_OP_COUNT_1_0 ? 0u : (op) < LAMINA_OP_COUNT_1_1 ? 1u : 2u)

enum lamina_rope_mode { LAMINA_ROPE_NORM = 0, LAMINA_ROPE_NEOX = 2 };
enum lamina_act       { LAMINA_ACT_SILU = 0, LAMINA_ACT_GELU_TANH = 1,
                        LAMINA_ACT_SWIGLU_OAI = 2 /* 1.3, GLU only */ };

typedef struct lamina_node {
    uint32_t op;                    /* lamina_op */
    uint32_t n_src;                 /* sources in use */
    lamina_tensor dst;
    lamina_tensor src[LAMINA_MAX_SRC];
    int32_t ip[LAMINA_MAX_PARAMS];  /* integer parameters, per op */
    float   fp[LAMINA_MAX_PARAMS];  /* float parameters, per op */
    /* end of 1.0 (and of 1.1, 1.2) */
    lamina_tensor src4;             /* a fifth operand, counted by n_src (1.3) */
    /* end of 1.3 */
} lamina_node;

/* The size of a node as a plugin built for 1.0 to 1.2 knows it. */
#define LAMINA_NODE_SIZE_1_0 offsetof(lamina_node, src4)

/* A copy of a node that a graph handed over: only the fields its size
 * holds (a host older than 1.3, or a 1.0 node, has no src4), the rest 0. */
static inline void lamina_node_copy(lamina_node *dst, const lamina_node *src)
{
    memset(dst, 0, sizeof *dst);
    memcpy(dst, src, src->n_src > LAMINA_MAX_SRC ? sizeof *dst : LAMINA_NODE_SIZE_1_0);
}

/* Source i of a node (0 .. n_src-1): src[0..3], then src4. */
static inline const lamina_tensor *lamina_node_src(const lamina_node *n, uint32_t i)
{
    return i < LAMINA_MAX_SRC ? &n->src[i] : &n->src4;
}

/* The oldest minor whose plugins understand this node: its op's, or 3
 * where it uses what 1.3 added (a fifth operand, an MXFP4 operand,
 * GLU's SWIGLU_OAI, ROPE's YaRN). */
static inline uint32_t lamina_node_min_minor(const lamina_node *n)
{
    uint32_t m = LAMINA_OP_MIN_MINOR(n->op);
    if (n->n_src > LAMINA_MAX_SRC) return 3;
    if (n->op == LAMINA_OP_GLU && n->ip[0] == LAMINA_ACT_SWIGLU_OAI) return 3;
    if (n->op == LAMINA_OP_ROPE && (n->fp[2] != 0.0f || (n->fp[3] != 0.0f && n->fp[3] != 1.0f)))
        return 3;
    if (n->dst.type == LAMINA_TYPE_MXFP4) return 3;
    for (uint32_t i = 0; i < n->n_src && i < LAMINA_MAX_SRC; i++)
        if (n->src[i].type == LAMINA_TYPE_MXFP4) return 3;
    return m;
}

/* Nodes run in order; a node may read what an earlier node wrote.  The
 * plugin may fuse or reorder nodes as long as the results are the same.
 * The graph and its nodes are borrowed for the duration of the call. */
typedef struct lamina_graph {
    uint32_t struct_size;
    uint32_t n_nodes;
    const lamina_node *nodes;
    /* end of 1.0 */
    /* Bytes from one node to the next.  A later minor may append fields to
     * lamina_node; a plugin reads node i at (const char *)nodes + i *
     * node_size and the fields its own lamina_node has.  The host gives a
     * plugin built for 1.0 (no node_size) nodes of the 1.0 size. */
    uint32_t node_size;
    uint32_t reserved;
    /* end of 1.1 */
} lamina_graph;

/* Node i of a graph, stepping by the node size the host gave (a plugin
 * reads src4 only where n_src says there is one). */
static inline const lamina_node *lamina_graph_node(const lamina_graph *g, uint32_t i)
{
    /* a 1.0 host's graph has no node_size: its nodes are of the 1.0 size;
     * one that leaves it 0 hands nodes of this header's size */
    size_t step = !LAMINA_HAS(g, node_size) ? LAMINA_NODE_SIZE_1_0 : g->node_size ? g->node_size
                                                                                  : sizeof(lamina_node);
    return (const lamina_node *)(const void *)((const char *)g->nodes + (size_t)i * step);
}

/* ------------------------------------------------------------------------ */
/* Backend instance interface.                                              */

enum lamina_buffer_usage {
    LAMINA_BUFFER_WEIGHTS     = 1u << 0, /* written once, read by graphs */
    LAMINA_BUFFER_KV          = 1u << 1, /* KV cache */
    LAMINA_BUFFER_ACTIVATIONS = 1u << 2, /* scratch between nodes */
    LAMINA_BUFFER_HOST_IO     = 1u << 3  /* crosses backends each graph */
};

typedef struct lamina_backend_params {
    uint32_t struct_size;
    uint32_t device;            /* lamina_device_info.index */
    uint32_t n_threads;         /* host threads the plugin may use; 0 = its choice */
    uint32_t flags;             /* reserved, 0 */
    /* end of 1.0 */
} lamina_backend_params;

typedef struct lamina_backend_iface {
    uint32_t struct_size;
    uint32_t reserved;

    /* Open an instance on one probed device.  On success *out is owned by
     * the caller and released with close().  On failure *out is untouched
     * and nothing needs releasing. */
    int  (*open)(const lamina_host *host, const lamina_backend_params *params,
                 lamina_backend **out, char *err, size_t err_size);
    /* Release the instance and every buffer still allocated from it. */
    void (*close)(lamina_backend *be);

    /* Device memory now: free and total bytes (0 when unknown). */
    int  (*memory)(lamina_backend *be, uint64_t *free_bytes, uint64_t *total_bytes);

    /* Allocate `size` bytes of device memory; contents undefined.  *out is
     * owned by the caller, released with buffer_free() (or close()). */
    int  (*buffer_alloc)(lamina_backend *be, uint64_t size, uint32_t usage,
                         lamina_buffer **out, char *err, size_t err_size);
    /* Optional.  Use `size` bytes of host memory at `ptr` in place (mmapped
     * weights), read-only.  The memory stays owned by the caller and must
     * outlive the buffer.  LAMINA_ENOTSUP when the device cannot. */
    int  (*buffer_wrap_host)(lamina_backend *be, const void *ptr, uint64_t size,
                             lamina_buffer **out, char *err, size_t err_size);
    void (*buffer_free)(lamina_backend *be, lamina_buffer *buf);
    /* Copy between host memory and a buffer; synchronous. */
    int  (*buffer_upload)(lamina_backend *be, lamina_buffer *buf, uint64_t offset,
                          const void *src, uint64_t size, char *err, size_t err_size);
    int  (*buffer_download)(lamina_backend *be, lamina_buffer *buf, uint64_t offset,
                            void *dst, uint64_t size, char *err, size_t err_size);

    /* 1 when this node (op, types, shapes, parameters) can run, else 0.
     * Tensor buffers may be NULL here (the planner asks before allocating);
     * decide from types, shapes and parameters only.
     * Pure: no side effects, callable without a graph. */
    int  (*supports_op)(lamina_backend *be, const lamina_node *node);

    /* Run the nodes in order and wait for completion.  Returns
     * LAMINA_EDEVLOST when the device is gone (the instance must then only
     * be closed). */
    int  (*graph_compute)(lamina_backend *be, const lamina_graph *graph,
                          char *err, size_t err_size);
    /* end of 1.0 */
} lamina_backend_iface;

/* ------------------------------------------------------------------------ */
/* The descriptor.                                                          */

typedef struct lamina_component {
    const char *name;     /* "vulkan-headers", "hip-runtime", "cuda-runtime" */
    const char *version;  /* dotted, e.g. "1.3.239", "6.3.60303" */
} lamina_component;

typedef struct lamina_plugin_desc {
    uint32_t abi_major;         /* LAMINA_PLUGIN_ABI_MAJOR it was built with */
    uint32_t abi_minor;         /* LAMINA_PLUGIN_ABI_MINOR it was built with */
    uint32_t struct_size;       /* sizeof(lamina_plugin_desc) it was built with */
    uint32_t flags;             /* LAMINA_PLUGIN_F_* (1.1; 0 in 1.0) */
    const char *name;           /* [a-z0-9_-]+, unique: "cpu", "vulkan" */
    const char *version;        /* the plugin's own version */
    const char *description;    /* one line */
    /* What it was built against; array ended by {NULL, NULL}; may be NULL. */
    const lamina_component *built_against;
    /* Device architectures its compiled code covers ("gfx906", "sm_90");
     * NULL-terminated; NULL when the plugin does not use code objects.  A
     * device whose arch (up to the first ':') is not listed is rejected. */
    const char *const *code_targets;

    /* Enumerate what the host has; report through `sink`.  Returns 0 when
     * the probe ran (even if it found no device), negative when it could
     * not (e.g. its runtime library is missing: say which in err). */
    int (*probe)(const lamina_host *host, const lamina_probe_sink *sink,
                 char *err, size_t err_size);

    /* Optional: the plugin's own extra checks on one device, after the
     * core's known-answer tests passed.  NULL when it has none. */
    int (*selftest)(const lamina_host *host, uint32_t device,
                    char *err, size_t err_size);

    const lamina_backend_iface *backend;
    /* end of 1.0 */
} lamina_plugin_desc;

/* Descriptor flags (1.1). */
enum lamina_plugin_flags {
    /* Its buffers are host memory and its devices the host's CPU: the
     * core hands it the mapped model file in place (buffer_wrap_host) and
     * plans it as the host.  A 1.0 plugin is taken as one when its devices
     * report type "cpu". */
    LAMINA_PLUGIN_F_HOST_MEMORY = 1u << 0
};

/* The entry symbol's type.  Returns a descriptor with static storage
 * duration, or NULL when the plugin cannot work with this host (it should
 * log why through host->log). */
typedef const lamina_plugin_desc *(*lamina_plugin_entry_fn)(const lamina_host *host);

/* Minimum descriptor size the 1.x core needs: everything up to `backend`. */
#define LAMINA_PLUGIN_DESC_MIN_SIZE \
    (offsetof(lamina_plugin_desc, backend) + sizeof(const lamina_backend_iface *))

#ifdef __cplusplus
}
#endif
#endif /* LAMINA_PLUGIN_H */
