/* The q8_0 scores of the NEON tables (kernels.h, attn_q8_qk; the layout
 * there), shared by the plain-NEON kernel (attn_q8_neon.c) and the sdot one
 * (attn_q8_neon_dotprod.c): the includer defines
 *     static void block_dot8(const int8_t *kb, int8x16_t q0, int8x16_t q1,
 *                            int32x4_t *lo, int32x4_t *hi)
 * (the exact isums of one block of 32 dims of a group's 8 keys, keys 0-3
 * in lo and 4-7 in hi; kb is the block's 256 bytes, 32 per 4 dims; q0, q1
 * the query's 32 bytes) and ATTN_Q8_QK, the name of the kernel to define.
 *
 * One group of 8 keys at a time: each key's sums stay in its own lane, and
 * the float steps run per key lane as the reference does them (a multiply,
 * then an add: no fused step). */
#define QK 32
#define G BN_KVQ8_GROUP

/* One row against the keys of one group: scores of keys 0-3, 4-7. */
static inline __attribute__((always_inline)) void qk_group(const int8_t *qr, const float *qdr,
                                                           const int8_t *kg, const uint16_t *kdg,
                                                           int hd, float32x4_t out[2]) {
    out[0] = out[1] = vdupq_n_f32(0.0f);
    for (int b = 0; b < hd / QK; b++) {
        int32x4_t lo, hi;
        block_dot8(kg + (size_t)b * 256, vld1q_s8(qr + b * QK), vld1q_s8(qr + b * QK + 16), &lo, &hi);
        const float32x4_t qd = vdupq_n_f32(qdr[b]);
        const float32x4_t kd0 = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(kdg + b * 8)));
        const float32x4_t kd1 = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(kdg + b * 8 + 4)));
        out[0] = vaddq_f32(out[0], vmulq_f32(vcvtq_f32_s32(lo), vmulq_f32(qd, kd0)));
        out[1] = vaddq_f32(out[1], vmulq_f32(vcvtq_f32_s32(hi), vmulq_f32(qd, kd1)));
    }
}

void ATTN_Q8_QK(const int8_t *q, const float *qd, int nq, const int8_t *k, const uint16_t *kd, int nk,
                int hd, float *s, size_t lds) {
    const int nb = hd / QK;
    for (int j = 0; j < nk; j += G)
        for (int r = 0; r < nq; r++) {
            float32x4_t out[2];
            qk_group(q + (size_t)r * hd, qd + (size_t)r * nb, k + (size_t)j * hd, kd + (size_t)j * nb, hd, out);
            float *dst = s + (size_t)r * lds + j;
            if (j + G <= nk) {
                vst1q_f32(dst, out[0]);
                vst1q_f32(dst + 4, out[1]);
                continue;
            }
            float tmp[G];               /* the last group's keys past nk are dropped */
            vst1q_f32(tmp, out[0]);
            vst1q_f32(tmp + 4, out[1]);
            for (int i = 0; i < nk - j; i++) dst[i] = tmp[i];
        }
}
