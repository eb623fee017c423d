/* test_sampler.c - sampler properties and stop-string holding. */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/plugin.h"
#include "sampler.h"
#include "tap.h"

static lamina_sampler *mk(float temp, int top_k, float top_p, float min_p, float rep, int last_n,
                          uint64_t seed, int32_t nv)
{
    lamina_sampler_params p;
    lamina_sampler_params_default(&p);
    p.temperature = temp;
    p.top_k = top_k;
    p.top_p = top_p;
    p.min_p = min_p;
    p.repeat_penalty = rep;
    p.repeat_last_n = last_n;
    p.seed = seed;
    lamina_sampler *s = NULL;
    char err[256];
    if (lamina_sampler_create(&p, nv, &s, err, sizeof(err)) != 0)
        diag("create: %s", err);
    return s;
}

static uint64_t lcg = 7;
static float frand(void)
{
    lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((lcg >> 40) / 16777216.0) * 20.0f - 10.0f;
}

/* draw n times; counts[id]++ ; returns 0 if some draw fell outside [0, nv) */
static int draws(lamina_sampler *s, const float *lg, int nv, int n, int *counts)
{
    for (int i = 0; i < n; i++) {
        lamina_token t;
        if (lamina_sampler_sample(s, lg, &t) != 0 || t < 0 || t >= nv)
            return 0;
        counts[t]++;
    }
    return 1;
}

