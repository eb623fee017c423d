/*
 * fake_cuda.cc - a fake CUDA driver (libcuda.so.1) for cuda.so's tests
 * (never installed): the driver API entry points plugins/rocm/cuda.c
 * resolves, "device memory" in host memory, and kernel launches run by
 * the emulator (emu.cc) on kernels.hip compiled for the host.
 *
 * Taken from the environment:
 *   LAMINA_FAKE_CUDA_DRIVER   CUDA version the driver supports, default 13.0
 *   LAMINA_FAKE_CUDA_DEVICES  comma-separated sm_XY per device, default sm_90
 *   LAMINA_FAKE_CUDA_MEM_MIB  memory per device, default 16384
 *   LAMINA_FAKE_CUDA_FAIL     crash-enum: SIGSEGV in cuDeviceGetCount;
 *                             hang-enum: never returns from it
 *
 * cuModuleLoadData reads the fatbin nvcc -fatbin writes (magic 0xBA55ED50,
 * then entries of kind 2 = cubin with the SM number at byte 28 of their
 * header) and, like the driver, fails with CUDA_ERROR_NO_BINARY_FOR_GPU
 * when no cubin is for the current device.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "emu.h"

#define CU_OK 0
#define CU_INVALID_VALUE 1
#define CU_OUT_OF_MEMORY 2
#define CU_NOT_INITIALIZED 3
#define CU_INVALID_CONTEXT 201
#define CU_NO_DEVICE 100
#define CU_INVALID_DEVICE 101
#define CU_INVALID_IMAGE 200
#define CU_NO_BINARY_FOR_GPU 209
#define CU_NOT_FOUND 500

namespace {

struct device {
    int cc;                     /* 90 for sm_90 */
    uint64_t mem_total, mem_used;
};

struct state {
    int driver;
    std::vector<device> devs;
    std::map<uint64_t, std::pair<size_t, int>> allocs;
    std::mutex lock;
    int init;
};

state &st()
{
    static state *s = [] {
        state *n = new state;
        int maj = 13, min = 0;
        const char *v = getenv("LAMINA_FAKE_CUDA_DRIVER");
        if (v != NULL)
            sscanf(v, "%d.%d", &maj, &min);
        n->driver = maj * 1000 + min * 10;
        const char *d = getenv("LAMINA_FAKE_CUDA_DEVICES");
        std::string list = d ? d : "sm_90";
        const char *m = getenv("LAMINA_FAKE_CUDA_MEM_MIB");
        uint64_t mib = m ? strtoull(m, NULL, 10) : 16384;
        size_t p = 0;
        while (p < list.size()) {
            size_t c = list.find(',', p);
            std::string one = list.substr(p, c == std::string::npos ? std::string::npos : c - p);
            int cc = 0;
            if (sscanf(one.c_str(), "sm_%d", &cc) == 1)
                n->devs.push_back(device{ cc, mib << 20, 0 });
            if (c == std::string::npos)
                break;
            p = c + 1;
        }
        n->init = 0;
        return n;
    }();
    return *s;
}

/* The current context: device index + 1 (0 = none). */
thread_local uintptr_t g_ctx;

bool failing(const char *what)
{
    const char *f = getenv("LAMINA_FAKE_CUDA_FAIL");
    return f != NULL && strcmp(f, what) == 0;
}

int cur_dev()
{
    return g_ctx == 0 ? -1 : (int)(g_ctx - 1);
}

bool inside(uint64_t p, size_t n)
{
    state &s = st();
    std::lock_guard<std::mutex> g(s.lock);
    auto it = s.allocs.upper_bound(p);
    if (it == s.allocs.begin())
        return false;
    --it;
    return p >= it->first && p + n <= it->first + it->second.first;
}

struct module {
    int device;
};

} // namespace

