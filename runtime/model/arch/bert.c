/*
 * bert.c - the BERT family's encoder layer: bert (all-MiniLM, bge-*,
 * mxbai-embed-large, snowflake-arctic-embed).  Post-norm: each branch is
 * added to its input and the sum normed (LayerNorm with weight and bias);
 * attention goes both ways over the whole sequence (the engine gives every
 * query its sequence's last position, hp.causal = 0), without rotary
 * positions (the input stage adds absolute position rows, graph.c).
 *
 *   h   = LN_attn(x + Wo . attn(Wq x + bq, Wk x + bk, Wv x + bv) + bo)
 *   out = LN_out(h + Wdown . gelu(Wup h + bup) + bdown)
 *
 * gelu is the tanh approximation, as llama.cpp's BERT graph uses.
 * nomic-bert is the same layer with q and k rotated (NEOX RoPE, no
 * position rows) and a gated FFN, Wdown . (silu(Wgate h) * Wup h).
 */
#include "config.h"

#include "arch.h"
#include "graph.h"

int lamina_build_bert_layer(node_list *nl, const graph_ctx *g, int il)
{
    const lamina_layer_weights *w = &g->m->layers[il];
    layer_acts a, in;
    int rc;
    lamina_layer_acts(&a, g);
    in = a;
    in.cur = a.x;                       /* q, k, v straight from the residual stream */

    /* 1. q, k, v = W x + b; [rope]; attention over the whole sequence */
    if ((rc = lamina_g_qkv(nl, g, &in, w)) < 0) return rc;
    if (g->m->hp.rope_mode >= 0 && (rc = lamina_g_rope(nl, g, &a, il)) < 0) return rc;
    if ((rc = lamina_g_attention(nl, g, &a, il)) < 0) return rc;
    /* 2. cur = Wo att + bo + x;  x = LN_attn(cur) */
    if ((rc = lamina_g_attn_out(nl, g, &a, w)) < 0) return rc;
    if ((rc = lamina_g_add(nl, a.cur, a.x)) < 0) return rc;
    if ((rc = lamina_g_layer_norm(nl, g, a.x, a.cur, w->attn_out_norm, w->attn_out_norm_b)) < 0) return rc;
    /* 3. cur = ffn(x) + x;  x = LN_out(cur) */
    if ((rc = lamina_g_ffn_io(nl, g, &a, w, a.cur, a.x)) < 0) return rc;
    if ((rc = lamina_g_add(nl, a.cur, a.x)) < 0) return rc;
    return lamina_g_layer_norm(nl, g, a.x, a.cur, w->layer_out_norm, w->layer_out_norm_b);
}
