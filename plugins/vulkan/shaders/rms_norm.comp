#version 450
/*
 * rms_norm.comp - RMS_NORM, one workgroup per row of X [K, ...].
 * dst[k] = X[k] / sqrt(mean_k(X^2) + eps) * (w ? w[k] : 1)
 */
#include "common.glsl"

#define LS 128u
layout(local_size_x = 128) in;
shared float red[LS];

layout(push_constant) uniform PC {
    uint K, nrows, ne1, ne2;
    uint a_off, a_nb1, a_nb2, a_nb3;
    uint d_off, d_nb1, d_nb2, d_nb3;
    uint w_off, has_w;
    float eps;
} pc;

void main()
{
    uint r = wg_linear();
    if (r >= pc.nrows)
        return;                    /* whole workgroup leaves together */
    uint lid = gl_LocalInvocationID.x;
    uint aa = pc.a_off + row_addr(r, pc.ne1, pc.ne2, pc.a_nb1, pc.a_nb2, pc.a_nb3);
    uint da = pc.d_off + row_addr(r, pc.ne1, pc.ne2, pc.d_nb1, pc.d_nb2, pc.d_nb3);
    /* 1. sum of squares, reduced over the workgroup */
    float ss = 0.0;
    for (uint k = lid; k < pc.K; k += LS) {
        float x = LD_F32(A, aa + 4u * k);
        ss += x * x;
    }
    red[lid] = ss;
    barrier();
    for (uint s = LS / 2u; s > 0u; s >>= 1) {
        if (lid < s)
            red[lid] += red[lid + s];
        barrier();
    }
    /* 2. scale factor 1 / sqrt(mean + eps) */
    float f = 1.0 / sqrt(red[0] / float(pc.K) + pc.eps);
    /* 3. normalise and weight (in place is safe: each k read then written
     *    by the same invocation, after the barrier above) */
    for (uint k = lid; k < pc.K; k += LS) {
        float x = LD_F32(A, aa + 4u * k) * f;
        if (pc.has_w != 0u)
            x *= LD_F32(B, pc.w_off + 4u * k);
        st_f32(da + 4u * k, x);
    }
}
