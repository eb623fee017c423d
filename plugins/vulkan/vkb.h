/*
 * vkb.h - internals of the Vulkan backend plugin (not installed).
 *
 * plugin.c  the entry point and descriptor
 * probe.c   loader, ICD and device discovery; capability checks shared by
 *           probe and open
 * backend.c instance lifetime, buffers, transfers
 * ops.c     op validation (supports_op), recording and graph execution
 * shaders.c generated from shaders/ by gen-shaders.sh
 */
#ifndef LAMINA_VKB_H
#define LAMINA_VKB_H

#include <stdint.h>
#include <stddef.h>
#include <vulkan/vulkan.h>

#include "lamina/plugin.h"
#include "shaders.h"

#define VKB_NAME "vulkan"
/* The instance API level the shaders are compiled for (SPIR-V 1.3). */
#define VKB_MIN_API VK_API_VERSION_1_1
/* Local sizes the shaders use; a device must allow the largest. */
#define VKB_MAX_LOCAL_SIZE 256u
/* Bindings per dispatch: dst and src[0..3]. */
#define VKB_BINDINGS 5u

/* What the backend needs to know about one physical device; filled by
 * vkb_caps_query() for both probe and open. */
typedef struct vkb_caps {
    VkPhysicalDeviceProperties props;
    char driver_name[VK_MAX_DRIVER_NAME_SIZE];
    char driver_info[VK_MAX_DRIVER_INFO_SIZE];
    uint32_t driver_id;            /* VkDriverId, 0 when unknown */
    uint32_t subgroup_size;
    int subgroup_arith;            /* subgroupAdd usable in compute */
    int has_16bit_storage, has_8bit_storage, has_f16, has_int8, has_int16;
    int has_budget;                /* VK_EXT_memory_budget */
    int has_portability_subset;    /* must then be enabled at device creation */
    uint64_t max_alloc;            /* maxMemoryAllocationSize (0 = unknown) */
    uint64_t mem_total;            /* device-local heaps */
    uint64_t mem_free;             /* from the budget, 0 when unknown */
    int compute_family;            /* -1 when none */
    char unusable[160];            /* "" when usable */
} vkb_caps;

/* Loader and instance helpers (probe.c). */
uint32_t vkb_loader_version(void);
void vkb_version_str(uint32_t v, char *out, size_t n);
/* Create an instance for probing or opening; 0 or a VkResult. */
VkResult vkb_instance_create(VkInstance *out);
/* The process-wide instance (probe.c), created on first use and never
 * destroyed, so the loader never unloads the driver under us. */
VkResult vkb_instance_shared(VkInstance *out);
void vkb_caps_query(VkPhysicalDevice pd, vkb_caps *caps);
/* Device-local total and free (budget) bytes now. */
void vkb_mem_query(VkPhysicalDevice pd, int has_budget, uint64_t *total, uint64_t *free_b);
const char *vkb_result_str(VkResult r);

int vkb_probe(const lamina_host *host, const lamina_probe_sink *sink,
              char *err, size_t err_size);

/* One device allocation. */
struct lamina_buffer {
    VkBuffer buf;
    VkDeviceMemory mem;
    uint64_t size;                 /* as asked */
    uint64_t alloc_size;           /* rounded up to 4 bytes */
    struct lamina_buffer *prev, *next;
};

struct lamina_backend {
    const lamina_host *host;
    VkInstance instance;
    VkPhysicalDevice pdev;
    vkb_caps caps;
    VkDevice dev;
    VkQueue queue;
    VkCommandPool cmd_pool;
    VkCommandBuffer cmd;
    VkFence fence;
    VkDescriptorSetLayout dsl;
    VkPipelineLayout layout;
    VkDescriptorPool dpool;
    uint32_t dpool_sets;           /* capacity of dpool */
    VkPipelineCache pcache;
    VkPipeline pipes[VKS_COUNT];   /* created on first use */
    int use_subgroup;              /* the mmv_sg_* variants */
    int use_s16;                   /* the mmv_s16_* variants (16-bit storage
                                      enabled on the device) */
    uint32_t mmv_ls, mmv_rows;     /* their workgroup size (= subgroup size)
                                      and rows per workgroup */
    int use_blk;                   /* the mmv_blk_* variants (CPU devices) */
    uint32_t blk_ls, blk_rows;     /* their workgroup size and rows */
    /* host-visible staging for transfers */
    VkBuffer stage_buf;
    VkDeviceMemory stage_mem;
    void *stage_map;
    uint64_t stage_size;
    /* bound to unused bindings */
    struct lamina_buffer *dummy;
    /* every live buffer, freed by close() */
    struct lamina_buffer *buffers;
    uint32_t mem_type_device;      /* memory type for buffers */
    int lost;                      /* VK_ERROR_DEVICE_LOST seen */
    /* LAMINA_VULKAN_PROFILE: GPU time per shader from timestamp queries,
     * logged at close (info level) */
    VkQueryPool qpool;             /* VK_NULL_HANDLE when not profiling */
    uint32_t q_cap, n_q;           /* queries; used in the graph being recorded */
    int *q_shader;                 /* [q_cap / 2] shader id of each dispatch */
    double q_period;               /* ns per timestamp tick */
    double prof_ns[VKS_COUNT];
    uint64_t prof_n[VKS_COUNT];
    long lose_after;               /* LAMINA_VULKAN_LOSE_AFTER: graphs left
                                      before a simulated device loss; < 0 never */
    uint64_t max_range;            /* maxStorageBufferRange */
    uint64_t min_align;            /* minStorageBufferOffsetAlignment */
    uint32_t max_groups[3];        /* maxComputeWorkGroupCount */
};

/* backend.c */
int vkb_open(const lamina_host *host, const lamina_backend_params *params,
             lamina_backend **out, char *err, size_t err_size);
void vkb_close(lamina_backend *be);
int vkb_memory(lamina_backend *be, uint64_t *free_bytes, uint64_t *total_bytes);
int vkb_buffer_alloc(lamina_backend *be, uint64_t size, uint32_t usage,
                     lamina_buffer **out, char *err, size_t err_size);
int vkb_buffer_wrap_host(lamina_backend *be, const void *ptr, uint64_t size,
                         lamina_buffer **out, char *err, size_t err_size);
void vkb_buffer_free(lamina_backend *be, lamina_buffer *buf);
int vkb_buffer_upload(lamina_backend *be, lamina_buffer *buf, uint64_t offset,
                      const void *src, uint64_t size, char *err, size_t err_size);
int vkb_buffer_download(lamina_backend *be, lamina_buffer *buf, uint64_t offset,
                        void *dst, uint64_t size, char *err, size_t err_size);
/* Map a failed VkResult to a lamina code, writing "what: VK_ERROR_..." and
 * marking the instance lost on VK_ERROR_DEVICE_LOST. */
int vkb_fail(lamina_backend *be, VkResult r, const char *what, char *err, size_t err_size);
/* Reset and begin be->cmd, with a barrier against earlier submissions. */
int vkb_begin_cmd(lamina_backend *be, char *err, size_t err_size);
/* Submit be->cmd (ended) and wait on the fence. */
int vkb_submit_wait(lamina_backend *be, const char *what, char *err, size_t err_size);

/* ops.c */
int vkb_supports_op(lamina_backend *be, const lamina_node *node);
int vkb_graph_compute(lamina_backend *be, const lamina_graph *graph,
                      char *err, size_t err_size);
void vkb_pipelines_destroy(lamina_backend *be);

/* plugin.c */
void vkb_log(const lamina_host *host, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void vkb_err(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
