/* cmd_models.c - `lamina list` and `lamina show NAME`: the models a client
 * can name, read from the same places and by the same code as the
 * server's /api/tags and /api/show (server/pool.c), without a server
 * running.  list also names the models that cannot be used (a store
 * manifest that is corrupt or refused, a missing blob, an unreadable
 * GGUF) with the reason, and exits 0: a broken model is a finding, not a
 * failure of the command. */
#include "config.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "conf.h"
#include "server/server.h"

/* "291 MB", decimal units as Ollama prints them. */
static void human_size(json_int_t b, char *out, size_t size)
{
    static const char *unit[] = { "B", "KB", "MB", "GB", "TB" };
    double v = (double)b;
    int u = 0;
    while (v >= 1000 && u < 4) { v /= 1000; u++; }
    snprintf(out, size, u ? (v < 10 ? "%.1f %s" : "%.0f %s") : "%.0f %s", v, unit[u]);
}

/* "3 days ago" from an RFC 3339 time (UTC, as srv_time_rfc3339 writes it). */
static void ago(const char *when, char *out, size_t size)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (!when || !strptime(when, "%Y-%m-%dT%H:%M:%S", &tm)) { snprintf(out, size, "-"); return; }
    double d = difftime(time(NULL), timegm(&tm));
    static const struct { double s; const char *name; } steps[] = {
        { 365.25 * 86400, "year" }, { 30 * 86400, "month" }, { 7 * 86400, "week" },
        { 86400, "day" }, { 3600, "hour" }, { 60, "minute" },
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        if (d >= steps[i].s) {
            long n = (long)(d / steps[i].s);
            snprintf(out, size, "%ld %s%s ago", n, steps[i].name, n == 1 ? "" : "s");
            return;
        }
    snprintf(out, size, d < 0 ? "in the future" : "just now");
}

static int load_config(const cli_globals *g, lamina_config *cfg)
{
    char err[1024];
    if (lamina_config_resolve(cfg, g->config_path, err, sizeof err) < 0) {
        cli_error("%s", err);
        return 1;
    }
    return 0;
}

static int print_json(json_t *j)
{
    char *t = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (!t) { cli_error("out of memory"); return 1; }
    puts(t);
    free(t);
    return 0;
}

int cmd_list(const cli_globals *g, int argc, char **argv)
{
    int as_json = 0, digests = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) as_json = 1;
        else if (!strcmp(argv[i], "--digests")) digests = 1;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: lamina list [--json] [--digests]\n"
                   "The models a client can name: the catalogue, the model directories and the model stores\n"
                   "(lamina's and Ollama's), then those that cannot be used, with the reason.  --digests\n"
                   "hashes the loose .gguf files too, to show their IDs.\n");
            return 0;
        } else {
            cli_error("list: unknown argument '%s' (usage: lamina list [--json] [--digests])", argv[i]);
            return 2;
        }
    }
    lamina_config cfg;
    if (load_config(g, &cfg)) return 1;
    json_t *tags = srv_pool_tags(&cfg, digests);
    if (!tags) { cli_error("out of memory"); return 1; }
    int rc = 0;
    if (as_json) {
        rc = print_json(tags);
        json_decref(tags);
        return rc;
    }
    json_t *models = json_object_get(tags, "models"), *broken = json_object_get(tags, "broken");
    int wn = 4;
    size_t i;
    json_t *m;
    json_array_foreach(models, i, m) {
        int l = (int)strlen(json_string_value(json_object_get(m, "name")));
        if (l > wn) wn = l;
    }
    printf("%-*s  %-12s  %-8s  %s\n", wn, "NAME", "ID", "SIZE", "MODIFIED");
    json_array_foreach(models, i, m) {
        const char *dg = json_string_value(json_object_get(m, "digest"));
        char id[16], sz[32], when[48];
        snprintf(id, sizeof id, "%.12s", dg && !strncmp(dg, "sha256:", 7) ? dg + 7 : "-");
        human_size(json_integer_value(json_object_get(m, "size")), sz, sizeof sz);
        ago(json_string_value(json_object_get(m, "modified_at")), when, sizeof when);
        printf("%-*s  %-12s  %-8s  %s\n", wn, json_string_value(json_object_get(m, "name")), id, sz, when);
    }
    if (json_array_size(broken)) {
        printf("\nnot usable:\n");
        json_array_foreach(broken, i, m)
            printf("  %s: %s\n", json_string_value(json_object_get(m, "name")),
                   json_string_value(json_object_get(m, "error")));
    }
    json_decref(tags);
    return rc;
}

