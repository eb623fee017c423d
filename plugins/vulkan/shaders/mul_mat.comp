#version 450
/*
 * mul_mat.comp - tiled MUL_MAT for many columns (prompt processing).
 * Each workgroup computes a 32 (n) x 32 (m) tile of dst; K is walked in
 * steps of 32: the W tile is dequantized from its blocks into shared
 * memory, the X tile copied beside it, and each invocation accumulates a
 * 1 (n) x 4 (m) strip.  dst[n, m] = sum_k W[k, n] * X[k, m]
 */
#include "common.glsl"
#include "dequant.glsl"
#include "mm_common.glsl"
#extension GL_EXT_control_flow_attributes : require

#define TN 32u
#define TM 32u
#define BK 32u
#define LS 256u
layout(local_size_x = 256) in;

shared float ws[TN][BK + 1u];
shared float xs[TM][BK + 1u];

void main()
{
    uint lid = gl_LocalInvocationID.x;
    uint tiles_n = (pc.n_count + TN - 1u) / TN;
    uint tiles_m = (pc.M + TM - 1u) / TM;
    uint wg = wg_linear();
    if (wg >= tiles_n * tiles_m)
        return;                    /* whole workgroup leaves together */
    /* 1. tile origin */
    uint n0 = (wg % tiles_n) * TN;
    uint m0 = (wg / tiles_n) * TM;
    uint tn = lid % TN;            /* this invocation's row in the tile */
    uint tm = (lid / TN) * 4u;     /* and its first of 4 columns */
    float acc[4] = float[4](0.0, 0.0, 0.0, 0.0);

    for (uint k0 = 0u; k0 < pc.K; k0 += BK) {
        /* 2. W tile: TN rows x BK values, read group by group */
        [[dont_unroll]] for (uint i = lid; i < TN * (BK / GS); i += LS) {
            uint r = i / (BK / GS);
            uint q = i % (BK / GS);
            uint k = k0 + q * GS;
            WV w = WV(0.0);
            if (n0 + r < pc.n_count && k < pc.K) {
                uint g = k / GS;
                w = w_group(pc.a_off + (n0 + r) * pc.a_nb1 + (g / GPB) * BSZ, g % GPB);
            }
#if GS_ONE
            ws[r][q] = w;
#else
            ws[r][q * 4u] = w.x;
            ws[r][q * 4u + 1u] = w.y;
            ws[r][q * 4u + 2u] = w.z;
            ws[r][q * 4u + 3u] = w.w;
#endif
        }
        /* 3. X tile: TM columns x BK values */
        [[dont_unroll]] for (uint i = lid; i < TM * BK; i += LS) {
            uint c = i / BK;
            uint q = i % BK;
            float x = 0.0;
            if (m0 + c < pc.M && k0 + q < pc.K)
                x = LD_F32(B, x_col(m0 + c) + 4u * (k0 + q));
            xs[c][q] = x;
        }
        barrier();
        /* 4. accumulate the strip */
        [[dont_unroll]] for (uint q = 0u; q < BK; q++) {
            float w = ws[tn][q];
            acc[0] += w * xs[tm][q];
            acc[1] += w * xs[tm + 1u][q];
            acc[2] += w * xs[tm + 2u][q];
            acc[3] += w * xs[tm + 3u][q];
        }
        barrier();
    }
    /* 5. store the strip */
    if (n0 + tn < pc.n_count) {
        for (uint i = 0u; i < 4u; i++) {
            uint m = m0 + tm + i;
            if (m < pc.M)
                st_f32(d_col(m) + 4u * (pc.n_begin + n0 + tn), acc[i]);
        }
    }
}
