/*
 * model.c - hyperparameters and weight binding for the supported
 * architectures.  Everything comes from GGUF metadata; the only per-family
 * knowledge here is what each architecture's published design fixes and
 * its files do not record (Gemma 3's window pattern, its local RoPE base,
 * its embedding scale).
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/quant.h"
#include "model.h"

#define ERR(...) do { if (err) snprintf(err, err_size, __VA_ARGS__); } while (0)

typedef struct loader {
    lamina_model *m;
    const char *path;
    const char *arch;
    char *err;
    size_t err_size;
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

/* Find a tensor and check its type is known and its shape is [ne0, ne1]
 * (ne1 = 0: a vector of ne0). */
static int bind(loader *L, const lamina_gguf_tensor **out, const char *name,
                int64_t ne0, int64_t ne1, int required)
{
    const lamina_gguf_tensor *t = lamina_gguf_tensor_find(L->m->gguf, name);
    *out = NULL;
    if (!t) {
        if (!required) return 0;
        snprintf(L->err, L->err_size, "%s: missing tensor '%s'", L->path, name);
        return LAMINA_EFORMAT;
    }
    const lamina_type_traits *tr = lamina_type_get(t->type);
    if (!tr || tr->block_size == 0) {
        snprintf(L->err, L->err_size, "%s: tensor '%s' has unsupported type %u", L->path, name, t->type);
        return LAMINA_ENOTSUP;
    }
    int64_t want1 = ne1 ? ne1 : 1;
    uint32_t want_dims = ne1 ? 2 : 1;
    if (t->ne[0] != ne0 || t->ne[1] != want1 || t->ne[2] != 1 || t->ne[3] != 1 ||
        (t->n_dims != want_dims && !(want_dims == 2 && t->n_dims == 1 && want1 == 1))) {
        snprintf(L->err, L->err_size,
                 "%s: tensor '%s' has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld]",
                 L->path, name, (long long)t->ne[0], (long long)t->ne[1],
                 (long long)t->ne[2], (long long)t->ne[3], (long long)ne0, (long long)want1);
        return LAMINA_EFORMAT;
    }
    if (!tr->is_quantized && t->type != LAMINA_TYPE_F32 && t->type != LAMINA_TYPE_F16 &&
        t->type != LAMINA_TYPE_BF16) {
        snprintf(L->err, L->err_size, "%s: tensor '%s' has type %s, which cannot hold weights",
                 L->path, name, tr->name);
        return LAMINA_ENOTSUP;
    }
    *out = t;
    return 0;
}

static int bind_layer(loader *L, int il, const char *suffix, const lamina_gguf_tensor **out,
                      int64_t ne0, int64_t ne1, int required)
{
    char name[128];
    snprintf(name, sizeof name, "blk.%d.%s", il, suffix);
    return bind(L, out, name, ne0, ne1, required);
}

