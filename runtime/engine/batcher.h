/*
 * batcher.h - many sequences over one engine, decoded together
 * (continuous batching).
 *
 * A batcher owns the engine's sequence slots.  Requests (a prompt, sampling
 * parameters, limits, callbacks) are submitted from any thread and wait in
 * a bounded FIFO queue until a slot is free.  Each call to
 * lamina_batcher_step() then runs ONE lamina_engine_decode() holding:
 *   - one token for every sequence that is generating (its last sample),
 *   - and, in the room left (at most n_chunk tokens), the next part of the
 *     prompts still being read, oldest request first,
 * so that sequences join and leave between steps and a long prompt is
 * read a chunk per step without stalling the others.  After the decode,
 * each sequence that got logits samples its next token (the rows of a
 * step are sampled in parallel by a few helper threads; everything else,
 * the callbacks included, happens in row order on the driver), streams its text
 * (whole UTF-8 characters, stop strings held back and removed, as
 * lamina_seq_generate does) and either continues or finishes.
 *
 * A free slot keeps the tokens its KV cache holds; a new request goes to
 * the free slot sharing the longest prefix with its prompt, and only the
 * rest of the prompt is read (prefix reuse, e.g. a chat's next turn).
 *
 * Cancellation (lamina_batcher_cancel, or the text callback returning
 * nonzero) and per-request deadlines take effect at the start of the next
 * step: the request finishes and its slot is free for the queue.
 *
 * Threads: submit, cancel, wake and stats may be called from any thread;
 * step and wait from one thread at a time (the driver).  Callbacks run on
 * the driver thread, with no batcher lock held; they must not call
 * lamina_batcher_step or lamina_batcher_free.
 * Internal to liblamina.
 */
#ifndef LAMINA_BATCHER_H
#define LAMINA_BATCHER_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "generate.h"
#include "grammar.h"
#include "model.h"
#include "sampler.h"
#include "tokenizer.h"

/* Stop reasons beyond enum lamina_stop_reason (generate.h). */
enum {
    LAMINA_STOP_TIMEOUT = 16,  /* the request's deadline passed */
    LAMINA_STOP_ERROR = 17     /* failed: see lamina_batcher_result.status/msg */
};

typedef struct lamina_batcher lamina_batcher;

typedef struct lamina_batcher_params {
    int32_t n_chunk;    /* most prompt tokens read in one step, over all
                           sequences; 0: the engine's n_batch - n_seq */
    int32_t max_queue;  /* requests waiting for a slot; more are refused */
    int32_t n_threads;  /* threads that sample the rows of a step in parallel
                           (the driver and n_threads - 1 helpers);
                           0: the number of cores, at most n_seq */
    int32_t spec_draft; /* speculative decoding (lookup.h): most drafts a
                           generating sequence adds to a step, 0 = off; the
                           engine's n_outputs - n_seq rows beyond one per
                           slot bound all drafts of a step.  Requests with
                           logprobs run without */
    int32_t spec_ngram; /* longest suffix n-gram looked up (1..8; 0: 3) */
} lamina_batcher_params;

/* What a finished request reports.  `tokens` (prompt + generated, the
 * end-of-generation token excluded) is valid only during the done
 * callback. */
typedef struct lamina_batcher_result {
    int      status;        /* 0, or the negative LAMINA_E* code of a failure */
    int      stop_reason;   /* lamina_stop_reason or LAMINA_STOP_TIMEOUT/ERROR */
    int32_t  n_prompt;      /* prompt tokens */
    int32_t  n_cached;      /* of which were already in the slot's cache */
    int32_t  n_gen;         /* tokens generated (the end-of-generation token not counted) */
    double   queue_s;       /* submit -> slot */
    double   prompt_s;      /* slot -> first token sampled */
    double   gen_s;         /* first token sampled -> finish */
    const lamina_token *tokens;
    int32_t  n_tokens;
    /* embedding requests (lamina_batcher_request.embed) that read their
     * whole prompt (status 0, stop_reason LAMINA_STOP_LENGTH): the pooled
     * final hidden state after the output norm, n_embd floats, not
     * normalised; valid only during the done callback.  NULL otherwise. */
    const float *embedding;
    int32_t  n_embd;
    char     msg[256];      /* on failure or timeout: what happened */
} lamina_batcher_result;

/* Text as produced; return nonzero to cancel the request. */
typedef int  (*lamina_batcher_text_fn)(void *ctx, const char *text, size_t len);
/* Each token sampled (end-of-generation included), with the seconds since
 * the previous one (for the first: since the request was submitted). */
typedef void (*lamina_batcher_token_fn)(void *ctx, lamina_token tok, double since_prev_s);
/* Each generated token's log-probability under the model (log-softmax of
 * its logits, before sampling settings and output formats), with the n
 * most likely tokens and theirs, most likely first (end-of-generation
 * tokens are not reported). */
#define LAMINA_MAX_TOP_LOGPROBS 20
typedef void (*lamina_batcher_logprob_fn)(void *ctx, lamina_token tok, float logprob,
                                          const lamina_token *top, const float *top_logprob, int n);
/* Called exactly once for every request that was accepted, whatever the
 * outcome; after it returns the batcher no longer uses ctx. */
typedef void (*lamina_batcher_done_fn)(void *ctx, const lamina_batcher_result *r);

