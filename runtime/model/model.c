/*
 * model.c - hyperparameters and weight binding, driven by the architecture
 * table (arch.c).  Everything comes from GGUF metadata and the table row;
 * every tensor of the file must be one the row names, and every tensor the
 * row requires must be there, with its shape.
 */
#include "config.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/quant.h"
#include "lamina/plugin.h"
#include "arch.h"
#include "model.h"

#define ERR(...) do { if (err) snprintf(err, err_size, __VA_ARGS__); } while (0)

typedef struct lamina_arch_loader {
    lamina_model *m;
    const char *path;
    const char *arch;
    char *err;
    size_t err_size;
    uint8_t *bound;             /* per file tensor: bound to a slot */
} loader;

/* Read "<arch>.<suffix>" as u32. required: missing is an error. */
static int hp_u32(loader *L, const char *suffix, int required, uint32_t def, int32_t *out)
{
    char key[160];
    snprintf(key, sizeof key, "%s.%s", L->arch, suffix);
    uint32_t v = 0;
    char e[256];
    int rc = lamina_gguf_get_u32(L->m->gguf, key, &v, e, sizeof e);
    if (rc == LAMINA_ENOENT) {
        if (required) {
            snprintf(L->err, L->err_size, "%s: missing metadata key '%s'", L->path, key);
            return LAMINA_EFORMAT;
        }
        v = def;
    } else if (rc < 0) {
        snprintf(L->err, L->err_size, "%s: %s", L->path, e);
        return LAMINA_EFORMAT;
    }
    if (v > INT32_MAX) {
        snprintf(L->err, L->err_size, "%s: metadata key '%s' = %u is out of range", L->path, key, v);
        return LAMINA_ERANGE;
    }
    *out = (int32_t)v;
    return 0;
}

static int hp_f32(loader *L, const char *suffix, int required, float def, float *out)
{
    char key[160];
    snprintf(key, sizeof key, "%s.%s", L->arch, suffix);
    char e[256];
    int rc = lamina_gguf_get_f32(L->m->gguf, key, out, e, sizeof e);
    if (rc == LAMINA_ENOENT) {
        if (required) {
            snprintf(L->err, L->err_size, "%s: missing metadata key '%s'", L->path, key);
            return LAMINA_EFORMAT;
        }
        *out = def;
        return 0;
    }
    if (rc < 0) {
        snprintf(L->err, L->err_size, "%s: %s", L->path, e);
        return LAMINA_EFORMAT;
    }
    if (!isfinite(*out)) {
        snprintf(L->err, L->err_size, "%s: metadata key '%s' is not a finite number", L->path, key);
        return LAMINA_EFORMAT;
    }
    return 0;
}

/* The dimensions a slot's shape is made of. */
enum { D_1, D_E, D_HEAD, D_Q, D_K, D_V, D_QKV, D_O, D_F, D_2F, D_ROT2, D_VOCAB, D_X, D_FE, D_CLS, D_TT, D_CTX,
       D_FS, D_NHEAD };

typedef struct slot_def {
    const char *name;           /* after "blk.N." for layer slots */
    uint8_t ne0, ne1;           /* D_*; ne1 D_1: a vector */
    uint8_t f32;                /* must be F32 (norms, biases, rope factors) */
    uint8_t ne2;                /* D_X: one matrix per expert; 0: 2-D */
} slot_def;

/* In lamina_layer_slot order. */
static const slot_def layer_slots[LW_COUNT] = {
    [LW_ATTN_NORM]      = { "attn_norm.weight",           D_E,    D_1,   1 },
    [LW_Q]              = { "attn_q.weight",              D_E,    D_Q,   0 },
    [LW_K]              = { "attn_k.weight",              D_E,    D_K,   0 },
    [LW_V]              = { "attn_v.weight",              D_E,    D_V,   0 },
    [LW_QKV]            = { "attn_qkv.weight",            D_E,    D_QKV, 0 },
    [LW_BQ]             = { "attn_q.bias",                D_Q,    D_1,   1 },
    [LW_BK]             = { "attn_k.bias",                D_K,    D_1,   1 },
    [LW_BV]             = { "attn_v.bias",                D_V,    D_1,   1 },
    [LW_BQKV]           = { "attn_qkv.bias",              D_QKV,  D_1,   1 },
    [LW_O]              = { "attn_output.weight",         D_O,    D_E,   0 },
    [LW_BO]             = { "attn_output.bias",           D_E,    D_1,   1 },
    [LW_Q_NORM]         = { "attn_q_norm.weight",         D_HEAD, D_1,   1 },
    [LW_K_NORM]         = { "attn_k_norm.weight",         D_HEAD, D_1,   1 },
    [LW_POST_ATTN_NORM] = { "post_attention_norm.weight", D_E,    D_1,   1 },
    [LW_FFN_NORM]       = { "ffn_norm.weight",            D_E,    D_1,   1 },
    [LW_GATE]           = { "ffn_gate.weight",            D_E,    D_F,   0 },
    [LW_UP]             = { "ffn_up.weight",              D_E,    D_F,   0 },
    [LW_GATE_UP]        = { "ffn_up.weight",              D_E,    D_2F,  0 },
    [LW_DOWN]           = { "ffn_down.weight",            D_F,    D_E,   0 },
    [LW_POST_FFW_NORM]  = { "post_ffw_norm.weight",       D_E,    D_1,   1 },
    [LW_GATE_INP]       = { "ffn_gate_inp.weight",        D_E,    D_X,   0 },
    [LW_GATE_EXPS]      = { "ffn_gate_exps.weight",       D_E,    D_FE,  0, D_X },
    [LW_UP_EXPS]        = { "ffn_up_exps.weight",         D_E,    D_FE,  0, D_X },
    [LW_DOWN_EXPS]      = { "ffn_down_exps.weight",       D_FE,   D_E,   0, D_X },
    [LW_Q_NORM_ROW]     = { "attn_q_norm.weight",         D_Q,    D_1,   1 },
    [LW_K_NORM_ROW]     = { "attn_k_norm.weight",         D_K,    D_1,   1 },
    [LW_ATTN_OUT_NORM]  = { "attn_output_norm.weight",    D_E,    D_1,   1 },
    [LW_ATTN_OUT_NORM_B]= { "attn_output_norm.bias",      D_E,    D_1,   1 },
    [LW_BUP]            = { "ffn_up.bias",                D_F,    D_1,   1 },
    [LW_BDOWN]          = { "ffn_down.bias",              D_E,    D_1,   1 },
    [LW_LAYER_OUT_NORM] = { "layer_output_norm.weight",   D_E,    D_1,   1 },
    [LW_LAYER_OUT_NORM_B]={ "layer_output_norm.bias",     D_E,    D_1,   1 },
    [LW_GATE_INP_SHEXP] = { "ffn_gate_inp_shexp.weight",  D_E,    D_1,   0 },
    [LW_GATE_SHEXP]     = { "ffn_gate_shexp.weight",      D_E,    D_FS,  0 },
    [LW_UP_SHEXP]       = { "ffn_up_shexp.weight",        D_E,    D_FS,  0 },
    [LW_DOWN_SHEXP]     = { "ffn_down_shexp.weight",      D_FS,   D_E,   0 },
    [LW_ATTN_SINKS]     = { "attn_sinks.weight",          D_NHEAD, D_1,  1 },
    [LW_GATE_INP_B]     = { "ffn_gate_inp.bias",          D_X,    D_1,   1 },
    [LW_GATE_EXPS_B]    = { "ffn_gate_exps.bias",         D_FE,   D_X,   1 },
    [LW_UP_EXPS_B]      = { "ffn_up_exps.bias",           D_FE,   D_X,   1 },
    [LW_DOWN_EXPS_B]    = { "ffn_down_exps.bias",         D_E,    D_X,   1 },
};

