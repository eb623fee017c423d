/*
 * ref.h - the core's reference implementation of every lamina_op.
 *
 * Deliberately simple scalar code (the oracle): double accumulation where it
 * matters, no SIMD, no threads.  Exposed two ways:
 *   - lamina_ref_node(): run one node over host memory;
 *   - lamina_ref_backend_iface(): a complete lamina_backend_iface over host
 *     malloc'd buffers, so the self-test and the model-layer check can run
 *     the same graph on a plugin and on the reference and compare.
 * Internal to liblamina (not installed).
 */
#ifndef LAMINA_REF_H
#define LAMINA_REF_H

#include "lamina/plugin.h"

/* Maps a tensor's buffer to the host address of its byte 0. */
typedef void *(*lamina_ref_base_fn)(void *ctx, lamina_buffer *buf);

/* Run one node.  Validates op, types, shapes and parameters first (bad ones
 * give LAMINA_EINVAL / LAMINA_ENOTSUP with a message naming the operand). */
int lamina_ref_node(const lamina_node *node, lamina_ref_base_fn base, void *ctx,
                    char *err, size_t err_size);

/* 1 when the reference implements this node's op/type combination. */
int lamina_ref_supports(const lamina_node *node);

/* A backend over host memory running lamina_ref_node for every node.
 * Static storage; device index 0 only; buffer_wrap_host supported. */
const lamina_backend_iface *lamina_ref_backend_iface(void);

#endif
