/* `bitnet info MODEL`: a human-readable report of a loaded model: file and
 * architecture, hyperparameters, metadata (arrays abbreviated), the tensor
 * table (name, type, shape, bytes), totals, kernel variant and memory plan. */
#ifndef BN_INFO_H
#define BN_INFO_H

#include <stdio.h>

#include "bitnet.h"

/* Writes the report to out. Works for full and vocab_only models (the kernel
 * and repacked sizes are then reported as not loaded). */
void bn_print_info(FILE *out, const bn_model *m);

#endif
