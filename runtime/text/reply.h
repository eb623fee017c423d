/*
 * reply.h - what a chat model's reply holds besides its answer: thinking
 * and tool calls, in the text formats the model families were trained on.
 *
 *   lamina_tool_format   how a family writes tool calls, told from its chat
 *                        template (lamina_tool_format_detect)
 *   lamina_reply         a streaming parser: generated text in, deltas of
 *                        content, thinking and complete tool calls out
 *   lamina_tools_plan    for a request with tools: the grammar that makes a
 *                        required (or named) call certain, and the text put
 *                        after the generation prompt for it
 *
 * Tool call formats:
 *   GENERIC  lamina's own, for templates that take no tools (Gemma, Phi-3,
 *            files without a template): the tools are described in a
 *            system message and the reply is one JSON object, either
 *            {"tool_calls": [{"name": N, "arguments": {...}}, ...]} or
 *            {"response": "text"}; the output is always constrained to that
 *            shape, so even a small model answers in it.
 *   HERMES   <tool_call>\n{"name": N, "arguments": {...}}\n</tool_call>,
 *            any number, between or after text (Qwen 2.5, Qwen 3, Hermes).
 *   LLAMA3   the whole reply one or more {"name": N, "parameters": {...}}
 *            objects ("arguments" also taken), separated by ';' or
 *            whitespace, optionally after <|python_tag|> (Llama 3.1-3.3).
 *   MISTRAL  [TOOL_CALLS] then a JSON array of {"name", "arguments", "id"}
 *            objects (Mistral 7B v0.3, Nemo), or [TOOL_CALLS]N[ARGS]{...}
 *            repeated (newer Mistral templates).
 * A call block that does not parse (bad JSON, no name, arguments not an
 * object) is given back as content, never dropped.
 *
 * Thinking: with opts.thinking, a reply that starts (after whitespace) with
 * <think> has everything up to </think> as thinking, and the whitespace
 * after </think> is dropped; a reply whose prompt already opened <think>
 * (opts.prefill ends inside a think block, as DeepSeek-R1 templates do) is
 * thinking from its first byte (a prefill is read from its last <think> or
 * </think> on).  A reply that ends inside the block is all thinking.
 * "<think>" later in the text is content.
 *
 * Streaming: text that may be the start of a marker is held back until the
 * next feed tells; a LLAMA3 reply that starts with '{' and a GENERIC reply
 * are held until the end (they are JSON or not as a whole).
 *
 * Internal to liblamina.
 */
#ifndef LAMINA_REPLY_H
#define LAMINA_REPLY_H

#include <stddef.h>

#include <jansson.h>

#include "grammar.h"

enum lamina_tool_format {
    LAMINA_TOOLS_GENERIC = 0,
    LAMINA_TOOLS_HERMES = 1,
    LAMINA_TOOLS_LLAMA3 = 2,
    LAMINA_TOOLS_MISTRAL = 3
};

/* The format a chat template writes calls in: HERMES when it holds
 * "<tool_call>", MISTRAL "[TOOL_CALLS]", LLAMA3 "<|start_header_id|>" and
 * "\"parameters\"" (or "<|python_tag|>"), and only when it reads the
 * `tools` variable; GENERIC otherwise (NULL included). */
enum lamina_tool_format lamina_tool_format_detect(const char *template_text);
/* "generic", "hermes", "llama3", "mistral" (static) */
const char *lamina_tool_format_name(enum lamina_tool_format f);
/* 1 when a template thinks in <think> blocks or takes enable_thinking. */
int lamina_template_thinks(const char *template_text);

/* ---- the parser ------------------------------------------------------- */

typedef struct lamina_tool_call {
    char *name;        /* NUL-terminated */
    char *arguments;   /* compact JSON object text, NUL-terminated */
    char *id;          /* the id the model wrote (MISTRAL), or NULL */
} lamina_tool_call;

