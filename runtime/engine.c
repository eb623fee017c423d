/*
 * engine.c - per-backend memory (weights, KV cache, scratch) and the decode
 * loop: inputs are computed on the host, each backend runs its stages as
 * one graph, and the hidden state crosses to the next backend through host
 * memory.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/quant.h"
#include "engine_impl.h"
#include "ref.h"

#define ERR(...) do { if (err) snprintf(err, err_size, __VA_ARGS__); } while (0)

const char *lamina_version(void);
const char *lamina_version(void) { return LAMINA_VERSION_STRING; }

typedef struct part_state {
    lamina_plan_part plan;
    lamina_be *be;
    stage_mem mem;
    int in_place;                 /* weights wrapped from the file mapping */
    lamina_buffer *file_buf;      /* in place: the whole mapping */
    lamina_buffer **tbuf;         /* uploaded: one buffer per model tensor */
    node_list nodes;
} part_state;

struct lamina_engine {
    lamina_model *m;
    lamina_engine_params p;
    lamina_be *use[LAMINA_MAX_BACKENDS];  /* backends still usable, in order */
    int n_use;
    uint32_t epoch;               /* +1 each time the KV caches were lost */
    part_state *parts;
    lamina_plan_part plan[LAMINA_MAX_BACKENDS];
    int n_parts;
    char notes[2048];             /* the current plan's lines for backends passed over */
    char history[2048];           /* backends demoted or lost, oldest first */
    /* host-side staging */
    float *hidden;                /* [n_embd, n_batch] between backends */
    int32_t *ids, *pos, *rows, *info, *outs;
};

void lamina_engine_params_default(lamina_engine_params *p)
{
    memset(p, 0, sizeof *p);
    p->n_ctx = 4096;
    p->n_seq = 1;
    p->n_batch = 512;
    p->n_outputs = 1;
    p->gpu_layers = -1;
    p->reserve_bytes = 256ll << 20;
    p->verify_layer = 1;
}

/* Index of a model tensor in the file's tensor table. */
static int64_t tensor_index(const lamina_model *m, const lamina_gguf_tensor *t)
{
    int64_t n = lamina_gguf_n_tensors(m->gguf);
    for (int64_t i = 0; i < n; i++)
        if (lamina_gguf_tensor_at(m->gguf, i) == t) return i;
    return -1;
}

static weight_ref part_weight(void *ctx, const lamina_gguf_tensor *t)
{
    part_state *ps = ctx;
    weight_ref r = { NULL, 0 };
    if (ps->in_place) {
        r.buf = ps->file_buf;
        r.offset = t->offset;
    } else {
        /* tbuf is indexed by tensor index; set up for every tensor used */
        r.buf = NULL;
    }
    return r;
}

typedef struct upload_ctx {
    part_state *ps;
    const lamina_model *m;
} upload_ctx;

static weight_ref uploaded_weight(void *ctx, const lamina_gguf_tensor *t)
{
    upload_ctx *u = ctx;
    weight_ref r = { NULL, 0 };
    int64_t i = tensor_index(u->m, t);
    if (i >= 0) r.buf = u->ps->tbuf[i];
    return r;
}

/* The tensors the stages of `pt` read. */
static int collect_tensors(const lamina_model *m, const lamina_plan_part *pt,
                           const lamina_gguf_tensor **out, int max)
{
    int n = 0;
#define ADD(t) do { if ((t) && n < max) out[n++] = (t); } while (0)
    if (pt->input) ADD(m->tok_embd);
    if (pt->output) { ADD(m->output_norm); ADD(m->output); }
    if (pt->last >= pt->first) ADD(m->rope_freqs);
    for (int il = pt->first; il <= pt->last; il++) {
        const lamina_layer_weights *w = &m->layers[il];
        ADD(w->attn_norm); ADD(w->wq); ADD(w->wk); ADD(w->wv); ADD(w->wo);
        ADD(w->bq); ADD(w->bk); ADD(w->bv); ADD(w->q_norm); ADD(w->k_norm);
        ADD(w->post_attn_norm); ADD(w->ffn_norm); ADD(w->ffn_gate); ADD(w->ffn_up);
        ADD(w->ffn_down); ADD(w->post_ffw_norm);
    }
#undef ADD
    return n;
}

