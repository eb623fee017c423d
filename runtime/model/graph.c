/*
 * graph.c - the forward pass of the supported architectures as lamina
 * nodes.  One function per stage: input (embedding), one transformer layer,
 * output (final norm and head).  Shapes use the ABI's [ne0, ne1, ne2]
 * notation; T is the number of tokens in the batch.
 *
 * Llama / Qwen2 layer (pre-norm):
 *   h   = x + Wo . attn(rope(Wq n(x)), rope(Wk n(x)), Wv n(x))
 *   out = h + Wdown . (silu(Wgate n(h)) * Wup n(h))
 * Gemma 3 layer (pre- and post-norm, QK norm, GELU):
 *   h   = x + n_post(Wo . attn(rope(n_q(Wq n(x))), rope(n_k(Wk n(x))), Wv n(x)))
 *   out = h + n_post2(Wdown . (gelu(Wgate n(h)) * Wup n(h)))
 * where n() is RMS norm times its weight.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "lamina/quant.h"
#include "engine_impl.h"

/* A contiguous tensor [ne0, ne1, ne2] at `off` in `buf`. */
static lamina_tensor ten(lamina_buffer *buf, uint64_t off, uint32_t type,
                         int64_t ne0, int64_t ne1, int64_t ne2)
{
    lamina_tensor t;
    memset(&t, 0, sizeof t);
    const lamina_type_traits *tr = lamina_type_get(type);
    t.type = type;
    t.ne[0] = ne0; t.ne[1] = ne1; t.ne[2] = ne2; t.ne[3] = 1;
    t.nb[0] = tr ? tr->type_size : 0;
    t.nb[1] = lamina_row_size(type, ne0);
    t.nb[2] = t.nb[1] * (uint64_t)ne1;
    t.nb[3] = t.nb[2] * (uint64_t)ne2;
    t.buffer = buf;
    t.offset = off;
    return t;
}

static lamina_tensor wten(const graph_ctx *g, const lamina_gguf_tensor *w)
{
    weight_ref r = g->weight(g->weight_ctx, w);
    return ten(r.buf, r.offset, w->type, w->ne[0], w->ne[1], 1);
}

static lamina_node *push(node_list *nl, uint32_t op)
{
    if (nl->n == nl->cap) {
        int cap = nl->cap ? nl->cap * 2 : 64;
        lamina_node *v = realloc(nl->v, (size_t)cap * sizeof *v);
        if (!v) return NULL;
        nl->v = v;
        nl->cap = cap;
    }
    lamina_node *n = &nl->v[nl->n++];
    memset(n, 0, sizeof *n);
    n->op = op;
    return n;
}

void lamina_node_list_free(node_list *nl)
{
    free(nl->v);
    nl->v = NULL;
    nl->n = nl->cap = 0;
}

#define PUSH(op) do { if (!(n = push(nl, (op)))) return LAMINA_ENOMEM; } while (0)

/* dst = rms_norm(src) * w, over rows of ne0 */
static int rms_norm(node_list *nl, lamina_tensor dst, lamina_tensor src,
                    const lamina_tensor *w, float eps)
{
    lamina_node *n;
    PUSH(LAMINA_OP_RMS_NORM);
    n->dst = dst;
    n->src[0] = src;
    n->n_src = 1;
    if (w) { n->src[1] = *w; n->n_src = 2; }
    n->fp[0] = eps;
    return 0;
}

static int mul_mat(node_list *nl, lamina_tensor dst, lamina_tensor w, lamina_tensor x)
{
    lamina_node *n;
    PUSH(LAMINA_OP_MUL_MAT);
    n->dst = dst;
    n->src[0] = w;
    n->src[1] = x;
    n->n_src = 2;
    return 0;
}

static int binary(node_list *nl, uint32_t op, lamina_tensor dst, lamina_tensor a, lamina_tensor b)
{
    lamina_node *n;
    PUSH(op);
    n->dst = dst;
    n->src[0] = a;
    n->src[1] = b;
    n->n_src = 2;
    return 0;
}

