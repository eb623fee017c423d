/*
 * gpu_port.h - what kernels.hip needs from its compiler, for three of them:
 *
 *   hipcc (__HIPCC__)      AMD GPUs: code objects for rocm.so
 *   nvcc  (__CUDACC__)     NVIDIA GPUs: cubins for cuda.so
 *   a C++ host compiler    GPU_EMULATE: the same kernels run on the CPU by
 *                          tests/rocm's fake runtimes, which launch them
 *                          through gpu_emu_* below (never installed)
 *
 * The kernels use only this: GPU_KERNEL to define an entry point taking a
 * kargs by value, GPU_DEV for helpers, GPU_SHARED for block-shared arrays,
 * gpu_sync() as the block barrier, gpu_tid()/gpu_bid_x()/gpu_bid_y()/
 * gpu_nth() for indices, and C math (expf, tanhf, sqrtf, cos, sin, pow).
 * No warp intrinsics: AMD (64 lanes) and NVIDIA (32) differ there, and the
 * emulator has no lanes.
 */
#ifndef LAMINA_GPU_PORT_H
#define LAMINA_GPU_PORT_H

#include "kargs.h"

#if defined(__HIPCC__)
#include <hip/hip_runtime.h>
#define GPU_DEV __device__ static __forceinline__
#define GPU_SHARED __shared__
#define GPU_KERNEL(name) \
    extern "C" __global__ void __launch_bounds__(KA_BLOCK) name(const kargs a)
#define gpu_sync() __syncthreads()
#define gpu_tid() ((int)threadIdx.x)
#define gpu_nth() ((int)blockDim.x)
#define gpu_bid_x() ((int64_t)blockIdx.x)
#define gpu_bid_y() ((int64_t)blockIdx.y)
#define gpu_grid_x() ((int64_t)gridDim.x)

#elif defined(__CUDACC__)
#define GPU_DEV __device__ static __forceinline__
#define GPU_SHARED __shared__
#define GPU_KERNEL(name) \
    extern "C" __global__ void __launch_bounds__(KA_BLOCK) name(const kargs a)
#define gpu_sync() __syncthreads()
#define gpu_tid() ((int)threadIdx.x)
#define gpu_nth() ((int)blockDim.x)
#define gpu_bid_x() ((int64_t)blockIdx.x)
#define gpu_bid_y() ((int64_t)blockIdx.y)
#define gpu_grid_x() ((int64_t)gridDim.x)

#elif defined(GPU_EMULATE)
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
using std::cos;
using std::pow;
using std::sin;

/* The emulator (tests/rocm/emu.cc) runs one launch at a time in the
 * process, each block's threads as fibers, and sets this before resuming
 * a fiber (plain globals: thread-local storage of a dlopened library goes
 * through __tls_get_addr, which the sanitizers make slow). */
struct gpu_emu_idx {
    int tid, nth;
    int64_t bid_x, bid_y, grid_x;
};
extern gpu_emu_idx gpu_emu_cur;
/* Block barrier: yields to the other fibers of the block. */
void gpu_emu_sync(void);
typedef void (*gpu_emu_fn)(const kargs *a);
/* Called by the static registrars below: the kernel table by name. */
void gpu_emu_register(const char *name, gpu_emu_fn fn);
struct gpu_emu_registrar {
    gpu_emu_registrar(const char *name, gpu_emu_fn fn) { gpu_emu_register(name, fn); }
};

#define GPU_DEV static inline
/* one block runs at a time: its fibers share these */
#define GPU_SHARED static
#define GPU_KERNEL(name)                                                    \
    static void name##_body(const kargs &a);                                \
    static void name##_entry(const kargs *a) { name##_body(*a); }           \
    static gpu_emu_registrar name##_registrar(#name, name##_entry);         \
    static void name##_body(const kargs &a)
#define gpu_sync() gpu_emu_sync()
#define gpu_tid() (gpu_emu_cur.tid)
#define gpu_nth() (gpu_emu_cur.nth)
#define gpu_bid_x() (gpu_emu_cur.bid_x)
#define gpu_bid_y() (gpu_emu_cur.bid_y)
#define gpu_grid_x() (gpu_emu_cur.grid_x)

#else
#error "gpu_port.h: compile with hipcc, nvcc, or a C++ compiler with -DGPU_EMULATE"
#endif

#endif
