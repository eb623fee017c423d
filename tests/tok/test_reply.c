/* test_reply.c - what a chat reply holds besides its answer
 * (runtime/text/reply.c): the tool call format told from a template, the
 * streaming parser's content, thinking and tool calls in each format, and
 * the plan (grammar, prefill, system text) for a request with tools.
 *
 * Every parser case runs three ways: the text fed at once, byte by byte,
 * and in pseudo-random pieces (several splits); each way must give the
 * same content, thinking and calls, and the deltas must add up to what
 * lamina_reply_content/thinking/n_calls say at the end.
 *
 *   test_reply --write-seeds DIR   write the cases as a corpus for
 *                                  tests/fuzz/fuzz_reply (option byte, text)
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "grammar.h"
#include "lamina/plugin.h"
#include "reply.h"
#include "tap.h"

#define MAX_CALLS 8
#define N_SPLITS 8

/* ---- growing buffer ------------------------------------------------------ */

struct buf {
    char *p;
    size_t n, cap;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
    if (n == 0)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL)
            abort();
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static const char *buf_str(const struct buf *b)
{
    return b->p ? b->p : "";
}

/* ---- one parser run ------------------------------------------------------ */

enum feed_mode { WHOLE, BYTES, PIECES };
static const char *const mode_name[] = {"whole", "bytes", "pieces"};

struct got {
    struct buf content, thinking;
    size_t n_calls;
    char *name[MAX_CALLS], *args[MAX_CALLS], *id[MAX_CALLS];
};

