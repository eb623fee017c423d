/* cmd_run.c - `lamina run [MODEL] [PROMPT]`: one answer, a prompt from
 * stdin, or an interactive chat on a terminal. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalogue.h"
#include "chat.h"
#include "cli/cli.h"
#include "generate.h"
#include "lookup.h"

static void run_usage(FILE *fp)
{
    fputs("usage: lamina run [MODEL] [PROMPT] [options]\n"
          "  MODEL               catalogue name or .gguf path (default: [model] default)\n"
          "  PROMPT              the question; omitted: read stdin, or chat on a terminal\n"
          "  -n, --max-tokens N  tokens to generate (default [generate] max_tokens)\n"
          "  --temp T            temperature, 0 = greedy\n"
          "  --top-k N  --top-p P  --min-p P  --repeat-penalty R\n"
          "  --seed S            random seed (default [generate] seed; -1 = random)\n"
          "  --stop TEXT         stop when TEXT appears (repeatable, up to 8)\n"
          "  --format F          structured output: json (any JSON value), @FILE (a JSON\n"
          "                      schema in FILE) or a schema given inline\n"
          "  --system TEXT       system prompt\n"
          "  --chat              apply the family's chat template even if the model\n"
          "                      carries none (default: only chat-tuned models, i.e. files\n"
          "                      with tokenizer.chat_template)\n"
          "  --raw               no chat template: the prompt is given to the model as is\n"
          "  --spec, --no-spec   speculative decoding from the text so far (drafts copied\n"
          "                      from earlier in the prompt or answer, verified in one\n"
          "                      batch; the same output, faster when text is copied);\n"
          "                      default [generate] speculative\n"
          "  --spec-draft N      most drafts verified per step (1-32)"
          "  -c, --ctx N         context length\n"
          "  -q, --quiet         no plan and no timings on stderr\n", fp);
}

static int emit_stdout(void *ctx, const char *text, size_t len)
{
    (void)ctx;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return 0;
}

/* Growable string for the assistant's answer in chat mode. */
typedef struct sbuf { char *s; size_t n, cap; } sbuf;

static int emit_both(void *ctx, const char *text, size_t len)
{
    sbuf *b = ctx;
    emit_stdout(NULL, text, len);
    if (b->n + len + 1 > b->cap) {
        size_t cap = (b->n + len + 1) * 2;
        char *s = realloc(b->s, cap);
        if (!s) return 1;
        b->s = s;
        b->cap = cap;
    }
    memcpy(b->s + b->n, text, len);
    b->n += len;
    b->s[b->n] = 0;
    return 0;
}

/* the chat's one-line reasons (a template not used, a fallback) */
static void chat_log(void *ctx, int level, const char *msg)
{
    (void)ctx;
    (void)level;
    fprintf(stderr, "lamina: %s\n", msg);
}

static char *read_all(FILE *fp)
{
    size_t n = 0, cap = 4096;
    char *s = malloc(cap);
    if (!s) return NULL;
    size_t r;
    while ((r = fread(s + n, 1, cap - n - 1, fp)) > 0) {
        n += r;
        if (cap - n - 1 == 0) {
            char *t = realloc(s, cap * 2);
            if (!t) { free(s); return NULL; }
            s = t;
            cap *= 2;
        }
    }
    s[n] = 0;
    return s;
}

static const char *stop_name(int r)
{
    switch (r) {
    case LAMINA_STOP_EOG: return "end of turn";
    case LAMINA_STOP_LENGTH: return "token limit";
    case LAMINA_STOP_STRING: return "stop string";
    case LAMINA_STOP_CONTEXT: return "context full";
    default: return "cancelled";
    }
}

static void print_stats(const lamina_gen_stats *st)
{
    double pp = st->prompt_s > 0 ? (st->n_prompt - st->n_cached) / st->prompt_s : 0;
    double tg = st->gen_s > 0 ? st->n_gen / st->gen_s : 0;
    char spec[128] = "";
    if (st->n_drafted > 0)
        snprintf(spec, sizeof spec, "; drafted %d accepted %d (%.0f%%) in %d steps", st->n_drafted, st->n_accepted,
                 100.0 * st->n_accepted / st->n_drafted, st->n_steps);
    fprintf(stderr, "[prompt %d tokens (%d cached) %.2f s, %.1f tok/s; generated %d tokens %.2f s, %.1f tok/s%s; %s]\n",
            st->n_prompt, st->n_cached, st->prompt_s, pp, st->n_gen, st->gen_s, tg, spec, stop_name(st->stop_reason));
}

