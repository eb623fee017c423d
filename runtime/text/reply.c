/* reply.c - thinking and tool calls in a model's reply (see reply.h). */
#include "config.h"

#include "reply.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/plugin.h"
#include "log.h"
#include "strbuf.h"

/* ---- formats ---------------------------------------------------------- */

enum lamina_tool_format lamina_tool_format_detect(const char *t)
{
    if (t == NULL || strstr(t, "tools") == NULL)
        return LAMINA_TOOLS_GENERIC;
    if (strstr(t, "<tool_call>"))
        return LAMINA_TOOLS_HERMES;
    if (strstr(t, "[TOOL_CALLS]"))
        return LAMINA_TOOLS_MISTRAL;
    if (strstr(t, "<|python_tag|>") ||
        (strstr(t, "<|start_header_id|>") && strstr(t, "\"parameters\"")))
        return LAMINA_TOOLS_LLAMA3;
    return LAMINA_TOOLS_GENERIC;
}

const char *lamina_tool_format_name(enum lamina_tool_format f)
{
    switch (f) {
    case LAMINA_TOOLS_HERMES: return "hermes";
    case LAMINA_TOOLS_LLAMA3: return "llama3";
    case LAMINA_TOOLS_MISTRAL: return "mistral";
    default: return "generic";
    }
}

int lamina_template_thinks(const char *t)
{
    return t != NULL && (strstr(t, "<think>") != NULL || strstr(t, "enable_thinking") != NULL);
}

/* ---- the parser ------------------------------------------------------- */

enum mode {
    M_START,     /* nothing decided yet: <think>, a LLAMA3 call, GENERIC JSON */
    M_CONTENT,   /* text; HERMES and MISTRAL markers looked for */
    M_THINK,     /* inside <think> */
    M_CALL,      /* inside <tool_call> (HERMES) */
    M_HOLD,      /* held until the end: LLAMA3 JSON, GENERIC, after [TOOL_CALLS] */
    M_END
};

struct lamina_reply {
    lamina_reply_opts o;
    char *prefill;      /* a copy, for lamina_reply_clone */
    enum mode mode;
    lamina_strbuf in;            /* undecided input */
    lamina_strbuf content, thinking;
    lamina_strbuf ws;            /* whitespace held between content and a call */
    int think_done;     /* the <think> block is over (or never was) */
    int drop_ws;        /* drop whitespace before the next content (after </think>) */
    lamina_tool_call *calls;
    size_t n_calls, cap_calls;
    int oom;
};

static const char TAG_THINK[] = "<think>", TAG_UNTHINK[] = "</think>";
static const char TAG_CALL[] = "<tool_call>", TAG_UNCALL[] = "</tool_call>";
static const char TAG_MISTRAL[] = "[TOOL_CALLS]", TAG_PY[] = "<|python_tag|>";

