/*
 * backend.c - a GPU backend instance: the runtime, the device made
 * current, the loaded kernels and every buffer.  One instance is used by
 * one thread at a time (the core serialises calls per instance); the
 * device is made current at the start of every call, as the caller's
 * thread may change between calls.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu.h"

void gpu_mark_lost(lamina_backend *be, const char *err)
{
    if (!be->lost)
        snprintf(be->lost_why, sizeof be->lost_why, "%s", err && err[0] ? err : "no detail");
    be->lost = 1;
}

int gpu_lost_err(const lamina_backend *be, char *err, size_t err_size)
{
    gpu_err(err, err_size, "the " GPU_NAME " device was lost (%s); close this instance",
            be->lost_why);
    return LAMINA_EDEVLOST;
}

static void destroy(lamina_backend *be)
{
    if (be->rt != NULL) {
        gpu_rt_select(be->rt, be->device, NULL, 0);
        while (be->buffers != NULL)
            gpu_buffer_free(be, be->buffers);
        gpu_rt_module_unload(be->rt, be->module);
        gpu_rt_unload(be->rt);
    }
    free(be);
}

int gpu_open(const lamina_host *host, const lamina_backend_params *params,
             lamina_backend **out, char *err, size_t err_size)
{
    lamina_backend *be;
    char name[256] = "";
    int n = 0, rc;

    if (out == NULL) {
        gpu_err(err, err_size, "open: out is NULL");
        return LAMINA_EINVAL;
    }
    be = calloc(1, sizeof *be);
    if (be == NULL) {
        gpu_err(err, err_size, "out of host memory");
        return LAMINA_ENOMEM;
    }
    be->host = host;
    be->device = params != NULL && LAMINA_HAS(params, device) ? (int)params->device : 0;

    /* 1. the runtime and the device */
    rc = gpu_rt_load(&be->rt, err, err_size);
    if (rc < 0)
        goto fail;
    rc = gpu_rt_device_count(be->rt, &n, err, err_size);
    if (rc < 0)
        goto fail;
    if (be->device < 0 || be->device >= n) {
        gpu_err(err, err_size, "no " GPU_NAME " device %d (%d found)", be->device, n);
        rc = LAMINA_ENODEV;
        goto fail;
    }
    rc = gpu_rt_select(be->rt, be->device, err, err_size);
    if (rc < 0)
        goto fail;
    rc = gpu_rt_device_desc(be->rt, be->device, name, sizeof name, &be->mem_total, err,
                            err_size);
    if (rc < 0)
        goto fail;
    gpu_rt_grid_limits(be->rt, &be->max_grid_x, &be->max_grid_y);

    /* 2. the kernels: the code object for this device's architecture */
    rc = gpu_rt_module_load(be->rt, gpu_codeobj, &be->module, err, err_size);
    if (rc < 0) {
        be->module = NULL;
        goto fail;
    }
    for (int k = 0; k < GK_COUNT; k++) {
        rc = gpu_rt_function(be->rt, be->module, gpu_kernel_names[k], &be->fn[k], err,
                             err_size);
        if (rc < 0)
            goto fail;
    }
    gpu_log(host, LAMINA_LOG_INFO, "opened device %d: %s, %llu MiB", be->device,
            name[0] ? name : "?", (unsigned long long)(be->mem_total >> 20));
    *out = be;
    return 0;

fail:
    destroy(be);
    return rc;
}

void gpu_close(lamina_backend *be)
{
    if (be != NULL)
        destroy(be);
}

int gpu_memory(lamina_backend *be, uint64_t *free_bytes, uint64_t *total_bytes)
{
    uint64_t f = 0, t = 0;

    if (be == NULL)
        return LAMINA_EINVAL;
    if (gpu_rt_select(be->rt, be->device, NULL, 0) < 0 || gpu_rt_mem_info(be->rt, &f, &t) < 0) {
        f = 0;
        t = be->mem_total;
    }
    if (free_bytes != NULL)
        *free_bytes = f;
    if (total_bytes != NULL)
        *total_bytes = t ? t : be->mem_total;
    return 0;
}