/* Tokenize `text` (specials parsed when it came from a template) and
 * generate.  Returns 0 or 1. */
static int answer(cli_model *cm, lamina_seq *seq, const char *text, int templated,
                  const lamina_gen_params *gp, lamina_emit_fn emit, void *ctx, int quiet)
{
    char err[1024] = "";
    lamina_token *ids = NULL;
    size_t n = 0;
    unsigned flags = LAMINA_TOKENIZE_ADD_SPECIAL | (templated ? LAMINA_TOKENIZE_PARSE_SPECIAL : 0);
    if (lamina_tokenizer_encode(cm->tok, text, strlen(text), flags, &ids, &n, err, sizeof err) < 0) {
        cli_error("%s", err);
        return 1;
    }
    const lamina_engine_params *p = lamina_engine_params_get(cm->eng);
    if (n >= (size_t)p->n_ctx) {
        cli_error("the prompt is %zu tokens, more than the context length %d (use -c to raise it, up to the model's %d)",
                  n, p->n_ctx, cm->model->hp.n_ctx_train);
        free(ids);
        return 1;
    }
    lamina_gen_stats st;
    const uint32_t epoch = lamina_engine_epoch(cm->eng);
    int rc = lamina_seq_generate(cm->eng, cm->tok, seq, ids, n, gp, emit, ctx, &st, err, sizeof err);
    free(ids);
    if (lamina_engine_epoch(cm->eng) != epoch) {
        /* a device was lost on the way: say where the layers run now */
        char plan[4096];
        lamina_engine_describe_plan(cm->eng, plan, sizeof plan);
        fputc('\n', stderr);
        for (char *l = strtok(plan, "\n"); l; l = strtok(NULL, "\n"))
            fprintf(stderr, "lamina: now: %s\n", l);
    }
    if (rc < 0) { fputc('\n', stdout); cli_error("%s", err); return 1; }
    fputc('\n', stdout);
    fflush(stdout);
    if (!quiet) print_stats(&st);
    return 0;
}

