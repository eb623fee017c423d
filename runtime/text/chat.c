/* chat.c - chat templates (see chat.h for what each format renders). */
#include "config.h"

#include "chat.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/plugin.h"

static int fail(char *err, size_t err_size, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t err_size, int code, const char *fmt, ...)
{
    if (err != NULL && err_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *lamina_chat_format_name(enum lamina_chat_format f)
{
    switch (f) {
    case LAMINA_CHAT_GEMMA: return "gemma";
    case LAMINA_CHAT_LLAMA3: return "llama3";
    case LAMINA_CHAT_CHATML: return "chatml";
    default: return "unknown";
    }
}

enum lamina_chat_format lamina_chat_format_from_name(const char *name)
{
    if (name == NULL)
        return LAMINA_CHAT_UNKNOWN;
    for (int f = LAMINA_CHAT_GEMMA; f <= LAMINA_CHAT_CHATML; f++)
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
    }
    /* Step 2: the architecture. */
    if (arch != NULL) {
        if (!strncmp(arch, "gemma", 5))
            return LAMINA_CHAT_GEMMA;
        if (!strcmp(arch, "llama3"))
            return LAMINA_CHAT_LLAMA3;
        if (!strncmp(arch, "qwen2", 5) || !strncmp(arch, "qwen3", 5))
            return LAMINA_CHAT_CHATML;
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
    };
    for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++)
        if (lamina_tokenizer_find(t, marks[i].marker, strlen(marks[i].marker)) != LAMINA_TOKEN_NONE)
            return marks[i].f;
    return LAMINA_CHAT_UNKNOWN;
}

/* Growable string. */
struct sbuf {
    char *p;
    size_t n, cap;
    int oom;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (n > SIZE_MAX / 2 - b->n - 1) {
        b->oom = 1;
        return;
    }
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->n + n + 1)
            nc *= 2;
        char *np = realloc(b->p, nc);
        if (np == NULL) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void sb_str(struct sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* content with leading and trailing whitespace removed */
static void sb_trimmed(struct sbuf *b, const char *s)
{
    size_t n = strlen(s), i = 0;
    while (i < n && is_ws(s[i]))
        i++;
    while (n > i && is_ws(s[n - 1]))
        n--;
    sb_add(b, s + i, n - i);
}

static void render_gemma(struct sbuf *b, const lamina_chat_msg *m, size_t n, int gen)
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
        sb_str(b, "<start_of_turn>");
        sb_str(b, role);
        sb_str(b, "\n");
        if (i == first && prefix != NULL) {
            sb_str(b, prefix);
            sb_str(b, "\n\n");
        }
        sb_trimmed(b, m[i].content);
        sb_str(b, "<end_of_turn>\n");
    }
    if (gen)
        sb_str(b, "<start_of_turn>model\n");
}

static void render_llama3(struct sbuf *b, const lamina_chat_msg *m, size_t n, int gen)
{
    for (size_t i = 0; i < n; i++) {
        sb_str(b, "<|start_header_id|>");
        sb_str(b, m[i].role);
        sb_str(b, "<|end_header_id|>\n\n");
        sb_trimmed(b, m[i].content);
        sb_str(b, "<|eot_id|>");
    }
    if (gen)
        sb_str(b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

static void render_chatml(struct sbuf *b, const lamina_chat_msg *m, size_t n, int gen)
{
    for (size_t i = 0; i < n; i++) {
        sb_str(b, "<|im_start|>");
        sb_str(b, m[i].role);
        sb_str(b, "\n");
        sb_str(b, m[i].content);
        sb_str(b, "<|im_end|>\n");
    }
    if (gen)
        sb_str(b, "<|im_start|>assistant\n");
}

int lamina_chat_render(enum lamina_chat_format f, const lamina_chat_msg *msgs, size_t n,
                       int add_generation_prompt, char **out, size_t *out_len,
                       char *err, size_t err_size)
{
    struct sbuf b = {0};

    if (out == NULL || (msgs == NULL && n > 0))
        return fail(err, err_size, LAMINA_EINVAL, "chat: NULL argument");
    *out = NULL;
    if (f != LAMINA_CHAT_GEMMA && f != LAMINA_CHAT_LLAMA3 && f != LAMINA_CHAT_CHATML)
        return fail(err, err_size, LAMINA_EINVAL, "chat: unknown chat format %d", (int)f);
    /* Step 1: validate the messages. */
    for (size_t i = 0; i < n; i++) {
        if (msgs[i].role == NULL || msgs[i].role[0] == 0 || msgs[i].content == NULL)
            return fail(err, err_size, LAMINA_EINVAL, "chat: message %zu has no role or content", i);
    }
    if (f == LAMINA_CHAT_GEMMA) {
        /* After an optional leading system message: user, assistant, user, ... */
        size_t first = (n > 0 && !strcmp(msgs[0].role, "system")) ? 1 : 0;
        for (size_t i = first; i < n; i++) {
            int is_user = !strcmp(msgs[i].role, "user");
            int want_user = (i - first) % 2 == 0;
            if (is_user != want_user ||
                (!want_user && strcmp(msgs[i].role, "assistant") != 0))
                return fail(err, err_size, LAMINA_EINVAL,
                            "chat: gemma needs roles alternating user/assistant; message %zu is '%s'",
                            i, msgs[i].role);
        }
    }
    /* Step 2: render. */
    sb_add(&b, "", 0);
    switch (f) {
    case LAMINA_CHAT_GEMMA: render_gemma(&b, msgs, n, add_generation_prompt); break;
    case LAMINA_CHAT_LLAMA3: render_llama3(&b, msgs, n, add_generation_prompt); break;
    default: render_chatml(&b, msgs, n, add_generation_prompt); break;
    }
    if (b.oom) {
        free(b.p);
        return fail(err, err_size, LAMINA_ENOMEM, "chat: out of memory");
    }
    *out = b.p;
    if (out_len)
        *out_len = b.n;
    return 0;
}
