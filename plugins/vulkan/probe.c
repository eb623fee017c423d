/*
 * probe.c - what the Vulkan loader, its drivers (ICDs) and the devices on
 * this host offer, and whether each device can run the shaders.
 *
 * Requirements (baseline shaders, all core Vulkan 1.1):
 *   - device API >= 1.1 (shaders are SPIR-V 1.3),
 *   - a queue family with compute,
 *   - workgroups of 256 invocations and 16 KiB of shared memory.
 * The shaders read every buffer as 32-bit words and unpack 8/16-bit values
 * themselves, so storageBuffer8/16BitAccess, shaderFloat16, shaderInt8 and
 * shaderInt16 are reported but not required.  Subgroup arithmetic in the
 * compute stage selects the subgroupAdd matrix-vector variants.
 */
#include <config.h>

#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vkb.h"

const char *vkb_result_str(VkResult r)
{
    switch (r) {
    case VK_SUCCESS: return "VK_SUCCESS";
    case VK_NOT_READY: return "VK_NOT_READY";
    case VK_TIMEOUT: return "VK_TIMEOUT";
    case VK_INCOMPLETE: return "VK_INCOMPLETE";
    case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
    case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
    case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
    case VK_ERROR_MEMORY_MAP_FAILED: return "VK_ERROR_MEMORY_MAP_FAILED";
    case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT";
    case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
    case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
    case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER";
    case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS";
    case VK_ERROR_FORMAT_NOT_SUPPORTED: return "VK_ERROR_FORMAT_NOT_SUPPORTED";
    case VK_ERROR_FRAGMENTED_POOL: return "VK_ERROR_FRAGMENTED_POOL";
    case VK_ERROR_OUT_OF_POOL_MEMORY: return "VK_ERROR_OUT_OF_POOL_MEMORY";
    case VK_ERROR_INVALID_SHADER_NV: return "VK_ERROR_INVALID_SHADER_NV";
    default: return "VK_ERROR_UNKNOWN";
    }
}

void vkb_version_str(uint32_t v, char *out, size_t n)
{
    snprintf(out, n, "%u.%u.%u", VK_API_VERSION_MAJOR(v), VK_API_VERSION_MINOR(v),
             VK_API_VERSION_PATCH(v));
}

/* The loader's instance version; 1.0.0 for a loader without
 * vkEnumerateInstanceVersion. */
uint32_t vkb_loader_version(void)
{
    PFN_vkEnumerateInstanceVersion fn = (PFN_vkEnumerateInstanceVersion)
        vkGetInstanceProcAddr(NULL, "vkEnumerateInstanceVersion");
    uint32_t v = VK_API_VERSION_1_0;

    if (fn == NULL || fn(&v) != VK_SUCCESS)
        return VK_API_VERSION_1_0;
    return v;
}

static int has_instance_ext(const char *name)
{
    uint32_t n = 0;
    VkExtensionProperties *ext;
    int found = 0;

    if (vkEnumerateInstanceExtensionProperties(NULL, &n, NULL) != VK_SUCCESS || n == 0)
        return 0;
    ext = calloc(n, sizeof *ext);
    if (ext == NULL)
        return 0;
    if (vkEnumerateInstanceExtensionProperties(NULL, &n, ext) == VK_SUCCESS) {
        for (uint32_t i = 0; i < n; i++)
            if (strcmp(ext[i].extensionName, name) == 0)
                found = 1;
    }
    free(ext);
    return found;
}

VkResult vkb_instance_create(VkInstance *out)
{
    VkApplicationInfo app = {
        .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
        .pApplicationName = "lamina",
        .pEngineName = "lamina",
        /* the newest API we use; drivers clamp to what they have */
        .apiVersion = VK_API_VERSION_1_3,
    };
    const char *exts[1];
    VkInstanceCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
        .pApplicationInfo = &app,
    };

    if (vkb_loader_version() < VKB_MIN_API)
        return VK_ERROR_INCOMPATIBLE_DRIVER;
    /* list portability (e.g. MoltenVK) drivers too */
    if (has_instance_ext(VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME)) {
        exts[0] = VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME;
        ci.enabledExtensionCount = 1;
        ci.ppEnabledExtensionNames = exts;
        ci.flags |= VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR;
    }
    return vkCreateInstance(&ci, NULL, out);
}