static int part_setup(lamina_engine *e, part_state *ps, char *err, size_t err_size)
{
    const lamina_model *m = e->m;
    const lamina_backend_iface *bi = ps->be->iface;
    char e2[512] = "";
    int rc;

    /* 1. weights: wrap the file mapping in place, or upload each tensor */
    ps->in_place = lamina_be_is_host(ps->be) && LAMINA_HAS_FN(bi, buffer_wrap_host);
    if (ps->in_place) {
        rc = bi->buffer_wrap_host(ps->be->inst, lamina_gguf_map(m->gguf),
                                  lamina_gguf_file_size(m->gguf), &ps->file_buf, e2, sizeof e2);
        if (rc < 0) ps->in_place = 0;            /* fall back to uploading */
    }
    if (!ps->in_place) {
        int64_t nt = lamina_gguf_n_tensors(m->gguf);
        ps->tbuf = calloc((size_t)nt, sizeof *ps->tbuf);
        const lamina_gguf_tensor **list = malloc((size_t)(nt + 4) * sizeof *list);
        if (!ps->tbuf || !list) { free(list); ERR("out of memory"); return LAMINA_ENOMEM; }
        int n = collect_tensors(m, &ps->plan, list, (int)nt + 4);
        for (int i = 0; i < n; i++) {
            int64_t ti = tensor_index(m, list[i]);
            if (ti < 0 || ps->tbuf[ti]) continue;       /* tied weights: once */
            rc = bi->buffer_alloc(ps->be->inst, list[i]->size, LAMINA_BUFFER_WEIGHTS,
                                  &ps->tbuf[ti], e2, sizeof e2);
            if (rc == 0)
                rc = bi->buffer_upload(ps->be->inst, ps->tbuf[ti], 0, list[i]->data,
                                       list[i]->size, e2, sizeof e2);
            if (rc < 0) {
                ERR("%s: uploading '%s' (%llu bytes): %s", ps->be->label, list[i]->name,
                    (unsigned long long)list[i]->size, e2);
                free(list);
                return rc;
            }
        }
        free(list);
    }

    /* 2. KV cache for this part's layers, one buffer */
    ps->mem.kv_type = e->p.kv_f32 ? LAMINA_TYPE_F32 : LAMINA_TYPE_F16;
    int n_layers = ps->plan.last - ps->plan.first + 1;
    if (n_layers > 0) {
        const lamina_hparams *hp = &m->hp;
        uint64_t rows = (uint64_t)e->p.n_seq * (uint64_t)e->p.n_ctx;
        uint64_t el = e->p.kv_f32 ? 4 : 2;
        uint64_t kbytes = rows * (uint64_t)hp->n_head_kv * (uint64_t)hp->head_dim * el;
        uint64_t vbytes = rows * (uint64_t)hp->n_head_kv * (uint64_t)hp->head_dim_v * el;
        kbytes = (kbytes + 255) & ~(uint64_t)255;
        vbytes = (vbytes + 255) & ~(uint64_t)255;
        uint64_t at = 0;
        for (int il = ps->plan.first; il <= ps->plan.last; il++) {
            ps->mem.k_off[il] = at; at += kbytes;
            ps->mem.v_off[il] = at; at += vbytes;
        }
        rc = bi->buffer_alloc(ps->be->inst, at, LAMINA_BUFFER_KV, &ps->mem.kv, e2, sizeof e2);
        if (rc < 0) {
            ERR("%s: KV cache of %llu MiB: %s", ps->be->label, (unsigned long long)(at >> 20), e2);
            return rc;
        }
    }

    /* 3. scratch */
    uint64_t sbytes = lamina_stage_layout(&ps->mem, m, &e->p, ps->plan.output);
    rc = bi->buffer_alloc(ps->be->inst, sbytes, LAMINA_BUFFER_ACTIVATIONS, &ps->mem.scratch, e2, sizeof e2);
    if (rc < 0) {
        ERR("%s: scratch of %llu MiB: %s", ps->be->label, (unsigned long long)(sbytes >> 20), e2);
        return rc;
    }
    return 0;
}

