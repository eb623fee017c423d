#version 450
/*
 * get_rows.comp - GET_ROWS for weight type W_TYPE.
 * src0 table [K, R] (binding 1), ids I32 [N] (binding 2), dst F32 [K, N].
 * dst[:, i] = dequant(table[:, ids[i]])
 * The host may split a large table into windows of rows [r_begin,
 * r_begin + r_count) bound separately; each invocation writes only rows
 * whose id falls in the current window.  One invocation per element group.
 */
#include "common.glsl"
#include "dequant.glsl"

layout(local_size_x = 256) in;

layout(push_constant) uniform PC {
    uint K, N;
    uint a_off, a_nb1, r_begin, r_count;
    uint id_off, d_off, d_nb1;
} pc;

void main()
{
    uint groups = pc.K / GS;
    uint t = wg_linear() * 256u + gl_LocalInvocationID.x;
    if (t >= groups * pc.N)
        return;
    /* 1. which output row and which group of it */
    uint i = t / groups;
    uint g = t % groups;
    /* 2. the table row, if it lies in this window */
    int id = LD_I32(B, pc.id_off + 4u * i);
    if (id < int(pc.r_begin) || id >= int(pc.r_begin + pc.r_count))
        return;
    uint blk = pc.a_off + uint(id - int(pc.r_begin)) * pc.a_nb1 + (g / GPB) * BSZ;
    /* 3. dequantize the group and store it */
    WV w = w_group(blk, g % GPB);
    uint da = pc.d_off + i * pc.d_nb1 + 4u * GS * g;
#if GS_ONE
    st_f32(da, w);
#else
    st_f32(da, w.x);
    st_f32(da + 4u, w.y);
    st_f32(da + 8u, w.z);
    st_f32(da + 12u, w.w);
#endif
}
