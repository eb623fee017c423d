/* fuzz_reply.c - libFuzzer harness for the reply parser (runtime/text/reply.c):
 * generated text is untrusted input.  The first byte picks the options
 * (bits 0-1 format, bit 2 tools, bit 3 thinking, bits 4-6 a prefill); the
 * rest is the reply, fed once whole and once in pieces split at points
 * drawn from the input.  Checked: no crash, leak or sanitizer report; the
 * deltas add up to lamina_reply_content/thinking and cover each call once;
 * both splits give the same result; every call has a name and arguments
 * that are a JSON object; a finished parser refuses more text; with tools
 * and thinking off the content is the input.  Built by tests/fuzz.am; seeds
 * in tests/fuzz/corpus/reply (from `tests/tok/test_reply --write-seeds DIR`). */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lamina/plugin.h"
#include "reply.h"

static const char *const prefills[] = {
    NULL, "<think>\n", "<tool_call>\n", "[TOOL_CALLS]", "<|python_tag|>", "<think>\n\n</think>\n\n",
    "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c" "><think>\n", "<think>",
};

struct acc {
    char *p;
    size_t n, cap;
};

static void acc_add(struct acc *a, const char *s, size_t n)
{
    if (n == 0)
        return;
    if (s == NULL)
        abort();
    if (a->n + n > a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 256;
        while (cap < a->n + n)
            cap *= 2;
        a->p = realloc(a->p, cap);
        if (a->p == NULL)
            abort();
        a->cap = cap;
    }
    memcpy(a->p + a->n, s, n);
    a->n += n;
}

static void take(const lamina_reply_delta *d, struct acc *c, struct acc *t, size_t *calls)
{
    acc_add(c, d->content, d->content_len);
    acc_add(t, d->thinking, d->thinking_len);
    if (d->n_calls) {
        if (d->first_call != *calls)
            abort();
        *calls += d->n_calls;
    }
}

/* Parse; NULL when the parser could not be made (bad opts are not a bug
 * here: every option byte maps to valid opts, so abort). */
static lamina_reply *parse(const lamina_reply_opts *o, const char *text, size_t len, uint32_t seed)
{
    lamina_reply *r = NULL;
    char err[256];
    if (lamina_reply_create(o, &r, err, sizeof err) != 0)
        abort();
    struct acc c = {0}, t = {0};
    size_t calls = 0, at = 0;
    lamina_reply_delta d;
    while (at < len) {
        size_t n = len - at;
        if (seed) {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            size_t w = (seed & 7) == 0 ? 1 + (seed >> 8) % 64 : 1 + (seed >> 8) % 6;
            if (w < n)
                n = w;
        }
        if (lamina_reply_feed(r, text + at, n, &d) != 0)
            abort();
        take(&d, &c, &t, &calls);
        at += n;
    }
    if (lamina_reply_finish(r, &d) != 0)
        abort();
    take(&d, &c, &t, &calls);
    if (lamina_reply_feed(r, "x", 1, &d) != LAMINA_EINVAL)
        abort();

    size_t cl, tl;
    const char *rc = lamina_reply_content(r, &cl);
    const char *rt = lamina_reply_thinking(r, &tl);
    if (rc == NULL || rt == NULL || rc[cl] != 0 || rt[tl] != 0)
        abort();
    if (cl != c.n || (cl && memcmp(rc, c.p, cl) != 0) || tl != t.n || (tl && memcmp(rt, t.p, tl) != 0))
        abort();
    size_t nc = lamina_reply_n_calls(r);
    if (calls != nc || lamina_reply_call(r, nc) != NULL)
        abort();
    for (size_t i = 0; i < nc; i++) {
        const lamina_tool_call *tc = lamina_reply_call(r, i);
        if (tc == NULL || tc->name == NULL || tc->arguments == NULL)
            abort();
        json_t *a = json_loads(tc->arguments, 0, NULL);
        if (a == NULL || !json_is_object(a))
            abort();
        json_decref(a);
    }
    free(c.p);
    free(t.p);
    return r;
}

static int same_str(const char *a, size_t al, const char *b, size_t bl)
{
    return al == bl && memcmp(a, b, al) == 0;
}

static int same_opt(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && !strcmp(a, b));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t opt = data[0];
    lamina_reply_opts o = {
        .format = (enum lamina_tool_format)(opt & 3),
        .tools = (opt >> 2) & 1,
        .thinking = (opt >> 3) & 1,
        .prefill = prefills[(opt >> 4) & 7],
    };
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    uint32_t seed = 2166136261u;
    for (size_t i = 0; i < size; i++)
        seed = (seed ^ data[i]) * 16777619u;
    if (seed == 0)
        seed = 1;

    lamina_reply *whole = parse(&o, text, len, 0);
    lamina_reply *split = parse(&o, text, len, seed);

    size_t cl1, cl2, tl1, tl2;
    const char *c1 = lamina_reply_content(whole, &cl1), *c2 = lamina_reply_content(split, &cl2);
    const char *t1 = lamina_reply_thinking(whole, &tl1), *t2 = lamina_reply_thinking(split, &tl2);
    if (!same_str(c1, cl1, c2, cl2) || !same_str(t1, tl1, t2, tl2))
        abort();
    size_t nc = lamina_reply_n_calls(whole);
    if (nc != lamina_reply_n_calls(split))
        abort();
    for (size_t i = 0; i < nc; i++) {
        const lamina_tool_call *a = lamina_reply_call(whole, i), *b = lamina_reply_call(split, i);
        if (strcmp(a->name, b->name) || strcmp(a->arguments, b->arguments) || !same_opt(a->id, b->id))
            abort();
    }
    if (!o.tools && nc != 0)
        abort();
    if (!o.thinking && tl1 != 0)
        abort();
    if (!o.tools && !o.thinking && !same_str(c1, cl1, text, len))
        abort();
    lamina_reply_free(whole);
    lamina_reply_free(split);
    return 0;
}
