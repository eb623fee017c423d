/*
 * ref_ops_test - the reference ops (runtime/ops/ref_ops.c) on tiny cases whose
 * answers are worked out by hand in the comments, the validation messages,
 * and the reference backend interface.  Prints TAP.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/quant.h"
#include "ref.h"
#include "tap.h"

static char err[512];

/* Host memory stands in for buffers: the "buffer" is the host pointer. */
static void *ident(void *ctx, lamina_buffer *b)
{
    (void)ctx;
    return b;
}

/* A contiguous tensor over host memory. */
static lamina_tensor T(uint32_t type, void *mem, int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3)
{
    lamina_tensor t;
    memset(&t, 0, sizeof t);
    t.type = type;
    t.ne[0] = ne0; t.ne[1] = ne1; t.ne[2] = ne2; t.ne[3] = ne3;
    t.nb[0] = lamina_type_get(type)->type_size;
    t.nb[1] = lamina_row_size(type, ne0);
    t.nb[2] = t.nb[1] * (uint64_t)ne1;
    t.nb[3] = t.nb[2] * (uint64_t)ne2;
    t.buffer = (lamina_buffer *)mem;
    return t;
}

static lamina_node N(uint32_t op, lamina_tensor dst, int n_src, const lamina_tensor *s)
{
    lamina_node n;
    memset(&n, 0, sizeof n);
    n.op = op;
    n.dst = dst;
    n.n_src = (uint32_t)n_src;
    for (int i = 0; i < n_src; i++)
        n.src[i] = s[i];
    return n;
}

static int run(const lamina_node *n)
{
    err[0] = '\0';
    return lamina_ref_node(n, ident, NULL, err, sizeof err);
}

static int near(float a, double b, double tol)
{
    return fabs((double)a - b) <= tol * (1.0 + fabs(b));
}

/* Expect a failure with `code` and a message containing `want`; a
 * structural fault is also declined by lamina_ref_supports, a fault in the
 * data (ids, positions, overlaps, buffers) is not. */
static void reject_ex(const lamina_node *n, int code, const char *want, const char *what,
                      int structural)
{
    int rc = run(n);
    int sup = lamina_ref_supports(n);
    ok(rc == code && strstr(err, want) != NULL && sup == !structural,
       "%s: rc %d, supports %d, \"%s\"", what, rc, sup, err);
}

static void reject(const lamina_node *n, int code, const char *want, const char *what)
{
    reject_ex(n, code, want, what, 1);
}

static void reject_data(const lamina_node *n, int code, const char *want, const char *what)
{
    reject_ex(n, code, want, what, 0);
}

static void test_get_rows(void)
{
    /* table [K=3, R=4]: row r = (10r, 10r+1, 10r+2) */
    float tab[12], dst[9];
    for (int r = 0; r < 4; r++)
        for (int k = 0; k < 3; k++)
            tab[3 * r + k] = (float)(10 * r + k);
    int32_t ids[3] = { 2, 0, 2 };
    lamina_tensor s[2] = { T(LAMINA_TYPE_F32, tab, 3, 4, 1, 1), T(LAMINA_TYPE_I32, ids, 3, 1, 1, 1) };
    lamina_node n = N(LAMINA_OP_GET_ROWS, T(LAMINA_TYPE_F32, dst, 3, 3, 1, 1), 2, s);
    ok(run(&n) == 0 && dst[0] == 20 && dst[2] == 22 && dst[3] == 0 && dst[8] == 22,
       "get_rows f32: ids (2, 0, 2)");

    /* q8_0 table: rows are the dequantized blocks */
    float x[64], y[32], d2[64];
    for (int i = 0; i < 64; i++) x[i] = (float)(i - 30) / 7.0f;
    lamina_block_q8_0 q[2];
    lamina_quantize_row(LAMINA_TYPE_Q8_0, x, q, 64);
    int32_t one = 1;
    lamina_tensor s2[2] = { T(LAMINA_TYPE_Q8_0, q, 32, 2, 1, 1), T(LAMINA_TYPE_I32, &one, 1, 1, 1, 1) };
    n = N(LAMINA_OP_GET_ROWS, T(LAMINA_TYPE_F32, d2, 32, 1, 1, 1), 2, s2);
    lamina_dequantize_row(LAMINA_TYPE_Q8_0, &q[1], y, 32);
    ok(run(&n) == 0 && memcmp(d2, y, sizeof y) == 0, "get_rows q8_0: row 1 dequantized");

    ids[1] = 4;
    n = N(LAMINA_OP_GET_ROWS, T(LAMINA_TYPE_F32, dst, 3, 3, 1, 1), 2, s);
    reject_data(&n, LAMINA_EINVAL, "get_rows: src1 (ids)[1] = 4 out of range [0, 4)", "get_rows id out of range");
}

