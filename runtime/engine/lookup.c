/*
 * lookup.c - prompt-lookup drafts and the speculation policy (lookup.h).
 *
 * The index maps every n-gram toks[i-n..i) (ngram_min <= n <= ngram_max)
 * to the latest i at which a token followed it, in an open-addressing
 * table keyed by (n, hash) and checked against the tokens themselves.
 * Appending token i inserts the n-grams that end just before it, so the
 * sequence's own suffix is found only where it occurred earlier.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/lamina.h"
#include "lookup.h"

#define ERR(...) do { if (err) snprintf(err, err_size, __VA_ARGS__); } while (0)

typedef struct slot {
    uint32_t h;         /* hash of (n, tokens) */
    int32_t  n;         /* 0: empty */
    int32_t  at;        /* index of the token that followed the n-gram */
} slot;

struct lamina_lookup {
    int32_t n_min, n_max;
    lamina_token *toks;
    int32_t len, cap;
    slot *tab;
    uint32_t mask;      /* table size - 1 (a power of two) */
    uint32_t used;
};

static uint32_t ngram_hash(const lamina_token *t, int32_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (uint64_t)n;
    for (int32_t i = 0; i < n; i++) {
        h ^= (uint32_t)t[i];
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    return (uint32_t)h;
}

int lamina_lookup_create(int32_t ngram_min, int32_t ngram_max, lamina_lookup **out,
                         char *err, size_t err_size)
{
    *out = NULL;
    if (ngram_min < 1 || ngram_max < ngram_min || ngram_max > LAMINA_LOOKUP_NGRAM_MAX) {
        ERR("lookup: n-gram lengths %d..%d outside 1..%d", (int)ngram_min, (int)ngram_max,
            LAMINA_LOOKUP_NGRAM_MAX);
        return LAMINA_EINVAL;
    }
    lamina_lookup *lk = calloc(1, sizeof *lk);
    if (!lk) { ERR("out of memory"); return LAMINA_ENOMEM; }
    lk->n_min = ngram_min;
    lk->n_max = ngram_max;
    *out = lk;
    return 0;
}

void lamina_lookup_free(lamina_lookup *lk)
{
    if (!lk) return;
    free(lk->toks);
    free(lk->tab);
    free(lk);
}

void lamina_lookup_clear(lamina_lookup *lk)
{
    lk->len = 0;
    lk->used = 0;
    if (lk->tab) memset(lk->tab, 0, ((size_t)lk->mask + 1) * sizeof *lk->tab);
}

int32_t lamina_lookup_len(const lamina_lookup *lk)
{
    return lk->len;
}

/* The slot holding toks[at-n..at)'s n-gram, or the empty one it would take. */
static slot *find(const lamina_lookup *lk, const lamina_token *g, int32_t n, uint32_t h)
{
    for (uint32_t i = h & lk->mask;; i = (i + 1) & lk->mask) {
        slot *s = &lk->tab[i];
        if (s->n == 0) return s;
        if (s->h == h && s->n == n && !memcmp(lk->toks + s->at - n, g, (size_t)n * sizeof *g))
            return s;
    }
}

static int grow(lamina_lookup *lk)
{
    uint32_t size = lk->tab ? (lk->mask + 1) * 2 : 1024;
    if (size == 0 || size > (1u << 30)) return LAMINA_ENOMEM;
    slot *old = lk->tab;
    uint32_t old_size = old ? lk->mask + 1 : 0;
    lk->tab = calloc(size, sizeof *lk->tab);
    if (!lk->tab) { lk->tab = old; return LAMINA_ENOMEM; }
    lk->mask = size - 1;
    for (uint32_t i = 0; i < old_size; i++)
        if (old[i].n) *find(lk, lk->toks + old[i].at - old[i].n, old[i].n, old[i].h) = old[i];
    free(old);
    return 0;
}

int lamina_lookup_append(lamina_lookup *lk, const lamina_token *toks, int32_t n)
{
    if (n <= 0) return 0;
    if (n > INT32_MAX - lk->len) goto oom;
    if (lk->len + n > lk->cap) {
        int64_t cap = lk->cap ? lk->cap : 256;
        while (cap < (int64_t)lk->len + n) cap *= 2;
        if (cap > INT32_MAX) cap = INT32_MAX;
        lamina_token *v = realloc(lk->toks, (size_t)cap * sizeof *v);
        if (!v) goto oom;
        lk->toks = v;
        lk->cap = (int32_t)cap;
    }
    for (int32_t k = 0; k < n; k++) {
        const int32_t at = lk->len;
        lk->toks[at] = toks[k];
        lk->len++;
        /* the n-grams that end just before token `at` now have a follower */
        for (int32_t g = lk->n_min; g <= lk->n_max && g <= at; g++) {
            if ((uint64_t)(lk->used + 1) * 2 > (uint64_t)lk->mask + 1 && grow(lk) < 0) goto oom;
            const lamina_token *gram = lk->toks + at - g;
            uint32_t h = ngram_hash(gram, g);
            slot *s = find(lk, gram, g, h);
            if (s->n == 0) { s->n = g; s->h = h; lk->used++; }
            s->at = at;
        }
    }
    return 0;
oom:
    lamina_lookup_clear(lk);
    return LAMINA_ENOMEM;
}

int32_t lamina_lookup_draft(const lamina_lookup *lk, int32_t k_max, lamina_token *out, int32_t *ngram)
{
    if (ngram) *ngram = 0;
    if (k_max > LAMINA_LOOKUP_DRAFT_MAX) k_max = LAMINA_LOOKUP_DRAFT_MAX;
    if (k_max <= 0 || !lk->tab) return 0;
    const int32_t L = lk->len;
    for (int32_t g = lk->n_max; g >= lk->n_min; g--) {
        if (g > L) continue;
        const lamina_token *gram = lk->toks + L - g;
        const slot *s = find(lk, gram, g, ngram_hash(gram, g));
        if (s->n == 0) continue;
        /* past the end the drafts continue from themselves: a text that
         * repeats with period L - at goes on repeating */
        for (int32_t j = 0; j < k_max; j++) {
            int32_t at = s->at + j;
            out[j] = at < L ? lk->toks[at] : out[at - L];
        }
        if (ngram) *ngram = g;
        return k_max;
    }
    return 0;
}

/* ---- the policy ---- */

#define SPEC_COST_DEFAULT 0.25f    /* per extra token, before any timing */
#define SPEC_FORGET       0.97     /* weight of the past in the time fit */
#define SPEC_ACC_RATE     0.2f     /* EMA step of the accept rates */
#define SPEC_PROBE_FIRST  8        /* steps without drafts before a probe */
#define SPEC_PROBE_LAST   256
/* The gain drafting must promise.  The time fit sees only the batch's
 * decode; a rejected draft also costs its row's sampling, the cache
 * rollback and the index, which on free text (a quarter of the drafts
 * kept, a fitted gain of ~9% that measured as none) ate the whole
 * gain: so only a promise of 12% or more is taken. */
#define SPEC_MARGIN       1.12

void lamina_spec_init(lamina_spec *sp, int32_t k_max)
{
    memset(sp, 0, sizeof *sp);
    if (k_max > LAMINA_LOOKUP_DRAFT_MAX) k_max = LAMINA_LOOKUP_DRAFT_MAX;
    sp->k_max = k_max > 0 ? k_max : 0;
    /* optimistic for long matches (copied text), doubtful for single tokens */
    for (int n = 0; n <= LAMINA_LOOKUP_NGRAM_MAX; n++)
        sp->acc[n] = n >= 3 ? 0.6f : n == 2 ? 0.35f : 0.2f;
    sp->backoff = SPEC_PROBE_FIRST;
}

float lamina_spec_cost(const lamina_spec *sp)
{
    /* least squares t = a + b n over the forgotten sums; needs spread in n */
    double var = sp->sw * sp->snn - sp->sn * sp->sn;
    if (sp->sw < 4 || var <= 1e-9 * sp->sw * sp->sw) return SPEC_COST_DEFAULT;
    double b = (sp->sw * sp->snt - sp->sn * sp->st) / var;
    double a = (sp->st - b * sp->sn) / sp->sw;
    if (!(a + b > 0)) return SPEC_COST_DEFAULT;
    double c = b / (a + b);
    if (c < 0.005) c = 0.005;
    if (c > 2) c = 2;
    return (float)c;
}

/* expected drafts kept of k with accept rate p: p + p^2 + ... + p^k */
static double expect(double p, int32_t k)
{
    double e = 0, q = 1;
    for (int32_t i = 0; i < k; i++) { q *= p; e += q; }
    return e;
}

int32_t lamina_spec_want(lamina_spec *sp, int32_t ngram, int32_t avail)
{
    if (avail > sp->k_max) avail = sp->k_max;
    if (ngram < 0) ngram = 0;
    if (ngram > LAMINA_LOOKUP_NGRAM_MAX) ngram = LAMINA_LOOKUP_NGRAM_MAX;
    if (avail <= 0) return 0;
    const double p = sp->acc[ngram], c = lamina_spec_cost(sp);
    int32_t best = 0;
    double best_gain = SPEC_MARGIN;
    for (int32_t k = 1; k <= avail; k++) {
        double gain = (1.0 + expect(p, k)) / (1.0 + c * k);
        if (gain > best_gain) { best_gain = gain; best = k; }
    }
    if (best > 0) { sp->wait = 0; return best; }
    /* not worth it by the rates so far: probe with one draft now and then,
     * less often while probes keep failing */
    if (++sp->wait < sp->backoff) return 0;
    sp->wait = 0;
    if (sp->backoff < SPEC_PROBE_LAST) sp->backoff *= 2;
    return 1;
}

void lamina_spec_result(lamina_spec *sp, int32_t ngram, int32_t drafted, int32_t accepted)
{
    if (drafted <= 0) return;
    if (ngram < 0) ngram = 0;
    if (ngram > LAMINA_LOOKUP_NGRAM_MAX) ngram = LAMINA_LOOKUP_NGRAM_MAX;
    sp->n_verify++;
    sp->n_drafted += drafted;
    sp->n_accepted += accepted;
    /* each kept draft a success, the first rejected one a failure */
    float *a = &sp->acc[ngram];
    for (int32_t i = 0; i < accepted; i++) *a += SPEC_ACC_RATE * (1.0f - *a);
    if (accepted < drafted) *a -= SPEC_ACC_RATE * *a;
    if (accepted > 0) sp->backoff = SPEC_PROBE_FIRST;
}

void lamina_spec_time(lamina_spec *sp, int32_t n_tokens, double seconds)
{
    if (n_tokens <= 0 || !(seconds > 0) || !isfinite(seconds)) return;
    const double f = SPEC_FORGET, n = n_tokens;
    sp->sw = sp->sw * f + 1;
    sp->sn = sp->sn * f + n;
    sp->st = sp->st * f + seconds;
    sp->snn = sp->snn * f + n * n;
    sp->snt = sp->snt * f + n * seconds;
}
