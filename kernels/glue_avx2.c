/* The glue between BitLinears in AVX2 (kernels.h, bn_glue_kernels): the same
 * float operations as glue_ref.c on every element, eight at a time, so the
 * results are the reference's bit for bit (no FMA: -ffp-contract=off, and
 * every product here is an explicit multiply). The AVX2 and AVX-512 tables
 * use it. */
#include <math.h>

#include "x86_common.h"

#ifdef BN_X86_AVX2

/* ---- RMSNorm sums (docs/NUMERICS.md, RMSNorm, step 1) ------------------------ */

/* The squares of 4 values of a row, rounded to float, as doubles. */
static inline __m256d squares4(const float *p) {
    __m128 v = _mm_loadu_ps(p);
    return _mm256_cvtps_pd(_mm_mul_ps(v, v));
}

/* a_r holds elements i..i+3 of row r; acc lane r gets them added in order
 * i, i+1, i+2, i+3 (a 4x4 transpose turns rows into lanes). */
static inline __m256d add_in_order(__m256d acc, __m256d a0, __m256d a1, __m256d a2,
                                   __m256d a3) {
    __m256d t0 = _mm256_unpacklo_pd(a0, a1), t1 = _mm256_unpackhi_pd(a0, a1);
    __m256d t2 = _mm256_unpacklo_pd(a2, a3), t3 = _mm256_unpackhi_pd(a2, a3);
    acc = _mm256_add_pd(acc, _mm256_permute2f128_pd(t0, t2, 0x20));
    acc = _mm256_add_pd(acc, _mm256_permute2f128_pd(t1, t3, 0x20));
    acc = _mm256_add_pd(acc, _mm256_permute2f128_pd(t0, t2, 0x31));
    return _mm256_add_pd(acc, _mm256_permute2f128_pd(t1, t3, 0x31));
}

/* The last n % 4 values of a row, padded with zeros: their squares are +0,
 * and adding +0 to a sum of squares (never -0) leaves it unchanged. */
static inline void tail4(const float *row, int i, int n, float out[4]) {
    for (int j = 0; j < 4; j++) out[j] = i + j < n ? row[i + j] : 0.0f;
}

/* Rows x + r*ld, r < g (g = 4 or 8), each a chain in its own double lane:
 * two chains of 4 rows keep two adders busy where a single row would wait
 * on each addition's latency. */
static void sum_squares_group(const float *x, size_t ld, int g, int n, double *sums) {
    __m256d acc0 = _mm256_setzero_pd(), acc1 = acc0;
    const float *p[8];
    for (int r = 0; r < g; r++) p[r] = x + (size_t)r * ld;
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        acc0 = add_in_order(acc0, squares4(p[0] + i), squares4(p[1] + i), squares4(p[2] + i),
                            squares4(p[3] + i));
        if (g == 8)
            acc1 = add_in_order(acc1, squares4(p[4] + i), squares4(p[5] + i),
                                squares4(p[6] + i), squares4(p[7] + i));
    }
    if (i < n) {
        float t[8][4];
        for (int r = 0; r < g; r++) tail4(p[r], i, n, t[r]);
        acc0 = add_in_order(acc0, squares4(t[0]), squares4(t[1]), squares4(t[2]),
                            squares4(t[3]));
        if (g == 8)
            acc1 = add_in_order(acc1, squares4(t[4]), squares4(t[5]), squares4(t[6]),
                                squares4(t[7]));
    }
    _mm256_storeu_pd(sums, acc0);
    if (g == 8) _mm256_storeu_pd(sums + 4, acc1);
}

static void avx2_sum_squares(const float *x, size_t ld, int rows, int n, double *sums) {
    int r = 0;
    for (; r + 8 <= rows; r += 8) sum_squares_group(x + (size_t)r * ld, ld, 8, n, sums + r);
    for (; r + 4 <= rows; r += 4) sum_squares_group(x + (size_t)r * ld, ld, 4, n, sums + r);
    for (; r < rows; r++) {
        /* one row (a decode step): a single chain whatever the code */
        const float *row = x + (size_t)r * ld;
        double sum = 0.0;
        for (int i = 0; i < n; i++) sum += (double)(row[i] * row[i]);
        sums[r] = sum;
    }
}

/* ---- RMSNorm's last step + quantize_act (docs/NUMERICS.md, BitLinear,
 * steps 1-4; bn_avx2_quantize_act of the normed row) ----------------------- */

/* y[i..i+8): (x * scale) * w (x where w is NULL) below K, zeros from K on. */
static inline __m256 normed8(const float *x, const float *w, __m256 vscale, int K, int i) {
    if (i + 8 <= K) {
        __m256 v = _mm256_loadu_ps(x + i);
        return w ? _mm256_mul_ps(_mm256_mul_ps(v, vscale), _mm256_loadu_ps(w + i)) : v;
    }
    if (i >= K) return _mm256_setzero_ps();
    /* the row's last partial vector: lanes at or past K are loaded as 0 and
     * cleared after the products (0 * a NaN scale would be NaN) */
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(K - i),
                                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256 v = _mm256_maskload_ps(x + i, mask);
    if (w) v = _mm256_mul_ps(_mm256_mul_ps(v, vscale), _mm256_maskload_ps(w + i, mask));
    return _mm256_and_ps(v, _mm256_castsi256_ps(mask));
}

