/* cmd_bench.c - `lamina bench`: prompt processing (ppN: one batch of N
 * tokens) and generation (tgN: N single-token steps) speed per backend,
 * repeated, reported as median and spread, in the manner of llama-bench.
 * With --prompt, generation runs greedily from that text through the
 * generation loop, plain (gtN) and with speculative decoding (gtN-spec,
 * with its acceptance rate), in alternating repetitions. */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "conf.h"
#include "generate.h"
#include "lookup.h"
#include "model.h"

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
    fputs("usage: lamina bench [MODEL] [-p N] [-n N] [-s N] [-r N] [-b BACKEND]... [--prompt TEXT|@FILE]\n"
          "                    [--no-spec] [--spec-draft N] [--json]\n"
          "  -p N        prompt tokens processed as one batch (default 64; 0 skips)\n"
          "  -n N        tokens generated one at a time (default 32; 0 skips)\n"
          "  --prompt T  generate greedily from this text (@FILE: the file's text), used\n"
          "              as is: up to -n tokens, plain (gtN) and with speculative\n"
          "              decoding (gtN-spec, acceptance rate shown), alternating\n"
          "  --no-spec   with --prompt: the plain runs only\n"
          "  --spec-draft N  most drafts per step (default [generate] speculative_draft)\n"
          "  -s N        also generate with N sequences at once, one token each per step\n"
          "              (tgNxS: the tokens of all of them per second, as a server with N busy\n"
          "              slots decodes; 1..64)\n"
          "  -r N        repetitions after one warm-up (default 5)\n"
          "  -b BACKEND  measure this backend alone (repeatable; default: each eligible one,\n"
          "              then the configured mix when there are several)\n"
          "  --json      one JSON object per result line\n", fp);
}

/* The roofline of generation on host memory: a decoding step cannot be
 * faster than the weights it reads streamed at the machine's read
 * bandwidth.  The bandwidth is this machine's, measured here: `threads`
 * threads each sum their slice of a buffer far larger than any cache, as a
 * weight kernel streams its rows, with and without software prefetch (the
 * kernels use both); the best of six passes counts. */
#define PROBE_BYTES ((size_t)256 << 20)
#define PROBE_AHEAD 2048        /* prefetch distance, bytes */

typedef uint64_t probe_vec __attribute__((vector_size(32)));

typedef struct probe_part {
    const probe_vec *p;
    size_t n;
    int prefetch;
    double t0, t1;
    uint64_t sum;               /* kept, so the reads are not dropped */
} probe_part;

/* no_sanitize: the probe measures the memory, not the instrumentation */
__attribute__((no_sanitize("address")))
static void *probe_read(void *arg)
{
    probe_part *pp = arg;
    probe_vec a = { 0 }, b = { 0 }, c = { 0 }, d = { 0 };
    pp->t0 = now_s();
    for (size_t i = 0; i + 4 <= pp->n; i += 4) {
        if (pp->prefetch) {
            __builtin_prefetch((const char *)(pp->p + i) + PROBE_AHEAD);
            __builtin_prefetch((const char *)(pp->p + i) + PROBE_AHEAD + 64);
        }
        a += pp->p[i]; b += pp->p[i + 1]; c += pp->p[i + 2]; d += pp->p[i + 3];
    }
    pp->t1 = now_s();
    probe_vec s = a + b + c + d;
    pp->sum = s[0] + s[1] + s[2] + s[3];
    return NULL;
}

/* Bytes per second, or 0 when the buffer or a thread cannot be had. */
static double probe_read_bandwidth(int threads)
{
    if (threads < 1) threads = 1;
    if (threads > 256) threads = 256;
    probe_vec *buf = aligned_alloc(64, PROBE_BYTES);
    if (!buf) return 0;
    memset(buf, 1, PROBE_BYTES);                /* fault every page in first */
    const size_t n = PROBE_BYTES / sizeof *buf, per = n / (size_t)threads / 4 * 4;
    probe_part part[256];
    pthread_t th[256];
    double best = 0;
    for (int pass = 0; pass < 6; pass++) {
        int started = 0;
        for (; started < threads; started++) {
            part[started] = (probe_part){ buf + (size_t)started * per, per, pass & 1, 0, 0, 0 };
            if (pthread_create(&th[started], NULL, probe_read, &part[started]) != 0) break;
        }
        for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
        if (started < threads) { best = 0; break; }
        double t0 = part[0].t0, t1 = part[0].t1;
        for (int i = 1; i < threads; i++) {
            if (part[i].t0 < t0) t0 = part[i].t0;
            if (part[i].t1 > t1) t1 = part[i].t1;
        }
        double bw = t1 > t0 ? (double)(per * (size_t)threads * sizeof *buf) / (t1 - t0) : 0;
        if (bw > best) best = bw;
    }
    free(buf);
    return best;
}

