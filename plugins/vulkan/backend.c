/*
 * backend.c - a Vulkan backend instance: device, queue, command buffer,
 * staging memory and buffers.  One instance is used by one thread at a
 * time (the core serialises calls per instance).
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vkb.h"

#define VKB_STAGE_SIZE (16u << 20)

int vkb_fail(lamina_backend *be, VkResult r, const char *what, char *err, size_t err_size)
{
    switch (r) {
    case VK_ERROR_DEVICE_LOST:
        if (be != NULL)
            be->lost = 1;
        vkb_err(err, err_size, "%s: VK_ERROR_DEVICE_LOST (the Vulkan device was lost; "
                "this instance can only be closed)", what);
        return LAMINA_EDEVLOST;
    case VK_ERROR_OUT_OF_DEVICE_MEMORY:
        vkb_err(err, err_size, "%s: VK_ERROR_OUT_OF_DEVICE_MEMORY (device memory exhausted)", what);
        return LAMINA_ENOMEM;
    case VK_ERROR_OUT_OF_HOST_MEMORY:
        vkb_err(err, err_size, "%s: VK_ERROR_OUT_OF_HOST_MEMORY", what);
        return LAMINA_ENOMEM;
    default:
        vkb_err(err, err_size, "%s: %s", what, vkb_result_str(r));
        return LAMINA_EIO;
    }
}

static void profile_report(lamina_backend *be);

static int find_mem_type(const VkPhysicalDeviceMemoryProperties *mp, uint32_t bits,
                         VkMemoryPropertyFlags want)
{
    for (uint32_t i = 0; i < mp->memoryTypeCount; i++)
        if ((bits & (1u << i)) && (mp->memoryTypes[i].propertyFlags & want) == want)
            return (int)i;
    return -1;
}

/* A VkBuffer with its own memory, preferring `want` properties and
 * falling back to `fallback`. */
static int raw_buffer(lamina_backend *be, uint64_t size, VkBufferUsageFlags usage,
                      VkMemoryPropertyFlags want, VkMemoryPropertyFlags fallback,
                      VkBuffer *buf_out, VkDeviceMemory *mem_out, char *err, size_t err_size)
{
    VkPhysicalDeviceMemoryProperties mp;
    VkMemoryRequirements req;
    VkBuffer buf = VK_NULL_HANDLE;
    VkDeviceMemory mem = VK_NULL_HANDLE;
    VkResult r;
    int rc, type;
    char what[96];

    VkBufferCreateInfo bci = {
        .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
        .size = size,
        .usage = usage,
        .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
    };
    r = vkCreateBuffer(be->dev, &bci, NULL, &buf);
    if (r != VK_SUCCESS) {
        snprintf(what, sizeof what, "vkCreateBuffer(%llu bytes)", (unsigned long long)size);
        return vkb_fail(be, r, what, err, err_size);
    }
    vkGetBufferMemoryRequirements(be->dev, buf, &req);
    vkGetPhysicalDeviceMemoryProperties(be->pdev, &mp);
    type = find_mem_type(&mp, req.memoryTypeBits, want);
    if (type < 0)
        type = find_mem_type(&mp, req.memoryTypeBits, fallback);
    if (type < 0) {
        vkb_err(err, err_size, "no suitable Vulkan memory type for a %llu-byte buffer",
                (unsigned long long)size);
        rc = LAMINA_ENOTSUP;
        goto fail_buf;
    }
    VkMemoryAllocateInfo mai = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
        .allocationSize = req.size,
        .memoryTypeIndex = (uint32_t)type,
    };
    r = vkAllocateMemory(be->dev, &mai, NULL, &mem);
    if (r != VK_SUCCESS) {
        snprintf(what, sizeof what, "vkAllocateMemory(%llu bytes)", (unsigned long long)req.size);
        rc = vkb_fail(be, r, what, err, err_size);
        goto fail_buf;
    }
    r = vkBindBufferMemory(be->dev, buf, mem, 0);
    if (r != VK_SUCCESS) {
        rc = vkb_fail(be, r, "vkBindBufferMemory", err, err_size);
        goto fail_mem;
    }
    *buf_out = buf;
    *mem_out = mem;
    return 0;

