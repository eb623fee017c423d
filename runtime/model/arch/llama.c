/*
 * llama.c - the Llama family's layer: llama (Llama 2/3, Mistral, SmolLM2),
 * qwen2 (q/k/v biases), qwen3 (QK norm), phi3 (fused q/k/v and gate/up);
 * and with a mixture of experts as the FFN, qwen3moe and qwen2moe (with
 * its shared expert).
 * Which of those a model has is its table row (arch.c), checked at load.
 *
 *   h   = x + Wo . attn(rope(n_q(Wq n(x) + bq)), rope(n_k(Wk n(x) + bk)), Wv n(x) + bv)
 *   out = h + Wdown . (silu(Wgate n(h)) * Wup n(h))
 *
 * n() is RMS norm times its weight; n_q/n_k only where the row has them.
 * granite is the same layer with its branches (the attention's and the
 * FFN's output) times residual_scale before they are added, and its own
 * embedding, attention and logit scales (lamina_granite_hparams).
 */
#include "config.h"

#include "arch.h"
#include "graph.h"

int lamina_build_llama_layer(node_list *nl, const graph_ctx *g, int il)
{
    const lamina_layer_weights *w = &g->m->layers[il];
    layer_acts a;
    int rc;
    lamina_layer_acts(&a, g);

    const float rs = g->m->hp.residual_scale;
    /* 1. attention: cur = n(x); q, k, v; [QK norm]; rope; attend; project */
    if ((rc = lamina_g_self_attention(nl, g, &a, w, il)) < 0) return rc;
    /* 2. x += [residual_scale] cur */
    if (rs != 1.0f && (rc = lamina_g_scale(nl, a.cur, rs)) < 0) return rc;
    if ((rc = lamina_g_add(nl, a.x, a.cur)) < 0) return rc;
    /* 3. feed-forward: cur = ffn(n(x)); x += [residual_scale] cur */
    if ((rc = lamina_g_norm(nl, g, a.cur, a.x, w->ffn_norm)) < 0) return rc;
    if ((rc = lamina_g_ffn(nl, g, &a, w)) < 0) return rc;
    if (rs != 1.0f && (rc = lamina_g_scale(nl, a.cur, rs)) < 0) return rc;
    return lamina_g_add(nl, a.x, a.cur);
}

/* Granite's scales: the logits divided by logit_scale (required), and
 * where the file gives them, embeddings times embedding_scale, branches
 * times residual_scale and q.k times attention.scale (instead of
 * 1/sqrt(head size)). */
int lamina_granite_hparams(lamina_arch_loader *L, lamina_hparams *hp)
{
    float ls, es = 0, rs = 0, as = 0;
    int rc;
    if ((rc = lamina_arch_key_f32_required(L, "logit_scale", &ls)) < 0 ||
        (rc = lamina_arch_key_f32(L, "embedding_scale", 0, &es)) < 0 ||
        (rc = lamina_arch_key_f32(L, "residual_scale", 0, &rs)) < 0 ||
        (rc = lamina_arch_key_f32(L, "attention.scale", 0, &as)) < 0)
        return rc;
    if (ls <= 0 || es < 0 || rs < 0 || as < 0)
        return lamina_arch_error(L, "granite scales must be positive (logit %g, embedding %g, residual %g, "
                                    "attention %g)", ls, es, rs, as);
    hp->logit_scale = 1.0f / ls;
    if (es > 0) hp->embd_scale = es;
    if (rs > 0) hp->residual_scale = rs;
    if (as > 0) hp->attn_scale = as;
    return 0;
}

/* The same attention; the FFN a mixture of experts:
 *   out = h + sum_{e in topk(router n(h))} w_e Wdown_e . (silu(Wgate_e n(h)) * Wup_e n(h))
 *           [+ sigmoid(Wgs . n(h)) Wdown_s . (silu(Wgate_s n(h)) * Wup_s n(h))]
 * w_e the router's softmax over the k chosen (qwen3moe) or over all experts
 * (qwen2moe); the bracket, a shared expert every token uses, where the
 * layer has one (qwen2moe). */
int lamina_build_llama_moe_layer(node_list *nl, const graph_ctx *g, int il)
{
    const lamina_layer_weights *w = &g->m->layers[il];
    layer_acts a;
    int rc;
    lamina_layer_acts(&a, g);

    if ((rc = lamina_g_self_attention(nl, g, &a, w, il)) < 0) return rc;
    if ((rc = lamina_g_add(nl, a.x, a.cur)) < 0) return rc;
    if ((rc = lamina_g_norm(nl, g, a.cur, a.x, w->ffn_norm)) < 0) return rc;
    /* the shared expert first, while cur holds n(h); the routed ones
     * overwrite cur; then their sums added */
    if (w->ffn_up_shexp && (rc = lamina_g_shared_expert(nl, g, &a, w)) < 0) return rc;
    if ((rc = lamina_g_moe_ffn(nl, g, &a, w)) < 0) return rc;
    if (w->ffn_up_shexp && (rc = lamina_g_add(nl, a.cur, a.shexp)) < 0) return rc;
    return lamina_g_add(nl, a.x, a.cur);
}
