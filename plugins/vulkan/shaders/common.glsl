/*
 * common.glsl - bindings and byte-addressed access shared by every shader.
 *
 * Every buffer is bound as an array of 32-bit words and addressed in bytes,
 * so the baseline shaders need no 8/16-bit storage feature: narrower values
 * are extracted with shifts.  Binding 0 is the destination, 1..4 are
 * src[0]..src[3] of the node.  Addresses are relative to the start of the
 * binding (the host binds at an aligned offset and passes the remainder).
 */
#extension GL_GOOGLE_include_directive : require

layout(std430, binding = 0) buffer BufD { uint D[]; };
layout(std430, binding = 1) readonly buffer BufA { uint A[]; };
layout(std430, binding = 2) readonly buffer BufB { uint B[]; };
layout(std430, binding = 3) readonly buffer BufC { uint C[]; };
layout(std430, binding = 4) readonly buffer BufE { uint E[]; };

/* Loads from buffer BUF at byte address a (alignment as the name says). */
#define LD_F32(BUF, a)  uintBitsToFloat(BUF[(a) >> 2])
#define LD_I32(BUF, a)  int(BUF[(a) >> 2])
#define LD_U8(BUF, a)   ((BUF[(a) >> 2] >> (((a) & 3u) << 3)) & 0xffu)
#define LD_U16(BUF, a)  ((BUF[(a) >> 2] >> (((a) & 2u) << 3)) & 0xffffu)
/* four bytes starting at a 2-aligned address */
#define LD_U32_2(BUF, a) ((((a) & 2u) == 0u) ? BUF[(a) >> 2] : \
                          ((BUF[(a) >> 2] >> 16) | (BUF[((a) >> 2) + 1u] << 16)))
#define LD_F16(BUF, a)  unpackHalf2x16(LD_U16(BUF, a)).x
#define LD_BF16(BUF, a) uintBitsToFloat(LD_U16(BUF, a) << 16)

/* Index of this workgroup in a 2-D grid used to exceed the 65535 limit. */
uint wg_linear()
{
    return gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
}

/* f32 -> f16 bits, round to nearest even (bit-exact with the C reference
 * conversion, unlike packHalf2x16 whose rounding is implementation's). */
uint f32_to_f16_bits(float f)
{
    uint x = floatBitsToUint(f);
    uint sign = (x >> 16) & 0x8000u;
    uint ex = (x >> 23) & 0xffu;
    uint man = x & 0x7fffffu;
    if (ex == 0xffu)                                  /* inf / nan */
        return sign | 0x7c00u | (man != 0u ? 0x200u : 0u);
    int e = int(ex) - 127 + 15;
    if (e >= 0x1f)                                    /* overflow -> inf */
        return sign | 0x7c00u;
    if (e <= 0) {                                     /* subnormal or zero */
        if (e < -10)
            return sign;
        man |= 0x800000u;
        uint shift = uint(14 - e);
        uint half_ = man >> shift;
        uint rem = man & ((1u << shift) - 1u);
        uint mid = 1u << (shift - 1u);
        if (rem > mid || (rem == mid && (half_ & 1u) != 0u))
            half_++;
        return sign | half_;
    }
    uint h = sign | (uint(e) << 10) | (man >> 13);
    uint rem = man & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u) != 0u))
        h++;
    return h;
}

/* Stores into the destination binding. */
void st_f32(uint a, float v)
{
    D[a >> 2] = floatBitsToUint(v);
}

/* A 16-bit store shares its word with a neighbour that another invocation
 * may be writing: clear and set our half with two atomics. */
void st_f16(uint a, float v)
{
    uint sh = (a & 2u) << 3;
    uint h = f32_to_f16_bits(v);
    atomicAnd(D[a >> 2], ~(0xffffu << sh));
    atomicOr(D[a >> 2], h << sh);
}

/* Byte address of "row" r of a tensor whose rows are indexed (i1, i2, i3)
 * with extents ne1, ne2 and byte strides nb1, nb2, nb3. */
uint row_addr(uint r, uint ne1, uint ne2, uint nb1, uint nb2, uint nb3)
{
    uint i1 = r % ne1;
    uint t = r / ne1;
    uint i2 = t % ne2;
    uint i3 = t / ne2;
    return i1 * nb1 + i2 * nb2 + i3 * nb3;
}

/* tanh through one exponential, saturating cleanly at +-1 (a library tanh
 * may overflow to nan for large arguments) */
float tanh_stable(float y)
{
    return 1.0 - 2.0 / (exp(2.0 * y) + 1.0);
}

/* Type codes (lamina_dtype values). */
#define T_F32  0
#define T_F16  1
#define T_Q4_0 2
#define T_Q4_1 3
#define T_Q5_0 6
#define T_Q5_1 7
#define T_Q8_0 8
#define T_Q4_K 12
#define T_Q5_K 13
#define T_Q6_K 14
#define T_BF16 30
