/*
 * fake_hip.cc - a fake HIP runtime for the rocm plugin's tests (never
 * installed).  The tests copy it into a folder as libamdhip64.so.N and put
 * that folder on LD_LIBRARY_PATH.  It implements the entry points
 * plugins/rocm/hip.c resolves, with "device memory" in host memory and
 * kernel launches run by the emulator (emu.cc) on kernels.hip compiled
 * for the host, so the plugin's host code and the kernels really run.
 *
 * Taken from the environment:
 *   LAMINA_FAKE_HIP_VERSION   runtime version, default 6.3.42131
 *   LAMINA_FAKE_HIP_DRIVER    driver version, default the runtime's
 *   LAMINA_FAKE_HIP_DEVICES   comma-separated gcnArchName per device,
 *                             default "gfx906:sramecc+:xnack-"; "" = none
 *   LAMINA_FAKE_HIP_MEM_MIB   memory per device, default 16384
 *   HSA_OVERRIDE_GFX_VERSION  as ROCm's: "10.3.0" makes every device report
 *                             gfx1030 (keeping its feature flags)
 *   LAMINA_FAKE_HIP_LOSE_AFTER  N: the device is lost after N waits
 *                             (hipDeviceSynchronize, one per graph): from
 *                             then on launches, copies and waits fail with
 *                             hipErrorLaunchFailure, as after a GPU reset
 *   LAMINA_FAKE_HIP_FAIL      crash-enum: SIGSEGV in hipGetDeviceCount;
 *                             hang-enum: never returns from it;
 *                             init: hipInit fails (hipErrorNoDevice)
 *
 * Code objects: hipModuleLoadData parses the clang offload bundle and,
 * like the real runtime, fails with hipErrorNoBinaryForGpu when no entry
 * is for the current device's architecture.
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
#include "hip_abi.h"

namespace {

struct device {
    std::string arch;
    uint64_t mem_total, mem_used;
};

struct state {
    int version, driver;
    std::vector<device> devs;
    std::map<uintptr_t, std::pair<size_t, int>> allocs;  /* address -> size, device */
    std::mutex lock;
};

int parse_version(const char *s, int dflt)
{
    int maj = 0, min = 0, pat = 0;
    if (s == NULL || sscanf(s, "%d.%d.%d", &maj, &min, &pat) < 2)
        return dflt;
    return HIPA_VERSION(maj, min, pat);
}

/* "gfx1036:xnack-" with HSA_OVERRIDE_GFX_VERSION=10.3.0 -> "gfx1030:xnack-";
 * the stepping is a hex digit (9.0.10 -> gfx90a). */
std::string override_arch(const std::string &arch)
{
    const char *o = getenv("HSA_OVERRIDE_GFX_VERSION");
    unsigned maj, min, step;
    if (o == NULL || sscanf(o, "%u.%u.%u", &maj, &min, &step) != 3 || min > 15 || step > 15)
        return arch;
    char base[32];
    snprintf(base, sizeof base, "gfx%u%x%x", maj, min, step);
    size_t c = arch.find(':');
    return std::string(base) + (c == std::string::npos ? "" : arch.substr(c));
}

state &st()
{
    static state *s = [] {
        state *n = new state;
        n->version = parse_version(getenv("LAMINA_FAKE_HIP_VERSION"), HIPA_VERSION(6, 3, 42131));
        n->driver = parse_version(getenv("LAMINA_FAKE_HIP_DRIVER"), n->version);
        const char *d = getenv("LAMINA_FAKE_HIP_DEVICES");
        std::string list = d ? d : "gfx906:sramecc+:xnack-";
        const char *m = getenv("LAMINA_FAKE_HIP_MEM_MIB");
        uint64_t mib = m ? strtoull(m, NULL, 10) : 16384;
        size_t p = 0;
        while (p < list.size()) {
            size_t c = list.find(',', p);
            std::string one = list.substr(p, c == std::string::npos ? std::string::npos : c - p);
            if (!one.empty())
                n->devs.push_back(device{ override_arch(one), mib << 20, 0 });
            if (c == std::string::npos)
                break;
            p = c + 1;
        }
        return n;
    }();
    return *s;
}

thread_local int g_cur;

/* Waits left before the device is lost; < 0: never. */
int g_waits_left = -2;
bool lost()
{
    if (g_waits_left == -2) {
        const char *v = getenv("LAMINA_FAKE_HIP_LOSE_AFTER");
        g_waits_left = v != NULL && *v ? atoi(v) : -1;
    }
    return g_waits_left == 0;
}

bool failing(const char *what)
{
    const char *f = getenv("LAMINA_FAKE_HIP_FAIL");
    return f != NULL && strcmp(f, what) == 0;
}