fail_mem:
    vkFreeMemory(be->dev, mem, NULL);
fail_buf:
    vkDestroyBuffer(be->dev, buf, NULL);
    return rc;
}

int vkb_submit_wait(lamina_backend *be, const char *what, char *err, size_t err_size)
{
    VkResult r;
    VkSubmitInfo si = {
        .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
        .commandBufferCount = 1,
        .pCommandBuffers = &be->cmd,
    };

    r = vkQueueSubmit(be->queue, 1, &si, be->fence);
    if (r != VK_SUCCESS)
        return vkb_fail(be, r, what, err, err_size);
    r = vkWaitForFences(be->dev, 1, &be->fence, VK_TRUE, UINT64_MAX);
    if (r != VK_SUCCESS)
        return vkb_fail(be, r, what, err, err_size);
    r = vkResetFences(be->dev, 1, &be->fence);
    if (r != VK_SUCCESS)
        return vkb_fail(be, r, what, err, err_size);
    return 0;
}

int vkb_begin_cmd(lamina_backend *be, char *err, size_t err_size)
{
    VkResult r;
    VkCommandBufferBeginInfo bi = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
        .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
    };
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_MEMORY_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_MEMORY_READ_BIT | VK_ACCESS_MEMORY_WRITE_BIT,
    };

    r = vkResetCommandBuffer(be->cmd, 0);
    if (r == VK_SUCCESS)
        r = vkBeginCommandBuffer(be->cmd, &bi);
    if (r != VK_SUCCESS)
        return vkb_fail(be, r, "vkBeginCommandBuffer", err, err_size);
    /* order against whatever an earlier submission wrote */
    vkCmdPipelineBarrier(be->cmd, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT,
                         VK_PIPELINE_STAGE_ALL_COMMANDS_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    return 0;
}

/* ---- open / close ------------------------------------------------------- */

static void destroy(lamina_backend *be)
{
    if (be->dev != VK_NULL_HANDLE) {
        vkDeviceWaitIdle(be->dev);
        while (be->buffers != NULL)
            vkb_buffer_free(be, be->buffers);
        if (be->dummy != NULL)
            vkb_buffer_free(be, be->dummy);
        profile_report(be);
        if (be->qpool != VK_NULL_HANDLE)
            vkDestroyQueryPool(be->dev, be->qpool, NULL);
        free(be->q_shader);
        vkb_pipelines_destroy(be);
        if (be->stage_map != NULL)
            vkUnmapMemory(be->dev, be->stage_mem);
        vkDestroyBuffer(be->dev, be->stage_buf, NULL);
        vkFreeMemory(be->dev, be->stage_mem, NULL);
        vkDestroyPipelineCache(be->dev, be->pcache, NULL);
        vkDestroyDescriptorPool(be->dev, be->dpool, NULL);
        vkDestroyPipelineLayout(be->dev, be->layout, NULL);
        vkDestroyDescriptorSetLayout(be->dev, be->dsl, NULL);
        vkDestroyFence(be->dev, be->fence, NULL);
        vkDestroyCommandPool(be->dev, be->cmd_pool, NULL);
        vkDestroyDevice(be->dev, NULL);
    }
    /* be->instance is the process-wide one (shared_instance): kept */
    free(be);
}

/* LAMINA_VULKAN_PROFILE=1: a timestamp query pool, when the queue has
 * timestamps; without them profiling is off and says so. */
