#version 450
/*
 * norm.comp - NORM (layer norm), one workgroup per row of X [K, ...].
 *   mu = mean_k(X), var = mean_k((X - mu)^2)
 *   dst[k] = (X[k] - mu) / sqrt(var + eps) * (w ? w[k] : 1) + (b ? b[k] : 0)
 * The variance is taken around the mean in a second pass (not as
 * E[X^2] - mu^2, which cancels badly for rows far from zero).
 */
#include "common.glsl"

#define LS 128u
layout(local_size_x = 128) in;
shared float red[LS];

layout(push_constant) uniform PC {
    uint K, nrows, ne1, ne2;
    uint a_off, a_nb1, a_nb2, a_nb3;
    uint d_off, d_nb1, d_nb2, d_nb3;
    uint w_off, has_w, b_off, has_b;
    float eps;
} pc;

/* the sum of every invocation's v, in all of them */
float wg_sum(float v)
{
    uint lid = gl_LocalInvocationID.x;
    red[lid] = v;
    barrier();
    for (uint s = LS / 2u; s > 0u; s >>= 1) {
        if (lid < s)
            red[lid] += red[lid + s];
        barrier();
    }
    float r = red[0];
    barrier();                     /* red is reused by the next call */
    return r;
}

void main()
{
    uint r = wg_linear();
    if (r >= pc.nrows)
        return;                    /* whole workgroup leaves together */
    uint lid = gl_LocalInvocationID.x;
    uint aa = pc.a_off + row_addr(r, pc.ne1, pc.ne2, pc.a_nb1, pc.a_nb2, pc.a_nb3);
    uint da = pc.d_off + row_addr(r, pc.ne1, pc.ne2, pc.d_nb1, pc.d_nb2, pc.d_nb3);
    /* 1. mean */
    float s = 0.0;
    for (uint k = lid; k < pc.K; k += LS)
        s += LD_F32(A, aa + 4u * k);
    float mu = wg_sum(s) / float(pc.K);
    /* 2. mean of the squared deviations */
    float ss = 0.0;
    for (uint k = lid; k < pc.K; k += LS) {
        float x = LD_F32(A, aa + 4u * k) - mu;
        ss += x * x;
    }
    float f = 1.0 / sqrt(wg_sum(ss) / float(pc.K) + pc.eps);
    /* 3. normalise, weight, bias (in place is safe: every read of X is
     *    behind the barriers of step 2, and each k is then read and
     *    written by the same invocation) */
    for (uint k = lid; k < pc.K; k += LS) {
        float x = (LD_F32(A, aa + 4u * k) - mu) * f;
        if (pc.has_w != 0u)
            x *= LD_F32(B, pc.w_off + 4u * k);
        if (pc.has_b != 0u)
            x += LD_F32(C, pc.b_off + 4u * k);
        st_f32(da + 4u * k, x);
    }
}
