/*
 * fake_icd.c - a Vulkan driver (ICD) for the fault tests, loaded by the
 * real Vulkan loader through a manifest written by tests/vulkan/faults.sh.
 * Never installed.  FAKE_ICD_MODE picks the fault:
 *   fail-instance  vkCreateInstance answers VK_ERROR_INITIALIZATION_FAILED
 *   no-devices     the instance works and has no physical device
 * It implements only what the loader asks of a driver for these two paths.
 */
#include <stdlib.h>
#include <string.h>

#include <vulkan/vk_icd.h>
#include <vulkan/vulkan_core.h>

#define EXPORT __attribute__((visibility("default")))

/* A dispatchable handle starts with the loader's dispatch slot. */
typedef struct fake_instance {
    VK_LOADER_DATA loader_data;
} fake_instance;

static int fail_instance(void)
{
    const char *m = getenv("FAKE_ICD_MODE");
    return m == NULL || strcmp(m, "fail-instance") == 0;
}

static VKAPI_ATTR VkResult VKAPI_CALL fake_CreateInstance(const VkInstanceCreateInfo *ci,
                                                          const VkAllocationCallbacks *al, VkInstance *out)
{
    (void)ci; (void)al;
    if (fail_instance())
        return VK_ERROR_INITIALIZATION_FAILED;
    fake_instance *in = calloc(1, sizeof *in);
    if (in == NULL)
        return VK_ERROR_OUT_OF_HOST_MEMORY;
    set_loader_magic_value(in);
    *out = (VkInstance)in;
    return VK_SUCCESS;
}

static VKAPI_ATTR void VKAPI_CALL fake_DestroyInstance(VkInstance in, const VkAllocationCallbacks *al)
{
    (void)al;
    free((void *)in);
}

static VKAPI_ATTR VkResult VKAPI_CALL fake_EnumeratePhysicalDevices(VkInstance in, uint32_t *n,
                                                                    VkPhysicalDevice *devs)
{
    (void)in; (void)devs;
    *n = 0;
    return VK_SUCCESS;
}

static VKAPI_ATTR VkResult VKAPI_CALL fake_EnumerateInstanceExtensionProperties(const char *layer, uint32_t *n,
                                                                                VkExtensionProperties *p)
{
    (void)layer; (void)p;
    *n = 0;
    return VK_SUCCESS;
}

static VKAPI_ATTR VkResult VKAPI_CALL fake_EnumerateInstanceVersion(uint32_t *v)
{
    *v = VK_API_VERSION_1_3;
    return VK_SUCCESS;
}

/* What the loader requires a driver to have beyond that; with no physical
 * device none of it is ever called. */
static void fake_unused(void) { abort(); }
static const char *const required[] = {
    "vkGetPhysicalDeviceFeatures", "vkGetPhysicalDeviceFormatProperties",
    "vkGetPhysicalDeviceImageFormatProperties", "vkGetPhysicalDeviceProperties",
    "vkGetPhysicalDeviceQueueFamilyProperties", "vkGetPhysicalDeviceMemoryProperties",
    "vkGetPhysicalDeviceSparseImageFormatProperties", "vkGetDeviceProcAddr", "vkCreateDevice",
    "vkEnumerateDeviceExtensionProperties", "vkEnumerateDeviceLayerProperties", NULL
};

EXPORT VKAPI_ATTR PFN_vkVoidFunction VKAPI_CALL vk_icdGetInstanceProcAddr(VkInstance in, const char *name);
EXPORT VKAPI_ATTR VkResult VKAPI_CALL vk_icdNegotiateLoaderICDInterfaceVersion(uint32_t *version);
EXPORT VKAPI_ATTR PFN_vkVoidFunction VKAPI_CALL vk_icdGetPhysicalDeviceProcAddr(VkInstance in, const char *name);

EXPORT VKAPI_ATTR PFN_vkVoidFunction VKAPI_CALL vk_icdGetInstanceProcAddr(VkInstance in, const char *name)
{
    (void)in;
#define F(n) if (strcmp(name, "vk" #n) == 0) return (PFN_vkVoidFunction)fake_##n
    F(CreateInstance);
    F(DestroyInstance);
    F(EnumeratePhysicalDevices);
    F(EnumerateInstanceExtensionProperties);
    F(EnumerateInstanceVersion);
#undef F
    for (int i = 0; required[i] != NULL; i++)
        if (strcmp(name, required[i]) == 0) return (PFN_vkVoidFunction)fake_unused;
    return NULL;
}

EXPORT VKAPI_ATTR PFN_vkVoidFunction VKAPI_CALL vk_icdGetPhysicalDeviceProcAddr(VkInstance in, const char *name)
{
    (void)in; (void)name;
    return NULL;
}

EXPORT VKAPI_ATTR VkResult VKAPI_CALL vk_icdNegotiateLoaderICDInterfaceVersion(uint32_t *version)
{
    if (*version > 5)
        *version = 5;
    return VK_SUCCESS;
}