int cmd_run(const cli_globals *g, int argc, char **argv)
{
    const char *pos[3];
    int n_pos = 0, raw = 0, chat = 0, quiet = 0, n_ctx = 0, spec = -1, spec_draft = 0;
    const char *system = NULL;
    const char *o_max = NULL, *o_temp = NULL, *o_seed = NULL, *o_topk = NULL, *o_topp = NULL,
               *o_minp = NULL, *o_rep = NULL, *o_format = NULL;
    const char *stops[LAMINA_MAX_STOP];
    int n_stops = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        if (!strcmp(a, "-n") || !strcmp(a, "--max-tokens")) slot = &o_max;
        else if (!strcmp(a, "--temp") || !strcmp(a, "--temperature")) slot = &o_temp;
        else if (!strcmp(a, "--seed")) slot = &o_seed;
        else if (!strcmp(a, "--top-k")) slot = &o_topk;
        else if (!strcmp(a, "--top-p")) slot = &o_topp;
        else if (!strcmp(a, "--min-p")) slot = &o_minp;
        else if (!strcmp(a, "--repeat-penalty")) slot = &o_rep;
        else if (!strcmp(a, "--system")) slot = &system;
        else if (!strcmp(a, "--format")) slot = &o_format;
        if (slot) {
            if (i + 1 >= argc) { cli_error("run: %s needs a value", a); return 2; }
            *slot = argv[++i];
        } else if (!strcmp(a, "--stop")) {
            if (i + 1 >= argc || n_stops == LAMINA_MAX_STOP) { cli_error("run: --stop needs a value (at most %d)", LAMINA_MAX_STOP); return 2; }
            stops[n_stops++] = argv[++i];
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx")) {
            if (i + 1 >= argc || (n_ctx = atoi(argv[++i])) <= 0) { cli_error("run: -c needs a positive number"); return 2; }
        } else if (!strcmp(a, "--spec-draft")) {
            char *e_ = NULL;
            long x = i + 1 < argc ? strtol(argv[++i], &e_, 10) : 0;
            if (!e_ || *e_ || x < 1 || x > LAMINA_LOOKUP_DRAFT_MAX) {
                cli_error("run: --spec-draft needs a number from 1 to %d", LAMINA_LOOKUP_DRAFT_MAX);
                return 2;
            }
            spec_draft = (int)x;
        } else if (!strcmp(a, "--spec") || !strcmp(a, "--no-spec")) {
            spec = a[2] == 's';
        } else if (!strcmp(a, "--raw")) {
            raw = 1;
        } else if (!strcmp(a, "--chat")) {
            chat = 1;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = 1;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            run_usage(stdout);
            return 0;
        } else if (a[0] == '-' && a[1]) {
            cli_error("run: unknown option '%s'", a);
            run_usage(stderr);
            return 2;
        } else if (n_pos < 3) {
            pos[n_pos++] = a;
        }
    }
    if (n_pos > 2) { cli_error("run: too many arguments (quote the prompt)"); return 2; }

    /* one argument: a model if it names one, else the prompt */
    const char *model = NULL, *prompt = NULL;
    if (n_pos == 2) { model = pos[0]; prompt = pos[1]; }
    else if (n_pos == 1) {
        lamina_catalogue_entry ce;
        size_t l = strlen(pos[0]);
        int is_model = strchr(pos[0], '/') || (l > 5 && !strcmp(pos[0] + l - 5, ".gguf")) ||
                       lamina_catalogue_find(pos[0], &ce, NULL, 0) == 0;
        if (is_model) model = pos[0]; else prompt = pos[0];
    }

    cli_model cm;
    cli_open_opts oo = { .model = model, .n_ctx = n_ctx, .quiet = quiet,
                         .n_outputs = spec == 0 ? 0 : spec_draft > 0 ? spec_draft + 1
                                    : spec == 1 ? -2 : -1 };
    if (cli_open(g, &oo, &cm) < 0) return 1;

    lamina_gen_params gp;
    lamina_gen_params_from_config(&gp, &cm.cfg);
#define NUM(opt, field, conv) do { if (opt) { char *e_; gp.field = conv(opt, &e_); \
        if (*e_ || e_ == opt) { cli_error("run: bad number '%s'", opt); cli_close(&cm); return 2; } } } while (0)
    NUM(o_temp, temperature, strtof);
    NUM(o_topp, top_p, strtof);
    NUM(o_minp, min_p, strtof);
    NUM(o_rep, repeat_penalty, strtof);