static void part_release(part_state *ps, const lamina_model *m)
{
    if (!ps->be) return;
    const lamina_backend_iface *bi = ps->be->iface;
    if (ps->mem.scratch) bi->buffer_free(ps->be->inst, ps->mem.scratch);
    if (ps->mem.kv) bi->buffer_free(ps->be->inst, ps->mem.kv);
    if (ps->file_buf) bi->buffer_free(ps->be->inst, ps->file_buf);
    if (ps->tbuf) {
        int64_t nt = lamina_gguf_n_tensors(m->gguf);
        for (int64_t i = 0; i < nt; i++)
            if (ps->tbuf[i]) bi->buffer_free(ps->be->inst, ps->tbuf[i]);
        free(ps->tbuf);
    }
    lamina_node_list_free(&ps->nodes);
    memset(ps, 0, sizeof *ps);
}

static int part_run(lamina_engine *e, part_state *ps, int32_t T, int32_t O,
                    char *err, size_t err_size);

/*
 * The model-layer check.  Drivers that pass small known-answer tests can
 * still produce garbage on real shapes, so the first layer a non-host
 * backend received runs once with the model's real weights on that backend
 * and on the core's reference, from the same input (the embeddings of a
 * few tokens), and the outputs are compared.  Tolerance: max |a - b| /
 * max |ref| <= 3e-2, the bound the cpu plugin's 8-bit activation rounding
 * stays well inside (engine tests measure ~1e-2 over several layers).
 */
#define VERIFY_TOKENS 4
#define VERIFY_TOL 3e-2

static int run_one_layer(lamina_engine *e, part_state *ps, int il, int nt, const float *x_in,
                         float *x_out, char *err, size_t err_size)
{
    const int64_t E = e->m->hp.n_embd;
    lamina_plan_part saved = ps->plan;
    char e2[256] = "";
    /* a one-layer stage: no embedding, no output head */
    ps->plan.first = ps->plan.last = il;
    ps->plan.input = 0;
    ps->plan.output = 0;
    memcpy(e->hidden, x_in, (size_t)(E * nt) * sizeof(float));
    for (int t = 0; t < nt; t++) {
        e->pos[t] = t; e->rows[t] = t; e->info[2 * t] = 0; e->info[2 * t + 1] = t;
    }
    int rc = part_run(e, ps, nt, 0, err, err_size);
    ps->plan = saved;
    if (rc < 0) return rc;
    memcpy(x_out, e->hidden, (size_t)(E * nt) * sizeof(float));
    (void)e2;
    return 0;
}

/* 0 when the part agrees with the reference; LAMINA_EREJECTED with the
 * reason in `why` when it does not; another negative code when the check
 * itself could not run. */