static int is_ws(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

/* The length of the longest suffix of s[0..n) that is a proper prefix of tag. */
static size_t partial_tail(const char *s, size_t n, const char *tag)
{
    size_t tl = strlen(tag);
    for (size_t k = tl - 1 < n ? tl - 1 : n; k > 0; k--)
        if (!memcmp(s + n - k, tag, k))
            return k;
    return 0;
}

static int starts(const char *s, size_t n, const char *tag)
{
    size_t tl = strlen(tag);
    return n >= tl && !memcmp(s, tag, tl);
}

/* 1 when s[0..n) is a proper prefix of tag */
static int is_prefix(const char *s, size_t n, const char *tag)
{
    return n < strlen(tag) && !memcmp(s, tag, n);
}

static void emit_content(lamina_reply *r, const char *s, size_t n)
{
    if (r->drop_ws) {
        while (n && is_ws(*s)) { s++; n--; }
        if (!n)
            return;
        r->drop_ws = 0;
    }
    int hold = r->o.tools && (r->o.format == LAMINA_TOOLS_HERMES || r->o.format == LAMINA_TOOLS_MISTRAL);
    if (!hold) {
        r->oom |= lamina_strbuf_add(&r->content, s, n);
        return;
    }
    size_t e = n;
    while (e && is_ws(s[e - 1]))
        e--;
    if (e == 0) {
        r->oom |= lamina_strbuf_add(&r->ws, s, n);
        return;
    }
    r->oom |= lamina_strbuf_add(&r->content, r->ws.p ? r->ws.p : "", r->ws.n);
    r->ws.n = 0;
    r->oom |= lamina_strbuf_add(&r->content, s, e);
    r->oom |= lamina_strbuf_add(&r->ws, s + e, n - e);
}

static void emit_thinking(lamina_reply *r, const char *s, size_t n)
{
    r->oom |= lamina_strbuf_add(&r->thinking, s, n);
}

static char *dup_n(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

/* A call object: name, and the arguments (an object, or a string holding
 * one) under akey or "arguments"; no arguments is {}.  0 or -1. */
static int add_call(lamina_reply *r, json_t *o, const char *akey)
{
    if (!json_is_object(o))
        return -1;
    json_t *name = json_object_get(o, "name");
    json_t *fn = json_object_get(o, "function");
    if (!name && json_is_object(fn)) {   /* {"function": {"name", "arguments"}} */
        o = fn;
        name = json_object_get(o, "name");
    }
    if (!json_is_string(name) || json_string_length(name) == 0)
        return -1;
    json_t *args = json_object_get(o, akey);
    if (!args)
        args = json_object_get(o, "arguments");
    json_t *parsed = NULL;
    if (json_is_string(args)) {   /* JSON text of an object, as some models write it */
        parsed = json_loadb(json_string_value(args), json_string_length(args), 0, NULL);
        if (parsed == NULL)
            return -1;
        args = parsed;
    }
    if (args && !json_is_object(args)) {
        json_decref(parsed);
        return -1;
    }
    char *a = args ? json_dumps(args, JSON_COMPACT) : strdup("{}");
    json_decref(parsed);
    json_t *id = json_object_get(o, "id");
    if (r->n_calls == r->cap_calls) {
        size_t c = r->cap_calls ? r->cap_calls * 2 : 4;
        lamina_tool_call *q = realloc(r->calls, c * sizeof *q);
        if (!q) {
            free(a);
            r->oom = 1;
            return 0;
        }
        r->calls = q;
        r->cap_calls = c;
    }
    lamina_tool_call *tc = &r->calls[r->n_calls];
    tc->name = strdup(json_string_value(name));
    tc->arguments = a;
    tc->id = json_is_string(id) && json_string_length(id) ? strdup(json_string_value(id)) : NULL;
    if (!tc->name || !tc->arguments || (json_is_string(id) && json_string_length(id) && !tc->id)) {
        free(tc->name);
        free(tc->arguments);
        free(tc->id);
        r->oom = 1;
        return 0;
    }
    r->n_calls++;
    return 0;
}

/* Take back the calls from `first` on (a block that turned out not to parse). */
static void drop_calls(lamina_reply *r, size_t first)
{
    while (r->n_calls > first) {
        lamina_tool_call *tc = &r->calls[--r->n_calls];
        free(tc->name);
        free(tc->arguments);
        free(tc->id);
    }
}

/* Parse JSON values from s[0..n): one per call, separated by whitespace
 * (and ';' when semi).  All or nothing: on failure the calls added are
 * taken back.  0 or -1. */
static int parse_objects(lamina_reply *r, const char *s, size_t n, const char *akey, int semi, int array)
{
    size_t first = r->n_calls, i = 0;
    int any = 0;
    for (;;) {
        while (i < n && (is_ws(s[i]) || (semi && any && s[i] == ';')))
            i++;
        if (i == n)
            break;
        json_error_t e;
        json_t *v = json_loadb(s + i, n - i, JSON_DISABLE_EOF_CHECK, &e);
        if (!v)
            goto undo;
        i += (size_t)e.position;
        int bad = 0;
        if (array) {
            if (!json_is_array(v) || json_array_size(v) == 0)
                bad = 1;
            for (size_t k = 0; !bad && k < json_array_size(v); k++)
                bad = add_call(r, json_array_get(v, k), akey) < 0;
        } else {
            bad = add_call(r, v, akey) < 0;
        }
        json_decref(v);
        if (bad)
            goto undo;
        any = 1;
        if (array)
            break;
    }
    while (i < n && is_ws(s[i]))
        i++;
    if (any && i == n)
        return 0;
undo:
    drop_calls(r, first);
    return -1;
}

/* [TOOL_CALLS]name[ARGS]{...} repeated (s: after the first marker). */
static int parse_mistral_args(lamina_reply *r, const char *s, size_t n)
{
    size_t first = r->n_calls;
    size_t i = 0;
    while (i < n) {
        while (i < n && is_ws(s[i]))
            i++;
        if (i == n)
            break;
        if (starts(s + i, n - i, TAG_MISTRAL))
            i += sizeof TAG_MISTRAL - 1;
        const char *a = memmem(s + i, n - i, "[ARGS]", 6);
        if (!a || a == s + i)
            goto undo;
        size_t nl = (size_t)(a - (s + i));
        char *name = dup_n(s + i, nl);
        i += nl + 6;
        json_error_t e;
        json_t *args = json_loadb(s + i, n - i, JSON_DISABLE_EOF_CHECK, &e);
        json_t *o = name && args ? json_pack("{s:s, s:O}", "name", name, "arguments", args) : NULL;
        free(name);
        json_decref(args);
        int bad = !o || add_call(r, o, "arguments") < 0;
        json_decref(o);
        if (bad)
            goto undo;
        i += (size_t)e.position;
    }
    if (r->n_calls > first)
        return 0;
undo:
    drop_calls(r, first);
    return -1;
}

/* The held text at the end. */
static void decide_held(lamina_reply *r)
{
    const char *s = r->in.p ? r->in.p : "";
    size_t n = r->in.n;
    switch (r->o.format) {
    case LAMINA_TOOLS_LLAMA3: {
        size_t k = starts(s, n, TAG_PY) ? sizeof TAG_PY - 1 : 0;
        if (parse_objects(r, s + k, n - k, "parameters", 1, 0) < 0)
            emit_content(r, s, n);
        break;
    }
    case LAMINA_TOOLS_MISTRAL: {
        size_t i = 0;
        while (i < n && is_ws(s[i]))
            i++;
        int ok = i < n && s[i] == '[' ? parse_objects(r, s, n, "arguments", 0, 1) == 0
                                      : parse_mistral_args(r, s, n) == 0;
        if (!ok) {
            emit_content(r, TAG_MISTRAL, sizeof TAG_MISTRAL - 1);
            emit_content(r, s, n);
        }
        break;
    }
    default: {   /* GENERIC */
        json_error_t e;
        json_t *v = json_loadb(s, n, 0, &e);
        json_t *tc = json_object_get(v, "tool_calls"), *resp = json_object_get(v, "response");
        int ok = json_is_object(v) && (tc || resp) && (!tc || json_is_array(tc)) && (!resp || json_is_string(resp));
        size_t first = r->n_calls;
        for (size_t k = 0; ok && tc && k < json_array_size(tc); k++)
            ok = add_call(r, json_array_get(tc, k), "arguments") == 0;
        if (!ok) {
            drop_calls(r, first);
            emit_content(r, s, n);
        } else if (resp) {
            emit_content(r, json_string_value(resp), json_string_length(resp));
        }
        json_decref(v);
        break;
    }
    }
    r->in.n = 0;
}

/* One step on the undecided input; 1 when it made progress. */
static int step(lamina_reply *r, int final)
{
    char *s = r->in.p ? r->in.p : (char *)"";
    size_t n = r->in.n;
    switch (r->mode) {
    case M_START: {
        size_t p = 0;
        while (p < n && is_ws(s[p]))
            p++;
        if (p == n && !final)
            return 0;
        const char *q = s + p;
        size_t m = n - p;
        if (!r->think_done && r->o.thinking) {
            if (starts(q, m, TAG_THINK)) {
                lamina_strbuf_cut(&r->in, p + sizeof TAG_THINK - 1);
                r->mode = M_THINK;
                return 1;
            }
            if (is_prefix(q, m, TAG_THINK) && !final)
                return 0;
        }
        r->think_done = 1;
        if (r->o.tools && r->o.format == LAMINA_TOOLS_LLAMA3) {
            if (m && (q[0] == '{' || starts(q, m, TAG_PY))) {
                lamina_strbuf_cut(&r->in, p);
                r->mode = M_HOLD;
                return 1;
            }
            if (m && is_prefix(q, m, TAG_PY) && !final)
                return 0;
        }
        if (r->o.tools && r->o.format == LAMINA_TOOLS_GENERIC) {
            lamina_strbuf_cut(&r->in, p);
            r->mode = M_HOLD;
            return 1;
        }
        r->mode = M_CONTENT;
        return 1;
    }
    case M_THINK: {
        const char *e = memmem(s, n, TAG_UNTHINK, sizeof TAG_UNTHINK - 1);
        if (e) {
            emit_thinking(r, s, (size_t)(e - s));
            lamina_strbuf_cut(&r->in, (size_t)(e - s) + sizeof TAG_UNTHINK - 1);
            r->think_done = 1;
            r->drop_ws = 1;
            r->mode = M_START;
            return 1;
        }
        size_t keep = final ? 0 : partial_tail(s, n, TAG_UNTHINK);
        if (n - keep == 0)
            return 0;
        emit_thinking(r, s, n - keep);
        lamina_strbuf_cut(&r->in, n - keep);
        return final ? (r->mode = M_END, 1) : 1;
    }
    case M_CONTENT: {
        const char *tag = NULL;
        if (r->o.tools && r->o.format == LAMINA_TOOLS_HERMES)
            tag = TAG_CALL;
        else if (r->o.tools && r->o.format == LAMINA_TOOLS_MISTRAL)
            tag = TAG_MISTRAL;
        const char *e = tag ? memmem(s, n, tag, strlen(tag)) : NULL;
        if (e) {
            emit_content(r, s, (size_t)(e - s));
            r->ws.n = 0;   /* whitespace before a call is not content */
            lamina_strbuf_cut(&r->in, (size_t)(e - s) + strlen(tag));
            r->mode = tag == TAG_CALL ? M_CALL : M_HOLD;
            return 1;
        }
        size_t keep = final || !tag ? 0 : partial_tail(s, n, tag);
        if (n - keep == 0)
            return 0;
        emit_content(r, s, n - keep);
        lamina_strbuf_cut(&r->in, n - keep);
        return 1;
    }
    case M_CALL: {
        const char *e = memmem(s, n, TAG_UNCALL, sizeof TAG_UNCALL - 1);
        if (!e && !final)
            return 0;
        size_t bl = e ? (size_t)(e - s) : n;
        if (parse_objects(r, s, bl, "arguments", 0, 0) < 0) {
            emit_content(r, TAG_CALL, sizeof TAG_CALL - 1);
            emit_content(r, s, e ? bl + sizeof TAG_UNCALL - 1 : bl);
        }
        lamina_strbuf_cut(&r->in, e ? bl + sizeof TAG_UNCALL - 1 : bl);
        r->mode = M_CONTENT;
        return 1;
    }
    case M_HOLD:
        if (!final)
            return 0;
        decide_held(r);
        r->mode = M_END;
        return 1;
    case M_END:
        return 0;
    }
    return 0;
}

static void run(lamina_reply *r, int final)
{
    while (!r->oom && step(r, final))
        ;
}

int lamina_reply_create(const lamina_reply_opts *o, lamina_reply **out, char *err, size_t err_size)
{
    if (o == NULL || out == NULL || (unsigned)o->format > LAMINA_TOOLS_MISTRAL)
        return lamina_set_err(err, err_size, LAMINA_EINVAL, "reply: bad options");
    lamina_reply *r = calloc(1, sizeof *r);
    if (r == NULL)
        return lamina_set_err(err, err_size, LAMINA_ENOMEM, "reply: out of memory");
    r->o = *o;
    r->o.prefill = NULL;
    if (o->prefill && !(r->prefill = strdup(o->prefill))) {
        free(r);
        return lamina_set_err(err, err_size, LAMINA_ENOMEM, "reply: out of memory");
    }
    r->mode = M_START;
    r->think_done = !o->thinking;
    if (o->prefill && *o->prefill) {
        /* The prefill is parsed as the start of the reply, and forgotten.
         * With thinking, only what follows its last think tag matters. */
        const char *p = o->prefill, *open = NULL, *close = NULL;
        for (const char *q = strstr(p, TAG_THINK); o->thinking && q; q = strstr(q + 1, TAG_THINK))
            open = q;
        for (const char *q = strstr(p, TAG_UNTHINK); o->thinking && q; q = strstr(q + 1, TAG_UNTHINK))
            close = q;
        if (open && (!close || close < open)) {
            p = open;
        } else if (close) {
            p = close + sizeof TAG_UNTHINK - 1;
            r->think_done = 1;
            r->drop_ws = 1;
        }
        r->oom |= lamina_strbuf_str(&r->in, p);
        run(r, 0);
        r->content.n = r->thinking.n = r->ws.n = 0;
        if (r->content.p) r->content.p[0] = 0;
        if (r->thinking.p) r->thinking.p[0] = 0;
    }
    if (r->oom) {
        lamina_reply_free(r);
        return lamina_set_err(err, err_size, LAMINA_ENOMEM, "reply: out of memory");
    }
    *out = r;
    return 0;
}

int lamina_reply_clone(const lamina_reply *r, lamina_reply **out)
{
    lamina_reply_opts o = r->o;
    o.prefill = r->prefill;
    return lamina_reply_create(&o, out, NULL, 0);
}

void lamina_reply_free(lamina_reply *r)
{
    if (r == NULL)
        return;
    drop_calls(r, 0);
    free(r->calls);
    free(r->prefill);
    free(r->in.p);
    free(r->content.p);
    free(r->thinking.p);
    free(r->ws.p);
    free(r);
}

static int feed(lamina_reply *r, const char *s, size_t n, int final, lamina_reply_delta *d)
{
    size_t c0 = r->content.n, t0 = r->thinking.n, k0 = r->n_calls;
    if (d)
        memset(d, 0, sizeof *d);
    if (r->oom)
        return LAMINA_ENOMEM;
    if (r->mode == M_END && (n || !final))
        return LAMINA_EINVAL;
    if (n)
        r->oom |= lamina_strbuf_add(&r->in, s, n);
    run(r, final);
    if (final) {
        if (r->n_calls == 0 && r->ws.n)   /* whitespace after the text, no call after it */
            r->oom |= lamina_strbuf_add(&r->content, r->ws.p, r->ws.n);
        r->ws.n = 0;
        r->mode = M_END;
    }
    if (r->oom)
        return LAMINA_ENOMEM;
    if (d) {
        d->content = r->content.p ? r->content.p + c0 : "";
        d->content_len = r->content.n - c0;
        d->thinking = r->thinking.p ? r->thinking.p + t0 : "";
        d->thinking_len = r->thinking.n - t0;
        d->first_call = k0;
        d->n_calls = r->n_calls - k0;
    }
    return 0;
}

int lamina_reply_feed(lamina_reply *r, const char *text, size_t len, lamina_reply_delta *d)
{
    if (r == NULL || (text == NULL && len))
        return LAMINA_EINVAL;
    if (r->mode == M_END)
        return LAMINA_EINVAL;
    return feed(r, text, len, 0, d);
}

int lamina_reply_finish(lamina_reply *r, lamina_reply_delta *d)
{
    if (r == NULL)
        return LAMINA_EINVAL;
    if (r->mode == M_END) {
        if (d)
            memset(d, 0, sizeof *d), d->content = d->thinking = "";
        return 0;
    }
    return feed(r, NULL, 0, 1, d);
}

const char *lamina_reply_content(const lamina_reply *r, size_t *len)
{
    if (len)
        *len = r->content.n;
    return r->content.p ? r->content.p : "";
}

const char *lamina_reply_thinking(const lamina_reply *r, size_t *len)
{
    if (len)
        *len = r->thinking.n;
    return r->thinking.p ? r->thinking.p : "";
}

size_t lamina_reply_n_calls(const lamina_reply *r) { return r->n_calls; }

const lamina_tool_call *lamina_reply_call(const lamina_reply *r, size_t i)
{
    return i < r->n_calls ? &r->calls[i] : NULL;
}

/* ---- tools in a request ------------------------------------------------- */

static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.')
            return 0;
    return 1;
}

#define MAX_TOOLS 128

int lamina_tools_check(json_t *tools, char *err, size_t err_size)
{
    if (!json_is_array(tools))
        return lamina_set_err(err, err_size, LAMINA_EINVAL, "tools: expected an array");
    if (json_array_size(tools) > MAX_TOOLS)
        return lamina_set_err(err, err_size, LAMINA_EINVAL, "tools: at most %d tools, got %zu",
                              MAX_TOOLS, json_array_size(tools));
    for (size_t i = 0; i < json_array_size(tools); i++) {
        json_t *t = json_array_get(tools, i);
        if (!json_is_object(t))
            return lamina_set_err(err, err_size, LAMINA_EINVAL, "tools[%zu]: expected an object", i);
        json_t *ty = json_object_get(t, "type");
        if (ty && !(json_is_string(ty) && !strcmp(json_string_value(ty), "function")))
            return lamina_set_err(err, err_size, LAMINA_EINVAL,
                                  "tools[%zu].type: only \"function\" tools are supported", i);
        json_t *f = json_object_get(t, "function");
        if (!json_is_object(f))
            return lamina_set_err(err, err_size, LAMINA_EINVAL,
                                  "tools[%zu].function: expected an object", i);
        json_t *nm = json_object_get(f, "name");
        if (!json_is_string(nm) || !name_ok(json_string_value(nm)))
            return lamina_set_err(err, err_size, LAMINA_EINVAL,
                                  "tools[%zu].function.name: expected 1 to 64 letters, digits, "
                                  "'_', '-' or '.'", i);
        for (size_t k = 0; k < i; k++) {
            json_t *o = json_object_get(json_object_get(json_array_get(tools, k), "function"), "name");
            if (!strcmp(json_string_value(o), json_string_value(nm)))
                return lamina_set_err(err, err_size, LAMINA_EINVAL,
                                      "tools[%zu].function.name: '%s' is also tools[%zu]", i,
                                      json_string_value(nm), k);
        }
        json_t *d = json_object_get(f, "description");
        if (d && !json_is_null(d) && !json_is_string(d))
            return lamina_set_err(err, err_size, LAMINA_EINVAL,
                                  "tools[%zu].function.description: expected a string", i);
        json_t *p = json_object_get(f, "parameters");
        if (p && !json_is_null(p) && !json_is_object(p))
            return lamina_set_err(err, err_size, LAMINA_EINVAL,
                                  "tools[%zu].function.parameters: expected a JSON schema object", i);
        json_t *ptype = json_object_get(p, "type");
        if (ptype && !json_is_string(ptype) && !json_is_array(ptype))
            return lamina_set_err(err, err_size, LAMINA_EINVAL,
                                  "tools[%zu].function.parameters.type: expected a string", i);
    }
    return 0;
}

static const char *tool_name(json_t *t)
{
    return json_string_value(json_object_get(json_object_get(t, "function"), "name"));
}

/* The schema of one call of tool t: {"name": const, akey: parameters}.
 * defs collects the tool's $defs/definitions (hoisted to the root, where
 * "#/$defs/..." references resolve); loose: arguments any object. */
static json_t *call_schema(json_t *t, const char *akey, int loose)
{
    json_t *p = json_object_get(json_object_get(t, "function"), "parameters");
    json_t *args;
    if (loose || !json_is_object(p) || json_object_size(p) == 0) {
        args = json_pack("{s:s}", "type", "object");
    } else {
        args = json_deep_copy(p);
        json_object_del(args, "$defs");
        json_object_del(args, "definitions");
        json_object_del(args, "$schema");
    }
    return json_pack("{s:s, s:{s:{s:s}, s:o}, s:[s, s], s:b}", "type", "object", "properties", "name",
                     "const", tool_name(t), akey, args, "required", "name", akey,
                     "additionalProperties", 0);
}

static void merge_defs(json_t *root, json_t *t)
{
    json_t *p = json_object_get(json_object_get(t, "function"), "parameters");
    static const char *const keys[] = { "$defs", "definitions" };
    for (int k = 0; k < 2; k++) {
        json_t *d = json_object_get(p, keys[k]);
        if (!json_is_object(d))
            continue;
        json_t *dst = json_object_get(root, keys[k]);
        if (!dst) {
            dst = json_object();
            json_object_set_new(root, keys[k], dst);
        }
        const char *name;
        json_t *v;
        json_object_foreach(d, name, v) {
            if (!json_object_get(dst, name))
                json_object_set(dst, name, v);
        }
    }
}

/* The schema of calls: one call (one_call), or an array of calls. */
static json_t *calls_schema(json_t *tools, const char *only, const char *akey, const int *loose,
                            int one_call, int parallel)
{
    json_t *root = json_object(), *alts = json_array();
    for (size_t i = 0; i < json_array_size(tools); i++) {
        json_t *t = json_array_get(tools, i);
        if (only && strcmp(tool_name(t), only))
            continue;
        json_array_append_new(alts, call_schema(t, akey, loose[i]));
        if (!loose[i])
            merge_defs(root, t);
    }
    json_t *call = json_array_size(alts) == 1 ? json_incref(json_array_get(alts, 0))
                                               : json_pack("{s:O}", "anyOf", alts);
    json_decref(alts);
    if (one_call) {
        json_object_update(call, root);
        json_decref(root);
        return call;
    }
    json_t *arr = json_pack("{s:s, s:o, s:i}", "type", "array", "items", call, "minItems", 1);
    if (!parallel)
        json_object_set_new(arr, "maxItems", json_integer(1));
    json_object_update(arr, root);
    json_decref(root);
    return arr;
}

static json_t *generic_schema(json_t *tools, const char *only, const int *loose, int must_call, int parallel)
{
    json_t *calls = calls_schema(tools, only, "arguments", loose, 0, parallel);
    json_t *defs[2] = { json_incref(json_object_get(calls, "$defs")),
                        json_incref(json_object_get(calls, "definitions")) };
    json_object_del(calls, "$defs");
    json_object_del(calls, "definitions");
    json_t *call_obj = json_pack("{s:s, s:{s:o}, s:[s], s:b}", "type", "object", "properties", "tool_calls",
                                 calls, "required", "tool_calls", "additionalProperties", 0);
    json_t *root = must_call ? call_obj
                             : json_pack("{s:[o, {s:s, s:{s:{s:s}}, s:[s], s:b}]}", "anyOf", call_obj, "type",
                                         "object", "properties", "response", "type", "string", "required",
                                         "response", "additionalProperties", 0);
    if (defs[0]) json_object_set_new(root, "$defs", defs[0]);
    if (defs[1]) json_object_set_new(root, "definitions", defs[1]);
    return root;
}

static int generic_system(json_t *tools, enum lamina_tool_choice choice, const char *only, char **out)
{
    json_t *fns = json_array();
    for (size_t i = 0; i < json_array_size(tools); i++) {
        json_t *t = json_array_get(tools, i);
        if (only && strcmp(tool_name(t), only))
            continue;
        json_array_append(fns, json_object_get(t, "function"));
    }
    char *list = json_dumps(fns, JSON_INDENT(2));
    json_decref(fns);
    if (!list)
        return LAMINA_ENOMEM;
    lamina_strbuf b = { 0 };
    int bad = lamina_strbuf_str(&b, "You can use the following tools (JSON: each tool's name, description and the JSON "
                        "schema of its arguments):\n");
    bad |= lamina_strbuf_str(&b, list);
    free(list);
    if (choice == LAMINA_TOOL_AUTO)
        bad |= lamina_strbuf_str(&b, "\n\nReply with one JSON object and nothing else. To call tools: "
                         "{\"tool_calls\": [{\"name\": \"<tool name>\", \"arguments\": {<arguments>}}]}. "
                         "To answer directly: {\"response\": \"<your answer>\"}. When a tool's result "
                         "is given to you, use it to answer.");
    else
        bad |= lamina_strbuf_str(&b, "\n\nCall a tool now: reply with one JSON object and nothing else, "
                         "{\"tool_calls\": [{\"name\": \"<tool name>\", \"arguments\": {<arguments>}}]}.");
    if (bad) {
        free(b.p);
        return LAMINA_ENOMEM;
    }
    *out = b.p;
    return 0;
}

void lamina_tools_plan_clear(lamina_tools_plan *p)
{
    if (p == NULL)
        return;
    lamina_grammar_unref(p->grammar);
    free(p->prefill);
    free(p->system);
    memset(p, 0, sizeof *p);
}

int lamina_tools_plan_make(enum lamina_tool_format f, json_t *tools, enum lamina_tool_choice choice,
                           const char *named, int parallel, lamina_tools_plan *out, char *err,
                           size_t err_size)
{
    memset(out, 0, sizeof *out);
    if (!json_is_array(tools) || json_array_size(tools) == 0 || choice == LAMINA_TOOL_NONE)
        return 0;
    const char *only = NULL;
    if (choice == LAMINA_TOOL_NAMED) {
        for (size_t i = 0; named && i < json_array_size(tools); i++)
            if (!strcmp(tool_name(json_array_get(tools, i)), named))
                only = tool_name(json_array_get(tools, i));
        if (!only)
            return lamina_set_err(err, err_size, LAMINA_EINVAL,
                                  "tool_choice: the function '%.64s' is not in tools",
                                  named ? named : "");
    }
    if (f != LAMINA_TOOLS_GENERIC && choice == LAMINA_TOOL_AUTO)
        return 0;
    size_t n = json_array_size(tools);
    int *loose = calloc(n + 1, sizeof *loose);
    if (!loose)
        return lamina_set_err(err, err_size, LAMINA_ENOMEM, "out of memory");
    const char *akey = f == LAMINA_TOOLS_LLAMA3 ? "parameters" : "arguments";
    int must = choice != LAMINA_TOOL_AUTO;
    /* a tool whose parameters the grammar cannot take gets any object */
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_array_get(tools, i);
        json_t *one = json_array();
        json_array_append(one, t);
        json_t *s = calls_schema(one, NULL, akey, &loose[i], 1, 1);
        json_decref(one);
        lamina_grammar *g = NULL;
        int rc = s ? lamina_grammar_compile(s, &g, NULL, 0) : LAMINA_ENOMEM;
        json_decref(s);
        lamina_grammar_unref(g);
        if (rc == LAMINA_ENOMEM) {
            free(loose);
            return lamina_set_err(err, err_size, LAMINA_ENOMEM, "out of memory");
        }
        loose[i] = rc < 0;
    }
    json_t *schema;
    const char *prefill = NULL;
    switch (f) {
    case LAMINA_TOOLS_HERMES:
        schema = calls_schema(tools, only, akey, loose, 1, 1);
        prefill = "<tool_call>\n";
        break;
    case LAMINA_TOOLS_LLAMA3:
        schema = calls_schema(tools, only, akey, loose, 1, 1);
        break;
    case LAMINA_TOOLS_MISTRAL:
        schema = calls_schema(tools, only, akey, loose, 0, parallel);
        prefill = "[TOOL_CALLS]";
        break;
    default:
        schema = generic_schema(tools, only, loose, must, parallel);
        break;
    }
    free(loose);
    char why[300] = "";
    int rc = schema ? lamina_grammar_compile(schema, &out->grammar, why, sizeof why) : LAMINA_ENOMEM;
    json_decref(schema);
    if (rc < 0) {
        lamina_tools_plan_clear(out);
        return lamina_set_err(err, err_size, rc, "tools: %s", rc == LAMINA_ENOMEM ? "out of memory" : why);
    }
    if (prefill && !(out->prefill = strdup(prefill))) {
        lamina_tools_plan_clear(out);
        return lamina_set_err(err, err_size, LAMINA_ENOMEM, "out of memory");
    }
    if (f == LAMINA_TOOLS_GENERIC && generic_system(tools, choice, only, &out->system) < 0) {
        lamina_tools_plan_clear(out);
        return lamina_set_err(err, err_size, LAMINA_ENOMEM, "out of memory");
    }
    return 0;
}
