/*
 * cuda.c - cuda.so's side of the CUDA driver: libcuda.so.1 loaded at run
 * time (never linked), the driver API entry points it needs, and the
 * probe.  The kernels are kernels.hip built by nvcc into a fatbin of
 * cubins, one per architecture in GPU_CODE_TARGETS (no PTX: a device
 * whose compute capability is not listed is rejected, not JIT-compiled).
 *
 * The probe reports:
 *   cuda-driver  the CUDA version the driver supports (cuDriverGetVersion)
 *                against the toolkit cuda.so was built with; rule at-least:
 *                an older driver is the classic "driver version is
 *                insufficient for CUDA runtime version", rejected before use
 *   nvidia-kmd   the kernel module's version (/proc/driver/nvidia/version)
 * and each device: name, arch sm_XY (compute capability), memory.
 */
#define _GNU_SOURCE
#include <config.h>

#include <dlfcn.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu.h"

#define CU_SUCCESS 0
#define CU_ERROR_OUT_OF_MEMORY 2
#define CU_ERROR_NO_DEVICE 100
#define CU_ERROR_INVALID_DEVICE 101
#define CU_ERROR_INVALID_IMAGE 200
#define CU_ERROR_NO_BINARY_FOR_GPU 209
#define CU_ERROR_ILLEGAL_ADDRESS 700
#define CU_ERROR_LAUNCH_FAILED 719
#define CU_DEV_ATTR_MAX_GRID_DIM_X 5
#define CU_DEV_ATTR_MAX_GRID_DIM_Y 6
#define CU_DEV_ATTR_CC_MAJOR 75
#define CU_DEV_ATTR_CC_MINOR 76

typedef int cu_err;
typedef unsigned long long cu_ptr;

#define CU_FUNCS(X)                                                              \
    X(cuInit, cu_err (*)(unsigned))                                              \
    X(cuDriverGetVersion, cu_err (*)(int *))                                     \
    X(cuDeviceGetCount, cu_err (*)(int *))                                       \
    X(cuDeviceGet, cu_err (*)(int *, int))                                       \
    X(cuDeviceGetName, cu_err (*)(char *, int, int))                             \
    X(cuDeviceGetAttribute, cu_err (*)(int *, int, int))                         \
    X(cuDeviceTotalMem_v2, cu_err (*)(size_t *, int))                            \
    X(cuDevicePrimaryCtxRetain, cu_err (*)(void **, int))                        \
    X(cuDevicePrimaryCtxRelease_v2, cu_err (*)(int))                             \
    X(cuCtxSetCurrent, cu_err (*)(void *))                                       \
    X(cuCtxSynchronize, cu_err (*)(void))                                        \
    X(cuMemGetInfo_v2, cu_err (*)(size_t *, size_t *))                           \
    X(cuMemAlloc_v2, cu_err (*)(cu_ptr *, size_t))                               \
    X(cuMemFree_v2, cu_err (*)(cu_ptr))                                          \
    X(cuMemcpyHtoD_v2, cu_err (*)(cu_ptr, const void *, size_t))                 \
    X(cuMemcpyDtoH_v2, cu_err (*)(void *, cu_ptr, size_t))                       \
    X(cuModuleLoadData, cu_err (*)(void **, const void *))                       \
    X(cuModuleUnload, cu_err (*)(void *))                                        \
    X(cuModuleGetFunction, cu_err (*)(void **, void *, const char *))            \
    X(cuLaunchKernel, cu_err (*)(void *, unsigned, unsigned, unsigned, unsigned, \
                                 unsigned, unsigned, unsigned, void *, void **,  \
                                 void **))                                       \
    X(cuGetErrorName, cu_err (*)(cu_err, const char **))

struct gpu_rt {
    void *dl;
    char path[PATH_MAX];
    int dev;                    /* the device whose primary context is held */
    void *ctx;
#define X(name, type) __typeof__(type) name;
    CU_FUNCS(X)
#undef X
};

