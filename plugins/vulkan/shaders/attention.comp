#version 450
/*
 * attention.comp - ATTENTION, one workgroup per (query head h, token i).
 * Q F32 [D, Hq, N] (binding 1), K cache [D*Hkv, R] (binding 2), V cache
 * [Dv*Hkv, R] (binding 3), (base, pos) I32 [2, N] (binding 4);
 * dst F32 [Dv*Hq, N].  KV head g = h / (Hq / Hkv).  Over cache rows
 * base + j, j in [j_lo, pos] (j_lo = pos - window + 1 when windowed):
 *   s_j = scale * Q.K_j;  s_j = softcap ? softcap * tanh(s_j / softcap) : s_j
 *   dst = sum_j softmax(s)_j V_j
 * Keys are walked in chunks of LS: every invocation scores one key, the
 * chunk's maximum rescales the running sum (online softmax), and each
 * invocation accumulates its own output dimensions d = lid + LS*t.
 * Cache rows outside [0, R) are skipped.
 */
#include "common.glsl"

#define LS 128u
#define MAX_D 1024u
#define ACC (MAX_D / LS)
layout(local_size_x = 128) in;

layout(push_constant) uniform PC {
    uint D, Dv, Hq, Hkv, N, window, R;
    uint q_off, q_nb1, q_nb2;
    uint k_off, k_nb1, k_type;
    uint v_off, v_nb1, v_type;
    uint p_off;
    uint d_off, d_nb1;
    float scale, softcap;
} pc;

shared float qv[MAX_D];
shared float pj[LS];
shared float red[LS];

float ld_k(uint a, uint d) { return pc.k_type == T_F16 ? LD_F16(B, a + 2u * d) : LD_F32(B, a + 4u * d); }
float ld_v(uint a, uint d) { return pc.v_type == T_F16 ? LD_F16(C, a + 2u * d) : LD_F32(C, a + 4u * d); }

/* workgroup-wide max (is_max) or sum of x; every invocation gets it */
float wg_reduce(float x, bool is_max)
{
    uint lid = gl_LocalInvocationID.x;
    red[lid] = x;
    barrier();
    for (uint s = LS / 2u; s > 0u; s >>= 1) {
        if (lid < s)
            red[lid] = is_max ? max(red[lid], red[lid + s]) : red[lid] + red[lid + s];
        barrier();
    }
    float r = red[0];
    barrier();
    return r;
}

void main()
{
    uint wg = wg_linear();
    if (wg >= pc.Hq * pc.N)
        return;                    /* whole workgroup leaves together */
    uint lid = gl_LocalInvocationID.x;
    /* 1. which head and token; its KV head and key range */
    uint h = wg % pc.Hq;
    uint i = wg / pc.Hq;
    uint g = h / (pc.Hq / pc.Hkv);
    int base = LD_I32(E, pc.p_off + 8u * i);
    int pos = LD_I32(E, pc.p_off + 8u * i + 4u);
    int j_lo = 0;
    if (pc.window != 0u)
        j_lo = max(0, pos - int(pc.window) + 1);
    uint k_esz = pc.k_type == T_F16 ? 2u : 4u;
    uint v_esz = pc.v_type == T_F16 ? 2u : 4u;
    /* 2. the query row into shared memory */
    uint qa = pc.q_off + h * pc.q_nb1 + i * pc.q_nb2;
    for (uint d = lid; d < pc.D; d += LS)
        qv[d] = LD_F32(A, qa + 4u * d);
    barrier();

    float m_run = -1.0 / 0.0;      /* running maximum */
    float l_run = 0.0;             /* running sum of exp(s - m_run) */
    float acc[ACC];
    for (uint t = 0u; t < ACC; t++)
        acc[t] = 0.0;

    for (int c = j_lo; c <= pos; c += int(LS)) {
        /* 3. score key j = c + lid */
        int j = c + int(lid);
        bool valid = j <= pos && base + j >= 0 && base + j < int(pc.R);
        float s = -1.0 / 0.0;
        if (valid) {
            uint ka = pc.k_off + uint(base + j) * pc.k_nb1 + g * pc.D * k_esz;
            float dp = 0.0;
            for (uint d = 0u; d < pc.D; d++)
                dp += qv[d] * ld_k(ka, d);
            s = pc.scale * dp;
            if (pc.softcap != 0.0)
                s = pc.softcap * tanh_stable(s / pc.softcap);
        }
        /* 4. new maximum; rescale what was accumulated so far */
        float m_new = max(m_run, wg_reduce(s, true));
        if (isinf(m_new)) {        /* nothing valid yet: skip the chunk */
            barrier();
            continue;
        }
        float corr = isinf(m_run) ? 0.0 : exp(m_run - m_new);
        float p = valid ? exp(s - m_new) : 0.0;
        pj[lid] = p;
        l_run = l_run * corr + wg_reduce(p, false);
        m_run = m_new;
        /* 5. accumulate p_j V_j into this invocation's dimensions */
        int cnt = min(int(LS), pos - c + 1);
        for (uint t = 0u; t < ACC; t++) {
            uint d = lid + LS * t;
            if (d >= pc.Dv)
                break;
            float a = acc[t] * corr;
            for (int jj = 0; jj < cnt; jj++) {
                if (pj[jj] == 0.0)
                    continue;      /* also skips rows outside the cache */
                uint va = pc.v_off + uint(base + c + jj) * pc.v_nb1 + g * pc.Dv * v_esz;
                a += pj[jj] * ld_v(va, d);
            }
            acc[t] = a;
        }
        barrier();
    }
    /* 6. normalise and store (no key at all gives zeros) */
    uint da = pc.d_off + i * pc.d_nb1 + h * pc.Dv * 4u;
    float inv = l_run > 0.0 ? 1.0 / l_run : 0.0;
    for (uint t = 0u; t < ACC; t++) {
        uint d = lid + LS * t;
        if (d < pc.Dv)
            st_f32(da + 4u * d, acc[t] * inv);
    }
}
