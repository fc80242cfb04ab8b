/* NEON lookup-table kernels (aarch64). Filled in by the NEON work; on other
 * architectures this variant does not exist. */
#include "kernels.h"

const bn_kernels *bn_kernels_neon(void) {
    return NULL;    /* not yet built for aarch64 */
}
