/*
 * kernels_avx2.c - AVX2 + FMA + F16C kernels (256-bit, maddubs/madd).
 * Compiled for the target through a pragma, never -march: the table is only
 * used when the CPU reports the features (cpu_kernels_select).
 */
#include <string.h>

#include "kernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif

#define SFX(name) name##_avx2
#define CPU_X86_VNNI 0
#define X86_COLS 4
#include "kernels_x86.inc"

void cpu_kernels_avx2_init(cpu_kernels *t)
{
    *t = cpu_kernels_scalar;
    t->name = "avx2";
    fill_table_avx2(t);
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#else /* not x86-64 */

void cpu_kernels_avx2_init(cpu_kernels *t)
{
    *t = cpu_kernels_scalar;
}

#endif