static const char *ename(const gpu_rt *rt, cu_err e)
{
    const char *s = NULL;
    if (rt == NULL || rt->cuGetErrorName == NULL || rt->cuGetErrorName(e, &s) != CU_SUCCESS)
        return "CUDA_ERROR_?";
    return s != NULL ? s : "CUDA_ERROR_?";
}

static int fail(const gpu_rt *rt, cu_err e, const char *what, char *err, size_t err_size)
{
    gpu_err(err, err_size, "%s: %s (%d)", what, ename(rt, e), e);
    switch (e) {
    case CU_ERROR_OUT_OF_MEMORY: return LAMINA_ENOMEM;
    case CU_ERROR_NO_DEVICE: case CU_ERROR_INVALID_DEVICE: return LAMINA_ENODEV;
    case CU_ERROR_NO_BINARY_FOR_GPU: case CU_ERROR_INVALID_IMAGE: return LAMINA_ENOTSUP;
    case CU_ERROR_ILLEGAL_ADDRESS: case CU_ERROR_LAUNCH_FAILED: return LAMINA_EDEVLOST;
    default: return LAMINA_EIO;
    }
}

static void dl_path(void *dl, char *out, size_t size)
{
    struct link_map *lm = NULL;
    char real[PATH_MAX];

    out[0] = '\0';
    if (dlinfo(dl, RTLD_DI_LINKMAP, &lm) != 0 || lm == NULL || lm->l_name == NULL)
        return;
    snprintf(out, size, "%s", realpath(lm->l_name, real) ? real : lm->l_name);
}

