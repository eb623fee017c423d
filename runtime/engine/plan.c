/*
 * plan.c - layer routing.  Layers are taken in order by the backends in
 * preference order: each takes as many consecutive layers as it supports
 * (every node of the layer passes supports_op), as fit its free memory
 * (weights unless used in place, plus KV cache, plus scratch), and as the
 * GPU layer cap allows; the rest falls to the next backend, down to the
 * host.  The embedding goes with the first layer and the output head with
 * the last, unless the model check refused that stage on that backend
 * (deny[]): then the stage becomes a part of its own (no layers) on the
 * first other backend that runs it and has room, and the hidden state
 * crosses between them through host memory like between layer ranges.
 * Every backend passed over gets a one-line reason.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/quant.h"
#include "engine_impl.h"

/* The host backend is the cpu plugin (its device runs in this process's
 * memory).  Every other backend counts as an accelerator for gpu_layers,
 * lavapipe (a Vulkan device of type "cpu") included. */
int lamina_be_is_host(const lamina_be *be)
{
    if (!be->slot || !be->slot->plugin)     /* opened in-process: the core's reference, tests */
        return strncmp(be->label, "cpu", 3) == 0 || strncmp(be->label, "ref", 3) == 0;
    if (be->slot->plugin->flags & LAMINA_PLUGIN_F_HOST_MEMORY) return 1;
    /* a 1.0 plugin says so by its device type */
    const char *type = be->slot->device ? be->slot->device->info.type : NULL;
    return be->slot->plugin->abi_minor == 0 && type && strcmp(type, "cpu") == 0;
}

uint32_t lamina_be_abi_minor(const lamina_be *be)
{
    if (!be->slot || !be->slot->plugin) return LAMINA_PLUGIN_ABI_MINOR;
    return be->slot->plugin->abi_minor;
}

int lamina_be_supports(const lamina_be *be, const lamina_node *n)
{
    if (lamina_node_min_minor(n) > lamina_be_abi_minor(be)) return 0;
    return be->iface->supports_op(be->inst, n);
}

static weight_ref null_weight(void *ctx, const lamina_gguf_tensor *t)
{
    (void)ctx; (void)t;
    weight_ref r = { NULL, 0 };
    return r;
}


static const char *type_name(uint32_t t)
{
    const lamina_type_traits *tr = lamina_type_get(t);
    return tr && tr->name ? tr->name : "?";
}

/* The op as the plan names it ("rope with YaRN"): with what of 1.3 it
 * uses besides a type (the messages name the type anyway).  Returns 1 when
 * it named such a feature. */
static int op_words(const lamina_node *n, char *out, size_t size)
{
    const char *f = NULL;
    if (LAMINA_OP_MIN_MINOR(n->op) < 3 && lamina_node_min_minor(n) >= 3) {
        if (n->n_src > LAMINA_MAX_SRC)
            f = n->op == LAMINA_OP_ATTENTION ? "with sinks" : "with a fifth operand";
        else if (n->op == LAMINA_OP_GLU && n->ip[0] == LAMINA_ACT_SWIGLU_OAI)
            f = "with swiglu_oai";
        else if (n->op == LAMINA_OP_ROPE)
            f = "with YaRN";
    }
    snprintf(out, size, "%s%s%s", lamina_op_name(n->op), f ? " " : "", f ? f : "");
    return f != NULL;
}

