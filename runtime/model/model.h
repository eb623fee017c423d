/*
 * model.h - a transformer model read from a GGUF file: hyperparameters from
 * metadata and the weight tensors bound by name.  Weights stay in the
 * file's mapping (lamina_gguf owns it); nothing is copied here.
 * Internal to liblamina.
 */
#ifndef LAMINA_MODEL_H
#define LAMINA_MODEL_H

#include <stdint.h>

#include "gguf.h"

typedef enum lamina_arch {
    LAMINA_ARCH_LLAMA  = 0,   /* Llama 2/3.x */
    LAMINA_ARCH_QWEN2  = 1,   /* Llama layout + q/k/v biases, NEOX rope */
    LAMINA_ARCH_GEMMA3 = 2    /* Gemma 3: post-norms, QK norm, GELU, SWA */
} lamina_arch;

#define LAMINA_MAX_LAYERS 256

typedef struct lamina_hparams {
    lamina_arch arch;
    char     arch_name[32];     /* general.architecture */
    char     name[128];         /* general.name, "" if absent */
    int32_t  n_vocab;
    int32_t  n_ctx_train;
    int32_t  n_embd;
    int32_t  n_layer;
    int32_t  n_head;
    int32_t  n_head_kv;
    int32_t  head_dim;          /* key length */
    int32_t  head_dim_v;        /* value length */
    int32_t  n_ff;
    int32_t  n_rot;             /* rotated dims per head */
    int32_t  rope_mode;         /* LAMINA_ROPE_NORM / NEOX */
    float    rope_base;         /* global layers */
    float    rope_base_swa;     /* sliding-window layers */
    float    rope_scale;        /* linear position scale (1 = none) */
    float    eps;               /* RMS norm epsilon */
    int32_t  n_swa;             /* sliding window size, 0 = none */
    uint8_t  is_swa[LAMINA_MAX_LAYERS];
    float    attn_scale;        /* multiplies q.k */
    float    embd_scale;        /* multiplies the token embedding (1 = none) */
    float    attn_softcap;      /* 0 = none */
    float    final_softcap;     /* 0 = none */
    int32_t  act;               /* LAMINA_ACT_* for the FFN gate */
    int32_t  pooling;           /* <arch>.pooling_type (LAMINA_POOL_*), or
                                   LAMINA_POOL_UNSPECIFIED when absent */
} lamina_hparams;

/* Pooling of embeddings, GGUF's <arch>.pooling_type values. */
enum {
    LAMINA_POOL_UNSPECIFIED = -1,
    LAMINA_POOL_NONE = 0,
    LAMINA_POOL_MEAN = 1,
    LAMINA_POOL_CLS  = 2,
    LAMINA_POOL_LAST = 3,
    LAMINA_POOL_RANK = 4
};

typedef struct lamina_layer_weights {
    const lamina_gguf_tensor *attn_norm;      /* [E] */
    const lamina_gguf_tensor *wq, *wk, *wv;   /* [E, Hq*D], [E, Hkv*D], [E, Hkv*Dv] */
    const lamina_gguf_tensor *bq, *bk, *bv;   /* biases (qwen2), else NULL */
    const lamina_gguf_tensor *wo;             /* [Hq*Dv, E] */
    const lamina_gguf_tensor *q_norm, *k_norm;/* [D] (gemma3), else NULL */
    const lamina_gguf_tensor *post_attn_norm; /* [E] (gemma3), else NULL */
    const lamina_gguf_tensor *ffn_norm;       /* [E] */
    const lamina_gguf_tensor *ffn_gate, *ffn_up; /* [E, F] */
    const lamina_gguf_tensor *ffn_down;       /* [F, E] */
    const lamina_gguf_tensor *post_ffw_norm;  /* [E] (gemma3), else NULL */
} lamina_layer_weights;

typedef struct lamina_model {
    lamina_gguf *gguf;                      /* owned */
    lamina_hparams hp;
    const lamina_gguf_tensor *tok_embd;     /* [E, V] */
    const lamina_gguf_tensor *output_norm;  /* [E] */
    const lamina_gguf_tensor *output;       /* [E, V]; == tok_embd when tied */
    const lamina_gguf_tensor *rope_freqs;   /* [n_rot/2] or NULL */
    lamina_layer_weights *layers;           /* n_layer, owned */
    uint64_t weight_bytes;                  /* sum of all tensor sizes */
} lamina_model;

/* Open `path`, read hyperparameters and bind every tensor the architecture
 * needs, checking each tensor's presence, type support and shape.  Errors
 * name the file and the key or tensor: "m.gguf: missing metadata key
 * 'gemma3.block_count'", "m.gguf: unknown architecture 'mamba'".
 * *out owned by the caller (lamina_model_free). */
int  lamina_model_load(const char *path, lamina_model **out, char *err, size_t err_size);
void lamina_model_free(lamina_model *m);

/* Bytes of the weights layer `il` reads (il == -1: input embedding,
 * il == n_layer: output norm + head). */
uint64_t lamina_model_layer_bytes(const lamina_model *m, int il);

#endif