int lamina_graph_input(node_list *nl, const graph_ctx *g)
{
    const lamina_hparams *hp = &g->m->hp;
    const stage_mem *mem = g->mem;
    const int32_t T = g->n_tokens;
    lamina_node *n;
    lamina_tensor x = ten(mem->scratch, mem->x, LAMINA_TYPE_F32, hp->n_embd, T, 1);

    /* x[:, t] = dequant(tok_embd[:, ids[t]]) */
    PUSH(LAMINA_OP_GET_ROWS);
    n->dst = x;
    n->src[0] = wten(g, g->m->tok_embd);
    n->src[1] = ten(mem->scratch, mem->ids, LAMINA_TYPE_I32, T, 1, 1);
    n->n_src = 2;
    /* x *= embd_scale (Gemma: sqrt(n_embd)) */
    if (hp->embd_scale != 1.0f) {
        PUSH(LAMINA_OP_SCALE);
        n->dst = x;
        n->src[0] = x;
        n->n_src = 1;
        n->fp[0] = hp->embd_scale;
    }
    return 0;
}

int lamina_graph_layer(node_list *nl, const graph_ctx *g, int il)
{
    const lamina_model *m = g->m;
    const lamina_hparams *hp = &m->hp;
    const lamina_layer_weights *w = &m->layers[il];
    const stage_mem *mem = g->mem;
    lamina_buffer *s = mem->scratch;
    const int32_t T = g->n_tokens;
    const int64_t E = hp->n_embd, D = hp->head_dim, Dv = hp->head_dim_v;
    const int64_t Hq = hp->n_head, Hkv = hp->n_head_kv, F = hp->n_ff;
    const int64_t R = (int64_t)g->p->n_seq * g->p->n_ctx;     /* cache rows */
    const int swa = hp->is_swa[il];
    lamina_node *n;
    int rc;

    lamina_tensor x   = ten(s, mem->x,   LAMINA_TYPE_F32, E, T, 1);
    lamina_tensor cur = ten(s, mem->cur, LAMINA_TYPE_F32, E, T, 1);
    lamina_tensor q   = ten(s, mem->q,   LAMINA_TYPE_F32, Hq * D, T, 1);
    lamina_tensor k   = ten(s, mem->k,   LAMINA_TYPE_F32, Hkv * D, T, 1);
    lamina_tensor v   = ten(s, mem->v,   LAMINA_TYPE_F32, Hkv * Dv, T, 1);
    lamina_tensor q3  = ten(s, mem->q,   LAMINA_TYPE_F32, D, Hq, T);   /* per head */
    lamina_tensor k3  = ten(s, mem->k,   LAMINA_TYPE_F32, D, Hkv, T);
    lamina_tensor att = ten(s, mem->att, LAMINA_TYPE_F32, Hq * Dv, T, 1);
    lamina_tensor gt  = ten(s, mem->g,   LAMINA_TYPE_F32, F, T, 1);
    lamina_tensor up  = ten(s, mem->u,   LAMINA_TYPE_F32, F, T, 1);
    lamina_tensor pos = ten(s, mem->pos, LAMINA_TYPE_I32, T, 1, 1);
    lamina_tensor rows = ten(s, mem->rows, LAMINA_TYPE_I32, T, 1, 1);
    lamina_tensor info = ten(s, mem->info, LAMINA_TYPE_I32, 2, T, 1);
    lamina_tensor kc  = ten(mem->kv, mem->k_off[il], mem->kv_type, Hkv * D, R, 1);
    lamina_tensor vc  = ten(mem->kv, mem->v_off[il], mem->kv_type, Hkv * Dv, R, 1);

    /* 1. cur = n(x) */
    lamina_tensor wn = wten(g, w->attn_norm);
    if ((rc = rms_norm(nl, cur, x, &wn, hp->eps)) < 0) return rc;
    /* 2. q, k, v = W cur (+ b) */
    if ((rc = mul_mat(nl, q, wten(g, w->wq), cur)) < 0) return rc;
    if ((rc = mul_mat(nl, k, wten(g, w->wk), cur)) < 0) return rc;
    if ((rc = mul_mat(nl, v, wten(g, w->wv), cur)) < 0) return rc;
    if (w->bq && (rc = binary(nl, LAMINA_OP_ADD, q, q, wten(g, w->bq))) < 0) return rc;
    if (w->bk && (rc = binary(nl, LAMINA_OP_ADD, k, k, wten(g, w->bk))) < 0) return rc;
    if (w->bv && (rc = binary(nl, LAMINA_OP_ADD, v, v, wten(g, w->bv))) < 0) return rc;
    /* 3. QK norm per head (Gemma 3) */
    if (w->q_norm) {
        lamina_tensor qn = wten(g, w->q_norm);
        if ((rc = rms_norm(nl, q3, q3, &qn, hp->eps)) < 0) return rc;
    }
    if (w->k_norm) {
        lamina_tensor kn = wten(g, w->k_norm);
        if ((rc = rms_norm(nl, k3, k3, &kn, hp->eps)) < 0) return rc;
    }
    /* 4. rotary position embedding on q and k, per the layer kind */
    float base = swa ? hp->rope_base_swa : hp->rope_base;
    float scale = (swa && hp->arch == LAMINA_ARCH_GEMMA3) ? 1.0f : hp->rope_scale;
    lamina_tensor *qk[2] = { &q3, &k3 };
    for (int i = 0; i < 2; i++) {
        PUSH(LAMINA_OP_ROPE);
        n->dst = *qk[i];
        n->src[0] = *qk[i];
        n->src[1] = pos;
        n->n_src = 2;
        if (m->rope_freqs) { n->src[2] = wten(g, m->rope_freqs); n->n_src = 3; }
        n->ip[0] = hp->rope_mode;
        n->ip[1] = hp->n_rot;
        n->fp[0] = base;
        n->fp[1] = scale;
    }
    /* 5. write k and v into this layer's cache rows */
    PUSH(LAMINA_OP_SET_ROWS);
    n->dst = kc; n->src[0] = k; n->src[1] = rows; n->n_src = 2;
    PUSH(LAMINA_OP_SET_ROWS);
    n->dst = vc; n->src[0] = v; n->src[1] = rows; n->n_src = 2;
    /* 6. att = softmax(scale q.k^T, causal [+ window]) v */
    PUSH(LAMINA_OP_ATTENTION);
    n->dst = att;
    n->src[0] = q3; n->src[1] = kc; n->src[2] = vc; n->src[3] = info;
    n->n_src = 4;
    n->ip[0] = swa ? hp->n_swa : 0;
    n->fp[0] = hp->attn_scale;
    n->fp[1] = hp->attn_softcap;
    /* 7. cur = Wo att [-> post norm]; x += cur */
    if ((rc = mul_mat(nl, cur, wten(g, w->wo), att)) < 0) return rc;
    if (w->post_attn_norm) {
        lamina_tensor pn = wten(g, w->post_attn_norm);
        if ((rc = rms_norm(nl, cur, cur, &pn, hp->eps)) < 0) return rc;
    }
    if ((rc = binary(nl, LAMINA_OP_ADD, x, x, cur)) < 0) return rc;
    /* 8. feed-forward: cur = Wdown (act(Wgate n(x)) * Wup n(x)) [-> post norm]; x += cur */
    lamina_tensor fn = wten(g, w->ffn_norm);
    if ((rc = rms_norm(nl, cur, x, &fn, hp->eps)) < 0) return rc;
    if ((rc = mul_mat(nl, gt, wten(g, w->ffn_gate), cur)) < 0) return rc;
    if ((rc = mul_mat(nl, up, wten(g, w->ffn_up), cur)) < 0) return rc;
    PUSH(LAMINA_OP_GLU);
    n->dst = gt; n->src[0] = gt; n->src[1] = up; n->n_src = 2;
    n->ip[0] = hp->act;
    if ((rc = mul_mat(nl, cur, wten(g, w->ffn_down), gt)) < 0) return rc;
    if (w->post_ffw_norm) {
        lamina_tensor pn = wten(g, w->post_ffw_norm);
        if ((rc = rms_norm(nl, cur, cur, &pn, hp->eps)) < 0) return rc;
    }
    return binary(nl, LAMINA_OP_ADD, x, x, cur);
}