extern "C" {

#define EXPORT __attribute__((visibility("default")))

EXPORT int cuInit(unsigned flags)
{
    (void)flags;
    st().init = 1;
    return CU_OK;
}

EXPORT int cuDriverGetVersion(int *v)
{
    *v = st().driver;
    return CU_OK;
}

EXPORT int cuDeviceGetCount(int *n)
{
    if (!st().init)
        return CU_NOT_INITIALIZED;
    if (failing("crash-enum"))
        raise(SIGSEGV);
    if (failing("hang-enum"))
        for (;;)
            pause();
    *n = (int)st().devs.size();
    return CU_OK;
}

EXPORT int cuDeviceGet(int *d, int ordinal)
{
    if (ordinal < 0 || (size_t)ordinal >= st().devs.size())
        return CU_INVALID_DEVICE;
    *d = ordinal;
    return CU_OK;
}

EXPORT int cuDeviceGetName(char *name, int len, int d)
{
    if (d < 0 || (size_t)d >= st().devs.size() || len <= 0)
        return CU_INVALID_DEVICE;
    snprintf(name, (size_t)len, "Fake NVIDIA GPU %d (sm_%d)", d, st().devs[(size_t)d].cc);
    return CU_OK;
}

EXPORT int cuDeviceGetAttribute(int *v, int attr, int d)
{
    if (d < 0 || (size_t)d >= st().devs.size())
        return CU_INVALID_DEVICE;
    switch (attr) {
    case 5: *v = 2147483647; return CU_OK;                     /* max grid x */
    case 6: *v = 65535; return CU_OK;                          /* max grid y */
    case 75: *v = st().devs[(size_t)d].cc / 10; return CU_OK;  /* cc major */
    case 76: *v = st().devs[(size_t)d].cc % 10; return CU_OK;  /* cc minor */
    default: return CU_INVALID_VALUE;
    }
}

EXPORT int cuDeviceTotalMem_v2(size_t *bytes, int d)
{
    if (d < 0 || (size_t)d >= st().devs.size())
        return CU_INVALID_DEVICE;
    *bytes = st().devs[(size_t)d].mem_total;
    return CU_OK;
}

EXPORT int cuDevicePrimaryCtxRetain(void **ctx, int d)
{
    if (d < 0 || (size_t)d >= st().devs.size())
        return CU_INVALID_DEVICE;
    *ctx = (void *)(uintptr_t)(d + 1);
    return CU_OK;
}

EXPORT int cuDevicePrimaryCtxRelease_v2(int d)
{
    return d < 0 || (size_t)d >= st().devs.size() ? CU_INVALID_DEVICE : CU_OK;
}

EXPORT int cuCtxSetCurrent(void *ctx)
{
    g_ctx = (uintptr_t)ctx;
    return CU_OK;
}

EXPORT int cuCtxSynchronize(void)
{
    return cur_dev() < 0 ? CU_INVALID_CONTEXT : CU_OK;
}

EXPORT int cuMemGetInfo_v2(size_t *free_b, size_t *total)
{
    state &s = st();
    int d = cur_dev();
    if (d < 0)
        return CU_INVALID_CONTEXT;
    std::lock_guard<std::mutex> g(s.lock);
    *total = s.devs[(size_t)d].mem_total;
    *free_b = s.devs[(size_t)d].mem_total - s.devs[(size_t)d].mem_used;
    return CU_OK;
}

EXPORT int cuMemAlloc_v2(uint64_t *p, size_t size)
{
    state &s = st();
    int d = cur_dev();
    if (d < 0)
        return CU_INVALID_CONTEXT;
    std::lock_guard<std::mutex> g(s.lock);
    device &dv = s.devs[(size_t)d];
    if (size == 0 || size > dv.mem_total - dv.mem_used)
        return size == 0 ? CU_INVALID_VALUE : CU_OUT_OF_MEMORY;
    void *m = NULL;
    if (posix_memalign(&m, 256, size) != 0)
        return CU_OUT_OF_MEMORY;
    memset(m, 0x5A, size);
    dv.mem_used += size;
    s.allocs[(uint64_t)(uintptr_t)m] = std::make_pair(size, d);
    *p = (uint64_t)(uintptr_t)m;
    return CU_OK;
}

EXPORT int cuMemFree_v2(uint64_t p)
{
    state &s = st();
    std::lock_guard<std::mutex> g(s.lock);
    auto it = s.allocs.find(p);
    if (it == s.allocs.end())
        return CU_INVALID_VALUE;
    s.devs[(size_t)it->second.second].mem_used -= it->second.first;
    s.allocs.erase(it);
    free((void *)(uintptr_t)p);
    return CU_OK;
}

EXPORT int cuMemcpyHtoD_v2(uint64_t dst, const void *src, size_t n)
{
    if (!inside(dst, n))
        return CU_INVALID_VALUE;
    memcpy((void *)(uintptr_t)dst, src, n);
    return CU_OK;
}

EXPORT int cuMemcpyDtoH_v2(void *dst, uint64_t src, size_t n)
{
    if (!inside(src, n))
        return CU_INVALID_VALUE;
    memcpy(dst, (const void *)(uintptr_t)src, n);
    return CU_OK;
}

EXPORT int cuModuleLoadData(void **mod, const void *image)
{
    const unsigned char *b = (const unsigned char *)image;
    uint32_t magic;
    uint16_t hsize;
    uint64_t fsize;
    int d = cur_dev();

    if (d < 0)
        return CU_INVALID_CONTEXT;
    if (image == NULL)
        return CU_INVALID_IMAGE;
    memcpy(&magic, b, 4);
    memcpy(&hsize, b + 6, 2);
    memcpy(&fsize, b + 8, 8);
    if (magic != 0xBA55ED50u || hsize < 16)
        return CU_INVALID_IMAGE;
    for (uint64_t p = hsize; p + 32 <= (uint64_t)hsize + fsize;) {
        uint16_t kind;
        uint32_t ehs, arch;
        uint64_t psz;
        memcpy(&kind, b + p, 2);
        memcpy(&ehs, b + p + 4, 4);
        memcpy(&psz, b + p + 8, 8);
        memcpy(&arch, b + p + 28, 4);
        if (ehs < 32)
            return CU_INVALID_IMAGE;
        if (kind == 2 && (int)arch == st().devs[(size_t)d].cc) {
            *mod = new module{ d };
            return CU_OK;
        }
        p += ehs + psz;
    }
    return CU_NO_BINARY_FOR_GPU;
}

EXPORT int cuModuleUnload(void *mod)
{
    delete (module *)mod;
    return CU_OK;
}

EXPORT int cuModuleGetFunction(void **fn, void *mod, const char *name)
{
    if (mod == NULL)
        return CU_INVALID_VALUE;
    gpu_emu_fn f = emu_find(name);
    if (f == NULL)
        return CU_NOT_FOUND;
    memcpy(fn, &f, sizeof f);
    return CU_OK;
}

EXPORT int cuLaunchKernel(void *fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                          unsigned by, unsigned bz, unsigned shared, void *stream,
                          void **params, void **extra)
{
    gpu_emu_fn f;
    char msg[256];
    (void)shared;
    if (cur_dev() < 0)
        return CU_INVALID_CONTEXT;
    if (fn == NULL || params == NULL || params[0] == NULL || stream != NULL || extra != NULL)
        return CU_INVALID_VALUE;
    memcpy(&f, &fn, sizeof f);
    if (emu_launch(f, gx, gy, gz, bx, by, bz, (const kargs *)params[0], msg, sizeof msg) < 0) {
        fprintf(stderr, "fake libcuda: %s\n", msg);
        return CU_INVALID_VALUE;
    }
    return CU_OK;
}

EXPORT int cuGetErrorName(int e, const char **s)
{
    switch (e) {
    case CU_OK: *s = "CUDA_SUCCESS"; return CU_OK;
    case CU_INVALID_VALUE: *s = "CUDA_ERROR_INVALID_VALUE"; return CU_OK;
    case CU_OUT_OF_MEMORY: *s = "CUDA_ERROR_OUT_OF_MEMORY"; return CU_OK;
    case CU_NOT_INITIALIZED: *s = "CUDA_ERROR_NOT_INITIALIZED"; return CU_OK;
    case CU_NO_DEVICE: *s = "CUDA_ERROR_NO_DEVICE"; return CU_OK;
    case CU_INVALID_DEVICE: *s = "CUDA_ERROR_INVALID_DEVICE"; return CU_OK;
    case CU_INVALID_IMAGE: *s = "CUDA_ERROR_INVALID_IMAGE"; return CU_OK;
    case CU_INVALID_CONTEXT: *s = "CUDA_ERROR_INVALID_CONTEXT"; return CU_OK;
    case CU_NO_BINARY_FOR_GPU: *s = "CUDA_ERROR_NO_BINARY_FOR_GPU"; return CU_OK;
    case CU_NOT_FOUND: *s = "CUDA_ERROR_NOT_FOUND"; return CU_OK;
    default: *s = NULL; return CU_INVALID_VALUE;
    }
}

} // extern "C"