static const slot_def model_slots[LG_COUNT] = {
    [LG_TOK_EMBD]    = { "token_embd.weight",         D_E,    D_VOCAB, 0 },
    [LG_OUTPUT_NORM] = { "output_norm.weight",        D_E,    D_1,     1 },
    [LG_OUTPUT]      = { "output.weight",             D_E,    D_VOCAB, 0 },
    [LG_ROPE_FREQS]  = { "rope_freqs.weight",         D_ROT2, D_1,     1 },
    [LG_ROPE_LONG]   = { "rope_factors_long.weight",  D_ROT2, D_1,     1 },
    [LG_ROPE_SHORT]  = { "rope_factors_short.weight", D_ROT2, D_1,     1 },
    [LG_CLS_OUT]     = { "cls.output.weight",         D_E,    D_CLS,   0 },
    [LG_CLS_OUT_B]   = { "cls.output.bias",           D_CLS,  D_1,     1 },
    [LG_CLS]         = { "cls.weight",                D_E,    D_E,     0 },
    [LG_CLS_B]       = { "cls.bias",                  D_E,    D_1,     1 },
    [LG_TOKEN_TYPES] = { "token_types.weight",        D_E,    D_TT,    0 },
    [LG_POS_EMBD]    = { "position_embd.weight",      D_E,    D_CTX,   0 },
    [LG_TOK_NORM]    = { "token_embd_norm.weight",    D_E,    D_1,     1 },
    [LG_TOK_NORM_B]  = { "token_embd_norm.bias",      D_E,    D_1,     1 },
};

/* A fused slot and the separate ones it stands for. */
static const struct { int fused; uint64_t parts; } fusions[] = {
    { LW_QKV,  LW(LW_Q) | LW(LW_K) | LW(LW_V) },
    { LW_BQKV, LW(LW_BQ) | LW(LW_BK) | LW(LW_BV) },
};

static int64_t dim(const lamina_hparams *hp, int d)
{
    const int64_t Dq = (int64_t)hp->n_head * hp->head_dim;
    const int64_t Dk = (int64_t)hp->n_head_kv * hp->head_dim;
    const int64_t Dv = (int64_t)hp->n_head_kv * hp->head_dim_v;
    switch (d) {
    case D_E:     return hp->n_embd;
    case D_HEAD:  return hp->head_dim;
    case D_Q:     return Dq;
    case D_K:     return Dk;
    case D_V:     return Dv;
    case D_QKV:   return Dq + Dk + Dv;
    case D_O:     return (int64_t)hp->n_head * hp->head_dim_v;
    case D_F:     return hp->n_ff;
    case D_2F:    return 2 * (int64_t)hp->n_ff;
    case D_ROT2:  return hp->n_rot / 2;
    case D_VOCAB: return hp->n_vocab;
    case D_X:     return hp->n_expert;
    case D_FE:    return hp->n_ff_exp;
    case D_NHEAD: return hp->n_head;
    case D_CLS:   return hp->n_cls_out;
    case D_TT:    return hp->n_token_types;
    case D_CTX:   return hp->n_ctx_train;
    case D_FS:    return hp->n_ff_shexp;
    default:      return 1;
    }
}

/* Find a tensor by name; check its type is known, its shape is [ne0, ne1]
 * (ne1 = 1: a vector of ne0) and, for norms and biases, that it is F32. */