/* 1 when every node of the stage runs on `be`; else 0 with `why`. */
static int stage_supported(lamina_be *be, const lamina_model *m, const lamina_engine_params *p,
                           int il, char *why, size_t why_size)
{
    stage_mem mem;
    memset(&mem, 0, sizeof mem);
    mem.kv_type = p->kv_f32 ? LAMINA_TYPE_F32 : LAMINA_TYPE_F16;
    graph_ctx g = { .m = m, .p = p, .mem = &mem, .weight = null_weight,
                    .n_tokens = p->n_batch, .n_out = p->n_outputs, .n_hid = p->n_batch };
    node_list nl = {0};
    int rc;
    if (il < 0)                    rc = lamina_graph_input(&nl, &g);
    else if (il >= m->hp.n_layer)  rc = lamina_graph_output(&nl, &g);
    else                           rc = lamina_graph_layer(&nl, &g, il);
    if (rc < 0) {
        snprintf(why, why_size, "out of memory");
        lamina_node_list_free(&nl);
        return 0;
    }
    int ok = 1;
    for (int i = 0; i < nl.n && ok; i++) {
        if (!lamina_be_supports(be, &nl.v[i])) {
            const lamina_node *n = &nl.v[i];
            uint32_t t = n->n_src > 0 ? n->src[0].type : n->dst.type;
            if (n->op == LAMINA_OP_SET_ROWS) t = n->dst.type;
            char op[64];
            const int named = op_words(n, op, sizeof op);
            if (LAMINA_OP_MIN_MINOR(n->op) > lamina_be_abi_minor(be))
                snprintf(why, why_size, "%s needs %s, an ABI %u.%u op; the plugin was built for %u.%u",
                         il < 0 ? "the embedding" : il >= m->hp.n_layer ? "the output head" : "a layer",
                         lamina_op_name(n->op), LAMINA_PLUGIN_ABI_MAJOR, LAMINA_OP_MIN_MINOR(n->op),
                         LAMINA_PLUGIN_ABI_MAJOR, lamina_be_abi_minor(be));
            else if (lamina_node_min_minor(n) > lamina_be_abi_minor(be))
                snprintf(why, why_size, "%s needs %s%s%s, an ABI %u.%u feature; the plugin was built for %u.%u",
                         il < 0 ? "the embedding" : il >= m->hp.n_layer ? "the output head" : "a layer",
                         op, named ? "" : " on ", named ? "" : type_name(t), LAMINA_PLUGIN_ABI_MAJOR,
                         lamina_node_min_minor(n), LAMINA_PLUGIN_ABI_MAJOR, lamina_be_abi_minor(be));
            else if (il < 0)
                snprintf(why, why_size, "the embedding needs %s on %s, which it does not support", op,
                         type_name(t));
            else if (il >= m->hp.n_layer)
                snprintf(why, why_size, "the output head needs %s on %s, which it does not support", op,
                         type_name(t));
            else
                snprintf(why, why_size, "layer %d needs %s on %s, which it does not support", il, op,
                         type_name(t));
            ok = 0;
        }
    }
    lamina_node_list_free(&nl);
    return ok;
}

static void note(char *notes, size_t size, const char *fmt, ...)
{
    size_t len = strlen(notes);
    if (len + 1 >= size) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(notes + len, size - len, fmt, ap);
    va_end(ap);
    len = strlen(notes);
    if (len + 1 < size) { notes[len] = '\n'; notes[len + 1] = 0; }
}

static uint64_t mib(uint64_t b) { return (b + (1u << 20) - 1) >> 20; }

/* Bytes a backend may use for this model: its free memory less the
 * reserve; UINT64_MAX when it reports nothing. */
static uint64_t be_budget(lamina_be *be, const lamina_engine_params *p, uint64_t *free_out)
{
    uint64_t free_b = 0, total_b = 0;
    if (LAMINA_HAS_FN(be->iface, memory))
        be->iface->memory(be->inst, &free_b, &total_b);
    if (free_b == 0) free_b = total_b;     /* free unknown (no budget query): the heap size */
    if (free_out) *free_out = free_b;
    if (free_b == 0) return UINT64_MAX;    /* nothing known: do not limit */
    return free_b > (uint64_t)p->reserve_bytes ? free_b - (uint64_t)p->reserve_bytes : 0;
}

static int be_in_place(lamina_be *be)
{
    return lamina_be_is_host(be) && LAMINA_HAS_FN(be->iface, buffer_wrap_host);
}

/* A part holding one stage alone, without layers: the embedding (output
 * 0) or the output head (output 1), on the first backend other than
 * `not_be` that the model check did not refuse it on, that runs its nodes
 * and has room (taken[] counts what earlier parts planned on each
 * backend).  Returns the backend's index, or -1 with `why`. */
