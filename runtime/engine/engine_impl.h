/*
 * engine_impl.h - shared between engine.c (buffers, decode), graph.c
 * (building the nodes of each stage) and plan.c (layer routing).
 */
#ifndef LAMINA_ENGINE_IMPL_H
#define LAMINA_ENGINE_IMPL_H

#include "engine.h"

/* Where one backend keeps what its stages read and write.  With all
 * buffers NULL the same layout describes nodes for supports_op checks. */
typedef struct stage_mem {
    lamina_buffer *scratch;     /* activations and per-batch inputs */
    uint64_t x, cur, q, k, v, att, g, u, xo, logits;       /* F32 areas */
    uint64_t ids, pos, rows, info, outs, houts, types;      /* I32 areas */
    uint64_t moe_logits, moe_w, moe_y, moe_ids;             /* experts (0: dense) */
    uint64_t moe_b;                                         /* the chosen experts' biases (gpt-oss) */
    uint64_t sh, sh_z, sh_pair, sh_ids;                     /* the shared expert (0: none) */
    lamina_buffer *kv;          /* KV cache of this backend's layers */
    uint64_t k_off[LAMINA_MAX_LAYERS], v_off[LAMINA_MAX_LAYERS];
    uint32_t kv_type;
} stage_mem;

/* A weight as the backend sees it. */
typedef struct weight_ref {
    lamina_buffer *buf;
    uint64_t offset;
} weight_ref;

/* Resolves a model tensor to its place on one backend (NULL buffer and
 * offset 0 for supports_op checks). */
typedef weight_ref (*weight_fn)(void *ctx, const lamina_gguf_tensor *t);

typedef struct node_list {
    lamina_node *v;
    int n, cap;
} node_list;

typedef struct graph_ctx {
    const lamina_model *m;
    const lamina_engine_params *p;
    const stage_mem *mem;
    weight_fn weight;
    void *weight_ctx;
    int32_t n_tokens;           /* tokens in this batch */
    int32_t n_out;              /* tokens with logits */
    int32_t n_hid;              /* tokens with their normed hidden state
                                   (no head: into the `cur` area) */
} graph_ctx;

/* graph.c: append the nodes of one stage.  LAMINA_ENOMEM on failure. */
int lamina_graph_input(node_list *nl, const graph_ctx *g);
int lamina_graph_layer(node_list *nl, const graph_ctx *g, int il);
int lamina_graph_output(node_list *nl, const graph_ctx *g);
void lamina_node_list_free(node_list *nl);

/* Scratch layout for n_batch tokens and n_outputs logits rows; returns the
 * total bytes.  with_output: reserve the logits area. */
uint64_t lamina_stage_layout(stage_mem *mem, const lamina_model *m,
                             const lamina_engine_params *p, int with_output);

/* Bytes of KV cache for one layer. */
uint64_t lamina_kv_layer_bytes(const lamina_model *m, const lamina_engine_params *p);

/* Stages the model check refused on a backend (lamina_plan_build's deny[]):
 * the stage goes to a part of its own on another backend. */
#define LAMINA_DENY_INPUT  1u     /* the embedding */
#define LAMINA_DENY_OUTPUT 2u     /* the output head */

/* plan.c: route layers.  deny (NULL: none) has one LAMINA_DENY_* mask per
 * backend.  parts[] gets at most LAMINA_MAX_PARTS entries in layer order
 * (one per backend with layers, plus a part for the embedding alone and
 * one for the head alone when deny moved them); notes gets one line per
 * backend passed over.  Returns the number of parts or a negative code
 * (nothing can run the model: err says why). */
int lamina_plan_build(const lamina_model *m, lamina_be *const *bes, int n_bes,
                      const lamina_engine_params *p, const uint32_t *deny, lamina_plan_part *parts,
                      char *notes, size_t notes_size, char *err, size_t err_size);

/* 1 when the backend is a host (CPU) device: its plugin declares
 * LAMINA_PLUGIN_F_HOST_MEMORY (a 1.0 plugin: its device type is "cpu"). */
int lamina_be_is_host(const lamina_be *be);
/* The ABI minor the backend's plugin was built for. */
uint32_t lamina_be_abi_minor(const lamina_be *be);
/* supports_op, and never an op newer than the plugin's minor. */
int lamina_be_supports(const lamina_be *be, const lamina_node *n);

#endif
