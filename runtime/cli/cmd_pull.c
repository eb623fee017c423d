/* cmd_pull.c - `lamina pull NAME`: a model from a registry into lamina's
 * own store (runtime/model/pull.h).  On a terminal each layer gets a
 * progress bar (size, rate, time left); otherwise plain lines: one when a
 * step or layer starts, one when a layer is complete, and one every 10
 * seconds in between. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "conf.h"
#include "ollama_store.h"
#include "pull.h"

typedef struct bar {
    int tty;
    char status[64];
    char digest[72];
    int done;                     /* the layer's completion was shown */
    double t0, last;              /* the layer's first report, the last line */
    uint64_t c0;                  /* bytes present at the first report */
} bar;

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void human(uint64_t n, char *out, size_t size)
{
    static const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    double v = (double)n;
    int i = 0;
    while (v >= 1024 && i < 4) { v /= 1024; i++; }
    if (i == 0) snprintf(out, size, "%llu B", (unsigned long long)n);
    else snprintf(out, size, "%.1f %s", v, u[i]);
}

static int on_progress(void *ctx, const lamina_pull_progress *p)
{
    bar *b = ctx;
    double t = mono();
    int fresh = strcmp(b->status, p->status) != 0;
    if (fresh) {
        if (b->tty && b->digest[0] && !b->done) fputc('\n', stdout);   /* end the previous bar */
        snprintf(b->status, sizeof b->status, "%s", p->status);
        snprintf(b->digest, sizeof b->digest, "%s", p->digest ? p->digest : "");
        b->done = 0;
        b->t0 = b->last = t;
        b->c0 = p->completed;
    }
    if (!p->digest) {
        printf("%s\n", p->status);
        fflush(stdout);
        return 0;
    }
    if (b->done) return 0;
    int complete = p->completed >= p->total;
    char have[32], total[32];
    human(p->completed, have, sizeof have);
    human(p->total, total, sizeof total);
    double dt = t - b->t0;
    double rate = dt > 0.2 ? (double)(p->completed - b->c0) / dt : 0;
    if (b->tty) {
        int pct = p->total ? (int)(100.0 * (double)p->completed / (double)p->total) : 100;
        char gauge[26];
        int fill = pct / 4;
        for (int i = 0; i < 25; i++) gauge[i] = i < fill ? '=' : ' ';
        gauge[25] = 0;
        char r[32] = "", eta[32] = "";
        if (rate > 0) {
            human((uint64_t)rate, r, sizeof r);
            strcat(r, "/s");
            if (!complete) {
                long s = (long)((double)(p->total - p->completed) / rate);
                snprintf(eta, sizeof eta, "%ld:%02ld:%02ld left", s / 3600, s / 60 % 60, s % 60);
            }
        }
        printf("\r%s: %3d%% [%s] %s / %s  %s  %s\033[K", p->status, pct, gauge, have, total, r, eta);
        if (complete) { fputc('\n', stdout); b->done = 1; }
        fflush(stdout);
        return 0;
    }
    if (fresh || complete || t - b->last >= 10) {
        b->last = t;
        if (complete) {
            b->done = 1;
            printf("%s: %s, done\n", p->status, total);
        } else {
            printf("%s: %s of %s\n", p->status, have, total);
        }
        fflush(stdout);
    }
    return 0;
}

int cmd_pull(const cli_globals *g, int argc, char **argv)
{
    const char *name = NULL;
    int insecure = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--insecure")) {
            insecure = 1;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: lamina pull [--insecure] NAME\n"
                   "Fetch the model NAME ([host[:port]/][namespace/]model[:tag]) from its registry into lamina's\n"
                   "store ([model] store, [model] registry; see lamina(1)).\n");
            return 0;
        } else if (argv[i][0] == '-') {
            cli_error("pull: unknown option '%s'", argv[i]);
            return 2;
        } else if (name) {
            cli_error("pull: one model at a time");
            return 2;
        } else {
            name = argv[i];
        }
    }
    if (!name) {
        cli_error("usage: lamina pull [--insecure] NAME");
        return 2;
    }
    char err[1024];
    lamina_config cfg;
    if (lamina_config_resolve(&cfg, g->config_path, err, sizeof err) < 0) {
        cli_error("%s", err);
        return 1;
    }
    char store[4096];
    if (lamina_ollama_own_store(&cfg, store) < 0) {
        cli_error("pull: no model store: set [model] store or HOME");
        return 1;
    }
    bar b;
    memset(&b, 0, sizeof b);
    b.tty = isatty(STDOUT_FILENO);
    lamina_pull_opts o = { .store = store, .registry = cfg.model_registry, .insecure = insecure,
                           .progress = on_progress, .ctx = &b };
    int rc = lamina_pull(name, &o, err, sizeof err);
    if (b.tty && b.digest[0] && !b.done) fputc('\n', stdout);
    fflush(stdout);
    if (rc < 0) {
        cli_error("pull: %s", err);
        return 1;
    }
    return 0;
}
