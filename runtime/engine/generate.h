/*
 * generate.h - one sequence's generation loop over an engine slot:
 * prompt prefill (reusing the prefix already in the slot's KV cache, the
 * rest in batches of n_batch as whole graphs), then sample / decode / stream
 * until an end-of-generation token, a stop string, the token limit, the
 * context end, or the caller cancels.
 * Internal to liblamina.
 */
#ifndef LAMINA_GENERATE_H
#define LAMINA_GENERATE_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "grammar.h"
#include "tokenizer.h"

#define LAMINA_MAX_STOP 8

typedef struct lamina_gen_params {
    float    temperature;     /* 0 = greedy */
    int32_t  top_k;           /* 0 = off */
    float    top_p;           /* 1 = off */
    float    min_p;           /* 0 = off */
    float    repeat_penalty;  /* 1 = off */
    int32_t  repeat_last_n;
    uint64_t seed;
    int32_t  max_tokens;      /* < 0: until the context is full */
    const char *stop[LAMINA_MAX_STOP];   /* stop strings (borrowed) */
    int      n_stop;
    const lamina_grammar *grammar;   /* NULL, or structured output (borrowed):
                                        only tokens keeping the text a valid
                                        prefix; ends when the value is complete */
    int32_t  spec_draft;      /* speculative decoding (lookup.h): most drafts
                                 verified per step, 0 = off; the output is
                                 the same either way */
    int32_t  spec_ngram;      /* longest suffix n-gram looked up (1..8) */
} lamina_gen_params;

/* From the [generate] section of a configuration. */
void lamina_gen_params_from_config(lamina_gen_params *gp, const lamina_config *cfg);

enum lamina_stop_reason {
    LAMINA_STOP_EOG = 0,       /* end-of-generation token */
    LAMINA_STOP_LENGTH = 1,    /* max_tokens reached */
    LAMINA_STOP_STRING = 2,    /* a stop string appeared */
    LAMINA_STOP_CONTEXT = 3,   /* the context is full */
    LAMINA_STOP_CANCEL = 4     /* the emit callback asked to stop */
};

typedef struct lamina_gen_stats {
    int32_t n_prompt;          /* prompt tokens */
    int32_t n_cached;          /* of which were already in the cache */
    int32_t n_gen;             /* tokens generated */
    double  prompt_s, gen_s;   /* wall time of prefill and of generation */
    int     stop_reason;
    int32_t n_drafted;         /* speculation: draft tokens verified */
    int32_t n_accepted;        /* of which were kept */
    int32_t n_steps;           /* decode calls of the generation */
} lamina_gen_stats;

/* Receives text as it is produced (whole UTF-8 characters, stop strings
 * removed).  Return nonzero to cancel. */
typedef int (*lamina_emit_fn)(void *ctx, const char *text, size_t len);

/* A sequence: its slot and the tokens its KV cache holds.  Zero-initialise
 * with the slot set; release with lamina_seq_free. */
typedef struct lamina_seq {
    int32_t slot;
    lamina_token *tokens;
    int32_t n, cap;
} lamina_seq;

void lamina_seq_free(lamina_seq *s);

/* Feed the prompt and generate.  With gp->spec_draft > 0, drafts from
 * the sequence's own tokens are verified in batches (lookup.h); the
 * engine needs n_outputs > 1 for that (up to spec_draft + 1 rows are
 * used), else generation runs plain.  Errors: LAMINA_ERANGE "prompt of N tokens
 * does not fit the context of C", engine errors.  Generated tokens are
 * appended to s->tokens (so a chat continues from the cache). */
int lamina_seq_generate(lamina_engine *e, const lamina_tokenizer *tok, lamina_seq *s,
                        const lamina_token *prompt, size_t n_prompt,
                        const lamina_gen_params *gp, lamina_emit_fn emit, void *ctx,
                        lamina_gen_stats *stats, char *err, size_t err_size);

/* Feed the prompt only; writes the last token's logits (n_vocab floats)
 * into `logits` (may be NULL).  Used by generation and the golden tests. */
int lamina_seq_prefill(lamina_engine *e, lamina_seq *s, const lamina_token *prompt,
                       size_t n_prompt, float *logits, int32_t *n_cached,
                       char *err, size_t err_size);

#endif