static void test_mul_mat(void)
{
    /* W [K=2, N=3] columns (1,2) (3,4) (5,6); X [2, M=2] columns (1,1) (1,-1)
     * dst [N=3, M=2] = (3, 7, 11), (-1, -1, -1) */
    float W[6] = { 1, 2, 3, 4, 5, 6 }, X[4] = { 1, 1, 1, -1 }, D[6];
    lamina_tensor s[2] = { T(LAMINA_TYPE_F32, W, 2, 3, 1, 1), T(LAMINA_TYPE_F32, X, 2, 2, 1, 1) };
    lamina_node n = N(LAMINA_OP_MUL_MAT, T(LAMINA_TYPE_F32, D, 3, 2, 1, 1), 2, s);
    ok(run(&n) == 0 && D[0] == 3 && D[1] == 7 && D[2] == 11 && D[3] == -1 && D[4] == -1 &&
       D[5] == -1, "mul_mat f32 2x3 by hand");

    /* f16 W: same numbers */
    uint16_t Wh[6];
    lamina_quantize_row(LAMINA_TYPE_F16, W, Wh, 6);
    s[0] = T(LAMINA_TYPE_F16, Wh, 2, 3, 1, 1);
    n = N(LAMINA_OP_MUL_MAT, T(LAMINA_TYPE_F32, D, 3, 2, 1, 1), 2, s);
    ok(run(&n) == 0 && D[2] == 11 && D[5] == -1, "mul_mat f16 2x3 by hand");

    /* q4_K W [256, 2] times X = e_7 + 2 e_200 picks W[7] + 2 W[200] */
    float xw[512], x[256] = { 0 }, wd[512], D2[2];
    for (int i = 0; i < 512; i++) xw[i] = sinf((float)i);
    lamina_block_q4_K qk[2];
    lamina_quantize_row(LAMINA_TYPE_Q4_K, xw, qk, 512);
    lamina_dequantize_row(LAMINA_TYPE_Q4_K, qk, wd, 512);
    x[7] = 1; x[200] = 2;
    lamina_tensor s2[2] = { T(LAMINA_TYPE_Q4_K, qk, 256, 2, 1, 1), T(LAMINA_TYPE_F32, x, 256, 1, 1, 1) };
    n = N(LAMINA_OP_MUL_MAT, T(LAMINA_TYPE_F32, D2, 2, 1, 1, 1), 2, s2);
    ok(run(&n) == 0 && D2[0] == (float)((double)wd[7] + 2.0 * wd[200]) &&
       D2[1] == (float)((double)wd[256 + 7] + 2.0 * wd[256 + 200]), "mul_mat q4_K selects columns");

    /* the same for q2_K, q3_K, iq4_nl, iq4_xs, mxfp4; and get_rows of row 1 */
    static const uint32_t more[] = { LAMINA_TYPE_Q2_K, LAMINA_TYPE_Q3_K, LAMINA_TYPE_IQ4_NL,
                                     LAMINA_TYPE_IQ4_XS, LAMINA_TYPE_MXFP4 };
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++) {
        const uint32_t ty = more[i];
        uint8_t qb[2 * 256];
        float rows[256];
        int32_t one = 1;
        lamina_quantize_row(ty, xw, qb, 512);
        lamina_dequantize_row(ty, qb, wd, 512);
        s2[0] = T(ty, qb, 256, 2, 1, 1);
        n = N(LAMINA_OP_MUL_MAT, T(LAMINA_TYPE_F32, D2, 2, 1, 1, 1), 2, s2);
        ok(run(&n) == 0 && D2[0] == (float)((double)wd[7] + 2.0 * wd[200]) &&
           D2[1] == (float)((double)wd[256 + 7] + 2.0 * wd[256 + 200]),
           "mul_mat %s selects columns", lamina_type_get(ty)->name);
        lamina_tensor s3[2] = { T(ty, qb, 256, 2, 1, 1), T(LAMINA_TYPE_I32, &one, 1, 1, 1, 1) };
        n = N(LAMINA_OP_GET_ROWS, T(LAMINA_TYPE_F32, rows, 256, 1, 1, 1), 2, s3);
        ok(run(&n) == 0 && memcmp(rows, wd + 256, sizeof rows) == 0,
           "get_rows %s: row 1 dequantized", lamina_type_get(ty)->name);
    }
}

static void test_norm_and_elementwise(void)
{
    /* x = (3, 4): mean square 12.5, 1/sqrt(12.5) = 0.2828427 -> (0.848528, 1.131371)
     * weight (2, 0.5) -> (1.697056, 0.565685) */
    float x[2] = { 3, 4 }, w[2] = { 2, 0.5f }, d[2];
    lamina_tensor s[2] = { T(LAMINA_TYPE_F32, x, 2, 1, 1, 1), T(LAMINA_TYPE_F32, w, 2, 1, 1, 1) };
    lamina_node n = N(LAMINA_OP_RMS_NORM, T(LAMINA_TYPE_F32, d, 2, 1, 1, 1), 1, s);
    ok(run(&n) == 0 && near(d[0], 0.8485281374, 1e-7) && near(d[1], 1.1313708499, 1e-7),
       "rms_norm (3, 4)");
    n = N(LAMINA_OP_RMS_NORM, T(LAMINA_TYPE_F32, d, 2, 1, 1, 1), 2, s);
    ok(run(&n) == 0 && near(d[0], 1.6970562748, 1e-7) && near(d[1], 0.5656854249, 1e-7),
       "rms_norm (3, 4) with weight (2, 0.5)");
    /* eps 11.5: mean square + eps = 24 -> 3/sqrt(24), in place */
    n = N(LAMINA_OP_RMS_NORM, T(LAMINA_TYPE_F32, x, 2, 1, 1, 1), 1, s);
    n.fp[0] = 11.5f;
    ok(run(&n) == 0 && near(x[0], 0.6123724357, 1e-7) && near(x[1], 0.8164965809, 1e-7),
       "rms_norm eps 11.5 in place");

    /* A [2, 2] = (1 2)(3 4); B [2] = (10 20): add (11 22)(13 24), mul (10 40)(30 80) */
    float A[4] = { 1, 2, 3, 4 }, B[2] = { 10, 20 }, C[4];
    lamina_tensor ab[2] = { T(LAMINA_TYPE_F32, A, 2, 2, 1, 1), T(LAMINA_TYPE_F32, B, 2, 1, 1, 1) };
    n = N(LAMINA_OP_ADD, T(LAMINA_TYPE_F32, C, 2, 2, 1, 1), 2, ab);
    ok(run(&n) == 0 && C[0] == 11 && C[1] == 22 && C[2] == 13 && C[3] == 24, "add broadcast row");
    n.op = LAMINA_OP_MUL;
    ok(run(&n) == 0 && C[0] == 10 && C[1] == 40 && C[2] == 30 && C[3] == 80, "mul broadcast row");
    /* same shape, in place: A = A + A */
    lamina_tensor aa[2] = { T(LAMINA_TYPE_F32, A, 2, 2, 1, 1), T(LAMINA_TYPE_F32, A, 2, 2, 1, 1) };
    n = N(LAMINA_OP_ADD, T(LAMINA_TYPE_F32, A, 2, 2, 1, 1), 2, aa);
    ok(run(&n) == 0 && A[0] == 2 && A[3] == 8, "add in place, A + A");
    n = N(LAMINA_OP_SCALE, T(LAMINA_TYPE_F32, C, 2, 2, 1, 1), 1, aa);
    n.fp[0] = -0.5f;
    ok(run(&n) == 0 && C[0] == -1 && C[3] == -4, "scale -0.5");

    /* silu(1) * 2 = 2/(1+e^-1) = 1.4621172; silu(-1) * 1 = -0.2689414
     * gelu_tanh(1) = 0.5 (1 + tanh(0.7978846 * 1.044715)) = 0.8411920 */
    float g[2] = { 1, -1 }, u[2] = { 2, 1 }, o[2];
    lamina_tensor gu[2] = { T(LAMINA_TYPE_F32, g, 2, 1, 1, 1), T(LAMINA_TYPE_F32, u, 2, 1, 1, 1) };
    n = N(LAMINA_OP_GLU, T(LAMINA_TYPE_F32, o, 2, 1, 1, 1), 2, gu);
    ok(run(&n) == 0 && near(o[0], 1.4621171573, 1e-7) && near(o[1], -0.2689414214, 1e-7), "glu silu");
    n.ip[0] = LAMINA_ACT_GELU_TANH;
    ok(run(&n) == 0 && near(o[0], 2 * 0.8411919906, 1e-6) && near(o[1], -0.1588080094, 1e-6),
       "glu gelu_tanh");
}