static int read_hparams(loader *L)
{
    lamina_model *m = L->m;
    lamina_hparams *hp = &m->hp;
    int rc;
    uint32_t n_head_kv = 0;

    if ((rc = hp_u32(L, "context_length", 1, 0, &hp->n_ctx_train)) < 0) return rc;
    if ((rc = hp_u32(L, "embedding_length", 1, 0, &hp->n_embd)) < 0) return rc;
    if ((rc = hp_u32(L, "block_count", 1, 0, &hp->n_layer)) < 0) return rc;
    if ((rc = hp_u32(L, "feed_forward_length", 1, 0, &hp->n_ff)) < 0) return rc;
    if ((rc = hp_u32(L, "attention.head_count", 1, 0, &hp->n_head)) < 0) return rc;
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
    if ((rc = hp_u32(L, "attention.head_count_kv", 0, (uint32_t)hp->n_head, &hp->n_head_kv)) < 0) return rc;
    (void)n_head_kv;
    if (hp->n_head_kv <= 0 || hp->n_head % hp->n_head_kv != 0) {
        snprintf(L->err, L->err_size, "%s: %s.attention.head_count_kv = %d does not divide head_count %d",
                 L->path, L->arch, hp->n_head_kv, hp->n_head);
        return LAMINA_EFORMAT;
    }
    int32_t def_hd = hp->n_embd / hp->n_head;
    if ((rc = hp_u32(L, "attention.key_length", 0, (uint32_t)def_hd, &hp->head_dim)) < 0) return rc;
    if ((rc = hp_u32(L, "attention.value_length", 0, (uint32_t)hp->head_dim, &hp->head_dim_v)) < 0) return rc;
    if (hp->head_dim <= 0 || hp->head_dim % 2 || hp->head_dim_v <= 0) {
        snprintf(L->err, L->err_size, "%s: bad head size %d/%d", L->path, hp->head_dim, hp->head_dim_v);
        return LAMINA_EFORMAT;
    }
    if ((rc = hp_u32(L, "rope.dimension_count", 0, (uint32_t)hp->head_dim, &hp->n_rot)) < 0) return rc;
    if (hp->n_rot <= 0 || hp->n_rot > hp->head_dim || hp->n_rot % 2) {
        snprintf(L->err, L->err_size, "%s: %s.rope.dimension_count = %d is not an even number <= head size %d",
                 L->path, L->arch, hp->n_rot, hp->head_dim);
        return LAMINA_EFORMAT;
    }
    if ((rc = hp_f32(L, "attention.layer_norm_rms_epsilon", 1, 0, &hp->eps)) < 0) return rc;
    if ((rc = hp_f32(L, "rope.freq_base", 0, 10000.0f, &hp->rope_base)) < 0) return rc;
    hp->rope_base_swa = hp->rope_base;
    hp->rope_scale = 1.0f;
    {
        char key[160];
        const char *s; size_t len;
        snprintf(key, sizeof key, "%s.rope.scaling.type", L->arch);
        if (lamina_gguf_get_str(m->gguf, key, &s, &len, NULL, 0) == 0) {
            float factor = 1.0f;
            if ((rc = hp_f32(L, "rope.scaling.factor", 0, 1.0f, &factor)) < 0) return rc;
            if (len == 6 && memcmp(s, "linear", 6) == 0) {
                if (factor > 0) hp->rope_scale = 1.0f / factor;
            } else if (!(len == 4 && memcmp(s, "none", 4) == 0) &&
                       !(len == 4 && memcmp(s, "yarn", 4) == 0 && factor <= 1.0f)) {
                snprintf(L->err, L->err_size, "%s: %s = '%.*s' is not supported (linear and none are)",
                         L->path, key, (int)len, s);
                return LAMINA_ENOTSUP;
            }
        }
    }
    if ((rc = hp_u32(L, "attention.sliding_window", 0, 0, &hp->n_swa)) < 0) return rc;

    /* vocabulary size: the token list, else <arch>.vocab_size, else the
     * embedding's row count */
    uint32_t et; uint64_t nv = 0; const void *d;
    if (lamina_gguf_get_arr(m->gguf, "tokenizer.ggml.tokens", &et, &nv, &d, NULL, 0) == 0 && nv > 0) {
        if (nv > INT32_MAX) { snprintf(L->err, L->err_size, "%s: vocabulary too large", L->path); return LAMINA_EFORMAT; }
        hp->n_vocab = (int32_t)nv;
    } else {
        int32_t v = 0;
        if ((rc = hp_u32(L, "vocab_size", 0, 0, &v)) < 0) return rc;
        hp->n_vocab = v;
    }

    /* embeddings: how the file says to pool (absent in decoder models) */
    if ((rc = hp_u32(L, "pooling_type", 0, 0x7fffffffu, &hp->pooling)) < 0) return rc;
    if (hp->pooling == 0x7fffffff) hp->pooling = LAMINA_POOL_UNSPECIFIED;
    else if (hp->pooling > LAMINA_POOL_RANK) {
        snprintf(L->err, L->err_size, "%s: metadata key '%s.pooling_type' = %d is not a pooling type (0..4)",
                 L->path, L->arch, hp->pooling);
        return LAMINA_EFORMAT;
    }
    hp->attn_scale = 1.0f / sqrtf((float)hp->head_dim);
    hp->embd_scale = 1.0f;
    hp->act = LAMINA_ACT_SILU;
    hp->rope_mode = LAMINA_ROPE_NORM;

    switch (hp->arch) {
    case LAMINA_ARCH_LLAMA:
        break;
    case LAMINA_ARCH_QWEN2:
        hp->rope_mode = LAMINA_ROPE_NEOX;
        break;
    case LAMINA_ARCH_GEMMA3: {
        hp->rope_mode = LAMINA_ROPE_NEOX;
        hp->act = LAMINA_ACT_GELU_TANH;
        hp->embd_scale = sqrtf((float)hp->n_embd);
        /* Gemma 3: five sliding-window layers then one global layer; the
         * local layers use RoPE base 10000, the global ones the file's. */
        hp->rope_base_swa = 10000.0f;
        for (int il = 0; il < hp->n_layer; il++)
            hp->is_swa[il] = hp->n_swa > 0 && (il % 6) < 5;
        /* The 27B model scales queries by 1/sqrt(n_embd / n_head); the
         * other sizes by 1/sqrt(head size). */
        if (hp->n_layer == 62 && hp->n_embd == 5376)
            hp->attn_scale = 1.0f / sqrtf((float)hp->n_embd / (float)hp->n_head);
        float cap = 0;
        if (hp_f32(L, "final_logit_softcapping", 0, 0.0f, &cap) == 0) hp->final_softcap = cap;
        if (hp_f32(L, "attn_logit_softcapping", 0, 0.0f, &cap) == 0) hp->attn_softcap = cap;
        break;
    }
    }
    return 0;
}

