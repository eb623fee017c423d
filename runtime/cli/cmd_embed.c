/* cmd_embed.c - `lamina embed [MODEL] TEXT...`: embedding vectors for
 * scripts, the same vectors as `lamina serve`'s /api/embed (the final
 * hidden state after the output norm, pooled as the model's metadata says
 * or from the last token, L2-normalised).  The texts are read together
 * through the batcher, several sequence slots per decode step. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batcher.h"
#include "catalogue.h"
#include "cli/cli.h"

static void embed_usage(FILE *fp)
{
    fputs("usage: lamina embed [MODEL] [TEXT...] [options]\n"
          "  MODEL               catalogue name or .gguf path (default: [model] default)\n"
          "  TEXT                texts to embed; none: one text per line of stdin\n"
          "  --format F          jsonl (default): one line per text,\n"
          "                        {\"index\": I, \"tokens\": N, \"embedding\": [...]}\n"
          "                      json: one object {\"model\", \"embeddings\": [[...], ...]}\n"
          "                      tsv: one line per text, the values separated by tabs\n"
          "  --dimensions N      keep the first N values (normalised again)\n"
          "  --no-normalize      the pooled vector as it is (as /api/embeddings)\n"
          "  --no-truncate       fail on a text longer than the context (default: cut it)\n"
          "  --parallel N        texts read at once (sequence slots; default 4)\n"
          "  -c, --ctx N         context length\n"
          "  -q, --quiet         no plan on stderr\n", fp);
}

typedef struct emb_out {
    float *v;                   /* [n * n_embd] */
    int32_t n_embd;
    int   *done;
    int    failed;
    char   msg[300];
} emb_out;

typedef struct emb_ctx {
    emb_out *o;
    int i;
} emb_ctx;

static void on_done(void *ctx, const lamina_batcher_result *r)
{
    emb_ctx *c = ctx;
    c->o->done[c->i] = 1;
    if (r->embedding) {
        memcpy(c->o->v + (size_t)c->i * (size_t)c->o->n_embd, r->embedding, (size_t)c->o->n_embd * sizeof(float));
    } else if (!c->o->failed) {
        c->o->failed = 1;
        snprintf(c->o->msg, sizeof c->o->msg, "text %d: %s", c->i + 1, r->msg[0] ? r->msg : "no embedding");
    }
}

static void print_vec(const float *v, int32_t d, char sep)
{
    for (int32_t i = 0; i < d; i++) {
        if (i) putchar(sep);
        printf("%.9g", (double)v[i]);
    }
}

