/*
 * chat.h - render a conversation into the prompt text a model was trained
 * on.  The text carries no BOS: the tokenizer adds it (encode with
 * LAMINA_TOKENIZE_ADD_SPECIAL | LAMINA_TOKENIZE_PARSE_SPECIAL).
 *
 * A model file with a chat template (tokenizer.chat_template) is rendered
 * with it, by lamina's Jinja interpreter (jinja.h), as Hugging Face
 * transformers renders it: messages, add_generation_prompt, bos_token and
 * eos_token (the vocabulary's), tools (None unless a request has tools the
 * template takes), enable_thinking when a request says.  A leading BOS text is cut
 * when the tokenizer adds BOS itself.  When the interpreter refuses the
 * template, or the template fails on a conversation and a built-in format
 * suits the model, the built-in format renders it; a one-line reason is
 * logged.  Files without a template use a built-in format:
 *
 * Formats (what each renders, per message; content as given unless noted):
 *   GEMMA  "<start_of_turn>{user|model}\n{content, trimmed}<end_of_turn>\n";
 *          a leading system message is not a turn: its content + "\n\n"
 *          is put before the first user message's content.  Roles must
 *          alternate user/assistant starting with user.
 *          Generation prompt: "<start_of_turn>model\n".
 *   LLAMA3 "<|start_header_id|>{role}<|end_header_id|>\n\n{content, trimmed}<|eot_id|>"
 *          Generation prompt: "<|start_header_id|>assistant<|end_header_id|>\n\n".
 *   CHATML "<|im_start|>{role}\n{content}<|im_end|>\n"  (Qwen2 and others)
 *          Generation prompt: "<|im_start|>assistant\n".
 *   MISTRAL user: "[INST] {content} [/INST]", assistant: "{content}</s>"
 *          (Mistral 7B Instruct); a leading system message's content +
 *          "\n\n" goes before the first user message's content.  Roles must
 *          alternate user/assistant starting with user.  No generation
 *          prompt (the model answers after [/INST]).
 *   PHI3   "<|{system|user|assistant}|>\n{content}<|end|>\n" (an empty
 *          system message and other roles are left out).
 *          Generation prompt: "<|assistant|>\n".
 * "Trimmed" strips leading and trailing ASCII whitespace, as the Jinja
 * `trim` filter of those models' templates does for ASCII text.
 * Internal to liblamina.
 */
#ifndef LAMINA_CHAT_H
#define LAMINA_CHAT_H

#include <stddef.h>

#include <jansson.h>

#include "log.h"
#include "reply.h"
#include "tokenizer.h"

enum lamina_chat_format {
    LAMINA_CHAT_UNKNOWN = 0,
    LAMINA_CHAT_GEMMA = 1,
    LAMINA_CHAT_LLAMA3 = 2,
    LAMINA_CHAT_CHATML = 3,
    LAMINA_CHAT_MISTRAL = 4,
    LAMINA_CHAT_PHI3 = 5
};

typedef struct lamina_chat_msg {
    const char *role;     /* "system", "user", "assistant" (others, e.g. "tool", are written as given) */
    const char *content;  /* UTF-8, NUL-terminated */
} lamina_chat_msg;

/* The built-in format named by a template's markers when template_text is
 * not NULL and recognised, else by architecture (gemma, gemma2, gemma3* ->
 * GEMMA; qwen2*, qwen3* -> CHATML; phi3 -> PHI3; llama with a llama3
 * vocabulary cannot be told from the name alone, so arch "llama3" only).
 * LAMINA_CHAT_UNKNOWN when neither says. */
enum lamina_chat_format lamina_chat_format_detect(const char *template_text, const char *arch);

/* Same, from what the tokenizer loaded (tokenizer.chat_template and
 * general.architecture); a vocabulary holding <start_of_turn>,
 * <|start_header_id|>, <|im_start|>, [INST] or <|user|> also decides. */
enum lamina_chat_format lamina_chat_format_for(const lamina_tokenizer *t);

/* "gemma", "llama3", "chatml", "mistral", "phi3", "unknown" (static). */
const char *lamina_chat_format_name(enum lamina_chat_format f);
/* Parse a name as above; LAMINA_CHAT_UNKNOWN if not one. */
enum lamina_chat_format lamina_chat_format_from_name(const char *name);

