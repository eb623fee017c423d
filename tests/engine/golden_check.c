/*
 * golden_check.c - lamina against logits recorded from llama.cpp on the same
 * model file (tests/golden/NAME-logits.json, written by
 * scripts/record-golden.sh).
 *
 * For every recorded prompt, through the real runtime (plugins probed and
 * self-tested in isolation, then loaded) on the backends named on the
 * command line, or on the core's scalar reference ("ref"):
 *   1. our tokenizer gives llama.cpp's token ids;
 *   2. prefill of those ids gives logits close to llama.cpp's at every
 *      position, over the recorded top-40 ids and the 256 probe ids;
 *   3. the argmax equals llama.cpp's at every position where llama.cpp's
 *      own top two are not a near tie;
 *   4. greedy generation, fed back from our own choices, gives llama.cpp's
 *      ids; a prompt whose recorded greedy steps all have a top-two gap
 *      wider than the near-tie bound ("greedy_min_gap") must agree at every
 *      step, the others up to their first near tie (and ours one of
 *      llama.cpp's two best there);
 *   5. teacher-forced (fed llama.cpp's greedy ids), our argmax equals
 *      llama.cpp's at every step that is not a near tie.
 *
 * Two comparisons, two references, two tolerances (printed by the test):
 *
 * --tight: against llama.cpp in its most precise configuration
 *   ("precise" in the recording): F32 KV cache, no flash attention, on a
 *   copy of the model with every weight dequantized to F32, so that
 *   llama.cpp multiplies unrounded activations too.  That is what the
 *   core's scalar reference ("ref", f32 activations, double accumulation)
 *   computes, here with an f32 KV cache as well: what is left is float
 *   summation order and llama.cpp's f16-table GELU.  Fixed limits, in
 *   logits, an order of magnitude below the fast ones:
 *       per prompt rms <= TIGHT_RMS, max <= TIGHT_MAX, pooled rms <= TIGHT_POOL
 *       near tie: top-two gap < TIGHT_TIE
 *   and every prompt recorded with all greedy gaps wide must agree at every
 *   recorded step (at least TIGHT_MIN_GREEDY) of free-running greedy
 *   decoding.  The fast kernels round activations to 8 bits as llama.cpp
 *   does for quantized weights; on Gemma 3 that alone moves logits by up to
 *   1 (as far as llama.cpp's flash and non-flash paths are apart), so they
 *   are held to the fast tolerance.
 *
 * default (fast): against llama.cpp's default configuration (f16 KV cache,
 *   flash attention auto), with our default f16 KV cache: the fast kernels'
 *   path.  The recording holds llama.cpp's logits twice, flash attention
 *   on and off; how far the peer differs from itself ("peer_spread") is
 *   the noise floor of f16 attention (on Gemma 3 its 18 layers turn
 *   last-bit differences into logit differences of 1 to 3), so the limits
 *   are scaled by it:
 *       pooled rms <= 1.5 * pooled spread rms + 0.02
 *       per prompt rms <= 2.5 * spread.rms + 0.1, max <= 2.5 * spread.max + 0.5
 *       near tie: gap < max(0.25, 2.5 * spread.rms)
 *
 * --perturb rope-base|window|softcap: the calibration.  The model's
 *   hyperparameters are made deliberately wrong after loading (sliding-
 *   window layers' RoPE base set to the global one; the sliding window cut
 *   to 4 positions; a final logit soft-cap of 10 the model does not have),
 *   and the comparison must fail: tests/engine/golden_calibration.sh
 *   asserts that it does.
 *
 * $LAMINA_GOLDEN_STEPS caps the greedy steps of 4 and 5 (default: all
 * recorded), for slow devices such as lavapipe.
 *
 * usage: golden_check [--tight [--min-greedy-prompts N] [--greedy-prompts N]]
 *                     [--prompts N] [--positions N] [--perturb WHAT] GOLDEN.json MODEL.gguf
 *                     BACKEND[,BACKEND...]|ref [GPU_LAYERS]
 * --prompts N: the first N recorded prompts only (default: all).
 * --positions N: logits compared at the last N positions of each prompt
 * only (default: all).  --greedy-prompts N: the tight path decodes
 * greedily on the first N prompts recorded for it only (default: all);
 * it never teacher-forces (the fast path does).  Both exist for the
 * scalar reference on the default model, which takes about a second a
 * step under the sanitizers, and for lavapipe.
 * Several backends (in that order, with GPU_LAYERS: all, or N on the
 * first non-cpu one) check a split plan.  Prints TAP.
 */