/* The allocation holding [p, p + n), or end(). */
bool inside(uintptr_t p, size_t n)
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

EXPORT int hipInit(unsigned flags)
{
    (void)flags;
    return failing("init") ? HIPA_ERR_NO_DEVICE : HIPA_SUCCESS;
}

EXPORT int hipRuntimeGetVersion(int *v)
{
    *v = st().version;
    return HIPA_SUCCESS;
}

EXPORT int hipDriverGetVersion(int *v)
{
    *v = st().driver;
    return HIPA_SUCCESS;
}

EXPORT int hipGetDeviceCount(int *n)
{
    if (failing("crash-enum"))
        raise(SIGSEGV);             /* what a broken runtime does here */
    if (failing("hang-enum"))
        for (;;)
            pause();
    *n = (int)st().devs.size();
    return *n == 0 ? HIPA_ERR_NO_DEVICE : HIPA_SUCCESS;
}

static int props(void *out, int dev, unsigned arch_off, size_t size)
{
    state &s = st();
    if (dev < 0 || (size_t)dev >= s.devs.size())
        return HIPA_ERR_INVALID_DEVICE;
    memset(out, 0, size);
    snprintf((char *)out, 256, "Fake AMD GPU %d (%s)", dev, s.devs[(size_t)dev].arch.c_str());
    snprintf((char *)out + arch_off, 256, "%s", s.devs[(size_t)dev].arch.c_str());
    return HIPA_SUCCESS;
}

/* HIP 5.x layout (792 bytes) and HIP >= 6 layout (1472 bytes). */
EXPORT int hipGetDeviceProperties(void *out, int dev)
{
    return props(out, dev, hipa_props_arch_offset(5), 792);
}

EXPORT int hipGetDevicePropertiesR0600(void *out, int dev)
{
    return props(out, dev, hipa_props_arch_offset(6), 1472);
}

EXPORT int hipDeviceTotalMem(size_t *bytes, int dev)
{
    state &s = st();
    if (dev < 0 || (size_t)dev >= s.devs.size())
        return HIPA_ERR_INVALID_DEVICE;
    *bytes = s.devs[(size_t)dev].mem_total;
    return HIPA_SUCCESS;
}

EXPORT int hipSetDevice(int dev)
{
    if (dev < 0 || (size_t)dev >= st().devs.size())
        return HIPA_ERR_INVALID_DEVICE;
    g_cur = dev;
    return HIPA_SUCCESS;
}

EXPORT int hipMemGetInfo(size_t *free_b, size_t *total)
{
    state &s = st();
    if ((size_t)g_cur >= s.devs.size())
        return HIPA_ERR_INVALID_DEVICE;
    std::lock_guard<std::mutex> g(s.lock);
    const device &d = s.devs[(size_t)g_cur];
    *total = d.mem_total;
    *free_b = d.mem_total - d.mem_used;
    return HIPA_SUCCESS;
}

EXPORT int hipMalloc(void **p, size_t size)
{
    state &s = st();
    if ((size_t)g_cur >= s.devs.size())
        return HIPA_ERR_INVALID_DEVICE;
    std::lock_guard<std::mutex> g(s.lock);
    device &d = s.devs[(size_t)g_cur];
    if (size > d.mem_total - d.mem_used)
        return HIPA_ERR_OUT_OF_MEMORY;
    void *m = NULL;
    if (posix_memalign(&m, 256, size ? size : 1) != 0)
        return HIPA_ERR_OUT_OF_MEMORY;
    memset(m, 0xA5, size);          /* device memory starts as garbage */
    d.mem_used += size;
    s.allocs[(uintptr_t)m] = std::make_pair(size, g_cur);
    *p = m;
    return HIPA_SUCCESS;
}

EXPORT int hipFree(void *p)
{
    state &s = st();
    if (p == NULL)
        return HIPA_SUCCESS;
    std::lock_guard<std::mutex> g(s.lock);
    auto it = s.allocs.find((uintptr_t)p);
    if (it == s.allocs.end())
        return 400;                 /* hipErrorInvalidHandle */
    s.devs[(size_t)it->second.second].mem_used -= it->second.first;
    s.allocs.erase(it);
    free(p);
    return HIPA_SUCCESS;
}

EXPORT int hipMemcpyHtoD(void *dst, void *src, size_t n)
{
    if (lost())
        return HIPA_ERR_LAUNCH_FAILURE;
    if (!inside((uintptr_t)dst, n))
        return 1;                   /* hipErrorInvalidValue */
    memcpy(dst, src, n);
    return HIPA_SUCCESS;
}