static void profile_init(lamina_backend *be, uint32_t family)
{
    const char *pe = getenv("LAMINA_VULKAN_PROFILE");
    if (pe == NULL || *pe == '\0' || strcmp(pe, "0") == 0)
        return;
    uint32_t nf = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(be->pdev, &nf, NULL);
    VkQueueFamilyProperties *qf = calloc(nf ? nf : 1, sizeof *qf);
    if (qf == NULL)
        return;
    vkGetPhysicalDeviceQueueFamilyProperties(be->pdev, &nf, qf);
    const int ok = family < nf && qf[family].timestampValidBits > 0 &&
                   be->caps.props.limits.timestampPeriod > 0.0f;
    free(qf);
    if (!ok) {
        vkb_log(be->host, LAMINA_LOG_WARN, "profile: the compute queue has no timestamps; not profiling");
        return;
    }
    be->q_cap = 8192;
    be->q_shader = calloc(be->q_cap / 2, sizeof *be->q_shader);
    VkQueryPoolCreateInfo qi = {
        .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
        .queryType = VK_QUERY_TYPE_TIMESTAMP,
        .queryCount = be->q_cap,
    };
    if (be->q_shader == NULL || vkCreateQueryPool(be->dev, &qi, NULL, &be->qpool) != VK_SUCCESS) {
        free(be->q_shader);
        be->q_shader = NULL;
        be->qpool = VK_NULL_HANDLE;
        return;
    }
    be->q_period = be->caps.props.limits.timestampPeriod;
    vkb_log(be->host, LAMINA_LOG_INFO, "profile: timestamps around every dispatch (%.1f ns a tick)", be->q_period);
}

/* The profile so far, one line per shader, most time first. */
static void profile_report(lamina_backend *be)
{
    double total = 0;
    for (int i = 0; i < VKS_COUNT; i++) total += be->prof_ns[i];
    if (total <= 0)
        return;
    vkb_log(be->host, LAMINA_LOG_INFO, "profile: %.1f ms of GPU time in dispatches", total / 1e6);
    int done[VKS_COUNT] = { 0 };
    for (;;) {
        int best = -1;
        for (int i = 0; i < VKS_COUNT; i++)
            if (!done[i] && be->prof_n[i] && (best < 0 || be->prof_ns[i] > be->prof_ns[best])) best = i;
        if (best < 0)
            break;
        done[best] = 1;
        vkb_log(be->host, LAMINA_LOG_INFO, "profile: %-14s %7llu dispatches %9.1f ms %5.1f%%  %8.1f us each",
                vks_blobs[best].name, (unsigned long long)be->prof_n[best], be->prof_ns[best] / 1e6,
                100.0 * be->prof_ns[best] / total, be->prof_ns[best] / 1e3 / (double)be->prof_n[best]);
    }
}