typedef struct lamina_batcher_request {
    const lamina_token *prompt;     /* copied; at least one token */
    size_t   n_prompt;
    lamina_sampler_params sampling;
    int32_t  max_tokens;            /* < 0: until the context is full; 0: prompt only */
    int32_t  n_ctx;                 /* 0: the slot's; else at most this many
                                       positions (prompt + generated) */
    const char *stop[LAMINA_MAX_STOP];  /* copied; NULL/empty ignored */
    int      n_stop;
    double   deadline;              /* lamina_batcher_now() seconds; 0: none */
    int32_t  embed;                 /* 0: generate.  LAMINA_POOL_LAST or
                                       LAMINA_POOL_MEAN (model.h): read the
                                       prompt only, in the same steps as the
                                       other sequences, and return its pooled
                                       hidden state (result.embedding); no
                                       sampling, no text, no logits.  An
                                       encoder (hp.causal 0) takes only
                                       embedding requests, LAMINA_POOL_CLS
                                       too, each read whole in one step
                                       (at most n_batch tokens) */
    lamina_grammar *grammar;        /* NULL: free text.  Else structured
                                       output: only tokens keeping the text
                                       a valid prefix are drawn, and the
                                       request ends (LAMINA_STOP_EOG) when
                                       the value is complete; referenced
                                       for the request's life */
    int      render_special;        /* control tokens (not end-of-generation
                                       ones) are given as their text, for
                                       tool-call markers such as
                                       [TOOL_CALLS]; else as "" */
    int32_t  logprobs;              /* < 0 (or logprob NULL): none; else call
                                       logprob with this many alternatives
                                       (at most LAMINA_MAX_TOP_LOGPROBS) */
    lamina_batcher_logprob_fn logprob;
    lamina_batcher_text_fn  text;   /* may be NULL */
    lamina_batcher_token_fn token;  /* may be NULL */
    lamina_batcher_done_fn  done;   /* may be NULL */
    void    *ctx;
} lamina_batcher_request;

typedef struct lamina_batcher_stats {
    int32_t  n_slots;
    int32_t  n_active;      /* requests holding a slot */
    int32_t  n_queued;      /* waiting for one */
    int32_t  max_queue;
    uint64_t n_steps;       /* decode calls so far */
    uint64_t n_decoded;     /* tokens decoded so far (prompt and generated) */
    uint64_t n_finished;    /* requests finished */
    uint64_t n_shared;      /* steps that decoded tokens of two or more sequences */
    uint64_t n_failovers;   /* steps that met a lost device (the engine moved on) */
    double   busy_s;        /* seconds spent in steps that decoded */
    double   decode_s;      /* of which in lamina_engine_decode */
    int64_t  kv_used;       /* KV cache positions held by running requests
                               (after the last step) */
    int64_t  kv_size;       /* positions of all sequence slots */
    uint64_t n_drafted;     /* speculation: draft tokens verified */
    uint64_t n_accepted;    /* of which were kept */
} lamina_batcher_stats;

/* CLOCK_MONOTONIC in seconds (the clock of deadlines). */
double lamina_batcher_now(void);

/* The engine and tokenizer are borrowed and must outlive the batcher; the
 * batcher is the only user of the engine's slots while it exists.
 * *out owned by the caller (lamina_batcher_free).  LAMINA_EINVAL for bad
 * parameters, LAMINA_ENOMEM. */
int  lamina_batcher_create(lamina_engine *e, const lamina_tokenizer *tok,
                           const lamina_batcher_params *p, lamina_batcher **out,
                           char *err, size_t err_size);
/* Every request not finished yet gets its done callback (LAMINA_STOP_CANCEL,
 * status LAMINA_ECANCELED), on the calling thread.  NULL is a no-op. */
void lamina_batcher_free(lamina_batcher *b);

/* Queue a request.  *id (may be NULL) names it for lamina_batcher_cancel.
 * Errors (the done callback is then never called): LAMINA_EINVAL (no
 * prompt, a token outside the vocabulary, bad sampling parameters),
 * LAMINA_ERANGE "prompt of N tokens does not fit the context of C",
 * LAMINA_EREJECTED "queue full" when max_queue requests already wait,
 * LAMINA_ENOMEM. */
int  lamina_batcher_submit(lamina_batcher *b, const lamina_batcher_request *r, uint64_t *id,
                           char *err, size_t err_size);

/* Ask a request to stop; it finishes (LAMINA_STOP_CANCEL) at the start of
 * the next step.  Unknown or finished ids are ignored. */
void lamina_batcher_cancel(lamina_batcher *b, uint64_t id);

/* One decode step as described above.  Returns the number of tokens
 * decoded (0: nothing to do), or the negative code of an engine failure,
 * in which case every request of that batch has finished with
 * LAMINA_STOP_ERROR and the message, and the batcher stays usable.
 * A lost device the engine recovered from (lamina_engine_epoch grew, the
 * engine still usable) fails nothing: every running request reads its
 * tokens again from the start of the next steps and carries on with the
 * same draws; the step returns 0 with the engine's message in err. */
int  lamina_batcher_step(lamina_batcher *b, char *err, size_t err_size);

/* Block until there is work for a step, lamina_batcher_wake is called, or
 * timeout_s passes.  Returns 1 when there is work, else 0. */
int  lamina_batcher_wait(lamina_batcher *b, double timeout_s);
/* Make a waiting lamina_batcher_wait return (for shutting a driver down). */
void lamina_batcher_wake(lamina_batcher *b);

void lamina_batcher_stats_get(lamina_batcher *b, lamina_batcher_stats *st);

/* L2-normalise the first d values of v in place, as Ollama returns
 * embeddings (a zero vector stays zero). */
void lamina_vec_normalise(float *v, int32_t d);

#endif