#include "config.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "model.h"
#include "ref.h"
#include "tokenizer.h"
#include "tap.h"

/* The two tolerances (see the comment at the top).  A limit is
 * factor * (llama.cpp's own spread) + slack; the tight one has no factor. */
typedef struct limits {
    const char *name;
    double pool_f, pool_s;   /* pooled rms */
    double rms_f, rms_s;     /* per prompt rms */
    double max_f, max_s;     /* per prompt max */
    double tie_f, tie_min;   /* near tie: gap < max(tie_min, tie_f * spread rms) */
    size_t min_greedy;       /* free-running steps that must agree on a prompt recorded for it */
} limits;

#define TIGHT_RMS  0.03
#define TIGHT_MAX  0.10
#define TIGHT_POOL 0.01
#define TIGHT_TIE  0.10
#define TIGHT_MIN_GREEDY 32

static const limits FAST = { "fast: llama.cpp default (f16 KV, flash attention auto), limits scaled by its "
                             "flash on/off spread", 1.5, 0.02, 2.5, 0.1, 2.5, 0.5, 2.5, 0.25, 0 };
static const limits TIGHT = { "tight: llama.cpp precise (F32 weights, f32 KV, no flash attention), fixed limits",
                              0, TIGHT_POOL,
                              0, TIGHT_RMS, 0, TIGHT_MAX, 0, TIGHT_TIE, TIGHT_MIN_GREEDY };

static int argmax(const float *v, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++) if (v[i] > v[b]) b = i;
    return b;
}

/* [[id, logit], ...] -> id and logit of entry k */
static int top_id(json_t *top, size_t k) { return (int)json_integer_value(json_array_get(json_array_get(top, k), 0)); }
static double top_val(json_t *top, size_t k) { return json_number_value(json_array_get(json_array_get(top, k), 1)); }
static double top_gap(json_t *top) { return json_array_size(top) >= 2 ? top_val(top, 0) - top_val(top, 1) : 1e9; }
/* At a near tie, our pick is fine when llama.cpp's own logit for it (from
 * its recorded top list) is within the tie gap of its best: any of the
 * tied candidates, two or more. */
static int tied_pick(json_t *top, int id, double near_tie)
{
    for (size_t k = 0; k < json_array_size(top); k++)
        if (top_id(top, k) == id) return top_val(top, 0) - top_val(top, k) < near_tie;
    return 0;
}

/* One token at position pos of slot 0; its logits into `logits`. */
static int step(lamina_engine *e, int32_t t, int32_t pos, float *logits, char *err, size_t es)
{
    int32_t sq = 0;
    int8_t w = 1;
    lamina_batch b = { 1, &t, &pos, &sq, &w };
    return lamina_engine_decode(e, &b, logits, err, es) == 1 ? 0 : -1;
}

static lamina_be *open_ref(lamina_be *be, char *err, size_t es)
{
    static const lamina_host host = { sizeof host, LAMINA_PLUGIN_ABI_MAJOR, LAMINA_PLUGIN_ABI_MINOR,
                                      LAMINA_PLUGIN_ABI_MIN_MINOR, LAMINA_VERSION_STRING, NULL, NULL };
    lamina_backend_params bp = { sizeof bp, 0, 1, 0 };
    memset(be, 0, sizeof *be);
    be->iface = lamina_ref_backend_iface();
    snprintf(be->label, sizeof be->label, "ref:0 (core reference)");
    return be->iface->open(&host, &bp, &be->inst, err, es) == 0 ? be : NULL;
}

/* The calibration: make one hyperparameter deliberately wrong. */
static int perturb(lamina_hparams *hp, const char *what)
{
    if (strcmp(what, "rope-base") == 0) {
        int n = 0;
        float local = 0;
        for (int il = 0; il < hp->n_layer; il++)
            if (hp->layer[il].window > 0 && hp->layer[il].rope_base != hp->rope_base) {
                local = hp->layer[il].rope_base;
                hp->layer[il].rope_base = hp->rope_base;
                n++;
            }
        if (n == 0) return -1;
        printf("# perturbed: sliding-window layers' RoPE base %g -> %g (%d layers)\n", local, hp->rope_base, n);
    } else if (strcmp(what, "window") == 0) {
        if (hp->n_swa <= 4) return -1;
        printf("# perturbed: sliding window %d -> 4\n", hp->n_swa);
        for (int il = 0; il < hp->n_layer; il++)
            if (hp->layer[il].window > 0) hp->layer[il].window = 4;
        hp->n_swa = 4;
    } else if (strcmp(what, "softcap") == 0) {
        printf("# perturbed: final logit soft-cap %g -> 10\n", hp->final_softcap);
        hp->final_softcap = 10.0f;
    } else {
        return -1;
    }
    return 0;
}

