/* The kernel bench (`bitnet bench --kernels`): every available ternary kernel
 * variant (and the multiply-add baseline) on the 2B4T matmul shapes, for one
 * token (weights streamed from memory, compared with the machine's read
 * bandwidth measured in the same run) and for a batch of tokens. Prints
 * Markdown tables to `out`. */
#ifndef BN_BENCH_KERNELS_H
#define BN_BENCH_KERNELS_H

#include <stdio.h>

#define BN_BENCH_MAX_THREADS 8

typedef struct bn_bench_kernels_opts {
    int threads[BN_BENCH_MAX_THREADS];  /* thread counts to run, e.g. {1, 2} */
    int n_threads;                      /* entries used in threads[]; 0 = {1, 2} */
    int reps;                           /* timed repetitions per cell; 0 = default (5), best kept */
    const char *variants;               /* comma-separated filter ("avx2,avx2-mad"); NULL/"" = all */
    int batch;                          /* tokens for the batch case; 0 = 128 */
    int stream_mb;                      /* weight set cycled for N = 1; 0 = 256 MB (should exceed the LLC) */
    int head;                           /* 1 = also the LM head (F16 vs Q8, 2560x128256, ~1 GB of buffers) */
    int skip_ternary;                   /* 1 = leave out the ternary shapes (head only) */
} bn_bench_kernels_opts;

/* Fills the defaults above (n_threads 2: {1, 2}). */
void bn_bench_kernels_default_opts(bn_bench_kernels_opts *o);

/* Runs the bench; o may be NULL for the defaults. Returns 0, or -1 after
 * printing a one-line reason to stderr (bad option, unknown variant, no memory). */
int bn_bench_kernels(FILE *out, const bn_bench_kernels_opts *o);

#endif