EXPORT int hipMemcpyDtoH(void *dst, void *src, size_t n)
{
    if (lost())
        return HIPA_ERR_LAUNCH_FAILURE;
    if (!inside((uintptr_t)src, n))
        return 1;
    memcpy(dst, src, n);
    return HIPA_SUCCESS;
}

/* Clang offload bundle: "__CLANG_OFFLOAD_BUNDLE__", u64 count, then per
 * entry u64 offset, u64 size, u64 id length, id ("hipv4-amdgcn-amd-
 * amdhsa--gfx906[:features]"). */
EXPORT int hipModuleLoadData(void **mod, const void *image)
{
    static const char magic[] = "__CLANG_OFFLOAD_BUNDLE__";
    const unsigned char *b = (const unsigned char *)image;
    state &s = st();
    uint64_t n;

    if ((size_t)g_cur >= s.devs.size())
        return HIPA_ERR_INVALID_DEVICE;
    if (image == NULL || memcmp(b, magic, 24) != 0)
        return HIPA_ERR_INVALID_IMAGE;
    std::string want = s.devs[(size_t)g_cur].arch;
    want = want.substr(0, want.find(':'));
    memcpy(&n, b + 24, 8);
    size_t p = 32;
    for (uint64_t i = 0; i < n && i < 1024; i++) {
        uint64_t off, size, len;
        memcpy(&off, b + p, 8);
        memcpy(&size, b + p + 8, 8);
        memcpy(&len, b + p + 16, 8);
        if (len > 256)
            return HIPA_ERR_INVALID_IMAGE;
        std::string id((const char *)b + p + 24, (size_t)len);
        p += 24 + (size_t)len;
        size_t dd = id.find("--");
        if (id.compare(0, 6, "hipv4-") != 0 || dd == std::string::npos || size == 0)
            continue;
        std::string target = id.substr(dd + 2);
        if (target.substr(0, target.find(':')) == want) {
            *mod = new module{ g_cur };
            return HIPA_SUCCESS;
        }
    }
    return HIPA_ERR_NO_BINARY_FOR_GPU;
}

EXPORT int hipModuleUnload(void *mod)
{
    delete (module *)mod;
    return HIPA_SUCCESS;
}

EXPORT int hipModuleGetFunction(void **fn, void *mod, const char *name)
{
    if (mod == NULL)
        return 400;
    gpu_emu_fn f = emu_find(name);
    if (f == NULL)
        return HIPA_ERR_NOT_FOUND;
    memcpy(fn, &f, sizeof f);
    return HIPA_SUCCESS;
}

EXPORT int hipModuleLaunchKernel(void *fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                 unsigned by, unsigned bz, unsigned shared, void *stream,
                                 void **params, void **extra)
{
    gpu_emu_fn f;
    char msg[256];
    (void)shared;
    if (lost())
        return HIPA_ERR_LAUNCH_FAILURE;
    if (fn == NULL || params == NULL || params[0] == NULL || stream != NULL || extra != NULL)
        return 1;
    memcpy(&f, &fn, sizeof f);
    if (emu_launch(f, gx, gy, gz, bx, by, bz, (const kargs *)params[0], msg, sizeof msg) < 0) {
        fprintf(stderr, "fake libamdhip64: %s\n", msg);
        return 9;                   /* hipErrorInvalidConfiguration */
    }
    return HIPA_SUCCESS;
}

EXPORT int hipDeviceSynchronize(void)
{
    /* launches above ran to completion */
    if (lost())
        return HIPA_ERR_LAUNCH_FAILURE;
    if (g_waits_left > 0)
        g_waits_left--;
    return HIPA_SUCCESS;
}

EXPORT const char *hipGetErrorName(int e)
{
    switch (e) {
    case HIPA_SUCCESS: return "hipSuccess";
    case 1: return "hipErrorInvalidValue";
    case HIPA_ERR_OUT_OF_MEMORY: return "hipErrorOutOfMemory";
    case 9: return "hipErrorInvalidConfiguration";
    case HIPA_ERR_NO_DEVICE: return "hipErrorNoDevice";
    case HIPA_ERR_INVALID_DEVICE: return "hipErrorInvalidDevice";
    case HIPA_ERR_INVALID_IMAGE: return "hipErrorInvalidImage";
    case HIPA_ERR_NO_BINARY_FOR_GPU: return "hipErrorNoBinaryForGpu";
    case 400: return "hipErrorInvalidHandle";
    case HIPA_ERR_NOT_FOUND: return "hipErrorNotFound";
    case HIPA_ERR_LAUNCH_FAILURE: return "hipErrorLaunchFailure";
    default: return "hipErrorUnknown";
    }
}

} // extern "C"
