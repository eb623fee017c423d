/*
 * api_chat.c - what /api/chat and /v1/chat/completions share: messages in
 * the shape chat templates take, tools and tool_choice, thinking, and the
 * parser that splits a reply into content, thinking and tool calls.
 *
 * Tools: a template that takes them (Qwen, Llama 3.1+, Mistral) renders
 * them and its format's calls are parsed from the reply; any other model
 * gets lamina's GENERIC format (reply.h), constrained to the reply JSON.
 * tool_choice "required" or a named function constrains the reply to a
 * call in every format: the prompt is continued with the format's opening
 * of a call and a grammar admits only a call of the allowed tools.
 *
 * Thinking: a template that thinks (<think> blocks, enable_thinking) has
 * its reply's thinking apart from the content, always; think false asks
 * the template not to think (enable_thinking false).  A constrained reply
 * (format, or a required call) is not parsed for thinking.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "server/server.h"

void srv_chat_init(srv_chat *ch)
{
    memset(ch, 0, sizeof *ch);
    ch->messages = json_array();
    ch->parallel = 1;
    ch->think = -1;
}

void srv_chat_clear(srv_chat *ch)
{
    json_decref(ch->messages);
    json_decref(ch->tools);
    json_decref(ch->kwargs);
    memset(ch, 0, sizeof *ch);
}

/* tool_calls of a message as the templates take them. */
static json_t *norm_calls(json_t *tc, size_t idx, char *err, size_t es)
{
    if (!json_is_array(tc)) {
        snprintf(err, es, "messages[%zu].tool_calls: expected an array", idx);
        return NULL;
    }
    json_t *out = json_array();
    for (size_t k = 0; out && k < json_array_size(tc); k++) {
        json_t *c = json_array_get(tc, k), *f = json_object_get(c, "function");
        json_t *name = json_object_get(f, "name"), *args = json_object_get(f, "arguments");
        if (!json_is_object(f) || !json_is_string(name) || !json_string_length(name)) {
            snprintf(err, es, "messages[%zu].tool_calls[%zu].function: expected an object with a name", idx, k);
            json_decref(out);
            return NULL;
        }
        json_t *a;
        if (!args || json_is_null(args)) a = json_object();
        else if (json_is_object(args)) a = json_incref(args);
        else if (json_is_string(args)) {
            /* OpenAI sends the arguments as JSON text; templates want the object */
            a = json_loadb(json_string_value(args), json_string_length(args), 0, NULL);
            if (!a) a = json_incref(args);
        } else {
            snprintf(err, es, "messages[%zu].tool_calls[%zu].function.arguments: expected an object or JSON text",
                     idx, k);
            json_decref(out);
            return NULL;
        }
        json_t *n = json_pack("{s:s, s:{s:O, s:o}}", "type", "function", "function", "name", name, "arguments", a);
        json_t *id = json_object_get(c, "id");
        if (json_is_string(id)) json_object_set(n, "id", id);
        json_array_append_new(out, n);
    }
    return out;
}

int srv_chat_add(srv_chat *ch, size_t idx, const char *role, const char *content, json_t *tool_calls,
                 const char *tool_call_id, const char *name, const char *thinking, char *err, size_t es)
{
    json_t *m = json_pack("{s:s}", "role", role);
    if (!m) { snprintf(err, es, "out of memory"); return -1; }
    json_object_set_new(m, "content", content ? json_string(content) : json_null());
    if (tool_calls && !json_is_null(tool_calls) && !(json_is_array(tool_calls) && !json_array_size(tool_calls))) {
        if (strcmp(role, "assistant")) {
            snprintf(err, es, "messages[%zu].tool_calls: only assistant messages have tool calls", idx);
            json_decref(m);
            return -1;
        }
        json_t *tc = norm_calls(tool_calls, idx, err, es);
        if (!tc) { json_decref(m); return -1; }
        json_object_set_new(m, "tool_calls", tc);
    }
    if (tool_call_id && *tool_call_id) json_object_set_new(m, "tool_call_id", json_string(tool_call_id));
    if (name && *name) json_object_set_new(m, "name", json_string(name));
    if (thinking && *thinking) json_object_set_new(m, "reasoning_content", json_string(thinking));
    json_array_append_new(ch->messages, m);
    return 0;
}

int srv_chat_tools(srv_chat *ch, json_t *tools, char *err, size_t es)
{
    if (!tools || json_is_null(tools)) return 0;
    if (lamina_tools_check(tools, err, es) < 0) return -1;
    if (json_array_size(tools) == 0) return 0;
    json_decref(ch->tools);
    ch->tools = json_incref(tools);
    return 0;
}

/* Where the prompt leaves the model inside a <think> block: the text from
 * the last "<think>" on, or NULL. */
static const char *open_think(const char *p)
{
    const char *last = NULL;
    for (const char *q = strstr(p, "<think>"); q; q = strstr(q + 1, "<think>")) last = q;
    return last && !strstr(last, "</think>") ? last : NULL;
}

