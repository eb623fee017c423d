/*
 * hip.c - rocm.so's side of the HIP runtime: libamdhip64 loaded at run
 * time, the entry points it needs, and the probe.
 *
 * The library: "libamdhip64.so.MAJOR" of the HIP version the plugin was
 * built against (GPU_BUILT_MAJOR).  Only that one is ever called.  Other
 * sonames that the dynamic linker finds (libamdhip64.so.7, .so.6, ...) are
 * opened without calling into them, to report which version the host
 * has instead: a runtime of another major may lay out its structs
 * differently, and initialising it is where foreign runtimes crash.
 *
 * The probe reports (components, files, notes):
 *   hip-runtime   the runtime's version (hipRuntimeGetVersion), or that
 *                 of the other soname found, against GPU_BUILT_VERSION;
 *                 rule same-minor: a runtime of another major.minor is
 *                 rejected before any device is used
 *   hip-driver    hipDriverGetVersion (informational)
 *   rocm          $ROCM_PATH/.info/version, else /opt/rocm/.info/version
 *   amdgpu-kmd    /sys/module/amdgpu/version (DKMS driver; the in-tree
 *                 driver has none)
 * and each device: name, gcnArchName ("gfx906:sramecc+:xnack-"), its
 * feature flags, memory total and free.
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
#include "hip_abi.h"

#ifndef GPU_BUILT_MAJOR
#error "GPU_BUILT_MAJOR must be defined by the build"
#endif
#define STR_(x) #x
#define STR(x) STR_(x)
#define HIP_SONAME "libamdhip64.so." STR(GPU_BUILT_MAJOR)
#ifndef ROCM_PROPS_ARCH_OFFSET
#define ROCM_PROPS_ARCH_OFFSET hipa_props_arch_offset(GPU_BUILT_MAJOR)
#endif

typedef int hip_err;

/* Every entry point used, resolved by name. */
#define HIP_FUNCS(X)                                                             \
    X(hipInit, hip_err (*)(unsigned))                                            \
    X(hipRuntimeGetVersion, hip_err (*)(int *))                                  \
    X(hipDriverGetVersion, hip_err (*)(int *))                                   \
    X(hipGetDeviceCount, hip_err (*)(int *))                                     \
    X(hipDeviceTotalMem, hip_err (*)(size_t *, int))                             \
    X(hipSetDevice, hip_err (*)(int))                                            \
    X(hipMemGetInfo, hip_err (*)(size_t *, size_t *))                            \
    X(hipMalloc, hip_err (*)(void **, size_t))                                   \
    X(hipFree, hip_err (*)(void *))                                              \
    X(hipMemcpyHtoD, hip_err (*)(void *, void *, size_t))                        \
    X(hipMemcpyDtoH, hip_err (*)(void *, void *, size_t))                        \
    X(hipModuleLoadData, hip_err (*)(void **, const void *))                     \
    X(hipModuleUnload, hip_err (*)(void *))                                      \
    X(hipModuleGetFunction, hip_err (*)(void **, void *, const char *))          \
    X(hipModuleLaunchKernel, hip_err (*)(void *, unsigned, unsigned, unsigned,   \
                                         unsigned, unsigned, unsigned, unsigned, \
                                         void *, void **, void **))              \
    X(hipDeviceSynchronize, hip_err (*)(void))                                   \
    X(hipGetErrorName, const char *(*)(hip_err))

struct gpu_rt {
    void *dl;
    char path[PATH_MAX];
    hip_err (*props)(void *, int);      /* hipGetDeviceProperties[R0600] */
#define X(name, type) __typeof__(type) name;
    HIP_FUNCS(X)
#undef X
};

static const char *ename(const gpu_rt *rt, hip_err e)
{
    const char *s = rt != NULL && rt->hipGetErrorName != NULL ? rt->hipGetErrorName(e) : NULL;
    return s != NULL ? s : "hipError?";
}