/* Render n messages (n may be 0) in a built-in format, then the generation
 * prompt when add_generation_prompt.  *out is malloc'd, NUL-terminated,
 * owned by the caller; *out_len (may be NULL) its length.
 * LAMINA_EINVAL: unknown format, empty role, NULL content, or (GEMMA,
 * MISTRAL) roles not alternating user/assistant; LAMINA_ENOMEM. */
int lamina_chat_render(enum lamina_chat_format f, const lamina_chat_msg *msgs, size_t n,
                       int add_generation_prompt, char **out, size_t *out_len,
                       char *err, size_t err_size);

/* ---- a model's chat: its template, or a built-in format ---------------- */

typedef struct lamina_chat lamina_chat;

/* The chat of the model whose tokenizer is t: its own template when it has
 * one the interpreter accepts, and the built-in format
 * lamina_chat_format_for(t) as the fallback.  A refused template is logged
 * through lg (may be NULL).  Neither is not an error: the chat is then
 * unavailable (lamina_chat_available() 0).  Returns 0 or LAMINA_ENOMEM. */
int lamina_chat_open(const lamina_tokenizer *t, const lamina_logger *lg, lamina_chat **out,
                     char *err, size_t err_size);

/* The same from parts: template_text (may be NULL), the BOS and EOS texts
 * (NULL: ""), whether a leading BOS text is cut (the tokenizer adds BOS),
 * the fallback format. */
int lamina_chat_open_with(const char *template_text, const char *bos, const char *eos,
                          int cut_bos, enum lamina_chat_format fallback,
                          const lamina_logger *lg, lamina_chat **out, char *err, size_t err_size);

void lamina_chat_close(lamina_chat *c);

/* 1 when the chat can render (a template or a built-in format) */
int lamina_chat_available(const lamina_chat *c);
/* 1 when the model's own template renders */
int lamina_chat_uses_template(const lamina_chat *c);
/* the built-in format (LAMINA_CHAT_UNKNOWN when none) */
enum lamina_chat_format lamina_chat_fallback(const lamina_chat *c);
/* "model's own" (template), or the built-in format's name (static) */
const char *lamina_chat_describe(const lamina_chat *c);

/* How the model's template writes tool calls: GENERIC when it takes no
 * tools lamina can parse (or there is no template). */
enum lamina_tool_format lamina_chat_tool_format(const lamina_chat *c);
/* 1 when the model's template thinks (<think> blocks, enable_thinking). */
int lamina_chat_thinks(const lamina_chat *c);

typedef struct lamina_chat_opts {
    int add_generation_prompt;
    json_t *tools;             /* an array shown to a template that takes
                                  tools (lamina_chat_tool_format not
                                  GENERIC), or NULL */
    const char *tools_system;  /* GENERIC: text for the system message (the
                                  tools and the reply format), or NULL */
    int think;                 /* < 0: the template's default; 0 or 1: the
                                  template's enable_thinking */
    json_t *kwargs;            /* more template variables (an object, as
                                  llama-server's chat_template_kwargs), or NULL */
} lamina_chat_opts;

/* Render a conversation given as JSON: an array of {"role", "content"
 * (string or null), and optionally "tool_calls" ([{"id", "type":
 * "function", "function": {"name", "arguments": {...}}}]), "tool_call_id",
 * "name" (of a tool result), "reasoning_content"}, as Hugging Face
 * templates take them.  A template that takes tools renders them itself;
 * otherwise (GENERIC) a call is written into the assistant's content as
 * {"tool_calls": [...]}, a tool result becomes a user message
 * {"tool_response": {"name", "content"}} (joined to an adjacent user
 * message, so user and assistant still alternate), and tools_system goes
 * into the system message.  o NULL: a generation prompt, no tools.
 * Errors as lamina_chat_apply. */
int lamina_chat_apply_json(const lamina_chat *c, json_t *messages, const lamina_chat_opts *o,
                           char **out, size_t *out_len, char *err, size_t err_size);

/* Render as lamina_chat_render does, with the template when there is one.
 * Errors: LAMINA_EINVAL (no chat, bad messages, or the template failed on
 * them and no built-in format could; err says why), LAMINA_ERANGE (the
 * template passed a limit), LAMINA_ENOMEM. */
int lamina_chat_apply(const lamina_chat *c, const lamina_chat_msg *msgs, size_t n,
                      int add_generation_prompt, char **out, size_t *out_len,
                      char *err, size_t err_size);

#endif
