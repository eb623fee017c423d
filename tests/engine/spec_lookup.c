/* spec_lookup.c - the prompt-lookup index (runtime/engine/lookup.c)
 * against a brute-force search over random and repetitive sequences, fed
 * whole and token by token; and the speculation policy: it drafts while
 * drafts are kept, stops when they are not, and probes again. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "lamina/plugin.h"
#include "lookup.h"
#include "tap.h"

/* The longest suffix n-gram (n_max..n_min) of t[0..L) occurring earlier,
 * its latest earlier occurrence, and the up-to-k tokens after it. */
static int32_t brute(const lamina_token *t, int32_t L, int32_t n_min, int32_t n_max, int32_t k,
                     lamina_token *out, int32_t *ngram)
{
    *ngram = 0;
    for (int32_t n = n_max; n >= n_min; n--) {
        if (n > L) continue;
        for (int32_t at = L - 1; at >= n; at--) {      /* the n-gram t[at-n..at), followed by t[at] */
            if (memcmp(t + at - n, t + L - n, (size_t)n * sizeof *t)) continue;
            for (int32_t j = 0; j < k; j++)            /* periodic past the end */
                out[j] = t[at + (j % (L - at))];
            *ngram = n;
            return k;
        }
    }
    return 0;
}

static uint64_t rng = 12345;
static uint32_t rnd(uint32_t n)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng >> 33) % n;
}

static void check_sequence(const char *what, const lamina_token *t, int32_t L, int32_t n_min, int32_t n_max,
                           int32_t k)
{
    char err[256];
    lamina_lookup *a = NULL, *b = NULL;
    if (!ok(lamina_lookup_create(n_min, n_max, &a, err, sizeof err) == 0 &&
            lamina_lookup_create(n_min, n_max, &b, err, sizeof err) == 0, "%s: create", what))
        return;
    int bad = 0, drafts = 0;
    lamina_token got[LAMINA_LOOKUP_DRAFT_MAX], want[LAMINA_LOOKUP_DRAFT_MAX];
    for (int32_t i = 0; i < L && !bad; i++) {
        if (lamina_lookup_append(a, t + i, 1) < 0) { bad = 1; break; }
        int32_t ga, gw;
        int32_t na = lamina_lookup_draft(a, k, got, &ga);
        int32_t nw = brute(t, i + 1, n_min, n_max, k, want, &gw);
        drafts += nw > 0;
        if (na != nw || ga != gw || memcmp(got, want, (size_t)nw * sizeof *got)) {
            diag("%s: after %d tokens: %d drafts (n-gram %d), expected %d (n-gram %d)", what, i + 1, na, ga,
                 nw, gw);
            bad = 1;
        }
    }
    ok(!bad, "%s: drafts equal the brute-force search after every token (%d with drafts)", what, drafts);
    /* fed whole: the same drafts at the end */
    int32_t ga, gw;
    int32_t nb = lamina_lookup_append(b, t, L) == 0 ? lamina_lookup_draft(b, k, got, &ga) : -1;
    int32_t nw = brute(t, L, n_min, n_max, k, want, &gw);
    ok(nb == nw && ga == gw && !memcmp(got, want, (size_t)(nw > 0 ? nw : 0) * sizeof *got),
       "%s: fed whole, the same drafts", what);
    /* cleared: nothing to draft until tokens come again */
    lamina_lookup_clear(b);
    ok(lamina_lookup_len(b) == 0 && lamina_lookup_draft(b, k, got, &ga) == 0, "%s: cleared, no drafts", what);
    lamina_lookup_free(a);
    lamina_lookup_free(b);
}

