#version 450
/*
 * moe_sum.comp - MOE_SUM: Y F32 [E, k, T], w F32 [k, T]; dst F32 [E, T]:
 *   dst[e, t] = sum_j w[j, t] * Y[e, j, t]   (j in order)
 * One invocation per element of dst.
 */
#include "common.glsl"

layout(local_size_x = 256) in;

layout(push_constant) uniform PC {
    uint E, k, T;
    uint y_off, y_nb1, y_nb2;
    uint w_off, w_nb1;
    uint d_off, d_nb1;
} pc;

void main()
{
    uint i = wg_linear() * 256u + gl_LocalInvocationID.x;
    if (i >= pc.E * pc.T)
        return;
    uint e = i % pc.E;
    uint t = i / pc.E;
    float acc = 0.0;
    for (uint j = 0u; j < pc.k; j++)
        acc += LD_F32(B, pc.w_off + t * pc.w_nb1 + 4u * j) *
               LD_F32(A, pc.y_off + j * pc.y_nb1 + t * pc.y_nb2 + 4u * e);
    st_f32(pc.d_off + t * pc.d_nb1 + 4u * e, acc);
}