int gpu_rt_load(gpu_rt **out, char *err, size_t err_size)
{
    gpu_rt *rt = calloc(1, sizeof *rt);
    if (rt == NULL) {
        gpu_err(err, err_size, "out of host memory");
        return LAMINA_ENOMEM;
    }
    rt->dev = -1;
    rt->dl = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (rt->dl == NULL) {
        const char *e = dlerror();
        gpu_err(err, err_size, "cannot load the CUDA driver libcuda.so.1: %s",
                e ? e : "not found");
        free(rt);
        return LAMINA_ENOENT;
    }
    dl_path(rt->dl, rt->path, sizeof rt->path);
#define X(name, type)                                                            \
    {                                                                            \
        void *sym = dlsym(rt->dl, #name);                                        \
        if (sym == NULL) {                                                       \
            gpu_err(err, err_size, "%s lacks %s: driver too old", rt->path, #name); \
            free(rt);                                                            \
            return LAMINA_EVERSION;                                              \
        }                                                                        \
        memcpy(&rt->name, &sym, sizeof sym);                                     \
    }
    CU_FUNCS(X)
#undef X
    cu_err e = rt->cuInit(0);
    if (e != CU_SUCCESS) {
        int rc = fail(rt, e, "cuInit", err, err_size);
        free(rt);
        return rc;
    }
    *out = rt;
    return 0;
}

void gpu_rt_unload(gpu_rt *rt)
{
    if (rt == NULL)
        return;
    if (rt->ctx != NULL)
        rt->cuDevicePrimaryCtxRelease_v2(rt->dev);
    free(rt);
}

int gpu_rt_select(gpu_rt *rt, int dev, char *err, size_t err_size)
{
    cu_err e;
    if (rt->ctx == NULL || rt->dev != dev) {
        int d = 0;
        if (rt->ctx != NULL)
            rt->cuDevicePrimaryCtxRelease_v2(rt->dev);
        rt->ctx = NULL;
        if ((e = rt->cuDeviceGet(&d, dev)) != CU_SUCCESS)
            return fail(rt, e, "cuDeviceGet", err, err_size);
        if ((e = rt->cuDevicePrimaryCtxRetain(&rt->ctx, d)) != CU_SUCCESS) {
            rt->ctx = NULL;
            return fail(rt, e, "cuDevicePrimaryCtxRetain", err, err_size);
        }
        rt->dev = dev;
    }
    e = rt->cuCtxSetCurrent(rt->ctx);
    return e == CU_SUCCESS ? 0 : fail(rt, e, "cuCtxSetCurrent", err, err_size);
}

int gpu_rt_device_count(gpu_rt *rt, int *n, char *err, size_t err_size)
{
    cu_err e = rt->cuDeviceGetCount(n);
    if (e == CU_ERROR_NO_DEVICE) {
        *n = 0;
        return 0;
    }
    return e == CU_SUCCESS ? 0 : fail(rt, e, "cuDeviceGetCount", err, err_size);
}

int gpu_rt_device_desc(gpu_rt *rt, int dev, char *name, size_t name_size, uint64_t *total,
                       char *err, size_t err_size)
{
    int d = 0;
    size_t t = 0;
    cu_err e = rt->cuDeviceGet(&d, dev);
    if (e == CU_SUCCESS)
        e = rt->cuDeviceGetName(name, (int)name_size, d);
    if (e == CU_SUCCESS)
        e = rt->cuDeviceTotalMem_v2(&t, d);
    if (e != CU_SUCCESS)
        return fail(rt, e, "cuDeviceGet/GetName/TotalMem", err, err_size);
    name[name_size - 1] = '\0';
    *total = t;
    return 0;
}

int gpu_rt_mem_info(gpu_rt *rt, uint64_t *free_b, uint64_t *total_b)
{
    size_t f = 0, t = 0;
    if (rt->cuMemGetInfo_v2(&f, &t) != CU_SUCCESS)
        return LAMINA_EIO;
    *free_b = f;
    *total_b = t;
    return 0;
}

int gpu_rt_alloc(gpu_rt *rt, uint64_t size, uint64_t *dptr, char *err, size_t err_size)
{
    cu_ptr p = 0;
    char what[64];
    cu_err e = rt->cuMemAlloc_v2(&p, (size_t)size);
    if (e != CU_SUCCESS) {
        snprintf(what, sizeof what, "cuMemAlloc(%llu bytes)", (unsigned long long)size);
        return fail(rt, e, what, err, err_size);
    }
    *dptr = p;
    return 0;
}

void gpu_rt_free(gpu_rt *rt, uint64_t dptr)
{
    (void)rt->cuMemFree_v2(dptr);
}

int gpu_rt_upload(gpu_rt *rt, uint64_t dst, const void *src, uint64_t size, char *err,
                  size_t err_size)
{
    cu_err e = rt->cuMemcpyHtoD_v2(dst, src, (size_t)size);
    return e == CU_SUCCESS ? 0 : fail(rt, e, "cuMemcpyHtoD", err, err_size);
}

int gpu_rt_download(gpu_rt *rt, void *dst, uint64_t src, uint64_t size, char *err,
                    size_t err_size)
{
    cu_err e = rt->cuMemcpyDtoH_v2(dst, src, (size_t)size);
    return e == CU_SUCCESS ? 0 : fail(rt, e, "cuMemcpyDtoH", err, err_size);
}

int gpu_rt_module_load(gpu_rt *rt, const void *image, void **mod, char *err, size_t err_size)
{
    cu_err e = rt->cuModuleLoadData(mod, image);
    if (e == CU_ERROR_NO_BINARY_FOR_GPU || e == CU_ERROR_INVALID_IMAGE) {
        gpu_err(err, err_size, "cuModuleLoadData: %s (%d): no cubin for this device among "
                "the plugin's targets", ename(rt, e), e);
        return LAMINA_ENOTSUP;
    }
    return e == CU_SUCCESS ? 0 : fail(rt, e, "cuModuleLoadData", err, err_size);
}

void gpu_rt_module_unload(gpu_rt *rt, void *mod)
{
    if (mod != NULL)
        (void)rt->cuModuleUnload(mod);
}

int gpu_rt_function(gpu_rt *rt, void *mod, const char *name, void **fn, char *err,
                    size_t err_size)
{
    char what[96];
    cu_err e = rt->cuModuleGetFunction(fn, mod, name);
    snprintf(what, sizeof what, "cuModuleGetFunction(%s)", name);
    return e == CU_SUCCESS ? 0 : fail(rt, e, what, err, err_size);
}

int gpu_rt_launch(gpu_rt *rt, void *fn, const unsigned grid[3], const kargs *a, char *err,
                  size_t err_size)
{
    void *params[1] = { (void *)(uintptr_t)a };
    cu_err e = rt->cuLaunchKernel(fn, grid[0], grid[1], grid[2], KA_BLOCK, 1, 1, 0, NULL,
                                  params, NULL);
    return e == CU_SUCCESS ? 0 : fail(rt, e, "cuLaunchKernel", err, err_size);
}

int gpu_rt_sync(gpu_rt *rt, char *err, size_t err_size)
{
    cu_err e = rt->cuCtxSynchronize();
    return e == CU_SUCCESS ? 0 : fail(rt, e, "cuCtxSynchronize", err, err_size);
}

void gpu_rt_grid_limits(gpu_rt *rt, uint64_t *max_x, uint64_t *max_y)
{
    int x = 0, y = 0, d = 0;
    *max_x = 2147483647u;
    *max_y = 65535;
    if (rt->dev >= 0 && rt->cuDeviceGet(&d, rt->dev) == CU_SUCCESS &&
        rt->cuDeviceGetAttribute(&x, CU_DEV_ATTR_MAX_GRID_DIM_X, d) == CU_SUCCESS &&
        rt->cuDeviceGetAttribute(&y, CU_DEV_ATTR_MAX_GRID_DIM_Y, d) == CU_SUCCESS &&
        x > 0 && y > 0) {
        *max_x = (uint64_t)x;
        *max_y = (uint64_t)y;
    }
}

/* ---- probe ------------------------------------------------------------------ */

/* "550.54.14" from /proc/driver/nvidia/version. */
static int kmd_version(char *out, size_t size)
{
    char line[512];
    if (gpu_read_line("/proc/driver/nvidia/version", line, sizeof line) < 0)
        return -1;
    const char *p = strstr(line, "Kernel Module");
    if (p == NULL)
        return -1;
    p += strlen("Kernel Module");
    while (*p == ' ' || *p == '\t')
        p++;
    size_t n = strspn(p, "0123456789.");
    if (n == 0 || n >= size)
        return -1;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

int gpu_probe(const lamina_host *host, const lamina_probe_sink *sink, char *err,
              size_t err_size)
{
    char kmd[64] = "", found[32], msg[512];
    gpu_rt *rt = NULL;
    int v = 0, n = 0, rc;

    if (sink == NULL || !LAMINA_HAS_FN(sink, component) || !LAMINA_HAS_FN(sink, file) ||
        !LAMINA_HAS_FN(sink, device)) {
        gpu_err(err, err_size, "probe sink lacks component/file/device");
        return LAMINA_EINVAL;
    }
    /* 1. kernel module */
    if (kmd_version(kmd, sizeof kmd) == 0) {
        sink->component(sink->ctx, "nvidia-kmd", kmd, NULL, LAMINA_RULE_NONE,
                        "/proc/driver/nvidia/version");
    } else {
        sink->component(sink->ctx, "nvidia-kmd", NULL, NULL, LAMINA_RULE_NONE, NULL);
        gpu_note(sink, "no NVIDIA kernel module (/proc/driver/nvidia/version absent)");
    }
    /* 2. the driver library and the CUDA version it supports */
    rc = gpu_rt_load(&rt, msg, sizeof msg);
    if (rc == LAMINA_ENOENT) {
        gpu_note(sink, "%s", msg);
        sink->component(sink->ctx, "cuda-driver", NULL, GPU_BUILT_VERSION, LAMINA_RULE_AT_LEAST,
                        NULL);
        return 0;
    }
    if (rc < 0 && rc != LAMINA_ENODEV) {
        /* loaded but unusable (cuInit failed, symbols missing) */
        void *dl = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
        cu_err (*ver)(int *) = NULL;
        void *sym = dl ? dlsym(dl, "cuDriverGetVersion") : NULL;
        if (sym != NULL)
            memcpy(&ver, &sym, sizeof sym);
        if (ver != NULL && ver(&v) == CU_SUCCESS && v > 0) {
            snprintf(found, sizeof found, "%d.%d", v / 1000, (v % 1000) / 10);
            sink->component(sink->ctx, "cuda-driver", found, GPU_BUILT_VERSION,
                            LAMINA_RULE_AT_LEAST, NULL);
        }
        gpu_note(sink, "%s", msg);
        return 0;
    }
    if (rc == LAMINA_ENODEV) {
        gpu_note(sink, "%s", msg);
        return 0;
    }
    sink->file(sink->ctx, rt->path);
    if (rt->cuDriverGetVersion(&v) != CU_SUCCESS || v <= 0) {
        sink->component(sink->ctx, "cuda-driver", NULL, GPU_BUILT_VERSION, LAMINA_RULE_AT_LEAST,
                        rt->path);
        gpu_rt_unload(rt);
        return 0;
    }
    snprintf(found, sizeof found, "%d.%d", v / 1000, (v % 1000) / 10);
    sink->component(sink->ctx, "cuda-driver", found, GPU_BUILT_VERSION, LAMINA_RULE_AT_LEAST,
                    rt->path);
    {
        int bmaj = 0, bmin = 0;
        if (sscanf(GPU_BUILT_VERSION, "%d.%d", &bmaj, &bmin) == 2 &&
            v < bmaj * 1000 + bmin * 10)
            gpu_note(sink, "driver version is insufficient for CUDA runtime version: the "
                     "driver supports CUDA %s, cuda.so was built with CUDA %s", found,
                     GPU_BUILT_VERSION);
    }
    /* 3. devices */
    rc = gpu_rt_device_count(rt, &n, msg, sizeof msg);
    if (rc < 0) {
        gpu_note(sink, "%s", msg);
        gpu_rt_unload(rt);
        return 0;
    }
    if (n == 0)
        gpu_note(sink, "the CUDA driver found no device");
    for (int i = 0; i < n; i++) {
        char name[256] = "", arch[32] = "";
        uint64_t total = 0, fr = 0, tt = 0;
        int d = 0, maj = 0, min = 0;
        lamina_device_info info;

        memset(&info, 0, sizeof info);
        info.struct_size = sizeof info;
        info.index = (uint32_t)i;
        info.type = "discrete-gpu";
        info.driver_name = "NVIDIA";
        info.driver_version = kmd[0] ? kmd : NULL;
        info.runtime_version = found;
        info.vendor_id = 0x10de;
        rc = gpu_rt_device_desc(rt, i, name, sizeof name, &total, msg, sizeof msg);
        if (rc == 0 && rt->cuDeviceGet(&d, i) == CU_SUCCESS &&
            rt->cuDeviceGetAttribute(&maj, CU_DEV_ATTR_CC_MAJOR, d) == CU_SUCCESS &&
            rt->cuDeviceGetAttribute(&min, CU_DEV_ATTR_CC_MINOR, d) == CU_SUCCESS)
            snprintf(arch, sizeof arch, "sm_%d%d", maj, min);
        if (rc == 0 && gpu_rt_select(rt, i, NULL, 0) == 0 && gpu_rt_mem_info(rt, &fr, &tt) != 0)
            fr = 0;
        info.name = name[0] ? name : "unnamed CUDA device";
        info.arch = arch[0] ? arch : NULL;
        info.mem_total = total;
        info.mem_free = fr;
        info.unusable = rc < 0 ? msg : NULL;
        sink->device(sink->ctx, &info);
    }
    gpu_log(host, LAMINA_LOG_DEBUG, "probe: CUDA driver %s, %d device(s)", found, n);
    gpu_rt_unload(rt);
    return 0;
}