static void test_rope(void)
{
    /* x = (1, 0, 0, 1), pos 1, base 10000, n_rot 4:
     * theta_0 = 1, theta_1 = 10000^(-1/2) = 0.01
     * norm: pairs (0,1) (2,3): (cos 1, sin 1, -sin .01, cos .01)
     * neox: pairs (0,2) (1,3): x0=1,x2=0 -> (cos 1, sin 1) at 0, 2;
     *       x1=0,x3=1 -> (-sin .01, cos .01) at 1, 3 */
    float x[4] = { 1, 0, 0, 1 }, y[4];
    int32_t pos = 1;
    lamina_tensor s[3] = { T(LAMINA_TYPE_F32, x, 4, 1, 1, 1), T(LAMINA_TYPE_I32, &pos, 1, 1, 1, 1) };
    lamina_node n = N(LAMINA_OP_ROPE, T(LAMINA_TYPE_F32, y, 4, 1, 1, 1), 2, s);
    n.ip[0] = LAMINA_ROPE_NORM;
    n.ip[1] = 4;
    n.fp[0] = 10000.0f;
    ok(run(&n) == 0 && near(y[0], cos(1.0), 1e-7) && near(y[1], sin(1.0), 1e-7) &&
       near(y[2], -sin(0.01), 1e-7) && near(y[3], cos(0.01), 1e-7), "rope norm by hand");
    n.ip[0] = LAMINA_ROPE_NEOX;
    ok(run(&n) == 0 && near(y[0], cos(1.0), 1e-7) && near(y[2], sin(1.0), 1e-7) &&
       near(y[1], -sin(0.01), 1e-7) && near(y[3], cos(0.01), 1e-7), "rope neox by hand");

    /* freq factors (1, 2) and freq_scale 0.5 at pos 4: theta = 2, 0.01 */
    float ff[2] = { 1, 2 };
    pos = 4;
    s[2] = T(LAMINA_TYPE_F32, ff, 2, 1, 1, 1);
    n = N(LAMINA_OP_ROPE, T(LAMINA_TYPE_F32, y, 4, 1, 1, 1), 3, s);
    n.ip[1] = 4;
    n.fp[0] = 10000.0f;
    n.fp[1] = 0.5f;
    ok(run(&n) == 0 && near(y[0], cos(2.0), 1e-7) && near(y[1], sin(2.0), 1e-7) &&
       near(y[2], -sin(0.01), 1e-7) && near(y[3], cos(0.01), 1e-7),
       "rope norm with freq factors and freq_scale");

    /* n_rot 2 < D 6 (neox): pair (0, 1) rotated by pos; dims 2..5 copied;
     * two heads, two tokens at pos 0 and 3 */
    float xx[24], yy[24];
    for (int i = 0; i < 24; i++) xx[i] = (float)(i % 6) + 1;
    int32_t pp[2] = { 0, 3 };
    lamina_tensor s2[2] = { T(LAMINA_TYPE_F32, xx, 6, 2, 2, 1), T(LAMINA_TYPE_I32, pp, 2, 1, 1, 1) };
    n = N(LAMINA_OP_ROPE, T(LAMINA_TYPE_F32, yy, 6, 2, 2, 1), 2, s2);
    n.ip[0] = LAMINA_ROPE_NEOX;
    n.ip[1] = 2;
    n.fp[0] = 10000.0f;
    const double c3 = cos(3.0), s3 = sin(3.0);
    ok(run(&n) == 0 && yy[0] == 1 && yy[1] == 2 && yy[5] == 6 &&
       near(yy[12], 1 * c3 - 2 * s3, 1e-6) && near(yy[13], 1 * s3 + 2 * c3, 1e-6) &&
       yy[14] == 3 && yy[17] == 6 && near(yy[18], 1 * c3 - 2 * s3, 1e-6),
       "rope n_rot < D: tail copied, per-token positions");
}