/* One VkInstance for the probe and every instance of this backend, created
 * on first use and kept for the life of the process.  Destroying the last instance makes
 * the loader unload the driver, and drivers keep process-wide state (worker
 * threads, shader caches) that they do not all release on unload; keeping
 * the driver loaded avoids exit-time crashes and lost memory.  The core
 * keeps a loaded plugin mapped until exit (RTLD_NODELETE) for the same
 * reason.  A failed creation is not remembered: the next open tries again. */
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static VkInstance shared_inst = VK_NULL_HANDLE;

VkResult vkb_instance_shared(VkInstance *out)
{
    VkResult r = VK_SUCCESS;
    pthread_mutex_lock(&shared_lock);
    if (shared_inst == VK_NULL_HANDLE)
        r = vkb_instance_create(&shared_inst);
    if (r != VK_SUCCESS)
        shared_inst = VK_NULL_HANDLE;
    *out = shared_inst;
    pthread_mutex_unlock(&shared_lock);
    return r;
}

/* ---- devices ---------------------------------------------------------- */

static int has_device_ext(const VkExtensionProperties *ext, uint32_t n, const char *name)
{
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(ext[i].extensionName, name) == 0)
            return 1;
    return 0;
}

void vkb_mem_query(VkPhysicalDevice pd, int has_budget, uint64_t *total, uint64_t *free_b)
{
    VkPhysicalDeviceMemoryBudgetPropertiesEXT budget = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT,
    };
    VkPhysicalDeviceMemoryProperties2 mp = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2,
        .pNext = has_budget ? &budget : NULL,
    };

    *total = 0;
    *free_b = 0;
    vkGetPhysicalDeviceMemoryProperties2(pd, &mp);
    for (uint32_t h = 0; h < mp.memoryProperties.memoryHeapCount; h++) {
        if (!(mp.memoryProperties.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT))
            continue;
        *total += mp.memoryProperties.memoryHeaps[h].size;
        if (has_budget && budget.heapBudget[h] > budget.heapUsage[h])
            *free_b += budget.heapBudget[h] - budget.heapUsage[h];
    }
}