static int verify_part(lamina_engine *e, part_state *ps, char *why, size_t why_size)
{
    const lamina_model *m = e->m;
    const int nt = e->p.n_batch < VERIFY_TOKENS ? e->p.n_batch : VERIFY_TOKENS;
    const int64_t E = m->hp.n_embd, n = E * nt;
    const int il = ps->plan.first;
    const lamina_backend_iface *ri = lamina_ref_backend_iface();
    float *x = malloc((size_t)n * sizeof(float)), *a = malloc((size_t)n * sizeof(float)),
          *b = malloc((size_t)n * sizeof(float));
    lamina_be ref;
    part_state rp;
    memset(&ref, 0, sizeof ref);
    memset(&rp, 0, sizeof rp);
    char err[512] = "";
    int rc = LAMINA_ENOMEM;
    if (!x || !a || !b) goto out;
    /* input: the scaled embeddings of tokens 1..4 (real activations) */
    for (int t = 0; t < nt; t++) {
        const lamina_gguf_tensor *te = m->tok_embd;
        uint64_t row = lamina_row_size(te->type, E);
        int64_t tok = (t + 1) % m->hp.n_vocab;
        rc = lamina_dequantize_row(te->type, (const uint8_t *)te->data + row * (uint64_t)tok, x + t * E, E);
        if (rc < 0) goto out;
        for (int64_t i = 0; i < E; i++) x[t * E + i] *= m->hp.embd_scale;
    }
    /* the backend under test */
    rc = run_one_layer(e, ps, il, nt, x, a, err, sizeof err);
    if (rc < 0) { snprintf(why, why_size, "layer %d check failed to run: %s", il, err); goto out; }
    /* the reference, on a one-layer stage of its own */
    lamina_backend_params bp = { sizeof bp, 0, 1, 0 };
    static const lamina_host quiet_host = { sizeof(lamina_host), LAMINA_PLUGIN_ABI_MAJOR,
                                            LAMINA_PLUGIN_ABI_MINOR, LAMINA_PLUGIN_ABI_MIN_MINOR,
                                            LAMINA_VERSION_STRING, NULL, NULL };
    ref.iface = ri;
    snprintf(ref.label, sizeof ref.label, "ref:0");
    if ((rc = ri->open(&quiet_host, &bp, &ref.inst, err, sizeof err)) < 0) goto ref_fail;
    rp.be = &ref;
    rp.plan.be = -1;
    rp.plan.first = rp.plan.last = il;
    lamina_engine_params saved = e->p;
    e->p.n_seq = 1; e->p.n_ctx = nt; e->p.n_batch = nt; e->p.n_outputs = 1;
    rc = part_setup(e, &rp, err, sizeof err);
    if (rc == 0) rc = run_one_layer(e, &rp, il, nt, x, b, err, sizeof err);
    e->p = saved;
    if (rc < 0) goto ref_fail;
    double md = 0, mr = 1e-30;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= md)) md = d;                          /* NaN counts as worst */
        if (fabs(b[i]) > mr) mr = fabs(b[i]);
    }
    double rel = md / mr;
    if (!(rel <= VERIFY_TOL)) {
        snprintf(why, why_size, "layer %d with the model's weights differs from the reference: "
                 "max error %.2e > tolerance %.1e", il, rel, VERIFY_TOL);
        rc = LAMINA_EREJECTED;
    } else {
        rc = 0;
    }
    goto out;
ref_fail:
    snprintf(why, why_size, "reference run of layer %d failed: %s", il, err);
out:
    part_release(&rp, m);
    if (ref.inst) ri->close(ref.inst);
    free(x); free(a); free(b);
    return rc;
}

static void parts_release(lamina_engine *e)
{
    for (int i = 0; i < e->n_parts; i++) part_release(&e->parts[i], e->m);
    free(e->parts);
    e->parts = NULL;
    e->n_parts = 0;
}

static void history_add(lamina_engine *e, const char *line)
{
    size_t nl = strlen(e->history);
    snprintf(e->history + nl, sizeof e->history - nl, "%s\n", line);
}

/* Plan over e->use, set every part up, run the model-layer check; a
 * backend that fails the check is demoted (removed from e->use, with a
 * note) and the plan is made again without it.  On failure nothing is left
 * allocated. */
static int engine_build(lamina_engine *e, char *err, size_t err_size)
{
    for (;;) {
        lamina_plan_part parts[LAMINA_MAX_BACKENDS];
        e->notes[0] = 0;
        int n = lamina_plan_build(e->m, e->use, e->n_use, &e->p, parts, e->notes, sizeof e->notes, err, err_size);
        if (n < 0) return n;
        e->parts = calloc((size_t)n, sizeof *e->parts);
        if (!e->parts) { ERR("out of memory"); return LAMINA_ENOMEM; }
        e->n_parts = n;
        for (int i = 0; i < n; i++) {
            e->parts[i].plan = parts[i];
            e->plan[i] = parts[i];
            e->parts[i].be = e->use[parts[i].be];
            int rc = part_setup(e, &e->parts[i], err, err_size);
            if (rc < 0) { parts_release(e); return rc; }
        }
        int bad = -1;
        char why[512] = "";
        for (int i = 0; i < n && bad < 0 && e->p.verify_layer; i++) {
            part_state *ps = &e->parts[i];
            if (lamina_be_is_host(ps->be) || ps->plan.last < ps->plan.first) continue;
            int rc = verify_part(e, ps, why, sizeof why);
            if (rc == LAMINA_EREJECTED || rc == LAMINA_EDEVLOST) bad = ps->plan.be;
            else if (rc < 0) { ERR("%s: %s", ps->be->label, why); parts_release(e); return rc; }
        }
        if (bad < 0) return 0;
        char line[768];
        snprintf(line, sizeof line, "%s: demoted for this model: %s", e->use[bad]->label, why);
        history_add(e, line);
        parts_release(e);
        for (int i = bad; i + 1 < e->n_use; i++) e->use[i] = e->use[i + 1];
        e->n_use--;
        if (e->n_use == 0) {
            ERR("no backend left: %s", e->history);
            return LAMINA_ENODEV;
        }
    }
}

