/*
 * graph.c - the forward pass as lamina nodes: the input (embedding) and
 * output (final norm and head) stages, and the steps (graph.h) the family
 * builders in runtime/model/arch/ make a layer of.  Shapes use the ABI's
 * [ne0, ne1, ne2] notation; T is the number of tokens in the batch.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "lamina/quant.h"
#include "arch.h"
#include "graph.h"

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
    int rc;
    lamina_tensor x = ten(mem->scratch, mem->x, LAMINA_TYPE_F32, hp->n_embd, T, 1);
    lamina_tensor cur = ten(mem->scratch, mem->cur, LAMINA_TYPE_F32, hp->n_embd, T, 1);

    /* x[:, t] = dequant(tok_embd[:, ids[t]]) */
    PUSH(LAMINA_OP_GET_ROWS);
    n->dst = x;
    n->src[0] = wten(g, g->m->tok_embd);
    n->src[1] = ten(mem->scratch, mem->ids, LAMINA_TYPE_I32, T, 1, 1);
    n->n_src = 2;
    /* encoders (bert): x += token_types[:, type[t]] (every token type 0);
     * x += position_embd[:, pos[t]]; x = layer_norm(x) * w + b */
    if (g->m->type_embd) {
        PUSH(LAMINA_OP_GET_ROWS);
        n->dst = cur;
        n->src[0] = wten(g, g->m->type_embd);
        n->src[1] = ten(mem->scratch, mem->types, LAMINA_TYPE_I32, T, 1, 1);
        n->n_src = 2;
        if ((rc = binary(nl, LAMINA_OP_ADD, x, x, cur)) < 0) return rc;
    }
    if (g->m->pos_embd) {
        PUSH(LAMINA_OP_GET_ROWS);
        n->dst = cur;
        n->src[0] = wten(g, g->m->pos_embd);
        n->src[1] = ten(mem->scratch, mem->pos, LAMINA_TYPE_I32, T, 1, 1);
        n->n_src = 2;
        if ((rc = binary(nl, LAMINA_OP_ADD, x, x, cur)) < 0) return rc;
    }
    if (g->m->tok_norm && (rc = lamina_g_layer_norm(nl, g, x, x, g->m->tok_norm, g->m->tok_norm_b)) < 0)
        return rc;
    /* x *= embd_scale (Gemma: sqrt(n_embd); Granite: its embedding_scale) */
    return hp->embd_scale != 1.0f ? lamina_g_scale(nl, x, hp->embd_scale) : 0;
}

int lamina_g_layer_norm(node_list *nl, const graph_ctx *g, lamina_tensor dst, lamina_tensor src,
                        const lamina_gguf_tensor *w, const lamina_gguf_tensor *b)
{
    lamina_node *n;
    PUSH(LAMINA_OP_NORM);
    n->dst = dst;
    n->src[0] = src;
    n->n_src = 1;
    if (w) { n->src[1] = wten(g, w); n->n_src = 2; }
    if (w && b) { n->src[2] = wten(g, b); n->n_src = 3; }
    n->fp[0] = g->m->hp.norm_eps;
    return 0;
}

int lamina_g_add_into(node_list *nl, lamina_tensor dst, lamina_tensor a, lamina_tensor b)
{
    return binary(nl, LAMINA_OP_ADD, dst, a, b);
}

/* A row range [row0, row0 + rows) of weight w: a view of a fused weight
 * (rows of every type are whole blocks, so the range is contiguous). */
static lamina_tensor wrows(const graph_ctx *g, const lamina_gguf_tensor *w, int64_t row0, int64_t rows)
{
    lamina_tensor t = wten(g, w);
    t.offset += (uint64_t)row0 * t.nb[1];
    t.ne[1] = rows;
    t.nb[2] = t.nb[3] = t.nb[1] * (uint64_t)rows;
    return t;
}