static void got_clear(struct got *g)
{
    free(g->content.p);
    free(g->thinking.p);
    for (size_t i = 0; i < g->n_calls && i < MAX_CALLS; i++) {
        free(g->name[i]);
        free(g->args[i]);
        free(g->id[i]);
    }
    memset(g, 0, sizeof *g);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static uint32_t rng_next(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* Add one delta to the running totals; check its call range continues the
 * calls already seen. */
static int take_delta(const lamina_reply_delta *d, struct buf *dc, struct buf *dt, size_t *calls_seen,
                      char *why, size_t wsz)
{
    if ((d->content_len && d->content == NULL) || (d->thinking_len && d->thinking == NULL)) {
        snprintf(why, wsz, "delta with a length but no text");
        return -1;
    }
    buf_add(dc, d->content, d->content_len);
    buf_add(dt, d->thinking, d->thinking_len);
    if (d->n_calls) {
        if (d->first_call != *calls_seen) {
            snprintf(why, wsz, "delta first_call %zu, %zu calls seen before", d->first_call, *calls_seen);
            return -1;
        }
        *calls_seen += d->n_calls;
    }
    return 0;
}

/* Parse text with opts, split by mode; fill g with the end state.  0, or -1
 * with why set when the API or the delta invariants fail. */
static int parse_run(const lamina_reply_opts *o, const char *text, size_t len, enum feed_mode mode,
                     uint32_t seed, struct got *g, char *why, size_t wsz)
{
    memset(g, 0, sizeof *g);
    lamina_reply *r = NULL;
    char err[256] = "";
    int rc = lamina_reply_create(o, &r, err, sizeof err);
    if (rc != 0 || r == NULL) {
        snprintf(why, wsz, "create: rc %d: %s", rc, err);
        return -1;
    }
    struct buf dc = {0}, dt = {0};
    size_t calls_seen = 0;
    uint32_t s = seed * 2654435761u + 1;
    size_t at = 0;
    int bad = 0;
    lamina_reply_delta d;
    while (at < len && !bad) {
        size_t n = len - at;
        if (mode == BYTES)
            n = 1;
        else if (mode == PIECES) {
            uint32_t x = rng_next(&s);
            size_t want = (x & 3) == 0 ? 1 + (x >> 8) % 24 : 1 + (x >> 8) % 5;
            if (want < n)
                n = want;
        }
        memset(&d, 0xa5, sizeof d);
        rc = lamina_reply_feed(r, text + at, n, &d);
        if (rc != 0) {
            snprintf(why, wsz, "feed at %zu: rc %d", at, rc);
            bad = 1;
        } else if (take_delta(&d, &dc, &dt, &calls_seen, why, wsz) != 0)
            bad = 1;
        at += n;
    }
    if (!bad) {
        memset(&d, 0xa5, sizeof d);
        rc = lamina_reply_finish(r, &d);
        if (rc != 0) {
            snprintf(why, wsz, "finish: rc %d", rc);
            bad = 1;
        } else if (take_delta(&d, &dc, &dt, &calls_seen, why, wsz) != 0)
            bad = 1;
    }
    if (!bad) {
        size_t cl = 12345, tl = 12345;
        const char *c = lamina_reply_content(r, &cl);
        const char *t = lamina_reply_thinking(r, &tl);
        g->n_calls = lamina_reply_n_calls(r);
        if (c == NULL || t == NULL || c[cl] != 0 || t[tl] != 0) {
            snprintf(why, wsz, "content (%zu bytes) or thinking (%zu bytes) NULL or not NUL-terminated%s%s", cl,
                     tl, c && c[cl] ? ": content holds more" : "", t && t[tl] ? ": thinking holds more" : "");
            bad = 1;
        } else if (cl != dc.n || memcmp(c, buf_str(&dc), cl) != 0) {
            snprintf(why, wsz, "delta content '%s' != content '%s'", buf_str(&dc), c);
            bad = 1;
        } else if (tl != dt.n || memcmp(t, buf_str(&dt), tl) != 0) {
            snprintf(why, wsz, "delta thinking '%s' != thinking '%s'", buf_str(&dt), t);
            bad = 1;
        } else if (calls_seen != g->n_calls) {
            snprintf(why, wsz, "deltas gave %zu calls, n_calls %zu", calls_seen, g->n_calls);
            bad = 1;
        } else if (g->n_calls > MAX_CALLS) {
            snprintf(why, wsz, "%zu calls", g->n_calls);
            bad = 1;
        } else if (lamina_reply_call(r, g->n_calls) != NULL) {
            snprintf(why, wsz, "lamina_reply_call(n_calls) not NULL");
            bad = 1;
        } else {
            buf_add(&g->content, c, cl);
            buf_add(&g->thinking, t, tl);
            for (size_t i = 0; i < g->n_calls; i++) {
                const lamina_tool_call *tc = lamina_reply_call(r, i);
                if (tc == NULL || tc->name == NULL || tc->arguments == NULL) {
                    snprintf(why, wsz, "call %zu NULL or without name/arguments", i);
                    g->n_calls = i;
                    bad = 1;
                    break;
                }
                g->name[i] = strdup(tc->name);
                g->args[i] = strdup(tc->arguments);
                g->id[i] = dup_or_null(tc->id);
            }
        }
        /* a finished parser takes no more text */
        if (!bad && lamina_reply_feed(r, "x", 1, &d) != LAMINA_EINVAL) {
            snprintf(why, wsz, "feed after finish not LAMINA_EINVAL");
            bad = 1;
        }
    }
    free(dc.p);
    free(dt.p);
    lamina_reply_free(r);
    return bad ? -1 : 0;
}

/* ---- cases ----------------------------------------------------------------- */

struct want_call {
    const char *name, *args, *id;   /* args: JSON, compared as values */
};

typedef struct rcase {
    const char *what;
    int tools;
    enum lamina_tool_format format;
    int thinking;
    const char *prefill;
    const char *text;
    const char *content;        /* exact (NULL: not checked) */
    int trim;                   /* compare content without surrounding whitespace */
    const char *content_has;    /* a substring content must hold */
    const char *content_lacks;  /* one it must not */
    const char *thinking_is;    /* exact; NULL: "" */
    size_t n_calls;
    struct want_call calls[MAX_CALLS];
} rcase;

static int json_same(const char *a, const char *b)
{
    json_t *x = json_loads(a, JSON_DECODE_ANY, NULL);
    json_t *y = json_loads(b, JSON_DECODE_ANY, NULL);
    int same = x && y && json_equal(x, y);
    json_decref(x);
    json_decref(y);
    return same;
}

static int trimmed_eq(const char *s, const char *want)
{
    const char *ws = " \t\r\n";
    while (*s && strchr(ws, *s))
        s++;
    size_t n = strlen(s);
    while (n && strchr(ws, s[n - 1]))
        n--;
    return n == strlen(want) && memcmp(s, want, n) == 0;
}

/* Compare g with c; -1 with why on a difference. */
static int compare(const rcase *c, const struct got *g, char *why, size_t wsz)
{
    const char *content = buf_str(&g->content);
    if (c->content && (c->trim ? !trimmed_eq(content, c->content) : strcmp(content, c->content) != 0)) {
        snprintf(why, wsz, "content '%s', want '%s'%s", content, c->content, c->trim ? " (trimmed)" : "");
        return -1;
    }
    if (c->content_has && strstr(content, c->content_has) == NULL) {
        snprintf(why, wsz, "content '%s' lacks '%s'", content, c->content_has);
        return -1;
    }
    if (c->content_lacks && strstr(content, c->content_lacks) != NULL) {
        snprintf(why, wsz, "content '%s' holds '%s'", content, c->content_lacks);
        return -1;
    }
    const char *tw = c->thinking_is ? c->thinking_is : "";
    if (strcmp(buf_str(&g->thinking), tw) != 0) {
        snprintf(why, wsz, "thinking '%s', want '%s'", buf_str(&g->thinking), tw);
        return -1;
    }
    if (g->n_calls != c->n_calls) {
        snprintf(why, wsz, "%zu calls, want %zu (content '%s')", g->n_calls, c->n_calls, content);
        return -1;
    }
    for (size_t i = 0; i < g->n_calls; i++) {
        const struct want_call *w = &c->calls[i];
        if (strcmp(g->name[i], w->name) != 0) {
            snprintf(why, wsz, "call %zu name '%s', want '%s'", i, g->name[i], w->name);
            return -1;
        }
        if (!json_same(g->args[i], w->args)) {
            snprintf(why, wsz, "call %zu arguments '%s', want %s", i, g->args[i], w->args);
            return -1;
        }
        if ((w->id == NULL) != (g->id[i] == NULL) || (w->id && strcmp(w->id, g->id[i]) != 0)) {
            snprintf(why, wsz, "call %zu id '%s', want '%s'", i, g->id[i] ? g->id[i] : "(null)",
                     w->id ? w->id : "(null)");
            return -1;
        }
    }
    return 0;
}

static lamina_reply_opts opts_of(const rcase *c)
{
    lamina_reply_opts o = {.tools = c->tools, .format = c->format, .thinking = c->thinking,
                           .prefill = c->prefill};
    return o;
}

/* s with control bytes as C escapes, for one-line diagnostics */
static const char *esc(const char *s)
{
    static char out[2048];
    size_t o = 0;
    for (; *s && o + 5 < sizeof out; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '\n')
            o += (size_t)snprintf(out + o, sizeof out - o, "\\n");
        else if (ch < 0x20 || ch == 0x7f)
            o += (size_t)snprintf(out + o, sizeof out - o, "\\x%02x", ch);
        else
            out[o++] = (char)ch;
    }
    out[o] = 0;
    return out;
}

/* One case, three ways: one ok each. */
static void run(const rcase *c)
{
    lamina_reply_opts o = opts_of(c);
    size_t len = strlen(c->text);
    for (int mode = WHOLE; mode <= PIECES; mode++) {
        char why[1024] = "";
        int good = 1;
        int splits = mode == PIECES ? N_SPLITS : 1;
        for (int k = 0; k < splits && good; k++) {
            struct got g;
            if (parse_run(&o, c->text, len, (enum feed_mode)mode, (uint32_t)k + 1, &g, why, sizeof why) != 0 ||
                compare(c, &g, why, sizeof why) != 0) {
                good = 0;
                if (mode == PIECES) {
                    size_t wl = strlen(why);
                    snprintf(why + wl, sizeof why - wl, " [split seed %d]", k + 1);
                }
            }
            got_clear(&g);
        }
        ok(good, "%s [%s]", c->what, mode_name[mode]);
        if (!good)
            diag("%s", esc(why));
    }
}

#define H LAMINA_TOOLS_HERMES
#define L LAMINA_TOOLS_LLAMA3
#define M LAMINA_TOOLS_MISTRAL
#define G LAMINA_TOOLS_GENERIC

static const rcase cases[] = {
    /* ---- nothing to split --------------------------------------------- */
    {.what = "tools and thinking off: text passes unchanged", .format = H,
     .text = "Hi <tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call> <think>x</think> [TOOL_CALLS]",
     .content = "Hi <tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call> <think>x</think> [TOOL_CALLS]"},
    {.what = "tools and thinking off: leading <think> is content", .format = H,
     .text = "<think>x</think>\n\ny", .content = "<think>x</think>\n\ny"},
    {.what = "tools and thinking off: UTF-8 passes unchanged", .format = G,
     .text = "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", .content = "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"},
    {.what = "tools off, format LLAMA3: JSON reply is content", .format = L,
     .text = "{\"name\": \"f\", \"parameters\": {}}", .content = "{\"name\": \"f\", \"parameters\": {}}"},
    {.what = "empty reply", .tools = 1, .format = H, .thinking = 1, .text = "", .content = ""},

    /* ---- thinking ------------------------------------------------------ */
    {.what = "thinking: <think> block then content", .format = H, .thinking = 1,
     .text = "<think>\nabc\n</think>\n\nHello", .thinking_is = "\nabc\n", .content = "Hello"},
    {.what = "thinking: whitespace before <think>", .format = H, .thinking = 1,
     .text = " \n\t<think>abc</think>Hi", .thinking_is = "abc", .content = "Hi", .trim = 1},
    {.what = "thinking: prefill <think> makes the reply thinking", .format = H, .thinking = 1,
     .prefill = "<think>\n", .text = "abc</think>Hi", .thinking_is = "abc", .content = "Hi"},
    {.what = "thinking: prefill ending inside a block after other text", .format = H, .thinking = 1,
     .prefill = "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c" "><think>\n", .text = "abc</think>\nHi", .thinking_is = "abc",
     .content = "Hi"},
    {.what = "thinking: prefill <think>, empty thinking", .format = H, .thinking = 1,
     .prefill = "<think>\n", .text = "</think>\n\nHi", .content = "Hi"},
    {.what = "thinking: prefill with a closed block is not thinking", .format = H, .thinking = 1,
     .prefill = "<think>\n\n</think>\n\n", .text = "Hi", .content = "Hi"},
    {.what = "thinking: reply ending inside the block is all thinking", .format = H, .thinking = 1,
     .text = "<think>abc", .thinking_is = "abc", .content = ""},
    {.what = "thinking: prefill and no </think> is all thinking", .format = H, .thinking = 1,
     .prefill = "<think>\n", .text = "abc </thi", .thinking_is = "abc </thi", .content = ""},
    {.what = "thinking: <think> after text is content", .format = H, .thinking = 1,
     .text = "Hi <think>x</think> there", .content = "Hi <think>x</think> there"},
    {.what = "thinking: no block is content", .format = H, .thinking = 1, .text = "Hello", .content = "Hello"},
    {.what = "thinking: empty block", .format = H, .thinking = 1, .text = "<think></think>Hi",
     .content = "Hi"},
    {.what = "thinking: a partial <think> at the end is content", .format = H, .thinking = 1,
     .text = "<thi", .content = "<thi"},
    {.what = "thinking: <thinker> is not a block", .format = H, .thinking = 1, .text = "<thinker>x",
     .content = "<thinker>x"},
    {.what = "thinking: a second <think> is content", .format = H, .thinking = 1,
     .text = "<think>a</think>b<think>c</think>", .thinking_is = "a", .content = "b<think>c</think>"},
    {.what = "thinking: UTF-8 inside and after the block", .format = H, .thinking = 1,
     .text = "<think>\xc3\xa9\xe2\x82\xac</think>\xf0\x9f\x98\x80", .thinking_is = "\xc3\xa9\xe2\x82\xac",
     .content = "\xf0\x9f\x98\x80"},
    {.what = "thinking: then a HERMES call", .tools = 1, .format = H, .thinking = 1,
     .text = "<think>plan</think>\n\n<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}}\n</tool_call>",
     .thinking_is = "plan", .content = "", .trim = 1, .n_calls = 1, .calls = {{"f", "{\"a\":1}", NULL}}},
    {.what = "thinking: a call inside the block is thinking", .tools = 1, .format = H, .thinking = 1,
     .text = "<think><tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call></think>Done",
     .thinking_is = "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>", .content = "Done"},
    {.what = "thinking: then a GENERIC response", .tools = 1, .format = G, .thinking = 1,
     .text = "<think>x</think>{\"response\": \"Hi\"}", .thinking_is = "x", .content = "Hi"},

    /* ---- HERMES -------------------------------------------------------- */
    {.what = "HERMES: text then one call", .tools = 1, .format = H,
     .text = "Sure.<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
     .content = "Sure.", .trim = 1, .content_lacks = "tool_call", .n_calls = 1,
     .calls = {{"get_weather", "{\"city\": \"Paris\"}", NULL}}},
    {.what = "HERMES: two calls back to back", .tools = 1, .format = H,
     .text = "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}}\n</tool_call>\n"
             "<tool_call>\n{\"name\": \"g\", \"arguments\": {\"b\": [true, null]}}\n</tool_call>",
     .content = "", .trim = 1, .n_calls = 2,
     .calls = {{"f", "{\"a\": 1}", NULL}, {"g", "{\"b\": [true, null]}", NULL}}},
    {.what = "HERMES: text between and after calls", .tools = 1, .format = H,
     .text = "A<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>B<tool_call>"
             "{\"name\": \"g\", \"arguments\": {}}</tool_call>C",
     .content_has = "A", .content_lacks = "tool_call", .n_calls = 2,
     .calls = {{"f", "{}", NULL}, {"g", "{}", NULL}}},
    {.what = "HERMES: no call is plain content", .tools = 1, .format = H,
     .text = "a < b <tool and <tool_cal> x", .content = "a < b <tool and <tool_cal> x"},
    {.what = "HERMES: a partial marker at the end is content", .tools = 1, .format = H,
     .text = "x <tool_c", .content = "x <tool_c"},
    {.what = "HERMES: malformed block is content", .tools = 1, .format = H,
     .text = "<tool_call>\n{not json}\n</tool_call>", .content_has = "<tool_call>\n{not json}\n</tool_call>"},
    {.what = "HERMES: malformed block kept, good call found", .tools = 1, .format = H,
     .text = "<tool_call>\n{not json}\n</tool_call>\n<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>",
     .content_has = "{not json}", .n_calls = 1, .calls = {{"f", "{}", NULL}}},
    {.what = "HERMES: arguments not an object is content", .tools = 1, .format = H,
     .text = "<tool_call>\n{\"name\": \"f\", \"arguments\": \"x\"}\n</tool_call>",
     .content_has = "{\"name\": \"f\", \"arguments\": \"x\"}"},
    {.what = "HERMES: arguments a number is content", .tools = 1, .format = H,
     .text = "<tool_call>\n{\"name\": \"f\", \"arguments\": 5}\n</tool_call>",
     .content_has = "{\"name\": \"f\", \"arguments\": 5}"},
    {.what = "HERMES: no name is content", .tools = 1, .format = H,
     .text = "<tool_call>\n{\"arguments\": {}}\n</tool_call>", .content_has = "{\"arguments\": {}}"},
    {.what = "HERMES: prefill <tool_call>, no closing tag: one call at finish", .tools = 1, .format = H,
     .prefill = "<tool_call>\n", .text = "{\"name\": \"f\", \"arguments\": {}}",
     .content = "", .trim = 1, .n_calls = 1, .calls = {{"f", "{}", NULL}}},
    {.what = "HERMES: prefill <tool_call>, closing tag", .tools = 1, .format = H,
     .prefill = "<tool_call>\n", .text = "{\"name\": \"f\", \"arguments\": {\"a\": \"x\"}}\n</tool_call>",
     .content = "", .trim = 1, .n_calls = 1, .calls = {{"f", "{\"a\": \"x\"}", NULL}}},
    {.what = "HERMES: prefill <tool_call>, bad JSON is content", .tools = 1, .format = H,
     .prefill = "<tool_call>\n", .text = "{bad", .content_has = "{bad"},
    {.what = "HERMES: UTF-8 in arguments", .tools = 1, .format = H,
     .text = "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"s\": \"\xc3\xa9\\u00e9\\n\"}}\n</tool_call>",
     .content = "", .trim = 1, .n_calls = 1, .calls = {{"f", "{\"s\": \"\xc3\xa9\xc3\xa9\\n\"}", NULL}}},

    /* ---- LLAMA3 -------------------------------------------------------- */
    {.what = "LLAMA3: one call", .tools = 1, .format = L,
     .text = "{\"name\": \"f\", \"parameters\": {\"x\": 1}}",
     .content = "", .trim = 1, .n_calls = 1, .calls = {{"f", "{\"x\": 1}", NULL}}},
    {.what = "LLAMA3: <|python_tag|> then a call", .tools = 1, .format = L,
     .text = "<|python_tag|>{\"name\": \"f\", \"parameters\": {\"x\": 1}}",
     .content = "", .trim = 1, .n_calls = 1, .calls = {{"f", "{\"x\": 1}", NULL}}},
    {.what = "LLAMA3: \"arguments\" taken too", .tools = 1, .format = L,
     .text = "{\"name\": \"f\", \"arguments\": {\"x\": 2}}",
     .content = "", .trim = 1, .n_calls = 1, .calls = {{"f", "{\"x\": 2}", NULL}}},
    {.what = "LLAMA3: two calls separated by ';'", .tools = 1, .format = L,
     .text = "{\"name\": \"f\", \"parameters\": {\"x\": 1}}; {\"name\": \"g\", \"parameters\": {}}",
     .content = "", .trim = 1, .n_calls = 2, .calls = {{"f", "{\"x\": 1}", NULL}, {"g", "{}", NULL}}},
    {.what = "LLAMA3: two calls separated by whitespace", .tools = 1, .format = L,
     .text = "{\"name\": \"f\", \"parameters\": {}}\n{\"name\": \"g\", \"parameters\": {}}\n",
     .content = "", .trim = 1, .n_calls = 2, .calls = {{"f", "{}", NULL}, {"g", "{}", NULL}}},
    {.what = "LLAMA3: text before JSON is content", .tools = 1, .format = L,
     .text = "Hello {\"name\": \"f\", \"parameters\": {}}",
     .content = "Hello {\"name\": \"f\", \"parameters\": {}}"},
    {.what = "LLAMA3: broken JSON is content", .tools = 1, .format = L, .text = "{broken",
     .content = "{broken"},
    {.what = "LLAMA3: plain text", .tools = 1, .format = L, .text = "Paris is sunny.",
     .content = "Paris is sunny."},
    {.what = "LLAMA3: JSON without name is content", .tools = 1, .format = L,
     .text = "{\"a\": 1}", .content = "{\"a\": 1}"},

    /* ---- MISTRAL ------------------------------------------------------- */
    {.what = "MISTRAL: array with id", .tools = 1, .format = M,
     .text = "[TOOL_CALLS][{\"name\": \"f\", \"arguments\": {\"a\": \"b\"}, \"id\": \"abc123def\"}]",
     .content = "", .trim = 1, .n_calls = 1, .calls = {{"f", "{\"a\": \"b\"}", "abc123def"}}},
    {.what = "MISTRAL: array of two", .tools = 1, .format = M,
     .text = "[TOOL_CALLS] [{\"name\": \"f\", \"arguments\": {}}, {\"name\": \"g\", \"arguments\": {\"n\": 2}}]",
     .content = "", .trim = 1, .n_calls = 2, .calls = {{"f", "{}", NULL}, {"g", "{\"n\": 2}", NULL}}},
    {.what = "MISTRAL: [TOOL_CALLS]N[ARGS]{...}", .tools = 1, .format = M,
     .text = "[TOOL_CALLS]f[ARGS]{\"a\": 1}",
     .content = "", .trim = 1, .n_calls = 1, .calls = {{"f", "{\"a\": 1}", NULL}}},
    {.what = "MISTRAL: [TOOL_CALLS]N[ARGS]{...} repeated", .tools = 1, .format = M,
     .text = "[TOOL_CALLS]f[ARGS]{\"a\": 1}[TOOL_CALLS]get_x[ARGS]{}",
     .content = "", .trim = 1, .n_calls = 2, .calls = {{"f", "{\"a\": 1}", NULL}, {"get_x", "{}", NULL}}},
    {.what = "MISTRAL: prefill [TOOL_CALLS]", .tools = 1, .format = M, .prefill = "[TOOL_CALLS]",
     .text = "[{\"name\": \"f\", \"arguments\": {}}]",
     .content = "", .trim = 1, .n_calls = 1, .calls = {{"f", "{}", NULL}}},
    {.what = "MISTRAL: bad JSON after [TOOL_CALLS] is content", .tools = 1, .format = M,
     .text = "[TOOL_CALLS][{bad json", .content_has = "[TOOL_CALLS][{bad json"},
    {.what = "MISTRAL: plain text", .tools = 1, .format = M, .text = "It is [sunny] today.",
     .content = "It is [sunny] today."},

    /* ---- GENERIC ------------------------------------------------------- */
    {.what = "GENERIC: tool_calls", .tools = 1, .format = G,
     .text = "{\"tool_calls\": [{\"name\": \"f\", \"arguments\": {\"q\": \"x\"}}]}",
     .content = "", .n_calls = 1, .calls = {{"f", "{\"q\": \"x\"}", NULL}}},
    {.what = "GENERIC: two tool_calls", .tools = 1, .format = G,
     .text = "{\"tool_calls\": [{\"name\": \"f\", \"arguments\": {}}, {\"name\": \"g\", \"arguments\": {\"z\": 0}}]}",
     .content = "", .n_calls = 2, .calls = {{"f", "{}", NULL}, {"g", "{\"z\": 0}", NULL}}},
    {.what = "GENERIC: response", .tools = 1, .format = G, .text = "{\"response\": \"Hi there\"}",
     .content = "Hi there"},
    {.what = "GENERIC: response with escapes and whitespace around", .tools = 1, .format = G,
     .text = " {\"response\": \"a\\nb \\u00e9\\\"\"}\n", .content = "a\nb \xc3\xa9\""},
    {.what = "GENERIC: text that is not JSON", .tools = 1, .format = G, .text = "Just text.",
     .content = "Just text."},
    {.what = "GENERIC: JSON of another shape is content", .tools = 1, .format = G,
     .text = "{\"answer\": 1}", .content = "{\"answer\": 1}"},
};

/* ---- streaming: what each feed gives ---------------------------------------- */

static int delta_is(const lamina_reply_delta *d, const char *content, const char *thinking)
{
    return d->content_len == strlen(content) && (d->content_len == 0 || !memcmp(d->content, content, d->content_len)) &&
           d->thinking_len == strlen(thinking) && (d->thinking_len == 0 || !memcmp(d->thinking, thinking, d->thinking_len));
}

static int all_space(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strchr(" \t\r\n", s[i]) || s[i] == 0)
            return 0;
    return 1;
}