static int bind_weights(loader *L)
{
    lamina_model *m = L->m;
    const lamina_hparams *hp = &m->hp;
    const int64_t E = hp->n_embd, V = hp->n_vocab, F = hp->n_ff;
    const int64_t Dq = (int64_t)hp->n_head * hp->head_dim;
    const int64_t Dk = (int64_t)hp->n_head_kv * hp->head_dim;
    const int64_t Dv = (int64_t)hp->n_head_kv * hp->head_dim_v;
    const int64_t Do = (int64_t)hp->n_head * hp->head_dim_v;
    int rc;

    if ((rc = bind(L, &m->tok_embd, "token_embd.weight", E, V, 1)) < 0) return rc;
    if ((rc = bind(L, &m->output_norm, "output_norm.weight", E, 0, 1)) < 0) return rc;
    if ((rc = bind(L, &m->output, "output.weight", E, V, 0)) < 0) return rc;
    if (!m->output) m->output = m->tok_embd;               /* tied */
    if ((rc = bind(L, &m->rope_freqs, "rope_freqs.weight", hp->n_rot / 2, 0, 0)) < 0) return rc;
    if (m->rope_freqs && m->rope_freqs->type != LAMINA_TYPE_F32) {
        snprintf(L->err, L->err_size, "%s: tensor 'rope_freqs.weight' must be f32", L->path);
        return LAMINA_EFORMAT;
    }

    m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->layers) { snprintf(L->err, L->err_size, "out of memory"); return LAMINA_ENOMEM; }
    int gemma = hp->arch == LAMINA_ARCH_GEMMA3;
    int qwen = hp->arch == LAMINA_ARCH_QWEN2;
    for (int il = 0; il < hp->n_layer; il++) {
        lamina_layer_weights *w = &m->layers[il];
        if ((rc = bind_layer(L, il, "attn_norm.weight", &w->attn_norm, E, 0, 1)) < 0) return rc;
        if ((rc = bind_layer(L, il, "attn_q.weight", &w->wq, E, Dq, 1)) < 0) return rc;
        if ((rc = bind_layer(L, il, "attn_k.weight", &w->wk, E, Dk, 1)) < 0) return rc;
        if ((rc = bind_layer(L, il, "attn_v.weight", &w->wv, E, Dv, 1)) < 0) return rc;
        if ((rc = bind_layer(L, il, "attn_output.weight", &w->wo, Do, E, 1)) < 0) return rc;
        if ((rc = bind_layer(L, il, "attn_q.bias", &w->bq, Dq, 0, qwen)) < 0) return rc;
        if ((rc = bind_layer(L, il, "attn_k.bias", &w->bk, Dk, 0, qwen)) < 0) return rc;
        if ((rc = bind_layer(L, il, "attn_v.bias", &w->bv, Dv, 0, qwen)) < 0) return rc;
        if ((rc = bind_layer(L, il, "attn_q_norm.weight", &w->q_norm, hp->head_dim, 0, gemma)) < 0) return rc;
        if ((rc = bind_layer(L, il, "attn_k_norm.weight", &w->k_norm, hp->head_dim, 0, gemma)) < 0) return rc;
        if ((rc = bind_layer(L, il, "post_attention_norm.weight", &w->post_attn_norm, E, 0, gemma)) < 0) return rc;
        if ((rc = bind_layer(L, il, "ffn_norm.weight", &w->ffn_norm, E, 0, 1)) < 0) return rc;
        if ((rc = bind_layer(L, il, "ffn_gate.weight", &w->ffn_gate, E, F, 1)) < 0) return rc;
        if ((rc = bind_layer(L, il, "ffn_up.weight", &w->ffn_up, E, F, 1)) < 0) return rc;
        if ((rc = bind_layer(L, il, "ffn_down.weight", &w->ffn_down, F, E, 1)) < 0) return rc;
        if ((rc = bind_layer(L, il, "post_ffw_norm.weight", &w->post_ffw_norm, E, 0, gemma)) < 0) return rc;
        const lamina_gguf_tensor *vecs[] = { w->attn_norm, w->ffn_norm, w->q_norm, w->k_norm,
                                             w->post_attn_norm, w->post_ffw_norm, w->bq, w->bk, w->bv };
        for (size_t i = 0; i < sizeof vecs / sizeof vecs[0]; i++) {
            if (vecs[i] && vecs[i]->type != LAMINA_TYPE_F32) {
                snprintf(L->err, L->err_size, "%s: tensor '%s' must be f32 (norm weights and biases)",
                         L->path, vecs[i]->name);
                return LAMINA_ENOTSUP;
            }
        }
    }
    if (m->output_norm->type != LAMINA_TYPE_F32) {
        snprintf(L->err, L->err_size, "%s: tensor 'output_norm.weight' must be f32", L->path);
        return LAMINA_ENOTSUP;
    }
    for (int64_t i = 0; i < lamina_gguf_n_tensors(m->gguf); i++)
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
    if (strcmp(m->hp.arch_name, "llama") == 0)       m->hp.arch = LAMINA_ARCH_LLAMA;
    else if (strcmp(m->hp.arch_name, "qwen2") == 0)  m->hp.arch = LAMINA_ARCH_QWEN2;
    else if (strcmp(m->hp.arch_name, "gemma3") == 0) m->hp.arch = LAMINA_ARCH_GEMMA3;
    else {
        ERR("%s: unknown architecture '%s' (supported: llama, qwen2, gemma3)", path, m->hp.arch_name);
        rc = LAMINA_ENOTSUP;
        goto fail;
    }
    L.arch = m->hp.arch_name;
    if (lamina_gguf_get_str(m->gguf, "general.name", &s, &len, NULL, 0) == 0) {
        if (len >= sizeof m->hp.name) len = sizeof m->hp.name - 1;
        memcpy(m->hp.name, s, len);
        m->hp.name[len] = 0;
    }
    if ((rc = read_hparams(&L)) < 0) goto fail;
    if (m->hp.n_vocab <= 0) {
        ERR("%s: no vocabulary: 'tokenizer.ggml.tokens' is missing or empty", path);
        rc = LAMINA_EFORMAT;
        goto fail;
    }
    if ((rc = bind_weights(&L)) < 0) goto fail;
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
    lamina_gguf_close(m->gguf);
    free(m);
}

static uint64_t tsize(const lamina_gguf_tensor *t) { return t ? t->size : 0; }

uint64_t lamina_model_layer_bytes(const lamina_model *m, int il)
{
    if (il < 0) return tsize(m->tok_embd);
    if (il >= m->hp.n_layer)
        return tsize(m->output_norm) + tsize(m->output);
    const lamina_layer_weights *w = &m->layers[il];
    return tsize(w->attn_norm) + tsize(w->wq) + tsize(w->wk) + tsize(w->wv) + tsize(w->wo) +
           tsize(w->bq) + tsize(w->bk) + tsize(w->bv) + tsize(w->q_norm) + tsize(w->k_norm) +
           tsize(w->post_attn_norm) + tsize(w->ffn_norm) + tsize(w->ffn_gate) + tsize(w->ffn_up) +
           tsize(w->ffn_down) + tsize(w->post_ffw_norm);
}
