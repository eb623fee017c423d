/* jinja_tool.c - render a chat template with lamina's Jinja interpreter, for
 * tests/tok/jinja_corpus.py.
 *
 *   jinja_tool [--now YYYY-MM-DDTHH:MM:SS] TEMPLATE CONTEXT.json
 *   jinja_tool [--now ...] --batch TEMPLATE CONTEXT.json...
 *
 * The context is a JSON object whose keys are the template's variables;
 * --now fixes what strftime_now() sees.  Prints the rendered text on stdout
 * and exits 0; on a render error prints it on stderr and exits 1; when the
 * template does not parse or is refused, exits 2.  --batch parses the
 * template once and renders each context, printing for each a record
 * "STATUS LENGTH\n" and LENGTH bytes: the text (status 0) or the message
 * (1: render error, 2: parse error); it exits 0. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jinja.h"

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, n = 0;
    char *p = malloc(cap);
    while (p != NULL) {
        size_t r = fread(p + n, 1, cap - n, f);
        n += r;
        if (n < cap)
            break;
        char *q = realloc(p, cap * 2);
        if (q == NULL) {
            free(p);
            p = NULL;
            break;
        }
        p = q;
        cap *= 2;
    }
    fclose(f);
    *len = n;
    return p;
}

static void record(int status, const char *p, size_t n)
{
    printf("%d %zu\n", status, n);
    fwrite(p, 1, n, stdout);
}

static int run_batch(const char *tpath, char **ctxs, int n, const struct tm *now)
{
    size_t tl;
    char err[512];
    char *src = slurp(tpath, &tl);
    if (src == NULL) {
        fprintf(stderr, "jinja_tool: cannot read %s\n", tpath);
        return 2;
    }
    lamina_jinja *t = NULL;
    int prc = lamina_jinja_parse(src, tl, &t, err, sizeof err);
    free(src);
    for (int k = 0; k < n; k++) {
        if (prc < 0) {
            record(2, err, strlen(err));
            continue;
        }
        size_t cl;
        char *ctx = slurp(ctxs[k], &cl);
        if (ctx == NULL) {
            fprintf(stderr, "jinja_tool: cannot read %s\n", ctxs[k]);
            lamina_jinja_free(t);
            return 2;
        }
        char *out = NULL;
        size_t ol = 0;
        int rc = lamina_jinja_render(t, ctx, cl, now, NULL, &out, &ol, err, sizeof err);
        free(ctx);
        if (rc < 0)
            record(1, err, strlen(err));
        else
            record(0, out, ol);
        free(out);
    }
    lamina_jinja_free(t);
    return 0;
}

int main(int argc, char **argv)
{
    struct tm now, *pnow = NULL;
    int i = 1;
    if (i + 1 < argc && !strcmp(argv[i], "--now")) {
        memset(&now, 0, sizeof now);
        if (sscanf(argv[i + 1], "%d-%d-%dT%d:%d:%d", &now.tm_year, &now.tm_mon, &now.tm_mday,
                   &now.tm_hour, &now.tm_min, &now.tm_sec) != 6) {
            fprintf(stderr, "jinja_tool: bad --now %s\n", argv[i + 1]);
            return 2;
        }
        now.tm_year -= 1900;
        now.tm_mon -= 1;
        time_t t = timegm(&now);   /* fills in the weekday and the day of the year */
        gmtime_r(&t, &now);
        pnow = &now;
        i += 2;
    }
    int batch = 0;
    if (i < argc && !strcmp(argv[i], "--batch")) {
        batch = 1;
        i++;
    }
    if (batch ? argc - i < 1 : argc - i != 2) {
        fprintf(stderr, "usage: jinja_tool [--now YYYY-MM-DDTHH:MM:SS] [--batch] TEMPLATE "
                        "CONTEXT.json...\n");
        return 2;
    }
    if (batch)
        return run_batch(argv[i], argv + i + 1, argc - i - 1, pnow);
    size_t tl, cl;
    char *src = slurp(argv[i], &tl), *ctx = slurp(argv[i + 1], &cl);
    if (src == NULL || ctx == NULL) {
        fprintf(stderr, "jinja_tool: cannot read %s\n", src == NULL ? argv[i] : argv[i + 1]);
        free(src);
        free(ctx);
        return 2;
    }
    char err[512];
    lamina_jinja *t = NULL;
    int rc = lamina_jinja_parse(src, tl, &t, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "%s\n", err);
        free(src);
        free(ctx);
        return 2;
    }
    char *out = NULL;
    size_t ol = 0;
    rc = lamina_jinja_render(t, ctx, cl, pnow, NULL, &out, &ol, err, sizeof err);
    lamina_jinja_free(t);
    free(src);
    free(ctx);
    if (rc < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    fwrite(out, 1, ol, stdout);
    free(out);
    return 0;
}