int srv_chat_prepare(srv_model *m, srv_chat *ch, srv_gen_opts *o, char **prompt, lamina_reply **reply,
                     int *http, char *err, size_t es)
{
    *prompt = NULL;
    *reply = NULL;
    *http = 400;
    enum lamina_tool_format tf = lamina_chat_tool_format(m->chat);
    int thinks = lamina_chat_thinks(m->chat);
    if (ch->think == 1 && !thinks && ch->think_soft) ch->think = -1;
    if (ch->think == 1 && !thinks) {
        snprintf(err, es, "think: model '%s' does not support thinking", m->name);
        return -1;
    }
    json_t *tools = ch->choice == LAMINA_TOOL_NONE ? NULL : ch->tools;
    lamina_tools_plan plan;
    if (lamina_tools_plan_make(tf, tools, ch->choice, ch->named, ch->parallel, &plan, err, es) < 0) {
        *http = 400;
        return -1;
    }
    if (plan.grammar && o->grammar) {
        lamina_tools_plan_clear(&plan);
        snprintf(err, es, "tools: a reply format (format, response_format) cannot be combined with tools "
                          "on this model, or with a required tool call");
        return -1;
    }
    lamina_chat_opts co = { .add_generation_prompt = 1, .tools = tools, .tools_system = plan.system,
                            .think = ch->think, .kwargs = ch->kwargs };
    char *text = NULL;
    size_t tl = 0;
    if (lamina_chat_apply_json(m->chat, ch->messages, &co, &text, &tl, err, es) < 0) {
        lamina_tools_plan_clear(&plan);
        return -1;
    }
    if (plan.prefill) {
        size_t pl = strlen(plan.prefill);
        char *t = realloc(text, tl + pl + 1);
        if (!t) { free(text); lamina_tools_plan_clear(&plan); *http = 500; snprintf(err, es, "out of memory"); return -1; }
        memcpy(t + tl, plan.prefill, pl + 1);
        text = t;
    }
    if (plan.grammar) {
        o->grammar = plan.grammar;
        plan.grammar = NULL;
    }
    lamina_reply_opts ro = { .tools = tools != NULL, .format = tf };
    ro.thinking = thinks && !o->grammar;
    ro.prefill = plan.prefill ? plan.prefill : ro.thinking ? open_think(text) : NULL;
    /* markers that are control tokens come out as text */
    o->render_special = tools && (tf == LAMINA_TOOLS_MISTRAL || tf == LAMINA_TOOLS_LLAMA3);
    int rc = lamina_reply_create(&ro, reply, err, es);
    lamina_tools_plan_clear(&plan);
    if (rc < 0) {
        free(text);
        *http = 500;
        return -1;
    }
    *prompt = text;
    return 0;
}

int srv_job_parse_all(srv_job *j)
{
    if (!j->reply) return 0;
    const char *all = j->r->all ? j->r->all : "";
    if (lamina_reply_feed(j->reply, all, j->r->all_n, NULL) < 0) return -1;
    return lamina_reply_finish(j->reply, NULL) < 0 ? -1 : 0;
}

json_t *srv_calls_ollama(const srv_job *j, size_t from, size_t n)
{
    json_t *a = json_array();
    for (size_t i = from; a && i < from + n; i++) {
        const lamina_tool_call *tc = lamina_reply_call(j->reply, i);
        if (!tc) break;
        json_t *args = json_loads(tc->arguments, 0, NULL);
        json_array_append_new(a, json_pack("{s:{s:s, s:o}}", "function", "name", tc->name, "arguments",
                                           args ? args : json_object()));
    }
    return a;
}

static void call_id(srv_job *j, size_t i, char *out, size_t size)
{
    const lamina_tool_call *tc = lamina_reply_call(j->reply, i);
    if (i >= j->n_call_ids) {
        size_t n = i + 8;
        char (*ids)[40] = realloc(j->call_ids, n * sizeof *ids);
        if (ids) {
            memset(ids + j->n_call_ids, 0, (n - j->n_call_ids) * sizeof *ids);
            j->call_ids = ids;
            j->n_call_ids = n;
        }
    }
    if (i < j->n_call_ids && !j->call_ids[i][0]) {
        if (tc && tc->id && strlen(tc->id) < sizeof j->call_ids[i]) {
            snprintf(j->call_ids[i], sizeof j->call_ids[i], "%s", tc->id);
        } else {
            static const char al[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
            unsigned char r[24];
            if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
                for (size_t k = 0; k < sizeof r; k++) r[k] = (unsigned char)(i * 31 + k * 7 + (size_t)j);
            memcpy(j->call_ids[i], "call_", 5);
            for (size_t k = 0; k < sizeof r; k++) j->call_ids[i][5 + k] = al[r[k] % (sizeof al - 1)];
            j->call_ids[i][5 + sizeof r] = 0;
        }
    }
    snprintf(out, size, "%s", i < j->n_call_ids ? j->call_ids[i] : "call_0");
}

json_t *srv_calls_openai(srv_job *j, size_t from, size_t n, int with_index)
{
    json_t *a = json_array();
    for (size_t i = from; a && i < from + n; i++) {
        const lamina_tool_call *tc = lamina_reply_call(j->reply, i);
        if (!tc) break;
        char id[40];
        call_id(j, i, id, sizeof id);
        json_t *c = json_pack("{s:s, s:s, s:{s:s, s:s}}", "id", id, "type", "function", "function", "name",
                              tc->name, "arguments", tc->arguments);
        if (with_index) json_object_set_new(c, "index", json_integer((json_int_t)i));
        json_array_append_new(a, c);
    }
    return a;
}
