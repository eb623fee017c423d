/* chat.c - chat prompts: a model's own template through the Jinja
 * interpreter, or a built-in format (see chat.h for what each renders). */
#include "config.h"

#include "chat.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja.h"
#include "lamina/plugin.h"
#include "log.h"
#include "strbuf.h"

const char *lamina_chat_format_name(enum lamina_chat_format f)
{
    switch (f) {
    case LAMINA_CHAT_GEMMA: return "gemma";
    case LAMINA_CHAT_LLAMA3: return "llama3";
    case LAMINA_CHAT_CHATML: return "chatml";
    case LAMINA_CHAT_MISTRAL: return "mistral";
    case LAMINA_CHAT_PHI3: return "phi3";
    default: return "unknown";
    }
}

enum lamina_chat_format lamina_chat_format_from_name(const char *name)
{
    if (name == NULL)
        return LAMINA_CHAT_UNKNOWN;
    for (int f = LAMINA_CHAT_GEMMA; f <= LAMINA_CHAT_PHI3; f++)
        if (!strcmp(name, lamina_chat_format_name((enum lamina_chat_format)f)))
            return (enum lamina_chat_format)f;
    return LAMINA_CHAT_UNKNOWN;
}

enum lamina_chat_format lamina_chat_format_detect(const char *template_text, const char *arch)
{
    /* Step 1: markers in the Jinja template. */
    if (template_text != NULL) {
        if (strstr(template_text, "<start_of_turn>"))
            return LAMINA_CHAT_GEMMA;
        if (strstr(template_text, "<|start_header_id|>"))
            return LAMINA_CHAT_LLAMA3;
        if (strstr(template_text, "<|im_start|>"))
            return LAMINA_CHAT_CHATML;
        if (strstr(template_text, "<|user|>") && strstr(template_text, "<|end|>"))
            return LAMINA_CHAT_PHI3;
        if (strstr(template_text, "[INST]"))
            return LAMINA_CHAT_MISTRAL;
    }
    /* Step 2: the architecture. */
    if (arch != NULL) {
        if (!strncmp(arch, "gemma", 5))
            return LAMINA_CHAT_GEMMA;
        if (!strcmp(arch, "llama3"))
            return LAMINA_CHAT_LLAMA3;
        if (!strncmp(arch, "qwen2", 5) || !strncmp(arch, "qwen3", 5))
            return LAMINA_CHAT_CHATML;
        if (!strcmp(arch, "phi3"))
            return LAMINA_CHAT_PHI3;
    }
    return LAMINA_CHAT_UNKNOWN;
}

enum lamina_chat_format lamina_chat_format_for(const lamina_tokenizer *t)
{
    enum lamina_chat_format f =
        lamina_chat_format_detect(lamina_tokenizer_chat_template(t), lamina_tokenizer_arch(t));
    if (f != LAMINA_CHAT_UNKNOWN)
        return f;
    /* Step 3: the vocabulary's own turn markers. */
    static const struct {
        const char *marker;
        enum lamina_chat_format f;
    } marks[] = {
        {"<start_of_turn>", LAMINA_CHAT_GEMMA},
        {"<|start_header_id|>", LAMINA_CHAT_LLAMA3},
        {"<|im_start|>", LAMINA_CHAT_CHATML},
        {"[INST]", LAMINA_CHAT_MISTRAL},
        {"<|user|>", LAMINA_CHAT_PHI3},
    };
    for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++)
        if (lamina_tokenizer_find(t, marks[i].marker, strlen(marks[i].marker)) != LAMINA_TOKEN_NONE)
            return marks[i].f;
    return LAMINA_CHAT_UNKNOWN;
}

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* content with leading and trailing whitespace removed */
static void sb_trimmed(lamina_strbuf *b, const char *s)
{
    size_t n = strlen(s), i = 0;
    while (i < n && is_ws(s[i]))
        i++;
    while (n > i && is_ws(s[n - 1]))
        n--;
    lamina_strbuf_add(b, s + i, n - i);
}

