#version 450
/*
 * moe_weights.comp - MOE_WEIGHTS: router logits X F32 [N, T], ids I32
 * [k, T]; dst F32 [k, T]:
 *   dst[j, t] = exp(X[ids[j,t], t] - mx) / sum_{i in S} exp(X[i, t] - mx)
 * with S the k selected (sel = 1) or all N, mx the maximum over S.
 * One invocation per column t.  An id out of [0, N) (it comes from the
 * device, it cannot be checked before the dispatch) makes the column NaN.
 */
#include "common.glsl"

layout(local_size_x = 64) in;

layout(push_constant) uniform PC {
    uint N, T, k, sel;
    uint a_off, a_nb1;
    uint i_off, i_nb1;
    uint d_off, d_nb1;
} pc;

void main()
{
    uint t = wg_linear() * 64u + gl_LocalInvocationID.x;
    if (t >= pc.T)
        return;
    uint aa = pc.a_off + t * pc.a_nb1;
    uint ia = pc.i_off + t * pc.i_nb1;
    uint da = pc.d_off + t * pc.d_nb1;
    /* 1. the ids, checked */
    for (uint j = 0u; j < pc.k; j++) {
        int id = LD_I32(B, ia + 4u * j);
        if (id < 0 || uint(id) >= pc.N) {
            for (uint q = 0u; q < pc.k; q++)
                st_f32(da + 4u * q, uintBitsToFloat(0x7fc00000u));
            return;
        }
    }
    /* 2. maximum and sum over the set */
    uint n = pc.sel != 0u ? pc.k : pc.N;
    float mx = uintBitsToFloat(0xff800000u);      /* -inf */
    for (uint i = 0u; i < n; i++) {
        uint e = pc.sel != 0u ? uint(LD_I32(B, ia + 4u * i)) : i;
        mx = max(mx, LD_F32(A, aa + 4u * e));
    }
    float sum = 0.0;
    for (uint i = 0u; i < n; i++) {
        uint e = pc.sel != 0u ? uint(LD_I32(B, ia + 4u * i)) : i;
        sum += exp(LD_F32(A, aa + 4u * e) - mx);
    }
    /* 3. the selected ones' shares */
    for (uint j = 0u; j < pc.k; j++) {
        uint e = uint(LD_I32(B, ia + 4u * j));
        st_f32(da + 4u * j, exp(LD_F32(A, aa + 4u * e) - mx) / sum);
    }
}
