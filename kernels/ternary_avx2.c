/* AVX2 kernels (x86-64 with AVX2 + FMA + F16C), two ternary designs that
 * share the activation and f16 code:
 *
 *  "avx2-mad": multiply-add, bitnet.cpp's default approach (SPEC 8.1):
 *    weights stay in I2_S blocks (rows interleaved in pairs), each 128-weight
 *    block is unpacked with shifts + masks into codes 0..2 and multiplied
 *    with vpmaddubsw against the int8 activations; Σ code·q − Σ q gives the
 *    exact dot.
 *
 *  "avx2-lut": lookup tables. Weights are repacked into 4-bit indices over
 *    the 9 sums of a pair of weights; per token, act_prep builds for every
 *    pair of activations the 9 exact int16 sums, split into a low-byte and a
 *    high-byte 16-entry table, looked up 32 rows at a time with vpshufb.
 *
 * Both layouts are 2 bits per weight. bn_kernels_avx2() is whichever of the
 * two measured faster (see the comment at the end of the file). */
#include "format_records.h"

#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#include <string.h>

#include "head_q8_x86.h"


/* ---- activations (SPEC 4.5 steps 1-4), bit-exact with ternary_ref.c -------- */

static float avx2_quantize_act(const float *x, int K, int8_t *q, int32_t *sum) {
    /* max|x| in float is exact (max does not round), so comparing it with
     * the 1e-5 floor in double afterwards equals the reference's double loop. */
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 mx = _mm256_setzero_ps();
    for (int i = 0; i < K; i += 8)
        mx = _mm256_max_ps(mx, _mm256_and_ps(_mm256_loadu_ps(x + i), absmask));
    float lanes[8];
    _mm256_storeu_ps(lanes, mx);
    double amax = 1e-5;
    for (int i = 0; i < 8; i++)
        if ((double)lanes[i] > amax) amax = lanes[i];
    const float s = (float)(127.0 / amax);

    /* cvtps_epi32 rounds to nearest even (default MXCSR), the same as the
     * reference's 1.5*2^23 trick; packs saturate, which is the clamp. */
    const __m256 vs = _mm256_set1_ps(s);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    __m256i acc = _mm256_setzero_si256();
    for (int i = 0; i < K; i += 32) {
        __m256i a = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + i), vs));
        __m256i b = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + i + 8), vs));
        __m256i c = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + i + 16), vs));
        __m256i d = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + i + 24), vs));
        __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
        bytes = _mm256_permutevar8x32_epi32(bytes, order);     /* undo the lane-wise packs */
        _mm256_storeu_si256((__m256i *)(q + i), bytes);
        /* Sum the clamped bytes: pairs of int8 -> int16 -> int32. */
        __m256i w16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), bytes);
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(w16, _mm256_set1_epi16(1)));
    }
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
    *sum = _mm_cvtsi128_si32(s4);
    return s;
}

static int32_t hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* ---- f16 (F16C) ------------------------------------------------------------------ */

static void avx2_f16_to_f32(const uint16_t *src, float *dst, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++) dst[i] = bn_f16_to_f32(src[i]);
}

static void avx2_f32_to_f16(const float *src, uint16_t *dst, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) dst[i] = bn_f32_to_f16(src[i]);
}

/* The product of two f16 values is exact in float (11+11 significant bits),
 * so fmadd equals multiply-then-add. The summation order is the reference's
 * (ternary_ref.c, bitnet.cpp's AVX-512 order) with each 16-lane accumulator
 * held as two ymm (lanes 0-7, 8-15), so the result equals ref bit for bit. */
static float avx2_dot_f16(const uint16_t *a, const uint16_t *b, int n) {
    __m256 lo0 = _mm256_setzero_ps(), lo1 = lo0, lo2 = lo0, lo3 = lo0;
    __m256 hi0 = lo0, hi1 = lo0, hi2 = lo0, hi3 = lo0;
    int i = 0;
#define LD(p, o) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((p) + i + (o))))
    for (; i + 64 <= n; i += 64) {
        lo0 = _mm256_fmadd_ps(LD(a, 0), LD(b, 0), lo0);
        hi0 = _mm256_fmadd_ps(LD(a, 8), LD(b, 8), hi0);
        lo1 = _mm256_fmadd_ps(LD(a, 16), LD(b, 16), lo1);
        hi1 = _mm256_fmadd_ps(LD(a, 24), LD(b, 24), hi1);
        lo2 = _mm256_fmadd_ps(LD(a, 32), LD(b, 32), lo2);
        hi2 = _mm256_fmadd_ps(LD(a, 40), LD(b, 40), hi2);
        lo3 = _mm256_fmadd_ps(LD(a, 48), LD(b, 48), lo3);
        hi3 = _mm256_fmadd_ps(LD(a, 56), LD(b, 56), hi3);
    }
#undef LD
    __m256 vlo = _mm256_add_ps(_mm256_add_ps(lo0, lo2), _mm256_add_ps(lo1, lo3));
    __m256 vhi = _mm256_add_ps(_mm256_add_ps(hi0, hi2), _mm256_add_ps(hi1, hi3));
    __m256 v8 = _mm256_add_ps(vlo, vhi);
    __m128 v4 = _mm_add_ps(_mm256_castps256_ps128(v8), _mm256_extractf128_ps(v8, 1));
    __m128 v2 = _mm_add_ps(v4, _mm_movehl_ps(v4, v4));
    double sum = (double)_mm_cvtss_f32(_mm_add_ss(v2, _mm_movehdup_ps(v2)));
    for (; i < n; i++) sum += (double)(bn_f16_to_f32(a[i]) * bn_f16_to_f32(b[i]));
    return (float)sum;
}

/* bitnet.cpp's prompt-batch P·V order (ternary_ref.c): 16 fused
 * multiply-add lanes held as two ymm (lanes 0-7, 8-15), a partial last
 * group completed with zeros, then lanes l + l+8 (lo + hi), l + l+4,
 * l + l+2, 0 + 1; equals ref bit for bit. */
