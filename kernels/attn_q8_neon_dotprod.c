/* The q8_0 scores with ARMv8.2 sdot (the "neon" and "neon-tl-sdot" tables):
 * attn_q8_neon_qk.h with each 4 dims of 4 keys as one indexed vdotq_laneq_s32
 * (the 16 bytes of 4 keys against the query's 4 bytes of those dims), the
 * bits of attn_q8_ref.c (the int32 sums are exact whichever way they are
 * split). */
#include "kernels.h"
#include "neon_common.h"

#if defined(__aarch64__) && defined(__ARM_FEATURE_DOTPROD)
#include <arm_neon.h>

/* chunk c of the block: keys 0-3 and 4-7 against lane L of q */
#define DOT_CHUNK(c, qv, L)                                                        \
    do {                                                                           \
        *lo = vdotq_laneq_s32(*lo, vld1q_s8(kb + (c) * 32), qv, L);                \
        *hi = vdotq_laneq_s32(*hi, vld1q_s8(kb + (c) * 32 + 16), qv, L);           \
    } while (0)

static inline __attribute__((always_inline)) void block_dot8(const int8_t *kb, int8x16_t q0, int8x16_t q1,
                                                             int32x4_t *lo, int32x4_t *hi) {
    *lo = *hi = vdupq_n_s32(0);
    DOT_CHUNK(0, q0, 0);
    DOT_CHUNK(1, q0, 1);
    DOT_CHUNK(2, q0, 2);
    DOT_CHUNK(3, q0, 3);
    DOT_CHUNK(4, q1, 0);
    DOT_CHUNK(5, q1, 1);
    DOT_CHUNK(6, q1, 2);
    DOT_CHUNK(7, q1, 3);
}

#define ATTN_Q8_QK bn_attn_q8_qk_neon_dotprod
#include "attn_q8_neon_qk.h"

#endif
