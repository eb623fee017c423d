/*
 * arch.h - the architecture table: one row per `general.architecture`
 * lamina runs, saying what its files hold and which builder runs it.
 *
 * Adding an architecture (docs/ARCHITECTURE.md, "Adding an architecture"):
 * a row in arch.c naming its tensors, defaults and builder; a new builder
 * in runtime/model/arch/ only when no family's fits.  Nothing else in the
 * engine asks which architecture a model is.
 * Internal to liblamina.
 */
#ifndef LAMINA_ARCH_H
#define LAMINA_ARCH_H

#include <stdint.h>

#include "model.h"

struct node_list;
struct graph_ctx;

/* The tensors outside the layers, as llama.cpp's converter names them. */
enum lamina_model_slot {
    LG_TOK_EMBD, LG_OUTPUT_NORM, LG_OUTPUT, LG_ROPE_FREQS, LG_ROPE_LONG, LG_ROPE_SHORT,
    LG_CLS_OUT, LG_CLS_OUT_B,       /* classifier head (rank pooling: rerankers) */
    LG_CLS, LG_CLS_B,               /* its dense pooler before a tanh (BERT rerankers) */
    LG_TOKEN_TYPES, LG_POS_EMBD,    /* encoders: token type rows, absolute positions */
    LG_TOK_NORM, LG_TOK_NORM_B,     /* encoders: LayerNorm of the input embedding */
    LG_COUNT
};
#define LG(slot) (1u << (slot))

/* A family's graph builder: the nodes of one layer (engine_impl.h's
 * node_list and graph_ctx).  LAMINA_ENOMEM on failure. */
typedef int (*lamina_layer_builder)(struct node_list *nl, const struct graph_ctx *g, int il);

/* What a loader hook reads: "<arch>.<suffix>" keys of the file. */
typedef struct lamina_arch_loader lamina_arch_loader;
int lamina_arch_key_f32(lamina_arch_loader *L, const char *suffix, float def, float *out);
int lamina_arch_key_u32(lamina_arch_loader *L, const char *suffix, uint32_t def, int32_t *out);
/* A key the file must have ("FILE: missing metadata key 'ARCH.SUFFIX'"). */
int lamina_arch_key_f32_required(lamina_arch_loader *L, const char *suffix, float *out);
/* A load error "FILE: message"; returns LAMINA_EFORMAT. */
int lamina_arch_error(lamina_arch_loader *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

typedef struct lamina_arch_info {
    const char *name;                  /* general.architecture */
    const char *family;                /* builder file, runtime/model/arch/<family>.c */
    lamina_layer_builder build_layer;
    uint64_t layer_required;           /* LW() bits: every layer has these */
    uint64_t layer_optional;           /* LW() bits: a layer may have these.  When
                                          LW_QKV (LW_GATE_UP) is allowed and
                                          present, it stands for the required
                                          q/k/v (gate/up) */
    uint32_t model_required, model_optional;   /* LG() bits */
    int32_t  rope_mode;                /* LAMINA_ROPE_* */
    int32_t  act;                      /* LAMINA_ACT_* of the FFN gate */
    uint32_t flags;                    /* LAMINA_ARCH_F_* */
    /* Sliding-window attention: the layer pattern when the file gives none
     * (<arch>.attention.sliding_window_pattern, a count or one bool per
     * layer): of every swa_pattern layers the last is global; 0: the
     * architecture has no windows.  swa_window: the window when the file
     * gives none (<arch>.attention.sliding_window), 0: none then. */
    int32_t  swa_pattern, swa_window;
    /* RoPE of the windowed layers when the file gives no
     * <arch>.rope.freq_base_swa: base (0: the global one), and whether the
     * linear scale applies to them too */
    float    rope_base_swa;
    int      rope_scale_swa;
    /* soft-caps when the file has no <arch>.attn_logit_softcapping /
     * final_logit_softcapping (0: none; ignored without LAMINA_ARCH_F_*_SOFTCAP) */
    float    attn_softcap, final_softcap;
    /* Anything else its published design fixes and its files do not
     * record; NULL when nothing.  Runs after the common keys are read. */
    int (*hparams)(lamina_arch_loader *L, lamina_hparams *hp);
} lamina_arch_info;

enum {
    LAMINA_ARCH_F_EMBD_SCALE   = 1u << 0,   /* token embeddings times sqrt(n_embd) */
    LAMINA_ARCH_F_ATTN_SOFTCAP = 1u << 1,   /* reads attn_logit_softcapping */
    LAMINA_ARCH_F_FINAL_SOFTCAP= 1u << 2,   /* reads final_logit_softcapping */
    LAMINA_ARCH_F_MOE          = 1u << 3,   /* reads expert_count, expert_used_count,
                                               expert_feed_forward_length (and
                                               expert_shared_feed_forward_length
                                               where the row takes the shared
                                               expert's tensors) */
    LAMINA_ARCH_F_ENCODER      = 1u << 4,   /* non-causal encoder (embeddings only):
                                               reads attention.layer_norm_epsilon
                                               instead of the RMS one; no output head */
    LAMINA_ARCH_F_RANK_SOFTMAX = 1u << 5,   /* rank scores are the softmax of the
                                               classifier's outputs (Qwen3 rerankers:
                                               p(yes), p(no)), as llama.cpp */
    LAMINA_ARCH_F_MOE_RENORM   = 1u << 6,   /* the k chosen experts' weights are the
                                               softmax over those k (qwen3moe);
                                               without it, the router's softmax
                                               over all experts (qwen2moe) */
};

/* The row for `name`, or NULL. */
const lamina_arch_info *lamina_arch_find(const char *name);
/* "llama, qwen2, ..." for error messages. */
void lamina_arch_list(char *out, size_t size);

/* The family builders (runtime/model/arch/). */
int lamina_build_llama_layer(struct node_list *nl, const struct graph_ctx *g, int il);
int lamina_build_llama_moe_layer(struct node_list *nl, const struct graph_ctx *g, int il);
int lamina_build_gemma_layer(struct node_list *nl, const struct graph_ctx *g, int il);
int lamina_build_olmo2_layer(struct node_list *nl, const struct graph_ctx *g, int il);
int lamina_build_bert_layer(struct node_list *nl, const struct graph_ctx *g, int il);
int lamina_build_gptoss_layer(struct node_list *nl, const struct graph_ctx *g, int il);
int lamina_gemma_hparams(lamina_arch_loader *L, lamina_hparams *hp);
int lamina_granite_hparams(lamina_arch_loader *L, lamina_hparams *hp);
int lamina_gptoss_hparams(lamina_arch_loader *L, lamina_hparams *hp);

#endif