static int bind(loader *L, const lamina_gguf_tensor **out, const char *name,
                const slot_def *d, int required)
{
    const lamina_hparams *hp = &L->m->hp;
    const lamina_gguf_tensor *t = lamina_gguf_tensor_find(L->m->gguf, name);
    const int64_t ne0 = dim(hp, d->ne0), ne1 = dim(hp, d->ne1), ne2 = d->ne2 ? dim(hp, d->ne2) : 1;
    *out = NULL;
    if (!t) {
        if (!required) return 0;
        snprintf(L->err, L->err_size, "%s: missing tensor '%s' (architecture %s)", L->path, name, L->arch);
        return LAMINA_EFORMAT;
    }
    const lamina_type_traits *tr = lamina_type_get(t->type);
    if (!tr || tr->block_size == 0) {
        snprintf(L->err, L->err_size, "%s: tensor '%s' has unsupported type %u", L->path, name, t->type);
        return LAMINA_ENOTSUP;
    }
    uint32_t want_dims = d->ne2 ? 3 : d->ne1 == D_1 ? 1 : 2;
    if (t->ne[0] != ne0 || t->ne[1] != ne1 || t->ne[2] != ne2 || t->ne[3] != 1 ||
        (t->n_dims != want_dims && !(want_dims == 2 && t->n_dims == 1 && ne1 == 1))) {
        snprintf(L->err, L->err_size,
                 "%s: tensor '%s' has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld, %lld]",
                 L->path, name, (long long)t->ne[0], (long long)t->ne[1],
                 (long long)t->ne[2], (long long)t->ne[3], (long long)ne0, (long long)ne1, (long long)ne2);
        return LAMINA_EFORMAT;
    }
    if (d->f32 && t->type != LAMINA_TYPE_F32) {
        snprintf(L->err, L->err_size, "%s: tensor '%s' must be f32 (norm weights, biases and rope "
                 "factors), not %s", L->path, name, tr->name);
        return LAMINA_ENOTSUP;
    }
    if (!tr->is_quantized && t->type != LAMINA_TYPE_F32 && t->type != LAMINA_TYPE_F16 &&
        t->type != LAMINA_TYPE_BF16) {
        snprintf(L->err, L->err_size, "%s: tensor '%s' has type %s, which cannot hold weights",
                 L->path, name, tr->name);
        return LAMINA_ENOTSUP;
    }
    L->bound[lamina_gguf_tensor_index(L->m->gguf, t)] = 1;       /* found in this file */
    *out = t;
    return 0;
}

static int key_u32(loader *L, const char *suffix, int required, uint32_t def, int32_t *out)
{
    return hp_u32(L, suffix, required, def, out);
}

int lamina_arch_key_f32(lamina_arch_loader *L, const char *suffix, float def, float *out)
{
    return hp_f32(L, suffix, 0, def, out);
}

int lamina_arch_key_f32_required(lamina_arch_loader *L, const char *suffix, float *out)
{
    return hp_f32(L, suffix, 1, 0, out);
}

int lamina_arch_error(lamina_arch_loader *L, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(L->err, L->err_size, "%s: %s", L->path, msg);
    return LAMINA_EFORMAT;
}

int lamina_arch_key_u32(lamina_arch_loader *L, const char *suffix, uint32_t def, int32_t *out)
{
    return hp_u32(L, suffix, 0, def, out);
}

/* Which layers have a sliding window: <arch>.attention.sliding_window_pattern
 * as one bool per layer or as a count n (of every n layers the last is
 * global), else the row's count. */
static int swa_layers(loader *L, const lamina_arch_info *a, uint8_t *is_swa)
{
    lamina_hparams *hp = &L->m->hp;
    char key[160];
    snprintf(key, sizeof key, "%s.attention.sliding_window_pattern", L->arch);
    uint32_t et; uint64_t n; const void *d;
    if (lamina_gguf_get_arr(L->m->gguf, key, &et, &n, &d, NULL, 0) == 0) {
        if (et != LAMINA_GGUF_BOOL || n != (uint64_t)hp->n_layer) {
            snprintf(L->err, L->err_size, "%s: metadata key '%s' is an array of %llu, not one bool per "
                     "layer (%d)", L->path, key, (unsigned long long)n, hp->n_layer);
            return LAMINA_EFORMAT;
        }
        for (int il = 0; il < hp->n_layer; il++) is_swa[il] = ((const uint8_t *)d)[il] != 0;
        return 0;
    }
    int32_t pattern = 0;
    int rc = hp_u32(L, "attention.sliding_window_pattern", 0, (uint32_t)a->swa_pattern, &pattern);
    if (rc < 0) return rc;
    for (int il = 0; il < hp->n_layer; il++)
        is_swa[il] = pattern == 0 || (il % pattern) < pattern - 1;
    return 0;
}