static float avx2_dot_f32_f16_fma16(const float *p, const uint16_t *v, int n) {
    __m256 lo = _mm256_setzero_ps(), hi = lo;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        lo = _mm256_fmadd_ps(_mm256_loadu_ps(p + i),
                             _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + i))), lo);
        hi = _mm256_fmadd_ps(_mm256_loadu_ps(p + i + 8),
                             _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + i + 8))), hi);
    }
    if (i < n) {
        float pt[16] = {0};
        uint16_t vt[16] = {0};
        memcpy(pt, p + i, (size_t)(n - i) * sizeof *pt);
        memcpy(vt, v + i, (size_t)(n - i) * sizeof *vt);
        lo = _mm256_fmadd_ps(_mm256_loadu_ps(pt), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)vt)), lo);
        hi = _mm256_fmadd_ps(_mm256_loadu_ps(pt + 8),
                             _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(vt + 8))), hi);
    }
    __m256 v8 = _mm256_add_ps(lo, hi);
    __m128 v4 = _mm_add_ps(_mm256_castps256_ps128(v8), _mm256_extractf128_ps(v8, 1));
    __m128 v2 = _mm_add_ps(v4, _mm_movehl_ps(v4, v4));
    return _mm_cvtss_f32(_mm_add_ss(v2, _mm_movehdup_ps(v2)));
}

static void avx2_gemv_f16(const uint16_t *W, int K, const uint16_t *x, int m0, int m1, float *y) {
    for (int m = m0; m < m1; m++) y[m - m0] = avx2_dot_f16(W + (size_t)m * (size_t)K, x, K);
}

/* ---- Q8 head (kernels.h), tile height 8, shared by both tables -------------------
 * A tile block (8 rows x 32 k) is 8 vectors of 32 bytes, vector j holding
 * k = 4j..4j+3 of row r in int32 lane r. vpmaddubsw(|w|, sign(x, w)) gives
 * exact int16 pairs (|w|, |x| <= 127: 2·127² < 2^15) and vpmaddwd with ones
 * their int32 sums per row: no horizontal work, exact block sums. */

/* Software prefetch distance in bytes: measured on the head stream (349 MB,
 * 1 thread, shared 2-core Zen 5): none 5-8 GB/s, 1 KB 5-9, 2 KB 8-11,
 * 4 KB 9-13, 8 KB 9-12. The hardware prefetchers alone do not run far
 * enough ahead of a stream this dense in instructions. */
enum { HEAD_PF = 4096 };
enum { HR = 8 };

static size_t avx2_head_size(int K, int M) {
    return bn_head_q8_size_tiled(HR, K, M);
}

static inline __m256 abs_ps(__m256 v) {
    return _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)));
}

static inline float hmax_ps(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* 32 int32 (in four vectors, clamped to ±127) -> 32 int8 in order. */
static inline void pack32(__m256i a, __m256i b, __m256i c, __m256i d, int8_t *q) {
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
    _mm256_storeu_si256((__m256i *)q, _mm256_permutevar8x32_epi32(bytes, order));
}

static inline __m256i clamp127(__m256i v) {
    return _mm256_min_epi32(_mm256_max_epi32(v, _mm256_set1_epi32(-127)), _mm256_set1_epi32(127));
}

/* bn_q8_block_quantize with F16C (vcvtps2ph/vcvtph2ps are what
 * bn_f32_to_f16/bn_f16_to_f32 reproduce): the same float operations, so the
 * same q, returned as 32 int8 in order; *dh gets the scale. */
static inline __m256i head_block(const uint16_t *w, uint16_t *dh) {
    __m256 f[4];
    for (int i = 0; i < 4; i++) f[i] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + 8 * i)));
    const float amax = hmax_ps(_mm256_max_ps(_mm256_max_ps(abs_ps(f[0]), abs_ps(f[1])),
                                             _mm256_max_ps(abs_ps(f[2]), abs_ps(f[3]))));
    const __m128i h = _mm_cvtps_ph(_mm_set_ss(amax / 127.0f), _MM_FROUND_TO_NEAREST_INT);
    const float d = _mm_cvtss_f32(_mm_cvtph_ps(h));
    if (d == 0.0f) {
        *dh = 0;
        return _mm256_setzero_si256();
    }
    *dh = (uint16_t)_mm_extract_epi16(h, 0);
    const __m256 vd = _mm256_set1_ps(d);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    __m256i v[4];
    for (int i = 0; i < 4; i++) v[i] = clamp127(_mm256_cvtps_epi32(_mm256_div_ps(f[i], vd)));
    const __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
    return _mm256_permutevar8x32_epi32(bytes, order);
}

/* Whole tiles (8 rows) a block at a time (bn_head_q8_block8); rows of a tile
 * only partly inside [m0, end), and blocks with a zero scale, go one row at
 * a time, so split calls never touch other rows. */
static void avx2_head_quantize(const uint16_t *W, int K, int M, int m0, int m1, void *dst) {
    uint8_t *out = dst;
    const size_t tb = (size_t)HR * K / 16 * 17;
    const int end = m1 == M ? (M + HR - 1) / HR * HR : m1;
    for (int m = m0; m < end;) {
        uint8_t *tile = out + (size_t)(m / HR) * tb;
        uint8_t *sc = tile + (size_t)HR * K;
        if (m % HR == 0 && m + HR <= end && m + HR <= M) {
            const uint16_t *rows = W + (size_t)m * K;
            for (int b = 0; b < K / 32; b++) {
                if (bn_head_q8_block8(rows + 32 * b, K, tile + 256 * (size_t)b, 32, sc + 2 * HR * (size_t)b)) continue;
                for (int r = 0; r < HR; r++) {
                    uint16_t dh;
                    int8_t q[32];
                    _mm256_storeu_si256((__m256i *)q, head_block(rows + (size_t)r * K + 32 * b, &dh));
                    for (int j = 0; j < 8; j++) memcpy(tile + 256 * (size_t)b + 32 * j + 4 * r, q + 4 * j, 4);
                    memcpy(sc + 2 * (HR * (size_t)b + r), &dh, 2);
                }
            }
            m += HR;
            continue;
        }
        const int r = m % HR;
        for (int b = 0; b < K / 32; b++) {
            int8_t q[32];
            uint16_t dh = 0;
            if (m < M) _mm256_storeu_si256((__m256i *)q, head_block(W + (size_t)m * K + 32 * b, &dh));
            else memset(q, 0, sizeof q);
            uint8_t *blk = tile + (size_t)32 * HR * b + 4 * r;
            for (int j = 0; j < 8; j++) memcpy(blk + 4 * HR * j, q + 4 * j, 4);
            memcpy(sc + 2 * ((size_t)HR * b + r), &dh, 2);
        }
        m++;
    }
}