int vkb_open(const lamina_host *host, const lamina_backend_params *params,
             lamina_backend **out, char *err, size_t err_size)
{
    lamina_backend *be;
    VkPhysicalDevice *pds = NULL;
    uint32_t n_pd = 0, index = 0;
    VkResult r;
    int rc;

    if (out == NULL) {
        vkb_err(err, err_size, "open: out is NULL");
        return LAMINA_EINVAL;
    }
    if (params != NULL && LAMINA_HAS(params, device))
        index = params->device;
    be = calloc(1, sizeof *be);
    if (be == NULL) {
        vkb_err(err, err_size, "out of host memory");
        return LAMINA_ENOMEM;
    }
    be->host = host;

    /* 1. instance and the chosen physical device */
    r = vkb_instance_shared(&be->instance);
    if (r != VK_SUCCESS) {
        be->instance = VK_NULL_HANDLE;
        rc = vkb_fail(be, r, "vkCreateInstance", err, err_size);
        if (r == VK_ERROR_INCOMPATIBLE_DRIVER)
            rc = LAMINA_ENODEV;
        goto fail;
    }
    r = vkEnumeratePhysicalDevices(be->instance, &n_pd, NULL);
    if (r != VK_SUCCESS || index >= n_pd) {
        vkb_err(err, err_size, "no Vulkan device %u (%u found)", index, n_pd);
        rc = LAMINA_ENODEV;
        goto fail;
    }
    pds = calloc(n_pd, sizeof *pds);
    if (pds == NULL) {
        vkb_err(err, err_size, "out of host memory");
        rc = LAMINA_ENOMEM;
        goto fail;
    }
    r = vkEnumeratePhysicalDevices(be->instance, &n_pd, pds);
    if ((r != VK_SUCCESS && r != VK_INCOMPLETE) || index >= n_pd) {
        vkb_err(err, err_size, "no Vulkan device %u", index);
        rc = LAMINA_ENODEV;
        goto fail;
    }
    be->pdev = pds[index];
    vkb_caps_query(be->pdev, &be->caps);
    if (be->caps.unusable[0]) {
        vkb_err(err, err_size, "Vulkan device %u (%s) unusable: %s", index,
                be->caps.props.deviceName, be->caps.unusable);
        rc = LAMINA_ENOTSUP;
        goto fail;
    }
    be->max_range = be->caps.props.limits.maxStorageBufferRange;
    /* LAMINA_VULKAN_MAX_RANGE (tests): bind smaller windows than the device
     * allows, to exercise the windowed path with small tensors */
    const char *mr = getenv("LAMINA_VULKAN_MAX_RANGE");
    if (mr != NULL && *mr != '\0') {
        unsigned long long v = strtoull(mr, NULL, 0);
        if (v >= 256 && v < be->max_range)
            be->max_range = v;
    }
    /* LAMINA_VULKAN_LOSE_AFTER=N (tests): after N graphs, the next one
     * fails as if the device had been lost (VK_ERROR_DEVICE_LOST) */
    be->lose_after = -1;
    const char *la = getenv("LAMINA_VULKAN_LOSE_AFTER");
    if (la != NULL && *la != '\0')
        be->lose_after = strtol(la, NULL, 10);
    be->min_align = be->caps.props.limits.minStorageBufferOffsetAlignment;
    if (be->min_align < 4)
        be->min_align = 4;
    memcpy(be->max_groups, be->caps.props.limits.maxComputeWorkGroupCount, sizeof be->max_groups);
    be->use_subgroup = be->caps.subgroup_arith;
    const char *nosg = getenv("LAMINA_VULKAN_NO_SUBGROUP");
    if (nosg != NULL && *nosg != '\0' && strcmp(nosg, "0") != 0)
        be->use_subgroup = 0;
    /* matrix-vector shape.  GPUs: a workgroup is one subgroup (no shared
     * memory, no barrier) with 4 rows.  CPU devices (lavapipe): 64
     * invocations, 4 rows, where larger workgroups measured faster.
     * LAMINA_VULKAN_MMV_LS (a power of two, 4..128) and
     * LAMINA_VULKAN_MMV_ROWS (1..64) override.  The shader needs
     * rows * size <= 512. */
    const int cpu_dev = be->caps.props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
    be->mmv_ls = cpu_dev ? 64 : be->caps.subgroup_size;
    be->mmv_rows = 4;
    const char *ls_env = getenv("LAMINA_VULKAN_MMV_LS");
    if (ls_env != NULL && *ls_env != '\0')
        be->mmv_ls = (uint32_t)strtoul(ls_env, NULL, 10);
    const char *mr_env = getenv("LAMINA_VULKAN_MMV_ROWS");
    if (mr_env != NULL && *mr_env != '\0') {
        long v = strtol(mr_env, NULL, 10);
        if (v >= 1 && v <= 64)
            be->mmv_rows = (uint32_t)v;
    }
    if (be->mmv_ls < 4 || be->mmv_ls > 128 || (be->mmv_ls & (be->mmv_ls - 1)) != 0 ||
        be->mmv_ls > be->caps.props.limits.maxComputeWorkGroupSize[0])
        be->use_subgroup = 0;
    while (be->use_subgroup && be->mmv_rows > 1 && be->mmv_rows * be->mmv_ls > 512)
        be->mmv_rows /= 2;
    /* CPU devices: the whole-block variants (mmv_blk_*, for the types that
     * have one), a workgroup of one subgroup and blk_rows rows.  On
     * lavapipe that reads each block's scale and X values once and keeps
     * all 8 lanes busy on short rows.  LAMINA_VULKAN_MMV_BLK=0/1 turns
     * them off / on (on any device), LAMINA_VULKAN_MMV_BLK_ROWS (1..64)
     * sets the rows. */
    be->use_blk = cpu_dev;
    const char *blk_env = getenv("LAMINA_VULKAN_MMV_BLK");
    if (blk_env != NULL && *blk_env != '\0')
        be->use_blk = strcmp(blk_env, "0") != 0;
    be->blk_ls = be->caps.subgroup_size;
    be->blk_rows = 8;
    const char *br_env = getenv("LAMINA_VULKAN_MMV_BLK_ROWS");
    if (br_env != NULL && *br_env != '\0') {
        long v = strtol(br_env, NULL, 10);
        if (v >= 1 && v <= 64)
            be->blk_rows = (uint32_t)v;
    }
    if (!be->use_subgroup || be->blk_ls < 4 || be->blk_ls > 128 ||
        be->blk_ls > be->caps.props.limits.maxComputeWorkGroupSize[0])
        be->use_blk = 0;
    while (be->use_blk && be->blk_rows > 1 && be->blk_rows * be->blk_ls > 512)
        be->blk_rows /= 2;

    /* 2. logical device with one compute queue */
    float prio = 1.0f;
    const char *exts[2];
    uint32_t n_exts = 0;
    if (be->caps.has_portability_subset)
        exts[n_exts++] = "VK_KHR_portability_subset";
    if (be->caps.has_budget)
        exts[n_exts++] = VK_EXT_MEMORY_BUDGET_EXTENSION_NAME;
    VkDeviceQueueCreateInfo qci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
        .queueFamilyIndex = (uint32_t)be->caps.compute_family,
        .queueCount = 1,
        .pQueuePriorities = &prio,
    };
    /* optional: 16-bit storage for the faster matrix-vector variants
     * (LAMINA_VULKAN_NO_16BIT=1 turns them off) */
    const char *no16 = getenv("LAMINA_VULKAN_NO_16BIT");
    be->use_s16 = be->caps.has_16bit_storage && be->use_subgroup &&
                  !(no16 != NULL && *no16 != '\0' && strcmp(no16, "0") != 0);
    VkPhysicalDevice16BitStorageFeatures s16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES,
        .storageBuffer16BitAccess = VK_TRUE,
    };
    VkDeviceCreateInfo dci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
        .pNext = be->use_s16 ? &s16 : NULL,
        .queueCreateInfoCount = 1,
        .pQueueCreateInfos = &qci,
        .enabledExtensionCount = n_exts,
        .ppEnabledExtensionNames = n_exts ? exts : NULL,
    };
    r = vkCreateDevice(be->pdev, &dci, NULL, &be->dev);
    if (r != VK_SUCCESS) {
        be->dev = VK_NULL_HANDLE;
        rc = vkb_fail(be, r, "vkCreateDevice", err, err_size);
        goto fail;
    }
    vkGetDeviceQueue(be->dev, qci.queueFamilyIndex, 0, &be->queue);
    profile_init(be, qci.queueFamilyIndex);

    /* 3. command pool, command buffer, fence */
    VkCommandPoolCreateInfo cpi = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
        .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
        .queueFamilyIndex = qci.queueFamilyIndex,
    };
    r = vkCreateCommandPool(be->dev, &cpi, NULL, &be->cmd_pool);
    if (r != VK_SUCCESS) {
        rc = vkb_fail(be, r, "vkCreateCommandPool", err, err_size);
        goto fail;
    }
    VkCommandBufferAllocateInfo cbi = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
        .commandPool = be->cmd_pool,
        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
        .commandBufferCount = 1,
    };
    r = vkAllocateCommandBuffers(be->dev, &cbi, &be->cmd);
    if (r != VK_SUCCESS) {
        rc = vkb_fail(be, r, "vkAllocateCommandBuffers", err, err_size);
        goto fail;
    }
    VkFenceCreateInfo fci = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
    r = vkCreateFence(be->dev, &fci, NULL, &be->fence);
    if (r != VK_SUCCESS) {
        rc = vkb_fail(be, r, "vkCreateFence", err, err_size);
        goto fail;
    }

    /* 4. one descriptor set layout (dst + 4 sources) and pipeline layout
     *    (128 bytes of push constants) shared by every shader */
    VkDescriptorSetLayoutBinding binds[VKB_BINDINGS];
    for (uint32_t i = 0; i < VKB_BINDINGS; i++) {
        binds[i] = (VkDescriptorSetLayoutBinding){
            .binding = i,
            .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .descriptorCount = 1,
            .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
        };
    }
    VkDescriptorSetLayoutCreateInfo dli = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
        .bindingCount = VKB_BINDINGS,
        .pBindings = binds,
    };
    r = vkCreateDescriptorSetLayout(be->dev, &dli, NULL, &be->dsl);
    if (r != VK_SUCCESS) {
        rc = vkb_fail(be, r, "vkCreateDescriptorSetLayout", err, err_size);
        goto fail;
    }
    VkPushConstantRange pcr = {
        .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
        .offset = 0,
        .size = 128,
    };
    VkPipelineLayoutCreateInfo pli = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
        .setLayoutCount = 1,
        .pSetLayouts = &be->dsl,
        .pushConstantRangeCount = 1,
        .pPushConstantRanges = &pcr,
    };
    r = vkCreatePipelineLayout(be->dev, &pli, NULL, &be->layout);
    if (r != VK_SUCCESS) {
        rc = vkb_fail(be, r, "vkCreatePipelineLayout", err, err_size);
        goto fail;
    }
    VkPipelineCacheCreateInfo pcci = { .sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO };
    r = vkCreatePipelineCache(be->dev, &pcci, NULL, &be->pcache);
    if (r != VK_SUCCESS) {
        rc = vkb_fail(be, r, "vkCreatePipelineCache", err, err_size);
        goto fail;
    }

    /* 5. staging memory (host-visible, coherent) and a dummy buffer */
    be->stage_size = VKB_STAGE_SIZE;
    if (be->caps.max_alloc != 0 && be->stage_size > be->caps.max_alloc)
        be->stage_size = be->caps.max_alloc;
    rc = raw_buffer(be, be->stage_size,
                    VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                    VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT |
                        VK_MEMORY_PROPERTY_HOST_CACHED_BIT,
                    VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT,
                    &be->stage_buf, &be->stage_mem, err, err_size);
    if (rc < 0)
        goto fail;
    r = vkMapMemory(be->dev, be->stage_mem, 0, VK_WHOLE_SIZE, 0, &be->stage_map);
    if (r != VK_SUCCESS) {
        be->stage_map = NULL;
        rc = vkb_fail(be, r, "vkMapMemory(staging)", err, err_size);
        goto fail;
    }
    rc = vkb_buffer_alloc(be, 16, 0, &be->dummy, err, err_size);
    if (rc < 0)
        goto fail;
    /* the dummy is not a user buffer: take it off the list close() walks */
    be->buffers = be->dummy->next;
    if (be->buffers != NULL)
        be->buffers->prev = NULL;
    be->dummy->next = be->dummy->prev = NULL;

    vkb_log(host, LAMINA_LOG_INFO, "opened device %u: %s (%s reductions%s%s)", index,
            be->caps.props.deviceName, be->use_subgroup ? "subgroup" : "shared-memory",
            be->use_s16 ? ", 16-bit weight loads" : "",
            be->use_blk ? ", whole-block matrix-vector" : "");
    free(pds);
    *out = be;
    return 0;

