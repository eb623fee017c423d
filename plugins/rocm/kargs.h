/*
 * kargs.h - the one argument block every kernel takes (by value), shared
 * by the host code (C11) and the kernels (HIP, CUDA or host C++).
 *
 * The host fills t[0] with dst and t[1..4] with src[0..3] of a lamina_node,
 * each as a device address and the node's shapes and strides; ip/fp are the
 * node's parameters.  Layout: only fixed-size fields, no pointers, so it is
 * the same on every compiler and on the device.
 */
#ifndef LAMINA_GPU_KARGS_H
#define LAMINA_GPU_KARGS_H

#include <stdint.h>

#define KA_MAX_T 5

typedef struct ka_tensor {
    uint64_t data;      /* device address of element (0, 0, 0, 0) */
    int64_t  ne[4];     /* elements */
    int64_t  nb[4];     /* bytes; nb[0] is one block */
    int32_t  type;      /* lamina_dtype */
    int32_t  pad;
} ka_tensor;

typedef struct kargs {
    ka_tensor t[KA_MAX_T];  /* dst, src0 .. src3 */
    int32_t   n_src;
    int32_t   op;           /* lamina_op */
    int32_t   ip[8];
    float     fp[8];
    int64_t   n;            /* per kernel: elements, rows or columns covered */
} kargs;

/* Threads per block of every kernel (a multiple of both warp sizes). */
#define KA_BLOCK 64
/* MUL_MAT: X columns per block (each dequantized weight is used this often). */
#define KA_MM_COLS 8
/* ATTENTION: keys scored per round, largest Dv handled (Dv/KA_BLOCK per thread). */
#define KA_ATTN_CHUNK 128
#define KA_ATTN_MAX_DV 1024

#endif