static int read_hparams(loader *L, const lamina_arch_info *a)
{
    lamina_model *m = L->m;
    lamina_hparams *hp = &m->hp;
    int rc;

    if ((rc = key_u32(L, "context_length", 1, 0, &hp->n_ctx_train)) < 0) return rc;
    if ((rc = key_u32(L, "embedding_length", 1, 0, &hp->n_embd)) < 0) return rc;
    if ((rc = key_u32(L, "block_count", 1, 0, &hp->n_layer)) < 0) return rc;
    if ((rc = key_u32(L, "feed_forward_length", 1, 0, &hp->n_ff)) < 0) return rc;
    if ((rc = key_u32(L, "attention.head_count", 1, 0, &hp->n_head)) < 0) return rc;
    if (hp->n_embd <= 0 || hp->n_layer <= 0 || hp->n_head <= 0 || hp->n_ff <= 0) {
        snprintf(L->err, L->err_size, "%s: metadata gives a zero dimension (embedding %d, blocks %d, heads %d, ffn %d)",
                 L->path, hp->n_embd, hp->n_layer, hp->n_head, hp->n_ff);
        return LAMINA_EFORMAT;
    }
    if (hp->n_layer > LAMINA_MAX_LAYERS) {
        snprintf(L->err, L->err_size, "%s: %s.block_count = %d exceeds the supported %d",
                 L->path, L->arch, hp->n_layer, LAMINA_MAX_LAYERS);
        return LAMINA_ENOTSUP;
    }
    if ((rc = key_u32(L, "attention.head_count_kv", 0, (uint32_t)hp->n_head, &hp->n_head_kv)) < 0) return rc;
    if (hp->n_head_kv <= 0 || hp->n_head % hp->n_head_kv != 0) {
        snprintf(L->err, L->err_size, "%s: %s.attention.head_count_kv = %d does not divide head_count %d",
                 L->path, L->arch, hp->n_head_kv, hp->n_head);
        return LAMINA_EFORMAT;
    }
    int32_t def_hd = hp->n_embd / hp->n_head;
    if ((rc = key_u32(L, "attention.key_length", 0, (uint32_t)def_hd, &hp->head_dim)) < 0) return rc;
    if ((rc = key_u32(L, "attention.value_length", 0, (uint32_t)hp->head_dim, &hp->head_dim_v)) < 0) return rc;
    if (hp->head_dim <= 0 || hp->head_dim % 2 || hp->head_dim_v <= 0) {
        snprintf(L->err, L->err_size, "%s: bad head size %d/%d", L->path, hp->head_dim, hp->head_dim_v);
        return LAMINA_EFORMAT;
    }
    if ((rc = key_u32(L, "rope.dimension_count", 0, (uint32_t)hp->head_dim, &hp->n_rot)) < 0) return rc;
    if (hp->n_rot <= 0 || hp->n_rot > hp->head_dim || hp->n_rot % 2) {
        snprintf(L->err, L->err_size, "%s: %s.rope.dimension_count = %d is not an even number <= head size %d",
                 L->path, L->arch, hp->n_rot, hp->head_dim);
        return LAMINA_EFORMAT;
    }
    if (a->flags & LAMINA_ARCH_F_ENCODER) {
        /* an encoder: LayerNorm, attention both ways, embeddings only */
        int causal = 0;
        char ck[160], e2[256];
        snprintf(ck, sizeof ck, "%s.attention.causal", L->arch);
        rc = lamina_gguf_get_bool(m->gguf, ck, &causal, e2, sizeof e2);
        if (rc < 0 && rc != LAMINA_ENOENT) {
            snprintf(L->err, L->err_size, "%s: %s", L->path, e2);
            return LAMINA_EFORMAT;
        }
        if (rc == 0 && causal) {
            snprintf(L->err, L->err_size, "%s: %s = true: a causal %s is not supported (its encoder "
                     "attends both ways)", L->path, ck, L->arch);
            return LAMINA_ENOTSUP;
        }
        hp->causal = 0;
        if ((rc = hp_f32(L, "attention.layer_norm_epsilon", 1, 0, &hp->norm_eps)) < 0) return rc;
        hp->eps = hp->norm_eps;
    } else {
        hp->causal = 1;
        if ((rc = hp_f32(L, "attention.layer_norm_rms_epsilon", 1, 0, &hp->eps)) < 0) return rc;
    }
    if ((rc = hp_f32(L, "rope.freq_base", 0, 10000.0f, &hp->rope_base)) < 0) return rc;
    if ((rc = key_u32(L, "rope.scaling.original_context_length", 0, (uint32_t)hp->n_ctx_train,
                      &hp->n_ctx_orig)) < 0) return rc;

    /* RoPE scaling: a linear position scale 1/factor; LongRoPE's and Llama
     * 3's frequency divisors come as tensors (lamina_model_rope_factors);
     * YaRN mixes the scaled and unscaled frequencies by a ramp over the
     * rotated dims (betas 32 and 1 as llama.cpp, which reads no key for
     * them) and scales q and k by attn_factor (1 + 0.1 ln factor), in the
     * ROPE node itself (ABI 1.3). */
    float factor = 0, attn_factor = 1;
    if ((rc = hp_f32(L, "rope.scaling.factor", 0, 0.0f, &factor)) < 0) return rc;
    if ((rc = hp_f32(L, "rope.scaling.attn_factor", 0, 1.0f, &attn_factor)) < 0) return rc;
    hp->rope_scale = factor > 0 ? 1.0f / factor : 1.0f;
    {
        char key[160];
        const char *s; size_t len;
        snprintf(key, sizeof key, "%s.rope.scaling.type", L->arch);
        if (lamina_gguf_get_str(m->gguf, key, &s, &len, NULL, 0) == 0) {
            int known = (len == 6 && !memcmp(s, "linear", 6)) || (len == 4 && !memcmp(s, "none", 4)) ||
                        (len == 8 && !memcmp(s, "longrope", 8)) || (len == 4 && !memcmp(s, "yarn", 4));
            if (!known) {
                snprintf(L->err, L->err_size, "%s: %s = '%.*s' is not supported (linear, yarn, longrope "
                         "and none are)", L->path, key, (int)len, s);
                return LAMINA_ENOTSUP;
            }
            if (len == 4 && !memcmp(s, "none", 4)) hp->rope_scale = 1.0f;
            if (len == 4 && !memcmp(s, "yarn", 4) && hp->rope_scale < 1.0f) {
                float lm = 0;
                if ((rc = hp_f32(L, "rope.scaling.yarn_log_multiplier", 0, 0.0f, &lm)) < 0) return rc;
                if (lm != 0.0f) {
                    snprintf(L->err, L->err_size, "%s: %s.rope.scaling.yarn_log_multiplier = %g: YaRN with a "
                             "log multiplier (DeepSeek's) is not supported", L->path, L->arch, (double)lm);
                    return LAMINA_ENOTSUP;
                }
                if (hp->n_ctx_orig <= 0) {
                    snprintf(L->err, L->err_size, "%s: YaRN needs %s.rope.scaling.original_context_length "
                             "or a context_length", L->path, L->arch);
                    return LAMINA_EFORMAT;
                }
                hp->rope_yarn = 1;
                hp->yarn_beta_fast = 32.0f;
                hp->yarn_beta_slow = 1.0f;
            }
        }
    }

    /* vocabulary size: the token list, else <arch>.vocab_size */
    uint32_t et; uint64_t nv = 0; const void *d;
    if (lamina_gguf_get_arr(m->gguf, "tokenizer.ggml.tokens", &et, &nv, &d, NULL, 0) == 0 && nv > 0) {
        if (nv > INT32_MAX) { snprintf(L->err, L->err_size, "%s: vocabulary too large", L->path); return LAMINA_EFORMAT; }
        hp->n_vocab = (int32_t)nv;
    } else {
        int32_t v = 0;
        if ((rc = key_u32(L, "vocab_size", 0, 0, &v)) < 0) return rc;
        hp->n_vocab = v;
    }

    /* embeddings: how the file says to pool (absent in decoder models) */
    if ((rc = key_u32(L, "pooling_type", 0, 0x7fffffffu, &hp->pooling)) < 0) return rc;
    if (hp->pooling == 0x7fffffff) hp->pooling = LAMINA_POOL_UNSPECIFIED;
    else if (hp->pooling > LAMINA_POOL_RANK) {
        snprintf(L->err, L->err_size, "%s: metadata key '%s.pooling_type' = %d is not a pooling type (0..4)",
                 L->path, L->arch, hp->pooling);
        return LAMINA_EFORMAT;
    }

    /* token types (bert): as many as token_types.weight has rows */
    const lamina_gguf_tensor *tt = lamina_gguf_tensor_find(L->m->gguf, "token_types.weight");
    hp->n_token_types = tt ? (int32_t)(tt->n_dims >= 2 ? tt->ne[1] : 1) : 0;
    if (tt && (hp->n_token_types < 1 || hp->n_token_types > 4096)) {
        snprintf(L->err, L->err_size, "%s: token_types.weight has %d rows (1..4096)", L->path, hp->n_token_types);
        return LAMINA_EFORMAT;
    }
    /* the tokenizer's count, where the file gives one, is those rows (as
     * llama.cpp requires) */
    uint32_t ttc = 0;
    char tte[256];
    rc = lamina_gguf_get_u32(L->m->gguf, "tokenizer.ggml.token_type_count", &ttc, tte, sizeof tte);
    if (rc < 0 && rc != LAMINA_ENOENT) {
        snprintf(L->err, L->err_size, "%s: %s", L->path, tte);
        return LAMINA_EFORMAT;
    }
    if (tt && rc == 0 && (int64_t)ttc != hp->n_token_types) {
        snprintf(L->err, L->err_size, "%s: token_types.weight has %d rows but tokenizer.ggml.token_type_count is %u",
                 L->path, hp->n_token_types, ttc);
        return LAMINA_EFORMAT;
    }

    /* a classifier head: its outputs are the labels (classifier.output_labels) */
    const lamina_gguf_tensor *co = lamina_gguf_tensor_find(L->m->gguf, "cls.output.weight");
    hp->n_cls_out = co ? (int32_t)(co->n_dims >= 2 ? co->ne[1] : 1) : 0;
    char lk[96];
    uint32_t lt;
    uint64_t nl;
    const void *ld;
    snprintf(lk, sizeof lk, "%s.classifier.output_labels", L->arch);
    if (lamina_gguf_get_arr(L->m->gguf, lk, &lt, &nl, &ld, NULL, 0) == 0 && co && nl != (uint64_t)hp->n_cls_out) {
        snprintf(L->err, L->err_size, "%s: '%s' has %llu labels but cls.output.weight %d rows", L->path, lk,
                 (unsigned long long)nl, hp->n_cls_out);
        return LAMINA_EFORMAT;
    }
    if (co && (hp->n_cls_out < 1 || hp->n_cls_out > 4096)) {
        snprintf(L->err, L->err_size, "%s: cls.output.weight has %d rows (1..4096)", L->path, hp->n_cls_out);
        return LAMINA_EFORMAT;
    }

    /* the row's design */
    hp->rope_mode = a->rope_mode;
    hp->act = a->act;
    hp->rope_attn_factor = attn_factor;
    hp->attn_scale = 1.0f / sqrtf((float)hp->head_dim);
    hp->embd_scale = (a->flags & LAMINA_ARCH_F_EMBD_SCALE) ? sqrtf((float)hp->n_embd) : 1.0f;
    hp->residual_scale = 1.0f;
    hp->logit_scale = 1.0f;
    if (a->flags & LAMINA_ARCH_F_ATTN_SOFTCAP)
        if ((rc = hp_f32(L, "attn_logit_softcapping", 0, a->attn_softcap, &hp->attn_softcap)) < 0) return rc;
    if (a->flags & LAMINA_ARCH_F_FINAL_SOFTCAP)
        if ((rc = hp_f32(L, "final_logit_softcapping", 0, a->final_softcap, &hp->final_softcap)) < 0) return rc;
    if (hp->attn_softcap < 0 || hp->final_softcap < 0) {
        snprintf(L->err, L->err_size, "%s: a negative logit soft-cap", L->path);
        return LAMINA_EFORMAT;
    }

    /* mixture of experts */
    if (a->flags & LAMINA_ARCH_F_MOE) {
        if ((rc = key_u32(L, "expert_count", 1, 0, &hp->n_expert)) < 0) return rc;
        if ((rc = key_u32(L, "expert_used_count", 1, 0, &hp->n_expert_used)) < 0) return rc;
        if ((rc = key_u32(L, "expert_feed_forward_length", 1, 0, &hp->n_ff_exp)) < 0) return rc;
        if (hp->n_expert < 1 || hp->n_expert_used < 1 || hp->n_expert_used > hp->n_expert || hp->n_ff_exp < 1) {
            snprintf(L->err, L->err_size, "%s: %s.expert_used_count = %d, expert_count = %d, "
                     "expert_feed_forward_length = %d: need 1 <= used <= count and a width", L->path, L->arch,
                     hp->n_expert_used, hp->n_expert, hp->n_ff_exp);
            return LAMINA_EFORMAT;
        }
        /* a shared expert (qwen2moe): its width; absent or 0, the dense
         * FFN's (as llama.cpp) */
        if ((a->layer_required | a->layer_optional) & LW(LW_UP_SHEXP)) {
            if ((rc = key_u32(L, "expert_shared_feed_forward_length", 0, 0, &hp->n_ff_shexp)) < 0) return rc;
            if (hp->n_ff_shexp == 0) hp->n_ff_shexp = hp->n_ff;
        }
    }

    /* per layer: window and rope */
    uint8_t is_swa[LAMINA_MAX_LAYERS] = { 0 };
    float base_swa = hp->rope_base;
    if (a->swa_pattern > 0) {
        if ((rc = key_u32(L, "attention.sliding_window", 0, (uint32_t)a->swa_window, &hp->n_swa)) < 0) return rc;
        if (hp->n_swa > 0 && (rc = swa_layers(L, a, is_swa)) < 0) return rc;
        if ((rc = hp_f32(L, "rope.freq_base_swa", 0, a->rope_base_swa > 0 ? a->rope_base_swa : hp->rope_base,
                         &base_swa)) < 0) return rc;
    }
    for (int il = 0; il < hp->n_layer; il++) {
        lamina_layer_hp *l = &hp->layer[il];
        int swa = is_swa[il] && hp->n_swa > 0;
        l->window = swa ? hp->n_swa : 0;
        l->rope_base = swa ? base_swa : hp->rope_base;
        l->rope_scale = swa && !a->rope_scale_swa ? 1.0f : hp->rope_scale;
    }
    if (a->hparams && (rc = a->hparams(L, hp)) < 0) return rc;
    return 0;
}