fail:
    free(pds);
    destroy(be);
    return rc;
}

void vkb_close(lamina_backend *be)
{
    if (be != NULL)
        destroy(be);
}

int vkb_memory(lamina_backend *be, uint64_t *free_bytes, uint64_t *total_bytes)
{
    uint64_t total, free_b;

    if (be == NULL)
        return LAMINA_EINVAL;
    vkb_mem_query(be->pdev, be->caps.has_budget, &total, &free_b);
    if (free_bytes != NULL)
        *free_bytes = free_b;
    if (total_bytes != NULL)
        *total_bytes = total;
    return 0;
}

/* ---- buffers ------------------------------------------------------------ */

int vkb_buffer_alloc(lamina_backend *be, uint64_t size, uint32_t usage,
                     lamina_buffer **out, char *err, size_t err_size)
{
    lamina_buffer *b;
    uint64_t asize;
    int rc;

    if (be == NULL || out == NULL) {
        vkb_err(err, err_size, "buffer_alloc: NULL argument");
        return LAMINA_EINVAL;
    }
    if (be->lost) {
        vkb_err(err, err_size, "the Vulkan device was lost");
        return LAMINA_EDEVLOST;
    }
    /* 1. whole words (shaders read 32-bit words), checked for overflow */
    if (size > UINT64_MAX - 3) {
        vkb_err(err, err_size, "buffer_alloc: size %llu too large", (unsigned long long)size);
        return LAMINA_ENOMEM;
    }
    asize = (size + 3) & ~(uint64_t)3;
    if (asize == 0)
        asize = 4;
    /* 2. limits the driver would refuse anyway, with a clearer message */
    if (be->caps.max_alloc != 0 && asize > be->caps.max_alloc) {
        vkb_err(err, err_size, "buffer of %llu bytes exceeds the device's largest allocation "
                "(maxMemoryAllocationSize %llu)", (unsigned long long)size,
                (unsigned long long)be->caps.max_alloc);
        return LAMINA_ENOMEM;
    }
    if (be->caps.mem_total != 0 && asize > be->caps.mem_total) {
        vkb_err(err, err_size, "buffer of %llu bytes exceeds device-local memory (%llu bytes)",
                (unsigned long long)size, (unsigned long long)be->caps.mem_total);
        return LAMINA_ENOMEM;
    }
    b = calloc(1, sizeof *b);
    if (b == NULL) {
        vkb_err(err, err_size, "out of host memory");
        return LAMINA_ENOMEM;
    }
    /* 3. device-local memory (any memory type when there is none) */
    rc = raw_buffer(be, asize,
                    VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                        VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                    VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0, &b->buf, &b->mem, err, err_size);
    if (rc < 0) {
        free(b);
        return rc;
    }
    b->size = size;
    b->alloc_size = asize;
    b->next = be->buffers;
    if (be->buffers != NULL)
        be->buffers->prev = b;
    be->buffers = b;
    *out = b;
    return 0;
}