static void avx2_act_q8_quantize(const float *x, int K, void *xq) {
    int8_t *q = xq;
    uint8_t *tail = (uint8_t *)xq + K;
    for (int b = 0; b < K / 32; b++) {
        __m256 f[4];
        for (int i = 0; i < 4; i++) f[i] = _mm256_loadu_ps(x + 32 * b + 8 * i);
        const float amax = hmax_ps(_mm256_max_ps(_mm256_max_ps(abs_ps(f[0]), abs_ps(f[1])),
                                                 _mm256_max_ps(abs_ps(f[2]), abs_ps(f[3]))));
        const float d = amax / 127.0f, id = amax > 0.0f ? 127.0f / amax : 0.0f;
        const __m256 vid = _mm256_set1_ps(id);
        __m256i v[4];
        for (int i = 0; i < 4; i++) v[i] = clamp127(_mm256_cvtps_epi32(_mm256_mul_ps(f[i], vid)));
        pack32(v[0], v[1], v[2], v[3], q + 32 * b);
        const int32_t sum = hsum_epi32(_mm256_add_epi32(_mm256_add_epi32(v[0], v[1]), _mm256_add_epi32(v[2], v[3])));
        memcpy(tail + 4 * b, &d, 4);
        memcpy(tail + 4 * (K / 32) + 4 * b, &sum, 4);
    }
}

static void avx2_gemv_head_q8(const void *Wq, int K, const void *xq, int m0, int m1, float *y) {
    const uint8_t *w = Wq, *qx = xq, *tail = (const uint8_t *)xq + K;
    const size_t tb = (size_t)HR * K / 16 * 17;
    const int nb = K / 32;
    const __m256i ones = _mm256_set1_epi16(1);
    for (int t = m0 / HR; t * HR < m1; t++) {
        const uint8_t *wt = w + (size_t)t * tb;
        const uint8_t *sc = wt + (size_t)HR * K;
        __m256 acc = _mm256_setzero_ps();
        for (int b = 0; b < nb; b++) {
            const uint8_t *wb = wt + 256 * b, *xb = qx + 32 * b;
            for (int l = 0; l < 256; l += 64) _mm_prefetch((const char *)(wb + HEAD_PF + l), _MM_HINT_T0);
            __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
            for (int j = 0; j < 8; j += 2) {
                int32_t x0, x1;
                memcpy(&x0, xb + 4 * j, 4);
                memcpy(&x1, xb + 4 * j + 4, 4);
                const __m256i w0 = _mm256_loadu_si256((const __m256i *)(wb + 32 * j));
                const __m256i w1 = _mm256_loadu_si256((const __m256i *)(wb + 32 * j + 32));
                const __m256i p0 = _mm256_maddubs_epi16(_mm256_abs_epi8(w0), _mm256_sign_epi8(_mm256_set1_epi32(x0), w0));
                const __m256i p1 = _mm256_maddubs_epi16(_mm256_abs_epi8(w1), _mm256_sign_epi8(_mm256_set1_epi32(x1), w1));
                s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(p0, ones));
                s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(p1, ones));
            }
            float dx;
            memcpy(&dx, tail + 4 * b, 4);
            const __m256 scale = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sc + 16 * b))),
                                               _mm256_set1_ps(dx));
            acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(s0, s1)), scale));
        }
        const int r0 = t * HR;
        if (r0 >= m0 && r0 + HR <= m1) {
            _mm256_storeu_ps(y + (r0 - m0), acc);
        } else {
            float tmp[HR];
            _mm256_storeu_ps(tmp, acc);
            for (int r = 0; r < HR; r++)
                if (r0 + r >= m0 && r0 + r < m1) y[r0 + r - m0] = tmp[r];
        }
    }
}

/* ---- prepared activations shared by the multiply-add kernel: q then Σq ------ */

static size_t mad_prep_size(int K) {
    return (size_t)K + 64;      /* keeps consecutive tokens 64-byte aligned */
}

static void mad_act_prep(const int8_t *q, int K, void *prep) {
    memcpy(prep, q, (size_t)K);
    __m256i acc = _mm256_setzero_si256();
    for (int i = 0; i < K; i += 32) {
        __m256i w16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1),
                                           _mm256_loadu_si256((const __m256i *)(q + i)));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(w16, _mm256_set1_epi16(1)));
    }
    int32_t s = hsum_epi32(acc);
    memcpy((uint8_t *)prep + K, &s, sizeof s);
}

static int32_t prep_sum(const void *prep, int K) {
    int32_t s;
    memcpy(&s, (const uint8_t *)prep + K, sizeof s);
    return s;
}

/* ================= avx2-mad: I2_S codes + vpmaddubsw ============================ */
/*
 * Layout: I2_S blocks (32 bytes = 128 weights; byte i holds at bits 7-6,
 * 5-4, 3-2, 1-0 the codes of k = i, 32 + i, 64 + i, 96 + i) with the unused
 * code 3 turned into 1 (weight 0, as every decoder reads it), rows in tiles
 * of MR = 2 with their blocks interleaved: block b of row r of tile t at
 * byte (t·(K/128)·MR + MR·b + r)·32. A tile's block pair is one 64-byte
 * line, so gemv reads one sequential stream (the last tile of an odd M is
 * padded with code 1). Σ code·q − Σ q gives the exact dot.
 */
enum { MR = 2 };

static size_t mad_packed_size(int K, int M) {
    return (size_t)(M + MR - 1) / MR * MR * (size_t)K / 4;
}

static void mad_repack(const uint8_t *i2s, int K, int M, void *packed) {
    uint8_t *out = packed;
    const int nb = K / 128, mp = (M + MR - 1) / MR * MR;
    const size_t rb = (size_t)K / 4;
    const __m256i low = _mm256_set1_epi8(0x55);
    for (int m = 0; m < mp; m++) {
        uint8_t *dst = out + (size_t)(m / MR) * MR * rb + 32 * (m % MR);
        const uint8_t *row = i2s + (size_t)m * rb;
        for (int b = 0; b < nb; b++) {
            if (m >= M) {
                _mm256_storeu_si256((__m256i *)(dst + 32 * MR * (size_t)b), low);
                continue;
            }
            /* low bit of each code-3 field (16-bit shifts: the mask drops the
             * bits that cross bytes), then 3 -> 1 by clearing its high bit */
            const __m256i x = _mm256_loadu_si256((const __m256i *)(row + 32 * (size_t)b));
            const __m256i both = _mm256_and_si256(_mm256_and_si256(x, _mm256_srli_epi16(x, 1)), low);
            _mm256_storeu_si256((__m256i *)(dst + 32 * MR * (size_t)b), _mm256_andnot_si256(_mm256_slli_epi16(both, 1), x));
        }
    }
}