typedef struct lamina_reply_opts {
    int tools;                        /* look for tool calls in `format` */
    enum lamina_tool_format format;
    int thinking;                     /* split <think>...</think> */
    const char *prefill;              /* text the reply continues (the end of
                                         the prompt that lamina or the
                                         template added: "<think>\n",
                                         "<tool_call>\n", "[TOOL_CALLS]");
                                         parsed first, never emitted; NULL:
                                         none */
} lamina_reply_opts;

typedef struct lamina_reply lamina_reply;

/* What one feed (or the finish) produced.  The pointers stay valid until
 * the next call on the parser. */
typedef struct lamina_reply_delta {
    const char *content;  size_t content_len;
    const char *thinking; size_t thinking_len;
    size_t first_call, n_calls;       /* lamina_reply_call(r, first_call + i) */
} lamina_reply_delta;

/* LAMINA_EINVAL (bad opts), LAMINA_ENOMEM. */
int  lamina_reply_create(const lamina_reply_opts *o, lamina_reply **out, char *err, size_t err_size);
void lamina_reply_free(lamina_reply *r);   /* NULL: no-op */
/* A new parser with r's options and prefill, at the start (another
 * choice of the same request).  LAMINA_ENOMEM. */
int  lamina_reply_clone(const lamina_reply *r, lamina_reply **out);
/* Feed generated text (any split, even inside a UTF-8 sequence or a
 * marker).  Returns 0 or LAMINA_ENOMEM (the parser is then unusable). */
int  lamina_reply_feed(lamina_reply *r, const char *text, size_t len, lamina_reply_delta *d);
/* The end of the reply: everything held back is decided.  Further feeds
 * are LAMINA_EINVAL. */
int  lamina_reply_finish(lamina_reply *r, lamina_reply_delta *d);
/* Everything so far (NUL-terminated). */
const char *lamina_reply_content(const lamina_reply *r, size_t *len);
const char *lamina_reply_thinking(const lamina_reply *r, size_t *len);
size_t lamina_reply_n_calls(const lamina_reply *r);
const lamina_tool_call *lamina_reply_call(const lamina_reply *r, size_t i);   /* NULL out of range */

/* ---- tools in a request ----------------------------------------------- */

enum lamina_tool_choice {
    LAMINA_TOOL_AUTO = 0,       /* the model decides */
    LAMINA_TOOL_NONE = 1,       /* no call: the tools are not shown */
    LAMINA_TOOL_REQUIRED = 2,   /* at least one call */
    LAMINA_TOOL_NAMED = 3       /* a call of one function */
};

/* Check a request's tools (OpenAI/Ollama shape: [{"type": "function",
 * "function": {"name", "description", "parameters"}}]): names of 1-64
 * letters, digits, '_', '-' or '.', distinct; parameters a JSON schema
 * object.  err names the field ("tools[2].function.name: ...").
 * LAMINA_EINVAL. */
int lamina_tools_check(json_t *tools, char *err, size_t err_size);

typedef struct lamina_tools_plan {
    lamina_grammar *grammar;   /* one reference, or NULL: free text */
    char *prefill;             /* malloc'd text to append to the prompt, or NULL */
    char *system;              /* GENERIC: malloc'd system text describing the
                                  tools and the reply format, or NULL */
} lamina_tools_plan;

/* What a request with tools needs.  GENERIC: the system text, and a
 * grammar for the JSON reply (AUTO: a call or a response; REQUIRED and
 * NAMED: calls only).  Native formats: AUTO nothing (the template shows the
 * tools and the parser finds the calls); REQUIRED and NAMED a prefill
 * opening a call and a grammar for one call's JSON.  parallel 0: at most
 * one call (GENERIC and MISTRAL arrays).  A parameters schema using a
 * keyword the grammar does not support constrains that tool's arguments
 * to any JSON object (the model still sees the whole schema).
 * LAMINA_EINVAL (named function not in tools), LAMINA_ENOMEM. */
int  lamina_tools_plan_make(enum lamina_tool_format f, json_t *tools, enum lamina_tool_choice choice,
                            const char *named, int parallel, lamina_tools_plan *out,
                            char *err, size_t err_size);
void lamina_tools_plan_clear(lamina_tools_plan *p);

#endif