int vkb_buffer_wrap_host(lamina_backend *be, const void *ptr, uint64_t size,
                         lamina_buffer **out, char *err, size_t err_size)
{
    vkb_err(err, err_size, "the Vulkan backend does not wrap host memory; allocate and upload");
    return LAMINA_ENOTSUP;
}

void vkb_buffer_free(lamina_backend *be, lamina_buffer *buf)
{
    if (be == NULL || buf == NULL)
        return;
    if (buf != be->dummy) {
        if (buf->prev != NULL)
            buf->prev->next = buf->next;
        else if (be->buffers == buf)
            be->buffers = buf->next;
        if (buf->next != NULL)
            buf->next->prev = buf->prev;
    } else {
        be->dummy = NULL;
    }
    vkDestroyBuffer(be->dev, buf->buf, NULL);
    vkFreeMemory(be->dev, buf->mem, NULL);
    free(buf);
}

static int check_range(lamina_buffer *buf, uint64_t offset, uint64_t size,
                       const void *host, char *err, size_t err_size)
{
    if (buf == NULL || (host == NULL && size != 0)) {
        vkb_err(err, err_size, "transfer: NULL buffer or host pointer");
        return LAMINA_EINVAL;
    }
    if (offset > buf->size || size > buf->size - offset) {
        vkb_err(err, err_size, "transfer of %llu bytes at offset %llu exceeds the %llu-byte buffer",
                (unsigned long long)size, (unsigned long long)offset,
                (unsigned long long)buf->size);
        return LAMINA_ERANGE;
    }
    return 0;
}

