/*
 * selftest_test - the self-test against the reference backend itself (every
 * case must pass) and against deliberately broken wrappers of it (each
 * must be caught, naming the op and type).  Prints TAP.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

#include "lamina/quant.h"
#include "ref.h"
#include "selftest.h"

#include "tap.h"

/* ---- a wrapper around the reference backend with one injected fault ---- */

enum fault {
    F_NONE,
    F_MUL_MAT_1PCT,      /* MUL_MAT output * 1.01 */
    F_DECLINE_Q4K,       /* supports_op says no to q4_K weights */
    F_ROPE_ERROR,        /* graph_compute fails on ROPE */
    F_ADD_GAP_WRITE,     /* ADD also writes the byte after each dst row */
    F_INPUT_WRITE,       /* SCALE scribbles on its source */
    F_NO_WINDOW,         /* ATTENTION ignores the window */
    F_NO_SOFTCAP,        /* ATTENTION ignores the soft-cap */
    F_NO_FREQ_FACTORS,   /* ROPE ignores freq factors */
    F_ROPE_MODE,         /* ROPE mode neox <-> norm */
    F_GLU_ACT,           /* GLU silu <-> gelu (swiglu_oai -> silu) */
    F_NO_SINKS,          /* ATTENTION ignores the sinks (1.3) */
    F_NO_YARN,           /* ROPE ignores YaRN's ramp (1.3) */
    F_NO_GQA,            /* ATTENTION reads kv head 0 for every query head */
    F_RMS_EPS,           /* RMS_NORM with eps 1e-2 */
    F_F16_TRUNC,         /* SET_ROWS to f16 keeps only 6 mantissa bits */
    F_ALLOC_KV,          /* buffer_alloc fails for KV buffers */
    F_DEVLOST,           /* graph_compute loses the device on GLU */
};

static enum fault g_fault;
static const lamina_backend_iface *ref;
static lamina_backend_iface wrap;

static int w_alloc(lamina_backend *be, uint64_t size, uint32_t usage, lamina_buffer **out,
                   char *err, size_t err_size)
{
    if (g_fault == F_ALLOC_KV && (usage & LAMINA_BUFFER_KV)) {
        snprintf(err, err_size, "injected: out of device memory");
        return LAMINA_ENOMEM;
    }
    return ref->buffer_alloc(be, size, usage, out, err, err_size);
}

static int w_supports(lamina_backend *be, const lamina_node *n)
{
    if (g_fault == F_DECLINE_Q4K && n->op == LAMINA_OP_MUL_MAT &&
        n->src[0].type == LAMINA_TYPE_Q4_K)
        return 0;
    return ref->supports_op(be, n);
}

/* Apply f to every element of an f32/f16 tensor through upload/download. */
static int map_tensor(lamina_backend *be, const lamina_tensor *t, void (*f)(uint8_t *, uint32_t))
{
    const uint64_t rs = lamina_row_size(t->type, t->ne[0]);
    uint8_t *row = malloc(rs + 1);
    char err[128];
    for (int64_t i3 = 0; i3 < t->ne[3]; i3++)
        for (int64_t i2 = 0; i2 < t->ne[2]; i2++)
            for (int64_t i1 = 0; i1 < t->ne[1]; i1++) {
                uint64_t off = t->offset + i1 * t->nb[1] + i2 * t->nb[2] + i3 * t->nb[3];
                ref->buffer_download(be, t->buffer, off, row, rs, err, sizeof err);
                for (int64_t k = 0; k < t->ne[0]; k++)
                    f(row + k * t->nb[0], t->type);
                ref->buffer_upload(be, t->buffer, off, row, rs, err, sizeof err);
            }
    free(row);
    return 0;
}

static void plus_1pct(uint8_t *p, uint32_t type)
{
    float v;
    (void)type;
    memcpy(&v, p, 4);
    v *= 1.01f;
    memcpy(p, &v, 4);
}

/* keep 6 of the 10 mantissa bits (truncation to a coarser format) */
static void trunc_f16(uint8_t *p, uint32_t type)
{
    uint16_t h;
    (void)type;
    memcpy(&h, p, 2);
    h &= (uint16_t)~0xFu;
    memcpy(p, &h, 2);
}

