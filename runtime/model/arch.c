/*
 * arch.c - the architecture table.  One row per architecture: its tensors
 * (model.h's lamina_layer_slot names them), the defaults its files may
 * leave out, and the family builder that runs it (runtime/model/arch/).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "lamina/plugin.h"
#include "arch.h"

/* every decoder layer */
#define DECODER (LW(LW_ATTN_NORM) | LW(LW_Q) | LW(LW_K) | LW(LW_V) | LW(LW_O) | \
                 LW(LW_FFN_NORM) | LW(LW_DOWN))
#define GATED   (LW(LW_GATE) | LW(LW_UP))
#define BIASES  (LW(LW_BQ) | LW(LW_BK) | LW(LW_BV))
#define QK_NORM (LW(LW_Q_NORM) | LW(LW_K_NORM))
#define POST    (LW(LW_POST_ATTN_NORM) | LW(LW_POST_FFW_NORM))
#define MODEL   (LG(LG_TOK_EMBD) | LG(LG_OUTPUT_NORM))
#define CLASSIFIER (LG(LG_CLS_OUT) | LG(LG_CLS_OUT_B))
#define POOLER  (LG(LG_CLS) | LG(LG_CLS_B))   /* a classifier's dense + tanh layer */
#define ROPE_T  (LG(LG_ROPE_FREQS) | LG(LG_ROPE_LONG) | LG(LG_ROPE_SHORT))
#define SHARED_EXPERT (LW(LW_GATE_INP_SHEXP) | LW(LW_GATE_SHEXP) | LW(LW_UP_SHEXP) | LW(LW_DOWN_SHEXP))