int vkb_buffer_upload(lamina_backend *be, lamina_buffer *buf, uint64_t offset,
                      const void *src, uint64_t size, char *err, size_t err_size)
{
    int rc;

    if (be == NULL)
        return LAMINA_EINVAL;
    if (be->lost) {
        vkb_err(err, err_size, "the Vulkan device was lost");
        return LAMINA_EDEVLOST;
    }
    rc = check_range(buf, offset, size, src, err, err_size);
    if (rc < 0)
        return rc;
    /* host -> staging -> buffer, one staging-sized chunk at a time */
    for (uint64_t done = 0; done < size;) {
        uint64_t n = size - done < be->stage_size ? size - done : be->stage_size;
        memcpy(be->stage_map, (const char *)src + done, n);
        rc = vkb_begin_cmd(be, err, err_size);
        if (rc < 0)
            return rc;
        VkBufferCopy cp = { .srcOffset = 0, .dstOffset = offset + done, .size = n };
        vkCmdCopyBuffer(be->cmd, be->stage_buf, buf->buf, 1, &cp);
        VkResult r = vkEndCommandBuffer(be->cmd);
        if (r != VK_SUCCESS)
            return vkb_fail(be, r, "vkEndCommandBuffer(upload)", err, err_size);
        rc = vkb_submit_wait(be, "upload", err, err_size);
        if (rc < 0)
            return rc;
        done += n;
    }
    return 0;
}