typedef struct roofline {
    double read_bps;            /* measured streaming-read bandwidth */
    int threads;                /* it was measured with */
    uint64_t weight_bytes;      /* weights a generated token reads */
    double kv_bytes;            /* KV cache it reads, on average */
    double token_bytes;         /* the two together */
} roofline;

/* The tgN roofline of cm's plan, or 0 when a part of it is not on host
 * memory (a GPU's own memory is not what the probe measures).  The bytes
 * of a token: its weights (lamina_model_token_bytes) and the KV cache it
 * attends over, averaged over the N steps from position 0. */
static int bench_roofline(cli_model *cm, int n_gen, roofline *rl)
{
    static double measured[257];
    const lamina_plan_part *parts;
    int n_parts = lamina_engine_plan(cm->eng, &parts), threads = 0;
    for (int i = 0; i < n_parts; i++) {
        const lamina_device_slot *sl = cm->bes[parts[i].be]->slot;
        if (!sl || !sl->device || !sl->device->info.type || strcmp(sl->device->info.type, "cpu")) return 0;
        int t = sl->config && sl->config->threads > 0 ? sl->config->threads : cm->cfg.threads;
        if (strcmp(sl->plugin->name, "cpu")) t = 0;     /* a driver's own threads */
        if (t <= 0) t = lamina_config_core_count();
        if (t > threads) threads = t;
    }
    if (n_parts <= 0 || n_gen <= 0) return 0;
    if (threads > 256) threads = 256;
    if (measured[threads] <= 0) measured[threads] = probe_read_bandwidth(threads);
    if (measured[threads] <= 0) return 0;
    const lamina_hparams *hp = &cm->model->hp;
    const double kv_pos = (double)hp->n_head_kv * (hp->head_dim + hp->head_dim_v) *
                          (lamina_engine_params_get(cm->eng)->kv_f32 ? 4 : 2);
    double kv = 0;
    for (int il = 0; il < hp->n_layer; il++)
        for (int p = 0; p < n_gen; p++) {
            int w = hp->layer[il].window;
            kv += kv_pos * (w > 0 && p + 1 > w ? w : p + 1);
        }
    rl->read_bps = measured[threads];
    rl->threads = threads;
    rl->weight_bytes = lamina_model_token_bytes(cm->model);
    rl->kv_bytes = kv / n_gen;
    rl->token_bytes = (double)rl->weight_bytes + rl->kv_bytes;
    return 1;
}

/* A token id below V from the benchmark's own generator. */
static int32_t draw_token(uint64_t *rng, int32_t V)
{
    *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
    return (int32_t)((*rng >> 33) % (uint64_t)V);
}