/* The device of part `pi` was lost: route its layers (and every other
 * part's, since the plan is made anew) to the remaining backends.  All KV
 * caches start empty afterwards (epoch + 1). */
static int engine_failover(lamina_engine *e, int pi, const char *what, char *err, size_t err_size)
{
    lamina_be *lost = e->parts[pi].be;
    char line[768];
    snprintf(line, sizeof line, "%s: lost during generation (%s); its layers moved on", lost->label, what);
    parts_release(e);
    int k = 0;
    for (int i = 0; i < e->n_use; i++)
        if (e->use[i] != lost) e->use[k++] = e->use[i];
    e->n_use = k;
    e->epoch++;
    history_add(e, line);
    if (e->n_use == 0) {
        ERR("%s; no backend is left", line);
        return LAMINA_EDEVLOST;
    }
    char e2[512] = "";
    int rc = engine_build(e, e2, sizeof e2);
    if (rc < 0) {
        parts_release(e);
        e->n_use = 0;
        ERR("%s; no other backend can take them: %s", line, e2);
        return LAMINA_EDEVLOST;
    }
    ERR("%s to %s; every sequence's cache was reset", line, e->parts[0].be->label);
    return LAMINA_EDEVLOST;
}

int lamina_engine_create(lamina_model *model, lamina_be *const *bes, int n_bes,
                         const lamina_engine_params *params, lamina_engine **out,
                         char *err, size_t err_size)
{
    lamina_engine_params p;
    if (params) p = *params; else lamina_engine_params_default(&p);
    if (p.n_ctx <= 0 || p.n_seq <= 0 || p.n_batch <= 0 || p.n_outputs <= 0) {
        ERR("engine: n_ctx, n_seq, n_batch and n_outputs must be positive");
        return LAMINA_EINVAL;
    }
    if (p.n_outputs > p.n_batch) p.n_outputs = p.n_batch;
    if ((int64_t)p.n_seq * p.n_ctx > INT32_MAX / 2) {
        ERR("engine: %d slots x %d positions is too many", p.n_seq, p.n_ctx);
        return LAMINA_ERANGE;
    }
    if (n_bes <= 0) { ERR("no backend to run on"); return LAMINA_ENODEV; }

    lamina_engine *e = calloc(1, sizeof *e);
    if (!e) { ERR("out of memory"); return LAMINA_ENOMEM; }
    e->m = model;
    e->p = p;
    const uint64_t T = (uint64_t)p.n_batch;
    e->hidden = malloc((size_t)model->hp.n_embd * T * sizeof(float));
    e->ids  = malloc(T * sizeof(int32_t));
    e->pos  = malloc(T * sizeof(int32_t));
    e->rows = malloc(T * sizeof(int32_t));
    e->info = malloc(2 * T * sizeof(int32_t));
    e->outs = malloc((size_t)p.n_outputs * sizeof(int32_t));
    if (!e->hidden || !e->ids || !e->pos || !e->rows || !e->info || !e->outs) {
        ERR("out of memory");
        lamina_engine_free(e);
        return LAMINA_ENOMEM;
    }
    int n_use = n_bes < LAMINA_MAX_BACKENDS ? n_bes : LAMINA_MAX_BACKENDS;
    for (int i = 0; i < n_use; i++) e->use[i] = bes[i];
    e->n_use = n_use;
    int rc = engine_build(e, err, err_size);
    if (rc < 0) { lamina_engine_free(e); return rc; }
    *out = e;
    return 0;
}

