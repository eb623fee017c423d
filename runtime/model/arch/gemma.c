/*
 * gemma.c - the Gemma family's layer: gemma2 (soft-capped attention) and
 * gemma3 (QK norm); both norm before and after attention and FFN, scale
 * the embedding by sqrt(n_embd) and gate with GELU (their table rows).
 *
 *   h   = x + n_post(Wo . attn(rope(n_q(Wq n(x))), rope(n_k(Wk n(x))), Wv n(x)))
 *   out = h + n_post2(Wdown . (gelu(Wgate n(h)) * Wup n(h)))
 */
#include "config.h"

#include <math.h>

#include "arch.h"
#include "graph.h"

int lamina_build_gemma_layer(node_list *nl, const graph_ctx *g, int il)
{
    const lamina_layer_weights *w = &g->m->layers[il];
    layer_acts a;
    int rc;
    lamina_layer_acts(&a, g);

    /* 1. attention, normed after the projection: cur = n_post(Wo attn(n(x))) */
    if ((rc = lamina_g_self_attention(nl, g, &a, w, il)) < 0) return rc;
    if ((rc = lamina_g_norm(nl, g, a.cur, a.cur, w->post_attn_norm)) < 0) return rc;
    /* 2. x += cur */
    if ((rc = lamina_g_add(nl, a.x, a.cur)) < 0) return rc;
    /* 3. feed-forward, normed after: x += n_post2(ffn(n(x))) */
    if ((rc = lamina_g_norm(nl, g, a.cur, a.x, w->ffn_norm)) < 0) return rc;
    if ((rc = lamina_g_ffn(nl, g, &a, w)) < 0) return rc;
    if ((rc = lamina_g_norm(nl, g, a.cur, a.cur, w->post_ffw_norm)) < 0) return rc;
    return lamina_g_add(nl, a.x, a.cur);
}

/* The largest Gemma 2 (46 layers) and Gemma 3 (62 layers, 5376 wide)
 * scale queries by 1/sqrt(n_embd / n_head); the other sizes by
 * 1/sqrt(head size), which the common code set. */
int lamina_gemma_hparams(lamina_arch_loader *L, lamina_hparams *hp)
{
    (void)L;
    int big = (hp->n_layer == 46 && hp->n_embd == 4608) || (hp->n_layer == 62 && hp->n_embd == 5376);
    if (big) hp->attn_scale *= sqrtf((float)hp->head_dim) / sqrtf((float)(hp->n_embd / hp->n_head));
    return 0;
}