/* One timed run: returns seconds, or < 0 on error. */
static double run_pp(cli_model *cm, int n_prompt, int32_t *tok, int32_t *pos, int32_t *seq,
                     int8_t *want, float *logits, uint64_t *rng)
{
    char err[512];
    int32_t V = cm->model->hp.n_vocab;
    for (int i = 0; i < n_prompt; i++) {
        tok[i] = draw_token(rng, V);
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

/* n_gen steps of n_seq sequences (slots 0..n_seq-1), one token each per
 * step; logits holds n_seq rows. */
static double run_tg(cli_model *cm, int n_gen, int n_seq, float *logits, uint64_t *rng)
{
    char err[512];
    int32_t V = cm->model->hp.n_vocab;
    int32_t tok[64], pos[64], seq[64];
    int8_t want[64];
    for (int s = 0; s < n_seq; s++) {
        tok[s] = draw_token(rng, V);
        seq[s] = s;
        want[s] = 1;
    }
    double t0 = now_s();
    for (int i = 0; i < n_gen; i++) {
        for (int s = 0; s < n_seq; s++) pos[s] = i;
        lamina_batch b = { n_seq, tok, pos, seq, want };
        if (lamina_engine_decode(cm->eng, &b, logits, err, sizeof err) < 0) {
            cli_error("bench: %s", err);
            return -1;
        }
        /* the next tokens: drawn, as llama-bench's are, so the time is
         * the decoding's alone (an argmax over a 262144-entry vocabulary
         * is a few percent of a small model's step, on one thread) */
        for (int s = 0; s < n_seq; s++) tok[s] = draw_token(rng, V);
    }
    return now_s() - t0;
}

/* One greedy generation from the prompt's tokens: tokens per second of
 * the generation (prefill excluded), or < 0 on error; the draft counts
 * are added to *drafted and *accepted. */
static double run_gen(cli_model *cm, const lamina_token *ids, size_t n_ids, int n_gen, int32_t spec_draft,
                      int32_t spec_ngram, int64_t *drafted, int64_t *accepted)
{
    char err[512];
    lamina_gen_params gp;
    memset(&gp, 0, sizeof gp);
    gp.temperature = 0;
    gp.repeat_penalty = 1;
    gp.max_tokens = n_gen;
    gp.spec_draft = spec_draft;
    gp.spec_ngram = spec_ngram;
    lamina_seq s = { .slot = 0 };
    lamina_gen_stats st;
    int rc = lamina_seq_generate(cm->eng, cm->tok, &s, ids, n_ids, &gp, NULL, NULL, &st, err, sizeof err);
    lamina_seq_free(&s);
    if (rc < 0) { cli_error("bench: %s", err); return -1; }
    *drafted += st.n_drafted;
    *accepted += st.n_accepted;
    return st.gen_s > 0 && st.n_gen > 0 ? st.n_gen / st.gen_s : 0;
}

static void print_row(const char *backend, const char *label, const char *model, const char *test, int R,
                      double *tps, int json, int64_t drafted, int64_t accepted, const roofline *rl)
{
    qsort(tps, (size_t)R, sizeof tps[0], cmp_d);
    double med = R % 2 ? tps[R / 2] : 0.5 * (tps[R / 2 - 1] + tps[R / 2]);
    double acc = drafted > 0 ? (double)accepted / (double)drafted : 0;
    if (json) {
        printf("{\"backend\":\"%s\",\"plan\":\"%s\",\"model\":\"%s\",\"test\":\"%s\",\"reps\":%d,"
               "\"tps_median\":%.3f,\"tps_min\":%.3f,\"tps_max\":%.3f",
               backend ? backend : "mixed", label, model, test, R, med, tps[0], tps[R - 1]);
        if (drafted >= 0)
            printf(",\"drafted\":%lld,\"accepted\":%lld,\"accept_rate\":%.4f",
                   (long long)drafted, (long long)accepted, acc);
        if (rl)
            printf(",\"read_gbps\":%.3f,\"read_threads\":%d,\"token_weight_bytes\":%llu,"
                   "\"token_kv_bytes\":%.1f,\"limit_tps\":%.3f,\"roofline_fraction\":%.4f",
                   rl->read_bps * 1e-9, rl->threads, (unsigned long long)rl->weight_bytes, rl->kv_bytes,
                   rl->read_bps / rl->token_bytes, med * rl->token_bytes / rl->read_bps);
        printf("}\n");
    } else {
        char extra[64] = "";
        if (drafted >= 0) snprintf(extra, sizeof extra, " accepted %lld/%lld (%.0f%%)",
                                   (long long)accepted, (long long)drafted, 100 * acc);
        printf("| %-8s | %-40.40s | %-6s | %4d | %9.2f | %9.2f .. %-9.2f |%s\n",
               backend ? backend : "mixed", label, test, R, med, tps[0], tps[R - 1], extra);
        if (rl)
            printf("  roofline: a token reads %.1f MB; memory streams %.1f GB/s on %d thread%s "
                   "(a %zu MiB read), so at most %.1f t/s; %s is %.0f%% of that\n",
                   rl->token_bytes * 1e-6, rl->read_bps * 1e-9, rl->threads, rl->threads == 1 ? "" : "s",
                   PROBE_BYTES >> 20, rl->read_bps / rl->token_bytes, test,
                   100 * med * rl->token_bytes / rl->read_bps);
    }
    fflush(stdout);
}

typedef struct bench_gen {
    const char *prompt;         /* NULL: no gtN test */
    int spec;                   /* 0: plain runs only */
    int spec_draft;             /* 0: [generate] speculative_draft */
} bench_gen;

static int bench_one(const cli_globals *g, const char *model, const char *backend,
                     int n_prompt, int n_gen, int n_par, int reps, int json, const bench_gen *bg)
{
    cli_model cm;
    int nb = n_prompt > 0 ? (n_prompt < 512 ? n_prompt : 512) : 1;
    cli_open_opts o = { .model = model, .backend = backend, .quiet = 1,
                        .n_ctx = (n_prompt > n_gen ? n_prompt : n_gen) + 16,
                        .n_batch = nb > n_par ? nb : n_par, .n_seq = n_par, .n_outputs = n_par };
    lamina_token *ids = NULL;
    size_t n_ids = 0;
    if (bg->prompt) {
        /* the prompt's tokens, the generated ones and a draft batch */
        o.n_ctx = 0;
        o.n_batch = 512;
        o.n_outputs = bg->spec_draft > 0 ? bg->spec_draft + 1 : -2;
    }
    if (cli_open(g, &o, &cm) < 0) return 1;
    if (bg->prompt) {
        char err[512];
        if (lamina_tokenizer_encode(cm.tok, bg->prompt, strlen(bg->prompt), LAMINA_TOKENIZE_ADD_SPECIAL,
                                    &ids, &n_ids, err, sizeof err) < 0) {
            cli_error("bench: --prompt: %s", err);
            cli_close(&cm);
            return 1;
        }
        const lamina_engine_params *ep = lamina_engine_params_get(cm.eng);
        if (n_ids == 0 || n_ids + (size_t)n_gen > (size_t)ep->n_ctx) {
            cli_error("bench: --prompt: %zu tokens and -n %d do not fit the context of %d", n_ids, n_gen, ep->n_ctx);
            free(ids);
            cli_close(&cm);
            return 1;
        }
    }
    int ret = 1;
    const int np = n_prompt > 0 ? n_prompt : 1;
    int32_t *tok = malloc((size_t)np * 4), *pos = malloc((size_t)np * 4), *seq = malloc((size_t)np * 4);
    int8_t *want = malloc((size_t)np);
    float *logits = malloc((size_t)n_par * (size_t)cm.model->hp.n_vocab * sizeof(float));
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

    if (bg->prompt && n_gen > 0) {
        /* plain and speculative runs alternate, each after a warm-up */
        double tps[2][64];
        int64_t drafted = 0, accepted = 0, dummy = 0;
        int R = reps < 64 ? reps : 64;
        int32_t draft = bg->spec_draft > 0 ? bg->spec_draft : cm.cfg.speculative_draft;
        for (int r = -1; r < R; r++) {
            for (int sp = 0; sp < (bg->spec ? 2 : 1); sp++) {
                double x = run_gen(&cm, ids, n_ids, n_gen, sp ? draft : 0, cm.cfg.speculative_ngram,
                                   r >= 0 && sp ? &drafted : &dummy, r >= 0 && sp ? &accepted : &dummy);
                if (x < 0) goto out;
                if (r >= 0) tps[sp][r] = x;
            }
        }
        char test[32];
        snprintf(test, sizeof test, "gt%d", n_gen);
        print_row(backend, label, cm.model->hp.name, test, R, tps[0], json, -1, 0, NULL);
        if (bg->spec) {
            snprintf(test, sizeof test, "gt%d-spec", n_gen);
            print_row(backend, label, cm.model->hp.name, test, R, tps[1], json, drafted, accepted, NULL);
        }
        ret = 0;
        goto out;
    }
    for (int kind = 0; kind < 3; kind++) {      /* pp, tg, tg with n_par sequences */
        int n = kind == 0 ? n_prompt : n_gen, ns = kind == 2 ? n_par : 1;
        if (n <= 0 || (kind == 2 && n_par < 2)) continue;
        double tps[64];
        int R = reps < 64 ? reps : 64;
        for (int r = -1; r < R; r++) {              /* r = -1: warm-up */
            double s = kind == 0 ? run_pp(&cm, n_prompt, tok, pos, seq, want, logits, &rng)
                                 : run_tg(&cm, n_gen, ns, logits, &rng);
            if (s < 0) goto out;
            if (r >= 0) tps[r] = (double)n * ns / s;
        }
        char test[32];
        if (kind == 2) snprintf(test, sizeof test, "tg%dx%d", n, ns);
        else snprintf(test, sizeof test, "%s%d", kind ? "tg" : "pp", n);
        roofline rl;
        int has_rl = kind == 1 && bench_roofline(&cm, n, &rl);
        print_row(backend, label, cm.model->hp.name, test, R, tps, json, -1, 0, has_rl ? &rl : NULL);
    }
    ret = 0;
out:
    free(ids);
    free(tok); free(pos); free(seq); free(want); free(logits); free(t);
    cli_close(&cm);
    return ret;
}

int cmd_bench(const cli_globals *g, int argc, char **argv)
{
    const char *model = NULL;
    const char *backends[LAMINA_MAX_BACKENDS];
    int n_backends = 0, n_prompt = 64, n_gen = 32, n_par = 1, reps = 5, json = 0;
    bench_gen bg = { NULL, 1, 0 };
    char *prompt_owned = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((!strcmp(a, "-p") || !strcmp(a, "-n") || !strcmp(a, "-r") || !strcmp(a, "-s") || !strcmp(a, "-b")) &&
            i + 1 < argc) {
            const char *v = argv[++i];
            if (a[1] == 'b') {
                if (n_backends < LAMINA_MAX_BACKENDS) backends[n_backends++] = v;
                continue;
            }
            char *end;
            long x = strtol(v, &end, 10);
            if (*end || x < 0 || x > 100000 || ((a[1] == 'r' || a[1] == 's') && (x < 1 || x > 64))) {
                cli_error("bench: bad value '%s' for %s", v, a);
                return free(prompt_owned), 2;
            }
            if (a[1] == 'p') n_prompt = (int)x;
            else if (a[1] == 'n') n_gen = (int)x;
            else if (a[1] == 's') n_par = (int)x;
            else reps = (int)x;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--no-spec")) {
            bg.spec = 0;
        } else if (!strcmp(a, "--spec-draft") && i + 1 < argc) {
            char *end;
            long x = strtol(argv[++i], &end, 10);
            if (*end || x < 1 || x > LAMINA_LOOKUP_DRAFT_MAX) {
                cli_error("bench: --spec-draft needs a number from 1 to %d, got '%s'", LAMINA_LOOKUP_DRAFT_MAX, argv[i]);
                return free(prompt_owned), 2;
            }
            bg.spec_draft = (int)x;
        } else if (!strcmp(a, "--prompt") && i + 1 < argc) {
            const char *v = argv[++i];
            free(prompt_owned);
            prompt_owned = NULL;
            if (v[0] == '@') {
                FILE *fp = fopen(v + 1, "rb");
                size_t n = 0, cap = 0;
                char chunk[4096];
                size_t r;
                if (!fp) { cli_error("bench: --prompt: cannot open %s", v + 1); return free(prompt_owned), 2; }
                while ((r = fread(chunk, 1, sizeof chunk, fp)) > 0) {
                    if (n + r + 1 > cap) {
                        cap = (n + r + 1) * 2;
                        char *t = realloc(prompt_owned, cap);
                        if (!t) { fclose(fp); cli_error("out of memory"); return free(prompt_owned), 1; }
                        prompt_owned = t;
                    }
                    memcpy(prompt_owned + n, chunk, r);
                    n += r;
                }
                fclose(fp);
                if (!prompt_owned) { cli_error("bench: --prompt: %s is empty", v + 1); return free(prompt_owned), 2; }
                prompt_owned[n] = 0;
                bg.prompt = prompt_owned;
            } else {
                bg.prompt = v;
            }
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            bench_usage(stdout);
            return free(prompt_owned), 0;
        } else if (a[0] == '-') {
            cli_error("bench: unknown option '%s'", a);
            bench_usage(stderr);
            return free(prompt_owned), 2;
        } else if (!model) {
            model = a;
        } else {
            cli_error("bench: unexpected argument '%s'", a);
            return free(prompt_owned), 2;
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
        if (lamina_runtime_open(&ro, &rt, err, sizeof err) < 0) { cli_error("%s", err); return free(prompt_owned), 1; }
        char names[LAMINA_MAX_BACKENDS][64];
        int n = 0;
        for (int i = 0; i < lamina_runtime_device_count(rt) && n < LAMINA_MAX_BACKENDS; i++) {
            const char *nm = lamina_runtime_device(rt, i)->plugin->name;
            int dup = 0;
            for (int j = 0; j < n; j++) dup |= !strcmp(names[j], nm);
            if (!dup) snprintf(names[n++], sizeof names[0], "%s", nm);
        }
        lamina_runtime_close(rt);
        for (int i = 0; i < n; i++) rc |= bench_one(g, model, names[i], n_prompt, n_gen, n_par, reps, json, &bg);
        if (n > 1) rc |= bench_one(g, model, NULL, n_prompt, n_gen, n_par, reps, json, &bg);
    } else {
        for (int i = 0; i < n_backends; i++)
            rc |= bench_one(g, model, backends[i], n_prompt, n_gen, n_par, reps, json, &bg);
    }
    free(prompt_owned);
    return rc ? 1 : 0;
}
