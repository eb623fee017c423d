/*
 * gpu.h - internals of the GPU plugins built from plugins/rocm (not
 * installed).  rocm.so and cuda.so share everything here except the file
 * that talks to the vendor runtime:
 *
 *   plugin.c   entry point and descriptor (GPU_CUDA selects the CUDA one)
 *   hip.c      rocm.so: libamdhip64 loaded at probe/open time, probe
 *   cuda.c     cuda.so: libcuda.so.1 (driver API) loaded likewise, probe
 *   backend.c  instance lifetime, buffers, transfers
 *   ops.c      supports_op and graph_compute: checks, then kernel launches
 *   codeobj.c  the compiled kernels (clang offload bundle or fatbin)
 *   kernels.hip, gpu_port.h, kargs.h   the kernels, for hipcc and nvcc
 *
 * Neither plugin links its vendor runtime: gpu_rt_load() dlopens it and
 * resolves every entry point it uses, naming the first one missing.
 */
#ifndef LAMINA_GPU_H
#define LAMINA_GPU_H

#include <stddef.h>
#include <stdint.h>

#include "lamina/plugin.h"
#include "kargs.h"

#ifdef GPU_CUDA
#define GPU_NAME "cuda"
#else
#define GPU_NAME "rocm"
#endif
#define GPU_VERSION "0.1.0"

/* ---- the vendor runtime (hip.c or cuda.c) --------------------------------- */

typedef struct gpu_rt gpu_rt;

/* Load the runtime the plugin was built against and resolve its entry
 * points.  *out is released with gpu_rt_unload (the library stays mapped:
 * vendor runtimes do not support being unloaded). */
int  gpu_rt_load(gpu_rt **out, char *err, size_t err_size);
void gpu_rt_unload(gpu_rt *rt);
/* Make device `dev` current for the calling thread (and, on first use,
 * create what the runtime needs for it). */
int  gpu_rt_select(gpu_rt *rt, int dev, char *err, size_t err_size);
int  gpu_rt_device_count(gpu_rt *rt, int *n, char *err, size_t err_size);
/* "AMD Instinct MI50" and total bytes of device `dev`. */
int  gpu_rt_device_desc(gpu_rt *rt, int dev, char *name, size_t name_size,
                        uint64_t *total, char *err, size_t err_size);
/* Free and total bytes of the current device. */
int  gpu_rt_mem_info(gpu_rt *rt, uint64_t *free_b, uint64_t *total_b);
int  gpu_rt_alloc(gpu_rt *rt, uint64_t size, uint64_t *dptr, char *err, size_t err_size);
void gpu_rt_free(gpu_rt *rt, uint64_t dptr);
int  gpu_rt_upload(gpu_rt *rt, uint64_t dst, const void *src, uint64_t size,
                   char *err, size_t err_size);
int  gpu_rt_download(gpu_rt *rt, void *dst, uint64_t src, uint64_t size,
                     char *err, size_t err_size);
/* Load the embedded code objects; LAMINA_ENOTSUP naming the device's
 * architecture when none of them fits it. */
int  gpu_rt_module_load(gpu_rt *rt, const void *image, void **mod, char *err, size_t err_size);
void gpu_rt_module_unload(gpu_rt *rt, void *mod);
int  gpu_rt_function(gpu_rt *rt, void *mod, const char *name, void **fn,
                     char *err, size_t err_size);
/* Launch fn on grid[0..2] blocks of KA_BLOCK threads with *a as its one
 * argument; asynchronous. */
int  gpu_rt_launch(gpu_rt *rt, void *fn, const unsigned grid[3], const kargs *a,
                   char *err, size_t err_size);
/* Wait for everything launched on the current device. */
int  gpu_rt_sync(gpu_rt *rt, char *err, size_t err_size);
/* The largest grid.x and grid.y of a launch. */
void gpu_rt_grid_limits(gpu_rt *rt, uint64_t *max_x, uint64_t *max_y);

/* The probe (hip.c / cuda.c): components, files, devices, notes. */
int  gpu_probe(const lamina_host *host, const lamina_probe_sink *sink,
               char *err, size_t err_size);

/* Targets the embedded code covers, NULL-terminated (plugin.c). */
extern const char *const gpu_code_targets[];
/* The embedded code (codeobj.c). */
extern const unsigned char gpu_codeobj[];
extern const unsigned char gpu_codeobj_end[];

/* ---- instances (backend.c, ops.c) ------------------------------------------ */

enum gpu_kernel_id {
    GK_GET_ROWS, GK_MUL_MAT, GK_RMS_NORM, GK_ELTWISE, GK_ROPE, GK_SET_ROWS,
    GK_ATTENTION, GK_COUNT
};

struct lamina_buffer {
    uint64_t dptr;                      /* device address of byte 0 */
    uint64_t size;
    lamina_backend *owner;
    struct lamina_buffer *prev, *next;
};

struct lamina_backend {
    const lamina_host *host;
    gpu_rt *rt;
    int device;
    void *module;
    void *fn[GK_COUNT];
    uint64_t max_grid_x, max_grid_y;
    uint64_t mem_total;
    int lost;                           /* the device was lost: only close */
    char lost_why[200];                 /* the call that found it lost */
    lamina_buffer *buffers;             /* every live buffer */
};

int  gpu_open(const lamina_host *host, const lamina_backend_params *params,
              lamina_backend **out, char *err, size_t err_size);
void gpu_close(lamina_backend *be);
int  gpu_memory(lamina_backend *be, uint64_t *free_bytes, uint64_t *total_bytes);
int  gpu_buffer_alloc(lamina_backend *be, uint64_t size, uint32_t usage,
                      lamina_buffer **out, char *err, size_t err_size);
int  gpu_buffer_wrap_host(lamina_backend *be, const void *ptr, uint64_t size,
                          lamina_buffer **out, char *err, size_t err_size);
void gpu_buffer_free(lamina_backend *be, lamina_buffer *buf);
int  gpu_buffer_upload(lamina_backend *be, lamina_buffer *buf, uint64_t offset,
                       const void *src, uint64_t size, char *err, size_t err_size);
int  gpu_buffer_download(lamina_backend *be, lamina_buffer *buf, uint64_t offset,
                         void *dst, uint64_t size, char *err, size_t err_size);
int  gpu_supports_op(lamina_backend *be, const lamina_node *node);
int  gpu_graph_compute(lamina_backend *be, const lamina_graph *graph,
                       char *err, size_t err_size);
/* After a call failed with LAMINA_EDEVLOST (its message in err): mark the
 * instance lost, remembering the first cause (backend.c). */
void gpu_mark_lost(lamina_backend *be, const char *err);
/* LAMINA_EDEVLOST with "the DEVICE device was lost (CAUSE); ..." (backend.c). */
int  gpu_lost_err(const lamina_backend *be, char *err, size_t err_size);
/* Names of the kernels, by gpu_kernel_id (ops.c). */
extern const char *const gpu_kernel_names[GK_COUNT];

/* ---- helpers (plugin.c) ---------------------------------------------------- */

void gpu_log(const lamina_host *host, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void gpu_err(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A probe note, formatted. */
void gpu_note(const lamina_probe_sink *sink, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* First line of a small text file, trailing space removed; 0 or -1. */
int  gpu_read_line(const char *path, char *out, size_t size);

#endif
