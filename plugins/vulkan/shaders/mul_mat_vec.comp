#version 450
/*
 * mul_mat_vec.comp - MUL_MAT for few columns (generation): one workgroup
 * per NR consecutive rows of W and one column m of X.
 *   dst[n, m] = sum_k W[k, n] * X[k, m]
 * Each invocation walks the groups lid, lid + LS, ... of the NR rows,
 * reading W block by block straight from its quantized form and each X
 * value once for all NR rows.  USE_SUBGROUP selects a subgroupAdd
 * reduction (needs subgroup arithmetic); otherwise a shared-memory tree.
 * With USE_SUBGROUP the workgroup size (LS) and NR are specialization
 * constants 0 and 1, set by the plugin: LS = the device's subgroup size,
 * so a workgroup is one subgroup and needs no shared memory or barrier,
 * and NR rows per workgroup (more on CPU devices, where a workgroup costs
 * a loop iteration and fewer, fuller ones win).  The host keeps
 * NR * LS <= RED_MAX for drivers that split a workgroup into subgroups.
 * BLOCK_DOT (types with a w_block_dot, dequant.glsl): an invocation
 * takes whole blocks b = lid, lid + LS, ... instead of groups, so it reads
 * a block's scale and X values once; the plugin uses it on CPU devices,
 * with a workgroup of one subgroup (lavapipe: 8 lanes) and more rows.
 * MUL_ID: MUL_MAT_ID, the rows of the expert that column m chose
 * (mm_common.glsl); a column whose id is out of range gets NaN (the ids
 * are device data, not checked before the dispatch).
 */
#include "common.glsl"
#include "dequant.glsl"
#include "mm_common.glsl"
#ifndef BLOCK_DOT
#define BLOCK_DOT 0
#endif
#if BLOCK_DOT && !defined(HAVE_BLOCK_DOT)
#error "BLOCK_DOT: W_TYPE has no w_block_dot"
#endif
#if USE_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

#if USE_SUBGROUP
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint NR = 4u;
#define LS gl_WorkGroupSize.x
#define RED_MAX 512u
shared float red[RED_MAX];
#else
#define LS 64u
#define NR 4u
layout(local_size_x = 64) in;
shared float red[NR * LS];
#endif

void main()
{
    uint row_groups = (pc.n_count + NR - 1u) / NR;
    uint wg = wg_linear();
    if (wg >= row_groups * pc.M)
        return;                    /* whole workgroup leaves together */
    uint lid = gl_LocalInvocationID.x;
    /* 1. this workgroup's rows of W (nl0 .. nl0+nr-1) and column of X */
    uint nl0 = (wg % row_groups) * NR;
    uint nr = min(NR, pc.n_count - nl0);
    uint m = wg / row_groups;
    uint wa = pc.a_off + nl0 * pc.a_nb1;
    uint xa = x_col(m);
#if MUL_ID
    int e = expert(m);
    if (e < 0) {                   /* uniform in the workgroup */
        for (uint r = lid; r < nr; r += LS)
            st_f32(d_col(m) + 4u * (pc.n_begin + nl0 + r), uintBitsToFloat(0x7fc00000u));
        return;
    }
    wa += uint(e) * pc.a_nb2;
#endif
    /* 2. partial dot products over groups lid, lid + LS, ... */
    float acc[NR];
    for (uint r = 0u; r < NR; r++)
        acc[r] = 0.0;
#if BLOCK_DOT
    /* whole blocks per invocation (w_block_dot): the block's X values are
     * read once for all NR rows */
    uint nblk = pc.K / QK;
    for (uint b = lid; b < nblk; b += LS) {
        vec4 x[QK / 4u];
        for (uint i = 0u; i < QK / 4u; i++)
            x[i] = LD_X(xa, b * QK + 4u * i);
        for (uint r = 0u; r < nr; r++)
            acc[r] += w_block_dot(wa + r * pc.a_nb1 + b * BSZ, x);
    }
#else
    uint ngroups = pc.K / GS;
    for (uint g = lid; g < ngroups; g += LS) {
        WV x = LD_X(xa, g * GS);
        uint boff = (g / GPB) * BSZ;
        for (uint r = 0u; r < nr; r++)
            acc[r] += dot(w_group(wa + r * pc.a_nb1 + boff, g % GPB), x);
    }
#endif
    /* 3. reduce each row's sums across the workgroup and store */
    uint da = d_col(m) + 4u * (pc.n_begin + nl0);
#if USE_SUBGROUP
    if (gl_NumSubgroups == 1u) {
        /* one subgroup: its sums are the rows' results */
        for (uint r = 0u; r < NR; r++) {
            float s = subgroupAdd(acc[r]);
            if (subgroupElect() && r < nr)
                st_f32(da + 4u * r, s);
        }
    } else {
        uint ns = gl_NumSubgroups;
        for (uint r = 0u; r < NR; r++) {
            float s = subgroupAdd(acc[r]);
            if (subgroupElect())
                red[r * ns + gl_SubgroupID] = s;
        }
        barrier();
        if (lid < nr) {
            float s = 0.0;
            for (uint i = 0u; i < ns; i++)
                s += red[lid * ns + i];
            st_f32(da + 4u * lid, s);
        }
    }
#else
    for (uint r = 0u; r < NR; r++)
        red[r * LS + lid] = acc[r];
    barrier();
    for (uint s = LS / 2u; s > 0u; s >>= 1) {
        if (lid < s)
            for (uint r = 0u; r < NR; r++)
                red[r * LS + lid] += red[r * LS + lid + s];
        barrier();
    }
    if (lid < nr)
        st_f32(da + 4u * lid, red[lid * LS]);
#endif
}
