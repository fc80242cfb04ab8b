/* The "neon-tl" table: the t3 layout (ternary_tl.h) on aarch64. Not
 * written yet: NULL, so dispatch.c and the tests skip it. */
#include "ternary_tl.h"

const bn_kernels *bn_kernels_neon_tl(void) {
    return NULL;
}