void vkb_caps_query(VkPhysicalDevice pd, vkb_caps *caps)
{
    VkExtensionProperties *ext = NULL;
    uint32_t n_ext = 0;
    uint32_t n_qf = 0;
    VkQueueFamilyProperties *qf = NULL;
    char v[32];

    memset(caps, 0, sizeof *caps);
    caps->compute_family = -1;
    vkGetPhysicalDeviceProperties(pd, &caps->props);
    uint32_t api = caps->props.apiVersion;

    if (vkEnumerateDeviceExtensionProperties(pd, NULL, &n_ext, NULL) == VK_SUCCESS && n_ext > 0) {
        ext = calloc(n_ext, sizeof *ext);
        if (ext == NULL || vkEnumerateDeviceExtensionProperties(pd, NULL, &n_ext, ext) != VK_SUCCESS)
            n_ext = 0;
    }
    int ext_driver = api >= VK_API_VERSION_1_2 ||
                     has_device_ext(ext, n_ext, VK_KHR_DRIVER_PROPERTIES_EXTENSION_NAME);
    int ext_8bit = api >= VK_API_VERSION_1_2 ||
                   has_device_ext(ext, n_ext, VK_KHR_8BIT_STORAGE_EXTENSION_NAME);
    int ext_f16i8 = api >= VK_API_VERSION_1_2 ||
                    has_device_ext(ext, n_ext, VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME);
    caps->has_budget = has_device_ext(ext, n_ext, VK_EXT_MEMORY_BUDGET_EXTENSION_NAME);
    caps->has_portability_subset = has_device_ext(ext, n_ext, "VK_KHR_portability_subset");

    if (api >= VK_API_VERSION_1_1) {
        /* 1. properties: driver, subgroups, allocation limit */
        VkPhysicalDeviceDriverProperties drv = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES,
        };
        VkPhysicalDeviceSubgroupProperties sg = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES,
        };
        VkPhysicalDeviceMaintenance3Properties m3 = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES,
        };
        VkPhysicalDeviceProperties2 p2 = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
        };
        sg.pNext = &m3;
        if (ext_driver) {
            drv.pNext = &sg;
            p2.pNext = &drv;
        } else {
            p2.pNext = &sg;
        }
        vkGetPhysicalDeviceProperties2(pd, &p2);
        if (ext_driver) {
            caps->driver_id = drv.driverID;
            memcpy(caps->driver_name, drv.driverName, sizeof caps->driver_name);
            memcpy(caps->driver_info, drv.driverInfo, sizeof caps->driver_info);
            caps->driver_name[sizeof caps->driver_name - 1] = '\0';
            caps->driver_info[sizeof caps->driver_info - 1] = '\0';
        }
        caps->subgroup_size = sg.subgroupSize;
        caps->subgroup_arith = (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                               (sg.supportedOperations & VK_SUBGROUP_FEATURE_BASIC_BIT) &&
                               (sg.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT) &&
                               sg.subgroupSize > 0 && sg.subgroupSize <= 64;
        caps->max_alloc = m3.maxMemoryAllocationSize;

        /* 2. features the faster variants could use (reported) */
        VkPhysicalDevice16BitStorageFeatures s16 = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES,
        };
        VkPhysicalDevice8BitStorageFeatures s8 = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_8BIT_STORAGE_FEATURES,
        };
        VkPhysicalDeviceShaderFloat16Int8Features f16 = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES,
        };
        VkPhysicalDeviceFeatures2 f2 = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
            .pNext = &s16,
        };
        void **tail = &s16.pNext;
        if (ext_8bit) {
            *tail = &s8;
            tail = &s8.pNext;
        }
        if (ext_f16i8) {
            *tail = &f16;
            tail = &f16.pNext;
        }
        vkGetPhysicalDeviceFeatures2(pd, &f2);
        caps->has_16bit_storage = s16.storageBuffer16BitAccess;
        caps->has_8bit_storage = s8.storageBuffer8BitAccess;
        caps->has_f16 = f16.shaderFloat16;
        caps->has_int8 = f16.shaderInt8;
        caps->has_int16 = f2.features.shaderInt16;
    }

    /* 3. memory */
    vkb_mem_query(pd, caps->has_budget, &caps->mem_total, &caps->mem_free);

    /* 4. a compute queue family (prefer one without graphics) */
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n_qf, NULL);
    qf = n_qf ? calloc(n_qf, sizeof *qf) : NULL;
    if (qf != NULL) {
        vkGetPhysicalDeviceQueueFamilyProperties(pd, &n_qf, qf);
        for (uint32_t i = 0; i < n_qf; i++) {
            if (!(qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) || qf[i].queueCount == 0)
                continue;
            if (caps->compute_family < 0 || !(qf[i].queueFlags & VK_QUEUE_GRAPHICS_BIT))
                caps->compute_family = (int)i;
        }
    }

    /* 5. requirements, first missing one named */
    const VkPhysicalDeviceLimits *lim = &caps->props.limits;
    vkb_version_str(api, v, sizeof v);
    if (api < VKB_MIN_API)
        snprintf(caps->unusable, sizeof caps->unusable, "lacks Vulkan 1.1 (device API %s)", v);
    else if (caps->compute_family < 0)
        snprintf(caps->unusable, sizeof caps->unusable, "lacks a compute queue");
    else if (lim->maxComputeWorkGroupInvocations < VKB_MAX_LOCAL_SIZE ||
             lim->maxComputeWorkGroupSize[0] < VKB_MAX_LOCAL_SIZE)
        snprintf(caps->unusable, sizeof caps->unusable,
                 "lacks 256-invocation workgroups (max %u)", lim->maxComputeWorkGroupInvocations);
    else if (lim->maxComputeSharedMemorySize < 16384)
        snprintf(caps->unusable, sizeof caps->unusable,
                 "lacks 16 KiB of shared memory (has %u)", lim->maxComputeSharedMemorySize);
    else if (lim->maxPushConstantsSize < 128)
        snprintf(caps->unusable, sizeof caps->unusable, "lacks 128 bytes of push constants");
    free(qf);
    free(ext);
}