static lamina_reply *make(int tools, enum lamina_tool_format f, int thinking, const char *prefill)
{
    lamina_reply_opts o = {.tools = tools, .format = f, .thinking = thinking, .prefill = prefill};
    lamina_reply *r = NULL;
    char err[256] = "";
    if (lamina_reply_create(&o, &r, err, sizeof err) != 0)
        diag("create: %s", err);
    return r;
}

#define FEED(r, s, d) lamina_reply_feed((r), (s), strlen(s), (d))

static void streaming(void)
{
    lamina_reply_delta d;
    lamina_reply *r = make(0, H, 0, NULL);
    ok(r && FEED(r, "<tool", &d) == 0 && delta_is(&d, "<tool", ""),
       "tools and thinking off: '<tool' streams at once");
    lamina_reply_free(r);

    r = make(1, H, 0, NULL);
    ok(r && FEED(r, "Hello", &d) == 0 && delta_is(&d, "Hello", "") && d.n_calls == 0,
       "HERMES: text with no marker start streams at once");
    ok(r && FEED(r, " <tool", &d) == 0 && d.n_calls == 0 &&
       (d.content_len == 0 || memchr(d.content, '<', d.content_len) == NULL),
       "HERMES: a possible marker start is held back");
    ok(r && FEED(r, "_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>", &d) == 0 &&
       d.n_calls == 1 && d.first_call == 0 && all_space(d.content, d.content_len),
       "HERMES: the feed that closes a call delivers it");
    const lamina_tool_call *tc = r ? lamina_reply_call(r, 0) : NULL;
    ok(tc && !strcmp(tc->name, "f") && tc->id == NULL, "HERMES: the delivered call is readable at once");
    ok(r && FEED(r, "<tool_call>{\"name\": \"g\", \"arguments\": {}}</tool_call>", &d) == 0 &&
       d.n_calls == 1 && d.first_call == 1, "HERMES: the second call's first_call is 1");
    ok(r && FEED(r, " Done", &d) == 0 && lamina_reply_finish(r, &d) == 0 && lamina_reply_n_calls(r) == 2,
       "HERMES: finish after two calls");
    size_t cl = 0;
    const char *c = r ? lamina_reply_content(r, &cl) : NULL;
    ok(c && !strncmp(c, "Hello", 5) && cl >= 9 && !strcmp(c + cl - 4, "Done") && !strstr(c, "tool_call"),
       "HERMES: content is the text around the calls ('%s')", c ? c : "(null)");
    ok(r && FEED(r, "more", &d) == LAMINA_EINVAL, "feed after finish is LAMINA_EINVAL");
    ok(r && lamina_reply_call(r, 2) == NULL && lamina_reply_call(r, (size_t)-1) == NULL,
       "lamina_reply_call out of range is NULL");
    lamina_reply_free(r);

    r = make(0, H, 1, NULL);
    ok(r && FEED(r, "<think>\nab", &d) == 0 && delta_is(&d, "", "\nab"), "thinking streams after <think>");
    ok(r && FEED(r, "c</thi", &d) == 0 && delta_is(&d, "", "c"), "a possible </think> is held back");
    ok(r && FEED(r, "nk>\n\nHi", &d) == 0 && delta_is(&d, "Hi", ""),
       "content after </think> streams, whitespace dropped");
    {
        struct buf dc = {0};
        int good = r && FEED(r, "</thi", &d) == 0 && d.thinking_len == 0;
        if (good)
            buf_add(&dc, d.content, d.content_len);
        good = good && lamina_reply_finish(r, &d) == 0 && d.thinking_len == 0;
        if (good)
            buf_add(&dc, d.content, d.content_len);
        ok(good && !strcmp(buf_str(&dc), "</thi"), "after the block '</thi' is content");
        free(dc.p);
    }
    lamina_reply_free(r);

    r = make(1, L, 0, NULL);
    ok(r && FEED(r, "Hello", &d) == 0 && delta_is(&d, "Hello", ""), "LLAMA3: text streams at once");
    lamina_reply_free(r);
    r = make(1, L, 0, NULL);
    ok(r && FEED(r, "{\"name\": \"f\", \"parameters\": {}}", &d) == 0 && delta_is(&d, "", "") &&
       d.n_calls == 0, "LLAMA3: a reply starting with '{' is held");
    ok(r && lamina_reply_finish(r, &d) == 0 && d.n_calls == 1 && d.first_call == 0 && delta_is(&d, "", ""),
       "LLAMA3: finish delivers the call");
    lamina_reply_free(r);
    r = make(1, L, 0, NULL);
    ok(r && FEED(r, "{oops", &d) == 0 && delta_is(&d, "", "") && lamina_reply_finish(r, &d) == 0 &&
       delta_is(&d, "{oops", "") && d.n_calls == 0, "LLAMA3: a held reply that is not a call comes at finish");
    lamina_reply_free(r);

    r = make(1, G, 0, NULL);
    ok(r && FEED(r, "Hi", &d) == 0 && delta_is(&d, "", ""), "GENERIC: the reply is held");
    ok(r && FEED(r, " there", &d) == 0 && lamina_reply_finish(r, &d) == 0 && delta_is(&d, "Hi there", ""),
       "GENERIC: finish gives the text");
    lamina_reply_free(r);

    r = make(1, H, 0, NULL);
    ok(r && FEED(r, "", &d) == 0 && delta_is(&d, "", "") && d.n_calls == 0, "an empty feed gives nothing");
    lamina_reply_free(r);

    /* arguments come back as compact JSON */
    r = make(1, H, 0, NULL);
    if (r) {
        FEED(r, "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": [1, 2], \"b\": {\"c\": \"d e\"}}}\n</tool_call>", &d);
        lamina_reply_finish(r, &d);
    }
    tc = r ? lamina_reply_call(r, 0) : NULL;
    ok(tc && !strcmp(tc->arguments, "{\"a\":[1,2],\"b\":{\"c\":\"d e\"}}"), "arguments are compact JSON ('%s')",
       tc ? tc->arguments : "(null)");
    lamina_reply_free(r);

    /* bad opts */
    lamina_reply_opts o = {.tools = 1, .format = (enum lamina_tool_format)99};
    r = NULL;
    char err[256] = "";
    ok(lamina_reply_create(&o, &r, err, sizeof err) == LAMINA_EINVAL, "create: unknown format is LAMINA_EINVAL");
    lamina_reply_free(r);
    lamina_reply_free(NULL);
}

