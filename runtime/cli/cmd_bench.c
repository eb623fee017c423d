/* cmd_bench.c - `lamina bench`: prompt processing (ppN: one batch of N
 * tokens) and generation (tgN: N single-token steps) speed per backend,
 * repeated, reported as median and spread, in the manner of llama-bench. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void bench_usage(FILE *fp)
{
    fputs("usage: lamina bench [MODEL] [-p N] [-n N] [-r N] [-b BACKEND]... [--json]\n"
          "  -p N        prompt tokens processed as one batch (default 64; 0 skips)\n"
          "  -n N        tokens generated one at a time (default 32; 0 skips)\n"
          "  -r N        repetitions after one warm-up (default 5)\n"
          "  -b BACKEND  measure this backend alone (repeatable; default: each eligible one,\n"
          "              then the configured mix when there are several)\n"
          "  --json      one JSON object per result line\n", fp);
}

/* One timed run: returns seconds, or < 0 on error. */
static double run_pp(cli_model *cm, int n_prompt, int32_t *tok, int32_t *pos, int32_t *seq,
                     int8_t *want, float *logits, uint64_t *rng)
{
    char err[512];
    int32_t V = cm->model->hp.n_vocab;
    for (int i = 0; i < n_prompt; i++) {
        *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
        tok[i] = (int32_t)((*rng >> 33) % (uint64_t)V);
        pos[i] = i;
        seq[i] = 0;
        want[i] = i == n_prompt - 1;
    }
    const lamina_engine_params *p = lamina_engine_params_get(cm->eng);
    double t0 = now_s();
    for (int at = 0; at < n_prompt; at += p->n_batch) {
        int n = n_prompt - at < p->n_batch ? n_prompt - at : p->n_batch;
        lamina_batch b = { n, tok + at, pos + at, seq + at, want + at };
        if (lamina_engine_decode(cm->eng, &b, logits, err, sizeof err) < 0) {
            cli_error("bench: %s", err);
            return -1;
        }
    }
    return now_s() - t0;
}

static double run_tg(cli_model *cm, int n_gen, float *logits, uint64_t *rng)
{
    char err[512];
    int32_t V = cm->model->hp.n_vocab;
    *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
    int32_t tok = (int32_t)((*rng >> 33) % (uint64_t)V), seq = 0;
    int8_t want = 1;
    double t0 = now_s();
    for (int i = 0; i < n_gen; i++) {
        int32_t pos = i;
        lamina_batch b = { 1, &tok, &pos, &seq, &want };
        if (lamina_engine_decode(cm->eng, &b, logits, err, sizeof err) < 0) {
            cli_error("bench: %s", err);
            return -1;
        }
        /* feed back the argmax, as generation would */
        int32_t best = 0;
        for (int32_t v = 1; v < V; v++) if (logits[v] > logits[best]) best = v;
        tok = best;
    }
    return now_s() - t0;
}

static int bench_one(const cli_globals *g, const char *model, const char *backend,
                     int n_prompt, int n_gen, int reps, int json)
{
    cli_model cm;
    cli_open_opts o = { .model = model, .backend = backend, .quiet = 1,
                        .n_ctx = (n_prompt > n_gen ? n_prompt : n_gen) + 16,
                        .n_batch = n_prompt > 0 ? (n_prompt < 512 ? n_prompt : 512) : 1 };
    if (cli_open(g, &o, &cm) < 0) return 1;
    int ret = 1;
    const int np = n_prompt > 0 ? n_prompt : 1;
    int32_t *tok = malloc((size_t)np * 4), *pos = malloc((size_t)np * 4), *seq = malloc((size_t)np * 4);
    int8_t *want = malloc((size_t)np);
    float *logits = malloc((size_t)cm.model->hp.n_vocab * sizeof(float));
    double *t = malloc((size_t)(reps + 1) * sizeof(double));
    uint64_t rng = 42;
    char label[512] = "";
    const lamina_plan_part *parts;
    int n_parts = lamina_engine_plan(cm.eng, &parts);
    for (int i = 0; i < n_parts; i++) {
        size_t l = strlen(label);
        snprintf(label + l, sizeof label - l, "%s%s[%d-%d]", i ? "+" : "",
                 lamina_engine_part_label(cm.eng, i), parts[i].first, parts[i].last);
    }
    if (!tok || !pos || !seq || !want || !logits || !t) { cli_error("out of memory"); goto out; }

    for (int kind = 0; kind < 2; kind++) {
        int n = kind == 0 ? n_prompt : n_gen;
        if (n <= 0) continue;
        double tps[64];
        int R = reps < 64 ? reps : 64;
        for (int r = -1; r < R; r++) {              /* r = -1: warm-up */
            double s = kind == 0 ? run_pp(&cm, n_prompt, tok, pos, seq, want, logits, &rng)
                                 : run_tg(&cm, n_gen, logits, &rng);
            if (s < 0) goto out;
            if (r >= 0) tps[r] = (double)n / s;
        }
        qsort(tps, (size_t)R, sizeof tps[0], cmp_d);
        double med = R % 2 ? tps[R / 2] : 0.5 * (tps[R / 2 - 1] + tps[R / 2]);
        if (json)
            printf("{\"backend\":\"%s\",\"plan\":\"%s\",\"model\":\"%s\",\"test\":\"%s%d\",\"reps\":%d,"
                   "\"tps_median\":%.3f,\"tps_min\":%.3f,\"tps_max\":%.3f}\n",
                   backend ? backend : "mixed", label, cm.model->hp.name, kind ? "tg" : "pp", n, R,
                   med, tps[0], tps[R - 1]);
        else {
            char test[32];
            snprintf(test, sizeof test, "%s%d", kind ? "tg" : "pp", n);
            printf("| %-8s | %-40.40s | %-6s | %4d | %9.2f | %9.2f .. %-9.2f |\n",
                   backend ? backend : "mixed", label, test, R, med, tps[0], tps[R - 1]);
        }
        fflush(stdout);
    }
    ret = 0;
out:
    free(tok); free(pos); free(seq); free(want); free(logits); free(t);
    cli_close(&cm);
    return ret;
}

