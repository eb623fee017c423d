/*
 * codeobj.c - the compiled kernels, embedded byte for byte with .incbin:
 * a clang offload bundle of code objects (rocm.so) or a fatbin (cuda.so).
 * GPU_CODEOBJ_PATH names the file (the build folder's kernels bundle).
 */
#include "gpu.h"

#ifndef GPU_CODEOBJ_PATH
#error "GPU_CODEOBJ_PATH must name the kernel image"
#endif

__asm__(".section .rodata\n"
        ".balign 4096\n"
        ".globl gpu_codeobj\n"
        ".hidden gpu_codeobj\n"
        "gpu_codeobj:\n"
        ".incbin \"" GPU_CODEOBJ_PATH "\"\n"
        ".globl gpu_codeobj_end\n"
        ".hidden gpu_codeobj_end\n"
        "gpu_codeobj_end:\n"
        ".byte 0\n"
        ".previous\n");
