/* The q8_0 scores of the NEON tables (kernels.h, attn_q8_qk), shared by the
 * plain-NEON kernel (attn_q8_neon.c) and the sdot one
 * (attn_q8_neon_dotprod.c): the includer defines
 *     static int32x4_t block_dot(int8x16_t q0, int8x16_t q1, const int8_t *k)
 * (4 int32 partial sums of one block's dot; any split gives the same exact
 * total) and ATTN_Q8_QK, the name of the kernel to define.
 *
 * Four keys at a time: pairwise adds turn the four keys' lanes into one
 * vector of four exact isums, and the float steps run per key lane as the
 * reference does them (a multiply, then an add: no fused step). */
#define QK 32

/* Keys j0 .. j0+3 against every query row. */
static inline __attribute__((always_inline)) void qk_group4(const int8_t *q, const float *qd, int nq,
                                                            const int8_t *k, const uint16_t *kd, int hd,
                                                            float *s, size_t lds) {
    const int nb = hd / QK;
    float kdt[4 * 64];                  /* kdt[b * 4 + j]; nb <= 64, checked below */
    for (int j = 0; j < 4; j++)
        for (int b = 0; b < nb; b++) kdt[b * 4 + j] = bn_f16_to_f32(kd[(size_t)j * nb + b]);
    for (int r = 0; r < nq; r++) {
        const int8_t *qr = q + (size_t)r * hd;
        float32x4_t sum = vdupq_n_f32(0.0f);
        for (int b = 0; b < nb; b++) {
            int8x16_t q0 = vld1q_s8(qr + b * QK), q1 = vld1q_s8(qr + b * QK + 16);
            int32x4_t d0 = block_dot(q0, q1, k + b * QK);
            int32x4_t d1 = block_dot(q0, q1, k + (size_t)hd + b * QK);
            int32x4_t d2 = block_dot(q0, q1, k + (size_t)2 * hd + b * QK);
            int32x4_t d3 = block_dot(q0, q1, k + (size_t)3 * hd + b * QK);
            int32x4_t isum = vpaddq_s32(vpaddq_s32(d0, d1), vpaddq_s32(d2, d3));
            float32x4_t scale = vmulq_f32(vdupq_n_f32(qd[(size_t)r * nb + b]), vld1q_f32(kdt + b * 4));
            sum = vaddq_f32(sum, vmulq_f32(vcvtq_f32_s32(isum), scale));
        }
        vst1q_f32(s + (size_t)r * lds, sum);
    }
}

void ATTN_Q8_QK(const int8_t *q, const float *qd, int nq, const int8_t *k, const uint16_t *kd, int nk,
                int hd, float *s, size_t lds) {
    const int nb = hd / QK;
    if (nb > 64) {                      /* wider than any model's head: the plain loop */
        bn_attn_q8_qk_ref(q, qd, nq, k, kd, nk, hd, s, lds);
        return;
    }
    int j = 0;
    for (; j + 4 <= nk; j += 4)
        qk_group4(q, qd, nq, k + (size_t)j * hd, kd + (size_t)j * nb, hd, s + j, lds);
    /* the last few keys: the reference computes the same bits */
    if (j < nk) bn_attn_q8_qk_ref(q, qd, nq, k + (size_t)j * hd, kd + (size_t)j * nb, nk - j, hd, s + j, lds);
}
