/*
 * engine.h - runs a model's forward pass over one or more open backends.
 *
 * The engine owns, per backend: the weights it holds (wrapped in place for
 * host backends, uploaded otherwise), the KV cache of its layers and a
 * scratch area for one batch.  A batch is any set of tokens from any of the
 * engine's sequence slots (continuous batching): each token carries its
 * slot and position, and the whole batch runs as one graph per backend.
 *
 * Layer routing (plan.c): layers go, in order, to the backends in the order
 * given (preference order), each taking as many as fit its memory and the
 * GPU layer cap; the input embedding goes with the first layer, the output
 * head with the last.  The plan records where layers actually run.
 * Internal to liblamina.
 */
#ifndef LAMINA_ENGINE_H
#define LAMINA_ENGINE_H

#include <stdint.h>

#include "lamina/lamina.h"
#include "model.h"

typedef struct lamina_engine lamina_engine;

typedef struct lamina_engine_params {
    int32_t n_ctx;          /* positions per sequence slot */
    int32_t n_seq;          /* sequence slots */
    int32_t n_batch;        /* most tokens in one decode call */
    int32_t n_outputs;      /* most tokens with logits in one call (>= n_seq) */
    int32_t gpu_layers;     /* -1 auto (all that fit), -2 all, N >= 0 */
    int64_t reserve_bytes;  /* device memory to leave free */
    int32_t kv_f32;         /* 1: F32 KV cache (default F16) */
    int32_t verify_layer;   /* 1: the model check: on every backend, the
                               first layer of each layer kind (not on host
                               memory backends), the embedding
                               and the output head it holds run against the
                               reference; a stage that disagrees moves to
                               another backend (engine.c) */
} lamina_engine_params;

void lamina_engine_params_default(lamina_engine_params *p);

/* Most parts a plan has: one per backend, plus the embedding and the
 * output head each alone on another backend (when the model check moved
 * them off the backend holding the first / last layers). */
#define LAMINA_MAX_PARTS (LAMINA_MAX_BACKENDS + 2)

/* One backend's share of the plan (or one stage alone: no layers). */
typedef struct lamina_plan_part {
    int      be;            /* index into the backends given to create */
    int      first, last;   /* layer range, inclusive; first > last: none */
    int      input, output; /* holds the embedding / the output head */
    uint64_t weight_bytes;  /* device memory for weights (0 when used in place) */
    uint64_t kv_bytes;
    uint64_t scratch_bytes;
} lamina_plan_part;

/* Backends are borrowed (caller keeps them open longer than the engine);
 * the model too.  Backends that end up with no layers are not used.
 * Backends refused for this model (unsupported ops, memory, failed layer
 * check) are named in the notes (lamina_engine_notes).
 * *out owned by the caller (lamina_engine_free). */
int  lamina_engine_create(lamina_model *model, lamina_be *const *bes, int n_bes,
                          const lamina_engine_params *params, lamina_engine **out,
                          char *err, size_t err_size);
void lamina_engine_free(lamina_engine *e);

const lamina_model *lamina_engine_model(const lamina_engine *e);
/* Grows by one each time the KV caches were lost (device failover). */
uint32_t lamina_engine_epoch(const lamina_engine *e);
/* 1 while some backend still runs the model. */
int lamina_engine_usable(const lamina_engine *e);
const lamina_engine_params *lamina_engine_params_get(const lamina_engine *e);

/* The plan: parts in layer order. */
int  lamina_engine_plan(const lamina_engine *e, const lamina_plan_part **parts);
/* Human-readable plan, one line per backend used, plus one line per
 * backend passed over with its reason.  Returns bytes written. */
size_t lamina_engine_describe_plan(const lamina_engine *e, char *buf, size_t size);
/* Backend label of part i ("cpu:0 Intel Xeon ..."). */
const char *lamina_engine_part_label(const lamina_engine *e, int i);

typedef struct lamina_batch {
    int32_t n_tokens;
    const int32_t *tokens;  /* [n_tokens] */
    const int32_t *pos;     /* [n_tokens] position within its sequence */
    const int32_t *seq;     /* [n_tokens] slot, 0 <= seq < n_seq */
    const int8_t  *logits;  /* [n_tokens] nonzero: return logits for it */
} lamina_batch;

/* Run the batch.  Writes n_out rows of n_vocab logits to `logits`, in the
 * order of the tokens that asked for them; returns n_out (>= 0) or a
 * negative code.  Positions must be written in order per slot: a token at
 * position p of slot s attends to positions 0..p of slot s (those written
 * by this or earlier calls).
 *
 * Device loss: when a backend answers LAMINA_EDEVLOST, the engine drops it,
 * plans the layers anew over the backends left (the plan and its notes say
 * so) and returns LAMINA_EDEVLOST for this batch.  Every KV cache is then
 * empty and lamina_engine_epoch() has grown: a caller that still has its
 * sequences' tokens feeds them again from position 0 and carries on
 * (lamina_seq_generate does).  When no backend is left,
 * lamina_engine_usable() is 0 and every decode fails. */
int  lamina_engine_decode(lamina_engine *e, const lamina_batch *b, float *logits,
                          char *err, size_t err_size);

/* lamina_engine_decode, and besides: every token with want_hidden[t]
 * nonzero returns its final hidden state after the output norm (the input
 * of the output head; what llama.cpp returns as a decoder model's
 * embedding), n_embd floats per row in token order, into `hidden` (room
 * for as many rows as tokens ask; at most n_batch).  The vocabulary
 * projection runs only for tokens that ask for logits: with none (logits
 * may then be NULL) the head is skipped.  Returns the number of logits
 * rows; *n_hidden (may be NULL) gets the number of hidden rows.  Failures
 * and device loss as lamina_engine_decode.
 * An encoder (model hp.causal 0, bert) has no head and no output norm: its
 * hidden state is the last layer's output, no token may ask for logits,
 * and each sequence of the batch must be whole in it (positions 0..n-1:
 * every token attends to all n); LAMINA_EINVAL otherwise. */
int  lamina_engine_decode_hidden(lamina_engine *e, const lamina_batch *b, const int8_t *want_hidden,
                                 float *logits, float *hidden, int32_t *n_hidden,
                                 char *err, size_t err_size);

#endif