void lamina_layer_acts(layer_acts *a, const graph_ctx *g)
{
    const lamina_hparams *hp = &g->m->hp;
    const stage_mem *mem = g->mem;
    lamina_buffer *s = mem->scratch;
    const int32_t T = g->n_tokens;
    const int64_t E = hp->n_embd, D = hp->head_dim, Dv = hp->head_dim_v;
    const int64_t Hq = hp->n_head, Hkv = hp->n_head_kv, F = hp->n_ff;
    a->x    = ten(s, mem->x,   LAMINA_TYPE_F32, E, T, 1);
    a->cur  = ten(s, mem->cur, LAMINA_TYPE_F32, E, T, 1);
    a->q    = ten(s, mem->q,   LAMINA_TYPE_F32, Hq * D, T, 1);
    a->k    = ten(s, mem->k,   LAMINA_TYPE_F32, Hkv * D, T, 1);
    a->v    = ten(s, mem->v,   LAMINA_TYPE_F32, Hkv * Dv, T, 1);
    a->q3   = ten(s, mem->q,   LAMINA_TYPE_F32, D, Hq, T);
    a->k3   = ten(s, mem->k,   LAMINA_TYPE_F32, D, Hkv, T);
    a->att  = ten(s, mem->att, LAMINA_TYPE_F32, Hq * Dv, T, 1);
    a->gate = ten(s, mem->g,   LAMINA_TYPE_F32, F, T, 1);
    a->up   = ten(s, mem->u,   LAMINA_TYPE_F32, F, T, 1);
    a->shexp = ten(s, mem->sh,  LAMINA_TYPE_F32, E, T, 1);
}

int lamina_g_norm(node_list *nl, const graph_ctx *g, lamina_tensor dst, lamina_tensor src,
                  const lamina_gguf_tensor *w)
{
    lamina_tensor wt;
    if (w) wt = wten(g, w);
    return rms_norm(nl, dst, src, w ? &wt : NULL, g->m->hp.eps);
}

int lamina_g_add(node_list *nl, lamina_tensor dst, lamina_tensor src)
{
    return binary(nl, LAMINA_OP_ADD, dst, dst, src);
}

int lamina_g_scale(node_list *nl, lamina_tensor t, float f)
{
    lamina_node *n;
    PUSH(LAMINA_OP_SCALE);
    n->dst = t;
    n->src[0] = t;
    n->n_src = 1;
    n->fp[0] = f;
    return 0;
}

int lamina_g_copy(node_list *nl, lamina_tensor dst, lamina_tensor src)
{
    lamina_node *n;
    PUSH(LAMINA_OP_COPY);
    n->dst = dst;
    n->src[0] = src;
    n->n_src = 1;
    return 0;
}

int lamina_g_qkv(node_list *nl, const graph_ctx *g, const layer_acts *a, const lamina_layer_weights *w)
{
    const lamina_hparams *hp = &g->m->hp;
    const int64_t Dq = (int64_t)hp->n_head * hp->head_dim, Dk = (int64_t)hp->n_head_kv * hp->head_dim;
    const int64_t Dv = (int64_t)hp->n_head_kv * hp->head_dim_v;
    int rc;
    if (w->wqkv) {                      /* rows: q, then k, then v */
        if ((rc = mul_mat(nl, a->q, wrows(g, w->wqkv, 0, Dq), a->cur)) < 0) return rc;
        if ((rc = mul_mat(nl, a->k, wrows(g, w->wqkv, Dq, Dk), a->cur)) < 0) return rc;
        if ((rc = mul_mat(nl, a->v, wrows(g, w->wqkv, Dq + Dk, Dv), a->cur)) < 0) return rc;
    } else {
        if ((rc = mul_mat(nl, a->q, wten(g, w->wq), a->cur)) < 0) return rc;
        if ((rc = mul_mat(nl, a->k, wten(g, w->wk), a->cur)) < 0) return rc;
        if ((rc = mul_mat(nl, a->v, wten(g, w->wv), a->cur)) < 0) return rc;
    }
    if (w->bqkv) {                      /* a vector: its "rows" are elements */
        weight_ref r = g->weight(g->weight_ctx, w->bqkv);
        lamina_tensor bq = ten(r.buf, r.offset, LAMINA_TYPE_F32, Dq, 1, 1);
        lamina_tensor bk = ten(r.buf, r.offset + (uint64_t)Dq * sizeof(float), LAMINA_TYPE_F32, Dk, 1, 1);
        lamina_tensor bv = ten(r.buf, r.offset + (uint64_t)(Dq + Dk) * sizeof(float), LAMINA_TYPE_F32, Dv, 1, 1);
        if ((rc = binary(nl, LAMINA_OP_ADD, a->q, a->q, bq)) < 0) return rc;
        if ((rc = binary(nl, LAMINA_OP_ADD, a->k, a->k, bk)) < 0) return rc;
        return binary(nl, LAMINA_OP_ADD, a->v, a->v, bv);
    }
    if (w->bq && (rc = binary(nl, LAMINA_OP_ADD, a->q, a->q, wten(g, w->bq))) < 0) return rc;
    if (w->bk && (rc = binary(nl, LAMINA_OP_ADD, a->k, a->k, wten(g, w->bk))) < 0) return rc;
    if (w->bv && (rc = binary(nl, LAMINA_OP_ADD, a->v, a->v, wten(g, w->bv))) < 0) return rc;
    return 0;
}