static int w_compute(lamina_backend *be, const lamina_graph *g, char *err, size_t err_size)
{
    lamina_node nodes[8];
    if (g->n_nodes > 8)
        return LAMINA_EINVAL;
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        lamina_node *n = &nodes[i];
        lamina_node_copy(n, lamina_graph_node(g, i));
        switch (g_fault) {
        case F_DEVLOST:
            if (n->op == LAMINA_OP_GLU) {
                snprintf(err, err_size, "injected: device lost");
                return LAMINA_EDEVLOST;
            }
            break;
        case F_ROPE_ERROR:
            if (n->op == LAMINA_OP_ROPE) {
                snprintf(err, err_size, "injected rope failure");
                return LAMINA_EIO;
            }
            break;
        case F_NO_WINDOW:
            if (n->op == LAMINA_OP_ATTENTION) n->ip[0] = 0;
            break;
        case F_NO_SINKS:
            if (n->op == LAMINA_OP_ATTENTION && n->n_src == 5) n->n_src = 4;
            break;
        case F_NO_YARN:
            if (n->op == LAMINA_OP_ROPE) n->fp[2] = 0.0f;
            break;
        case F_NO_SOFTCAP:
            if (n->op == LAMINA_OP_ATTENTION) n->fp[1] = 0.0f;
            break;
        case F_NO_FREQ_FACTORS:
            if (n->op == LAMINA_OP_ROPE) n->n_src = 2;
            break;
        case F_ROPE_MODE:
            if (n->op == LAMINA_OP_ROPE) n->ip[0] = n->ip[0] == LAMINA_ROPE_NEOX ? 0 : 2;
            break;
        case F_GLU_ACT:
            if (n->op == LAMINA_OP_GLU) n->ip[0] = !n->ip[0];
            break;
        case F_RMS_EPS:
            if (n->op == LAMINA_OP_RMS_NORM) n->fp[0] = 1e-2f;
            break;
        default:
            break;
        }
    }
    /* F_NO_GQA: narrow the K/V views to kv head 0 (Hkv becomes 1, Dv and
     * dst's shape stay), so every query head reads kv head 0 */
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        lamina_node *n = &nodes[i];
        if (g_fault == F_NO_GQA && n->op == LAMINA_OP_ATTENTION &&
            n->src[1].ne[0] > n->src[0].ne[0]) {
            int64_t hkv = n->src[1].ne[0] / n->src[0].ne[0];
            n->src[1].ne[0] /= hkv;
            n->src[2].ne[0] /= hkv;
        }
    }
    lamina_graph g2 = *g;
    g2.nodes = nodes;
    int rc = ref->graph_compute(be, &g2, err, err_size);
    if (rc)
        return rc;
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        const lamina_node *n = lamina_graph_node(g, i);
        if (g_fault == F_MUL_MAT_1PCT && n->op == LAMINA_OP_MUL_MAT)
            map_tensor(be, &n->dst, plus_1pct);
        if (g_fault == F_F16_TRUNC && n->op == LAMINA_OP_SET_ROWS &&
            n->dst.type == LAMINA_TYPE_F16)
            map_tensor(be, &n->dst, trunc_f16);
        if (g_fault == F_ADD_GAP_WRITE && n->op == LAMINA_OP_ADD) {
            uint64_t rs = lamina_row_size(n->dst.type, n->dst.ne[0]);
            uint8_t z = 0x11;
            /* the byte after the last row of dst (a gap or the buffer tail) */
            uint64_t off = n->dst.offset + (n->dst.ne[1] - 1) * n->dst.nb[1] +
                           (n->dst.ne[2] - 1) * n->dst.nb[2] + (n->dst.ne[3] - 1) * n->dst.nb[3] + rs;
            ref->buffer_upload(be, n->dst.buffer, off, &z, 1, err, err_size);
        }
        if (g_fault == F_INPUT_WRITE && n->op == LAMINA_OP_SCALE &&
            !(n->src[0].buffer == n->dst.buffer && n->src[0].offset == n->dst.offset)) {
            float z = 42.0f;
            ref->buffer_upload(be, n->src[0].buffer, n->src[0].offset, &z, 4, err, err_size);
        }
    }
    return 0;
}

/* ---- recording callback ---- */

typedef struct rec {
    int n, fail_other, fail_want, unsup, errors, pass;
    uint64_t fail_types;    /* bit t: a case of principal type t failed */
    uint32_t want_op;
    char first_other[200];
    int verbose;
} rec;