static float avx2_norm_quantize_act(const float *x, const float *w, float scale, int K, int Kp,
                                    int8_t *q, int32_t *sum) {
    const __m256 vscale = _mm256_set1_ps(scale);
    __m256 mx = _mm256_setzero_ps();
    for (int i = 0; i < Kp; i += 8) mx = _mm256_max_ps(mx, bn_abs_ps(normed8(x, w, vscale, K, i)));
    float lanes[8], m = 0.0f;
    _mm256_storeu_ps(lanes, mx);
    for (int i = 0; i < 8; i++)
        if (lanes[i] > m) m = lanes[i];
    const float s = bn_act_quant_scale(m);

    /* y is computed again rather than stored and read back: the same
     * operations give the same bits, and the row is never written. */
    const __m256 vs = _mm256_set1_ps(s);
    __m256i acc = _mm256_setzero_si256();
    for (int i = 0; i < Kp; i += 32) {
        __m256i a = _mm256_cvtps_epi32(_mm256_mul_ps(normed8(x, w, vscale, K, i), vs));
        __m256i b = _mm256_cvtps_epi32(_mm256_mul_ps(normed8(x, w, vscale, K, i + 8), vs));
        __m256i c = _mm256_cvtps_epi32(_mm256_mul_ps(normed8(x, w, vscale, K, i + 16), vs));
        __m256i d = _mm256_cvtps_epi32(_mm256_mul_ps(normed8(x, w, vscale, K, i + 24), vs));
        const __m256i bytes = bn_pack_epi32_epi8(a, b, c, d);
        _mm256_storeu_si256((__m256i *)(q + i), bytes);
        __m256i w16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), bytes);
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(w16, _mm256_set1_epi16(1)));
    }
    *sum = bn_hsum_epi32(acc);
    return s;
}

/* ---- epilogues (docs/NUMERICS.md, BitLinear, step 6) ----------------------- */

/* (float)dot is exact (|dot| < 2^24); the division and the product are each
 * rounded once, as in bn_ternary_epilogue. */
static inline __m256 epilogue8(const int32_t *dot, __m256 vas, __m256 vws) {
    __m256 d = _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)dot));
    return _mm256_mul_ps(_mm256_div_ps(d, vas), vws);
}

static void avx2_epilogue(const int32_t *dot, int n, float act_scale, float w_scale, float *y) {
    const __m256 vas = _mm256_set1_ps(act_scale), vws = _mm256_set1_ps(w_scale);
    int m = 0;
    for (; m + 8 <= n; m += 8) _mm256_storeu_ps(y + m, epilogue8(dot + m, vas, vws));
    for (; m < n; m++) y[m] = bn_ternary_epilogue(dot[m], act_scale, w_scale);
}

static void avx2_epilogue_add(const int32_t *dot, int n, float act_scale, float w_scale,
                              float *y) {
    const __m256 vas = _mm256_set1_ps(act_scale), vws = _mm256_set1_ps(w_scale);
    int m = 0;
    for (; m + 8 <= n; m += 8)
        _mm256_storeu_ps(y + m, _mm256_add_ps(_mm256_loadu_ps(y + m), epilogue8(dot + m, vas, vws)));
    for (; m < n; m++) y[m] = y[m] + bn_ternary_epilogue(dot[m], act_scale, w_scale);
}

/* ---- ReLU² product (docs/NUMERICS.md, FFN activations) ---------------------- */

static void avx2_relu2_glu(const int32_t *dg, const int32_t *du, int n, float act_scale,
                           float gs, float us, float *out) {
    const __m256 vas = _mm256_set1_ps(act_scale), vgs = _mm256_set1_ps(gs);
    const __m256 vus = _mm256_set1_ps(us), half = _mm256_set1_ps(0.5f);
    int m = 0;
    for (; m + 8 <= n; m += 8) {
        __m256 g = epilogue8(dg + m, vas, vgs);
        __m256 u = epilogue8(du + m, vas, vus);
        __m256 r = _mm256_mul_ps(_mm256_add_ps(g, bn_abs_ps(g)), half);
        _mm256_storeu_ps(out + m, _mm256_mul_ps(_mm256_mul_ps(r, r), u));
    }
    for (; m < n; m++) {
        float g = bn_ternary_epilogue(dg[m], act_scale, gs);
        float u = bn_ternary_epilogue(du[m], act_scale, us);
        float r = (g + fabsf(g)) * 0.5f;
        out[m] = (r * r) * u;
    }
}

/* ---- SiLU product (glue_ref.c, bn_silu_exp) --------------------------------- */

static void avx2_silu_glu(const int32_t *dg, const int32_t *du, int n, float act_scale, float gs,
                          float us, float *out) {
    const __m256 vas = _mm256_set1_ps(act_scale), vgs = _mm256_set1_ps(gs);
    const __m256 vus = _mm256_set1_ps(us), one = _mm256_set1_ps(1.0f);
    const __m256 sign = _mm256_set1_ps(-0.0f), lim = _mm256_set1_ps(88.0f);
    int m = 0;
    for (; m + 8 <= n; m += 8) {
        __m256 g = epilogue8(dg + m, vas, vgs);
        __m256 u = epilogue8(du + m, vas, vus);
        /* min(-g, 88): minps returns its second operand when they are
         * equal or unordered, as `x < 88 ? x : 88` does */
        __m256 e = bn_exp8(_mm256_min_ps(_mm256_xor_ps(g, sign), lim));
        _mm256_storeu_ps(out + m, _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, e)), u));
    }
    for (; m < n; m++) {
        float g = bn_ternary_epilogue(dg[m], act_scale, gs);
        float u = bn_ternary_epilogue(du[m], act_scale, us);
        out[m] = (g / (1.0f + bn_silu_exp(g))) * u;
    }
}

const bn_glue_kernels bn_glue_avx2 = {
    .name = "avx2",
    .sum_squares = avx2_sum_squares,
    .norm_quantize_act = avx2_norm_quantize_act,
    .epilogue = avx2_epilogue,
    .epilogue_add = avx2_epilogue_add,
    .relu2_glu = avx2_relu2_glu,
    .silu_glu = avx2_silu_glu,
};

#endif
