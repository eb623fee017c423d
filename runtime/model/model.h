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

#define LAMINA_MAX_LAYERS 256

struct lamina_arch_info;            /* arch.h: one row of the architecture table */

/* What differs between the layers of one model. */
typedef struct lamina_layer_hp {
    int32_t  window;            /* sliding attention window, 0 = global */
    float    rope_base;
    float    rope_scale;        /* linear position scale (1 = none) */
} lamina_layer_hp;

typedef struct lamina_hparams {
    char     arch_name[32];     /* general.architecture */
    char     name[128];         /* general.name, "" if absent */
    int32_t  n_vocab;
    int32_t  n_ctx_train;
    int32_t  n_ctx_orig;        /* context the rope was trained for
                                   (rope.scaling.original_context_length) */
    int32_t  n_embd;
    int32_t  n_layer;
    int32_t  n_head;
    int32_t  n_head_kv;
    int32_t  head_dim;          /* key length */
    int32_t  head_dim_v;        /* value length */
    int32_t  n_ff;
    int32_t  n_rot;             /* rotated dims per head */
    int32_t  rope_mode;         /* LAMINA_ROPE_NORM / NEOX */
    float    rope_base;         /* <arch>.rope.freq_base (global layers) */
    float    rope_scale;        /* linear position scale (1 = none) */
    float    eps;               /* RMS norm epsilon */
    int32_t  n_swa;             /* sliding window size, 0 = none */
    lamina_layer_hp layer[LAMINA_MAX_LAYERS];
    float    rope_attn_factor;  /* multiplies the rotated dims of q and k
                                   (rope.scaling.attn_factor; 1 = none) */
    int32_t  rope_yarn;         /* rope.scaling.type yarn: the ROPE nodes carry
                                   YaRN's ramp (ext_factor 1, betas below) and
                                   rope_attn_factor (plugin.h, ABI 1.3) */
    float    yarn_beta_fast, yarn_beta_slow;
    float    glu_alpha, glu_limit; /* LAMINA_ACT_SWIGLU_OAI's (gpt-oss) */
    float    attn_scale;        /* multiplies q.k */
    float    embd_scale;        /* multiplies the token embedding (1 = none) */
    float    residual_scale;    /* multiplies each layer's attention and FFN
                                   output before the residual add (1 = none) */
    float    logit_scale;       /* multiplies the logits (1 = none) */
    float    attn_softcap;      /* 0 = none */
    float    final_softcap;     /* 0 = none */
    int32_t  act;               /* LAMINA_ACT_* for the FFN gate */
    int32_t  n_expert;          /* mixture of experts: experts per layer (0: dense) */
    int32_t  n_expert_used;     /* experts each token uses */
    int32_t  n_ff_exp;          /* an expert's FFN width */
    int32_t  n_ff_shexp;        /* the shared expert's FFN width (qwen2moe;
                                   0: no shared expert) */
    int32_t  pooling;           /* <arch>.pooling_type (LAMINA_POOL_*), or
                                   LAMINA_POOL_UNSPECIFIED when absent */
    int32_t  n_cls_out;         /* classifier outputs (cls.output rows), 0: none */
    int32_t  causal;            /* 1: a decoder (causal attention); 0: an
                                   encoder (BERT: every token attends to its
                                   whole sequence, read in one pass; no head) */
    float    norm_eps;          /* LayerNorm epsilon of encoders
                                   (<arch>.attention.layer_norm_epsilon) */
    int32_t  n_token_types;     /* rows of token_types.weight, 0: none */
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

/* The weights a layer can have, as llama.cpp's converter names them
 * ("blk.N.<name>").  Which ones an architecture requires or allows is its
 * row in the architecture table (arch.c); the names and shapes are in
 * lamina_layer_slots[] (model.c), in this order. */
enum lamina_layer_slot {
    LW_ATTN_NORM, LW_Q, LW_K, LW_V, LW_QKV, LW_BQ, LW_BK, LW_BV, LW_BQKV,
    LW_O, LW_BO, LW_Q_NORM, LW_K_NORM, LW_POST_ATTN_NORM,
    LW_FFN_NORM, LW_GATE, LW_UP, LW_GATE_UP, LW_DOWN, LW_POST_FFW_NORM,
    LW_GATE_INP, LW_GATE_EXPS, LW_UP_EXPS, LW_DOWN_EXPS,
    LW_Q_NORM_ROW, LW_K_NORM_ROW,
    LW_ATTN_OUT_NORM, LW_ATTN_OUT_NORM_B, LW_BUP, LW_BDOWN, LW_LAYER_OUT_NORM, LW_LAYER_OUT_NORM_B,
    LW_GATE_INP_SHEXP, LW_GATE_SHEXP, LW_UP_SHEXP, LW_DOWN_SHEXP,
    LW_ATTN_SINKS, LW_GATE_INP_B, LW_GATE_EXPS_B, LW_UP_EXPS_B, LW_DOWN_EXPS_B,
    LW_COUNT
};
#define LW(slot) (UINT64_C(1) << (slot))

typedef union lamina_layer_weights {
    struct {                                    /* E embedding, F ffn, Dq/Dk/Dv/Do
                                                   heads x head size */
        const lamina_gguf_tensor *attn_norm;      /* [E] */
        const lamina_gguf_tensor *wq, *wk, *wv;   /* [E, Dq], [E, Dk], [E, Dv] */
        const lamina_gguf_tensor *wqkv;           /* [E, Dq+Dk+Dv] fused (phi3) */
        const lamina_gguf_tensor *bq, *bk, *bv;   /* biases [Dq], [Dk], [Dv] (qwen2) */
        const lamina_gguf_tensor *bqkv;           /* [Dq+Dk+Dv] fused bias */
        const lamina_gguf_tensor *wo;             /* [Do, E] */
        const lamina_gguf_tensor *bo;             /* [E] */
        const lamina_gguf_tensor *q_norm, *k_norm;/* [D] per head (gemma3, qwen3) */
        const lamina_gguf_tensor *post_attn_norm; /* [E] (gemma) */
        const lamina_gguf_tensor *ffn_norm;       /* [E] */
        const lamina_gguf_tensor *ffn_gate, *ffn_up; /* [E, F] */
        const lamina_gguf_tensor *ffn_gate_up;    /* [E, 2F]: gate rows, then up (phi3) */
        const lamina_gguf_tensor *ffn_down;       /* [F, E] */
        const lamina_gguf_tensor *post_ffw_norm;  /* [E] (gemma) */
        const lamina_gguf_tensor *ffn_gate_inp;   /* [E, X] router (X experts) */
        const lamina_gguf_tensor *ffn_gate_exps, *ffn_up_exps; /* [E, Fe, X] */
        const lamina_gguf_tensor *ffn_down_exps;  /* [Fe, E, X] */
        const lamina_gguf_tensor *q_norm_row, *k_norm_row; /* [Dq], [Dk]: over the
                                                   whole q, k row (olmo2) */
        const lamina_gguf_tensor *attn_out_norm, *attn_out_norm_b; /* [E] LayerNorm
                                                   after the attention's residual (bert) */
        const lamina_gguf_tensor *bup;            /* [F] (bert) */
        const lamina_gguf_tensor *bdown;          /* [E] (bert) */
        const lamina_gguf_tensor *layer_out_norm, *layer_out_norm_b; /* [E] LayerNorm
                                                   after the FFN's residual (bert) */
        const lamina_gguf_tensor *ffn_gate_inp_shexp; /* [E] the shared expert's
                                                   gate: sigmoid(it . x) (qwen2moe) */
        const lamina_gguf_tensor *ffn_gate_shexp, *ffn_up_shexp; /* [E, Fs] the shared
                                                   expert, Fs its width */
        const lamina_gguf_tensor *ffn_down_shexp; /* [Fs, E] */
        const lamina_gguf_tensor *attn_sinks;     /* [H] one logit per query head,
                                                   in the softmax's denominator (gpt-oss) */
        const lamina_gguf_tensor *ffn_gate_inp_b; /* [X] the router's bias */
        const lamina_gguf_tensor *ffn_gate_exps_b, *ffn_up_exps_b; /* [Fe, X] per expert */
        const lamina_gguf_tensor *ffn_down_exps_b;/* [E, X] */
    };
    const lamina_gguf_tensor *slot[LW_COUNT];     /* the same, by lamina_layer_slot */
} lamina_layer_weights;

typedef struct lamina_model {
    lamina_gguf *gguf;                      /* owned */
    const struct lamina_arch_info *arch;    /* its row of the table */
    lamina_hparams hp;
    const lamina_gguf_tensor *tok_embd;     /* [E, V] */
    const lamina_gguf_tensor *output_norm;  /* [E] */
    const lamina_gguf_tensor *output;       /* [E, V]; == tok_embd when tied */
    const lamina_gguf_tensor *rope_freqs;   /* [n_rot/2] frequency divisors
                                               (Llama 3 rope scaling), or NULL */
    const lamina_gguf_tensor *rope_long, *rope_short;   /* [n_rot/2] LongRoPE
                                               divisors (phi3), or NULL */
    float   *cls_out;                       /* [n_cls_out][E] classifier head
                                               (cls.output.weight) as floats,
                                               owned, or NULL */
    float   *cls_out_b;                     /* [n_cls_out] its bias, or NULL */
    float   *cls;                           /* [E][E] the classifier's pooler
                                               (cls.weight, BERT rerankers) as
                                               floats, owned, or NULL */
    float   *cls_b;                         /* [E] its bias, or NULL */
    const lamina_gguf_tensor *type_embd;    /* [E, n_token_types] (bert), or NULL */
    const lamina_gguf_tensor *pos_embd;     /* [E, n_ctx_train] absolute positions (bert) */
    const lamina_gguf_tensor *tok_norm, *tok_norm_b;  /* [E] LayerNorm of the
                                               input embedding (bert), or NULL */
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

/* The factors phi3's LongRoPE uses for a context of n_ctx tokens per
 * sequence: the long ones past the trained original context, else the
 * short ones; rope_freqs when the file has one; NULL when neither. */
const lamina_gguf_tensor *lamina_model_rope_factors(const lamina_model *m, int32_t n_ctx);

/* A reranker's scores from the pooled hidden state h[n_embd] (after the
 * output norm; lamina_model_rank_pooling says which token), as llama.cpp's
 * rank pooling: the pooler tanh(cls . h + cls.bias) when the file has one
 * (BERT), then the head cls.output . x + cls.output.bias, then a softmax
 * when the architecture's row says (LAMINA_ARCH_F_RANK_SOFTMAX: Qwen3's
 * p(yes), p(no)); else the raw outputs.  out[n_cls_out]; out[0] is the
 * relevance score.  LAMINA_ENOTSUP when the model has no classifier head,
 * LAMINA_ENOMEM. */
int  lamina_model_classify(const lamina_model *m, const float *h, float *out);

/* The token whose hidden state a reranker scores: LAMINA_POOL_CLS (the
 * first, [CLS]) for encoders, LAMINA_POOL_LAST for causal models. */
int  lamina_model_rank_pooling(const lamina_model *m);

/* How to pool model m's hidden states into one vector per input (embeddings):
 * LAMINA_POOL_LAST, MEAN or CLS, or -1 with the reason naming `name` (no
 * pooling in an encoder's file, pooling none or rank, CLS on a causal
 * model).  Causal models without a pooling_type pool the last token. */
int  lamina_model_embed_pooling(const lamina_model *m, const char *name, char *err, size_t err_size);

/* The most tokens one input may embed with a context of n_ctx: an encoder
 * sees its whole input in one batch of at most n_batch, within its
 * trained positions when it has absolute ones. */
int32_t lamina_model_embed_ctx(const lamina_model *m, int32_t n_ctx, int32_t n_batch);

/* Bytes of the weights layer `il` reads (il == -1: input embedding,
 * il == n_layer: output norm + head). */
uint64_t lamina_model_layer_bytes(const lamina_model *m, int il);

/* Bytes of weights one generated token reads, the floor of a decoding
 * step's memory traffic: every layer's tensors, the experts' scaled by
 * n_expert_used / n_expert, the output norm and head, and one row of each
 * embedding table that is only looked up (a head tied to the token
 * embedding is read whole, once).  The KV cache is not included. */
uint64_t lamina_model_token_bytes(const lamina_model *m);

#endif