/* A failed call as a lamina code with "what: hipErrorX (N)". */
static int fail(const gpu_rt *rt, hip_err e, const char *what, char *err, size_t err_size)
{
    gpu_err(err, err_size, "%s: %s (%d)", what, ename(rt, e), e);
    switch (e) {
    case HIPA_ERR_OUT_OF_MEMORY: return LAMINA_ENOMEM;
    case HIPA_ERR_NO_DEVICE: case HIPA_ERR_INVALID_DEVICE: return LAMINA_ENODEV;
    case HIPA_ERR_NO_BINARY_FOR_GPU: case HIPA_ERR_INVALID_IMAGE: return LAMINA_ENOTSUP;
    case HIPA_ERR_ILLEGAL_ADDRESS: case HIPA_ERR_LAUNCH_FAILURE: return LAMINA_EDEVLOST;
    default: return LAMINA_EIO;
    }
}

/* The file a handle was loaded from, resolved. */
static void dl_path(void *dl, char *out, size_t size)
{
    struct link_map *lm = NULL;
    char real[PATH_MAX];

    out[0] = '\0';
    if (dlinfo(dl, RTLD_DI_LINKMAP, &lm) != 0 || lm == NULL || lm->l_name == NULL)
        return;
    if (realpath(lm->l_name, real) != NULL)
        snprintf(out, size, "%s", real);
    else
        snprintf(out, size, "%s", lm->l_name);
}

/* "7.2.70200" from ".../libamdhip64.so.7.2.70200"; "" when the name has
 * no version after ".so.". */
static void version_from_name(const char *path, char *out, size_t size)
{
    const char *p = strstr(path, ".so.");
    out[0] = '\0';
    if (p == NULL)
        return;
    p += 4;
    size_t n = strspn(p, "0123456789.");
    while (n > 0 && p[n - 1] == '.')
        n--;
    if (n > 0 && n < size) {
        memcpy(out, p, n);
        out[n] = '\0';
    }
}

static void hip_version_str(int v, char *out, size_t size)
{
    snprintf(out, size, "%d.%d.%d", v / 10000000, (v / 100000) % 100, v % 100000);
}