void lamina_engine_free(lamina_engine *e)
{
    if (!e) return;
    for (int i = 0; i < e->n_parts; i++) part_release(&e->parts[i], e->m);
    free(e->parts);
    free(e->hidden);
    free(e->ids); free(e->pos); free(e->rows); free(e->info); free(e->outs);
    free(e);
}

const lamina_model *lamina_engine_model(const lamina_engine *e) { return e->m; }
uint32_t lamina_engine_epoch(const lamina_engine *e) { return e->epoch; }
int lamina_engine_usable(const lamina_engine *e) { return e->n_parts > 0; }
const lamina_engine_params *lamina_engine_params_get(const lamina_engine *e) { return &e->p; }

int lamina_engine_plan(const lamina_engine *e, const lamina_plan_part **parts)
{
    if (parts) *parts = e->plan;
    return e->n_parts;
}

const char *lamina_engine_part_label(const lamina_engine *e, int i)
{
    return (i >= 0 && i < e->n_parts) ? e->parts[i].be->label : "";
}

size_t lamina_engine_describe_plan(const lamina_engine *e, char *buf, size_t size)
{
    size_t at = 0;
    const int L = e->m->hp.n_layer;
    if (size) buf[0] = 0;
    for (int i = 0; i < e->n_parts && at < size; i++) {
        const part_state *ps = &e->parts[i];
        int nl = ps->plan.last - ps->plan.first + 1;
        uint64_t bytes = ps->plan.weight_bytes + ps->plan.kv_bytes + ps->plan.scratch_bytes;
        char range[64];
        if (nl <= 0) snprintf(range, sizeof range, "no layers");
        else if (nl == 1) snprintf(range, sizeof range, "layer %d (1/%d)", ps->plan.first, L);
        else snprintf(range, sizeof range, "layers %d-%d (%d/%d)", ps->plan.first, ps->plan.last, nl, L);
        int w = snprintf(buf + at, size - at, "%s \xe2\x80\x94 %s%s%s, %llu MiB%s\n",
                         ps->be->label, range, ps->plan.input ? " + embedding" : "",
                         ps->plan.output ? " + output" : "",
                         (unsigned long long)((bytes + (1u << 20) - 1) >> 20),
                         ps->in_place ? " (weights used in place)" : "");
        if (w < 0) break;
        at += (size_t)w;
    }
    if (at < size && (e->notes[0] || e->history[0])) {
        int w = snprintf(buf + at, size - at, "%s%s", e->notes, e->history);
        if (w > 0) at += (size_t)w;
    }
    return at < size ? at : size;
}

/* Build and run the stages of part i for the current batch. */
static int part_run(lamina_engine *e, part_state *ps, int32_t T, int32_t O,
                    char *err, size_t err_size)
{
    const lamina_backend_iface *bi = ps->be->iface;
    lamina_backend *inst = ps->be->inst;
    lamina_buffer *s = ps->mem.scratch;
    char e2[512] = "";
    int rc;
    upload_ctx uc = { ps, e->m };
    graph_ctx g = { .m = e->m, .p = &e->p, .mem = &ps->mem,
                    .weight = ps->in_place ? part_weight : uploaded_weight,
                    .weight_ctx = ps->in_place ? (void *)ps : (void *)&uc,
                    .n_tokens = T, .n_out = O };

    /* 1. inputs: token ids, positions, cache rows, attention info, hidden */
#define UP(off, src, bytes) do { \
        rc = bi->buffer_upload(inst, s, ps->mem.off, (src), (bytes), e2, sizeof e2); \
        if (rc < 0) goto io_fail; } while (0)
    if (ps->plan.input) UP(ids, e->ids, (uint64_t)T * 4);
    else UP(x, e->hidden, (uint64_t)T * (uint64_t)e->m->hp.n_embd * sizeof(float));
    if (ps->plan.last >= ps->plan.first) {
        UP(pos, e->pos, (uint64_t)T * 4);
        UP(rows, e->rows, (uint64_t)T * 4);
        UP(info, e->info, (uint64_t)T * 8);
    }
    if (ps->plan.output && O > 0) UP(outs, e->outs, (uint64_t)O * 4);