int lamina_g_qk_norm(node_list *nl, const graph_ctx *g, const layer_acts *a, const lamina_layer_weights *w)
{
    int rc;
    if (w->q_norm && (rc = lamina_g_norm(nl, g, a->q3, a->q3, w->q_norm)) < 0) return rc;
    if (w->k_norm && (rc = lamina_g_norm(nl, g, a->k3, a->k3, w->k_norm)) < 0) return rc;
    return 0;
}

int lamina_g_rope(node_list *nl, const graph_ctx *g, const layer_acts *a, int il)
{
    const lamina_hparams *hp = &g->m->hp;
    const lamina_gguf_tensor *ff = lamina_model_rope_factors(g->m, g->p->n_ctx);
    lamina_tensor pos = ten(g->mem->scratch, g->mem->pos, LAMINA_TYPE_I32, g->n_tokens, 1, 1);
    const lamina_tensor *qk[2] = { &a->q3, &a->k3 };
    lamina_node *n;
    for (int i = 0; i < 2; i++) {
        PUSH(LAMINA_OP_ROPE);
        n->dst = *qk[i];
        n->src[0] = *qk[i];
        n->src[1] = pos;
        n->n_src = 2;
        if (ff) { n->src[2] = wten(g, ff); n->n_src = 3; }
        n->ip[0] = hp->rope_mode;
        n->ip[1] = hp->n_rot;
        n->fp[0] = hp->layer[il].rope_base;
        n->fp[1] = hp->layer[il].rope_scale;
        if (hp->rope_yarn) {            /* YaRN's ramp and magnitude (ABI 1.3) */
            n->fp[2] = 1.0f;
            n->fp[3] = hp->rope_attn_factor;
            n->fp[4] = hp->yarn_beta_fast;
            n->fp[5] = hp->yarn_beta_slow;
            n->ip[2] = hp->n_ctx_orig;
        }
    }
    /* LongRoPE's attention factor a multiplies the rotated dims of q and k
     * (not the ones past n_rot): q.k gets a^2 on those, so q's rotated
     * dims are scaled by a^2 (a strided view: n_rot of each head).  YaRN's
     * is in its ROPE nodes. */
    if (hp->rope_attn_factor != 1.0f && !hp->rope_yarn) {
        lamina_tensor qr = a->q3;
        qr.ne[0] = hp->n_rot;
        PUSH(LAMINA_OP_SCALE);
        n->dst = qr;
        n->src[0] = qr;
        n->n_src = 1;
        n->fp[0] = hp->rope_attn_factor * hp->rope_attn_factor;
    }
    return 0;
}

int lamina_g_attention(node_list *nl, const graph_ctx *g, const layer_acts *a, int il)
{
    const lamina_hparams *hp = &g->m->hp;
    const stage_mem *mem = g->mem;
    lamina_buffer *s = mem->scratch;
    const int32_t T = g->n_tokens;
    const int64_t R = (int64_t)g->p->n_seq * g->p->n_ctx;     /* cache rows */
    const int64_t Hkv = hp->n_head_kv;
    lamina_tensor rows = ten(s, mem->rows, LAMINA_TYPE_I32, T, 1, 1);
    lamina_tensor info = ten(s, mem->info, LAMINA_TYPE_I32, 2, T, 1);
    lamina_tensor kc = ten(mem->kv, mem->k_off[il], mem->kv_type, Hkv * hp->head_dim, R, 1);
    lamina_tensor vc = ten(mem->kv, mem->v_off[il], mem->kv_type, Hkv * hp->head_dim_v, R, 1);
    lamina_node *n;
    /* 1. k and v into this layer's cache rows */
    PUSH(LAMINA_OP_SET_ROWS);
    n->dst = kc; n->src[0] = a->k; n->src[1] = rows; n->n_src = 2;
    PUSH(LAMINA_OP_SET_ROWS);
    n->dst = vc; n->src[0] = a->v; n->src[1] = rows; n->n_src = 2;
    /* 2. att = softmax(scale q.k^T [soft-capped], causal [+ window]) v */
    PUSH(LAMINA_OP_ATTENTION);
    n->dst = a->att;
    n->src[0] = a->q3; n->src[1] = kc; n->src[2] = vc; n->src[3] = info;
    n->n_src = 4;
    n->ip[0] = hp->layer[il].window;
    n->fp[0] = hp->attn_scale;
    n->fp[1] = hp->attn_softcap;
    if (g->m->layers[il].attn_sinks) {  /* gpt-oss: a logit per head in the denominator */
        n->src4 = wten(g, g->m->layers[il].attn_sinks);
        n->n_src = 5;
    }
    return 0;
}

