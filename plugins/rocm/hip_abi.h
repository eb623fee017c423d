/*
 * hip_abi.h - the few facts of the HIP runtime's binary interface that
 * rocm.so relies on without including HIP's headers.  Also read by the fake
 * runtime in tests/rocm, so both sides agree.
 *
 * Versions: hipRuntimeGetVersion() returns HIP_VERSION,
 * major * 10000000 + minor * 100000 + patch.
 *
 * hipDeviceProp_t: only name[256] (offset 0) and gcnArchName[256] are read,
 * out of a zeroed buffer larger than either layout.
 *   HIP 5.x:  hipGetDeviceProperties,      792 bytes, gcnArchName at 396
 *   HIP >= 6: hipGetDevicePropertiesR0600, 1472 bytes, gcnArchName at 1160
 * configure checks the offset against the hip_runtime_api.h it builds
 * with when that header exists (ROCM_PROPS_ARCH_OFFSET overrides).
 *
 * Error codes used by name (stable across 5.x-7.x).
 */
#ifndef LAMINA_HIP_ABI_H
#define LAMINA_HIP_ABI_H

#define HIPA_SUCCESS 0
#define HIPA_ERR_OUT_OF_MEMORY 2
#define HIPA_ERR_NOT_INITIALIZED 3
#define HIPA_ERR_INSUFFICIENT_DRIVER 35
#define HIPA_ERR_NO_DEVICE 100
#define HIPA_ERR_INVALID_DEVICE 101
#define HIPA_ERR_INVALID_IMAGE 200
#define HIPA_ERR_NO_BINARY_FOR_GPU 209
#define HIPA_ERR_NOT_FOUND 500
#define HIPA_ERR_ILLEGAL_ADDRESS 700
#define HIPA_ERR_LAUNCH_FAILURE 719

#define HIPA_PROPS_BUF 4096

#define HIPA_VERSION(maj, min, pat) ((maj) * 10000000 + (min) * 100000 + (pat))

/* Properties call of runtime major `major`: symbol and gcnArchName offset. */
static inline const char *hipa_props_symbol(int major)
{
    return major >= 6 ? "hipGetDevicePropertiesR0600" : "hipGetDeviceProperties";
}

static inline unsigned hipa_props_arch_offset(int major)
{
    return major >= 6 ? 1160u : 396u;
}

#endif