/* test_attention's two tokens over f32 caches (see there): Q, K, V and
 * the (base, pos) pairs, and their tensors in s. */
typedef struct { float Q[4], K[4], V[4]; int32_t P[4]; } attn2;
static void attn2_setup(attn2 *a, lamina_tensor s[4])
{
    static const attn2 init = { { 1, 1, 2, 0 }, { 1, 0, 0, 1 }, { 1, 2, 3, 4 }, { 0, 0, 0, 1 } };
    *a = init;
    s[0] = T(LAMINA_TYPE_F32, a->Q, 2, 1, 2, 1);
    s[1] = T(LAMINA_TYPE_F32, a->K, 2, 2, 1, 1);
    s[2] = T(LAMINA_TYPE_F32, a->V, 2, 2, 1, 1);
    s[3] = T(LAMINA_TYPE_I32, a->P, 2, 2, 1, 1);
}

static void test_attention(void)
{
    /* D = Dv = 2, one head.  K rows k0 = (1,0), k1 = (0,1); V rows v0 = (1,2),
     * v1 = (3,4).  Token 0: pos 0 -> sees row 0 only -> v0.
     * Token 1: q = (2, 0), pos 1, scale 0.5: s = (1, 0) ->
     *   p = (e/(e+1), 1/(e+1)) = (0.7310586, 0.2689414)
     *   out = (1*p0 + 3*p1, 2*p0 + 4*p1) = (1.5378828, 2.5378828) */
    attn2 a;
    float O[4];
    lamina_tensor s[4];
    attn2_setup(&a, s);
    const float *K = a.K, *V = a.V;
    lamina_node n = N(LAMINA_OP_ATTENTION, T(LAMINA_TYPE_F32, O, 2, 2, 1, 1), 4, s);
    n.fp[0] = 0.5f;
    const double p0 = exp(1.0) / (exp(1.0) + 1), p1 = 1 - p0;
    ok(run(&n) == 0 && O[0] == 1 && O[1] == 2 && near(O[2], p0 + 3 * p1, 1e-7) &&
       near(O[3], 2 * p0 + 4 * p1, 1e-7), "attention 2 tokens by hand");

    /* window 1: token 1 sees only j = 1 -> v1 */
    n.ip[0] = 1;
    ok(run(&n) == 0 && O[0] == 1 && O[2] == 3 && O[3] == 4, "attention window 1 masks older rows");
    /* softcap 0.5: s0 = 0.5 tanh(2) = 0.4820138 */
    n.ip[0] = 0;
    n.fp[1] = 0.5f;
    const double c0 = 0.5 * tanh(2.0), q0 = exp(c0) / (exp(c0) + 1), q1 = 1 - q0;
    ok(run(&n) == 0 && near(O[2], q0 + 3 * q1, 1e-7) && near(O[3], 2 * q0 + 4 * q1, 1e-7),
       "attention softcap 0.5");

    /* f16 caches hold the same (exact) values */
    uint16_t Kh[4], Vh[4];
    lamina_quantize_row(LAMINA_TYPE_F16, K, Kh, 4);
    lamina_quantize_row(LAMINA_TYPE_F16, V, Vh, 4);
    s[1] = T(LAMINA_TYPE_F16, Kh, 2, 2, 1, 1);
    s[2] = T(LAMINA_TYPE_F16, Vh, 2, 2, 1, 1);
    n = N(LAMINA_OP_ATTENTION, T(LAMINA_TYPE_F32, O, 2, 2, 1, 1), 4, s);
    n.fp[0] = 0.5f;
    ok(run(&n) == 0 && near(O[2], p0 + 3 * p1, 1e-7), "attention with f16 caches");

    /* GQA: Hq = 2 heads on Hkv = 1; head 1 has q = (0, 2) -> s = (0, 1) at
     * token 1 -> p = (p1, p0) -> (3 p0 + p1, 4 p0 + 2 p1).  Base offset 1:
     * the sequence starts at cache row 1 (rows 1, 2) */
    float Q2[8] = { 1, 1, 1, 1, 2, 0, 0, 2 }, K2[6] = { 9, 9, 1, 0, 0, 1 },
          V2[6] = { 9, 9, 1, 2, 3, 4 }, O2[8];
    int32_t P2[4] = { 1, 0, 1, 1 };
    lamina_tensor g[4] = {
        T(LAMINA_TYPE_F32, Q2, 2, 2, 2, 1), T(LAMINA_TYPE_F32, K2, 2, 3, 1, 1),
        T(LAMINA_TYPE_F32, V2, 2, 3, 1, 1), T(LAMINA_TYPE_I32, P2, 2, 2, 1, 1),
    };
    n = N(LAMINA_OP_ATTENTION, T(LAMINA_TYPE_F32, O2, 4, 2, 1, 1), 4, g);
    n.fp[0] = 0.5f;
    ok(run(&n) == 0 && O2[0] == 1 && O2[3] == 2 && near(O2[4], p0 + 3 * p1, 1e-7) &&
       near(O2[6], 3 * p0 + p1, 1e-7) && near(O2[7], 4 * p0 + 2 * p1, 1e-7),
       "attention GQA 2:1 with a base offset");

    P2[3] = 2;     /* base 1 + pos 2 = row 3 of a 3-row cache */
    reject_data(&n, LAMINA_EINVAL, "outside the caches", "attention position beyond the cache");
}

