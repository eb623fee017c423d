#version 450
/*
 * eltwise.comp - element-wise ops over [ne0, ne1, ne2, ne3] tensors:
 *   OP_ADD   dst = A + B      OP_MUL  dst = A * B     OP_SCALE dst = s * A
 *   OP_SILU  dst = A / (1 + e^-A) * B   (GLU, A = gate, B = up)
 *   OP_GELU  dst = 0.5 A (1 + tanh(sqrt(2/pi) (A + 0.044715 A^3))) * B
 *   OP_COPY  dst = convert(A), A F32/F16/BF16, dst F32/F16
 *   OP_USILU, OP_UGELU  UNARY: the activation of A alone (no B)
 * Row strides are per operand; a broadcast B has row strides 0.
 * One invocation per element.
 */
#include "common.glsl"

#define OP_ADD 0u
#define OP_MUL 1u
#define OP_SCALE 2u
#define OP_SILU 3u
#define OP_GELU 4u
#define OP_COPY 5u
#define OP_USILU 6u
#define OP_UGELU 7u

layout(local_size_x = 256) in;

layout(push_constant) uniform PC {
    uint op, ne0, ne1, ne2, total;
    uint d_off, d_nb1, d_nb2, d_nb3;
    uint a_off, a_nb1, a_nb2, a_nb3;
    uint b_off, b_nb1, b_nb2, b_nb3;
    uint a_type, d_type;
    float s;
} pc;

void main()
{
    uint t = wg_linear() * 256u + gl_LocalInvocationID.x;
    if (t >= pc.total)
        return;
    /* 1. element coordinates: i0 in the row, r the row index */
    uint i0 = t % pc.ne0;
    uint r = t / pc.ne0;
    uint da = pc.d_off + row_addr(r, pc.ne1, pc.ne2, pc.d_nb1, pc.d_nb2, pc.d_nb3);
    uint aa = pc.a_off + row_addr(r, pc.ne1, pc.ne2, pc.a_nb1, pc.a_nb2, pc.a_nb3);
    /* 2. read A in its type */
    float a;
    if (pc.a_type == T_F16)
        a = LD_F16(A, aa + 2u * i0);
    else if (pc.a_type == T_BF16)
        a = LD_BF16(A, aa + 2u * i0);
    else
        a = LD_F32(A, aa + 4u * i0);
    /* 3. apply the op */
    float v;
    if (pc.op == OP_SCALE) {
        v = pc.s * a;
    } else if (pc.op == OP_COPY) {
        v = a;
    } else if (pc.op == OP_USILU) {
        v = a / (1.0 + exp(-a));
    } else if (pc.op == OP_UGELU) {
        v = 0.5 * a * (1.0 + tanh_stable(0.7978845608028654 * (a + 0.044715 * a * a * a)));
    } else {
        uint ba = pc.b_off + row_addr(r, pc.ne1, pc.ne2, pc.b_nb1, pc.b_nb2, pc.b_nb3);
        float b = LD_F32(B, ba + 4u * i0);
        if (pc.op == OP_ADD)
            v = a + b;
        else if (pc.op == OP_MUL)
            v = a * b;
        else if (pc.op == OP_SILU)
            v = a / (1.0 + exp(-a)) * b;
        else
            v = 0.5 * a * (1.0 + tanh_stable(0.7978845608028654 * (a + 0.044715 * a * a * a))) * b;
    }
    /* 4. store in the destination type */
    if (pc.d_type == T_F16)
        st_f16(da + 2u * i0, v);
    else
        st_f32(da + 4u * i0, v);
}