/* One classifier matrix [n rows of E] (and its F32 bias [n], or NULL):
 * small (labels x n_embd, or n_embd x n_embd for a pooler), kept as
 * floats in *w and *b (malloc'd; the model frees them). */
static int load_classifier(loader *L, const lamina_gguf_tensor *t, const lamina_gguf_tensor *tb, int64_t n,
                           float **w, float **b)
{
    const int64_t E = L->m->hp.n_embd;
    const lamina_type_traits *tr = lamina_type_get(t->type);
    *w = malloc((size_t)(E * n) * sizeof **w);
    if (!*w) { snprintf(L->err, L->err_size, "out of memory"); return LAMINA_ENOMEM; }
    size_t row = (size_t)(E / tr->block_size) * tr->type_size;
    for (int64_t r = 0; r < n; r++)
        if (lamina_dequantize_row(t->type, (const char *)t->data + (size_t)r * row, *w + r * E, E) < 0) {
            snprintf(L->err, L->err_size, "%s: tensor '%s': type %s cannot be read as floats", L->path, t->name,
                     tr->name);
            return LAMINA_ENOTSUP;
        }
    if (tb) {
        *b = malloc((size_t)n * sizeof **b);
        if (!*b) { snprintf(L->err, L->err_size, "out of memory"); return LAMINA_ENOMEM; }
        memcpy(*b, tb->data, (size_t)n * sizeof **b);
    }
    return 0;
}