/* ABI 1.3 (gpt-oss), by hand: sinks, swiglu_oai, YaRN. */
static void test_1_3(void)
{
    /* sinks: test_attention's two tokens with a sink logit ln 2 in the
     * denominator: token 1 (s = (1, 0)) gets p = (e, 1) / (e + 1 + 2) */
    attn2 a;
    float O[4], sink = (float)log(2.0);
    lamina_tensor s[4];
    attn2_setup(&a, s);
    lamina_node n = N(LAMINA_OP_ATTENTION, T(LAMINA_TYPE_F32, O, 2, 2, 1, 1), 4, s);
    n.fp[0] = 0.5f;
    n.src4 = T(LAMINA_TYPE_F32, &sink, 1, 1, 1, 1);
    n.n_src = 5;
    /* token 0 sees row 0 alone, s = 0.5: (e^.5 v0) / (e^.5 + 2) */
    const double e = exp(1.0), w0 = exp(0.5), d0 = w0 + 2, d1 = e + 1 + 2;
    ok(lamina_node_min_minor(&n) == 3, "a node with sinks is a 1.3 node");
    ok(run(&n) == 0 && near(O[0], w0 / d0, 1e-7) && near(O[1], 2 * w0 / d0, 1e-7) &&
       near(O[2], (e + 3) / d1, 1e-7) && near(O[3], (2 * e + 4) / d1, 1e-7), "attention with a sink by hand");
    float sinks2[2] = { 0, 0 };
    n.src4 = T(LAMINA_TYPE_F32, sinks2, 2, 1, 1, 1);
    reject(&n, LAMINA_EINVAL, "attention: src4 (sinks) must be [Hq=1]", "sinks of the wrong length");

    /* swiglu_oai, alpha 2, limit 1: x = min(g, 1), u = clamp(up, -1, 1),
     * x / (1 + e^(-2x)) (u + 1) */
    float g[3] = { -0.5f, 0.5f, 3.0f }, up[3] = { 0.25f, -4.0f, 4.0f }, y[3];
    lamina_tensor gs[2] = { T(LAMINA_TYPE_F32, g, 3, 1, 1, 1), T(LAMINA_TYPE_F32, up, 3, 1, 1, 1) };
    n = N(LAMINA_OP_GLU, T(LAMINA_TYPE_F32, y, 3, 1, 1, 1), 2, gs);
    n.ip[0] = LAMINA_ACT_SWIGLU_OAI;
    n.fp[0] = 2.0f;
    n.fp[1] = 1.0f;
    ok(lamina_node_min_minor(&n) == 3, "a swiglu_oai node is a 1.3 node");
    ok(run(&n) == 0 && near(y[0], -0.5 / (1 + exp(1.0)) * 1.25, 1e-7) && near(y[1], 0.0, 1e-7) &&
       near(y[2], 1 / (1 + exp(-2.0)) * 2, 1e-7), "glu swiglu_oai by hand (both clamps)");
    n.fp[1] = 0.0f;
    reject(&n, LAMINA_EINVAL, "glu: swiglu_oai alpha (fp[0]) = 2 and limit (fp[1]) = 0", "swiglu_oai limit 0");

    /* YaRN, n_rot 4, base 10000, freq_scale 1/4, n_ctx_orig 64, betas 32
     * and 1: c(b) = 4 ln(64 / (2 pi b)) / (2 ln 10000) gives lo = 0 (c(32)
     * < 0) and hi = 1 (ceil c(1) = 1); pair 0 ramps r = 1 (unscaled
     * angle), pair 1 r = 0 (scaled); m = 1 + 0.1 ln 4.  At pos 8:
     * theta = (8, 8 * 0.01 / 4) */
    float x[4] = { 1, 0, 0, 1 }, yr[4];
    int32_t pos = 8;
    lamina_tensor rs[2] = { T(LAMINA_TYPE_F32, x, 4, 1, 1, 1), T(LAMINA_TYPE_I32, &pos, 1, 1, 1, 1) };
    n = N(LAMINA_OP_ROPE, T(LAMINA_TYPE_F32, yr, 4, 1, 1, 1), 2, rs);
    n.ip[0] = LAMINA_ROPE_NORM;
    n.ip[1] = 4;
    n.ip[2] = 64;
    n.fp[0] = 10000.0f;
    n.fp[1] = 0.25f;
    n.fp[2] = 1.0f;
    n.fp[3] = 1.0f;
    n.fp[4] = 32.0f;
    n.fp[5] = 1.0f;
    const double m = 1 + 0.1 * log(4.0), t1 = 8 * 0.01 / 4;
    ok(lamina_node_min_minor(&n) == 3, "a YaRN rope node is a 1.3 node");
    ok(run(&n) == 0 && near(yr[0], m * cos(8.0), 1e-6) && near(yr[1], m * sin(8.0), 1e-6) &&
       near(yr[2], -m * sin(t1), 1e-6) && near(yr[3], m * cos(t1), 1e-6), "rope YaRN by hand");
    n.ip[2] = 0;
    reject(&n, LAMINA_EINVAL, "rope: YaRN needs n_ctx_orig (ip[2]) = 0 > 0", "YaRN without n_ctx_orig");
}