/* An empty asm the value passes through: GCC cannot reassociate a chain of
 * additions across it (see mad_rows_tokens). No instruction is emitted. */
static inline __m256i keep(__m256i v) {
    __asm__("" : "+x"(v));
    return v;
}

static inline __m256i ld(const void *p) {
    return _mm256_loadu_si256((const __m256i *)p);
}

/* gemv: one tile (2 rows) at a time, one sequential weight stream. Code
 * fields are masked in place, not shifted down: with h = x >> 4 (16-bit
 * shift; the masks keep bits 0-3 only),
 *     x & 0x03 = code(96+i),  x & 0x0c = 4·code(64+i),
 *     h & 0x03 = code(32+i),  h & 0x0c = 4·code(i),
 * so a block is 1 shift + 4 AND + 4 vpmaddubsw + 4 vpaddw per row. The
 * unscaled products go to accumulator u, the ×4 ones to s (int16):
 * a vpmaddubsw pair is at most 2·2·128 = 512 (unscaled) / 2048 (×4) in
 * magnitude, a block adds two pairs, so after 8 blocks |u| <= 8192 and
 * s ∈ [−32768, 32512] (−128·8·2·2·8, 127·8·2·2·8): every prefix sum is in
 * int16 range, nothing wraps. Then int32 4u + s (vpmaddwd with 4 and 1)
 * is exactly 4·Σ code·q in every lane; >> 2 is exact.
 * Software prefetch runs GEMV_PF bytes ahead in the stream, measured on
 * the kernel bench (N = 1, 1 thread, % of read BW on the four 2B4T
 * shapes, two runs each): none 72-84%, 2 KB 70-81%, 4 KB 81-88%,
 * 8 KB 87-96%, 16 KB 89-96%. At ~26 vector ops per 64-byte line the
 * kernel runs ~8 bytes/cycle, close to the stream, so the hardware
 * prefetchers alone fall behind. */
enum { GEMV_PF = 8192 };

static void mad_gemv(const void *packed, int K, int M, const void *prep,
                     int m0, int m1, int32_t *dot) {
    (void)M;
    const uint8_t *w = packed;
    const int8_t *q = prep;
    const int nb = K / 128;
    const size_t tb = (size_t)MR * K / 4;
    const __m256i k3 = _mm256_set1_epi8(0x03), kc = _mm256_set1_epi8(0x0c);
    const __m256i ones = _mm256_set1_epi16(1), fours = _mm256_set1_epi16(4);
    const int32_t asum = prep_sum(prep, K);
    for (int m = m0; m < m1; m += MR) {
        const uint8_t *wt = w + (size_t)(m / MR) * tb;
        __m256i a0 = _mm256_setzero_si256(), a1 = a0;
        for (int b0 = 0; b0 < nb; b0 += 8) {
            const int b1 = b0 + 8 < nb ? b0 + 8 : nb;
            __m256i u0 = _mm256_setzero_si256(), s0 = u0, u1 = u0, s1 = u0;
            for (int b = b0; b < b1; b++) {
                const uint8_t *wb = wt + 64 * (size_t)b;
                const int8_t *qb = q + 128 * (size_t)b;
                _mm_prefetch((const char *)(wb + GEMV_PF), _MM_HINT_T0);
                const __m256i x0 = ld(wb), x1 = ld(wb + 32);
                const __m256i h0 = _mm256_srli_epi16(x0, 4), h1 = _mm256_srli_epi16(x1, 4);
                const __m256i q0 = ld(qb), q1 = ld(qb + 32), q2 = ld(qb + 64), q3 = ld(qb + 96);
                u0 = _mm256_add_epi16(u0, _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_and_si256(h0, k3), q1),
                                                           _mm256_maddubs_epi16(_mm256_and_si256(x0, k3), q3)));
                s0 = _mm256_add_epi16(s0, _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_and_si256(h0, kc), q0),
                                                           _mm256_maddubs_epi16(_mm256_and_si256(x0, kc), q2)));
                u1 = _mm256_add_epi16(u1, _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_and_si256(h1, k3), q1),
                                                           _mm256_maddubs_epi16(_mm256_and_si256(x1, k3), q3)));
                s1 = _mm256_add_epi16(s1, _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_and_si256(h1, kc), q0),
                                                           _mm256_maddubs_epi16(_mm256_and_si256(x1, kc), q2)));
            }
            a0 = _mm256_add_epi32(a0, _mm256_add_epi32(_mm256_madd_epi16(u0, fours), _mm256_madd_epi16(s0, ones)));
            a1 = _mm256_add_epi32(a1, _mm256_add_epi32(_mm256_madd_epi16(u1, fours), _mm256_madd_epi16(s1, ones)));
        }
        dot[m - m0] = hsum_epi32(_mm256_srai_epi32(a0, 2)) - asum;
        if (m + 1 < m1) dot[m + 1 - m0] = hsum_epi32(_mm256_srai_epi32(a1, 2)) - asum;
    }
}

/* gemm: the two rows of a tile (MAD_R) against T <= MAD_TOK tokens. Each
 * block of a row is unpacked field by field into codes 0..2 and multiplied
 * with every token's activations; each activation load feeds both rows.
 * Per block a lane of an int16 accumulator gains four pairs, each in
 * [−512, 508] (codes <= 2), so 16 blocks stay within [−32768, 32512] and
 * so does every prefix sum: exact; then one vpmaddwd widens to int32.
 * Always inlined with a constant T and its loops unrolled so the 8
 * accumulators stay in registers (GCC -O2 otherwise keeps arrays on the
 * stack); keep() stops GCC from reassociating the additions into trees
 * that need more registers than AVX2 has. out[r][t] gets Σ code·q.
 * Measured (kernel bench, N = 128, 1 thread, GMAC/s on the four 2B4T
 * shapes): 1 row x 8 tokens 144-148 (vpaddsw) / 141-164 (keep(), 8 x 6912
 * activation bytes spill L1 on 6912x2560), 2 x 3 144-152, 2 x 4 161-168.
 * The vector ALUs are the limit: a microbenchmark on this Zen 5 sustains
 * 1.6 vpmaddubsw + 1.6 vpaddw per cycle (51 MAC/cycle); 2 x 4 is 64
 * multiply-add pairs + 14 unpack ops per 1024 MACs. */