static void render_gemma(lamina_strbuf *b, const lamina_chat_msg *m, size_t n, int gen)
{
    /* Step 1: a leading system message becomes a prefix of the first turn. */
    const char *prefix = NULL;
    size_t first = 0;
    if (n > 0 && !strcmp(m[0].role, "system")) {
        prefix = m[0].content;
        first = 1;
    }
    /* Step 2: the turns; the assistant is called "model". */
    for (size_t i = first; i < n; i++) {
        const char *role = !strcmp(m[i].role, "assistant") ? "model" : m[i].role;
        lamina_strbuf_str(b, "<start_of_turn>");
        lamina_strbuf_str(b, role);
        lamina_strbuf_str(b, "\n");
        if (i == first && prefix != NULL) {
            lamina_strbuf_str(b, prefix);
            lamina_strbuf_str(b, "\n\n");
        }
        sb_trimmed(b, m[i].content);
        lamina_strbuf_str(b, "<end_of_turn>\n");
    }
    if (gen)
        lamina_strbuf_str(b, "<start_of_turn>model\n");
}

static void render_llama3(lamina_strbuf *b, const lamina_chat_msg *m, size_t n, int gen)
{
    for (size_t i = 0; i < n; i++) {
        lamina_strbuf_str(b, "<|start_header_id|>");
        lamina_strbuf_str(b, m[i].role);
        lamina_strbuf_str(b, "<|end_header_id|>\n\n");
        sb_trimmed(b, m[i].content);
        lamina_strbuf_str(b, "<|eot_id|>");
    }
    if (gen)
        lamina_strbuf_str(b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

static void render_chatml(lamina_strbuf *b, const lamina_chat_msg *m, size_t n, int gen)
{
    for (size_t i = 0; i < n; i++) {
        lamina_strbuf_str(b, "<|im_start|>");
        lamina_strbuf_str(b, m[i].role);
        lamina_strbuf_str(b, "\n");
        lamina_strbuf_str(b, m[i].content);
        lamina_strbuf_str(b, "<|im_end|>\n");
    }
    if (gen)
        lamina_strbuf_str(b, "<|im_start|>assistant\n");
}

/* After an optional leading system message: user, assistant, user, ...
 * (formats that have no system turn put the system text into the first
 * user message). */
static int check_alternating(const lamina_chat_msg *m, size_t n, const char *fmt, char *err,
                             size_t err_size)
{
    size_t first = (n > 0 && !strcmp(m[0].role, "system")) ? 1 : 0;
    for (size_t i = first; i < n; i++) {
        int is_user = !strcmp(m[i].role, "user");
        int want_user = (i - first) % 2 == 0;
        if (is_user != want_user || (!want_user && strcmp(m[i].role, "assistant") != 0))
            return lamina_set_err(err, err_size, LAMINA_EINVAL,
                        "chat: %s needs roles alternating user/assistant; message %zu is '%s'",
                        fmt, i, m[i].role);
    }
    return 0;
}

static void render_mistral(lamina_strbuf *b, const lamina_chat_msg *m, size_t n)
{
    const char *prefix = NULL;
    size_t first = 0;
    if (n > 0 && !strcmp(m[0].role, "system")) {
        prefix = m[0].content;
        first = 1;
    }
    for (size_t i = first; i < n; i++) {
        if (!strcmp(m[i].role, "user")) {
            lamina_strbuf_str(b, "[INST] ");
            if (i == first && prefix != NULL) {
                lamina_strbuf_str(b, prefix);
                lamina_strbuf_str(b, "\n\n");
            }
            lamina_strbuf_str(b, m[i].content);
            lamina_strbuf_str(b, " [/INST]");
        } else {
            lamina_strbuf_str(b, m[i].content);
            lamina_strbuf_str(b, "</s>");
        }
    }
}

static void render_phi3(lamina_strbuf *b, const lamina_chat_msg *m, size_t n, int gen)
{
    for (size_t i = 0; i < n; i++) {
        const char *r = m[i].role;
        if ((!strcmp(r, "system") && m[i].content[0]) || !strcmp(r, "user") ||
            !strcmp(r, "assistant")) {
            lamina_strbuf_str(b, "<|");
            lamina_strbuf_str(b, r);
            lamina_strbuf_str(b, "|>\n");
            lamina_strbuf_str(b, m[i].content);
            lamina_strbuf_str(b, "<|end|>\n");
        }
    }
    if (gen)
        lamina_strbuf_str(b, "<|assistant|>\n");
}

int lamina_chat_render(enum lamina_chat_format f, const lamina_chat_msg *msgs, size_t n,
                       int add_generation_prompt, char **out, size_t *out_len,
                       char *err, size_t err_size)
{
    lamina_strbuf b = {0};

    if (out == NULL || (msgs == NULL && n > 0))
        return lamina_set_err(err, err_size, LAMINA_EINVAL, "chat: NULL argument");
    *out = NULL;
    if (f < LAMINA_CHAT_GEMMA || f > LAMINA_CHAT_PHI3)
        return lamina_set_err(err, err_size, LAMINA_EINVAL, "chat: unknown chat format %d", (int)f);
    /* Step 1: validate the messages. */
    for (size_t i = 0; i < n; i++) {
        if (msgs[i].role == NULL || msgs[i].role[0] == 0 || msgs[i].content == NULL)
            return lamina_set_err(err, err_size, LAMINA_EINVAL, "chat: message %zu has no role or content", i);
    }
    if ((f == LAMINA_CHAT_GEMMA || f == LAMINA_CHAT_MISTRAL) &&
        check_alternating(msgs, n, lamina_chat_format_name(f), err, err_size) < 0)
        return LAMINA_EINVAL;
    /* Step 2: render. */
    lamina_strbuf_add(&b, "", 0);
    switch (f) {
    case LAMINA_CHAT_GEMMA: render_gemma(&b, msgs, n, add_generation_prompt); break;
    case LAMINA_CHAT_LLAMA3: render_llama3(&b, msgs, n, add_generation_prompt); break;
    case LAMINA_CHAT_MISTRAL: render_mistral(&b, msgs, n); break;
    case LAMINA_CHAT_PHI3: render_phi3(&b, msgs, n, add_generation_prompt); break;
    default: render_chatml(&b, msgs, n, add_generation_prompt); break;
    }
    if (b.over) {
        free(b.p);
        return lamina_set_err(err, err_size, LAMINA_ENOMEM, "chat: out of memory");
    }
    *out = b.p;
    if (out_len)
        *out_len = b.n;
    return 0;
}

/* ---- a model's chat --------------------------------------------------------- */

struct lamina_chat {
    lamina_jinja *tmpl;     /* NULL: no template, or refused */
    char *bos, *eos;
    int cut_bos;
    enum lamina_chat_format fallback;
    enum lamina_tool_format tools;   /* how the template writes tool calls */
    int thinks;                      /* the template thinks in <think> blocks */
    lamina_logger lg;
};

static char *dup_n(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p != NULL) {
        if (n)
            memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

int lamina_chat_open_with(const char *template_text, const char *bos, const char *eos,
                          int cut_bos, enum lamina_chat_format fallback,
                          const lamina_logger *lg, lamina_chat **out, char *err, size_t err_size)
{
    if (out == NULL)
        return lamina_set_err(err, err_size, LAMINA_EINVAL, "chat: NULL argument");
    *out = NULL;
    lamina_chat *c = calloc(1, sizeof *c);
    if (c == NULL)
        return lamina_set_err(err, err_size, LAMINA_ENOMEM, "chat: out of memory");
    c->bos = dup_n(bos ? bos : "", bos ? strlen(bos) : 0);
    c->eos = dup_n(eos ? eos : "", eos ? strlen(eos) : 0);
    if (c->bos == NULL || c->eos == NULL) {
        lamina_chat_close(c);
        return lamina_set_err(err, err_size, LAMINA_ENOMEM, "chat: out of memory");
    }
    c->cut_bos = cut_bos;
    c->fallback = fallback;
    if (lg != NULL)
        c->lg = *lg;
    if (template_text != NULL) {
        char why[512];
        int rc = lamina_jinja_parse(template_text, strlen(template_text), &c->tmpl, why,
                                    sizeof why);
        if (rc == LAMINA_ENOMEM) {
            lamina_chat_close(c);
            return lamina_set_err(err, err_size, LAMINA_ENOMEM, "chat: out of memory");
        }
        if (rc == 0) {
            c->tools = lamina_tool_format_detect(template_text);
            c->thinks = lamina_template_thinks(template_text);
        }
        if (rc < 0) {
            if (fallback != LAMINA_CHAT_UNKNOWN)
                lamina_log(&c->lg, LAMINA_LOG_WARN,
                           "chat template not used (%s); using the built-in %s format", why,
                           lamina_chat_format_name(fallback));
            else
                lamina_log(&c->lg, LAMINA_LOG_WARN,
                           "chat template not used (%s) and no built-in format suits the model",
                           why);
        }
    }
    *out = c;
    return 0;
}

int lamina_chat_open(const lamina_tokenizer *t, const lamina_logger *lg, lamina_chat **out,
                     char *err, size_t err_size)
{
    if (t == NULL || out == NULL)
        return lamina_set_err(err, err_size, LAMINA_EINVAL, "chat: NULL argument");
    char *bos = NULL, *eos = NULL;
    lamina_token ids[2] = {lamina_tokenizer_bos(t), lamina_tokenizer_eos(t)};
    char **texts[2] = {&bos, &eos};
    for (int i = 0; i < 2; i++) {
        size_t len = 0;
        const char *s = ids[i] != LAMINA_TOKEN_NONE ? lamina_tokenizer_token_text(t, ids[i], &len)
                                                    : NULL;
        *texts[i] = dup_n(s ? s : "", s ? len : 0);
    }
    int rc;
    if (bos == NULL || eos == NULL)
        rc = lamina_set_err(err, err_size, LAMINA_ENOMEM, "chat: out of memory");
    else
        rc = lamina_chat_open_with(lamina_tokenizer_chat_template(t), bos, eos,
                                   lamina_tokenizer_add_bos(t), lamina_chat_format_for(t), lg, out,
                                   err, err_size);
    free(bos);
    free(eos);
    return rc;
}

void lamina_chat_close(lamina_chat *c)
{
    if (c == NULL)
        return;
    lamina_jinja_free(c->tmpl);
    free(c->bos);
    free(c->eos);
    free(c);
}

int lamina_chat_available(const lamina_chat *c)
{
    return c != NULL && (c->tmpl != NULL || c->fallback != LAMINA_CHAT_UNKNOWN);
}

int lamina_chat_uses_template(const lamina_chat *c)
{
    return c != NULL && c->tmpl != NULL;
}

enum lamina_chat_format lamina_chat_fallback(const lamina_chat *c)
{
    return c ? c->fallback : LAMINA_CHAT_UNKNOWN;
}

const char *lamina_chat_describe(const lamina_chat *c)
{
    if (c != NULL && c->tmpl != NULL)
        return "model's own";
    return lamina_chat_format_name(lamina_chat_fallback(c));
}


enum lamina_tool_format lamina_chat_tool_format(const lamina_chat *c)
{
    return c != NULL && c->tmpl != NULL ? c->tools : LAMINA_TOOLS_GENERIC;
}

int lamina_chat_thinks(const lamina_chat *c)
{
    return c != NULL && c->tmpl != NULL && c->thinks;
}

static const char *jstr(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The name of the tool whose call had this id, among messages [0, upto). */
static const char *call_name(json_t *msgs, size_t upto, const char *id)
{
    for (size_t i = upto; id != NULL && i-- > 0;) {
        json_t *tc = json_object_get(json_array_get(msgs, i), "tool_calls");
        for (size_t k = 0; k < json_array_size(tc); k++) {
            json_t *call = json_array_get(tc, k);
            const char *cid = jstr(call, "id");
            if (cid != NULL && !strcmp(cid, id))
                return jstr(json_object_get(call, "function"), "name");
        }
    }
    return NULL;
}

/* Messages for a template (or format) that takes no tools: calls written
 * as the GENERIC reply JSON, results as user messages, tools_system in the
 * system message.  New reference, NULL when out of memory. */
static json_t *generic_messages(json_t *msgs, const char *tools_system)
{
    json_t *out = json_array();
    int prev_tool = 0;   /* the last message out came from a tool result */
    for (size_t i = 0; out != NULL && i < json_array_size(msgs); i++) {
        json_t *m = json_array_get(msgs, i);
        const char *role = jstr(m, "role"), *content = jstr(m, "content");
        json_t *tc = json_object_get(m, "tool_calls");
        json_t *n = json_deep_copy(m);
        char *extra = NULL;
        int from_tool = 0;
        if (!strcmp(role, "assistant") && json_array_size(tc) > 0) {
            json_t *calls = json_array();
            for (size_t k = 0; k < json_array_size(tc); k++) {
                json_t *f = json_object_get(json_array_get(tc, k), "function");
                json_array_append_new(calls, json_pack("{s:s?, s:O?}", "name", jstr(f, "name"), "arguments",
                                                       json_object_get(f, "arguments")));
            }
            json_t *o = json_pack("{s:o}", "tool_calls", calls);
            extra = json_dumps(o, JSON_COMPACT);
            json_decref(o);
            json_object_del(n, "tool_calls");
        } else if (!strcmp(role, "tool")) {
            const char *name = jstr(m, "name");
            if (name == NULL)
                name = call_name(msgs, i, jstr(m, "tool_call_id"));
            json_t *o = json_pack("{s:{s:s?, s:s}}", "tool_response", "name", name, "content",
                                  content ? content : "");
            extra = json_dumps(o, JSON_COMPACT);
            json_decref(o);
            json_object_set_new(n, "role", json_string("user"));
            content = NULL;
            from_tool = 1;
        }
        if (extra != NULL) {
            size_t cl = content ? strlen(content) : 0, el = strlen(extra);
            char *t = malloc(cl + el + 2);
            if (t != NULL) {
                if (cl)
                    memcpy(t, content, cl), t[cl++] = '\n';
                memcpy(t + cl, extra, el + 1);
                json_object_set_new(n, "content", json_string(t));
            }
            free(t);
            free(extra);
        }
        /* a tool result after a user message (or another result) joins it */
        json_t *last = json_array_size(out) ? json_array_get(out, json_array_size(out) - 1) : NULL;
        if (last != NULL && (from_tool || prev_tool) && !strcmp(jstr(n, "role"), "user") &&
            !strcmp(jstr(last, "role"), "user")) {
            const char *a = jstr(last, "content"), *b = jstr(n, "content");
            size_t al = a ? strlen(a) : 0, bl = b ? strlen(b) : 0;
            char *t = malloc(al + bl + 2);
            if (t != NULL) {
                memcpy(t, a ? a : "", al);
                t[al] = '\n';
                memcpy(t + al + 1, b ? b : "", bl + 1);
                json_object_set_new(last, "content", json_string(t));
            }
            free(t);
            json_decref(n);
        } else {
            json_array_append_new(out, n);
        }
        prev_tool = from_tool || (prev_tool && !strcmp(role, "tool"));
    }
    if (out != NULL && tools_system != NULL && *tools_system) {
        json_t *first = json_array_get(out, 0);
        if (first != NULL && !strcmp(jstr(first, "role"), "system")) {
            const char *a = jstr(first, "content");
            size_t al = a ? strlen(a) : 0, bl = strlen(tools_system);
            char *t = malloc(al + bl + 3);
            if (t != NULL) {
                memcpy(t, a ? a : "", al);
                memcpy(t + al, al ? "\n\n" : "", al ? 2 : 0);
                memcpy(t + al + (al ? 2 : 0), tools_system, bl + 1);
                json_object_set_new(first, "content", json_string(t));
            }
            free(t);
        } else {
            json_array_insert_new(out, 0, json_pack("{s:s, s:s}", "role", "system", "content", tools_system));
        }
    }
    return out;
}

/* Render with a built-in format: role and content only. */
static int render_builtin(enum lamina_chat_format f, json_t *msgs, int gen, char **out, size_t *out_len,
                          char *err, size_t err_size)
{
    size_t n = json_array_size(msgs);
    lamina_chat_msg *m = calloc(n + 1, sizeof *m);
    if (m == NULL)
        return lamina_set_err(err, err_size, LAMINA_ENOMEM, "chat: out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(msgs, i);
        m[i].role = jstr(e, "role");
        m[i].content = jstr(e, "content");
        if (m[i].content == NULL)
            m[i].content = "";
    }
    int rc = lamina_chat_render(f, m, n, gen, out, out_len, err, err_size);
    free(m);
    return rc;
}

int lamina_chat_apply_json(const lamina_chat *c, json_t *messages, const lamina_chat_opts *o,
                           char **out, size_t *out_len, char *err, size_t err_size)
{
    static const lamina_chat_opts none = { .add_generation_prompt = 1, .think = -1 };
    if (o == NULL)
        o = &none;
    if (out == NULL || !json_is_array(messages))
        return lamina_set_err(err, err_size, LAMINA_EINVAL, "chat: NULL argument");
    *out = NULL;
    if (!lamina_chat_available(c))
        return lamina_set_err(err, err_size, LAMINA_EINVAL,
                              "chat: the model has no chat template lamina can use");
    /* Step 1: validate the messages. */
    for (size_t i = 0; i < json_array_size(messages); i++) {
        json_t *m = json_array_get(messages, i), *ct = json_object_get(m, "content");
        const char *role = jstr(m, "role");
        if (role == NULL || !*role || (ct != NULL && !json_is_string(ct) && !json_is_null(ct)))
            return lamina_set_err(err, err_size, LAMINA_EINVAL,
                                  "chat: message %zu has no role or its content is not a string", i);
    }
    /* Step 2: a template that takes tools sees them; anything else gets
     * calls and results as text. */
    int native = lamina_chat_tool_format(c) != LAMINA_TOOLS_GENERIC;
    json_t *msgs = native ? json_deep_copy(messages) : generic_messages(messages, o->tools_system);
    json_t *ctx = msgs ? json_object() : NULL;
    if (ctx == NULL) {
        json_decref(msgs);
        return lamina_set_err(err, err_size, LAMINA_ENOMEM, "chat: out of memory");
    }
    /* null contents are "" for the templates that concatenate them or
     * search them (Qwen 3 looks for </think> in a call's content) */
    for (size_t i = 0; i < json_array_size(msgs); i++) {
        json_t *m = json_array_get(msgs, i);
        if (!json_is_string(json_object_get(m, "content")))
            json_object_set_new(m, "content", json_string(""));
    }
    if (c->tmpl == NULL) {
        int rc = render_builtin(c->fallback, msgs, o->add_generation_prompt, out, out_len, err, err_size);
        json_decref(msgs);
        json_decref(ctx);
        return rc;
    }
    if (o->kwargs != NULL && json_is_object(o->kwargs))
        json_object_update(ctx, o->kwargs);
    json_object_set(ctx, "messages", msgs);
    json_object_set_new(ctx, "add_generation_prompt", json_boolean(o->add_generation_prompt));
    json_object_set(ctx, "tools", native && json_array_size(o->tools) ? o->tools : json_null());
    json_object_set_new(ctx, "bos_token", json_string(c->bos));
    json_object_set_new(ctx, "eos_token", json_string(c->eos));
    if (o->think >= 0)
        json_object_set_new(ctx, "enable_thinking", json_boolean(o->think));
    char *cj = json_dumps(ctx, JSON_COMPACT);
    json_decref(ctx);
    if (cj == NULL) {
        json_decref(msgs);
        return lamina_set_err(err, err_size, LAMINA_ENOMEM, "chat: out of memory");
    }
    /* Step 3: render with the template. */
    char why[512] = "";
    char *text = NULL;
    size_t tl = 0;
    int rc = lamina_jinja_render(c->tmpl, cj, strlen(cj), NULL, NULL, &text, &tl, why, sizeof why);
    free(cj);
    if (rc == LAMINA_ENOMEM) {
        json_decref(msgs);
        return lamina_set_err(err, err_size, LAMINA_ENOMEM, "chat: out of memory");
    }
    if (rc < 0) {
        /* Step 4: the template refused the conversation; a built-in format may not */
        json_t *plain = native ? generic_messages(msgs, o->tools_system) : json_incref(msgs);
        int ok = plain != NULL && c->fallback != LAMINA_CHAT_UNKNOWN &&
                 render_builtin(c->fallback, plain, o->add_generation_prompt, out, out_len, NULL, 0) == 0;
        json_decref(plain);
        json_decref(msgs);
        if (ok) {
            lamina_log(&c->lg, LAMINA_LOG_WARN,
                       "chat template failed (%s); used the built-in %s format", why,
                       lamina_chat_format_name(c->fallback));
            return 0;
        }
        return lamina_set_err(err, err_size, rc, "chat template: %s", why);
    }
    json_decref(msgs);
    /* Step 5: the tokenizer adds BOS itself */
    size_t bl = strlen(c->bos);
    if (c->cut_bos && bl > 0 && tl >= bl && !memcmp(text, c->bos, bl)) {
        memmove(text, text + bl, tl - bl + 1);
        tl -= bl;
    }
    *out = text;
    if (out_len)
        *out_len = tl;
    return 0;
}

int lamina_chat_apply(const lamina_chat *c, const lamina_chat_msg *msgs, size_t n,
                      int add_generation_prompt, char **out, size_t *out_len,
                      char *err, size_t err_size)
{
    if (out == NULL || (msgs == NULL && n > 0))
        return lamina_set_err(err, err_size, LAMINA_EINVAL, "chat: NULL argument");
    *out = NULL;
    for (size_t i = 0; i < n; i++)
        if (msgs[i].role == NULL || msgs[i].role[0] == 0 || msgs[i].content == NULL)
            return lamina_set_err(err, err_size, LAMINA_EINVAL, "chat: message %zu has no role or content", i);
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < n; i++)
        if (json_array_append_new(arr, json_pack("{s:o, s:o}", "role", json_string_nocheck(msgs[i].role), "content",
                                                     json_string_nocheck(msgs[i].content))) < 0) {
            json_decref(arr);
            arr = NULL;
        }
    if (arr == NULL)
        return lamina_set_err(err, err_size, LAMINA_ENOMEM, "chat: out of memory");
    lamina_chat_opts o = { .add_generation_prompt = add_generation_prompt, .think = -1 };
    int rc = lamina_chat_apply_json(c, arr, &o, out, out_len, err, err_size);
    json_decref(arr);
    return rc;
}
