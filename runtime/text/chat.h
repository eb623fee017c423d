/*
 * chat.h - render a conversation into the prompt text a model was trained
 * on.  The text carries no BOS: the tokenizer adds it (encode with
 * LAMINA_TOKENIZE_ADD_SPECIAL | LAMINA_TOKENIZE_PARSE_SPECIAL).
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
 * "Trimmed" strips leading and trailing ASCII whitespace, as the Jinja
 * `trim` filter of those models' templates does for ASCII text.
 * Internal to liblamina.
 */
#ifndef LAMINA_CHAT_H
#define LAMINA_CHAT_H

#include <stddef.h>

#include "tokenizer.h"

enum lamina_chat_format {
    LAMINA_CHAT_UNKNOWN = 0,
    LAMINA_CHAT_GEMMA = 1,
    LAMINA_CHAT_LLAMA3 = 2,
    LAMINA_CHAT_CHATML = 3
};

typedef struct lamina_chat_msg {
    const char *role;     /* "system", "user", "assistant" (others, e.g. "tool", are written as given) */
    const char *content;  /* UTF-8, NUL-terminated */
} lamina_chat_msg;

/* The format named by a template's markers when template_text is not
 * NULL and recognised, else by architecture (gemma, gemma2, gemma3* ->
 * GEMMA; qwen2* -> CHATML; llama with a llama3 vocabulary cannot be told
 * from the name alone, so arch "llama3" only).  LAMINA_CHAT_UNKNOWN when
 * neither says. */
enum lamina_chat_format lamina_chat_format_detect(const char *template_text, const char *arch);

/* Same, from what the tokenizer loaded (tokenizer.chat_template and
 * general.architecture); a vocabulary holding <|start_header_id|> or
 * <|im_start|> also decides. */
enum lamina_chat_format lamina_chat_format_for(const lamina_tokenizer *t);

/* "gemma", "llama3", "chatml", "unknown" (static). */
const char *lamina_chat_format_name(enum lamina_chat_format f);
/* Parse a name as above; LAMINA_CHAT_UNKNOWN if not one. */
enum lamina_chat_format lamina_chat_format_from_name(const char *name);

/* Render n messages (n may be 0), then the generation prompt when
 * add_generation_prompt.  *out is malloc'd, NUL-terminated, owned by the
 * caller; *out_len (may be NULL) its length.
 * LAMINA_EINVAL: unknown format, empty role, NULL content, or (GEMMA)
 * roles not alternating user/assistant; LAMINA_ENOMEM. */
int lamina_chat_render(enum lamina_chat_format f, const lamina_chat_msg *msgs, size_t n,
                       int add_generation_prompt, char **out, size_t *out_len,
                       char *err, size_t err_size);

#endif