static const lamina_arch_info archs[] = {
    /* Llama 2/3.x (rope_freqs: Llama 3 scaling), Mistral, SmolLM2,
     * DeepSeek-R1-Distill-Llama */
    { .name = "llama", .family = "llama", .build_layer = lamina_build_llama_layer,
      .layer_required = DECODER | GATED,
      .layer_optional = LW(LW_QKV) | BIASES | LW(LW_BQKV) | LW(LW_BO),
      .model_required = MODEL, .model_optional = LG(LG_OUTPUT) | ROPE_T,
      .rope_mode = LAMINA_ROPE_NORM, .act = LAMINA_ACT_SILU },
    /* Qwen2, Qwen2.5, DeepSeek-R1-Distill-Qwen: q/k/v biases */
    { .name = "qwen2", .family = "llama", .build_layer = lamina_build_llama_layer,
      .layer_required = DECODER | GATED | BIASES,
      .layer_optional = LW(LW_QKV) | LW(LW_BQKV),
      .model_required = MODEL, .model_optional = LG(LG_OUTPUT),
      .rope_mode = LAMINA_ROPE_NEOX, .act = LAMINA_ACT_SILU },
    /* Qwen3: RMS norm of each query and key head */
    { .name = "qwen3", .family = "llama", .build_layer = lamina_build_llama_layer,
      .layer_required = DECODER | GATED | QK_NORM,
      .layer_optional = LW(LW_QKV),
      .model_required = MODEL, .model_optional = LG(LG_OUTPUT) | CLASSIFIER,   /* + Qwen3-Reranker */
      .rope_mode = LAMINA_ROPE_NEOX, .act = LAMINA_ACT_SILU, .flags = LAMINA_ARCH_F_RANK_SOFTMAX },
    /* Qwen3 mixture of experts (Qwen3-30B-A3B): softmax router, top-k
     * experts renormalized, no shared expert */
    { .name = "qwen3moe", .family = "llama", .build_layer = lamina_build_llama_moe_layer,
      .layer_required = (DECODER & ~LW(LW_DOWN)) | QK_NORM | LW(LW_GATE_INP) | LW(LW_GATE_EXPS) |
                        LW(LW_UP_EXPS) | LW(LW_DOWN_EXPS),
      .layer_optional = LW(LW_QKV),
      .model_required = MODEL, .model_optional = LG(LG_OUTPUT),
      .rope_mode = LAMINA_ROPE_NEOX, .act = LAMINA_ACT_SILU, .flags = LAMINA_ARCH_F_MOE | LAMINA_ARCH_F_MOE_RENORM },
    /* Qwen1.5-MoE-A2.7B, Qwen2-57B-A14B: qwen2's attention (q/k/v biases);
     * a softmax router whose top-k weights are not renormalized, plus a
     * shared expert of its own width, gated by sigmoid(ffn_gate_inp_shexp . x) */
    { .name = "qwen2moe", .family = "llama", .build_layer = lamina_build_llama_moe_layer,
      .layer_required = (DECODER & ~LW(LW_DOWN)) | BIASES | LW(LW_GATE_INP) | LW(LW_GATE_EXPS) |
                        LW(LW_UP_EXPS) | LW(LW_DOWN_EXPS) | SHARED_EXPERT,
      .layer_optional = LW(LW_QKV) | LW(LW_BQKV),
      .model_required = MODEL, .model_optional = LG(LG_OUTPUT),
      .rope_mode = LAMINA_ROPE_NEOX, .act = LAMINA_ACT_SILU, .flags = LAMINA_ARCH_F_MOE },
    /* Phi-3, Phi-3.5, Phi-4: fused gate/up, usually fused q/k/v; LongRoPE */
    { .name = "phi3", .family = "llama", .build_layer = lamina_build_llama_layer,
      .layer_required = DECODER | LW(LW_GATE_UP),
      .layer_optional = LW(LW_QKV) | LW(LW_BQKV) | BIASES | LW(LW_BO),
      .model_required = MODEL, .model_optional = LG(LG_OUTPUT) | ROPE_T,
      .rope_mode = LAMINA_ROPE_NEOX, .act = LAMINA_ACT_SILU },
    /* IBM Granite 3.x: the Llama layer with scaled embeddings, attention,
     * residual branches and logits (granite.*_scale) */
    { .name = "granite", .family = "llama", .build_layer = lamina_build_llama_layer,
      .layer_required = DECODER | GATED,
      .layer_optional = LW(LW_QKV) | LW(LW_BO),
      .model_required = MODEL, .model_optional = LG(LG_OUTPUT) | ROPE_T,
      .rope_mode = LAMINA_ROPE_NORM, .act = LAMINA_ACT_SILU, .hparams = lamina_granite_hparams },
    /* OLMo 2: no input norms; q and k normed over the whole row; the
     * attention's and the FFN's outputs normed before the residual add */
    { .name = "olmo2", .family = "olmo", .build_layer = lamina_build_olmo2_layer,
      .layer_required = LW(LW_Q) | LW(LW_K) | LW(LW_V) | LW(LW_O) | LW(LW_Q_NORM_ROW) | LW(LW_K_NORM_ROW) |
                        GATED | LW(LW_DOWN) | POST,
      .layer_optional = 0,
      .model_required = MODEL | LG(LG_OUTPUT), .model_optional = 0,
      .rope_mode = LAMINA_ROPE_NEOX, .act = LAMINA_ACT_SILU },
    /* gpt-oss: biases everywhere, attention sinks, MXFP4 experts whose
     * router softmax is over the k chosen, swiglu_oai, every other layer
     * windowed (the first one), YaRN */
    { .name = "gpt-oss", .family = "gptoss", .build_layer = lamina_build_gptoss_layer,
      .layer_required = LW(LW_ATTN_NORM) | LW(LW_Q) | LW(LW_K) | LW(LW_V) | LW(LW_O) | BIASES | LW(LW_BO) |
                        LW(LW_POST_ATTN_NORM) | LW(LW_ATTN_SINKS) | LW(LW_GATE_INP) | LW(LW_GATE_INP_B) |
                        LW(LW_GATE_EXPS) | LW(LW_UP_EXPS) | LW(LW_DOWN_EXPS) | LW(LW_GATE_EXPS_B) |
                        LW(LW_UP_EXPS_B) | LW(LW_DOWN_EXPS_B),
      .layer_optional = 0,
      .model_required = MODEL | LG(LG_OUTPUT), .model_optional = 0,
      .rope_mode = LAMINA_ROPE_NEOX, .act = LAMINA_ACT_SWIGLU_OAI,
      .flags = LAMINA_ARCH_F_MOE | LAMINA_ARCH_F_MOE_RENORM,
      .swa_pattern = 2, .swa_window = 0, .rope_base_swa = 0, .rope_scale_swa = 1,
      .hparams = lamina_gptoss_hparams },
    /* Gemma 2: post-norms, GELU, soft-capped attention and logits, every
     * other layer windowed */
    { .name = "gemma2", .family = "gemma", .build_layer = lamina_build_gemma_layer,
      .layer_required = DECODER | GATED | POST,
      .layer_optional = LW(LW_QKV),
      .model_required = MODEL, .model_optional = 0,
      .rope_mode = LAMINA_ROPE_NEOX, .act = LAMINA_ACT_GELU_TANH,
      .flags = LAMINA_ARCH_F_EMBD_SCALE | LAMINA_ARCH_F_ATTN_SOFTCAP | LAMINA_ARCH_F_FINAL_SOFTCAP,
      .swa_pattern = 2, .swa_window = 4096, .rope_base_swa = 0, .rope_scale_swa = 1,
      .attn_softcap = 50.0f, .final_softcap = 30.0f, .hparams = lamina_gemma_hparams },
    /* Gemma 3: Gemma 2 with QK norm instead of soft-capping; five windowed
     * layers (local RoPE base 10000) then one global */
    { .name = "gemma3", .family = "gemma", .build_layer = lamina_build_gemma_layer,
      .layer_required = DECODER | GATED | POST | QK_NORM,
      .layer_optional = LW(LW_QKV),
      .model_required = MODEL, .model_optional = LG(LG_OUTPUT),
      .rope_mode = LAMINA_ROPE_NEOX, .act = LAMINA_ACT_GELU_TANH,
      .flags = LAMINA_ARCH_F_EMBD_SCALE | LAMINA_ARCH_F_FINAL_SOFTCAP,
      .swa_pattern = 6, .swa_window = 0, .rope_base_swa = 10000.0f, .rope_scale_swa = 0,
      .attn_softcap = 0, .final_softcap = 0, .hparams = lamina_gemma_hparams },
    /* BERT encoders (all-MiniLM, bge-*, mxbai-embed-large,
     * snowflake-arctic-embed): embeddings only; absolute positions and
     * token types added to the input, LayerNorm after each residual add,
     * attention both ways, GELU FFN with biases.  No rotary positions.
     * Cross-encoder rerankers (ms-marco MiniLM; RoBERTa-style heads)
     * add a classifier: cls.output over the [CLS] state, after a dense +
     * tanh pooler (cls) when the file has one; the raw score, no softmax. */
    { .name = "bert", .family = "bert", .build_layer = lamina_build_bert_layer,
      .layer_required = LW(LW_Q) | LW(LW_K) | LW(LW_V) | LW(LW_O) | LW(LW_ATTN_OUT_NORM) |
                        LW(LW_ATTN_OUT_NORM_B) | LW(LW_UP) | LW(LW_DOWN) | LW(LW_LAYER_OUT_NORM) |
                        LW(LW_LAYER_OUT_NORM_B),
      .layer_optional = BIASES | LW(LW_QKV) | LW(LW_BQKV) | LW(LW_BO) | LW(LW_BUP) | LW(LW_BDOWN),
      .model_required = LG(LG_TOK_EMBD) | LG(LG_POS_EMBD) | LG(LG_TOK_NORM) | LG(LG_TOK_NORM_B),
      .model_optional = LG(LG_TOKEN_TYPES) | CLASSIFIER | POOLER,
      .rope_mode = -1, .act = LAMINA_ACT_GELU_TANH, .flags = LAMINA_ARCH_F_ENCODER },
    /* nomic-embed-text v1/v1.5: the BERT layer with fused q/k/v, rotary
     * positions (NEOX) instead of position rows, and a SwiGLU FFN without
     * biases */
    { .name = "nomic-bert", .family = "bert", .build_layer = lamina_build_bert_layer,
      .layer_required = LW(LW_Q) | LW(LW_K) | LW(LW_V) | LW(LW_O) | LW(LW_ATTN_OUT_NORM) |
                        LW(LW_ATTN_OUT_NORM_B) | GATED | LW(LW_DOWN) | LW(LW_LAYER_OUT_NORM) |
                        LW(LW_LAYER_OUT_NORM_B),
      .layer_optional = LW(LW_QKV) | LW(LW_BO),
      .model_required = LG(LG_TOK_EMBD) | LG(LG_TOK_NORM) | LG(LG_TOK_NORM_B),
      .model_optional = LG(LG_TOKEN_TYPES),
      .rope_mode = LAMINA_ROPE_NEOX, .act = LAMINA_ACT_SILU, .flags = LAMINA_ARCH_F_ENCODER },
};

const lamina_arch_info *lamina_arch_find(const char *name)
{
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
        if (strcmp(archs[i].name, name) == 0) return &archs[i];
    return NULL;
}

void lamina_arch_list(char *out, size_t size)
{
    size_t at = 0;
    if (size) out[0] = 0;
    for (size_t i = 0; i < sizeof archs / sizeof archs[0] && at < size; i++) {
        int n = snprintf(out + at, size - at, "%s%s", i ? ", " : "", archs[i].name);
        if (n < 0) break;
        at += (size_t)n;
    }
}