int gpu_rt_load(gpu_rt **out, char *err, size_t err_size)
{
    gpu_rt *rt = calloc(1, sizeof *rt);
    if (rt == NULL) {
        gpu_err(err, err_size, "out of host memory");
        return LAMINA_ENOMEM;
    }
    rt->dl = dlopen(HIP_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (rt->dl == NULL) {
        const char *e = dlerror();
        gpu_err(err, err_size, "cannot load the HIP runtime " HIP_SONAME ": %s",
                e ? e : "not found");
        free(rt);
        return LAMINA_ENOENT;
    }
    dl_path(rt->dl, rt->path, sizeof rt->path);
    /* every symbol, the first missing one named */
#define X(name, type)                                                            \
    {                                                                            \
        void *sym = dlsym(rt->dl, #name);                                        \
        if (sym == NULL) {                                                       \
            gpu_err(err, err_size, "%s lacks %s: not a HIP " STR(GPU_BUILT_MAJOR) \
                    ".x runtime", rt->path, #name);                              \
            free(rt);                                                            \
            return LAMINA_EVERSION;                                              \
        }                                                                        \
        memcpy(&rt->name, &sym, sizeof sym);                                     \
    }
    HIP_FUNCS(X)
#undef X
    void *sym = dlsym(rt->dl, hipa_props_symbol(GPU_BUILT_MAJOR));
    if (sym == NULL) {
        gpu_err(err, err_size, "%s lacks %s: not a HIP " STR(GPU_BUILT_MAJOR) ".x runtime",
                rt->path, hipa_props_symbol(GPU_BUILT_MAJOR));
        free(rt);
        return LAMINA_EVERSION;
    }
    memcpy(&rt->props, &sym, sizeof sym);
    /* the library stays mapped (dlclose of a GPU runtime is not safe) */
    *out = rt;
    return 0;
}

void gpu_rt_unload(gpu_rt *rt)
{
    free(rt);
}

int gpu_rt_select(gpu_rt *rt, int dev, char *err, size_t err_size)
{
    hip_err e = rt->hipSetDevice(dev);
    return e == HIPA_SUCCESS ? 0 : fail(rt, e, "hipSetDevice", err, err_size);
}

int gpu_rt_device_count(gpu_rt *rt, int *n, char *err, size_t err_size)
{
    hip_err e = rt->hipGetDeviceCount(n);
    if (e == HIPA_ERR_NO_DEVICE) {
        *n = 0;
        return 0;
    }
    return e == HIPA_SUCCESS ? 0 : fail(rt, e, "hipGetDeviceCount", err, err_size);
}

/* Name and gcnArchName of device dev from the properties struct. */
static int device_props(gpu_rt *rt, int dev, char *name, size_t name_size, char *arch,
                        size_t arch_size, char *err, size_t err_size)
{
    /* zeroed and larger than any layout: the strings end inside */
    unsigned char *buf = calloc(1, HIPA_PROPS_BUF);
    if (buf == NULL) {
        gpu_err(err, err_size, "out of host memory");
        return LAMINA_ENOMEM;
    }
    hip_err e = rt->props(buf, dev);
    if (e != HIPA_SUCCESS) {
        int rc = fail(rt, e, hipa_props_symbol(GPU_BUILT_MAJOR), err, err_size);
        free(buf);
        return rc;
    }
    if (name != NULL)
        snprintf(name, name_size, "%.255s", (const char *)buf);
    if (arch != NULL)
        snprintf(arch, arch_size, "%.255s", (const char *)buf + ROCM_PROPS_ARCH_OFFSET);
    free(buf);
    return 0;
}

int gpu_rt_device_desc(gpu_rt *rt, int dev, char *name, size_t name_size, uint64_t *total,
                       char *err, size_t err_size)
{
    size_t t = 0;
    int rc = device_props(rt, dev, name, name_size, NULL, 0, err, err_size);
    if (rc < 0)
        return rc;
    hip_err e = rt->hipDeviceTotalMem(&t, dev);
    if (e != HIPA_SUCCESS)
        return fail(rt, e, "hipDeviceTotalMem", err, err_size);
    *total = t;
    return 0;
}

int gpu_rt_mem_info(gpu_rt *rt, uint64_t *free_b, uint64_t *total_b)
{
    size_t f = 0, t = 0;
    if (rt->hipMemGetInfo(&f, &t) != HIPA_SUCCESS)
        return LAMINA_EIO;
    *free_b = f;
    *total_b = t;
    return 0;
}

int gpu_rt_alloc(gpu_rt *rt, uint64_t size, uint64_t *dptr, char *err, size_t err_size)
{
    void *p = NULL;
    char what[64];
    hip_err e = rt->hipMalloc(&p, (size_t)size);
    if (e != HIPA_SUCCESS || p == NULL) {
        snprintf(what, sizeof what, "hipMalloc(%llu bytes)", (unsigned long long)size);
        return fail(rt, e != HIPA_SUCCESS ? e : HIPA_ERR_OUT_OF_MEMORY, what, err, err_size);
    }
    *dptr = (uint64_t)(uintptr_t)p;
    return 0;
}

void gpu_rt_free(gpu_rt *rt, uint64_t dptr)
{
    (void)rt->hipFree((void *)(uintptr_t)dptr);
}

int gpu_rt_upload(gpu_rt *rt, uint64_t dst, const void *src, uint64_t size,
                  char *err, size_t err_size)
{
    hip_err e = rt->hipMemcpyHtoD((void *)(uintptr_t)dst, (void *)(uintptr_t)src, (size_t)size);
    return e == HIPA_SUCCESS ? 0 : fail(rt, e, "hipMemcpyHtoD", err, err_size);
}

int gpu_rt_download(gpu_rt *rt, void *dst, uint64_t src, uint64_t size,
                    char *err, size_t err_size)
{
    hip_err e = rt->hipMemcpyDtoH(dst, (void *)(uintptr_t)src, (size_t)size);
    return e == HIPA_SUCCESS ? 0 : fail(rt, e, "hipMemcpyDtoH", err, err_size);
}

int gpu_rt_module_load(gpu_rt *rt, const void *image, void **mod, char *err, size_t err_size)
{
    hip_err e = rt->hipModuleLoadData(mod, image);
    if (e == HIPA_ERR_NO_BINARY_FOR_GPU || e == HIPA_ERR_INVALID_IMAGE) {
        gpu_err(err, err_size, "hipModuleLoadData: %s (%d): no code object for this device "
                "among the plugin's targets", ename(rt, e), e);
        return LAMINA_ENOTSUP;
    }
    return e == HIPA_SUCCESS ? 0 : fail(rt, e, "hipModuleLoadData", err, err_size);
}

void gpu_rt_module_unload(gpu_rt *rt, void *mod)
{
    if (mod != NULL)
        (void)rt->hipModuleUnload(mod);
}

int gpu_rt_function(gpu_rt *rt, void *mod, const char *name, void **fn, char *err,
                    size_t err_size)
{
    char what[96];
    hip_err e = rt->hipModuleGetFunction(fn, mod, name);
    snprintf(what, sizeof what, "hipModuleGetFunction(%s)", name);
    return e == HIPA_SUCCESS ? 0 : fail(rt, e, what, err, err_size);
}

int gpu_rt_launch(gpu_rt *rt, void *fn, const unsigned grid[3], const kargs *a,
                  char *err, size_t err_size)
{
    void *params[1] = { (void *)(uintptr_t)a };
    hip_err e = rt->hipModuleLaunchKernel(fn, grid[0], grid[1], grid[2], KA_BLOCK, 1, 1, 0,
                                          NULL, params, NULL);
    return e == HIPA_SUCCESS ? 0 : fail(rt, e, "hipModuleLaunchKernel", err, err_size);
}

int gpu_rt_sync(gpu_rt *rt, char *err, size_t err_size)
{
    hip_err e = rt->hipDeviceSynchronize();
    return e == HIPA_SUCCESS ? 0 : fail(rt, e, "hipDeviceSynchronize", err, err_size);
}

void gpu_rt_grid_limits(gpu_rt *rt, uint64_t *max_x, uint64_t *max_y)
{
    (void)rt;
    /* HIP: grid.x * block.x < 2^32; grid.y < 2^16 */
    *max_x = (UINT32_MAX / KA_BLOCK);
    *max_y = 65535;
}

/* ---- probe ------------------------------------------------------------------ */

/* Other libamdhip64 sonames on this host: reported, never called. */
static void report_other_runtimes(const lamina_probe_sink *sink, const char *used,
                                  char *first_ver, size_t ver_size, char *first_path,
                                  size_t path_size)
{
    static const char *const names[] = {
        "libamdhip64.so.8", "libamdhip64.so.7", "libamdhip64.so.6", "libamdhip64.so.5",
        "libamdhip64.so",
    };
    char path[PATH_MAX], ver[64], seen[8][PATH_MAX];
    int n_seen = 0;

    first_ver[0] = first_path[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(names[i], HIP_SONAME) == 0)
            continue;
        void *dl = dlopen(names[i], RTLD_LAZY | RTLD_LOCAL);
        if (dl == NULL)
            continue;
        dl_path(dl, path, sizeof path);
        int dup = used != NULL && strcmp(path, used) == 0;
        for (int k = 0; k < n_seen && !dup; k++)
            dup = strcmp(seen[k], path) == 0;
        if (dup || n_seen >= 8)
            continue;
        snprintf(seen[n_seen++], sizeof seen[0], "%s", path);
        version_from_name(path, ver, sizeof ver);
        gpu_note(sink, "also found %s (HIP %s) at %s; not used: this rocm.so was built "
                 "against HIP " GPU_BUILT_VERSION " (" HIP_SONAME ")", names[i],
                 ver[0] ? ver : "version unknown", path);
        if (path[0])
            sink->file(sink->ctx, path);
        if (first_path[0] == '\0' && strcmp(names[i], "libamdhip64.so") != 0) {
            snprintf(first_ver, ver_size, "%s", ver);
            snprintf(first_path, path_size, "%s", path);
        }
        /* left mapped: unloading a runtime we did not initialise is harmless,
         * but some run constructors that do not undo cleanly */
    }
}

static void report_host_versions(const lamina_probe_sink *sink, char *kmd, size_t kmd_size)
{
    char path[PATH_MAX], v[128];
    const char *rp = getenv("ROCM_PATH");

    /* ROCm install: $ROCM_PATH first, then the default prefix */
    snprintf(path, sizeof path, "%s/.info/version", rp && *rp ? rp : "/opt/rocm");
    if (gpu_read_line(path, v, sizeof v) == 0) {
        sink->component(sink->ctx, "rocm", v, NULL, LAMINA_RULE_NONE, path);
    } else {
        sink->component(sink->ctx, "rocm", NULL, NULL, LAMINA_RULE_NONE, NULL);
        gpu_note(sink, "no ROCm install version at %s (a distribution's packages have none)",
                 path);
    }
    /* amdgpu kernel driver */
    kmd[0] = '\0';
    if (gpu_read_line("/sys/module/amdgpu/version", v, sizeof v) == 0) {
        snprintf(kmd, kmd_size, "%s", v);
        sink->component(sink->ctx, "amdgpu-kmd", v, NULL, LAMINA_RULE_NONE,
                        "/sys/module/amdgpu/version");
    } else {
        FILE *f = fopen("/sys/module/amdgpu/initstate", "re");
        sink->component(sink->ctx, "amdgpu-kmd", NULL, NULL, LAMINA_RULE_NONE, NULL);
        gpu_note(sink, f ? "amdgpu kernel driver loaded (in-tree: no version file)"
                         : "amdgpu kernel driver not loaded (/sys/module/amdgpu absent)");
        if (f)
            fclose(f);
    }
    if (getenv("HSA_OVERRIDE_GFX_VERSION") != NULL)
        gpu_note(sink, "HSA_OVERRIDE_GFX_VERSION=%s: devices report the overridden "
                 "architecture", getenv("HSA_OVERRIDE_GFX_VERSION"));
}

/* "sramecc+ xnack-" from "gfx906:sramecc+:xnack-". */
static void arch_features(const char *arch, char *out, size_t size)
{
    const char *c = strchr(arch, ':');
    size_t o = 0;
    out[0] = '\0';
    while (c != NULL && o + 1 < size) {
        const char *next = strchr(c + 1, ':');
        size_t n = next ? (size_t)(next - c - 1) : strlen(c + 1);
        int w = snprintf(out + o, size - o, "%s%.*s", o ? " " : "", (int)n, c + 1);
        if (w < 0)
            break;
        o += (size_t)w;
        c = next;
    }
}

int gpu_probe(const lamina_host *host, const lamina_probe_sink *sink, char *err,
              size_t err_size)
{
    char found[64], other_ver[64], other_path[PATH_MAX], kmd[128], msg[512];
    gpu_rt *rt = NULL;
    int v = 0, n = 0, rc;

    if (sink == NULL || !LAMINA_HAS_FN(sink, component) || !LAMINA_HAS_FN(sink, file) ||
        !LAMINA_HAS_FN(sink, device)) {
        gpu_err(err, err_size, "probe sink lacks component/file/device");
        return LAMINA_EINVAL;
    }
    /* 1. the runtime this plugin was built against, first: a library
     * opened only to be reported must not take its soname */
    rc = gpu_rt_load(&rt, msg, sizeof msg);
    /* 2. what else is installed, and the host's versions */
    report_other_runtimes(sink, rc == 0 ? rt->path : NULL, other_ver, sizeof other_ver,
                          other_path, sizeof other_path);
    report_host_versions(sink, kmd, sizeof kmd);
    if (rc < 0) {
        gpu_note(sink, "%s", msg);
        /* found: the other runtime, so the rejection names both versions */
        sink->component(sink->ctx, "hip-runtime", other_ver[0] ? other_ver : NULL,
                        GPU_BUILT_VERSION, LAMINA_RULE_SAME_MINOR,
                        other_path[0] ? other_path : NULL);
        return 0;
    }
    sink->file(sink->ctx, rt->path);
    if (rt->hipRuntimeGetVersion(&v) != HIPA_SUCCESS || v <= 0) {
        sink->component(sink->ctx, "hip-runtime", NULL, GPU_BUILT_VERSION,
                        LAMINA_RULE_SAME_MINOR, rt->path);
        gpu_note(sink, "hipRuntimeGetVersion failed in %s", rt->path);
        gpu_rt_unload(rt);
        return 0;
    }
    hip_version_str(v, found, sizeof found);
    sink->component(sink->ctx, "hip-runtime", found, GPU_BUILT_VERSION, LAMINA_RULE_SAME_MINOR,
                    rt->path);
    int dv = 0;
    if (rt->hipDriverGetVersion(&dv) == HIPA_SUCCESS && dv > 0) {
        char dvs[64];
        hip_version_str(dv, dvs, sizeof dvs);
        sink->component(sink->ctx, "hip-driver", dvs, NULL, LAMINA_RULE_NONE, NULL);
    }

    /* 3. devices */
    hip_err e = rt->hipInit(0);
    if (e != HIPA_SUCCESS) {
        gpu_note(sink, "hipInit: %s (%d): no device can be used", ename(rt, e), e);
        gpu_rt_unload(rt);
        return 0;
    }
    rc = gpu_rt_device_count(rt, &n, msg, sizeof msg);
    if (rc < 0) {
        gpu_note(sink, "%s", msg);
        gpu_rt_unload(rt);
        return 0;
    }
    if (n == 0)
        gpu_note(sink, "the HIP runtime found no device (hipErrorNoDevice)");
    for (int i = 0; i < n; i++) {
        char name[256] = "", arch[256] = "", feats[256];
        size_t total = 0, fr = 0, tt = 0;
        lamina_device_info info;

        rc = device_props(rt, i, name, sizeof name, arch, sizeof arch, msg, sizeof msg);
        memset(&info, 0, sizeof info);
        info.struct_size = sizeof info;
        info.index = (uint32_t)i;
        info.type = "discrete-gpu";
        info.driver_name = "amdgpu";
        info.driver_version = kmd[0] ? kmd : NULL;
        info.runtime_version = found;
        info.vendor_id = 0x1002;
        if (rc < 0) {
            info.name = "unknown HIP device";
            info.unusable = msg;
            sink->device(sink->ctx, &info);
            continue;
        }
        if (rt->hipDeviceTotalMem(&total, i) != HIPA_SUCCESS)
            total = 0;
        if (rt->hipSetDevice(i) == HIPA_SUCCESS && rt->hipMemGetInfo(&fr, &tt) == HIPA_SUCCESS)
            total = total ? total : tt;
        else
            fr = 0;
        arch_features(arch, feats, sizeof feats);
        info.name = name[0] ? name : "unnamed HIP device";
        info.arch = arch[0] ? arch : NULL;
        info.features = feats;
        info.mem_total = total;
        info.mem_free = fr;
        sink->device(sink->ctx, &info);
    }
    gpu_log(host, LAMINA_LOG_DEBUG, "probe: HIP %s from %s, %d device(s)", found, rt->path, n);
    gpu_rt_unload(rt);
    return 0;
}