int cmd_bench(const cli_globals *g, int argc, char **argv)
{
    const char *model = NULL;
    const char *backends[LAMINA_MAX_BACKENDS];
    int n_backends = 0, n_prompt = 64, n_gen = 32, reps = 5, json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((!strcmp(a, "-p") || !strcmp(a, "-n") || !strcmp(a, "-r") || !strcmp(a, "-b")) && i + 1 < argc) {
            const char *v = argv[++i];
            if (a[1] == 'b') {
                if (n_backends < LAMINA_MAX_BACKENDS) backends[n_backends++] = v;
                continue;
            }
            char *end;
            long x = strtol(v, &end, 10);
            if (*end || x < 0 || x > 100000 || (a[1] == 'r' && (x < 1 || x > 64))) {
                cli_error("bench: bad value '%s' for %s", v, a);
                return 2;
            }
            if (a[1] == 'p') n_prompt = (int)x; else if (a[1] == 'n') n_gen = (int)x; else reps = (int)x;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            bench_usage(stdout);
            return 0;
        } else if (a[0] == '-') {
            cli_error("bench: unknown option '%s'", a);
            bench_usage(stderr);
            return 2;
        } else if (!model) {
            model = a;
        } else {
            cli_error("bench: unexpected argument '%s'", a);
            return 2;
        }
    }
    if (!json) {
        printf("| backend  | plan (backend[layers])                   | test   | reps |   t/s med |    t/s min .. max      |\n");
        printf("|----------|------------------------------------------|--------|------|-----------|------------------------|\n");
    }
    int rc = 0;
    if (n_backends == 0) {
        /* each eligible plugin alone, then the configured mix */
        lamina_runtime *rt;
        char err[512];
        lamina_runtime_options ro;
        memset(&ro, 0, sizeof ro);
        ro.struct_size = sizeof ro;
        ro.config_path = g->config_path;
        if (lamina_runtime_open(&ro, &rt, err, sizeof err) < 0) { cli_error("%s", err); return 1; }
        char names[LAMINA_MAX_BACKENDS][64];
        int n = 0;
        for (int i = 0; i < lamina_runtime_device_count(rt) && n < LAMINA_MAX_BACKENDS; i++) {
            const char *nm = lamina_runtime_device(rt, i)->plugin->name;
            int dup = 0;
            for (int j = 0; j < n; j++) dup |= !strcmp(names[j], nm);
            if (!dup) snprintf(names[n++], sizeof names[0], "%s", nm);
        }
        lamina_runtime_close(rt);
        for (int i = 0; i < n; i++) rc |= bench_one(g, model, names[i], n_prompt, n_gen, reps, json);
        if (n > 1) rc |= bench_one(g, model, NULL, n_prompt, n_gen, reps, json);
    } else {
        for (int i = 0; i < n_backends; i++)
            rc |= bench_one(g, model, backends[i], n_prompt, n_gen, reps, json);
    }
    return rc ? 1 : 0;
}