int lamina_graph_output(node_list *nl, const graph_ctx *g)
{
    const lamina_hparams *hp = &g->m->hp;
    const stage_mem *mem = g->mem;
    lamina_buffer *s = mem->scratch;
    const int32_t T = g->n_tokens, O = g->n_out;
    lamina_node *n;
    int rc;

    lamina_tensor x  = ten(s, mem->x,  LAMINA_TYPE_F32, hp->n_embd, T, 1);
    lamina_tensor on = wten(g, g->m->output_norm);
    /* 0. hidden states without the head (embeddings): cur = n(the rows of
     *    x asked for).  The layers are done with `cur`; it has T rows. */
    if (g->n_hid > 0) {
        lamina_tensor xh = ten(s, mem->cur, LAMINA_TYPE_F32, hp->n_embd, g->n_hid, 1);
        PUSH(LAMINA_OP_GET_ROWS);
        n->dst = xh;
        n->src[0] = x;
        n->src[1] = ten(s, mem->houts, LAMINA_TYPE_I32, g->n_hid, 1, 1);
        n->n_src = 2;
        if ((rc = rms_norm(nl, xh, xh, &on, hp->eps)) < 0) return rc;
    }
    if (O == 0) return 0;
    lamina_tensor xo = ten(s, mem->xo, LAMINA_TYPE_F32, hp->n_embd, O, 1);
    /* 1. xo = the rows of x that want logits */
    PUSH(LAMINA_OP_GET_ROWS);
    n->dst = xo;
    n->src[0] = x;
    n->src[1] = ten(s, mem->outs, LAMINA_TYPE_I32, O, 1, 1);
    n->n_src = 2;
    /* 2. xo = n(xo); logits = W_out xo */
    if ((rc = rms_norm(nl, xo, xo, &on, hp->eps)) < 0) return rc;
    return mul_mat(nl, ten(s, mem->logits, LAMINA_TYPE_F32, hp->n_vocab, O, 1),
                   wten(g, g->m->output), xo);
}