static int lone_stage(const lamina_model *m, lamina_be *const *bes, int n_bes,
                      const lamina_engine_params *p, const uint32_t *deny, int output, int not_be,
                      int embd_on[], uint64_t taken[], lamina_plan_part *pt,
                      char *why, size_t why_size)
{
    const int L = m->hp.n_layer;
    const uint32_t flag = output ? LAMINA_DENY_OUTPUT : LAMINA_DENY_INPUT;
    stage_mem tmp;
    uint64_t scratch = lamina_stage_layout(&tmp, m, p, output);
    snprintf(why, why_size, "no other backend");
    for (int c = 0; c < n_bes; c++) {
        char w2[256];
        if (c == not_be || (deny && (deny[c] & flag))) continue;
        if (!stage_supported(bes[c], m, p, output ? L : -1, w2, sizeof w2)) {
            snprintf(why, why_size, "%s: %s", bes[c]->label, w2);
            continue;
        }
        int in_place = be_in_place(bes[c]);
        uint64_t wb = in_place ? 0 : lamina_model_layer_bytes(m, output ? L : -1);
        if (output && !in_place && m->output == m->tok_embd && embd_on[c])
            wb -= m->tok_embd->size;                /* tied: already there */
        uint64_t free_b, budget = be_budget(bes[c], p, &free_b);
        if (taken[c] + scratch + wb > budget) {
            snprintf(why, why_size, "%s: does not fit in %llu MiB free", bes[c]->label,
                     (unsigned long long)mib(free_b));
            continue;
        }
        taken[c] += scratch + wb;
        if (!output) embd_on[c] = 1;
        memset(pt, 0, sizeof *pt);
        pt->be = c;
        pt->first = output ? L : 0;
        pt->last = pt->first - 1;                   /* no layers */
        pt->input = !output;
        pt->output = output;
        pt->scratch_bytes = scratch;
        pt->weight_bytes = wb;
        return c;
    }
    return -1;
}

