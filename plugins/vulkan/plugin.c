/*
 * plugin.c - entry point and descriptor of the Vulkan backend plugin.
 * Only lamina_plugin_entry is exported; everything else is hidden.
 */
#include <stdarg.h>
#include <stdio.h>

#include "vkb.h"

/* "vulkan-headers" version: VK_HEADER_VERSION_COMPLETE decoded, filled by
 * the entry call before the descriptor is handed out (same text each time). */
static char headers_version[32];

void vkb_log(const lamina_host *host, int level, const char *fmt, ...)
{
    char line[512];
    va_list ap;

    if (host == NULL || !LAMINA_HAS_FN(host, log))
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    host->log(host->log_ctx, level, VKB_NAME, line);
}

void vkb_err(char *err, size_t err_size, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || err_size == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

static const lamina_component built_against[] = {
    { "vulkan-headers", headers_version },
    { NULL, NULL }
};

static const lamina_backend_iface backend_iface = {
    .struct_size = sizeof(lamina_backend_iface),
    .open = vkb_open,
    .close = vkb_close,
    .memory = vkb_memory,
    .buffer_alloc = vkb_buffer_alloc,
    .buffer_wrap_host = vkb_buffer_wrap_host,
    .buffer_free = vkb_buffer_free,
    .buffer_upload = vkb_buffer_upload,
    .buffer_download = vkb_buffer_download,
    .supports_op = vkb_supports_op,
    .graph_compute = vkb_graph_compute,
};

static const lamina_plugin_desc descriptor = {
    .abi_major = LAMINA_PLUGIN_ABI_MAJOR,
    .abi_minor = LAMINA_PLUGIN_ABI_MINOR,
    .struct_size = sizeof(lamina_plugin_desc),
    .flags = 0,
    .name = VKB_NAME,
    .version = "0.1.0",
    .description = "Vulkan compute (SPIR-V shaders) through the system Vulkan loader",
    .built_against = built_against,
    .code_targets = NULL,       /* SPIR-V is portable: no per-arch code */
    .probe = vkb_probe,
    .selftest = NULL,
    .backend = &backend_iface,
};

LAMINA_PLUGIN_EXPORT const lamina_plugin_desc *LAMINA_PLUGIN_ENTRY(const lamina_host *host);

LAMINA_PLUGIN_EXPORT const lamina_plugin_desc *LAMINA_PLUGIN_ENTRY(const lamina_host *host)
{
    if (host == NULL)
        return NULL;
    /* the major must match; within it the core adapts to our minor */
    if (host->abi_major != LAMINA_PLUGIN_ABI_MAJOR) {
        vkb_log(host, LAMINA_LOG_ERROR,
                "host ABI %u.%u (accepts minors %u..%u) not supported: plugin speaks %u.%u",
                host->abi_major, host->abi_minor, host->abi_min_minor, host->abi_minor,
                LAMINA_PLUGIN_ABI_MAJOR, LAMINA_PLUGIN_ABI_MINOR);
        return NULL;
    }
    vkb_version_str(VK_HEADER_VERSION_COMPLETE, headers_version, sizeof headers_version);
    return &descriptor;
}