typedef struct pooled { double sq, spread_sq, n; int full_greedy, greedy_done; } pooled;

/* How much of each prompt a run checks (command-line options). */
typedef struct scope {
    int prompts;          /* the first N prompts (0: all) */
    int positions;        /* logits at the last N prompt positions (0: all) */
    int greedy_prompts;   /* tight: free-running greedy on the first N prompts recorded with all gaps wide
                             (-1: all) */
} scope;

/* Steps 1-5 for one recorded prompt. */
static void check_prompt(lamina_engine *e, lamina_tokenizer *tok, int V, const lamina_engine_params *p,
                         json_t *pr, size_t pi, const limits *L, const scope *sc, float *logits, float *last,
                         pooled *pool)
{
    char err[1024] = "";
    const char *text = json_string_value(json_object_get(pr, "text"));
    json_t *jt = json_object_get(pr, "tokens"), *spread = json_object_get(pr, "peer_spread");
    json_t *gi = json_object_get(pr, "greedy_ids"), *gtop = json_object_get(pr, "greedy_top");
    json_t *jgap = json_object_get(pr, "greedy_min_gap");
    size_t n = json_array_size(jt), ng = json_array_size(gi);
    const char *steps = getenv("LAMINA_GOLDEN_STEPS");
    if (steps && atoi(steps) > 0 && (size_t)atoi(steps) < ng) ng = (size_t)atoi(steps);
    if (!text || n == 0 || n + ng > (size_t)p->n_ctx || (L->tie_f > 0 && !spread) || json_array_size(gtop) < ng) {
        ok(0, "prompt %zu malformed, too long or recorded without peer_spread", pi);
        return;
    }
    const double s_rms = json_number_value(json_object_get(spread, "rms"));
    const double s_max = json_number_value(json_object_get(spread, "max"));
    const double near_tie = fmax(L->tie_min, L->tie_f * s_rms);
    /* all recorded greedy steps have a wide gap: every step must agree */
    const int all_wide = L->min_greedy > 0 && json_is_number(jgap) && json_number_value(jgap) >= near_tie;
    int32_t *ids = malloc(n * sizeof *ids), *pos = malloc(n * sizeof *pos), *seq = calloc(n, sizeof *seq);
    int8_t *want = malloc(n);
    for (size_t i = 0; i < n; i++) {
        ids[i] = (int32_t)json_integer_value(json_array_get(jt, i));
        pos[i] = (int32_t)i;
        want[i] = sc->positions <= 0 || i + (size_t)sc->positions >= n;
    }
    const size_t first = sc->positions > 0 && (size_t)sc->positions < n ? n - (size_t)sc->positions : 0;
    char label[48];
    snprintf(label, sizeof label, "prompt %zu (%zu tokens)", pi, n);

    /* 1. tokenizer */
    lamina_token *mine = NULL;
    size_t nm = 0;
    lamina_tokenizer_encode(tok, text, strlen(text), LAMINA_TOKENIZE_ADD_SPECIAL | LAMINA_TOKENIZE_PARSE_SPECIAL,
                            &mine, &nm, err, sizeof err);
    int same_tok = nm == n;
    for (size_t i = 0; same_tok && i < n; i++) same_tok = mine[i] == ids[i];
    ok(same_tok, "%s: tokenizer ids equal llama.cpp's", label);
    free(mine);

    /* 2, 3. logits at every position; a prompt longer than a batch is
     * prefilled in batches, as a server does */
    json_t *positions = json_object_get(pr, "positions");
    double worst = 0, sum_sq = 0;
    int bad_argmax = 0, checked = 0;
    const size_t C = (size_t)(p->n_outputs < p->n_batch ? p->n_outputs : p->n_batch);
    for (size_t c0 = 0; c0 < n; c0 += C) {
    const size_t c1 = c0 + C < n ? c0 + C : n, r0 = first > c0 ? first : c0;
    lamina_batch b = { (int32_t)(c1 - c0), ids + c0, pos + c0, seq + c0, want + c0 };
    int rc = lamina_engine_decode(e, &b, logits, err, sizeof err);
    if (rc != (int)(c1 > r0 ? c1 - r0 : 0)) { ok(0, "%s: decode of tokens %zu..%zu: %s", label, c0, c1 - 1, err); goto out; }
    if (c1 == n) memcpy(last, logits + (n - r0 - 1) * (size_t)V, (size_t)V * sizeof(float));
    for (size_t i = r0; i < json_array_size(positions) && i < c1; i++) {
        json_t *ps = json_array_get(positions, i);
        const float *row = logits + (i - r0) * (size_t)V;
        json_t *top = json_object_get(ps, "top"), *probe = json_object_get(ps, "probe");
        for (size_t k = 0; k < json_array_size(top) + json_array_size(probe); k++) {
            int id;
            double ref;
            if (k < json_array_size(top)) { id = top_id(top, k); ref = top_val(top, k); }
            else {
                size_t j = k - json_array_size(top);
                id = (int)(((long long)j * 1031) % V);
                ref = json_number_value(json_array_get(probe, j));
            }
            if (id < 0 || id >= V) continue;
            double d = fabs(row[id] - ref);
            if (!(d <= worst)) worst = d;                 /* NaN counts as worst */
            sum_sq += d * d;
            checked++;
        }
        int mine_best = argmax(row, V);
        if (mine_best != top_id(top, 0) && top_gap(top) >= near_tie) {
            bad_argmax++;
            printf("# %s pos %zu: argmax %d, llama.cpp %d (gap %.3f)\n", label, i, mine_best, top_id(top, 0),
                   top_gap(top));
        }
    }
    }
    {
        /* the first generated token: our best two beside llama.cpp's */
        json_t *t0 = json_array_get(gtop, 0);
        int a = argmax(last, V), b2 = a == 0 ? 1 : 0;
        for (int i = 0; i < V; i++) if (i != a && last[i] > last[b2]) b2 = i;
        printf("# %s first token: ours %d (%.3f) then %d (%.3f), gap %.3f; llama.cpp %d (%.3f) then %d (%.3f), "
               "gap %.3f\n", label, a, last[a], b2, last[b2], last[a] - last[b2], top_id(t0, 0), top_val(t0, 0),
               top_id(t0, 1), top_val(t0, 1), top_gap(t0));
    }
    double rms = checked ? sqrt(sum_sq / checked) : 1e9;
    double lim_rms = L->rms_f * s_rms + L->rms_s, lim_max = L->max_f * s_max + L->max_s;
    if (L->tie_f > 0)
        printf("# %s: %d logits; |ours - llama.cpp| rms %.4f max %.4f; llama.cpp flash vs no-flash rms %.4f max %.4f\n",
               label, checked, rms, worst, s_rms, s_max);
    else
        printf("# %s: %d logits; |ours - llama.cpp| rms %.4f max %.4f\n", label, checked, rms, worst);
    pool->sq += sum_sq;
    pool->spread_sq += s_rms * s_rms * checked;
    pool->n += checked;
    ok(checked > 0 && rms <= lim_rms, "%s: logits rms difference %.4f <= %.4f", label, rms, lim_rms);
    ok(checked > 0 && worst <= lim_max, "%s: logits max difference %.4f <= %.4f", label, worst, lim_max);
    ok(bad_argmax == 0, "%s: argmax equals llama.cpp's at every position not a near tie (gap < %.2f)", label,
       near_tie);

    /* The tight path (the scalar reference: ~1 s a step under the
     * sanitizers) decodes greedily only on the prompts recorded with all
     * gaps wide, as many as asked; the fast path checks teacher forcing. */
    if (L->min_greedy > 0 && (!all_wide || (sc->greedy_prompts >= 0 && pool->greedy_done >= sc->greedy_prompts)))
        goto out;
    if (all_wide) pool->greedy_done++;
    /* 4. free-running greedy */
    {
        int32_t t = argmax(last, V);
        size_t i = 0;
        int fine = 1, tie = 0;
        for (; i < ng; i++) {
            json_t *tp = json_array_get(gtop, i);
            int32_t want_t = (int32_t)json_integer_value(json_array_get(gi, i));
            if (t != want_t || (!all_wide && top_gap(tp) < near_tie)) {
                /* where the two part (or could): both sides' best two */
                const float *row = i == 0 ? last : logits;
                int a = top_id(tp, 0), b2 = top_id(tp, 1);
                printf("# %s greedy step %zu: llama.cpp %d (%.3f) then %d (%.3f), gap %.3f; ours %d %.3f, %d %.3f, "
                       "gap %.3f; ours picks %d\n", label, i, a, top_val(tp, 0), b2, top_val(tp, 1), top_gap(tp), a,
                       row[a], b2, row[b2], row[a] - row[b2], t);
            }
            if (!all_wide && top_gap(tp) < near_tie) { tie = 1; fine = tied_pick(tp, t, near_tie); break; }
            if (t != want_t) { fine = 0; break; }
            if (i + 1 < ng) {
                if (step(e, t, (int32_t)(n + i), logits, err, sizeof err) < 0) { fine = 0; break; }
                t = argmax(logits, V);
            }
        }
        if (all_wide) {
            if (fine && i == ng && ng >= L->min_greedy) pool->full_greedy++;
            ok(fine && i == ng, "%s: greedy ids equal llama.cpp's at all %zu steps (its smallest top-two gap %.2f)",
               label, ng, json_number_value(jgap));
            /* every step agreed: teacher forcing would feed the same ids
             * through the same computation again */
            if (fine && i == ng) goto out;
            if (L->min_greedy > 0) goto out;
        } else {
            ok(fine, "%s: greedy ids equal llama.cpp's for %zu steps%s", label, i,
               tie ? " up to a near tie, where ours is one of its tied best" : " (all)");
        }
    }
    /* 5. teacher-forced: llama.cpp's ids fed back (after the prompt
     *    again, from the cache of step 2) */
    {
        int bad = 0, ties = 0;
        const float *row = last;
        for (size_t i = 0; i < ng; i++) {
            json_t *tp = json_array_get(gtop, i);
            int mine_best = argmax(row, V);
            if (top_gap(tp) < near_tie) {
                ties++;
                if (!tied_pick(tp, mine_best, near_tie)) bad++;
            } else if (mine_best != top_id(tp, 0)) {
                bad++;
                printf("# %s forced step %zu: ours %d, llama.cpp %d (gap %.3f)\n", label, i, mine_best,
                       top_id(tp, 0), top_gap(tp));
            }
            if (i + 1 < ng) {
                int32_t t = (int32_t)json_integer_value(json_array_get(gi, i));
                if (step(e, t, (int32_t)(n + i), logits, err, sizeof err) < 0) { bad++; break; }
                row = logits;
            }
        }
        ok(bad == 0, "%s: teacher-forced argmax equals llama.cpp's at %zu/%zu steps (%d near ties)", label,
           ng - (size_t)bad, ng, ties);
    }
out:
    free(ids); free(pos); free(seq); free(want);
}

