/*
 * sampler.h - pick the next token from a logits vector, and hold back
 * streamed text that could be the start of a stop string.
 *
 * Order of the steps (as llama.cpp's default chain):
 *   repetition penalties -> top-k -> top-p -> min-p -> temperature -> draw.
 * temperature <= 0 is greedy: the argmax after penalties (lowest id on ties).
 * Top-k uses a bounded heap (O(n log k)), never a full sort; top-p sorts
 * only the candidates it needs; min-p is a threshold test.
 * Internal to liblamina.
 */
#ifndef LAMINA_SAMPLER_H
#define LAMINA_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer.h"

typedef struct lamina_sampler_params {
    float temperature;      /* <= 0: greedy.  Default 0.8 */
    int32_t top_k;          /* <= 0: off.  Default 40 */
    float top_p;            /* >= 1: off.  Default 0.95 */
    float min_p;            /* <= 0: off.  Default 0.05 */
    float repeat_penalty;   /* 1: off.  Default 1.0.  Positive logits divided by it, negative multiplied */
    float frequency_penalty;/* logit -= count * this.  Default 0 */
    float presence_penalty; /* logit -= this if seen.  Default 0 */
    int32_t repeat_last_n;  /* window of accepted tokens the penalties look at.  Default 64 */
    uint64_t seed;          /* same seed, same logits -> same tokens */
} lamina_sampler_params;

typedef struct lamina_sampler lamina_sampler;

void lamina_sampler_params_default(lamina_sampler_params *p);

/* *out owned by the caller (lamina_sampler_free).  LAMINA_EINVAL for
 * n_vocab <= 0 or a NaN/negative parameter; LAMINA_ENOMEM. */
int  lamina_sampler_create(const lamina_sampler_params *p, int32_t n_vocab,
                           lamina_sampler **out, char *err, size_t err_size);
void lamina_sampler_free(lamina_sampler *s);

/* Choose a token from logits[n_vocab] (not modified).  Does not record the
 * token: call lamina_sampler_accept for it.  Returns 0, or LAMINA_EINVAL
 * when every logit is NaN or -inf. */
int  lamina_sampler_sample(lamina_sampler *s, const float *logits, lamina_token *out);

/* Record a token in the penalty window (prompt tokens too, if they should
 * count).  Ids outside [0, n_vocab) are ignored. */
void lamina_sampler_accept(lamina_sampler *s, lamina_token tok);

/* Forget the penalty window and reseed the generator with the params' seed. */
void lamina_sampler_reset(lamina_sampler *s);

/* ---- stop strings for streamed text ---- */

typedef struct lamina_stop lamina_stop;

/* Copies the n stop strings (empty ones ignored).  *out owned by the
 * caller (lamina_stop_free).  LAMINA_ENOMEM. */
int  lamina_stop_create(const char *const *stops, size_t n, lamina_stop **out,
                        char *err, size_t err_size);
void lamina_stop_free(lamina_stop *st);

/* Feed the next len bytes of generated text.  On return (*emit,
 * *emit_len) is the text now safe to show: everything except a tail that
 * could still grow into a stop string.  When a stop string is complete,
 * *stopped = 1 and the emitted text ends just before it (the stop string
 * and anything after are dropped); further feeds emit nothing.  *emit
 * points into st and stays valid until the next call.  LAMINA_ENOMEM. */
int  lamina_stop_feed(lamina_stop *st, const char *text, size_t len,
                      const char **emit, size_t *emit_len, int *stopped);
/* End of generation without a stop: the held-back tail. */
void lamina_stop_flush(lamina_stop *st, const char **emit, size_t *emit_len);
/* Forget the held text and the stopped state. */
void lamina_stop_reset(lamina_stop *st);

#endif
