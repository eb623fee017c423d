/*
 * llama.c - the Llama family's layer: llama (Llama 2/3, Mistral, SmolLM2),
 * qwen2 (q/k/v biases), qwen3 (QK norm), phi3 (fused q/k/v and gate/up);
 * and with a mixture of experts as the FFN, qwen3moe.
 * Which of those a model has is its table row (arch.c), checked at load.
 *
 *   h   = x + Wo . attn(rope(n_q(Wq n(x) + bq)), rope(n_k(Wk n(x) + bk)), Wv n(x) + bv)
 *   out = h + Wdown . (silu(Wgate n(h)) * Wup n(h))
 *
 * n() is RMS norm times its weight; n_q/n_k only where the row has them.
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

    /* 1. attention: cur = n(x); q, k, v; [QK norm]; rope; attend; project */
    if ((rc = lamina_g_self_attention(nl, g, &a, w, il)) < 0) return rc;
    /* 2. x += cur */
    if ((rc = lamina_g_add(nl, a.x, a.cur)) < 0) return rc;
    /* 3. feed-forward: cur = ffn(n(x)); x += cur */
    if ((rc = lamina_g_norm(nl, g, a.cur, a.x, w->ffn_norm)) < 0) return rc;
    if ((rc = lamina_g_ffn(nl, g, &a, w)) < 0) return rc;
    return lamina_g_add(nl, a.x, a.cur);
}

/* The same attention; the FFN a mixture of experts:
 *   out = h + sum_{e in topk(router n(h))} w_e Wdown_e . (silu(Wgate_e n(h)) * Wup_e n(h)) */
int lamina_build_llama_moe_layer(node_list *nl, const graph_ctx *g, int il)
{
    const lamina_layer_weights *w = &g->m->layers[il];
    layer_acts a;
    int rc;
    lamina_layer_acts(&a, g);

    if ((rc = lamina_g_self_attention(nl, g, &a, w, il)) < 0) return rc;
    if ((rc = lamina_g_add(nl, a.x, a.cur)) < 0) return rc;
    if ((rc = lamina_g_norm(nl, g, a.cur, a.x, w->ffn_norm)) < 0) return rc;
    if ((rc = lamina_g_moe_ffn(nl, g, &a, w)) < 0) return rc;
    return lamina_g_add(nl, a.x, a.cur);
}