int lamina_model_embed_pooling(const lamina_model *m, const char *name, char *err, size_t es)
{
    const int encoder = !m->hp.causal;
    switch (m->hp.pooling) {
    case LAMINA_POOL_UNSPECIFIED:
        if (!encoder) return LAMINA_POOL_LAST;
        snprintf(err, es, "model '%s' is an encoder whose file names no pooling (%s.pooling_type): it gives one "
                 "vector per token, not one per input", name, m->hp.arch_name);
        return -1;
    case LAMINA_POOL_LAST:
    case LAMINA_POOL_MEAN:
        return m->hp.pooling;
    case LAMINA_POOL_CLS:
        if (encoder) return LAMINA_POOL_CLS;
        break;
    case LAMINA_POOL_NONE:
        snprintf(err, es, "model '%s' has pooling type 'none' (%s.pooling_type = 0): it gives one vector per "
                 "token, not one per input", name, m->hp.arch_name);
        return -1;
    case LAMINA_POOL_RANK:
        snprintf(err, es, "model '%s' is a reranker (%s.pooling_type = 4): it scores pairs of texts and has no "
                 "embedding vector", name, m->hp.arch_name);
        return -1;
    default:
        snprintf(err, es, "model '%s' has an unknown pooling type %d (%s.pooling_type)", name, (int)m->hp.pooling,
                 m->hp.arch_name);
        return -1;
    }
    snprintf(err, es, "model '%s' asks for CLS pooling (%s.pooling_type = 2), which lamina does only for "
             "encoders (bert), not for its causal architectures", name, m->hp.arch_name);
    return -1;
}

int32_t lamina_model_embed_ctx(const lamina_model *m, int32_t n_ctx, int32_t n_batch)
{
    int32_t n = n_ctx;
    if (!m->hp.causal) {
        if (n_batch < n) n = n_batch;
        if (m->pos_embd && m->hp.n_ctx_train < n) n = m->hp.n_ctx_train;
    }
    return n;
}

int lamina_model_rank_pooling(const lamina_model *m)
{
    return m->hp.causal ? LAMINA_POOL_LAST : LAMINA_POOL_CLS;
}

