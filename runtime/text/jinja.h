/*
 * jinja.h - a Jinja2 interpreter for chat templates (tokenizer.chat_template).
 *
 * No maintained C Jinja library exists, so lamina has its own.  It renders
 * the subset of Jinja2 that real chat templates use, byte for byte as
 * Python's jinja2 does in the environment Hugging Face transformers builds
 * for apply_chat_template: an ImmutableSandboxedEnvironment with
 * trim_blocks and lstrip_blocks, the loopcontrols extension ({% break %},
 * {% continue %}), the {% generation %} tag, raise_exception(msg) and
 * strftime_now(fmt) as globals and a tojson filter that is json.dumps with
 * ensure_ascii=False.  Values behave as Python's (str, int, float, bool,
 * None, list, tuple, dict, jinja2's Undefined and Namespace, markupsafe's
 * Markup from |safe); list and dict methods that modify are refused at run
 * time as the sandbox refuses them.
 *
 * A template using a construct outside the subset (a tag, filter, test,
 * method or global jinja2 has but lamina does not) is refused when parsed,
 * with its line: "template line 12: filter 'xmlattr' is not supported".
 *
 * Templates are untrusted: parsing bounds nesting, rendering bounds the
 * recursion depth, the work done, the memory used and the output size, and
 * fails cleanly (never crashes) when one is passed.
 *
 * Internal to liblamina; thread-safe (a parsed template is read-only while
 * rendering; each render has its own memory).
 */
#ifndef LAMINA_JINJA_H
#define LAMINA_JINJA_H

#include <stddef.h>
#include <time.h>

typedef struct lamina_jinja lamina_jinja;

/* Parse template source (UTF-8, len bytes, need not be NUL-terminated).
 * Returns 0 and *out, or LAMINA_EINVAL (syntax error), LAMINA_ENOTSUP
 * (outside the subset; err names the construct and line) or LAMINA_ENOMEM. */
int lamina_jinja_parse(const char *src, size_t len, lamina_jinja **out, char *err, size_t err_size);

void lamina_jinja_free(lamina_jinja *t);

typedef struct lamina_jinja_limits {
    size_t max_output;   /* bytes of output (and of any captured block); 0: 16 MiB */
    size_t max_memory;   /* bytes of memory for values; 0: 256 MiB */
    size_t max_steps;    /* statements, loop iterations and calls; 0: 20 million */
    int max_depth;       /* nested macro calls; 0: 200 */
} lamina_jinja_limits;

/* Render with the variables of a JSON object (ctx_json, ctx_len bytes; NULL
 * or empty: no variables).  JSON maps to Python values as json.loads does.
 * now: what strftime_now() formats (NULL: the local time).  limits may be
 * NULL.  *out is malloc'd and NUL-terminated, *out_len (may be NULL) its
 * length.  Errors: LAMINA_EINVAL (bad context JSON, or the template failed:
 * raise_exception, undefined attribute, type error...; err says which and
 * where), LAMINA_ERANGE (a limit was passed), LAMINA_ENOMEM. */
int lamina_jinja_render(const lamina_jinja *t, const char *ctx_json, size_t ctx_len,
                        const struct tm *now, const lamina_jinja_limits *limits,
                        char **out, size_t *out_len, char *err, size_t err_size);

/* Append s (n bytes) to *buf as a JSON string literal with quotes
 * (growable buffer: *buf malloc'd or NULL, *len bytes used, *cap capacity).
 * Returns 0 or LAMINA_ENOMEM.  A helper for callers building ctx_json. */
int lamina_jinja_json_str(char **buf, size_t *len, size_t *cap, const char *s, size_t n);

#endif