static void test_set_rows_copy(void)
{
    /* X [2, 2] = (1.5, -2)(3, 1/3) into rows (2, 0) of an f16 [2, 3] */
    float X[4] = { 1.5f, -2, 3, 1.0f / 3 };
    uint16_t D[6] = { 1, 2, 3, 4, 5, 6 };
    int32_t rows[2] = { 2, 0 };
    lamina_tensor s[2] = { T(LAMINA_TYPE_F32, X, 2, 2, 1, 1), T(LAMINA_TYPE_I32, rows, 2, 1, 1, 1) };
    lamina_node n = N(LAMINA_OP_SET_ROWS, T(LAMINA_TYPE_F16, D, 2, 3, 1, 1), 2, s);
    ok(run(&n) == 0 && D[4] == 0x3E00 && D[5] == 0xC000 && D[0] == 0x4200 && D[1] == 0x3555 &&
       D[2] == 3 && D[3] == 4, "set_rows f16: rows 2 and 0, row 1 untouched, 1/3 rounded");
    rows[1] = 2;
    reject_data(&n, LAMINA_EINVAL, "set_rows: src1 (rows)[1] = 2 repeats", "set_rows duplicate rows");
    rows[1] = 3;
    reject_data(&n, LAMINA_EINVAL, "set_rows: src1 (rows)[1] = 3 out of range [0, 3)",
           "set_rows row out of range");

    /* copy bf16 -> f32 and f32 -> f16, with a strided source */
    uint16_t bf[6] = { 0x3F80, 0xC040, 0, 0x4000, 0xBF00, 0 };   /* 1, -3, _, 2, -0.5, _ */
    float f[4];
    lamina_tensor src = T(LAMINA_TYPE_BF16, bf, 2, 2, 1, 1);
    src.nb[1] = 6;
    src.nb[2] = src.nb[3] = 12;
    n = N(LAMINA_OP_COPY, T(LAMINA_TYPE_F32, f, 2, 2, 1, 1), 1, &src);
    ok(run(&n) == 0 && f[0] == 1 && f[1] == -3 && f[2] == 2 && f[3] == -0.5f, "copy bf16 -> f32 strided");
    uint16_t h[4];
    lamina_tensor fs = T(LAMINA_TYPE_F32, f, 2, 2, 1, 1);
    n = N(LAMINA_OP_COPY, T(LAMINA_TYPE_F16, h, 2, 2, 1, 1), 1, &fs);
    ok(run(&n) == 0 && h[0] == 0x3C00 && h[1] == 0xC200 && h[2] == 0x4000 && h[3] == 0xB800,
       "copy f32 -> f16");
}

