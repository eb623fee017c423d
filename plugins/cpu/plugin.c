/*
 * plugin.c - the CPU plugin's entry point, descriptor and probe.
 */
#define _GNU_SOURCE
#include <gnu/libc-version.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include "backend.h"

#define STR_(x) #x
#define STR(x) STR_(x)

static const lamina_component built_against[] = {
    { "libc", STR(__GLIBC__) "." STR(__GLIBC_MINOR__) },
    { NULL, NULL }
};

/* "model name" of the first processor in /proc/cpuinfo. */
static void cpu_model(char *out, size_t size)
{
    snprintf(out, size, "CPU");
    FILE *f = fopen("/proc/cpuinfo", "re");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0) continue;
        const char *v = strchr(line, ':');
        if (!v) continue;
        v++;
        while (*v == ' ' || *v == '\t') v++;
        snprintf(out, size, "%s", v);
        out[strcspn(out, "\n")] = 0;
        break;
    }
    fclose(f);
}

/* Space-separated SIMD features this plugin cares about. */
static void cpu_features(char *out, size_t size)
{
    out[0] = 0;
#if defined(__x86_64__) || defined(__i386__)
    static const char *const names[] = {
        "sse4.2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl",
        "avx512vnni", "avx512bf16", "avx512fp16"
    };
    __builtin_cpu_init();
    const int has[] = {
        __builtin_cpu_supports("sse4.2"), __builtin_cpu_supports("avx"),
        __builtin_cpu_supports("avx2"), __builtin_cpu_supports("fma"),
        __builtin_cpu_supports("avx512f"), __builtin_cpu_supports("avx512bw"),
        __builtin_cpu_supports("avx512vl"), __builtin_cpu_supports("avx512vnni"),
        __builtin_cpu_supports("avx512bf16"), __builtin_cpu_supports("avx512fp16")
    };
    size_t len = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!has[i]) continue;
        const int w = snprintf(out + len, size - len, "%s%s", len ? " " : "", names[i]);
        if (w < 0 || (size_t)w >= size - len) break;
        len += (size_t)w;
    }
    /* f16c: not every compiler's builtin knows it; kernels.c checks CPUID */
    if (cpu_has_avx2() && len + 6 < size) {
        snprintf(out + len, size - len, " f16c");
    }
#else
    (void)size;
#endif
}

static int cpu_probe(const lamina_host *host, const lamina_probe_sink *sink,
                     char *err, size_t err_size)
{
    (void)host;
    if (!sink || !LAMINA_HAS_FN(sink, device)) {
        if (err && err_size) snprintf(err, err_size, "cpu: probe: no device sink");
        return LAMINA_EINVAL;
    }
    if (LAMINA_HAS_FN(sink, component))
        sink->component(sink->ctx, "libc", gnu_get_libc_version(), built_against[0].version,
                        LAMINA_RULE_NONE, NULL);

    char name[256], feats[256], arch[65];
    struct utsname u;
    cpu_model(name, sizeof name);
    cpu_features(feats, sizeof feats);
    snprintf(arch, sizeof arch, "%s", uname(&u) == 0 ? u.machine : "unknown");
    uint64_t avail, total;
    cpu_meminfo(&avail, &total);

    lamina_device_info dev;
    memset(&dev, 0, sizeof dev);
    dev.struct_size = sizeof dev;
    dev.index = 0;
    dev.name = name;
    dev.type = "cpu";
    dev.arch = arch;
    dev.features = feats;
    dev.mem_total = total;
    dev.mem_free = avail;
    dev.unusable = NULL;
    sink->device(sink->ctx, &dev);

    if (LAMINA_HAS_FN(sink, note)) {
        char note[128];
        snprintf(note, sizeof note, "kernels: %s (LAMINA_CPU_ISA=scalar|avx2|avx512 overrides)",
                 cpu_has_avx512() ? "avx512" : cpu_has_avx2() ? "avx2" : "scalar");
        sink->note(sink->ctx, note);
    }
    return 0;
}

static const lamina_plugin_desc cpu_desc = {
    .abi_major = LAMINA_PLUGIN_ABI_MAJOR,
#ifdef LAMINA_CPU_AS_ABI_1_0
    .abi_minor = 0,
    .struct_size = sizeof(lamina_plugin_desc),
    .flags = 0,                                 /* reserved in 1.0 */
#elif defined(LAMINA_CPU_AS_ABI_1_1)
    .abi_minor = 1,
    .struct_size = sizeof(lamina_plugin_desc),
    .flags = LAMINA_PLUGIN_F_HOST_MEMORY,
#else
    .abi_minor = LAMINA_PLUGIN_ABI_MINOR,
    .struct_size = sizeof(lamina_plugin_desc),
    .flags = LAMINA_PLUGIN_F_HOST_MEMORY,
#endif
    .name = CPU_PLUGIN_NAME,
    .version = CPU_PLUGIN_VERSION,
    .description = "CPU backend: scalar, AVX2 and AVX-512 VNNI kernels, chosen at run time",
    .built_against = built_against,
    .code_targets = NULL,
    .probe = cpu_probe,
    .selftest = NULL,
    .backend = &cpu_backend_iface,
};

LAMINA_PLUGIN_EXPORT const lamina_plugin_desc *LAMINA_PLUGIN_ENTRY(const lamina_host *host);

LAMINA_PLUGIN_EXPORT const lamina_plugin_desc *LAMINA_PLUGIN_ENTRY(const lamina_host *host)
{
    if (host && LAMINA_HAS(host, abi_major) && host->abi_major != LAMINA_PLUGIN_ABI_MAJOR) {
        if (LAMINA_HAS_FN(host, log)) {
            char msg[128];
            snprintf(msg, sizeof msg, "host speaks plugin ABI %u, cpu plugin was built for %u",
                     host->abi_major, LAMINA_PLUGIN_ABI_MAJOR);
            host->log(host->log_ctx, LAMINA_LOG_ERROR, CPU_PLUGIN_NAME, msg);
        }
        return NULL;
    }
    return &cpu_desc;
}