int gpu_buffer_alloc(lamina_backend *be, uint64_t size, uint32_t usage,
                     lamina_buffer **out, char *err, size_t err_size)
{
    lamina_buffer *b;
    int rc;

    (void)usage;
    if (be == NULL || out == NULL) {
        gpu_err(err, err_size, "buffer_alloc: NULL argument");
        return LAMINA_EINVAL;
    }
    if (be->lost)
        return gpu_lost_err(be, err, err_size);
    if (be->mem_total != 0 && size > be->mem_total) {
        gpu_err(err, err_size, "buffer of %llu bytes exceeds device memory (%llu bytes)",
                (unsigned long long)size, (unsigned long long)be->mem_total);
        return LAMINA_ENOMEM;
    }
    b = calloc(1, sizeof *b);
    if (b == NULL) {
        gpu_err(err, err_size, "out of host memory");
        return LAMINA_ENOMEM;
    }
    rc = gpu_rt_select(be->rt, be->device, err, err_size);
    if (rc == 0)
        rc = gpu_rt_alloc(be->rt, size ? size : 4, &b->dptr, err, err_size);
    if (rc < 0) {
        free(b);
        return rc;
    }
    b->size = size;
    b->owner = be;
    b->next = be->buffers;
    if (be->buffers != NULL)
        be->buffers->prev = b;
    be->buffers = b;
    *out = b;
    return 0;
}

int gpu_buffer_wrap_host(lamina_backend *be, const void *ptr, uint64_t size,
                         lamina_buffer **out, char *err, size_t err_size)
{
    (void)be;
    (void)ptr;
    (void)size;
    (void)out;
    gpu_err(err, err_size, "the " GPU_NAME " backend does not wrap host memory; allocate and upload");
    return LAMINA_ENOTSUP;
}

void gpu_buffer_free(lamina_backend *be, lamina_buffer *buf)
{
    if (be == NULL || buf == NULL || buf->owner != be)
        return;
    if (buf->prev != NULL)
        buf->prev->next = buf->next;
    else
        be->buffers = buf->next;
    if (buf->next != NULL)
        buf->next->prev = buf->prev;
    gpu_rt_select(be->rt, be->device, NULL, 0);
    gpu_rt_free(be->rt, buf->dptr);
    free(buf);
}

static int check_transfer(lamina_backend *be, lamina_buffer *buf, uint64_t offset,
                          uint64_t size, const void *host, char *err, size_t err_size)
{
    if (be == NULL || buf == NULL || buf->owner != be || (host == NULL && size != 0)) {
        gpu_err(err, err_size, "transfer: bad buffer or host pointer");
        return LAMINA_EINVAL;
    }
    if (be->lost)
        return gpu_lost_err(be, err, err_size);
    if (offset > buf->size || size > buf->size - offset) {
        gpu_err(err, err_size, "transfer of %llu bytes at offset %llu exceeds the %llu-byte buffer",
                (unsigned long long)size, (unsigned long long)offset,
                (unsigned long long)buf->size);
        return LAMINA_ERANGE;
    }
    return gpu_rt_select(be->rt, be->device, err, err_size);
}

int gpu_buffer_upload(lamina_backend *be, lamina_buffer *buf, uint64_t offset,
                      const void *src, uint64_t size, char *err, size_t err_size)
{
    int rc = check_transfer(be, buf, offset, size, src, err, err_size);
    if (rc < 0 || size == 0)
        return rc;
    rc = gpu_rt_upload(be->rt, buf->dptr + offset, src, size, err, err_size);
    if (rc == LAMINA_EDEVLOST)
        gpu_mark_lost(be, err);
    return rc;
}

int gpu_buffer_download(lamina_backend *be, lamina_buffer *buf, uint64_t offset,
                        void *dst, uint64_t size, char *err, size_t err_size)
{
    int rc = check_transfer(be, buf, offset, size, dst, err, err_size);
    if (rc < 0 || size == 0)
        return rc;
    rc = gpu_rt_download(be->rt, dst, buf->dptr + offset, size, err, err_size);
    if (rc == LAMINA_EDEVLOST)
        gpu_mark_lost(be, err);
    return rc;
}
