#version 450
/*
 * mul_mat_vec.comp - MUL_MAT for few columns (generation): one workgroup
 * per output element dst[n, m].  dst[n, m] = sum_k W[k, n] * X[k, m]
 * W is read block by block straight from its quantized form.
 * USE_SUBGROUP selects a subgroupAdd reduction (needs subgroup arithmetic);
 * otherwise a shared-memory tree.
 */
#include "common.glsl"
#include "dequant.glsl"
#include "mm_common.glsl"
#if USE_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

#define LS 64u
layout(local_size_x = 64) in;
shared float red[LS];

void main()
{
    uint wg = wg_linear();
    if (wg >= pc.n_count * pc.M)
        return;                    /* whole workgroup leaves together */
    uint lid = gl_LocalInvocationID.x;
    /* 1. this workgroup's row of W and column of X */
    uint nl = wg % pc.n_count;
    uint m = wg / pc.n_count;
    uint wa = pc.a_off + nl * pc.a_nb1;
    uint xa = x_col(m);
    /* 2. partial dot product over groups lid, lid + LS, ... */
    uint ngroups = pc.K / GS;
    float acc = 0.0;
    for (uint g = lid; g < ngroups; g += LS)
        acc += dot(w_group(wa + (g / GPB) * BSZ, g % GPB), LD_X(xa, g * GS));
    /* 3. reduce across the workgroup */
#if USE_SUBGROUP
    acc = subgroupAdd(acc);
    if (subgroupElect())
        red[gl_SubgroupID] = acc;
    barrier();
    if (lid == 0u) {
        float s = 0.0;
        for (uint i = 0u; i < gl_NumSubgroups; i++)
            s += red[i];
        st_f32(d_col(m) + 4u * (pc.n_begin + nl), s);
    }
#else
    red[lid] = acc;
    barrier();
    for (uint s = LS / 2u; s > 0u; s >>= 1) {
        if (lid < s)
            red[lid] += red[lid + s];
        barrier();
    }
    if (lid == 0u)
        st_f32(d_col(m) + 4u * (pc.n_begin + nl), red[0]);
#endif
}