int vkb_buffer_download(lamina_backend *be, lamina_buffer *buf, uint64_t offset,
                        void *dst, uint64_t size, char *err, size_t err_size)
{
    int rc;

    if (be == NULL)
        return LAMINA_EINVAL;
    if (be->lost) {
        vkb_err(err, err_size, "the Vulkan device was lost");
        return LAMINA_EDEVLOST;
    }
    rc = check_range(buf, offset, size, dst, err, err_size);
    if (rc < 0)
        return rc;
    /* buffer -> staging -> host */
    for (uint64_t done = 0; done < size;) {
        uint64_t n = size - done < be->stage_size ? size - done : be->stage_size;
        rc = vkb_begin_cmd(be, err, err_size);
        if (rc < 0)
            return rc;
        VkBufferCopy cp = { .srcOffset = offset + done, .dstOffset = 0, .size = n };
        vkCmdCopyBuffer(be->cmd, buf->buf, be->stage_buf, 1, &cp);
        /* make the copy visible to the host before the fence wait returns */
        VkMemoryBarrier mb = {
            .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
            .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
            .dstAccessMask = VK_ACCESS_HOST_READ_BIT,
        };
        vkCmdPipelineBarrier(be->cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT,
                             0, 1, &mb, 0, NULL, 0, NULL);
        VkResult r = vkEndCommandBuffer(be->cmd);
        if (r != VK_SUCCESS)
            return vkb_fail(be, r, "vkEndCommandBuffer(download)", err, err_size);
        rc = vkb_submit_wait(be, "download", err, err_size);
        if (rc < 0)
            return rc;
        memcpy((char *)dst + done, be->stage_map, n);
        done += n;
    }
    return 0;
}