enum { MAD_R = 2, MAD_TOK = 4 };

/* R rows of one tile (R = 1 or 2) against T tokens. */
static inline __attribute__((always_inline)) void
mad_rows_tokens(const uint8_t *wr, int K, const int8_t *q, size_t ps, const int R, const int T,
                int32_t out[2][MAD_TOK]) {
    const __m256i k3 = _mm256_set1_epi8(0x03), ones = _mm256_set1_epi16(1);
    const int nb = K / 128;
    __m256i acc[2][MAD_TOK];
#pragma GCC unroll 2
    for (int r = 0; r < R; r++)
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) acc[r][t] = _mm256_setzero_si256();
    for (int b0 = 0; b0 < nb; b0 += 16) {
        const int b1 = b0 + 16 < nb ? b0 + 16 : nb;
        __m256i s[2][MAD_TOK];
#pragma GCC unroll 2
        for (int r = 0; r < R; r++)
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) s[r][t] = _mm256_setzero_si256();
        for (int b = b0; b < b1; b++) {
            /* Field by field, so only R code vectors are live. vpaddsw
             * (never saturates here, see above) instead of vpaddw: GCC
             * does not reassociate it into trees that need more
             * registers and spill the accumulators. */
            const int8_t *a = q + 128 * (size_t)b;
            __m256i x[2];
#pragma GCC unroll 2
            for (int r = 0; r < R; r++) x[r] = ld(wr + 32 * MR * (size_t)b + 32 * r);
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                __m256i c[2];
#pragma GCC unroll 2
                for (int r = 0; r < R; r++) c[r] = _mm256_and_si256(_mm256_srli_epi16(x[r], 6 - 2 * j), k3);
#pragma GCC unroll 8
                for (int t = 0; t < T; t++) {
                    const __m256i qa = ld(a + (size_t)t * ps + 32 * j);
#pragma GCC unroll 2
                    for (int r = 0; r < R; r++)
                        s[r][t] = keep(_mm256_add_epi16(s[r][t], _mm256_maddubs_epi16(c[r], qa)));
                }
            }
        }
#pragma GCC unroll 2
        for (int r = 0; r < R; r++)
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) acc[r][t] = _mm256_add_epi32(acc[r][t], _mm256_madd_epi16(s[r][t], ones));
    }
#pragma GCC unroll 2
    for (int r = 0; r < R; r++)
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) out[r][t] = hsum_epi32(acc[r][t]);
}

/* Cache blocking as in the AVX-512 gemm: a block of tokens whose
 * activations fit in L2 (NB·K <= MAD_ACT_BYTES) meets each group of
 * MAD_ROWS rows (<= MAD_ROWS·K/4 bytes of weights, L1-resident) once;
 * inside, groups of MAD_TOK tokens run over those rows. */
enum { MAD_ACT_BYTES = 256 * 1024, MAD_ROWS = 64 };

static void mad_gemm(const void *packed, int K, int M, const void *prep, int N,
                     int m0, int m1, int32_t *dot, int ldd) {
    (void)M;
    const uint8_t *w = packed;
    const int8_t *q = prep;
    const size_t ps = mad_prep_size(K), tb = (size_t)MR * K / 4;
    int NB = MAD_ACT_BYTES / K / MAD_TOK * MAD_TOK;
    if (NB < MAD_TOK) NB = MAD_TOK;
    for (int nb = 0; nb < N; nb += NB) {
        const int ne = N - nb < NB ? N : nb + NB;
        for (int mt = m0; mt < m1; mt += MAD_ROWS) {
            const int mte = mt + MAD_ROWS < m1 ? mt + MAD_ROWS : m1;
            for (int n = nb; n < ne; n += MAD_TOK) {
                const int T = ne - n < MAD_TOK ? ne - n : MAD_TOK;
                const int8_t *qn = q + (size_t)n * ps;
                int32_t sums[MAD_TOK];
                for (int t = 0; t < T; t++) sums[t] = prep_sum(qn + (size_t)t * ps, K);
                for (int m = mt; m < mte; m += MAD_R) {
                    const uint8_t *wr = w + (size_t)(m / MR) * tb + 32 * (m % MR);
                    int32_t out[2][MAD_TOK];
                    switch (T) {    /* constant T: accumulators stay in registers */
                    case 1: mad_rows_tokens(wr, K, qn, ps, MAD_R, 1, out); break;
                    case 2: mad_rows_tokens(wr, K, qn, ps, MAD_R, 2, out); break;
                    case 3: mad_rows_tokens(wr, K, qn, ps, MAD_R, 3, out); break;
                    default: mad_rows_tokens(wr, K, qn, ps, MAD_R, MAD_TOK, out); break;
                    }
                    for (int r = 0; r < MAD_R && m + r < mte; r++)
                        for (int t = 0; t < T; t++) dot[(size_t)(n + t) * ldd + (m + r - m0)] = out[r][t] - sums[t];
                }
            }
        }
    }
}

/* ================= avx2-lut: pair indices + vpshufb tables ==================== */
/*
 * Layout: rows in tiles of 16 (the last tile padded with zero weights). A
 * tile is K/8 chunks of 32 bytes; chunk c covers k = 8c..8c+7:
 *   byte r      (r < 16): low nibble = pair (8c+0, 8c+1), high = (8c+2, 8c+3)
 *   byte 16 + r         : low nibble = pair (8c+4, 8c+5), high = (8c+6, 8c+7)
 * of row r, a pair index being 3·code(k) + code(k+1) (0..8, codes 0..2).
 * So one load gives 16 rows x 8 weights, and the two 128-bit lanes look up
 * different pairs, each in its own table.
 *
 * Prepared activations: per chunk 4 x 32 bytes, tables of the 16 entries
 * v[3a+b] = (a−1)·q[k] + (b−1)·q[k+1] (entries 9..15 are 0):
 *   T0 = low bytes  [pair 8c+0 | pair 8c+4],  T1 = high bytes of the same,
 *   T2 = low bytes  [pair 8c+2 | pair 8c+6],  T3 = high bytes of the same.
 * |v| <= 256, so low byte + 256·(signed high byte) restores v exactly.
 */