/* ---- formats from templates --------------------------------------------------- */

static void formats(void)
{
    static const struct {
        const char *tmpl;
        enum lamina_tool_format want;
    } t[] = {
        {"{% if tools %}{% for t in tools %}<tool_call>{{ t | tojson }}</tool_call>{% endfor %}{% endif %}", H},
        {"{% if tools is not none %}[AVAILABLE_TOOLS]{{ tools | tojson }}[/AVAILABLE_TOOLS]{% endif %}"
         "{% if m.tool_calls %}[TOOL_CALLS]{% endif %}", M},
        {"<|start_header_id|>system<|end_header_id|>{% if tools %}{\"name\": ..., \"parameters\": ...}"
         "{{ tools | tojson }}{% endif %}", L},
        {"<|start_header_id|>{% for t in tools %}{{ t }}{% endfor %}<|python_tag|>", L},
        {"{% for m in messages %}<tool_call>{{ m.content }}{% endfor %}", G},
        {"<|start_header_id|>{% for m in messages %}{{ m.content }}<|eot_id|>{% endfor %}", G},
        {"<|start_header_id|>{% if tools %}{{ tools }}{% endif %}", G},
        {"{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}", G},
        {"", G},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        enum lamina_tool_format f = lamina_tool_format_detect(t[i].tmpl);
        ok(f == t[i].want, "detect %s from '%.50s...'", lamina_tool_format_name(t[i].want), t[i].tmpl);
    }
    ok(lamina_tool_format_detect(NULL) == G, "detect NULL -> generic");
    ok(!strcmp(lamina_tool_format_name(G), "generic") && !strcmp(lamina_tool_format_name(H), "hermes") &&
       !strcmp(lamina_tool_format_name(L), "llama3") && !strcmp(lamina_tool_format_name(M), "mistral"),
       "format names");
    ok(lamina_template_thinks("{{ m.content }}<think>\n") == 1, "thinks: <think>");
    ok(lamina_template_thinks("{% if enable_thinking is defined and not enable_thinking %}x{% endif %}") == 1,
       "thinks: enable_thinking");
    ok(lamina_template_thinks("{% for m in messages %}{{ m.content }}{% endfor %}") == 0, "thinks: plain -> 0");
    ok(lamina_template_thinks(NULL) == 0, "thinks: NULL -> 0");
}