static void test_validation(void)
{
    float a[64], b[64], d[64];
    uint16_t h[64];
    lamina_tensor s[4];
    lamina_node n;

    s[0] = T(LAMINA_TYPE_F32, a, 4, 2, 1, 1);
    s[1] = T(LAMINA_TYPE_F16, h, 4, 3, 1, 1);
    n = N(LAMINA_OP_MUL_MAT, T(LAMINA_TYPE_F32, d, 2, 3, 1, 1), 2, s);
    reject(&n, LAMINA_ENOTSUP, "mul_mat: src1 (X) must be f32, got f16", "mul_mat X f16");
    s[1] = T(LAMINA_TYPE_F32, b, 5, 3, 1, 1);
    n = N(LAMINA_OP_MUL_MAT, T(LAMINA_TYPE_F32, d, 2, 3, 1, 1), 2, s);
    reject(&n, LAMINA_EINVAL, "mul_mat: src1 (X) shape [5, 3, 1, 1], expected [K=4, M]", "mul_mat K mismatch");
    s[1] = T(LAMINA_TYPE_F32, b, 4, 3, 1, 1);
    n = N(LAMINA_OP_MUL_MAT, T(LAMINA_TYPE_F32, d, 3, 3, 1, 1), 2, s);
    reject(&n, LAMINA_EINVAL, "mul_mat: dst shape [3, 3, 1, 1], expected [N=2, M=3]", "mul_mat dst shape");
    n = N(LAMINA_OP_GET_ROWS, T(LAMINA_TYPE_F32, d, 4, 1, 1, 1), 1, s);
    reject(&n, LAMINA_EINVAL, "get_rows: n_src = 1, expected 2", "get_rows with one source");
    s[0].nb[0] = 8;
    n = N(LAMINA_OP_SCALE, T(LAMINA_TYPE_F32, d, 4, 2, 1, 1), 1, s);
    reject(&n, LAMINA_EINVAL, "scale: src0 (A) nb[0] = 8, expected 4", "packed rows required");
    s[0] = T(LAMINA_TYPE_Q4_0, a, 48, 1, 1, 1);
    n = N(LAMINA_OP_GET_ROWS, T(LAMINA_TYPE_F32, d, 48, 1, 1, 1), 2, s);
    reject(&n, LAMINA_EINVAL, "src0 (table) ne[0] = 48 is not a multiple of the q4_0 block size 32",
           "row not a whole number of blocks");
    s[0] = T(LAMINA_TYPE_F32, a, 4, 2, 1, 1);
    s[0].type = 5;
    n = N(LAMINA_OP_SCALE, T(LAMINA_TYPE_F32, d, 4, 2, 1, 1), 1, s);
    reject(&n, LAMINA_ENOTSUP, "scale: src0 (A) has unknown type 5", "unknown type");
    s[0] = T(LAMINA_TYPE_F32, a, 4, 2, 1, 1);
    n = N(99, T(LAMINA_TYPE_F32, d, 4, 2, 1, 1), 1, s);
    reject(&n, LAMINA_ENOTSUP, "unknown op 99", "unknown op");
    n = N(LAMINA_OP_SCALE, T(LAMINA_TYPE_F16, h, 4, 2, 1, 1), 1, s);
    reject(&n, LAMINA_ENOTSUP, "scale: dst must be f32, got f16", "scale to f16");
    n = N(LAMINA_OP_SCALE, T(LAMINA_TYPE_F32, d, 4, 2, 1, 1), 1, s);
    n.fp[0] = INFINITY;
    reject(&n, LAMINA_EINVAL, "scale: s (fp[0]) is not finite", "scale by inf");

    /* rope parameters */
    int32_t pos[2] = { 0, 1 };
    s[0] = T(LAMINA_TYPE_F32, a, 8, 2, 2, 1);
    s[1] = T(LAMINA_TYPE_I32, pos, 2, 1, 1, 1);
    n = N(LAMINA_OP_ROPE, T(LAMINA_TYPE_F32, d, 8, 2, 2, 1), 2, s);
    n.ip[1] = 5;
    n.fp[0] = 10000;
    reject(&n, LAMINA_EINVAL, "rope: n_rot (ip[1]) = 5 must be even", "rope odd n_rot");
    n.ip[1] = 10;
    reject(&n, LAMINA_EINVAL, "<= D = 8", "rope n_rot > D");
    n.ip[1] = 8;
    n.ip[0] = 1;
    reject(&n, LAMINA_ENOTSUP, "rope: mode (ip[0]) = 1", "rope unknown mode");
    n.ip[0] = 0;
    n.fp[0] = 0;
    reject(&n, LAMINA_EINVAL, "rope: freq_base (fp[0])", "rope base 0");
    n.fp[0] = 10000;
    s[2] = T(LAMINA_TYPE_F32, b, 3, 1, 1, 1);
    n = N(LAMINA_OP_ROPE, T(LAMINA_TYPE_F32, d, 8, 2, 2, 1), 3, s);
    n.ip[1] = 8;
    n.fp[0] = 10000;
    reject(&n, LAMINA_EINVAL, "rope: src2 (freq factors) must be [n_rot/2 = 4]", "rope freq factors size");

    /* attention shapes */
    int32_t P[4] = { 0, 0, 0, 1 };
    s[0] = T(LAMINA_TYPE_F32, a, 4, 3, 2, 1);      /* D 4, Hq 3 */
    s[1] = T(LAMINA_TYPE_F16, h, 8, 4, 1, 1);      /* Hkv 2 */
    s[2] = T(LAMINA_TYPE_F16, h, 8, 4, 1, 1);
    s[3] = T(LAMINA_TYPE_I32, P, 2, 2, 1, 1);
    n = N(LAMINA_OP_ATTENTION, T(LAMINA_TYPE_F32, d, 12, 2, 1, 1), 4, s);
    reject(&n, LAMINA_EINVAL, "attention: Hq = 3 is not a multiple of Hkv = 2", "attention Hq/Hkv");
    s[0] = T(LAMINA_TYPE_F32, a, 32, 1, 2, 1);
    s[1] = T(LAMINA_TYPE_Q8_0, h, 32, 1, 1, 1);
    s[2] = T(LAMINA_TYPE_F16, h, 32, 1, 1, 1);
    n = N(LAMINA_OP_ATTENTION, T(LAMINA_TYPE_F32, d, 32, 2, 1, 1), 4, s);
    reject(&n, LAMINA_ENOTSUP, "attention: src1 (K cache) must be f16 or f32, got q8_0", "attention q8_0 cache");

    /* overlaps */
    float buf[32];
    s[0] = T(LAMINA_TYPE_F32, buf, 4, 2, 1, 1);
    s[1] = T(LAMINA_TYPE_F32, b, 4, 2, 1, 1);
    lamina_tensor dd = T(LAMINA_TYPE_F32, buf, 4, 2, 1, 1);
    dd.offset = 4;
    n = N(LAMINA_OP_ADD, dd, 2, s);
    reject_data(&n, LAMINA_EINVAL, "add: dst overlaps src0 (A) without aliasing it exactly", "partial overlap with src0");
    n = N(LAMINA_OP_ADD, T(LAMINA_TYPE_F32, b, 4, 2, 1, 1), 2, s);
    reject_data(&n, LAMINA_EINVAL, "add: dst overlaps src1 (B)", "dst aliasing src1");
    /* interleaved rows in one buffer: src rows at 0, 32 bytes; dst rows at 16, 48 */
    for (int i = 0; i < 16; i++) buf[i] = (float)i;
    lamina_tensor si = T(LAMINA_TYPE_F32, buf, 4, 2, 1, 1), di = si;
    si.nb[1] = di.nb[1] = 32;
    si.nb[2] = di.nb[2] = si.nb[3] = di.nb[3] = 64;
    di.offset = 16;
    n = N(LAMINA_OP_SCALE, di, 1, &si);
    n.fp[0] = 2;
    ok(run(&n) == 0 && buf[4] == 0 && buf[7] == 6 && buf[12] == 16 && buf[8] == 8,
       "interleaved, non-overlapping views in one buffer are accepted");
    /* dst rows overlapping each other */
    di.nb[1] = 8;
    n = N(LAMINA_OP_SCALE, di, 1, &si);
    reject(&n, LAMINA_EINVAL, "scale: dst rows overlap each other", "dst rows overlapping");
    /* set_rows may not alias its source */
    int32_t r2[2] = { 0, 1 };
    s[0] = T(LAMINA_TYPE_F32, buf, 4, 2, 1, 1);
    s[1] = T(LAMINA_TYPE_I32, r2, 2, 1, 1, 1);
    n = N(LAMINA_OP_SET_ROWS, T(LAMINA_TYPE_F32, buf, 4, 2, 1, 1), 2, s);
    reject_data(&n, LAMINA_EINVAL, "set_rows: dst overlaps src0 (X)", "set_rows in place");

    /* supports: pure, buffers not needed */
    s[0] = T(LAMINA_TYPE_Q6_K, NULL, 256, 4, 1, 1);
    s[1] = T(LAMINA_TYPE_F32, NULL, 256, 3, 1, 1);
    n = N(LAMINA_OP_MUL_MAT, T(LAMINA_TYPE_F32, NULL, 4, 3, 1, 1), 2, s);
    ok(lamina_ref_supports(&n) == 1, "supports mul_mat q6_K without buffers");
    reject_data(&n, LAMINA_EINVAL, "mul_mat: dst has no buffer", "running without buffers");
    s[0].type = LAMINA_TYPE_I32;
    s[0].nb[0] = 4;
    s[0].nb[1] = 1024;
    n = N(LAMINA_OP_MUL_MAT, T(LAMINA_TYPE_F32, NULL, 4, 3, 1, 1), 2, s);
    ok(lamina_ref_supports(&n) == 0, "does not support i32 weights");
    ok(lamina_ref_supports(NULL) == 0, "does not support a NULL node");
}