enum { LUT_ROWS = 16 };

static size_t lut_packed_size(int K, int M) {
    size_t tiles = (size_t)(M + LUT_ROWS - 1) / LUT_ROWS;
    return tiles * (size_t)K * LUT_ROWS / 4;
}

/* The 128 codes of one I2_S block (32 bytes), code 3 already read as 1, as
 * four vectors of bytes 0..2: c[g] holds k = 32g..32g+31 of the block. */
static inline void i2s_block_codes(const uint8_t *blk, __m256i c[4]) {
    const __m256i m3 = _mm256_set1_epi8(3);
    __m256i x = _mm256_loadu_si256((const __m256i *)blk);
    const __m256i both = _mm256_and_si256(_mm256_and_si256(x, _mm256_srli_epi16(x, 1)),
                                          _mm256_set1_epi8(0x55));
    x = _mm256_andnot_si256(_mm256_slli_epi16(both, 1), x);
    c[0] = _mm256_and_si256(_mm256_srli_epi16(x, 6), m3);
    c[1] = _mm256_and_si256(_mm256_srli_epi16(x, 4), m3);
    c[2] = _mm256_and_si256(_mm256_srli_epi16(x, 2), m3);
    c[3] = _mm256_and_si256(x, m3);
}

/* The 32 packed bytes of one row for one I2_S block (16 chunks of 8 k):
 * byte n = 2c + h is chunk c's byte "16h + r". Pair indices 3a + b come
 * from vpmaddubsw with (3, 1), two of them per byte (lo | hi << 4) from
 * vpmaddwd with (1, 16); in c[g], int32 lane e covers k = 32g + 4e..+3,
 * which is byte 8g + e. */
static inline __m256i lut_row_block(const uint8_t *blk) {
    const __m256i w31 = _mm256_set1_epi16(0x0103), w161 = _mm256_set1_epi32(0x00100001);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    __m256i c[4];
    i2s_block_codes(blk, c);
    for (int g = 0; g < 4; g++) c[g] = _mm256_madd_epi16(_mm256_maddubs_epi16(c[g], w31), w161);
    const __m256i bytes = _mm256_packus_epi16(_mm256_packs_epi32(c[0], c[1]), _mm256_packs_epi32(c[2], c[3]));
    return _mm256_permutevar8x32_epi32(bytes, order);   /* undo the lane-wise packs */
}

/* Repack a tile's 16 rows one I2_S block at a time: the rows' 32-byte
 * vectors (lut_row_block) form a 16 x 32 byte matrix whose transpose is the
 * block's 512 contiguous tile bytes (byte n of row r at 16n + r). The
 * transpose runs in each 128-bit lane (columns 0-15 | 16-31) in four unpack
 * stages; stage s splits on bit 3 - s of the column. */
static void lut_repack(const uint8_t *i2s, int K, int M, void *packed) {
    uint8_t *out = packed;
    const int tiles = (M + LUT_ROWS - 1) / LUT_ROWS, nb = K / 128;
    const size_t rb = (size_t)K / 4;
    for (int t = 0; t < tiles; t++) {
        uint8_t *tile = out + (size_t)t * K * LUT_ROWS / 4;
        const uint8_t *rows = i2s + (size_t)t * LUT_ROWS * rb;
        const int nr = M - t * LUT_ROWS < LUT_ROWS ? M - t * LUT_ROWS : LUT_ROWS;
        for (int b = 0; b < nb; b++) {
            __m256i a[16], x[16];
            for (int r = 0; r < LUT_ROWS; r++)     /* 0x44: pair (0, 0) for padding rows */
                a[r] = r < nr ? lut_row_block(rows + r * rb + 32 * b) : _mm256_set1_epi8(0x44);
            for (int i = 0; i < 8; i++) {
                x[i] = _mm256_unpacklo_epi8(a[2 * i], a[2 * i + 1]);
                x[8 + i] = _mm256_unpackhi_epi8(a[2 * i], a[2 * i + 1]);
            }
            for (int h = 0; h < 2; h++)
                for (int i = 0; i < 4; i++) {
                    a[8 * h + i] = _mm256_unpacklo_epi16(x[8 * h + 2 * i], x[8 * h + 2 * i + 1]);
                    a[8 * h + 4 + i] = _mm256_unpackhi_epi16(x[8 * h + 2 * i], x[8 * h + 2 * i + 1]);
                }
            for (int h = 0; h < 4; h++)
                for (int i = 0; i < 2; i++) {
                    x[4 * h + i] = _mm256_unpacklo_epi32(a[4 * h + 2 * i], a[4 * h + 2 * i + 1]);
                    x[4 * h + 2 + i] = _mm256_unpackhi_epi32(a[4 * h + 2 * i], a[4 * h + 2 * i + 1]);
                }
            for (int h = 0; h < 8; h++) {
                a[2 * h] = _mm256_unpacklo_epi64(x[2 * h], x[2 * h + 1]);
                a[2 * h + 1] = _mm256_unpackhi_epi64(x[2 * h], x[2 * h + 1]);
            }
            /* a[n]: column n (low lane) and 16 + n (high lane), rows 0-15 */
            uint8_t *dst = tile + 512 * (size_t)b;
            for (int n = 0; n < 16; n += 2) {
                _mm256_storeu_si256((__m256i *)(dst + 16 * n), _mm256_permute2x128_si256(a[n], a[n + 1], 0x20));
                _mm256_storeu_si256((__m256i *)(dst + 256 + 16 * n), _mm256_permute2x128_si256(a[n], a[n + 1], 0x31));
            }
        }
    }
}

static size_t lut_prep_size(int K) {
    return (size_t)K / 8 * 128 + 64;    /* tables, then Σq (unused here, kept for symmetry) */
}