int lamina_plan_build(const lamina_model *m, lamina_be *const *bes, int n_bes,
                      const lamina_engine_params *p, const uint32_t *deny, lamina_plan_part *parts,
                      char *notes, size_t notes_size, char *err, size_t err_size)
{
    const int L = m->hp.n_layer;
    int next = 0, n_parts = 0, gpu_taken = 0;
    char why[256];
    stage_mem tmp;
    uint64_t kv_layer = lamina_kv_layer_bytes(m, p);
    uint64_t scratch = lamina_stage_layout(&tmp, m, p, 0);
    uint64_t scratch_out = lamina_stage_layout(&tmp, m, p, 1);
    char last_reason[512] = "";
    uint64_t taken[LAMINA_MAX_BACKENDS] = { 0 };   /* bytes planned per backend so far */
    int embd_on[LAMINA_MAX_BACKENDS] = { 0 };      /* holds the embedding */

    if (n_bes > LAMINA_MAX_BACKENDS) n_bes = LAMINA_MAX_BACKENDS;
    if (notes_size) notes[0] = 0;
    for (int b = 0; b < n_bes && next < L; b++) {
        lamina_be *be = bes[b];
        int host = lamina_be_is_host(be);
        int in_place = be_in_place(be);
        uint32_t dn = deny ? deny[b] : 0;
        uint64_t free_b = 0;
        uint64_t budget = be_budget(be, p, &free_b);
        budget = budget > taken[b] ? budget - taken[b] : 0;
        int cap = L;
        if (!host) {
            if (p->gpu_layers >= 0) cap = p->gpu_layers - gpu_taken;
            if (cap <= 0) {
                note(notes, notes_size, "%s: passed over: gpu_layers = %d", be->label, p->gpu_layers);
                continue;
            }
        }
        uint64_t used = scratch;
        /* the embedding: here with layer 0, or (refused here by the model
         * check) in a part of its own on another backend, placed below */
        int lone_input = next == 0 && (dn & LAMINA_DENY_INPUT);
        if (next == 0 && !lone_input) {
            if (!stage_supported(be, m, p, -1, why, sizeof why)) {
                note(notes, notes_size, "%s: passed over: %s", be->label, why);
                snprintf(last_reason, sizeof last_reason, "%s: %s", be->label, why);
                continue;
            }
            if (!in_place) used += lamina_model_layer_bytes(m, -1);
        }
        int take = 0;
        const char *stop = NULL;
        while (next + take < L && take < cap) {
            int il = next + take;
            if (!stage_supported(be, m, p, il, why, sizeof why)) { stop = why; break; }
            uint64_t need = kv_layer + (in_place ? 0 : lamina_model_layer_bytes(m, il));
            if (used + need > budget) {
                snprintf(why, sizeof why, "layer %d does not fit: %llu MiB free after %llu MiB reserve, %llu MiB needed so far",
                         il, (unsigned long long)mib(free_b), (unsigned long long)mib((uint64_t)p->reserve_bytes),
                         (unsigned long long)mib(used + need));
                stop = why;
                break;
            }
            used += need;
            take++;
        }
        /* the output head goes with the last layer: it must fit and run
         * here, unless the model check refused it here (then it goes to a
         * part of its own after this one) */
        int output = 0;
        while (take > 0 && next + take == L && !(dn & LAMINA_DENY_OUTPUT)) {
            char why2[256];
            uint64_t extra = scratch_out - scratch +
                             (in_place ? 0 : lamina_model_layer_bytes(m, L) -
                                             (m->output == m->tok_embd && (next == 0 || embd_on[b])
                                              ? m->tok_embd->size : 0));
            if (!stage_supported(be, m, p, L, why2, sizeof why2)) {
                snprintf(why, sizeof why, "%s", why2);
                stop = why;
                take = 0;            /* cannot end here: leave all to the next */
                break;
            }
            if (used + extra <= budget) { used += extra; output = 1; break; }
            snprintf(why, sizeof why, "the output head does not fit in %llu MiB free",
                     (unsigned long long)mib(free_b));
            stop = why;
            take--;
            used -= kv_layer + (in_place ? 0 : lamina_model_layer_bytes(m, next + take));
        }
        if (take > 0 && lone_input) {
            char w2[256];
            if (lone_stage(m, bes, n_bes, p, deny, 0, b, embd_on, taken, &parts[n_parts], w2, sizeof w2) >= 0) {
                n_parts++;
            } else {
                snprintf(why, sizeof why, "the embedding was refused here and no other backend can take it (%s)", w2);
                stop = why;
                take = 0;
            }
        }
        if (take == 0) {
            note(notes, notes_size, "%s: passed over: %s", be->label, stop ? stop : "no layer fits");
            snprintf(last_reason, sizeof last_reason, "%s: %s", be->label, stop ? stop : "no layer fits");
            continue;
        }
        if (stop && next + take < L)
            note(notes, notes_size, "%s: layers %d-%d go on: %s", be->label, next + take, L - 1, stop);
        else if (!host && next + take < L && take == cap)
            note(notes, notes_size, "%s: layers %d-%d go on: gpu_layers = %d", be->label, next + take, L - 1,
                 p->gpu_layers);
        lamina_plan_part *pt = &parts[n_parts++];
        memset(pt, 0, sizeof *pt);
        pt->be = b;
        pt->first = next;
        pt->last = next + take - 1;
        pt->input = next == 0 && !lone_input;
        pt->output = output;
        pt->scratch_bytes = output ? scratch_out : scratch;
        pt->kv_bytes = kv_layer * (uint64_t)take;
        if (!in_place) pt->weight_bytes = used - scratch - pt->kv_bytes -
                                          (output ? scratch_out - scratch : 0);
        if (pt->input) embd_on[b] = 1;
        taken[b] += used;
        if (!host) gpu_taken += take;
        next += take;
    }
    if (next < L) {
        if (err)
            snprintf(err, err_size, "no backend can run layer %d of %d%s%s", next, L,
                     last_reason[0] ? ": " : " (no eligible backend)", last_reason);
        return LAMINA_ENODEV;
    }
    if (!parts[n_parts - 1].output) {
        /* the last layers' backend was refused the head: a part of its own */
        char w2[256];
        if (lone_stage(m, bes, n_bes, p, deny, 1, parts[n_parts - 1].be, embd_on, taken,
                       &parts[n_parts], w2, sizeof w2) < 0) {
            if (err)
                snprintf(err, err_size, "no backend can run the output head: %s was refused it and %s",
                         bes[parts[n_parts - 1].be]->label, w2);
            return LAMINA_ENODEV;
        }
        n_parts++;
    }
    return n_parts;
}