#undef NUM
    if (spec == 0) gp.spec_draft = 0;
    else if (spec_draft > 0) gp.spec_draft = spec_draft;
    else if (spec == 1 && gp.spec_draft == 0) gp.spec_draft = cm.cfg.speculative_draft;
    if (o_max) gp.max_tokens = atoi(o_max);
    if (o_topk) gp.top_k = atoi(o_topk);
    if (o_seed) gp.seed = (uint64_t)strtoll(o_seed, NULL, 10);
    for (int i = 0; i < n_stops; i++) gp.stop[gp.n_stop++] = stops[i];
    lamina_grammar *grammar = NULL;
    if (o_format) {
        char gerr[512];
        int grc;
        if (!strcmp(o_format, "json")) {
            grc = lamina_grammar_compile(NULL, &grammar, gerr, sizeof gerr);
        } else if (o_format[0] == '@') {
            FILE *fp = fopen(o_format + 1, "rb");
            char *text = fp ? read_all(fp) : NULL;
            if (fp) fclose(fp);
            if (!text) { cli_error("run: --format: cannot read %s", o_format + 1); cli_close(&cm); return 2; }
            grc = lamina_grammar_compile_text(text, strlen(text), &grammar, gerr, sizeof gerr);
            free(text);
        } else {
            grc = lamina_grammar_compile_text(o_format, strlen(o_format), &grammar, gerr, sizeof gerr);
        }
        if (grc < 0) { cli_error("run: --format schema: %s", gerr); cli_close(&cm); return 2; }
        gp.grammar = grammar;
    }

    /* chat-tuned models say so by carrying their template; base models
     * continue the text as given */
    lamina_chat *fmt = NULL;
    lamina_seq seq = { .slot = 0 };
    int ret = 0;
    char err[512];
    if (!raw && (chat || lamina_tokenizer_chat_template(cm.tok))) {
        lamina_logger lg = { chat_log, NULL };
        if (lamina_chat_open(cm.tok, &lg, &fmt, err, sizeof err) < 0) {
            cli_error("%s", err);
            ret = 1;
            goto out;
        }
        if (!lamina_chat_available(fmt)) {
            lamina_chat_close(fmt);
            fmt = NULL;
        }
    }

    int interactive = !prompt && isatty(STDIN_FILENO);
    if (!interactive) {
        char *owned = NULL;
        if (!prompt) {
            owned = read_all(stdin);
            if (!owned) { cli_error("reading stdin failed"); ret = 1; goto out; }
            prompt = owned;
        }
        if (fmt != NULL) {
            lamina_chat_msg msgs[2];
            size_t nm = 0;
            if (system) msgs[nm++] = (lamina_chat_msg){ "system", system };
            msgs[nm++] = (lamina_chat_msg){ "user", prompt };
            char *text; size_t tl;
            if (lamina_chat_apply(fmt, msgs, nm, 1, &text, &tl, err, sizeof err) < 0) {
                cli_error("%s", err);
                ret = 1;
            } else {
                ret = answer(&cm, &seq, text, 1, &gp, emit_stdout, NULL, quiet);
                free(text);
            }
        } else {
            ret = answer(&cm, &seq, prompt, 0, &gp, emit_stdout, NULL, quiet);
        }
        free(owned);
        goto out;
    }

    /* interactive chat: the whole conversation is rendered each turn; the
     * prefix already in the cache is reused */
    {
        lamina_chat_msg *msgs = NULL;
        size_t nm = 0, cap = 0;
        char *line = NULL;
        size_t lcap = 0;
        fprintf(stderr, "chat with %s (%s template); end with Ctrl-D\n",
                cm.model->hp.name[0] ? cm.model->hp.name : cm.path,
                fmt ? lamina_chat_describe(fmt) : "no");
        if (system) {
            msgs = malloc(sizeof *msgs * 8);
            cap = 8;
            msgs[nm++] = (lamina_chat_msg){ "system", strdup(system) };
        }
        for (;;) {
            fputs("> ", stderr);
            ssize_t r = getline(&line, &lcap, stdin);
            if (r < 0) break;
            while (r > 0 && (line[r - 1] == '\n' || line[r - 1] == '\r')) line[--r] = 0;
            if (r == 0) continue;
            if (nm + 2 > cap) {
                cap = cap ? cap * 2 : 8;
                lamina_chat_msg *v = realloc(msgs, cap * sizeof *v);
                if (!v) break;
                msgs = v;
            }
            msgs[nm++] = (lamina_chat_msg){ "user", strdup(line) };
            char *text; size_t tl;
            if (fmt == NULL) {
                text = strdup(line);
            } else if (lamina_chat_apply(fmt, msgs, nm, 1, &text, &tl, err, sizeof err) < 0) {
                cli_error("%s", err);
                break;
            }
            sbuf reply = {0};
            int rc = answer(&cm, &seq, text, fmt != NULL, &gp, emit_both, &reply, quiet);
            free(text);
            msgs[nm++] = (lamina_chat_msg){ "assistant", reply.s ? reply.s : strdup("") };
            if (rc) { ret = 1; break; }
        }
        for (size_t i = 0; i < nm; i++) free((char *)msgs[i].content);
        free(msgs);
        free(line);
        fputc('\n', stderr);
    }
out:
    lamina_chat_close(fmt);
    lamina_seq_free(&seq);
    cli_close(&cm);
    lamina_grammar_unref(grammar);
    return ret;
}