/* ---- lamina_tools_check -------------------------------------------------------- */

static void check_tools(const char *json, int want_rc, const char *want_err, const char *what)
{
    json_error_t je;
    json_t *t = json_loads(json, 0, &je);
    if (t == NULL) {
        ok(0, "%s: bad test JSON: %s", what, je.text);
        return;
    }
    char err[512] = "";
    int rc = lamina_tools_check(t, err, sizeof err);
    int good = rc == want_rc && (want_err == NULL || strstr(err, want_err) != NULL);
    ok(good, "tools_check: %s", what);
    if (!good)
        diag("rc %d err '%s' (want rc %d, err holding '%s')", rc, err, want_rc, want_err ? want_err : "");
    json_decref(t);
}

#define FN(name, params) "{\"type\": \"function\", \"function\": {\"name\": " name ", \"parameters\": " params "}}"
#define OBJ "{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"string\"}}, \"required\": [\"a\"]}"

static void tools_check(void)
{
    check_tools("[" FN("\"get_weather\"", OBJ) ", {\"type\": \"function\", \"function\": {\"name\": \"a.b-c_9\","
                " \"description\": \"d\", \"parameters\": {\"type\": \"object\"}}}]", 0, NULL, "valid tools pass");
    check_tools("[" FN("\"" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" "\"", OBJ) "]", 0, NULL,
                "a name of 64 characters passes");
    check_tools("[" FN("\"f\"", OBJ) ", {\"type\": \"function\", \"function\": {\"parameters\": " OBJ "}}]",
                LAMINA_EINVAL, "tools[1].function.name", "missing name");
    check_tools("[" FN("\"get weather\"", OBJ) "]", LAMINA_EINVAL, "tools[0].function.name", "name with a space");
    check_tools("[" FN("\"\"", OBJ) "]", LAMINA_EINVAL, "tools[0].function.name", "empty name");
    check_tools("[" FN("\"" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" "\"", OBJ) "]",
                LAMINA_EINVAL, "tools[0].function.name", "a name of 65 characters");
    check_tools("[" FN("\"f\xc3\xa9\"", OBJ) "]", LAMINA_EINVAL, "tools[0].function.name", "non-ASCII name");
    check_tools("[" FN("7", OBJ) "]", LAMINA_EINVAL, "tools[0].function.name", "name not a string");
    check_tools("[" FN("\"f\"", OBJ) ", " FN("\"g\"", OBJ) ", " FN("\"f\"", OBJ) "]", LAMINA_EINVAL,
                "tools[2].function.name", "duplicate names");
    check_tools("[" FN("\"f\"", OBJ) ", " FN("\"g\"", "\"object\"") "]", LAMINA_EINVAL,
                "tools[1].function.parameters", "parameters not an object");
    check_tools("[{\"type\": \"function\"}]", LAMINA_EINVAL, "tools[0]", "no function");
    check_tools("[7]", LAMINA_EINVAL, "tools[0]", "a tool that is not an object");
    check_tools("{\"a\": 1}", LAMINA_EINVAL, NULL, "tools not an array");
}