/* A text field's lines, indented, at most max lines (0: all). */
static void print_block(const char *title, const char *text, int max)
{
    if (!text || !*text) return;
    printf("  %s\n", title);
    int n = 0;
    const char *p = text;
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (max && n == max) { printf("    ...\n"); break; }
        if (len || n) printf("    %.*s\n", (int)len, p);
        if (len || n) n++;
        p += len + (e ? 1 : 0);
    }
    printf("\n");
}

static void model_row(const char *label, json_t *v)
{
    if (json_is_string(v)) printf("    %-20s%s\n", label, json_string_value(v));
    else if (json_is_integer(v)) printf("    %-20s%lld\n", label, (long long)json_integer_value(v));
}

int cmd_show(const cli_globals *g, int argc, char **argv)
{
    const char *name = NULL, *only = NULL;
    int as_json = 0, verbose = 0;
    static const char *fields[] = { "modelfile", "parameters", "template", "system", "license" };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int f = -1;
        for (int k = 0; k < 5; k++)
            if (!strncmp(a, "--", 2) && !strcmp(a + 2, fields[k])) f = k;
        if (f >= 0) only = fields[f];
        else if (!strcmp(a, "--json")) as_json = 1;
        else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) verbose = 1;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("usage: lamina show NAME [--json] [-v] [--modelfile|--parameters|--template|--system|--license]\n"
                   "What a model is (architecture, size, context, quantization, capabilities) and its default\n"
                   "parameters, system prompt and license, as /api/show gives them.  -v includes the metadata\n"
                   "arrays with --json.\n");
            return 0;
        } else if (a[0] == '-' || name) {
            cli_error("show: unexpected argument '%s' (usage: lamina show NAME [--json] [-v] [--FIELD])", a);
            return 2;
        } else {
            name = a;
        }
    }
    if (!name) { cli_error("usage: lamina show NAME [--json] [-v] [--FIELD]"); return 2; }
    lamina_config cfg;
    if (load_config(g, &cfg)) return 1;
    char err[1024];
    int http = 0;
    json_t *j = srv_show(&cfg, name, verbose, &http, err, sizeof err);
    if (!j) { cli_error("show: %s", err); return 1; }
    int rc = 0;
    if (as_json) {
        rc = print_json(j);
    } else if (only) {
        const char *t = json_string_value(json_object_get(j, only));
        if (t && *t) printf("%s%s", t, t[strlen(t) - 1] == '\n' ? "" : "\n");
    } else {
        json_t *info = json_object_get(j, "model_info"), *det = json_object_get(j, "details");
        const char *arch = json_string_value(json_object_get(info, "general.architecture"));
        char key[96];
        printf("  Model\n");
        model_row("architecture", json_object_get(info, "general.architecture"));
        model_row("parameters", json_object_get(det, "parameter_size"));
        snprintf(key, sizeof key, "%s.context_length", arch ? arch : "");
        model_row("context length", json_object_get(info, key));
        snprintf(key, sizeof key, "%s.embedding_length", arch ? arch : "");
        model_row("embedding length", json_object_get(info, key));
        model_row("quantization", json_object_get(det, "quantization_level"));
        printf("\n  Capabilities\n");
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(j, "capabilities"), i, c) printf("    %s\n", json_string_value(c));
        printf("\n");
        print_block("Parameters", json_string_value(json_object_get(j, "parameters")), 0);
        print_block("System", json_string_value(json_object_get(j, "system")), 0);
        print_block("License", json_string_value(json_object_get(j, "license")), 2);
    }
    json_decref(j);
    return rc;
}