static void sampler_tests(void)
{
    const int NV = 262144;
    float *lg = malloc(NV * sizeof(float));
    int *cnt = calloc(NV, sizeof(int));
    for (int i = 0; i < NV; i++)
        lg[i] = frand();
    int am = 0;
    for (int i = 1; i < NV; i++)
        if (lg[i] > lg[am])
            am = i;

    /* greedy */
    lamina_sampler *g = mk(0.0f, 40, 0.95f, 0.05f, 1.0f, 64, 1, NV);
    lamina_token t = -1;
    ok(lamina_sampler_sample(g, lg, &t) == 0 && t == am, "temperature 0 is argmax (%d)", am);
    lamina_sampler_free(g);

    /* top_k = 1 equals greedy for any seed */
    int same = 1;
    for (uint64_t seed = 0; seed < 20; seed++) {
        lamina_sampler *s = mk(1.5f, 1, 1.0f, 0.0f, 1.0f, 64, seed, NV);
        same &= lamina_sampler_sample(s, lg, &t) == 0 && t == am;
        lamina_sampler_free(s);
    }
    ok(same, "top_k = 1 gives the argmax for 20 seeds");

    /* same seed, same sequence; different seed, different sequence */
    {
        lamina_sampler *a = mk(1.0f, 0, 1.0f, 0.0f, 1.0f, 64, 42, NV);
        lamina_sampler *b = mk(1.0f, 0, 1.0f, 0.0f, 1.0f, 64, 42, NV);
        lamina_sampler *c = mk(1.0f, 0, 1.0f, 0.0f, 1.0f, 64, 43, NV);
        int eq = 1, differs = 0;
        for (int i = 0; i < 50; i++) {
            lamina_token x, y, z;
            lamina_sampler_sample(a, lg, &x);
            lamina_sampler_sample(b, lg, &y);
            lamina_sampler_sample(c, lg, &z);
            eq &= x == y;
            differs |= x != z;
        }
        ok(eq, "fixed seed reproduces the same 50 draws");
        ok(differs, "another seed gives another sequence");
        lamina_sampler_reset(a);
        lamina_sampler *d = mk(1.0f, 0, 1.0f, 0.0f, 1.0f, 64, 42, NV);
        lamina_token x, y;
        lamina_sampler_sample(a, lg, &x);
        lamina_sampler_sample(d, lg, &y);
        ok(x == y, "reset reseeds");
        lamina_sampler_free(a);
        lamina_sampler_free(b);
        lamina_sampler_free(c);
        lamina_sampler_free(d);
    }

    /* a controlled distribution over a big vocabulary */
    for (int i = 0; i < NV; i++)
        lg[i] = -40.0f;
    lg[10] = logf(0.5f);
    lg[20] = logf(0.3f);
    lg[30] = logf(0.15f);
    lg[40] = logf(0.05f);

    /* min-p 0.2: keep p >= 0.1 -> 10, 20, 30 */
    {
        lamina_sampler *s = mk(1.0f, 0, 1.0f, 0.2f, 1.0f, 64, 5, NV);
        memset(cnt, 0, NV * sizeof(int));
        int good = draws(s, lg, NV, 3000, cnt);
        ok(good && cnt[10] + cnt[20] + cnt[30] == 3000 && cnt[10] && cnt[20] && cnt[30],
           "min_p 0.2 keeps exactly the tokens with p >= 0.1 (%d %d %d)", cnt[10], cnt[20], cnt[30]);
        ok(cnt[10] > 1500 && cnt[10] < 1900 && cnt[30] > 300 && cnt[30] < 600,
           "draw frequencies follow the renormalised distribution (0.53/0.32/0.16)");
        lamina_sampler_free(s);
    }
    /* top-p 0.75: 0.5 + 0.3 reaches it -> 10, 20 (no top-k: partial selection path) */
    {
        lamina_sampler *s = mk(1.0f, 0, 0.75f, 0.0f, 1.0f, 64, 6, NV);
        memset(cnt, 0, NV * sizeof(int));
        int good = draws(s, lg, NV, 2000, cnt);
        ok(good && cnt[10] + cnt[20] == 2000 && cnt[10] && cnt[20], "top_p 0.75 keeps {10, 20}");
        lamina_sampler_free(s);
        s = mk(1.0f, 0, 0.9f, 0.0f, 1.0f, 64, 6, NV);
        memset(cnt, 0, NV * sizeof(int));
        good = draws(s, lg, NV, 2000, cnt);
        ok(good && cnt[10] + cnt[20] + cnt[30] == 2000 && cnt[30], "top_p 0.9 keeps {10, 20, 30}");
        lamina_sampler_free(s);
        /* with top-k 3 first, top-p is relative to those three */
        s = mk(1.0f, 3, 0.5f, 0.0f, 1.0f, 64, 6, NV);
        memset(cnt, 0, NV * sizeof(int));
        good = draws(s, lg, NV, 500, cnt);
        ok(good && cnt[10] == 500, "top_k 3 then top_p 0.5 keeps {10}");
        lamina_sampler_free(s);
    }
    /* top-p over many equal logits: the best-first prefix, ties by lowest id */
    {
        const int n = 5000;
        float *eq = malloc(n * sizeof(float));
        for (int i = 0; i < n; i++)
            eq[i] = 1.0f;
        lamina_sampler *s = mk(1.0f, 0, 0.5f, 0.0f, 1.0f, 64, 8, n);
        memset(cnt, 0, n * sizeof(int));
        int good = draws(s, eq, n, 3000, cnt);
        int hi = 0;
        for (int i = 2501; i < n; i++)
            hi += cnt[i];
        ok(good && hi == 0, "top_p 0.5 over 5000 equal logits keeps ids < 2501");
        lamina_sampler_free(s);
        free(eq);
    }
    /* temperature sharpens */
    {
        float two[2] = {1.0f, 0.5f};
        lamina_sampler *s = mk(0.05f, 0, 1.0f, 0.0f, 1.0f, 64, 9, 2);
        int c2[2] = {0, 0};
        draws(s, two, 2, 500, c2);
        ok(c2[0] == 500, "temperature 0.05 almost always picks the best (%d/500)", c2[0]);
        lamina_sampler_free(s);
    }
    /* repetition penalty: positive logits divided, negative multiplied */
    {
        float l3[3] = {2.0f, -1.0f, 1.5f};
        lamina_sampler *s = mk(0.0f, 0, 1.0f, 0.0f, 2.0f, 64, 1, 3);
        lamina_sampler_sample(s, l3, &t);
        ok(t == 0, "no history: argmax 0");
        lamina_sampler_accept(s, 0);
        lamina_sampler_sample(s, l3, &t);
        ok(t == 2, "penalised 2.0 -> 1.0 loses to 1.5");
        float n3[3] = {-1.0f, -3.0f, -1.5f};
        lamina_sampler_sample(s, n3, &t);
        ok(t == 2, "negative logit multiplied: -1.0 -> -2.0 loses to -1.5");
        ok(n3[0] == -1.0f && l3[0] == 2.0f, "logits are not modified");
        lamina_sampler_reset(s);
        lamina_sampler_sample(s, l3, &t);
        ok(t == 0, "reset forgets the history");
        lamina_sampler_free(s);
        /* window of 1: only the last accepted token counts */
        s = mk(0.0f, 0, 1.0f, 0.0f, 2.0f, 1, 1, 3);
        lamina_sampler_accept(s, 0);
        lamina_sampler_accept(s, 1);
        lamina_sampler_sample(s, l3, &t);
        ok(t == 0, "repeat_last_n 1: token 0 fell out of the window");
        lamina_sampler_free(s);
    }
    /* degenerate input */
    {
        float bad[3] = {-INFINITY, NAN, -INFINITY};
        lamina_sampler *s = mk(1.0f, 40, 0.9f, 0.1f, 1.0f, 64, 1, 3);
        ok(lamina_sampler_sample(s, bad, &t) == LAMINA_EINVAL, "all -inf/NaN logits rejected");
        float some[3] = {NAN, 0.0f, -INFINITY};
        ok(lamina_sampler_sample(s, some, &t) == 0 && t == 1, "NaN and -inf are never drawn");
        lamina_sampler_free(s);
        lamina_sampler_params p;
        lamina_sampler_params_default(&p);
        p.repeat_penalty = 0.0f;
        lamina_sampler *x = NULL;
        ok(lamina_sampler_create(&p, 10, &x, NULL, 0) == LAMINA_EINVAL && x == NULL,
           "repeat_penalty 0 rejected");
    }
    free(lg);
    free(cnt);
}

