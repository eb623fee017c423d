/*
 * mm_common.glsl - push constants shared by the two MUL_MAT shaders.
 * W [K, N] (binding 1), X F32 [K, M] (binding 2), dst F32 [N, M].
 * The W rows of this dispatch are [n_begin, n_begin + n_count); a_off is
 * the address of row n_begin in the binding.  Columns m of X and dst run
 * over (i1, i2, i3) with extents x_ne1, x_ne2 (batched X shares W).
 * MUL_ID (MUL_MAT_ID): W [K, N, n_exp] with experts a_nb2 apart; ids I32
 * [k, T] (binding 3); the columns m = t * k + j of dst [N, k, T] are
 * (j, t); X [K, 1 or k, T] (x_ne1 says which); each column picks its
 * expert ids[j, t].
 */
#ifndef MUL_ID
#define MUL_ID 0
#endif

layout(push_constant) uniform PC {
    uint K, M;
    uint n_begin, n_count;
    uint a_off, a_nb1;
    uint x_off, x_nb1, x_nb2, x_nb3, x_ne1, x_ne2;
    uint d_off, d_nb1, d_nb2, d_nb3;
#if MUL_ID
    uint a_nb2, n_exp, k, i_off, i_nb1;
#endif
} pc;

#if MUL_ID
uint x_col(uint m) { return pc.x_off + (pc.x_ne1 == 1u ? 0u : m % pc.k) * pc.x_nb1 + (m / pc.k) * pc.x_nb2; }
uint d_col(uint m) { return pc.d_off + (m % pc.k) * pc.d_nb1 + (m / pc.k) * pc.d_nb2; }
/* the expert of column m, -1 when ids[j, t] is outside [0, n_exp) */
int expert(uint m)
{
    int e = LD_I32(C, pc.i_off + (m / pc.k) * pc.i_nb1 + 4u * (m % pc.k));
    return e >= 0 && uint(e) < pc.n_exp ? e : -1;
}
#else
uint x_col(uint m) { return pc.x_off + row_addr(m, pc.x_ne1, pc.x_ne2, pc.x_nb1, pc.x_nb2, pc.x_nb3); }
uint d_col(uint m) { return pc.d_off + row_addr(m, pc.x_ne1, pc.x_ne2, pc.d_nb1, pc.d_nb2, pc.d_nb3); }
#endif

/* GS consecutive X values starting at element k of the column at xa */
#if GS_ONE
#define LD_X(xa, k) LD_F32(B, (xa) + 4u * (k))
#else
#define LD_X(xa, k) vec4(LD_F32(B, (xa) + 4u * (k)), LD_F32(B, (xa) + 4u * (k) + 4u), \
                         LD_F32(B, (xa) + 4u * (k) + 8u), LD_F32(B, (xa) + 4u * (k) + 12u))
#endif