/* ---- lamina_tools_plan_make ------------------------------------------------------- */

static const char plan_tools[] =
    "[" FN("\"f\"", OBJ) ", {\"type\": \"function\", \"function\": {\"name\": \"get_weather\","
    " \"description\": \"Weather in a city\", \"parameters\": {\"type\": \"object\", \"properties\":"
    " {\"city\": {\"type\": \"string\"}}, \"required\": [\"city\"]}}},"
    " {\"type\": \"function\", \"function\": {\"name\": \"p\", \"parameters\": {\"type\": \"object\","
    " \"patternProperties\": {\"^x\": {\"type\": \"integer\"}}}}}]";

/* 'x' rejected, 'v' valid prefix, 'c' valid and may end */
static char gfeed(const lamina_grammar *g, const char *text)
{
    lamina_gmatch *m = NULL;
    char err[256];
    if (g == NULL || lamina_gmatch_create(g, NULL, &m, err, sizeof err) != 0)
        return '?';
    char r = lamina_gmatch_feed(m, text, strlen(text)) != 0 ? 'x' : lamina_gmatch_can_end(m) ? 'c' : 'v';
    lamina_gmatch_free(m);
    return r;
}

static void gram_is(const lamina_tools_plan *p, const char *text, char want, const char *what)
{
    char got = gfeed(p->grammar, text);
    ok(got == want, "%s: %s -> %c (want %c)", what, text, got, want);
}