int main(void)
{
    char err[256];
    lamina_lookup *lk = NULL;
    ok(lamina_lookup_create(0, 3, &lk, err, sizeof err) == LAMINA_EINVAL && !lk && strstr(err, "n-gram"),
       "n-gram length 0 refused: %s", err);
    ok(lamina_lookup_create(3, 2, &lk, err, sizeof err) == LAMINA_EINVAL, "min > max refused");
    ok(lamina_lookup_create(1, LAMINA_LOOKUP_NGRAM_MAX + 1, &lk, err, sizeof err) == LAMINA_EINVAL,
       "n-gram past the maximum refused");

    /* a known case: "a b c d x a b c" -> n-gram "a b c" -> "d x a b c" */
    {
        const lamina_token t[] = { 1, 2, 3, 4, 9, 1, 2, 3 };
        lamina_token out[8];
        int32_t g;
        lamina_lookup_create(1, 3, &lk, err, sizeof err);
        lamina_lookup_append(lk, t, 8);
        int32_t n = lamina_lookup_draft(lk, 8, out, &g);
        ok(n == 8 && g == 3 && out[0] == 4 && out[1] == 9 && out[2] == 1 && out[4] == 3 && out[5] == 4 &&
           out[7] == 1, "copy: the tokens after the earlier 3-gram, then periodic (%d drafts, n-gram %d)", n, g);
        n = lamina_lookup_draft(lk, 2, out, &g);
        ok(n == 2 && out[0] == 4 && out[1] == 9, "at most k drafts");
        const lamina_token y = 7;
        lamina_lookup_append(lk, &y, 1);
        ok(lamina_lookup_draft(lk, 8, out, &g) == 0 && g == 0, "an unseen token: no draft");
        lamina_lookup_free(lk);
    }

    /* random sequences: over few symbols (many matches, overlaps, the
     * latest occurrence chosen) and many (few matches); copies of spans */
    enum { L = 3000 };
    static lamina_token t[L];
    for (int32_t i = 0; i < L; i++) t[i] = (lamina_token)rnd(4);
    check_sequence("4 symbols, n 1..3", t, L, 1, 3, 8);
    check_sequence("4 symbols, n 2..5", t, L, 2, 5, 32);
    for (int32_t i = 0; i < L; i++) t[i] = (lamina_token)rnd(200000);
    check_sequence("200000 symbols", t, L, 1, 3, 8);
    for (int32_t i = 0; i < L; i++)
        t[i] = i > 40 && rnd(4) ? t[i - 1 - (int32_t)rnd(40)] : (lamina_token)rnd(50);
    check_sequence("copied spans", t, L, 1, 4, 16);

    /* the policy */
    lamina_spec sp;
    lamina_spec_init(&sp, 8);
    ok(lamina_spec_want(&sp, 3, 8) > 1, "a fresh policy drafts several tokens on a 3-gram match");
    for (int i = 0; i < 20; i++) lamina_spec_result(&sp, 3, 8, 8);
    ok(lamina_spec_want(&sp, 3, 8) == 8, "drafts all kept: the most drafts");
    ok(lamina_spec_want(&sp, 3, 3) == 3, "never more drafts than available");
    for (int i = 0; i < 30; i++) lamina_spec_result(&sp, 1, 2, 0);
    int asked = 0;
    for (int i = 0; i < 1000; i++) asked += lamina_spec_want(&sp, 1, 8) > 0;
    ok(asked > 0 && asked < 20, "drafts of 1-grams never kept: off, probing now and then (%d of 1000 steps)", asked);
    ok(lamina_spec_want(&sp, 3, 8) > 0, "the 3-gram rate is its own");
    /* cost from the decode times: t = 10 ms + 1 ms per token -> 1/11 */
    lamina_spec_init(&sp, 8);
    for (int i = 0; i < 50; i++) lamina_spec_time(&sp, 1 + i % 9, 0.010 + 0.001 * (1 + i % 9));
    float c = lamina_spec_cost(&sp);
    ok(c > 0.085f && c < 0.097f, "cost per extra token from the times: %.4f (1/11 expected)", (double)c);
    lamina_spec_init(&sp, 0);
    ok(lamina_spec_want(&sp, 3, 8) == 0, "k_max 0: never drafts");
    return done_testing();
}
