/* The q8_0 scores with ARMv8.2 sdot (the "neon" and "neon-tl-sdot" tables):
 * attn_q8_neon_qk.h with each block's dot as two vdotq_s32, the bits of
 * attn_q8_ref.c (the int32 sums are exact whichever way they are split). */
#include "kernels.h"
#include "neon_common.h"

#if defined(__aarch64__) && defined(__ARM_FEATURE_DOTPROD)
#include <arm_neon.h>

static inline __attribute__((always_inline)) int32x4_t block_dot(int8x16_t q0, int8x16_t q1,
                                                                 const int8_t *k) {
    return vdotq_s32(vdotq_s32(vdupq_n_s32(0), q0, vld1q_s8(k)), q1, vld1q_s8(k + 16));
}

#define ATTN_Q8_QK bn_attn_q8_qk_neon_dotprod
#include "attn_q8_neon_qk.h"

#endif
