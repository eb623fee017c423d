/*
 * lookup.h - speculative decoding without a draft model (prompt lookup).
 *
 * Drafts: the longest suffix n-gram of a sequence's tokens (prompt and
 * generated, n from ngram_max down to ngram_min) that occurred earlier,
 * and the tokens that followed its latest earlier occurrence.  The index
 * (lamina_lookup) grows as tokens are appended: one hash-table insert per
 * n per token, never a rescan.
 *
 * Verification is the caller's (generate.c, batcher.c): the token just
 * sampled and the k drafts are decoded as one batch with logits for all;
 * the sampler then runs on each row in order, exactly as plain decoding
 * would (same penalties window, grammar state and random draws), and a
 * draft is kept while the sampled token equals it.  So the output is the
 * plain decoding's, for greedy and sampled alike: sampling x ~ p and
 * keeping draft d when x == d accepts d with probability p(d) and
 * otherwise yields a token from p without d, renormalised (speculative
 * sampling for a deterministic draft).
 *
 * The policy (lamina_spec) decides how many drafts are worth verifying:
 * it tracks, per n-gram length, the rate at which drafted tokens are
 * accepted, and the cost of a verify batch per extra token relative to a
 * one-token step (fitted from the decode times it is told), and drafts k
 * tokens only when (1 + expected accepted(k)) / (1 + cost * k) > 1.05.
 * When drafting does not pay it stops, and probes again after a wait
 * that doubles while probes keep failing.
 * Internal to liblamina.
 */
#ifndef LAMINA_LOOKUP_H
#define LAMINA_LOOKUP_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer.h"

#define LAMINA_LOOKUP_NGRAM_MAX 8    /* longest n-gram matched */
#define LAMINA_LOOKUP_DRAFT_MAX 32   /* most drafts per step */

typedef struct lamina_lookup lamina_lookup;

/* 1 <= ngram_min <= ngram_max <= LAMINA_LOOKUP_NGRAM_MAX, else
 * LAMINA_EINVAL.  *out owned by the caller (lamina_lookup_free). */
int  lamina_lookup_create(int32_t ngram_min, int32_t ngram_max, lamina_lookup **out,
                          char *err, size_t err_size);
void lamina_lookup_free(lamina_lookup *lk);
/* Forget every token (the table keeps its memory). */
void lamina_lookup_clear(lamina_lookup *lk);
/* Append n tokens to the sequence.  LAMINA_ENOMEM (the index is then
 * cleared, and drafts are found again as tokens come). */
int  lamina_lookup_append(lamina_lookup *lk, const lamina_token *toks, int32_t n);
int32_t lamina_lookup_len(const lamina_lookup *lk);
/* k_max (<= LAMINA_LOOKUP_DRAFT_MAX) tokens that followed the latest
 * earlier occurrence at position `at` of the longest matching suffix
 * n-gram, into out; where they would run past the sequence's end they
 * continue from the drafts themselves (period len - at).  Returns k_max,
 * or 0 when no suffix n-gram occurred before; *ngram (may be NULL) gets
 * the n matched. */
int32_t lamina_lookup_draft(const lamina_lookup *lk, int32_t k_max, lamina_token *out, int32_t *ngram);

/* The adaptive policy; plain data, no allocation. */
typedef struct lamina_spec {
    int32_t k_max;                          /* most drafts per step */
    float   acc[LAMINA_LOOKUP_NGRAM_MAX + 1];  /* accept rate per n (EMA) */
    /* decode time fit t = a + b * n_tokens, exponentially forgotten */
    double  sw, sn, st, snn, snt;
    int32_t wait, backoff;                  /* steps without drafting, probe interval */
    /* counters for statistics */
    int64_t n_drafted, n_accepted, n_verify;
} lamina_spec;

void lamina_spec_init(lamina_spec *sp, int32_t k_max);
/* The cost of a verify batch per extra token, relative to a one-token
 * step: from the fitted times when they span several batch sizes, else a
 * default. */
float lamina_spec_cost(const lamina_spec *sp);
/* How many of `avail` drafts (found with an n-gram of `ngram`) to verify
 * now: 0 to decode the token alone. */
int32_t lamina_spec_want(lamina_spec *sp, int32_t ngram, int32_t avail);
/* A verify of `drafted` drafts from an n-gram of `ngram` kept `accepted`. */
void lamina_spec_result(lamina_spec *sp, int32_t ngram, int32_t drafted, int32_t accepted);
/* A decode of n_tokens (each with logits) took `seconds`. */
void lamina_spec_time(lamina_spec *sp, int32_t n_tokens, double seconds);

#endif