#undef UP

    /* 2. the graph */
    ps->nodes.n = 0;
    if (ps->plan.input && (rc = lamina_graph_input(&ps->nodes, &g)) < 0) goto oom;
    for (int il = ps->plan.first; il <= ps->plan.last; il++)
        if ((rc = lamina_graph_layer(&ps->nodes, &g, il)) < 0) goto oom;
    if (ps->plan.output && O > 0 && (rc = lamina_graph_output(&ps->nodes, &g)) < 0) goto oom;
    lamina_graph graph = { sizeof graph, (uint32_t)ps->nodes.n, ps->nodes.v };
    rc = bi->graph_compute(inst, &graph, e2, sizeof e2);
    if (rc < 0) {
        ERR("%s: %s", ps->be->label, e2);
        return rc;
    }
    /* 3. hand the hidden state on */
    if (!ps->plan.output) {
        rc = bi->buffer_download(inst, s, ps->mem.x, e->hidden,
                                 (uint64_t)T * (uint64_t)e->m->hp.n_embd * sizeof(float), e2, sizeof e2);
        if (rc < 0) goto io_fail;
    }
    return 0;
io_fail:
    ERR("%s: transfer: %s", ps->be->label, e2);
    return rc;
oom:
    ERR("out of memory building the graph");
    return rc;
}

int lamina_engine_decode(lamina_engine *e, const lamina_batch *b, float *logits,
                         char *err, size_t err_size)
{
    const lamina_hparams *hp = &e->m->hp;
    const int32_t T = b->n_tokens;
    if (T <= 0 || T > e->p.n_batch) {
        ERR("batch of %d tokens: must be 1..%d", T, e->p.n_batch);
        return LAMINA_EINVAL;
    }
    int32_t O = 0;
    for (int32_t t = 0; t < T; t++) {
        int32_t tok = b->tokens[t], pos = b->pos[t], seq = b->seq[t];
        if (tok < 0 || tok >= hp->n_vocab) {
            ERR("token %d at batch index %d is outside the vocabulary (%d)", tok, t, hp->n_vocab);
            return LAMINA_EINVAL;
        }
        if (seq < 0 || seq >= e->p.n_seq) {
            ERR("sequence slot %d at batch index %d: must be 0..%d", seq, t, e->p.n_seq - 1);
            return LAMINA_EINVAL;
        }
        if (pos < 0 || pos >= e->p.n_ctx) {
            ERR("position %d exceeds the context length %d", pos, e->p.n_ctx);
            return LAMINA_ERANGE;
        }
        e->ids[t] = tok;
        e->pos[t] = pos;
        e->rows[t] = seq * e->p.n_ctx + pos;
        e->info[2 * t] = seq * e->p.n_ctx;
        e->info[2 * t + 1] = pos;
        if (b->logits && b->logits[t]) {
            if (O == e->p.n_outputs) {
                ERR("batch asks for more than %d logits rows", e->p.n_outputs);
                return LAMINA_EINVAL;
            }
            e->outs[O++] = t;
        }
    }
    if (e->n_parts == 0) {
        ERR("no backend is left to run the model (see the plan notes)");
        return LAMINA_EDEVLOST;
    }
    for (int i = 0; i < e->n_parts; i++) {
        int rc = part_run(e, &e->parts[i], T, O, err, err_size);
        if (rc == LAMINA_EDEVLOST) {
            char what[512];
            snprintf(what, sizeof what, "%s", err ? err : "device lost");
            return engine_failover(e, i, what, err, err_size);
        }
        if (rc < 0) return rc;
    }
    if (O > 0) {
        part_state *last = &e->parts[e->n_parts - 1];
        char e2[512] = "";
        int rc = last->be->iface->buffer_download(last->be->inst, last->mem.scratch, last->mem.logits,
                                                   logits, (uint64_t)O * (uint64_t)hp->n_vocab * sizeof(float),
                                                   e2, sizeof e2);
        if (rc < 0) { ERR("%s: reading logits: %s", last->be->label, e2); return rc; }
        if (hp->final_softcap > 0) {
            const float c = hp->final_softcap;
            for (uint64_t i = 0; i < (uint64_t)O * (uint64_t)hp->n_vocab; i++)
                logits[i] = c * tanhf(logits[i] / c);
        }
    }
    return O;
}