/* Driver version per vendor convention. */
static void driver_version_str(const vkb_caps *caps, char *out, size_t n)
{
    uint32_t v = caps->props.driverVersion;

    /* Mesa drivers: the release is in driverInfo ("Mesa 22.3.6 ...") */
    if (strncmp(caps->driver_info, "Mesa ", 5) == 0) {
        size_t len = strcspn(caps->driver_info + 5, " ");
        if (len > 0 && len < n) {
            memcpy(out, caps->driver_info + 5, len);
            out[len] = '\0';
            return;
        }
    }
    if (caps->props.vendorID == 0x10de) {          /* NVIDIA: 10.8.8.6 bits */
        snprintf(out, n, "%u.%u.%u.%u", v >> 22, (v >> 14) & 0xff, (v >> 6) & 0xff, v & 0x3f);
        return;
    }
#ifdef _WIN32
    if (caps->props.vendorID == 0x8086) {          /* Intel on Windows: 18.14 */
        snprintf(out, n, "%u.%u", v >> 14, v & 0x3fff);
        return;
    }
#endif
    vkb_version_str(v, out, n);
}

static const char *device_type_str(VkPhysicalDeviceType t)
{
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated-gpu";
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete-gpu";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual-gpu";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "cpu";
    default: return "other";
    }
}

/* ---- ICD manifests ----------------------------------------------------- */

/* Report one manifest and the driver library it names.  The library path
 * is found with a plain scan for "library_path" (the manifest is JSON). */
