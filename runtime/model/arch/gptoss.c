/*
 * gptoss.c - OpenAI's gpt-oss (gpt-oss-20b, gpt-oss-120b).  A mixture of
 * experts whose every projection has a bias, attention with a learned
 * sink per head, every other layer windowed, YaRN positions:
 *
 *   h   = x + Wo . attn_s(rope(Wq n(x) + bq), rope(Wk n(x) + bk), Wv n(x) + bv) + bo
 *   out = h + sum_{e in topk(Wr n'(h) + br)} w_e (Wdown_e . swiglu_oai(Wgate_e n'(h) + bgate_e,
 *                                                              Wup_e n'(h) + bup_e) + bdown_e)
 *
 * n() and n'() are RMS norms times attn_norm and post_attention_norm (the
 * FFN's input norm, under that name in these files); attn_s the softmax
 * with sinks[h] in its denominator; w_e the softmax over the k chosen
 * router logits; swiglu_oai(g, u) = min(g, 7) sigmoid(1.702 min(g, 7))
 * (clamp(u, -7, 7) + 1).
 */
#include "config.h"

#include "lamina/plugin.h"
#include "arch.h"
#include "graph.h"

int lamina_build_gptoss_layer(node_list *nl, const graph_ctx *g, int il)
{
    const lamina_layer_weights *w = &g->m->layers[il];
    layer_acts a;
    int rc;
    lamina_layer_acts(&a, g);

    /* 1. attention with sinks (lamina_g_attention adds them); x += it */
    if ((rc = lamina_g_self_attention(nl, g, &a, w, il)) < 0) return rc;
    if ((rc = lamina_g_add(nl, a.x, a.cur)) < 0) return rc;
    /* 2. the experts, with their biases, on n'(x); x += their sum */
    if ((rc = lamina_g_norm(nl, g, a.cur, a.x, w->post_attn_norm)) < 0) return rc;
    if ((rc = lamina_g_moe_ffn(nl, g, &a, w)) < 0) return rc;
    return lamina_g_add(nl, a.x, a.cur);
}

/* What the design fixes and the files do not record: the gated
 * activation's slope and limit. */
int lamina_gptoss_hparams(lamina_arch_loader *L, lamina_hparams *hp)
{
    (void)L;
    hp->glu_alpha = 1.702f;
    hp->glu_limit = 7.0f;
    return 0;
}
