/* sampler.c - token sampling and stop-string holding (see sampler.h). */
#include "config.h"

#include "sampler.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/plugin.h"

struct cand {
    float v;          /* logit (after penalties, then scaled) */
    int32_t id;
};

struct lamina_sampler {
    lamina_sampler_params p;
    int32_t n_vocab;
    lamina_token *hist;     /* ring of the last repeat_last_n accepted tokens */
    size_t hist_n, hist_pos, hist_cap;
    lamina_token *scratch;  /* [hist_cap] sorted copy of the window */
    float *work;            /* [n_vocab] logits with penalties applied */
    struct cand *cands;     /* [n_vocab] */
    struct cand *heap;      /* [n_vocab] selection scratch */
    uint64_t rng[4];
};

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

/* ---- random numbers: xoshiro256** seeded through splitmix64 ---- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(uint64_t s[4])
{
    uint64_t r = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

/* uniform in [0, 1) with 53 random bits */
static double rng_uniform(uint64_t s[4])
{
    return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

static void rng_seed(uint64_t s[4], uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        s[i] = splitmix64(&x);
}

/* ---- lifecycle ---- */

void lamina_sampler_params_default(lamina_sampler_params *p)
{
    memset(p, 0, sizeof(*p));
    p->temperature = 0.8f;
    p->top_k = 40;
    p->top_p = 0.95f;
    p->min_p = 0.05f;
    p->repeat_penalty = 1.0f;
    p->frequency_penalty = 0.0f;
    p->presence_penalty = 0.0f;
    p->repeat_last_n = 64;
    p->seed = 0x5eed;
}

void lamina_sampler_free(lamina_sampler *s)
{
    if (s == NULL)
        return;
    free(s->hist);
    free(s->scratch);
    free(s->work);
    free(s->cands);
    free(s->heap);
    free(s);
}

int lamina_sampler_create(const lamina_sampler_params *p, int32_t n_vocab,
                          lamina_sampler **out, char *err, size_t err_size)
{
    if (p == NULL || out == NULL)
        return fail(err, err_size, LAMINA_EINVAL, "sampler: NULL argument");
    *out = NULL;
    if (n_vocab <= 0)
        return fail(err, err_size, LAMINA_EINVAL, "sampler: n_vocab %d", (int)n_vocab);
    if (isnan(p->temperature) || isnan(p->top_p) || isnan(p->min_p) ||
        !(p->repeat_penalty > 0.0f) || isnan(p->frequency_penalty) || isnan(p->presence_penalty) ||
        p->repeat_last_n < 0 || p->min_p > 1.0f || isinf(p->repeat_penalty))
        return fail(err, err_size, LAMINA_EINVAL,
                    "sampler: bad parameters (temperature %g top_p %g min_p %g repeat_penalty %g "
                    "repeat_last_n %d)", p->temperature, p->top_p, p->min_p, p->repeat_penalty,
                    (int)p->repeat_last_n);
    lamina_sampler *s = calloc(1, sizeof(*s));
    if (s == NULL)
        goto oom;
    s->p = *p;
    s->n_vocab = n_vocab;
    s->hist_cap = (size_t)p->repeat_last_n;
    if (s->hist_cap > 0) {
        s->hist = malloc(s->hist_cap * sizeof(lamina_token));
        s->scratch = malloc(s->hist_cap * sizeof(lamina_token));
        if (!s->hist || !s->scratch)
            goto oom;
    }
    s->work = malloc((size_t)n_vocab * sizeof(float));
    s->cands = malloc((size_t)n_vocab * sizeof(struct cand));
    s->heap = malloc((size_t)n_vocab * sizeof(struct cand));
    if (!s->work || !s->cands || !s->heap)
        goto oom;
    rng_seed(s->rng, p->seed);
    *out = s;
    return 0;
oom:
    lamina_sampler_free(s);
    return fail(err, err_size, LAMINA_ENOMEM, "sampler: out of memory");
}

void lamina_sampler_accept(lamina_sampler *s, lamina_token tok)
{
    if (tok < 0 || tok >= s->n_vocab || s->hist_cap == 0)
        return;
    s->hist[s->hist_pos] = tok;
    s->hist_pos = (s->hist_pos + 1) % s->hist_cap;
    if (s->hist_n < s->hist_cap)
        s->hist_n++;
}

void lamina_sampler_reset(lamina_sampler *s)
{
    s->hist_n = 0;
    s->hist_pos = 0;
    rng_seed(s->rng, s->p.seed);
}

/* ---- selection helpers ---- */

/* a ranks above b: larger value, then smaller id */
static int cand_above(const struct cand *a, const struct cand *b)
{
    return a->v > b->v || (a->v == b->v && a->id < b->id);
}

static int cmp_cand_desc(const void *x, const void *y)
{
    const struct cand *a = x, *b = y;
    return cand_above(a, b) ? -1 : cand_above(b, a) ? 1 : 0;
}

static int cmp_tok(const void *x, const void *y)
{
    lamina_token a = *(const lamina_token *)x, b = *(const lamina_token *)y;
    return a < b ? -1 : a > b;
}

/* sift down in a min-heap ordered by "ranks below" (root = worst kept) */
static void heap_down(struct cand *h, size_t n, size_t i)
{
    struct cand x = h[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && cand_above(&h[c], &h[c + 1]))
            c++;
        if (!cand_above(&x, &h[c]))
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

/* The best k of src[0..n) into dst[0..k), sorted best first.  O(n log k). */
static size_t select_top(struct cand *dst, const struct cand *src, size_t n, size_t k)
{
    if (k > n)
        k = n;
    if (k == 0)
        return 0;
    /* Step 1: heap of the first k. */
    memcpy(dst, src, k * sizeof(*dst));
    for (size_t i = k / 2; i-- > 0;)
        heap_down(dst, k, i);
    /* Step 2: each later candidate replaces the worst kept when better. */
    for (size_t i = k; i < n; i++) {
        if (cand_above(&src[i], &dst[0])) {
            dst[0] = src[i];
            heap_down(dst, k, 0);
        }
    }
    /* Step 3: sort the kept ones. */
    qsort(dst, k, sizeof(*dst), cmp_cand_desc);
    return k;
}

/* Penalties applied to a copy of logits; returns the array to use. */
static const float *apply_penalties(lamina_sampler *s, const float *logits)
{
    const lamina_sampler_params *p = &s->p;
    int active = s->hist_n > 0 && (p->repeat_penalty != 1.0f || p->frequency_penalty != 0.0f ||
                                   p->presence_penalty != 0.0f);
    if (!active)
        return logits;
    memcpy(s->work, logits, (size_t)s->n_vocab * sizeof(float));
    /* Step 1: the window's tokens, sorted, so each distinct one is seen once with its count. */
    memcpy(s->scratch, s->hist, s->hist_n * sizeof(lamina_token));
    qsort(s->scratch, s->hist_n, sizeof(lamina_token), cmp_tok);
    for (size_t i = 0; i < s->hist_n;) {
        size_t j = i + 1;
        while (j < s->hist_n && s->scratch[j] == s->scratch[i])
            j++;
        lamina_token id = s->scratch[i];
        float v = s->work[id];
        /* Step 2: repetition penalty pushes the logit toward "less likely" either sign. */
        if (v > 0.0f)
            v /= p->repeat_penalty;
        else
            v *= p->repeat_penalty;
        /* Step 3: frequency and presence penalties subtract. */
        v -= (float)(j - i) * p->frequency_penalty + p->presence_penalty;
        s->work[id] = v;
        i = j;
    }
    return s->work;
}

int lamina_sampler_sample(lamina_sampler *s, const float *logits, lamina_token *out)
{
    const lamina_sampler_params *p = &s->p;
    const float *lg = apply_penalties(s, logits);
    size_t n = (size_t)s->n_vocab;

    /* Step 1: greedy = argmax (lowest id on ties). */
    if (!(p->temperature > 0.0f)) {
        int32_t best = -1;
        float bv = -INFINITY;
        for (size_t i = 0; i < n; i++) {
            float v = lg[i];
            if (v > bv) {
                bv = v;
                best = (int32_t)i;
            }
        }
        if (best < 0)
            return LAMINA_EINVAL;
        *out = best;
        return 0;
    }

    /* Step 2: candidates = all finite logits (NaN and -inf never drawn). */
    struct cand *c = s->cands;
    size_t nc = 0;
    for (size_t i = 0; i < n; i++) {
        float v = lg[i];
        if (v > -INFINITY) { /* false for NaN */
            c[nc].v = v;
            c[nc].id = (int32_t)i;
            nc++;
        }
    }
    if (nc == 0)
        return LAMINA_EINVAL;
    int sorted = 0;

    /* Step 3: top-k by bounded heap. */
    if (p->top_k > 0 && (size_t)p->top_k < nc) {
        nc = select_top(s->heap, c, nc, (size_t)p->top_k);
        memcpy(c, s->heap, nc * sizeof(*c));
        sorted = 1;
    } else if (p->top_k > 0 || nc <= 64) {
        qsort(c, nc, sizeof(*c), cmp_cand_desc);
        sorted = 1;
    }

    /* Step 4: top-p: the smallest best-first prefix with probability >= top_p
     * under the softmax of the current candidates. */
    if (p->top_p < 1.0f && nc > 1) {
        float mx = -INFINITY;
        for (size_t i = 0; i < nc; i++)
            if (c[i].v > mx)
                mx = c[i].v;
        double sum = 0.0;
        for (size_t i = 0; i < nc; i++)
            sum += exp((double)c[i].v - mx);
        double target = (double)p->top_p * sum;
        size_t m = sorted ? nc : 256;
        for (;;) {
            const struct cand *best = c;
            if (!sorted) {
                if (m > nc)
                    m = nc;
                select_top(s->heap, c, nc, m);
                best = s->heap;
            }
            double cum = 0.0;
            size_t keep = 0;
            for (size_t i = 0; i < m; i++) {
                cum += exp((double)best[i].v - mx);
                if (cum >= target) {
                    keep = i + 1;
                    break;
                }
            }
            if (keep == 0 && m == nc)
                keep = nc; /* rounding: keep all */
            if (keep > 0) {
                if (!sorted)
                    memcpy(c, s->heap, keep * sizeof(*c));
                nc = keep;
                sorted = 1;
                break;
            }
            m = m > nc / 8 ? nc : m * 8;
        }
    }

    /* Step 5: min-p: keep logits within log(min_p) of the best (the best always stays). */
    if (p->min_p > 0.0f && nc > 1) {
        float mx = c[0].v;
        if (!sorted)
            for (size_t i = 1; i < nc; i++)
                if (c[i].v > mx)
                    mx = c[i].v;
        float thr = mx + logf(p->min_p);
        size_t k = 0;
        for (size_t i = 0; i < nc; i++)
            if (c[i].v >= thr)
                c[k++] = c[i];
        nc = k;
    }

    /* Step 6: temperature, softmax, draw. */
    float mx = -INFINITY;
    for (size_t i = 0; i < nc; i++)
        if (c[i].v > mx)
            mx = c[i].v;
    double sum = 0.0;
    for (size_t i = 0; i < nc; i++) {
        double e = exp(((double)c[i].v - mx) / p->temperature);
        c[i].v = (float)e;
        sum += e;
    }
    double r = rng_uniform(s->rng) * sum, cum = 0.0;
    for (size_t i = 0; i < nc; i++) {
        cum += c[i].v;
        if (r < cum) {
            *out = c[i].id;
            return 0;
        }
    }
    *out = c[nc - 1].id; /* rounding at the top end */
    return 0;
}

/* ---- stop strings ---- */

struct lamina_stop {
    char **stops;
    size_t *lens;
    size_t n;
    char *held;       /* text not yet emitted */
    size_t n_held, cap_held;
    char *emit;       /* what the last call emitted */
    size_t cap_emit;
    int stopped;
};

void lamina_stop_free(lamina_stop *st)
{
    if (st == NULL)
        return;
    for (size_t i = 0; i < st->n; i++)
        free(st->stops[i]);
    free(st->stops);
    free(st->lens);
    free(st->held);
    free(st->emit);
    free(st);
}

int lamina_stop_create(const char *const *stops, size_t n, lamina_stop **out,
                       char *err, size_t err_size)
{
    if (out == NULL || (stops == NULL && n > 0))
        return fail(err, err_size, LAMINA_EINVAL, "stop: NULL argument");
    *out = NULL;
    lamina_stop *st = calloc(1, sizeof(*st));
    if (st == NULL)
        goto oom;
    if (n > 0) {
        st->stops = calloc(n, sizeof(char *));
        st->lens = calloc(n, sizeof(size_t));
        if (!st->stops || !st->lens)
            goto oom;
    }
    for (size_t i = 0; i < n; i++) {
        if (stops[i] == NULL || stops[i][0] == 0)
            continue;
        size_t l = strlen(stops[i]);
        char *d = malloc(l + 1);
        if (!d)
            goto oom;
        memcpy(d, stops[i], l + 1);
        st->stops[st->n] = d;
        st->lens[st->n] = l;
        st->n++;
    }
    *out = st;
    return 0;
oom:
    lamina_stop_free(st);
    return fail(err, err_size, LAMINA_ENOMEM, "stop: out of memory");
}

void lamina_stop_reset(lamina_stop *st)
{
    st->n_held = 0;
    st->stopped = 0;
}

static int grow(char **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 64;
    while (nc < need) {
        if (nc > SIZE_MAX / 2)
            return LAMINA_ENOMEM;
        nc *= 2;
    }
    char *np = realloc(*p, nc);
    if (!np)
        return LAMINA_ENOMEM;
    *p = np;
    *cap = nc;
    return 0;
}

int lamina_stop_feed(lamina_stop *st, const char *text, size_t len,
                     const char **emit, size_t *emit_len, int *stopped)
{
    *emit = "";
    *emit_len = 0;
    *stopped = st->stopped;
    if (st->stopped)
        return 0;
    if (len > SIZE_MAX / 2 - st->n_held)
        return LAMINA_ENOMEM;
    if (grow(&st->held, &st->cap_held, st->n_held + len) || grow(&st->emit, &st->cap_emit, st->n_held + len))
        return LAMINA_ENOMEM;
    if (len > 0)
        memcpy(st->held + st->n_held, text, len);
    st->n_held += len;
    const char *h = st->held;
    size_t n = st->n_held;

    /* Step 1: a complete stop string -> emit what precedes the earliest one. */
    size_t first = SIZE_MAX;
    for (size_t k = 0; k < st->n && n > 0; k++) {   /* nothing held yet: h may be NULL */
        const char *m = memmem(h, n, st->stops[k], st->lens[k]);
        if (m != NULL && (size_t)(m - h) < first)
            first = (size_t)(m - h);
    }
    if (first != SIZE_MAX) {
        memcpy(st->emit, h, first);
        *emit = st->emit;
        *emit_len = first;
        st->n_held = 0;
        st->stopped = 1;
        *stopped = 1;
        return 0;
    }
    /* Step 2: hold the longest tail that is a proper prefix of a stop string. */
    size_t hold = 0;
    for (size_t k = 0; k < st->n; k++) {
        size_t maxl = st->lens[k] - 1 < n ? st->lens[k] - 1 : n;
        for (size_t l = maxl; l > hold; l--) {
            if (memcmp(h + n - l, st->stops[k], l) == 0) {
                hold = l;
                break;
            }
        }
    }
    if (n > hold)               /* nothing held yet: the buffers may still be NULL */
        memcpy(st->emit, h, n - hold);
    *emit = st->emit ? st->emit : "";
    *emit_len = n - hold;
    if (hold > 0)
        memmove(st->held, h + n - hold, hold);
    st->n_held = hold;
    return 0;
}

void lamina_stop_flush(lamina_stop *st, const char **emit, size_t *emit_len)
{
    if (st->stopped || st->n_held == 0 || grow(&st->emit, &st->cap_emit, st->n_held) != 0) {
        *emit = "";
        *emit_len = 0;
        st->n_held = 0;
        return;
    }
    memcpy(st->emit, st->held, st->n_held);
    *emit = st->emit;
    *emit_len = st->n_held;
    st->n_held = 0;
}