/* feed pieces; collect emitted text */
static void stop_case(const char *const *stops, size_t ns, const char *const *pieces, size_t np,
                      const char *want, int want_stopped, const char *what)
{
    lamina_stop *st = NULL;
    char got[256] = "";
    size_t gl = 0;
    int stopped = 0;
    lamina_stop_create(stops, ns, &st, NULL, 0);
    for (size_t i = 0; i < np; i++) {
        const char *e;
        size_t el;
        lamina_stop_feed(st, pieces[i], strlen(pieces[i]), &e, &el, &stopped);
        memcpy(got + gl, e, el);
        gl += el;
    }
    if (!stopped) {
        const char *e;
        size_t el;
        lamina_stop_flush(st, &e, &el);
        memcpy(got + gl, e, el);
        gl += el;
    }
    got[gl] = 0;
    if (!ok(strcmp(got, want) == 0 && stopped == want_stopped, "%s", what))
        diag("got '%s' stopped %d", got, stopped);
    lamina_stop_free(st);
}

static void stop_tests(void)
{
    const char *s1[] = {"</s>", "STOP"};
    {
        lamina_stop *st = NULL;
        lamina_stop_create(s1, 2, &st, NULL, 0);
        const char *e;
        size_t el;
        int stopped;
        lamina_stop_feed(st, "Hello <", 7, &e, &el, &stopped);
        ok(el == 6 && !memcmp(e, "Hello ", 6) && !stopped, "possible stop prefix '<' held back");
        lamina_stop_feed(st, "/s", 2, &e, &el, &stopped);
        ok(el == 0 && !stopped, "still a prefix: nothing emitted");
        lamina_stop_feed(st, ">tail", 5, &e, &el, &stopped);
        ok(el == 0 && stopped, "stop string completed: stopped, nothing after it emitted");
        lamina_stop_feed(st, "more", 4, &e, &el, &stopped);
        ok(el == 0 && stopped, "after a stop nothing more comes out");
        lamina_stop_free(st);
    }
    const char *p1[] = {"a<", "x b"};
    stop_case(s1, 2, p1, 2, "a<x b", 0, "a broken prefix is released");
    const char *p2[] = {"xxSTOPyy"};
    stop_case(s1, 2, p2, 1, "xx", 1, "stop inside one piece cuts there");
    const char *s2[] = {"aab"};
    const char *p3[] = {"a", "a", "a", "b", "c"};
    stop_case(s2, 1, p3, 5, "a", 1, "overlapping prefix: aaab stops after 'a'");
    const char *p4[] = {"ST", "O"};
    stop_case(s1, 2, p4, 2, "STO", 0, "held tail flushed at the end");
    const char *p5[] = {"ab", "STO", "P", "zz"};
    stop_case(s1, 2, p5, 4, "ab", 1, "stop across pieces");
    stop_case(NULL, 0, p5, 4, "abSTOPzz", 0, "no stop strings: everything passes");
}

int main(void)
{
    sampler_tests();
    stop_tests();
    return done_testing();
}
