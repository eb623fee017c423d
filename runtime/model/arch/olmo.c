/*
 * olmo.c - the OLMo family's layer: olmo2 (OLMo 2).  No norm of the
 * layer's input; q and k RMS-normed over their whole row (all heads
 * together); each branch's output normed before it is added:
 *
 *   h   = x + n_a(Wo . attn(rope(n_q(Wq x)), rope(n_k(Wk x)), Wv x))
 *   out = h + n_f(Wdown . (silu(Wgate h) * Wup h))
 *
 * n_*() is RMS norm times its weight.
 */
#include "config.h"

#include "arch.h"
#include "graph.h"

int lamina_build_olmo2_layer(node_list *nl, const graph_ctx *g, int il)
{
    const lamina_layer_weights *w = &g->m->layers[il];
    layer_acts a;
    int rc;
    lamina_layer_acts(&a, g);

    /* 1. attention on x itself: q, k, v = W x; q, k normed as whole rows */
    if ((rc = lamina_g_copy(nl, a.cur, a.x)) < 0) return rc;
    if ((rc = lamina_g_qkv(nl, g, &a, w)) < 0) return rc;
    if ((rc = lamina_g_norm(nl, g, a.q, a.q, w->q_norm_row)) < 0) return rc;
    if ((rc = lamina_g_norm(nl, g, a.k, a.k, w->k_norm_row)) < 0) return rc;
    if ((rc = lamina_g_rope(nl, g, &a, il)) < 0) return rc;
    if ((rc = lamina_g_attention(nl, g, &a, il)) < 0) return rc;
    if ((rc = lamina_g_attn_out(nl, g, &a, w)) < 0) return rc;
    /* 2. x += n_a(cur) */
    if ((rc = lamina_g_norm(nl, g, a.cur, a.cur, w->post_attn_norm)) < 0) return rc;
    if ((rc = lamina_g_add(nl, a.x, a.cur)) < 0) return rc;
    /* 3. x += n_f(ffn(x)) */
    if ((rc = lamina_g_copy(nl, a.cur, a.x)) < 0) return rc;
    if ((rc = lamina_g_ffn(nl, g, &a, w)) < 0) return rc;
    if ((rc = lamina_g_norm(nl, g, a.cur, a.cur, w->post_ffw_norm)) < 0) return rc;
    return lamina_g_add(nl, a.x, a.cur);
}
