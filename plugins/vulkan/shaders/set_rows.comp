#version 450
/*
 * set_rows.comp - SET_ROWS: X F32 [K, N] (binding 1), rows I32 [N]
 * (binding 2), dst [K, R] F32 or F16.  dst[:, rows[i]] = convert(X[:, i])
 * Rows outside [0, R) are skipped.  One invocation per element.
 */
#include "common.glsl"

layout(local_size_x = 256) in;

layout(push_constant) uniform PC {
    uint K, N;
    uint a_off, a_nb1;
    uint r_off;
    uint d_off, d_nb1, d_type, R;
} pc;

void main()
{
    uint t = wg_linear() * 256u + gl_LocalInvocationID.x;
    if (t >= pc.K * pc.N)
        return;
    /* 1. source element (k, i) and its destination row */
    uint k = t % pc.K;
    uint i = t / pc.K;
    int row_i = LD_I32(B, pc.r_off + 4u * i);
    if (row_i < 0 || row_i >= int(pc.R))
        return;
    uint row = uint(row_i);
    float x = LD_F32(A, pc.a_off + i * pc.a_nb1 + 4u * k);
    /* 2. convert and store */
    uint da = pc.d_off + row * pc.d_nb1;
    if (pc.d_type == T_F16)
        st_f16(da + 2u * k, x);
    else
        st_f32(da + 4u * k, x);
}