int lamina_model_classify(const lamina_model *m, const float *h, float *out)
{
    if (!m->cls_out) return LAMINA_ENOTSUP;
    const int64_t E = m->hp.n_embd, n = m->hp.n_cls_out;
    float *pooled = NULL;
    if (m->cls) {                       /* the pooler: tanh(cls . h + cls.bias) */
        if (!(pooled = malloc((size_t)E * sizeof *pooled))) return LAMINA_ENOMEM;
        for (int64_t r = 0; r < E; r++) {
            double acc = m->cls_b ? m->cls_b[r] : 0;
            for (int64_t i = 0; i < E; i++) acc += (double)m->cls[r * E + i] * h[i];
            pooled[r] = (float)tanh(acc);
        }
        h = pooled;
    }
    double mx = -INFINITY;
    for (int64_t r = 0; r < n; r++) {   /* the head: cls.output . h + cls.output.bias */
        double acc = m->cls_out_b ? m->cls_out_b[r] : 0;
        for (int64_t i = 0; i < E; i++) acc += (double)m->cls_out[r * E + i] * h[i];
        out[r] = (float)acc;
        if (acc > mx) mx = acc;
    }
    free(pooled);
    if (m->arch->flags & LAMINA_ARCH_F_RANK_SOFTMAX) {
        double sum = 0;
        for (int64_t r = 0; r < n; r++) sum += exp(out[r] - mx);
        for (int64_t r = 0; r < n; r++) out[r] = (float)(exp(out[r] - mx) / sum);
    }
    return 0;
}

static int bind_weights(loader *L, const lamina_arch_info *a)
{
    lamina_model *m = L->m;
    const lamina_hparams *hp = &m->hp;
    const int64_t nt = lamina_gguf_n_tensors(m->gguf);
    const lamina_gguf_tensor *g[LG_COUNT] = { 0 };
    int rc;

    L->bound = calloc((size_t)nt + 1, 1);
    if (!L->bound) { snprintf(L->err, L->err_size, "out of memory"); return LAMINA_ENOMEM; }
    /* the classifier: head (cls.output), the pooler before it (cls); a
     * bias without its matrix, or a pooler without a head, is an error */
    static const struct { int part, whole; } cls_pairs[] = {
        { LG_CLS_OUT_B, LG_CLS_OUT }, { LG_CLS_B, LG_CLS }, { LG_CLS, LG_CLS_OUT },
    };
    for (size_t i = 0; i < sizeof cls_pairs / sizeof cls_pairs[0]; i++) {
        const char *part = model_slots[cls_pairs[i].part].name, *whole = model_slots[cls_pairs[i].whole].name;
        if ((a->model_optional & LG(cls_pairs[i].part)) && lamina_gguf_tensor_find(m->gguf, part) &&
            !lamina_gguf_tensor_find(m->gguf, whole)) {
            snprintf(L->err, L->err_size, "%s: tensor '%s' without '%s'%s", L->path, part, whole,
                     cls_pairs[i].part == LG_CLS ? " (the classifier's pooler feeds its head)" : "");
            return LAMINA_EFORMAT;
        }
    }
    for (int s = 0; s < LG_COUNT; s++) {
        if (!((a->model_required | a->model_optional) & LG(s))) continue;
        if ((rc = bind(L, &g[s], model_slots[s].name, &model_slots[s], (a->model_required & LG(s)) != 0)) < 0)
            return rc;
    }
    m->tok_embd = g[LG_TOK_EMBD];
    m->output_norm = g[LG_OUTPUT_NORM];
    m->output = g[LG_OUTPUT] ? g[LG_OUTPUT] : m->tok_embd;          /* tied */
    m->rope_freqs = g[LG_ROPE_FREQS];
    m->rope_long = g[LG_ROPE_LONG];
    m->rope_short = g[LG_ROPE_SHORT];
    m->type_embd = g[LG_TOKEN_TYPES];
    m->pos_embd = g[LG_POS_EMBD];
    m->tok_norm = g[LG_TOK_NORM];
    m->tok_norm_b = g[LG_TOK_NORM_B];
    if (a->flags & LAMINA_ARCH_F_ENCODER) m->output = NULL;          /* no head: embeddings only */
    if (g[LG_CLS_OUT] &&
        (rc = load_classifier(L, g[LG_CLS_OUT], g[LG_CLS_OUT_B], hp->n_cls_out, &m->cls_out, &m->cls_out_b)) < 0)
        return rc;
    if (g[LG_CLS] && (rc = load_classifier(L, g[LG_CLS], g[LG_CLS_B], hp->n_embd, &m->cls, &m->cls_b)) < 0)
        return rc;
    if (!m->rope_long != !m->rope_short) {
        snprintf(L->err, L->err_size, "%s: tensor '%s' without '%s' (LongRoPE needs both)", L->path,
                 m->rope_long ? "rope_factors_long.weight" : "rope_factors_short.weight",
                 m->rope_long ? "rope_factors_short.weight" : "rope_factors_long.weight");
        return LAMINA_EFORMAT;
    }

    m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->layers) { snprintf(L->err, L->err_size, "out of memory"); return LAMINA_ENOMEM; }
    for (int il = 0; il < hp->n_layer; il++) {
        lamina_layer_weights *w = &m->layers[il];
        uint64_t need = a->layer_required;
        char name[128];
        /* fused tensors first: present, they stand for their parts */
        for (size_t f = 0; f < sizeof fusions / sizeof fusions[0]; f++) {
            int s = fusions[f].fused;
            if (!(a->layer_optional & LW(s))) continue;
            snprintf(name, sizeof name, "blk.%d.%s", il, layer_slots[s].name);
            if ((rc = bind(L, &w->slot[s], name, &layer_slots[s], 0)) < 0) return rc;
            if (w->slot[s]) need &= ~fusions[f].parts;
        }
        for (int s = 0; s < LW_COUNT; s++) {
            if (w->slot[s]) continue;
            uint64_t allowed = a->layer_required | a->layer_optional;
            for (size_t f = 0; f < sizeof fusions / sizeof fusions[0]; f++)
                if (w->slot[fusions[f].fused]) allowed &= ~fusions[f].parts;
            if (!(allowed & LW(s))) continue;
            snprintf(name, sizeof name, "blk.%d.%s", il, layer_slots[s].name);
            if ((rc = bind(L, &w->slot[s], name, &layer_slots[s], (need & LW(s)) != 0)) < 0) return rc;
        }
    }

    /* a tensor no slot of this architecture takes is an error, not noise */
    for (int64_t i = 0; i < nt; i++) {
        if (L->bound[i]) continue;
        snprintf(L->err, L->err_size, "%s: tensor '%s' is not part of architecture '%s' (a newer "
                 "variant of it, or a different architecture under its name)", L->path,
                 lamina_gguf_tensor_at(m->gguf, i)->name, L->arch);
        return LAMINA_ENOTSUP;
    }
    for (int64_t i = 0; i < nt; i++)
        m->weight_bytes += lamina_gguf_tensor_at(m->gguf, i)->size;
    return 0;
}

