/*
 * graph.h - the steps the family builders (runtime/model/arch/) compose a
 * layer from, as lamina nodes (graph.c).  Shapes use the ABI's
 * [ne0, ne1, ne2] notation; T is the number of tokens in the batch; E the
 * embedding, F the FFN width, Hq/Hkv heads of head size D (values Dv).
 * Every step returns 0 or LAMINA_ENOMEM.
 * Internal to liblamina.
 */
#ifndef LAMINA_GRAPH_H
#define LAMINA_GRAPH_H

#include "engine_impl.h"

/* The activations of one layer, in the stage's scratch. */
typedef struct layer_acts {
    lamina_tensor x;            /* [E, T] the residual stream */
    lamina_tensor cur;          /* [E, T] */
    lamina_tensor q, k, v;      /* [Hq*D, T], [Hkv*D, T], [Hkv*Dv, T] */
    lamina_tensor q3, k3;       /* the same q, k as [D, H, T] */
    lamina_tensor att;          /* [Hq*Dv, T] */
    lamina_tensor gate, up;     /* [F, T] */
    lamina_tensor shexp;        /* [E, T] the shared expert's output (models
                                   with one: hp.n_ff_shexp > 0) */
} layer_acts;

void lamina_layer_acts(layer_acts *a, const graph_ctx *g);

/* dst = rms_norm(src) * w (w NULL: no weight), over rows of ne0 */
int lamina_g_norm(node_list *nl, const graph_ctx *g, lamina_tensor dst, lamina_tensor src,
                  const lamina_gguf_tensor *w);
/* dst += src */
int lamina_g_add(node_list *nl, lamina_tensor dst, lamina_tensor src);
/* t *= f */
int lamina_g_scale(node_list *nl, lamina_tensor t, float f);
/* dst = src (same shape) */
int lamina_g_copy(node_list *nl, lamina_tensor dst, lamina_tensor src);
/* q, k, v = W cur (+ b): separate or fused weights and biases */
int lamina_g_qkv(node_list *nl, const graph_ctx *g, const layer_acts *a, const lamina_layer_weights *w);
/* per-head RMS norm of q and k (QK norm) */
int lamina_g_qk_norm(node_list *nl, const graph_ctx *g, const layer_acts *a, const lamina_layer_weights *w);
/* rotary position embedding of q and k as layer il's rope says */
int lamina_g_rope(node_list *nl, const graph_ctx *g, const layer_acts *a, int il);
/* k, v into layer il's cache rows; att = softmax(scale q.k, causal [+ window]) v */
int lamina_g_attention(node_list *nl, const graph_ctx *g, const layer_acts *a, int il);
/* cur = Wo att (+ bo) */
int lamina_g_attn_out(node_list *nl, const graph_ctx *g, const layer_acts *a, const lamina_layer_weights *w);
/* The steps above in order: cur = Wo attn(rope(n_q(q)), rope(n_k(k)), v)
 * with q, k, v = W n(x) (+ b); n_q, n_k where the layer has them */
int lamina_g_self_attention(node_list *nl, const graph_ctx *g, const layer_acts *a,
                            const lamina_layer_weights *w, int il);
/* cur = sum over the k experts the router picks for each token of
 * w_e Wdown_e (act(Wgate_e cur) * Wup_e cur), w_e the router's softmax
 * over the picked (LAMINA_ARCH_F_MOE_RENORM) or over all experts */
int lamina_g_moe_ffn(node_list *nl, const graph_ctx *g, const layer_acts *a, const lamina_layer_weights *w);
/* shexp = sigmoid(Wgs . cur) Wdown_s (act(Wgate_s cur) * Wup_s cur), the
 * shared expert (qwen2moe); cur is only read.  It uses the routed step's
 * areas (gate, up, the experts' outputs) too: run it before that step */
int lamina_g_shared_expert(node_list *nl, const graph_ctx *g, const layer_acts *a, const lamina_layer_weights *w);
/* cur = Wdown (act(Wgate cur) * Wup cur), gate and up separate or fused;
 * without a gate (bert): cur = Wdown act(Wup cur + bup) + bdown */
int lamina_g_ffn(node_list *nl, const graph_ctx *g, const layer_acts *a, const lamina_layer_weights *w);
/* the same from src into dst (src is only read) */
int lamina_g_ffn_io(node_list *nl, const graph_ctx *g, const layer_acts *a, const lamina_layer_weights *w,
                    lamina_tensor dst, lamina_tensor src);
/* dst = layer_norm(src) * w + b (mean subtracted; w, b may be NULL), eps
 * hp.norm_eps */
int lamina_g_layer_norm(node_list *nl, const graph_ctx *g, lamina_tensor dst, lamina_tensor src,
                        const lamina_gguf_tensor *w, const lamina_gguf_tensor *b);
/* dst = a + b */
int lamina_g_add_into(node_list *nl, lamina_tensor dst, lamina_tensor a, lamina_tensor b);

#endif