static int plan(json_t *tools, enum lamina_tool_format f, enum lamina_tool_choice ch, const char *named,
                int parallel, lamina_tools_plan *p, const char *what)
{
    char err[512] = "";
    memset(p, 0, sizeof *p);
    int rc = lamina_tools_plan_make(f, tools, ch, named, parallel, p, err, sizeof err);
    if (!ok(rc == 0, "plan %s", what))
        diag("rc %d: %s", rc, err);
    return rc;
}

static void plans(void)
{
    json_error_t je;
    json_t *tools = json_loads(plan_tools, 0, &je);
    if (!ok(tools != NULL, "plan tools parse"))
        diag("%s", je.text);
    char err[512] = "";
    ok(lamina_tools_check(tools, err, sizeof err) == 0, "plan tools pass tools_check (%s)", err);
    lamina_tools_plan p;

    plan(tools, G, LAMINA_TOOL_AUTO, NULL, 1, &p, "GENERIC AUTO");
    ok(p.grammar != NULL && p.system != NULL && p.prefill == NULL, "GENERIC AUTO: grammar and system, no prefill");
    ok(p.system && strstr(p.system, "get_weather") && strstr(p.system, "Weather in a city"),
       "GENERIC AUTO: system names the tools and their description");
    ok(p.system && strstr(p.system, "tool_calls") && strstr(p.system, "response"),
       "GENERIC AUTO: system describes the reply format");
    gram_is(&p, "{\"response\": \"Hi\"}", 'c', "GENERIC AUTO");
    gram_is(&p, "{\"tool_calls\": [{\"name\": \"f\", \"arguments\": {\"a\": \"x\"}}]}", 'c', "GENERIC AUTO");
    gram_is(&p, "{\"tool_calls\": [{\"name\": \"get_weather\", \"arguments\": {\"a\": \"x\"}}]}", 'x',
            "GENERIC AUTO: arguments follow the tool's schema");
    gram_is(&p, "{\"tool_calls\": [{\"name\": \"nope\"", 'x', "GENERIC AUTO: unknown name");
    gram_is(&p, "Hello", 'x', "GENERIC AUTO: free text");
    gram_is(&p, "{\"tool_calls\": [{\"name\": \"f\", \"arguments\": {\"a\": \"x\"}}, {\"name\": \"get_weather\","
            " \"arguments\": {\"city\": \"Paris\"}}]}", 'c', "GENERIC AUTO parallel");
    gram_is(&p, "{\"tool_calls\": [{\"name\": \"p\", \"arguments\": {\"zz\": [1, {}]}}]}", 'c',
            "GENERIC AUTO: unsupported schema takes any object");
    lamina_tools_plan_clear(&p);

    plan(tools, G, LAMINA_TOOL_AUTO, NULL, 0, &p, "GENERIC AUTO, parallel 0");
    gram_is(&p, "{\"tool_calls\": [{\"name\": \"f\", \"arguments\": {\"a\": \"x\"}}, {", 'x',
            "GENERIC parallel 0: no second call");
    gram_is(&p, "{\"tool_calls\": [{\"name\": \"f\", \"arguments\": {\"a\": \"x\"}}]}", 'c',
            "GENERIC parallel 0: one call");
    lamina_tools_plan_clear(&p);

    plan(tools, G, LAMINA_TOOL_REQUIRED, NULL, 1, &p, "GENERIC REQUIRED");
    ok(p.grammar != NULL && p.system != NULL && p.prefill == NULL, "GENERIC REQUIRED: grammar and system");
    gram_is(&p, "{\"response\": ", 'x', "GENERIC REQUIRED");
    gram_is(&p, "{\"tool_calls\": [{\"name\": \"f\", \"arguments\": {\"a\": \"x\"}}]}", 'c', "GENERIC REQUIRED");
    gram_is(&p, "{\"tool_calls\": []}", 'x', "GENERIC REQUIRED: at least one call");
    lamina_tools_plan_clear(&p);

    plan(tools, G, LAMINA_TOOL_NAMED, "get_weather", 1, &p, "GENERIC NAMED");
    gram_is(&p, "{\"tool_calls\": [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}]}", 'c',
            "GENERIC NAMED");
    gram_is(&p, "{\"tool_calls\": [{\"name\": \"f\"", 'x', "GENERIC NAMED: another tool");
    gram_is(&p, "{\"response\": ", 'x', "GENERIC NAMED");
    lamina_tools_plan_clear(&p);

    plan(tools, H, LAMINA_TOOL_AUTO, NULL, 1, &p, "HERMES AUTO");
    ok(p.grammar == NULL && p.prefill == NULL && p.system == NULL, "HERMES AUTO: no grammar, prefill or system");
    lamina_tools_plan_clear(&p);

    plan(tools, H, LAMINA_TOOL_REQUIRED, NULL, 1, &p, "HERMES REQUIRED");
    ok(p.prefill && !strcmp(p.prefill, "<tool_call>\n") && p.grammar != NULL && p.system == NULL,
       "HERMES REQUIRED: prefill '<tool_call>\\n' and a grammar");
    gram_is(&p, "{\"name\": \"f\", \"arguments\": {\"a\": \"x\"}}", 'c', "HERMES REQUIRED");
    gram_is(&p, "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}", 'c', "HERMES REQUIRED");
    gram_is(&p, "{\"name\": \"g\", \"arguments\": {}}", 'x', "HERMES REQUIRED: a name not in tools");
    gram_is(&p, "{\"name\": \"f\", \"arguments\": {\"a\": 1}}", 'x', "HERMES REQUIRED: arguments follow the schema");
    gram_is(&p, "{\"name\": \"p\", \"arguments\": {\"zz\": [1]}}", 'c', "HERMES REQUIRED: unsupported schema, any object");
    gram_is(&p, "{\"name\": \"p\", \"arguments\": 5}", 'x', "HERMES REQUIRED: unsupported schema, still an object");
    lamina_tools_plan_clear(&p);

    plan(tools, H, LAMINA_TOOL_NAMED, "f", 1, &p, "HERMES NAMED");
    ok(p.prefill && !strcmp(p.prefill, "<tool_call>\n") && p.grammar != NULL, "HERMES NAMED: prefill and grammar");
    gram_is(&p, "{\"name\": \"f\", \"arguments\": {\"a\": \"x\"}}", 'c', "HERMES NAMED");
    gram_is(&p, "{\"name\": \"get_weather\"", 'x', "HERMES NAMED: another tool");
    lamina_tools_plan_clear(&p);

    /* the plan's prefill and a grammar-made reply parse into one call */
    plan(tools, H, LAMINA_TOOL_REQUIRED, NULL, 1, &p, "HERMES REQUIRED for the parser");
    {
        const char *reply = "{\"name\": \"f\", \"arguments\": {\"a\": \"x\"}}";
        lamina_reply_opts o = {.tools = 1, .format = H, .prefill = p.prefill};
        lamina_reply *r = NULL;
        lamina_reply_delta d;
        int good = lamina_reply_create(&o, &r, err, sizeof err) == 0 && gfeed(p.grammar, reply) == 'c' &&
                   lamina_reply_feed(r, reply, strlen(reply), &d) == 0 && lamina_reply_finish(r, &d) == 0 &&
                   lamina_reply_n_calls(r) == 1 && !strcmp(lamina_reply_call(r, 0)->name, "f");
        ok(good, "HERMES REQUIRED: prefill + grammar output parse as one call");
        lamina_reply_free(r);
    }
    lamina_tools_plan_clear(&p);

    for (enum lamina_tool_format f = G; f <= M; f++) {
        memset(&p, 0, sizeof p);
        int rc = lamina_tools_plan_make(f, tools, LAMINA_TOOL_NAMED, "nope", 1, &p, err, sizeof err);
        ok(rc == LAMINA_EINVAL && err[0], "%s NAMED with a name not in tools: LAMINA_EINVAL (%s)",
           lamina_tool_format_name(f), err);
        if (rc == 0)
            lamina_tools_plan_clear(&p);
    }

    for (enum lamina_tool_format f = L; f <= M; f++) {
        char what[64];
        snprintf(what, sizeof what, "%s REQUIRED", lamina_tool_format_name(f));
        if (plan(tools, f, LAMINA_TOOL_REQUIRED, NULL, 1, &p, what) == 0)
            ok(p.grammar != NULL && p.system == NULL, "%s: a grammar, no system", what);
        lamina_tools_plan_clear(&p);
    }
    plan(tools, M, LAMINA_TOOL_REQUIRED, NULL, 1, &p, "MISTRAL REQUIRED prefill");
    ok(p.prefill && !strncmp(p.prefill, "[TOOL_CALLS]", 12), "MISTRAL REQUIRED: prefill opens with [TOOL_CALLS]");
    lamina_tools_plan_clear(&p);
    json_decref(tools);
}