/* The GLU of an FFN: act(gate) * up with the model's activation. */
static lamina_node *glu(node_list *nl, const graph_ctx *g, lamina_tensor gate, lamina_tensor up)
{
    lamina_node *n = push(nl, LAMINA_OP_GLU);
    if (n == NULL) return NULL;
    n->dst = gate; n->src[0] = gate; n->src[1] = up; n->n_src = 2;
    n->ip[0] = g->m->hp.act;
    if (g->m->hp.act == LAMINA_ACT_SWIGLU_OAI) {
        n->fp[0] = g->m->hp.glu_alpha;
        n->fp[1] = g->m->hp.glu_limit;
    }
    return n;
}

/* dst [W, k, T] += the k chosen experts' bias rows of b [W, X] (ids [k, T]):
 * the rows gathered into scratch, then added. */
static int expert_bias(node_list *nl, const graph_ctx *g, lamina_tensor dst, const lamina_gguf_tensor *b,
                       lamina_tensor ids)
{
    const int64_t W = dst.ne[0], k = dst.ne[1], T = dst.ne[2];
    lamina_tensor rows = ten(g->mem->scratch, g->mem->moe_b, LAMINA_TYPE_F32, W, k * T, 1);
    lamina_tensor rows3 = ten(g->mem->scratch, g->mem->moe_b, LAMINA_TYPE_F32, W, k, T);
    lamina_tensor flat = ten(ids.buffer, ids.offset, LAMINA_TYPE_I32, k * T, 1, 1);  /* ids as [k*T] */
    lamina_node *n;
    PUSH(LAMINA_OP_GET_ROWS);
    n->dst = rows; n->src[0] = wten(g, b); n->src[1] = flat; n->n_src = 2;
    return binary(nl, LAMINA_OP_ADD, dst, dst, rows3);
}

int lamina_g_attn_out(node_list *nl, const graph_ctx *g, const layer_acts *a, const lamina_layer_weights *w)
{
    int rc;
    if ((rc = mul_mat(nl, a->cur, wten(g, w->wo), a->att)) < 0) return rc;
    if (w->bo) return binary(nl, LAMINA_OP_ADD, a->cur, a->cur, wten(g, w->bo));
    return 0;
}

/* dst = Wd (act(Wg src) * Wu src), through gate and up [F, T] */
static int gated_ffn(node_list *nl, const graph_ctx *g, lamina_tensor dst, lamina_tensor src,
                     lamina_tensor gate, lamina_tensor up, lamina_tensor wg, lamina_tensor wu, lamina_tensor wd)
{
    lamina_node *n;
    int rc;
    /* 1. gate, up = Wg src, Wu src */
    if ((rc = mul_mat(nl, gate, wg, src)) < 0) return rc;
    if ((rc = mul_mat(nl, up, wu, src)) < 0) return rc;
    /* 2. gate = act(gate) * up */
    if ((n = glu(nl, g, gate, up)) == NULL) return LAMINA_ENOMEM;
    /* 3. dst = Wd gate */
    return mul_mat(nl, dst, wd, gate);
}