int lamina_model_load(const char *path, lamina_model **out, char *err, size_t err_size)
{
    char e[512] = "";
    lamina_model *m = calloc(1, sizeof *m);
    if (!m) { ERR("out of memory"); return LAMINA_ENOMEM; }
    int rc = lamina_gguf_open(path, &m->gguf, e, sizeof e);
    if (rc < 0) { ERR("%s", e); free(m); return rc; }

    loader L = { .m = m, .path = path, .err = err ? err : e, .err_size = err ? err_size : sizeof e };
    const char *s; size_t len;
    rc = lamina_gguf_get_str(m->gguf, "general.architecture", &s, &len, e, sizeof e);
    if (rc < 0) {
        ERR("%s: missing metadata key 'general.architecture'", path);
        rc = LAMINA_EFORMAT;
        goto fail;
    }
    if (len >= sizeof m->hp.arch_name) len = sizeof m->hp.arch_name - 1;
    memcpy(m->hp.arch_name, s, len);
    m->hp.arch_name[len] = 0;
    m->arch = lamina_arch_find(m->hp.arch_name);
    if (!m->arch) {
        char known[256];
        lamina_arch_list(known, sizeof known);
        ERR("%s: unknown architecture '%s' (supported: %s)", path, m->hp.arch_name, known);
        rc = LAMINA_ENOTSUP;
        goto fail;
    }
    L.arch = m->hp.arch_name;
    if (lamina_gguf_get_str(m->gguf, "general.name", &s, &len, NULL, 0) == 0) {
        if (len >= sizeof m->hp.name) len = sizeof m->hp.name - 1;
        memcpy(m->hp.name, s, len);
        m->hp.name[len] = 0;
    }
    if ((rc = read_hparams(&L, m->arch)) < 0) goto fail;
    if (m->hp.n_vocab <= 0) {
        ERR("%s: no vocabulary: 'tokenizer.ggml.tokens' is missing or empty", path);
        rc = LAMINA_EFORMAT;
        goto fail;
    }
    rc = bind_weights(&L, m->arch);
    free(L.bound);
    if (rc < 0) goto fail;
    *out = m;
    return 0;
fail:
    lamina_model_free(m);
    return rc;
}

void lamina_model_free(lamina_model *m)
{
    if (!m) return;
    free(m->layers);
    free(m->cls_out);
    free(m->cls_out_b);
    free(m->cls);
    free(m->cls_b);
    lamina_gguf_close(m->gguf);
    free(m);
}

const lamina_gguf_tensor *lamina_model_rope_factors(const lamina_model *m, int32_t n_ctx)
{
    if (m->rope_freqs) return m->rope_freqs;
    if (m->rope_long && n_ctx > m->hp.n_ctx_orig) return m->rope_long;
    return m->rope_short;
}

static uint64_t tsize(const lamina_gguf_tensor *t) { return t ? t->size : 0; }

uint64_t lamina_model_layer_bytes(const lamina_model *m, int il)
{
    if (il < 0) return tsize(m->tok_embd) + tsize(m->type_embd) + tsize(m->pos_embd) + tsize(m->tok_norm) +
                       tsize(m->tok_norm_b);
    if (il >= m->hp.n_layer)
        return tsize(m->output_norm) + tsize(m->output);
    uint64_t n = 0;
    for (int s = 0; s < LW_COUNT; s++) n += tsize(m->layers[il].slot[s]);
    return n;
}

/* One row of a [E, rows] table (GET_ROWS reads one per token). */
static uint64_t row_bytes(const lamina_gguf_tensor *t)
{
    if (!t) return 0;
    uint64_t rows = (uint64_t)(t->ne[1] * t->ne[2] * t->ne[3]);
    return rows ? t->size / rows : t->size;
}

uint64_t lamina_model_token_bytes(const lamina_model *m)
{
    uint64_t n = tsize(m->output_norm) + tsize(m->output) + tsize(m->tok_norm) + tsize(m->tok_norm_b) +
                 row_bytes(m->type_embd) + row_bytes(m->pos_embd) + tsize(m->rope_freqs) +
                 (m->output == m->tok_embd ? 0 : row_bytes(m->tok_embd));
    const int used = m->hp.n_expert_used, all = m->hp.n_expert;
    for (int il = 0; il < m->hp.n_layer; il++)
        for (int s = 0; s < LW_COUNT; s++) {
            uint64_t b = tsize(m->layers[il].slot[s]);
            int expert = s == LW_GATE_EXPS || s == LW_UP_EXPS || s == LW_DOWN_EXPS || s == LW_GATE_EXPS_B ||
                         s == LW_UP_EXPS_B || s == LW_DOWN_EXPS_B;
            n += expert && all > 0 && used > 0 && used < all ? b / (uint64_t)all * (uint64_t)used : b;
        }
    return n;
}