/* Builds the 16 int16 sums for one pair as [16 low bytes | 16 high bytes]. */
static inline __m256i pair_table(int8_t qa, int8_t qb) {
    const __m256i wa = _mm256_setr_epi16(-1, -1, -1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0);
    const __m256i wb = _mm256_setr_epi16(-1, 0, 1, -1, 0, 1, -1, 0, 1, 0, 0, 0, 0, 0, 0, 0);
    const __m256i split = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15,
                                           0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    __m256i v = _mm256_add_epi16(_mm256_mullo_epi16(wa, _mm256_set1_epi16(qa)),
                                 _mm256_mullo_epi16(wb, _mm256_set1_epi16(qb)));
    v = _mm256_shuffle_epi8(v, split);              /* per lane: lows, highs */
    return _mm256_permute4x64_epi64(v, 0xd8);       /* lows 0-15 | highs 0-15 */
}

static void lut_act_prep(const int8_t *q, int K, void *prep) {
    uint8_t *t = prep;
    for (int c = 0; c < K / 8; c++, t += 128) {
        const int8_t *a = q + 8 * c;
        __m256i p0 = pair_table(a[0], a[1]), p1 = pair_table(a[2], a[3]);
        __m256i p2 = pair_table(a[4], a[5]), p3 = pair_table(a[6], a[7]);
        /* T0 = lows p0|p2, T1 = highs p0|p2, T2 = lows p1|p3, T3 = highs p1|p3 */
        _mm256_store_si256((__m256i *)(t + 0), _mm256_permute2x128_si256(p0, p2, 0x20));
        _mm256_store_si256((__m256i *)(t + 32), _mm256_permute2x128_si256(p0, p2, 0x31));
        _mm256_store_si256((__m256i *)(t + 64), _mm256_permute2x128_si256(p1, p3, 0x20));
        _mm256_store_si256((__m256i *)(t + 96), _mm256_permute2x128_si256(p1, p3, 0x31));
    }
    int32_t s = 0;
    for (int i = 0; i < K; i++) s += q[i];
    memcpy((uint8_t *)prep + (size_t)K / 8 * 128, &s, sizeof s);
}

/* Adds the int16 accumulator of one tile (lane 0 and lane 1 hold different
 * pairs of the same 8 rows) into 8 int32 row sums. */
static inline __m256i widen_rows(__m256i acc16) {
    return _mm256_add_epi32(_mm256_cvtepi16_epi32(_mm256_castsi256_si128(acc16)),
                            _mm256_cvtepi16_epi32(_mm256_extracti128_si256(acc16, 1)));
}

/* Dot products of NT tiles (16 rows each) with T tokens' tables. Each int16
 * lane gains at most 2 x 256 per chunk; widening every 32 chunks (16384)
 * cannot overflow. */
static inline void lut_tile(const uint8_t *w, size_t tile_stride, int NT, int K,
                            const uint8_t *tab, size_t tab_stride, int T, __m256i out[2][4][2]) {
    const __m256i lo4 = _mm256_set1_epi8(0x0f);
    for (int i = 0; i < NT; i++)
        for (int t = 0; t < T; t++) out[i][t][0] = out[i][t][1] = _mm256_setzero_si256();
    const int nc = K / 8;
    for (int c0 = 0; c0 < nc; c0 += 32) {
        const int c1 = c0 + 32 < nc ? c0 + 32 : nc;
        __m256i acc[2][4][2];
        for (int i = 0; i < NT; i++)
            for (int t = 0; t < T; t++) acc[i][t][0] = acc[i][t][1] = _mm256_setzero_si256();
        for (int c = c0; c < c1; c++) {
            __m256i ilo[2], ihi[2];
            for (int i = 0; i < NT; i++) {
                __m256i x = _mm256_loadu_si256((const __m256i *)(w + i * tile_stride + 32 * c));
                ilo[i] = _mm256_and_si256(x, lo4);
                ihi[i] = _mm256_and_si256(_mm256_srli_epi16(x, 4), lo4);
            }
            for (int t = 0; t < T; t++) {
                const uint8_t *tc = tab + t * tab_stride + 128 * c;
                const __m256i t0 = _mm256_load_si256((const __m256i *)tc);
                const __m256i t1 = _mm256_load_si256((const __m256i *)(tc + 32));
                const __m256i t2 = _mm256_load_si256((const __m256i *)(tc + 64));
                const __m256i t3 = _mm256_load_si256((const __m256i *)(tc + 96));
                for (int i = 0; i < NT; i++) {
                    __m256i al = _mm256_shuffle_epi8(t0, ilo[i]), ah = _mm256_shuffle_epi8(t1, ilo[i]);
                    __m256i bl = _mm256_shuffle_epi8(t2, ihi[i]), bh = _mm256_shuffle_epi8(t3, ihi[i]);
                    acc[i][t][0] = _mm256_add_epi16(acc[i][t][0],
                        _mm256_add_epi16(_mm256_unpacklo_epi8(al, ah), _mm256_unpacklo_epi8(bl, bh)));
                    acc[i][t][1] = _mm256_add_epi16(acc[i][t][1],
                        _mm256_add_epi16(_mm256_unpackhi_epi8(al, ah), _mm256_unpackhi_epi8(bl, bh)));
                }
            }
        }
        /* unpacklo gives rows 0-7, unpackhi rows 8-15 (per lane). */
        for (int i = 0; i < NT; i++)
            for (int t = 0; t < T; t++) {
                out[i][t][0] = _mm256_add_epi32(out[i][t][0], widen_rows(acc[i][t][0]));
                out[i][t][1] = _mm256_add_epi32(out[i][t][1], widen_rows(acc[i][t][1]));
            }
    }
}

static void store_rows(const __m256i v[2], int m, int m0, int m1, int32_t *dot) {
    int32_t rows[16];
    _mm256_storeu_si256((__m256i *)rows, v[0]);
    _mm256_storeu_si256((__m256i *)(rows + 8), v[1]);
    for (int r = 0; r < 16 && m + r < m1; r++) dot[m + r - m0] = rows[r];
}