int lamina_g_ffn_io(node_list *nl, const graph_ctx *g, const layer_acts *a, const lamina_layer_weights *w,
                    lamina_tensor dst, lamina_tensor src)
{
    const int64_t F = g->m->hp.n_ff;
    lamina_node *n;
    int rc;
    if (!w->ffn_gate && !w->ffn_gate_up) {
        /* ungated (bert): up = act(Wup src + bup); dst = Wdown up + bdown */
        if ((rc = mul_mat(nl, a->up, wten(g, w->ffn_up), src)) < 0) return rc;
        if (w->bup && (rc = binary(nl, LAMINA_OP_ADD, a->up, a->up, wten(g, w->bup))) < 0) return rc;
        PUSH(LAMINA_OP_UNARY);
        n->dst = a->up; n->src[0] = a->up; n->n_src = 1;
        n->ip[0] = g->m->hp.act;
        if ((rc = mul_mat(nl, dst, wten(g, w->ffn_down), a->up)) < 0) return rc;
        return w->bdown ? binary(nl, LAMINA_OP_ADD, dst, dst, wten(g, w->bdown)) : 0;
    }
    /* gate and up separate, or fused: gate rows, then up rows */
    lamina_tensor wg = w->ffn_gate_up ? wrows(g, w->ffn_gate_up, 0, F) : wten(g, w->ffn_gate);
    lamina_tensor wu = w->ffn_gate_up ? wrows(g, w->ffn_gate_up, F, F) : wten(g, w->ffn_up);
    return gated_ffn(nl, g, dst, src, a->gate, a->up, wg, wu, wten(g, w->ffn_down));
}

int lamina_g_ffn(node_list *nl, const graph_ctx *g, const layer_acts *a, const lamina_layer_weights *w)
{
    return lamina_g_ffn_io(nl, g, a, w, a->cur, a->cur);
}

int lamina_g_self_attention(node_list *nl, const graph_ctx *g, const layer_acts *a,
                            const lamina_layer_weights *w, int il)
{
    int rc;
    if ((rc = lamina_g_norm(nl, g, a->cur, a->x, w->attn_norm)) < 0) return rc;
    if ((rc = lamina_g_qkv(nl, g, a, w)) < 0) return rc;
    if ((rc = lamina_g_qk_norm(nl, g, a, w)) < 0) return rc;
    if ((rc = lamina_g_rope(nl, g, a, il)) < 0) return rc;
    if ((rc = lamina_g_attention(nl, g, a, il)) < 0) return rc;
    return lamina_g_attn_out(nl, g, a, w);
}

int lamina_g_moe_ffn(node_list *nl, const graph_ctx *g, const layer_acts *a, const lamina_layer_weights *w)
{
    const lamina_hparams *hp = &g->m->hp;
    const stage_mem *mem = g->mem;
    lamina_buffer *s = mem->scratch;
    const int32_t T = g->n_tokens;
    const int64_t E = hp->n_embd, X = hp->n_expert, k = hp->n_expert_used, Fe = hp->n_ff_exp;
    lamina_tensor logits = ten(s, mem->moe_logits, LAMINA_TYPE_F32, X, T, 1);
    lamina_tensor ids = ten(s, mem->moe_ids, LAMINA_TYPE_I32, k, T, 1);
    lamina_tensor wts = ten(s, mem->moe_w, LAMINA_TYPE_F32, k, T, 1);
    lamina_tensor gate = ten(s, mem->g, LAMINA_TYPE_F32, Fe, k, T);
    lamina_tensor up = ten(s, mem->u, LAMINA_TYPE_F32, Fe, k, T);
    lamina_tensor y = ten(s, mem->moe_y, LAMINA_TYPE_F32, E, k, T);
    lamina_tensor in = ten(s, mem->cur, LAMINA_TYPE_F32, E, 1, T);    /* cur, one column per token */
    lamina_node *n;
    int rc;
    /* 1. router: logits = Wr cur; the k best experts; their weights: the
     *    softmax over the chosen (llama.cpp's normalized top-k) or over all */
    if ((rc = mul_mat(nl, logits, wten(g, w->ffn_gate_inp), a->cur)) < 0) return rc;
    if (w->ffn_gate_inp_b && (rc = binary(nl, LAMINA_OP_ADD, logits, logits, wten(g, w->ffn_gate_inp_b))) < 0)
        return rc;
    PUSH(LAMINA_OP_TOPK);
    n->dst = ids; n->src[0] = logits; n->n_src = 1;
    n->ip[0] = (int32_t)k;
    PUSH(LAMINA_OP_MOE_WEIGHTS);
    n->dst = wts; n->src[0] = logits; n->src[1] = ids; n->n_src = 2;
    n->ip[0] = (g->m->arch->flags & LAMINA_ARCH_F_MOE_RENORM) ? 1 : 0;
    /* 2. each chosen expert's gate and up, act(gate) * up */
    const lamina_gguf_tensor *we[3] = { w->ffn_gate_exps, w->ffn_up_exps, w->ffn_down_exps };
    lamina_tensor wx[3];
    for (int i = 0; i < 3; i++) {
        weight_ref r = g->weight(g->weight_ctx, we[i]);
        wx[i] = ten(r.buf, r.offset, we[i]->type, we[i]->ne[0], we[i]->ne[1], we[i]->ne[2]);
    }
    const lamina_tensor gu[2] = { gate, up };
    const lamina_gguf_tensor *gub[2] = { w->ffn_gate_exps_b, w->ffn_up_exps_b };
    for (int i = 0; i < 2; i++) {
        PUSH(LAMINA_OP_MUL_MAT_ID);
        n->dst = gu[i]; n->src[0] = wx[i]; n->src[1] = in; n->src[2] = ids; n->n_src = 3;
        if (gub[i] && (rc = expert_bias(nl, g, gu[i], gub[i], ids)) < 0) return rc;
    }
    if (glu(nl, g, gate, up) == NULL) return LAMINA_ENOMEM;
    /* 3. each expert's down projection of its own slot; cur = the weighted sum */
    PUSH(LAMINA_OP_MUL_MAT_ID);
    n->dst = y; n->src[0] = wx[2]; n->src[1] = gate; n->src[2] = ids; n->n_src = 3;
    if (w->ffn_down_exps_b && (rc = expert_bias(nl, g, y, w->ffn_down_exps_b, ids)) < 0) return rc;
    PUSH(LAMINA_OP_MOE_SUM);
    n->dst = a->cur; n->src[0] = y; n->src[1] = wts; n->n_src = 2;
    return 0;
}