int cmd_embed(const cli_globals *g, int argc, char **argv)
{
    const char **pos = calloc((size_t)argc + 1, sizeof *pos);
    char **lines = NULL;
    int n_pos = 0, n_ctx = 0, quiet = 0, normalize = 1, truncate = 1, parallel = 4, dims = 0, rc = 1;
    const char *format = "jsonl";
    if (!pos) { cli_error("out of memory"); return 1; }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--format") || !strcmp(a, "--dimensions") || !strcmp(a, "--parallel") ||
            !strcmp(a, "-c") || !strcmp(a, "--ctx")) {
            if (i + 1 >= argc) { cli_error("embed: %s needs a value", a); free(pos); return 2; }
            const char *v = argv[++i];
            if (!strcmp(a, "--format")) format = v;
            else {
                char *end;
                long x = strtol(v, &end, 10);
                if (*end || x <= 0 || x > 1 << 24) { cli_error("embed: %s needs a positive number, got '%s'", a, v); free(pos); return 2; }
                if (!strcmp(a, "--dimensions")) dims = (int)x;
                else if (!strcmp(a, "--parallel")) parallel = (int)x;
                else n_ctx = (int)x;
            }
        } else if (!strcmp(a, "--no-normalize")) {
            normalize = 0;
        } else if (!strcmp(a, "--no-truncate")) {
            truncate = 0;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = 1;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            embed_usage(stdout);
            free(pos);
            return 0;
        } else if (a[0] == '-' && a[1] && a[1] != ' ') {
            cli_error("embed: unknown option '%s'", a);
            embed_usage(stderr);
            free(pos);
            return 2;
        } else {
            pos[n_pos++] = a;
        }
    }
    if (strcmp(format, "jsonl") && strcmp(format, "json") && strcmp(format, "tsv")) {
        cli_error("embed: --format must be jsonl, json or tsv, got '%s'", format);
        free(pos);
        return 2;
    }
    /* the first argument is the model when it names one */
    const char *model = NULL;
    int first = 0;
    if (n_pos > 0) {
        lamina_catalogue_entry ce;
        size_t l = strlen(pos[0]);
        if (strchr(pos[0], '/') || (l > 5 && !strcmp(pos[0] + l - 5, ".gguf")) ||
            lamina_catalogue_find(pos[0], &ce, NULL, 0) == 0) {
            model = pos[0];
            first = 1;
        }
    }
    int n = n_pos - first;
    const char **texts = pos + first;
    size_t n_lines = 0;
    if (n == 0) {                                   /* one text per line of stdin */
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        while ((len = getline(&line, &cap, stdin)) >= 0) {
            while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
            char **nl = realloc(lines, (n_lines + 1) * sizeof *nl);
            if (!nl || !(nl[n_lines] = strdup(line))) { free(nl ? nl : lines); lines = NULL; n_lines = 0; cli_error("out of memory"); free(line); free(pos); return 1; }
            lines = nl;
            n_lines++;
        }
        free(line);
        texts = (const char **)lines;
        n = (int)n_lines;
    }
    if (n == 0) { cli_error("embed: no text (give TEXT arguments or lines on stdin)"); free(pos); return 2; }

    cli_model cm;
    int slots = parallel < n ? parallel : n;
    cli_open_opts oo = { .model = model, .n_ctx = n_ctx, .n_seq = slots, .n_outputs = slots, .quiet = quiet };
    lamina_batcher *b = NULL;
    lamina_token **toks = calloc((size_t)n, sizeof *toks);
    size_t *ntok = calloc((size_t)n, sizeof *ntok);
    emb_ctx *ctxs = calloc((size_t)n, sizeof *ctxs);
    emb_out out = { 0 };
    out.done = calloc((size_t)n, sizeof *out.done);
    if (!toks || !ntok || !ctxs || !out.done) { cli_error("out of memory"); goto end_nomodel; }
    if (cli_open(g, &oo, &cm) < 0) goto end_nomodel;

    char err[1024] = "";
    int pool = lamina_model_embed_pooling(cm.model, cm.path, err, sizeof err);
    if (pool < 0) { cli_error("%s", err); goto end; }
    const lamina_engine_params *ep = lamina_engine_params_get(cm.eng);
    const int32_t E = cm.model->hp.n_embd, C = lamina_model_embed_ctx(cm.model, ep->n_ctx, ep->n_batch);
    out.n_embd = E;
    out.v = malloc((size_t)n * (size_t)E * sizeof(float));
    if (!out.v) { cli_error("out of memory"); goto end; }
    lamina_batcher_params bp = { .max_queue = n };
    if (lamina_batcher_create(cm.eng, cm.tok, &bp, &b, err, sizeof err) < 0) { cli_error("%s", err); goto end; }
    for (int i = 0; i < n; i++) {
        if (lamina_tokenizer_encode(cm.tok, texts[i], strlen(texts[i]),
                                    LAMINA_TOKENIZE_ADD_SPECIAL | LAMINA_TOKENIZE_PARSE_SPECIAL,
                                    &toks[i], &ntok[i], err, sizeof err) < 0) {
            cli_error("text %d: %s", i + 1, err);
            goto end;
        }
        if (ntok[i] == 0) { cli_error("text %d is empty", i + 1); goto end; }
        if (ntok[i] > (size_t)C) {
            if (!truncate) {
                cli_error("text %d has %zu tokens, more than the context length %d (-c raises it)", i + 1, ntok[i], C);
                goto end;
            }
            ntok[i] = (size_t)C;
        }
        lamina_batcher_request rq;
        memset(&rq, 0, sizeof rq);
        lamina_sampler_params_default(&rq.sampling);
        rq.prompt = toks[i];
        rq.n_prompt = ntok[i];
        rq.embed = pool;
        rq.done = on_done;
        ctxs[i] = (emb_ctx){ &out, i };
        rq.ctx = &ctxs[i];
        if (lamina_batcher_submit(b, &rq, NULL, err, sizeof err) < 0) { cli_error("text %d: %s", i + 1, err); goto end; }
    }
    for (;;) {
        int all = 1;
        for (int i = 0; i < n && all; i++) all = out.done[i];
        if (all) break;
        int s = lamina_batcher_step(b, err, sizeof err);
        if (s < 0) { cli_error("%s", err); goto end; }
    }
    if (out.failed) { cli_error("%s", out.msg); goto end; }
    int32_t d = dims > 0 && dims < E ? dims : E;
    if (!strcmp(format, "json")) printf("{\"model\":\"%s\",\"embeddings\":[", model ? model : cm.cfg.model_default);
    for (int i = 0; i < n; i++) {
        float *v = out.v + (size_t)i * (size_t)E;
        if (normalize) lamina_vec_normalise(v, E);
        if (d < E && normalize) lamina_vec_normalise(v, d);
        if (!strcmp(format, "jsonl")) {
            printf("{\"index\":%d,\"tokens\":%zu,\"embedding\":[", i, ntok[i]);
            print_vec(v, d, ',');
            printf("]}\n");
        } else if (!strcmp(format, "json")) {
            printf(i ? ",[" : "[");
            print_vec(v, d, ',');
            printf("]");
        } else {
            print_vec(v, d, '\t');
            printf("\n");
        }
    }
    if (!strcmp(format, "json")) printf("]}\n");
    rc = fflush(stdout) == 0 ? 0 : 1;
end:
    lamina_batcher_free(b);
    cli_close(&cm);
end_nomodel:
    for (int i = 0; toks && i < n; i++) free(toks[i]);
    free(toks);
    free(ntok);
    free(ctxs);
    free(out.done);
    free(out.v);
    for (size_t i = 0; i < n_lines; i++) free(lines[i]);
    free(lines);
    free(pos);
    return rc;
}