static void test_backend(void)
{
    const lamina_backend_iface *I = lamina_ref_backend_iface();
    lamina_backend *be = NULL, *be2 = NULL;
    lamina_buffer *wb = NULL, *xb = NULL, *db = NULL, *hb = NULL, *ob = NULL;
    ok(I && I->struct_size == sizeof *I && I->open && I->close && I->memory && I->buffer_alloc &&
       I->buffer_wrap_host && I->buffer_free && I->buffer_upload && I->buffer_download &&
       I->supports_op && I->graph_compute, "interface complete");

    lamina_backend_params p = { sizeof p, 1, 0, 0 };
    err[0] = '\0';
    ok(I->open(NULL, &p, &be, err, sizeof err) == LAMINA_ENODEV && be == NULL && strstr(err, "device 1"),
       "open device 1: ENODEV (%s)", err);
    p.device = 0;
    ok(I->open(NULL, &p, &be, err, sizeof err) == 0 && be != NULL, "open device 0");
    ok(I->open(NULL, NULL, &be2, err, sizeof err) == 0 && be2 != NULL, "open without params");
    uint64_t fr = 0, tot = 0;
    ok(I->memory(be, &fr, &tot) == 0 && tot > 0 && fr <= tot, "memory: %llu free of %llu",
       (unsigned long long)fr, (unsigned long long)tot);

    /* W [K=2, N=3] in a wrapped host buffer; X and dst allocated */
    static const float W[6] = { 1, 2, 3, 4, 5, 6 };
    float X[4] = { 1, 1, 1, -1 }, D[6] = { 0 };
    ok(I->buffer_wrap_host(be, W, sizeof W, &wb, err, sizeof err) == 0, "wrap host weights");
    ok(I->buffer_alloc(be, 16, LAMINA_BUFFER_ACTIVATIONS, &xb, err, sizeof err) == 0 &&
       I->buffer_alloc(be, 64, LAMINA_BUFFER_ACTIVATIONS, &db, err, sizeof err) == 0, "alloc buffers");
    ok(I->buffer_upload(be, xb, 0, X, 16, err, sizeof err) == 0, "upload X");
    ok(I->buffer_upload(be, xb, 4, X, 16, err, sizeof err) == LAMINA_ERANGE &&
       strstr(err, "exceeds the buffer"), "upload past the end: ERANGE (%s)", err);
    ok(I->buffer_upload(be, wb, 0, X, 4, err, sizeof err) == LAMINA_EINVAL, "upload into wrapped: EINVAL");
    ok(I->buffer_download(be, xb, UINT64_MAX, D, 2, err, sizeof err) == LAMINA_ERANGE,
       "download with an overflowing offset: ERANGE");

    /* graph: mul_mat then scale in place (node 1 reads node 0) */
    lamina_node nodes[2];
    lamina_tensor s[2] = { T(LAMINA_TYPE_F32, NULL, 2, 3, 1, 1), T(LAMINA_TYPE_F32, NULL, 2, 2, 1, 1) };
    s[0].buffer = wb;
    s[1].buffer = xb;
    lamina_tensor dt = T(LAMINA_TYPE_F32, NULL, 3, 2, 1, 1);
    dt.buffer = db;
    dt.offset = 8;
    nodes[0] = N(LAMINA_OP_MUL_MAT, dt, 2, s);
    nodes[1] = N(LAMINA_OP_SCALE, dt, 1, &dt);
    nodes[1].fp[0] = 2;
    lamina_graph g = { sizeof g, 2, nodes, sizeof nodes[0], 0 };
    ok(I->supports_op(be, &nodes[0]) && I->supports_op(be, &nodes[1]), "supports both nodes");
    ok(I->graph_compute(be, &g, err, sizeof err) == 0 &&
       I->buffer_download(be, db, 8, D, 24, err, sizeof err) == 0 && D[0] == 6 && D[1] == 14 &&
       D[2] == 22 && D[3] == -2 && D[5] == -2, "mul_mat then scale through the interface");

    /* operand beyond its buffer */
    nodes[1].dst.offset = nodes[1].src[0].offset = 48;
    g.n_nodes = 2;
    ok(I->graph_compute(be, &g, err, sizeof err) == LAMINA_ERANGE &&
       strstr(err, "node 1: scale: dst spans bytes 48..72 beyond its buffer (64 bytes)"),
       "tensor beyond its buffer: %s", err);
    /* dst in a wrapped buffer */
    nodes[0].dst.buffer = wb;
    nodes[0].dst.offset = 0;
    g.n_nodes = 1;
    ok(I->graph_compute(be, &g, err, sizeof err) == LAMINA_EINVAL && strstr(err, "read-only"),
       "dst in a wrapped buffer: %s", err);
    /* buffer of another instance */
    ok(I->buffer_alloc(be2, 64, LAMINA_BUFFER_ACTIVATIONS, &ob, err, sizeof err) == 0, "alloc on second instance");
    nodes[0].dst.buffer = ob;
    ok(I->graph_compute(be, &g, err, sizeof err) == LAMINA_EINVAL && strstr(err, "another backend"),
       "buffer of another instance: %s", err);
    ok(I->buffer_alloc(be, 0, LAMINA_BUFFER_KV, &hb, err, sizeof err) == 0, "zero-size buffer");
    lamina_graph empty = { sizeof empty, 0, NULL, sizeof(lamina_node), 0 };
    ok(I->graph_compute(be, &empty, err, sizeof err) == 0, "empty graph");
    I->buffer_free(be, xb);
    /* close releases db, wb and hb; be2 releases ob (ASan checks leaks) */
    I->close(be);
    I->close(be2);
    I->close(NULL);
    ok(1, "closed both instances with buffers outstanding");
}

int main(void)
{
    test_get_rows();
    test_mul_mat();
    test_norm_and_elementwise();
    test_rope();
    test_attention();
    test_1_3();
    test_set_rows_copy();
    test_validation();
    test_backend();
    return done_testing();
}