int lamina_g_shared_expert(node_list *nl, const graph_ctx *g, const layer_acts *a, const lamina_layer_weights *w)
{
    const lamina_hparams *hp = &g->m->hp;
    const stage_mem *mem = g->mem;
    lamina_buffer *s = mem->scratch;
    const int32_t T = g->n_tokens;
    const int64_t E = hp->n_embd, Fs = hp->n_ff_shexp;
    lamina_tensor z = ten(s, mem->sh_z, LAMINA_TYPE_F32, 1, T, 1);
    lamina_tensor pair = ten(s, mem->sh_pair, LAMINA_TYPE_F32, 2, T, 1);    /* (z, 0) per token */
    lamina_tensor zero_ids = ten(s, mem->sh_ids, LAMINA_TYPE_I32, 1, T, 1);
    lamina_tensor y = ten(s, mem->moe_y, LAMINA_TYPE_F32, E, T, 1);        /* the ungated output */
    lamina_tensor y3 = ten(s, mem->moe_y, LAMINA_TYPE_F32, E, 1, T);       /* the same, one slot a token */
    lamina_tensor p0 = pair, p1 = pair;                                    /* its two rows (stride 2) */
    p0.ne[0] = p1.ne[0] = 1;
    p1.offset += sizeof(float);
    lamina_node *n;
    int rc;
    /* 1. z = Wgs . cur, one logit a token */
    if ((rc = mul_mat(nl, z, wten(g, w->ffn_gate_inp_shexp), a->cur)) < 0) return rc;
    /* 2. sigmoid(z) = e^z / (e^z + e^0): MOE_WEIGHTS over the pair (z, 0),
     *    normalized over both, picking index 0 (TOPK of a single row) */
    if ((rc = lamina_g_copy(nl, p0, z)) < 0) return rc;
    PUSH(LAMINA_OP_SCALE);
    n->dst = p1; n->src[0] = z; n->n_src = 1;
    n->fp[0] = 0.0f;
    PUSH(LAMINA_OP_TOPK);
    n->dst = zero_ids; n->src[0] = z; n->n_src = 1;
    n->ip[0] = 1;
    PUSH(LAMINA_OP_MOE_WEIGHTS);
    n->dst = z; n->src[0] = pair; n->src[1] = zero_ids; n->n_src = 2;
    n->ip[0] = 0;
    /* 3. y = Wdown_s (act(Wgate_s cur) * Wup_s cur), through gate and up [Fs, T] */
    lamina_tensor gate = ten(s, mem->g, LAMINA_TYPE_F32, Fs, T, 1);
    lamina_tensor up = ten(s, mem->u, LAMINA_TYPE_F32, Fs, T, 1);
    if ((rc = gated_ffn(nl, g, y, a->cur, gate, up, wten(g, w->ffn_gate_shexp), wten(g, w->ffn_up_shexp),
                        wten(g, w->ffn_down_shexp))) < 0)
        return rc;
    /* 4. shexp = sigmoid(z) y: a sum over one slot of weight sigmoid(z) */
    PUSH(LAMINA_OP_MOE_SUM);
    n->dst = a->shexp; n->src[0] = y3; n->src[1] = z; n->n_src = 2;
    return 0;
}

