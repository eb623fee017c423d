/*
 * backend.h - the CPU backend's instance, buffers and op entry points
 * (internal to cpu.so).
 */
#ifndef LAMINA_CPU_BACKEND_H
#define LAMINA_CPU_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "lamina/plugin.h"
#include "kernels.h"
#include "threadpool.h"

#ifdef LAMINA_CPU_AS_ABI_1_0
/* tests: the same kernels declared as a plugin built for ABI 1.0 */
#define CPU_PLUGIN_NAME    "cpu10"
#elif defined(LAMINA_CPU_AS_ABI_1_1)
/* tests: the same kernels declared as a plugin built for ABI 1.1 */
#define CPU_PLUGIN_NAME    "cpu11"
#else
#define CPU_PLUGIN_NAME    "cpu"
#endif
#define CPU_PLUGIN_VERSION "0.1.0"
#define CPU_ALIGN 64

struct lamina_buffer {
    struct lamina_buffer *prev, *next;  /* the backend's list of live buffers */
    lamina_backend *owner;
    uint8_t *base;                      /* byte 0 of the buffer */
    uint64_t size;
    int owned;                          /* 1: allocated here, 0: wrapped host memory */
};

struct lamina_backend {
    const lamina_host *host;
    int n_threads;
    int isa;                            /* enum cpu_isa in use */
    cpu_kernels k;                      /* the kernel table for `isa` */
    cpu_pool *pool;
    lamina_buffer *buffers;             /* head of the live-buffer list */
    /* scratch reused by every node (activations, per-thread rows) */
    void *scratch;
    size_t scratch_size;
};

/* The backend interface table (static storage). */
extern const lamina_backend_iface cpu_backend_iface;

/* Bytes per block and elements per block of a type this plugin knows;
 * 0 for other types. */
uint32_t cpu_type_block(uint32_t type);
uint32_t cpu_type_size(uint32_t type);

/* Shape/type/parameter check of a node, without touching memory.
 * Returns 1 when supported; else 0 and a reason in why. */
int cpu_node_check(const lamina_node *node, char *why, size_t why_size);

/* Run one node (already checked, buffers bounds-checked).  Returns 0 or a
 * negative LAMINA_E* code with a message. */
int cpu_node_run(lamina_backend *be, const lamina_node *node, char *err, size_t err_size);

/* Make be->scratch at least `size` bytes (64-byte aligned).  0 or
 * LAMINA_ENOMEM. */
int cpu_scratch_reserve(lamina_backend *be, size_t size);

/* Available and total host memory in bytes (0 when unknown). */
void cpu_meminfo(uint64_t *avail, uint64_t *total);

/* Host address of a tensor's byte 0. */
static inline uint8_t *cpu_tensor_data(const lamina_tensor *t)
{
    return t->buffer->base + t->offset;
}

#endif