/* ---- corpus for fuzz_reply ---------------------------------------------------------- */

/* the prefills fuzz_reply knows, by index (bits 4-6 of the option byte) */
static const char *const fuzz_prefills[] = {
    NULL, "<think>\n", "<tool_call>\n", "[TOOL_CALLS]", "<|python_tag|>", "<think>\n\n</think>\n\n",
    "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c" "><think>\n",
};

static int write_seeds(const char *dir)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const rcase *c = &cases[i];
        size_t k = 0, np = sizeof fuzz_prefills / sizeof fuzz_prefills[0];
        while (k < np && !(c->prefill == fuzz_prefills[k] ||
                           (c->prefill && fuzz_prefills[k] && !strcmp(c->prefill, fuzz_prefills[k]))))
            k++;
        if (k == np)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/case-%03zu", dir, i);
        FILE *f = fopen(path, "wb");
        if (f == NULL) {
            perror(path);
            return 1;
        }
        fputc((int)c->format | (c->tools ? 4 : 0) | (c->thinking ? 8 : 0) | (int)(k << 4), f);
        fwrite(c->text, 1, strlen(c->text), f);
        fclose(f);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--write-seeds"))
        return write_seeds(argv[2]);
    formats();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run(&cases[i]);
    streaming();
    tools_check();
    plans();
    /* last: an implementation that crashes here still reports the rest */
    static const rcase empty_generic = {.what = "GENERIC: empty reply", .tools = 1, .format = G, .text = "",
                                        .content = ""};
    run(&empty_generic);
    return done_testing();
}
