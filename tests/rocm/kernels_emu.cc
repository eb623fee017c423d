/* kernels_emu.cc - plugins/rocm/kernels.hip compiled for the host
 * (GPU_EMULATE), for the fake runtimes: the very same kernel source. */
#include "kernels.hip"
