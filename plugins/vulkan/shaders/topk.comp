#version 450
/*
 * topk.comp - TOPK: dst[j, t] = the index of the j-th largest X[:, t],
 * X F32 [N, T], dst I32 [k, T].  One invocation per column t.
 * The order is total: larger values first, equal values by lower index,
 * NaNs after every number (by index), as the reference's selection.  The
 * j-th index is the first in that order after the (j-1)-th, so no "taken"
 * set is needed: k passes over the column.
 */
#include "common.glsl"

layout(local_size_x = 64) in;

layout(push_constant) uniform PC {
    uint N, T, k;
    uint a_off, a_nb1;
    uint d_off, d_nb1;
} pc;

/* (v, i) comes before (w, j) */
bool before(float v, uint i, float w, uint j)
{
    bool nv = isnan(v), nw = isnan(w);
    if (nv || nw)
        return nv && nw ? i < j : nw;
    return v > w || (v == w && i < j);
}

void main()
{
    uint t = wg_linear() * 64u + gl_LocalInvocationID.x;
    if (t >= pc.T)
        return;
    uint aa = pc.a_off + t * pc.a_nb1;
    uint da = pc.d_off + t * pc.d_nb1;
    /* the previous pick: everything up to it in the order is taken */
    bool have_prev = false;
    uint prev = 0u;
    float pv = 0.0;
    for (uint j = 0u; j < pc.k; j++) {
        bool have = false;
        uint best = 0u;
        float bv = 0.0;
        for (uint i = 0u; i < pc.N; i++) {
            float v = LD_F32(A, aa + 4u * i);
            if (have_prev && !before(pv, prev, v, i))
                continue;          /* taken already */
            if (!have || before(v, i, bv, best)) {
                have = true;
                best = i;
                bv = v;
            }
        }
        D[(da >> 2) + j] = best;   /* k <= N: always found */
        have_prev = true;
        prev = best;
        pv = bv;
    }
}
