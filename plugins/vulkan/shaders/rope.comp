#version 450
/*
 * rope.comp - ROPE on X F32 [D, H, N] (binding 1) with positions I32 [N]
 * (binding 2) and optional frequency factors F32 [n_rot/2] (binding 3).
 * For pair i < n_rot/2 (NORM: elements 2i, 2i+1; NEOX: i, i + n_rot/2):
 *   theta = pos * freq_scale * base^(-2i/n_rot) / ff[i]
 *   (x0, x1) -> (x0 cos - x1 sin, x0 sin + x1 cos)
 * Elements >= n_rot are copied.  One invocation per pair of elements.
 */
#include "common.glsl"

layout(local_size_x = 256) in;

layout(push_constant) uniform PC {
    uint D, H, N, n_rot, mode, has_ff;
    uint a_off, a_nb1, a_nb2;
    uint d_off, d_nb1, d_nb2;
    uint p_off, f_off;
    float freq_base, freq_scale;
} pc;

void main()
{
    uint half_d = pc.D / 2u;
    uint t = wg_linear() * 256u + gl_LocalInvocationID.x;
    if (t >= half_d * pc.H * pc.N)
        return;
    /* 1. pair index p within the head row (h, n) */
    uint p = t % half_d;
    uint h = (t / half_d) % pc.H;
    uint n = t / (half_d * pc.H);
    uint aa = pc.a_off + h * pc.a_nb1 + n * pc.a_nb2;
    uint da = pc.d_off + h * pc.d_nb1 + n * pc.d_nb2;
    uint half_rot = pc.n_rot / 2u;
    if (p >= half_rot) {
        /* 2a. beyond n_rot: copy two elements */
        uint e = pc.n_rot + 2u * (p - half_rot);
        float x0 = LD_F32(A, aa + 4u * e);
        float x1 = LD_F32(A, aa + 4u * e + 4u);
        st_f32(da + 4u * e, x0);
        st_f32(da + 4u * e + 4u, x1);
        return;
    }
    /* 2b. the two elements of this pair */
    uint e0 = pc.mode == 2u ? p : 2u * p;
    uint e1 = pc.mode == 2u ? p + half_rot : 2u * p + 1u;
    /* 3. the angle */
    float pos = float(LD_I32(B, pc.p_off + 4u * n));
    float inv_freq = exp2(-2.0 * float(p) / float(pc.n_rot) * log2(pc.freq_base));
    float theta = pos * pc.freq_scale * inv_freq;
    if (pc.has_ff != 0u)
        theta /= LD_F32(C, pc.f_off + 4u * p);
    float c = cos(theta);
    float s = sin(theta);
    /* 4. rotate */
    float x0 = LD_F32(A, aa + 4u * e0);
    float x1 = LD_F32(A, aa + 4u * e1);
    st_f32(da + 4u * e0, x0 * c - x1 * s);
    st_f32(da + 4u * e1, x0 * s + x1 * c);
}