static void cb(void *ctx, const lamina_selftest_result *r)
{
    rec *R = ctx;
    R->n++;
    if (R->verbose)
        printf("# %-70s %s err %.2e tol %.1e %.2f ms %s\n", r->name,
               r->status == 0 ? "PASS" : r->status == 1 ? "FAIL" : r->status == 2 ? "UNSUP" : "ERROR",
               r->max_err, r->tol, r->ms, r->msg);
    switch (r->status) {
    case LAMINA_SELFTEST_PASS: R->pass++; break;
    case LAMINA_SELFTEST_UNSUPPORTED: R->unsup++; break;
    case LAMINA_SELFTEST_ERROR: R->errors++; break;
    default:
        if (r->op == R->want_op) {
            R->fail_want++;
            R->fail_types |= UINT64_C(1) << r->type;
        } else {
            if (!R->fail_other)
                snprintf(R->first_other, sizeof R->first_other, "%s", r->name);
            R->fail_other++;
        }
    }
}

static int run(enum fault f, uint32_t want_op, rec *R, lamina_selftest_summary *s, char *err,
               size_t err_size)
{
    lamina_backend *be = NULL;
    const lamina_backend_iface *I = f == F_NONE ? ref : &wrap;
    memset(R, 0, sizeof *R);
    R->want_op = want_op;
    R->verbose = getenv("SELFTEST_VERBOSE") != NULL;
    g_fault = f;
    if (I->open(NULL, NULL, &be, err, err_size) != 0)
        return -999;
    int rc = lamina_selftest_run(I, be, cb, R, s, err, err_size);
    I->close(be);
    return rc;
}