static uint64_t take(uint64_t *at, uint64_t bytes)
{
    uint64_t off = *at;
    *at += (bytes + 255) & ~(uint64_t)255;
    return off;
}

uint64_t lamina_stage_layout(stage_mem *mem, const lamina_model *m,
                             const lamina_engine_params *p, int with_output)
{
    const lamina_hparams *hp = &m->hp;
    const uint64_t T = (uint64_t)p->n_batch, O = (uint64_t)p->n_outputs, f = sizeof(float);
    uint64_t at = 0;
    mem->x    = take(&at, (uint64_t)hp->n_embd * T * f);
    mem->cur  = take(&at, (uint64_t)hp->n_embd * T * f);
    mem->q    = take(&at, (uint64_t)hp->n_head * hp->head_dim * T * f);
    mem->k    = take(&at, (uint64_t)hp->n_head_kv * hp->head_dim * T * f);
    mem->v    = take(&at, (uint64_t)hp->n_head_kv * hp->head_dim_v * T * f);
    mem->att  = take(&at, (uint64_t)hp->n_head * hp->head_dim_v * T * f);
    mem->g    = take(&at, (uint64_t)hp->n_ff * T * f);
    mem->u    = take(&at, (uint64_t)hp->n_ff * T * f);
    mem->xo   = take(&at, (uint64_t)hp->n_embd * O * f);
    mem->logits = with_output ? take(&at, (uint64_t)hp->n_vocab * O * f) : 0;
    mem->ids  = take(&at, T * 4);
    mem->pos  = take(&at, T * 4);
    mem->rows = take(&at, T * 4);
    mem->info = take(&at, 2 * T * 4);
    mem->outs = take(&at, O * 4);
    mem->houts = take(&at, T * 4);
    return at;
}

uint64_t lamina_kv_layer_bytes(const lamina_model *m, const lamina_engine_params *p)
{
    const lamina_hparams *hp = &m->hp;
    uint64_t rows = (uint64_t)p->n_seq * (uint64_t)p->n_ctx;
    uint64_t el = p->kv_f32 ? 4 : 2;
    return rows * (uint64_t)hp->n_head_kv * (uint64_t)(hp->head_dim + hp->head_dim_v) * el;
}