static void lut_gemm(const void *packed, int K, int M, const void *prep, int N,
                     int m0, int m1, int32_t *dot, int ldd) {
    (void)M;
    const uint8_t *w = packed;
    const uint8_t *tab = prep;
    const size_t ts = (size_t)K * LUT_ROWS / 4, ps = lut_prep_size(K);
    __m256i out[2][4][2];
    for (int n = 0; n < N; n += 4) {
        const int T = N - n < 4 ? N - n : 4;
        int m = m0;
        for (; m + LUT_ROWS < m1; m += 2 * LUT_ROWS) {
            /* Two tiles per pass share every table load. The tail tile of
             * M may be partial: it is padded in the packed data. */
            const uint8_t *wt = w + (size_t)(m / LUT_ROWS) * ts;
            switch (T) {
            case 1: lut_tile(wt, ts, 2, K, tab + n * ps, ps, 1, out); break;
            case 2: lut_tile(wt, ts, 2, K, tab + n * ps, ps, 2, out); break;
            case 3: lut_tile(wt, ts, 2, K, tab + n * ps, ps, 3, out); break;
            default: lut_tile(wt, ts, 2, K, tab + n * ps, ps, 4, out); break;
            }
            for (int t = 0; t < T; t++) {
                store_rows(out[0][t], m, m0, m1, dot + (size_t)(n + t) * ldd);
                store_rows(out[1][t], m + LUT_ROWS, m0, m1, dot + (size_t)(n + t) * ldd);
            }
        }
        for (; m < m1; m += LUT_ROWS) {
            const uint8_t *wt = w + (size_t)(m / LUT_ROWS) * ts;
            switch (T) {
            case 1: lut_tile(wt, ts, 1, K, tab + n * ps, ps, 1, out); break;
            case 2: lut_tile(wt, ts, 1, K, tab + n * ps, ps, 2, out); break;
            case 3: lut_tile(wt, ts, 1, K, tab + n * ps, ps, 3, out); break;
            default: lut_tile(wt, ts, 1, K, tab + n * ps, ps, 4, out); break;
            }
            for (int t = 0; t < T; t++) store_rows(out[0][t], m, m0, m1, dot + (size_t)(n + t) * ldd);
        }
    }
}

static void lut_gemv(const void *packed, int K, int M, const void *prep,
                     int m0, int m1, int32_t *dot) {
    lut_gemm(packed, K, M, prep, 1, m0, m1, dot, 0);
}

BN_DEFINE_TERNARY_FORMAT(avx2_mad, "i2s-avx2-mad", MR, mad_packed_size, mad_repack, mad_prep_size,
                         mad_act_prep, mad_gemv, mad_gemm);
BN_DEFINE_TERNARY_FORMAT(avx2_lut, "i2s-avx2-lut", LUT_ROWS, lut_packed_size, lut_repack,
                         lut_prep_size, lut_act_prep, lut_gemv, lut_gemm);
BN_DEFINE_F16_FORMATS(avx2, avx2_f32_to_f16, avx2_gemv_f16, avx2_dot_f32_f16_fma16);
BN_DEFINE_Q8_HEAD_FORMAT(avx2, HR, avx2_head_size, avx2_head_quantize, avx2_act_q8_quantize,
                         avx2_gemv_head_q8);

/* The AVX2 variants differ only in their ternary format. */
#define AVX2_TABLE(label, ternary)                                                            \
    {                                                                                         \
        .name = label, .quantize_act = avx2_quantize_act, .f16_to_f32 = avx2_f16_to_f32,     \
        .f32_to_f16 = avx2_f32_to_f16, .dot_f16 = avx2_dot_f16, .gemv_f16 = avx2_gemv_f16,   \
        .dot_f32_f16_fma16 = avx2_dot_f32_f16_fma16,                                          \
        .fmt = {                                                                              \
            [BN_FMT_TERNARY] = &ternary,                                                      \
            [BN_FMT_F16] = &avx2_fmt_f16,                                                     \
            [BN_FMT_F16_TINYBLAS] = &avx2_fmt_f16_tinyblas,                                   \
            [BN_FMT_Q8_HEAD] = &avx2_fmt_q8_head,                                             \
        },                                                                                    \
        .attn_qk = bn_attn_qk_avx2, .attn_softmax = bn_attn_softmax_avx2,                     \
        .attn_pv = bn_attn_pv_avx2,                                                           \
    }

static const bn_kernels avx2_mad_kernels = AVX2_TABLE("avx2-mad", avx2_mad_fmt_ternary);
static const bn_kernels avx2_lut_kernels = AVX2_TABLE("avx2-lut", avx2_lut_fmt_ternary);
/* "avx2" is the multiply-add design, for decode and for batches. Measured
 * with the kernel bench (bitnet bench --kernels --variants
 * avx2-mad,avx2-lut,avx512 -t 1 -r 3, best of 3, shared 2-core EPYC Zen 5,
 * read bandwidth 31-33 GB/s), mad vs lut:
 *   N = 1 (>= 256 MB streamed), weight GB/s (% of read BW):
 *     2560x2560 29.9 (87-94%) vs 9.0 (28%), 2560x640 29.7 (87-94%) vs 7.8,
 *     2560x6912 30.2 (88-94%) vs 8.7,       6912x2560 31.0 (91-96%) vs 8.5;
 *     plus lut's act_prep, 15-86 us/token, against mad's 0.2-3 us (a copy).
 *   N = 128, GMAC/s: 2560x2560 160-164 vs 87, 2560x640 161-165 vs 79,
 *                    2560x6912 157-162 vs 87, 6912x2560 153-170 vs 84.
 * (Before the rewrite of the multiply-add kernels, the same bench gave mad
 * 3.2-4.9 GB/s at N = 1 and 50-79 GMAC/s at N = 128, and LUT was chosen.)
 * The LUT kernel spends 2 vpshufb + 2 unpacks + 2 adds per 32 pair lookups
 * (64 MACs) where vpmaddubsw does 32 MACs in one instruction plus an add;
 * multiply-add wins everywhere, so LUT stays only as a measured alternative. */
static const bn_kernels avx2_kernels = AVX2_TABLE("avx2", avx2_mad_fmt_ternary);

const bn_kernels *bn_kernels_avx2_mad(void) {
    return &avx2_mad_kernels;
}

const bn_kernels *bn_kernels_avx2_lut(void) {
    return &avx2_lut_kernels;
}

const bn_kernels *bn_kernels_avx2(void) {
    return &avx2_kernels;
}

#else   /* not an AVX2 build: the variant does not exist here */

const bn_kernels *bn_kernels_avx2_mad(void) {
    return NULL;
}

const bn_kernels *bn_kernels_avx2_lut(void) {
    return NULL;
}

const bn_kernels *bn_kernels_avx2(void) {
    return NULL;
}

#endif
