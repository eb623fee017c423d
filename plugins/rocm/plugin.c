/*
 * plugin.c - entry point and descriptor of rocm.so (and, compiled with
 * GPU_CUDA, of cuda.so).  Only lamina_plugin_entry is exported.
 *
 * Build-time values (plugins/rocm/Makefile.am, from configure):
 *   GPU_BUILT_VERSION   "6.3.42131": HIP runtime (rocm) or CUDA toolkit
 *                       (cuda) the plugin was built against
 *   GPU_CODE_TARGETS    "gfx906", "gfx90a", ...  or "sm_80", ...: the
 *                       architectures of the embedded code objects
 */
#include <config.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "gpu.h"

#ifndef GPU_BUILT_VERSION
#error "GPU_BUILT_VERSION must be defined by the build"
#endif
#ifndef GPU_CODE_TARGETS
#error "GPU_CODE_TARGETS must be defined by the build"
#endif

const char *const gpu_code_targets[] = { GPU_CODE_TARGETS, NULL };

void gpu_log(const lamina_host *host, int level, const char *fmt, ...)
{
    char line[512];
    va_list ap;

    if (host == NULL || !LAMINA_HAS_FN(host, log))
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    host->log(host->log_ctx, level, GPU_NAME, line);
}

void gpu_err(char *err, size_t err_size, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || err_size == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

void gpu_note(const lamina_probe_sink *sink, const char *fmt, ...)
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

int gpu_read_line(const char *path, char *out, size_t size)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return -1;
    if (fgets(out, (int)size, f) == NULL) {
        fclose(f);
        return -1;
    }
    fclose(f);
    size_t n = strlen(out);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' ' || out[n - 1] == '\t' ||
                     out[n - 1] == '\r'))
        out[--n] = '\0';
    return n > 0 ? 0 : -1;
}

static const lamina_component built_against[] = {
#ifdef GPU_CUDA
    { "cuda-driver", GPU_BUILT_VERSION },
#else
    { "hip-runtime", GPU_BUILT_VERSION },
#endif
    { NULL, NULL }
};

static const lamina_backend_iface backend_iface = {
    .struct_size = sizeof(lamina_backend_iface),
    .open = gpu_open,
    .close = gpu_close,
    .memory = gpu_memory,
    .buffer_alloc = gpu_buffer_alloc,
    .buffer_wrap_host = gpu_buffer_wrap_host,
    .buffer_free = gpu_buffer_free,
    .buffer_upload = gpu_buffer_upload,
    .buffer_download = gpu_buffer_download,
    .supports_op = gpu_supports_op,
    .graph_compute = gpu_graph_compute,
};

static const lamina_plugin_desc descriptor = {
    .abi_major = LAMINA_PLUGIN_ABI_MAJOR,
    .abi_minor = LAMINA_PLUGIN_ABI_MINOR,
    .struct_size = sizeof(lamina_plugin_desc),
    .flags = 0,
    .name = GPU_NAME,
    .version = GPU_VERSION,
#ifdef GPU_CUDA
    .description = "NVIDIA GPUs: the lamina HIP kernels built with nvcc, CUDA driver API loaded at probe time",
#else
    .description = "AMD GPUs through ROCm/HIP: libamdhip64 loaded at probe time",
#endif
    .built_against = built_against,
    .code_targets = gpu_code_targets,
    .probe = gpu_probe,
    .selftest = NULL,
    .backend = &backend_iface,
};

LAMINA_PLUGIN_EXPORT const lamina_plugin_desc *LAMINA_PLUGIN_ENTRY(const lamina_host *host);

LAMINA_PLUGIN_EXPORT const lamina_plugin_desc *LAMINA_PLUGIN_ENTRY(const lamina_host *host)
{
    if (host == NULL)
        return NULL;
    if (host->abi_major != LAMINA_PLUGIN_ABI_MAJOR) {
        gpu_log(host, LAMINA_LOG_ERROR,
                "host ABI %u.%u (accepts minors %u..%u) not supported: plugin speaks %u.%u",
                host->abi_major, host->abi_minor, host->abi_min_minor, host->abi_minor,
                LAMINA_PLUGIN_ABI_MAJOR, LAMINA_PLUGIN_ABI_MINOR);
        return NULL;
    }
    return &descriptor;
}