static void report_manifest(const lamina_probe_sink *sink, const char *path)
{
    char buf[8192];
    char lib[PATH_MAX];
    char full[PATH_MAX + 64];
    char line[PATH_MAX * 2 + 128];
    FILE *f;
    size_t n;
    const char *p, *q;
    struct stat st;

    sink->file(sink->ctx, path);
    f = fopen(path, "r");
    if (f == NULL)
        return;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strstr(buf, "\"library_path\"");
    if (p == NULL)
        return;
    p = strchr(p + 14, ':');
    if (p == NULL || (p = strchr(p, '"')) == NULL)
        return;
    p++;
    q = strchr(p, '"');
    if (q == NULL || (size_t)(q - p) >= sizeof lib)
        return;
    memcpy(lib, p, (size_t)(q - p));
    lib[q - p] = '\0';
    if (strchr(lib, '/') == NULL)
        return;             /* a bare soname: resolved by the dynamic linker */
    if (lib[0] == '/') {
        snprintf(full, sizeof full, "%s", lib);
    } else {                /* relative to the manifest's folder */
        const char *slash = strrchr(path, '/');
        int dir_len = slash ? (int)(slash - path) : 1;
        snprintf(full, sizeof full, "%.*s/%s", dir_len, slash ? path : ".", lib);
    }
    if (stat(full, &st) == 0) {
        sink->file(sink->ctx, full);
    } else if (LAMINA_HAS_FN(sink, note)) {
        snprintf(line, sizeof line, "ICD manifest %s names a driver library that does not exist: %s",
                 path, full);
        sink->note(sink->ctx, line);
    }
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* A file or a folder of *.json manifests. */
static void report_manifest_path(const lamina_probe_sink *sink, const char *path)
{
    struct stat st;
    char full[PATH_MAX];

    if (stat(path, &st) != 0)
        return;
    if (!S_ISDIR(st.st_mode)) {
        report_manifest(sink, path);
        return;
    }
    struct dirent **list = NULL;
    int n = scandir(path, &list, NULL, alphasort);
    for (int i = 0; i < n; i++) {
        if (ends_with(list[i]->d_name, ".json")) {
            snprintf(full, sizeof full, "%s/%s", path, list[i]->d_name);
            report_manifest(sink, full);
        }
        free(list[i]);
    }
    free(list);
}

/* Each ':'-separated element of `list`, with `suffix` appended. */
static void report_path_list(const lamina_probe_sink *sink, const char *list, const char *suffix)
{
    char one[PATH_MAX];

    while (list != NULL && *list != '\0') {
        size_t len = strcspn(list, ":");
        if (len > 0 && len + strlen(suffix) < sizeof one) {
            memcpy(one, list, len);
            snprintf(one + len, sizeof one - len, "%s", suffix);
            report_manifest_path(sink, one);
        }
        list += len;
        if (*list == ':')
            list++;
    }
}

/* The manifests the loader would read, in its search order. */
static void report_icds(const lamina_probe_sink *sink)
{
    const char *env = getenv("VK_DRIVER_FILES");
    const char *add = getenv("VK_ADD_DRIVER_FILES");
    char home_dir[PATH_MAX];

    if (env == NULL || *env == '\0')
        env = getenv("VK_ICD_FILENAMES");
    if (add != NULL)
        report_path_list(sink, add, "");
    if (env != NULL && *env != '\0') {
        report_path_list(sink, env, "");
        return;
    }
    const char *xdg_config = getenv("XDG_CONFIG_HOME");
    const char *xdg_data = getenv("XDG_DATA_HOME");
    const char *home = getenv("HOME");
    if (xdg_config != NULL && *xdg_config != '\0') {
        report_path_list(sink, xdg_config, "/vulkan/icd.d");
    } else if (home != NULL) {
        snprintf(home_dir, sizeof home_dir, "%s/.config", home);
        report_path_list(sink, home_dir, "/vulkan/icd.d");
    }
    const char *cfg_dirs = getenv("XDG_CONFIG_DIRS");
    report_path_list(sink, cfg_dirs && *cfg_dirs ? cfg_dirs : "/etc/xdg", "/vulkan/icd.d");
    report_path_list(sink, "/usr/local/etc:/etc", "/vulkan/icd.d");
    if (xdg_data != NULL && *xdg_data != '\0') {
        report_path_list(sink, xdg_data, "/vulkan/icd.d");
    } else if (home != NULL) {
        snprintf(home_dir, sizeof home_dir, "%s/.local/share", home);
        report_path_list(sink, home_dir, "/vulkan/icd.d");
    }
    const char *data_dirs = getenv("XDG_DATA_DIRS");
    report_path_list(sink, data_dirs && *data_dirs ? data_dirs : "/usr/local/share:/usr/share",
                     "/vulkan/icd.d");
}

/* ---- the probe --------------------------------------------------------- */

static void note(const lamina_probe_sink *sink, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void note(const lamina_probe_sink *sink, const char *fmt, ...)
{
    char line[512];
    va_list ap;

    if (!LAMINA_HAS_FN(sink, note))
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    sink->note(sink->ctx, line);
}

static void report_device(const lamina_probe_sink *sink, uint32_t index, VkPhysicalDevice pd)
{
    vkb_caps caps;
    char drv_ver[64], api_ver[32], features[512];
    lamina_device_info info;

    vkb_caps_query(pd, &caps);
    driver_version_str(&caps, drv_ver, sizeof drv_ver);
    vkb_version_str(caps.props.apiVersion, api_ver, sizeof api_ver);
    snprintf(features, sizeof features,
             "vulkan%u.%u compute subgroup=%u%s%s%s%s%s%s%s shaders=%s reduce=%s",
             VK_API_VERSION_MAJOR(caps.props.apiVersion), VK_API_VERSION_MINOR(caps.props.apiVersion),
             caps.subgroup_size,
             caps.subgroup_arith ? " subgroup-arith" : "",
             caps.has_16bit_storage ? " storageBuffer16BitAccess" : "",
             caps.has_8bit_storage ? " storageBuffer8BitAccess" : "",
             caps.has_f16 ? " shaderFloat16" : "",
             caps.has_int8 ? " shaderInt8" : "",
             caps.has_int16 ? " shaderInt16" : "",
             caps.has_budget ? " memory-budget" : "",
             /* the variant the backend will use: 16-bit weight loads with
              * storageBuffer16BitAccess (and subgroups), else 32-bit words */
             caps.has_16bit_storage && caps.subgroup_arith ? "16bit-weights" : "u32-storage",
             caps.subgroup_arith ? "subgroup" : "shared");

    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    info.index = index;
    info.name = caps.props.deviceName;
    info.type = device_type_str(caps.props.deviceType);
    info.driver_name = caps.driver_name[0] ? caps.driver_name : NULL;
    info.driver_version = drv_ver;
    /* none: the loader is reported as the "vulkan-loader" component, and
     * version rules in the config then apply to the driver version */
    info.runtime_version = NULL;
    info.api_version = api_ver;
    info.arch = NULL;
    info.features = features;
    info.mem_total = caps.mem_total;
    info.mem_free = caps.mem_free;
    info.unusable = caps.unusable[0] ? caps.unusable : NULL;
    info.vendor_id = caps.props.vendorID;
    info.device_id = caps.props.deviceID;
    sink->device(sink->ctx, &info);
    if (caps.driver_info[0])
        note(sink, "device %u: driver %s (%s), driverVersion 0x%08x", index,
             caps.driver_name, caps.driver_info, caps.props.driverVersion);
}

int vkb_probe(const lamina_host *host, const lamina_probe_sink *sink,
              char *err, size_t err_size)
{
    char found[32], built[32];
    char lib[PATH_MAX];
    const char *lib_path = NULL;
    Dl_info dli;
    VkInstance inst = VK_NULL_HANDLE;
    VkPhysicalDevice *pds = NULL;
    uint32_t n_pd = 0;
    VkResult r;
    int rc = 0;

    if (sink == NULL || !LAMINA_HAS_FN(sink, component) || !LAMINA_HAS_FN(sink, file) ||
        !LAMINA_HAS_FN(sink, device)) {
        vkb_err(err, err_size, "probe sink lacks component/file/device");
        return LAMINA_EINVAL;
    }

    /* 1. the loader: its instance version and file */
    uint32_t lv = vkb_loader_version();
    vkb_version_str(lv, found, sizeof found);
    vkb_version_str(VKB_MIN_API, built, sizeof built);
    if (dladdr((void *)(uintptr_t)&vkGetInstanceProcAddr, &dli) != 0 && dli.dli_fname != NULL) {
        lib_path = dli.dli_fname;
        if (realpath(dli.dli_fname, lib) != NULL)
            lib_path = lib;
    }
    sink->component(sink->ctx, "vulkan-loader", found, built, LAMINA_RULE_AT_LEAST, lib_path);

    /* 2. the driver manifests, so a driver change invalidates the cache */
    report_icds(sink);

    /* 3. an instance; no driver at all is a probe that found nothing */
    if (lv < VKB_MIN_API) {
        note(sink, "Vulkan loader %s is older than 1.1: no device can be used", found);
        return 0;
    }
    r = vkb_instance_shared(&inst);
    if (r == VK_ERROR_INCOMPATIBLE_DRIVER || r == VK_ERROR_INITIALIZATION_FAILED) {
        note(sink, "no usable Vulkan driver (ICD): vkCreateInstance: %s", vkb_result_str(r));
        return 0;
    }
    if (r != VK_SUCCESS) {
        vkb_err(err, err_size, "vkCreateInstance: %s", vkb_result_str(r));
        return LAMINA_EIO;
    }

    /* 4. every physical device, in loader order (= open() index) */
    r = vkEnumeratePhysicalDevices(inst, &n_pd, NULL);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
        if (r == VK_ERROR_INITIALIZATION_FAILED) {
            /* the loader answers this when its drivers have no device */
            note(sink, "no Vulkan device: the drivers found none (vkEnumeratePhysicalDevices: %s)",
                 vkb_result_str(r));
            goto out;
        }
        vkb_err(err, err_size, "vkEnumeratePhysicalDevices: %s", vkb_result_str(r));
        rc = LAMINA_EIO;
        goto out;
    }
    if (n_pd == 0) {
        note(sink, "the Vulkan loader found no physical device");
        goto out;
    }
    pds = calloc(n_pd, sizeof *pds);
    if (pds == NULL) {
        vkb_err(err, err_size, "out of host memory");
        rc = LAMINA_ENOMEM;
        goto out;
    }
    r = vkEnumeratePhysicalDevices(inst, &n_pd, pds);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
        vkb_err(err, err_size, "vkEnumeratePhysicalDevices: %s", vkb_result_str(r));
        rc = LAMINA_EIO;
        goto out;
    }
    for (uint32_t i = 0; i < n_pd; i++)
        report_device(sink, i, pds[i]);
    vkb_log(host, LAMINA_LOG_DEBUG, "probe: loader %s, %u device(s)", found, n_pd);
out:
    free(pds);
    /* inst is the process-wide instance: kept */
    return rc;
}