int main(int argc, char **argv)
{
    const limits *L = &FAST;
    const char *perturb_what = NULL;
    int min_greedy_prompts = 0;
    scope sc = { 0, 0, -1 };
    int ai = 1;
    for (; ai < argc && strncmp(argv[ai], "--", 2) == 0; ai++) {
        if (strcmp(argv[ai], "--tight") == 0) L = &TIGHT;
        else if (strcmp(argv[ai], "--perturb") == 0 && ai + 1 < argc) perturb_what = argv[++ai];
        else if (strcmp(argv[ai], "--min-greedy-prompts") == 0 && ai + 1 < argc) min_greedy_prompts = atoi(argv[++ai]);
        else if (strcmp(argv[ai], "--greedy-prompts") == 0 && ai + 1 < argc) sc.greedy_prompts = atoi(argv[++ai]);
        else if (strcmp(argv[ai], "--positions") == 0 && ai + 1 < argc) sc.positions = atoi(argv[++ai]);
        else if (strcmp(argv[ai], "--prompts") == 0 && ai + 1 < argc) sc.prompts = atoi(argv[++ai]);
        else { fprintf(stderr, "golden_check: unknown option %s\n", argv[ai]); return 2; }
    }
    argc -= ai - 1;
    argv += ai - 1;
    if (argc < 4) {
        fprintf(stderr, "usage: golden_check [--tight [--min-greedy-prompts N] [--greedy-prompts N]] [--prompts N] [--positions N] "
                        "[--perturb rope-base|window|softcap] GOLDEN.json MODEL.gguf "
                        "BACKEND[,BACKEND...]|ref [GPU_LAYERS]\n");
        return 2;
    }
    char err[1024] = "";
    json_error_t je;
    lamina_runtime *rt = NULL;
    lamina_be *bes[LAMINA_MAX_BACKENDS], ref_be;
    int n_bes = 0, failed = 0;
    lamina_model *m = NULL;
    lamina_tokenizer *tok = NULL;
    lamina_engine *e = NULL;
    float *logits = NULL, *last = NULL;
    memset(&ref_be, 0, sizeof ref_be);
    json_t *root = json_load_file(argv[1], 0, &je);
    if (!root) { printf("not ok 1 - %s:%d: %s\n1..1\n", argv[1], je.line, je.text); return 1; }
    json_t *prompts = json_object_get(L == &TIGHT ? json_object_get(root, "precise") : root, "prompts");
    if (!json_is_array(prompts)) {
        printf("not ok 1 - %s: no '%sprompts' array\n1..1\n", argv[1], L == &TIGHT ? "precise." : "");
        json_decref(root);
        return 1;
    }
    printf("# tolerance %s\n", L->name);
    if (L == &TIGHT)
        printf("# limits: per prompt rms <= %.2f, max <= %.2f; pooled rms <= %.2f; near tie below a gap of %.2f; "
               ">= %d greedy steps agree on prompts recorded for it\n", TIGHT_RMS, TIGHT_MAX, TIGHT_POOL, TIGHT_TIE,
               TIGHT_MIN_GREEDY);
    else
        printf("# limits: pooled rms <= %.1f x spread + %.2f; per prompt rms <= %.1f x spread + %.1f, "
               "max <= %.1f x spread max + %.1f; near tie below max(%.2f, %.1f x spread)\n", FAST.pool_f,
               FAST.pool_s, FAST.rms_f, FAST.rms_s, FAST.max_f, FAST.max_s, FAST.tie_min, FAST.tie_f);

    lamina_runtime_options ro;
    memset(&ro, 0, sizeof ro);
    ro.struct_size = sizeof ro;
    if (lamina_runtime_open(&ro, &rt, err, sizeof err) < 0) { printf("not ok 1 - runtime: %s\n1..1\n", err); failed = 1; goto out; }
    if (strcmp(argv[3], "ref") == 0) {
        if (open_ref(&ref_be, err, sizeof err)) bes[n_bes++] = &ref_be;
        else { printf("not ok 1 - reference backend: %s\n1..1\n", err); failed = 1; goto out; }
    } else {
        char names[256];
        snprintf(names, sizeof names, "%s", argv[3]);
        char *save = NULL;
        for (char *nm = strtok_r(names, ",", &save); nm && n_bes < LAMINA_MAX_BACKENDS;
             nm = strtok_r(NULL, ",", &save)) {
            lamina_be *be = NULL;
            for (int i = 0; !be && i < lamina_runtime_device_count(rt); i++) {
                if (strcmp(lamina_runtime_device(rt, i)->plugin->name, nm) != 0) continue;
                if (lamina_runtime_open_backend(rt, i, &be, err, sizeof err) < 0) printf("# %s\n", err);
                break;
            }
            if (!be) { printf("not ok 1 - backend '%s' is not eligible here %s\n1..1\n", nm, err); failed = 1; goto out; }
            bes[n_bes++] = be;
        }
    }
    for (int i = 0; i < n_bes; i++) printf("# backend %s\n", bes[i]->label);

    if (lamina_model_load(argv[2], &m, err, sizeof err) < 0) { printf("not ok 1 - %s\n1..1\n", err); failed = 1; goto out; }
    if (perturb_what && perturb(&m->hp, perturb_what) < 0) {
        printf("not ok 1 - --perturb %s: unknown, or this model has nothing to perturb there\n1..1\n", perturb_what);
        failed = 1;
        goto out;
    }
    if (lamina_tokenizer_load(m->gguf, &tok, err, sizeof err) < 0) { printf("not ok 1 - %s\n1..1\n", err); failed = 1; goto out; }
    const int V = m->hp.n_vocab;

    lamina_engine_params p;
    lamina_engine_params_default(&p);
    /* logits for every prompt position: as many output rows as the longest
     * prompt (a device binds the logits of one graph in one buffer range);
     * room for the longest prompt and its greedy steps */
    int max_n = 1, max_len = 1;
    for (size_t i = 0; i < json_array_size(prompts); i++) {
        json_t *pr = json_array_get(prompts, i);
        int k = (int)json_array_size(json_object_get(pr, "tokens"));
        int g = (int)json_array_size(json_object_get(pr, "greedy_ids"));
        if (k > max_n) max_n = k;
        if (k + g > max_len) max_len = k + g;
    }
    /* a batch of at most 256 tokens: longer prompts in several */
    p.n_ctx = max_len > 512 ? max_len : 512; p.n_seq = 1; p.n_batch = max_len < 256 ? max_len : 256;
    /* the recording's context when larger: it decides, as in llama.cpp,
     * whether LongRoPE's long factors apply (n_ctx > the original context) */
    json_int_t rec_ctx = json_integer_value(json_object_get(json_object_get(root, "settings"), "n_ctx"));
    if (rec_ctx > p.n_ctx && rec_ctx <= 1 << 20) p.n_ctx = (int32_t)rec_ctx;
    p.n_outputs = max_n < 256 ? max_n : 256;
    p.kv_f32 = L == &TIGHT;
    if (argc > 4) p.gpu_layers = strcmp(argv[4], "all") == 0 ? -2 : atoi(argv[4]);
    if (lamina_engine_create(m, bes, n_bes, &p, &e, err, sizeof err) < 0) { printf("not ok 1 - %s\n1..1\n", err); failed = 1; goto out; }
    {
        char plan[2048];
        lamina_engine_describe_plan(e, plan, sizeof plan);
        for (char *l = strtok(plan, "\n"); l; l = strtok(NULL, "\n")) printf("# plan: %s\n", l);
    }

    logits = malloc((size_t)p.n_outputs * V * sizeof(float));
    last = malloc((size_t)V * sizeof(float));
    size_t np = json_array_size(prompts);
    if (sc.prompts > 0 && (size_t)sc.prompts < np) np = (size_t)sc.prompts;
    pooled pool = { 0, 0, 0, 0, 0 };
    int n_greedy_prompts = 0;
    for (size_t pi = 0; pi < np; pi++) {
        json_t *pr = json_array_get(prompts, pi);
        json_t *jgap = json_object_get(pr, "greedy_min_gap");
        if (L->min_greedy > 0 && json_is_number(jgap) && json_number_value(jgap) >= L->tie_min &&
            (sc.greedy_prompts < 0 || n_greedy_prompts < sc.greedy_prompts))
            n_greedy_prompts++;
        check_prompt(e, tok, V, &p, pr, pi, L, &sc, logits, last, &pool);
    }
    const double pr = pool.n ? sqrt(pool.sq / pool.n) : 1e9, ps = pool.n ? sqrt(pool.spread_sq / pool.n) : 0;
    const double lim = L->pool_f * ps + L->pool_s;
    if (L->tie_f > 0)
        printf("# all prompts: %.0f logits; rms |ours - llama.cpp| %.4f, llama.cpp flash vs no-flash %.4f (ratio %.2f)\n",
               pool.n, pr, ps, ps > 0 ? pr / ps : 0.0);
    else
        printf("# all prompts: %.0f logits; rms |ours - llama.cpp| %.4f\n", pool.n, pr);
    ok(pool.n > 0 && pr <= lim, "all prompts: pooled logits rms %.4f <= %.4f", pr, lim);
    if (L->min_greedy > 0 && !getenv("LAMINA_GOLDEN_STEPS") && (n_greedy_prompts > 0 || min_greedy_prompts > 0))
        ok(n_greedy_prompts >= min_greedy_prompts && pool.full_greedy == n_greedy_prompts,
           "free-running greedy agreed for all >= %zu recorded steps on %d of the %d prompts recorded with all gaps "
           "wide (at least %d wanted)", L->min_greedy, pool.full_greedy, n_greedy_prompts, min_greedy_prompts);
out:
    free(logits);
    free(last);
    if (e) lamina_engine_free(e);
    if (tok) lamina_tokenizer_free(tok);
    if (m) lamina_model_free(m);
    for (int i = 0; i < n_bes; i++) {
        if (bes[i] == &ref_be) ref_be.iface->close(ref_be.inst);
        else lamina_be_close(bes[i]);
    }
    if (rt) lamina_runtime_close(rt);
    json_decref(root);
    if (failed) return 1;
    return done_testing();
}