int lamina_graph_layer(node_list *nl, const graph_ctx *g, int il)
{
    return g->m->arch->build_layer(nl, g, il);
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
    lamina_tensor on;
    if (g->m->output_norm) on = wten(g, g->m->output_norm);
    /* 0. hidden states without the head (embeddings): cur = n(the rows of
     *    x asked for).  The layers are done with `cur`; it has T rows. */
    if (g->n_hid > 0) {
        lamina_tensor xh = ten(s, mem->cur, LAMINA_TYPE_F32, hp->n_embd, g->n_hid, 1);
        PUSH(LAMINA_OP_GET_ROWS);
        n->dst = xh;
        n->src[0] = x;
        n->src[1] = ten(s, mem->houts, LAMINA_TYPE_I32, g->n_hid, 1, 1);
        n->n_src = 2;
        if (g->m->output_norm && (rc = rms_norm(nl, xh, xh, &on, hp->eps)) < 0) return rc;
    }
    if (O == 0 || !g->m->output) return 0;     /* an encoder has no head */
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
    /* the FFN's gate and up: the dense width, or every used expert's */
    uint64_t ffw = (uint64_t)hp->n_ff > (uint64_t)hp->n_ff_exp * (uint64_t)hp->n_expert_used ?
                   (uint64_t)hp->n_ff : (uint64_t)hp->n_ff_exp * (uint64_t)hp->n_expert_used;
    if ((uint64_t)hp->n_ff_shexp > ffw) ffw = (uint64_t)hp->n_ff_shexp;     /* the shared expert's */
    mem->g    = take(&at, ffw * T * f);
    mem->u    = take(&at, ffw * T * f);
    if (hp->n_expert > 0) {
        mem->moe_logits = take(&at, (uint64_t)hp->n_expert * T * f);
        mem->moe_ids    = take(&at, (uint64_t)hp->n_expert_used * T * 4);
        mem->moe_w      = take(&at, (uint64_t)hp->n_expert_used * T * f);
        mem->moe_y      = take(&at, (uint64_t)hp->n_embd * hp->n_expert_used * T * f);
        if (m->layers[0].ffn_down_exps_b || m->layers[0].ffn_up_exps_b || m->layers[0].ffn_gate_exps_b) {
            const uint64_t wb = hp->n_ff_exp > hp->n_embd ? (uint64_t)hp->n_ff_exp : (uint64_t)hp->n_embd;
            mem->moe_b = take(&at, wb * hp->n_expert_used * T * f);
        }
    }
    if (hp->n_ff_shexp > 0) {           /* its output, gate logit, (logit, 0) pairs, index 0 */
        mem->sh      = take(&at, (uint64_t)hp->n_embd * T * f);
        mem->sh_z    = take(&at, T * f);
        mem->sh_pair = take(&at, 2 * T * f);
        mem->sh_ids  = take(&at, T * 4);
    }
    mem->xo   = take(&at, (uint64_t)hp->n_embd * O * f);
    mem->logits = with_output ? take(&at, (uint64_t)hp->n_vocab * O * f) : 0;
    mem->ids  = take(&at, T * 4);
    mem->pos  = take(&at, T * 4);
    mem->rows = take(&at, T * 4);
    mem->info = take(&at, 2 * T * 4);
    mem->outs = take(&at, O * 4);
    mem->houts = take(&at, T * 4);
    mem->types = take(&at, T * 4);
    return at;
}

uint64_t lamina_kv_layer_bytes(const lamina_model *m, const lamina_engine_params *p)
{
    const lamina_hparams *hp = &m->hp;
    uint64_t rows = (uint64_t)p->n_seq * (uint64_t)p->n_ctx;
    uint64_t el = p->kv_f32 ? 4 : 2;
    return rows * (uint64_t)hp->n_head_kv * (uint64_t)(hp->head_dim + hp->head_dim_v) * el;
}