int main(void)
{
    rec R;
    lamina_selftest_summary s;
    char err[512];

    ref = lamina_ref_backend_iface();
    wrap = *ref;
    wrap.supports_op = w_supports;
    wrap.graph_compute = w_compute;
    wrap.buffer_alloc = w_alloc;

    /* 1: the reference against itself */
    int rc = run(F_NONE, 0, &R, &s, err, sizeof err);
    ok(rc == 0, "reference passes its own self-test (rc %d%s%s)", rc, rc ? ": " : "", rc ? err : "");
    ok(s.cases > 150 && s.passed == s.cases && s.failed == 0 && s.errors == 0 &&
       s.unsupported == 0, "all %d cases passed (%d failed, %d errors, %d unsupported)",
       s.cases, s.failed, s.errors, s.unsupported);
    ok(R.n == s.cases && R.pass == s.passed, "callback saw every case (%d)", R.n);
    ok(s.score_gflops > 0.0, "score_gflops measured (%.3f)", s.score_gflops);
    printf("# reference: %d cases in %.0f ms, %.3f GFLOP/s\n", s.cases, s.total_ms, s.score_gflops);
    const int all_cases = s.cases;

    /* 2: MUL_MAT off by 1% */
    rc = run(F_MUL_MAT_1PCT, LAMINA_OP_MUL_MAT, &R, &s, err, sizeof err);
    ok(rc == LAMINA_EREJECTED, "mul_mat +1%% rejected (rc %d)", rc);
    ok(strncmp(err, "op mul_mat type ", 16) == 0 && strstr(err, "max error 1.0e-02 > tolerance") &&
       strstr(err, "(case mul_mat "), "message names op, type, error and case: %s", err);
    ok(R.fail_other == 0, "only mul_mat cases failed (%d others: %s)", R.fail_other, R.first_other);
    static const uint32_t wt[] = { 0, 1, 30, 2, 3, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 20, 23 };
    int missing = -1;
    for (size_t i = 0; i < sizeof wt / sizeof wt[0]; i++)
        if (!(R.fail_types >> wt[i] & 1))
            missing = (int)wt[i];
    ok(missing < 0, "every weight type failed at least once (%d failures; missing type %d)",
       R.fail_want, missing);
    ok(s.failed == R.fail_want && s.errors == 0, "summary counts failures (%d)", s.failed);

    /* 3: declined cases are unsupported, not failures */
    rc = run(F_DECLINE_Q4K, 0, &R, &s, err, sizeof err);
    ok(rc == 0 && s.unsupported == 5 && s.failed == 0 && s.passed == s.cases - 5,
       "declined q4_K mul_mat counted unsupported (rc %d, %d unsupported)", rc, s.unsupported);

    /* 4: a backend error is ERROR with its message */
    rc = run(F_ROPE_ERROR, 0, &R, &s, err, sizeof err);
    ok(rc == LAMINA_EREJECTED && s.errors == 12 && s.failed == 0,
       "rope errors reported as errors (rc %d, %d errors)", rc, s.errors);
    ok(strstr(err, "op rope type f32: backend error: ") && strstr(err, "injected rope failure"),
       "error message carries the backend's: %s", err);

    /* 5: writes outside dst rows and into inputs */
    rc = run(F_ADD_GAP_WRITE, LAMINA_OP_ADD, &R, &s, err, sizeof err);
    ok(rc == LAMINA_EREJECTED && R.fail_other == 0 && R.fail_want > 0 &&
       strstr(err, "wrote outside the rows of dst"), "write past dst rows caught: %s", err);
    rc = run(F_INPUT_WRITE, LAMINA_OP_SCALE, &R, &s, err, sizeof err);
    ok(rc == LAMINA_EREJECTED && R.fail_other == 0 && R.fail_want > 0 &&
       strstr(err, "modified an input"), "write into a source caught: %s", err);

    /* 6: semantic mistakes a kernel could make */
    static const struct { enum fault f; uint32_t op; const char *what; } sem[] = {
        { F_NO_WINDOW, LAMINA_OP_ATTENTION, "attention without window" },
        { F_NO_SOFTCAP, LAMINA_OP_ATTENTION, "attention without softcap" },
        { F_NO_GQA, LAMINA_OP_ATTENTION, "attention reading kv head 0 only" },
        { F_NO_FREQ_FACTORS, LAMINA_OP_ROPE, "rope without freq factors" },
        { F_ROPE_MODE, LAMINA_OP_ROPE, "rope with the other pairing" },
        { F_GLU_ACT, LAMINA_OP_GLU, "glu with the other activation" },
        { F_NO_SINKS, LAMINA_OP_ATTENTION, "attention without its sinks" },
        { F_NO_YARN, LAMINA_OP_ROPE, "rope without YaRN's ramp" },
        { F_RMS_EPS, LAMINA_OP_RMS_NORM, "rms_norm with a wrong eps" },
        { F_F16_TRUNC, LAMINA_OP_SET_ROWS, "set_rows f16 truncated to 6 mantissa bits" },
    };
    for (size_t i = 0; i < sizeof sem / sizeof sem[0]; i++) {
        rc = run(sem[i].f, sem[i].op, &R, &s, err, sizeof err);
        int named = strncmp(err + 3, sem[i].op == LAMINA_OP_ATTENTION ? "attention" :
                                     sem[i].op == LAMINA_OP_ROPE ? "rope" :
                                     sem[i].op == LAMINA_OP_GLU ? "glu" :
                                     sem[i].op == LAMINA_OP_RMS_NORM ? "rms_norm" : "set_rows", 3) == 0;
        ok(rc == LAMINA_EREJECTED && R.fail_want > 0 && named,
           "%s caught (%d cases failed, %d others): %s", sem[i].what, R.fail_want, R.fail_other, err);
    }

    /* 7: allocation failures are the backend's errors; the run goes on */
    rc = run(F_ALLOC_KV, 0, &R, &s, err, sizeof err);
    ok(rc == LAMINA_EREJECTED && s.errors == 20 && s.failed == 0 && s.passed == s.cases - 20 &&
       strstr(err, "op set_rows type f32: backend error: injected: out of device memory"),
       "failed KV allocations are errors (%d): %s", s.errors, err);

    /* 8: a lost device stops the run */
    rc = run(F_DEVLOST, 0, &R, &s, err, sizeof err);
    ok(rc == LAMINA_EDEVLOST && s.errors == 1 && s.cases < all_cases && s.score_gflops == 0.0 &&
       strstr(err, "op glu type f32: backend error: injected: device lost"),
       "device lost ends the run after %d cases (rc %d, %d errors): %s", s.cases, rc, s.errors, err);

    /* 9: an interface without graph_compute, or too old for it, is refused */
    lamina_backend_iface bad = *ref;
    bad.graph_compute = NULL;
    lamina_backend *be = NULL;
    ref->open(NULL, NULL, &be, err, sizeof err);
    rc = lamina_selftest_run(&bad, be, NULL, NULL, &s, err, sizeof err);
    ok(rc == LAMINA_EINVAL && strstr(err, "lacks graph_compute") && s.cases == 0,
       "interface without graph_compute: %s", err);
    bad = *ref;
    bad.struct_size = offsetof(lamina_backend_iface, supports_op);
    rc = lamina_selftest_run(&bad, be, NULL, NULL, &s, err, sizeof err);
    ok(rc == LAMINA_EINVAL && strstr(err, "lacks supports_op"), "interface too short: %s", err);
    rc = lamina_selftest_run(ref, NULL, NULL, NULL, &s, err, sizeof err);
    ok(rc == LAMINA_EINVAL, "no instance: EINVAL");
    /* cb NULL and summary NULL are allowed */
    rc = lamina_selftest_run(ref, be, NULL, NULL, NULL, err, sizeof err);
    ok(rc == 0, "runs without callback or summary");
    ref->close(be);

    return done_testing();
}
