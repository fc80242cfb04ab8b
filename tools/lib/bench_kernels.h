/* The kernel bench (`bitnet bench --kernels`): every weight format of the
 * kernel tables (kernels.h: ternary, F16, F16-tinyBLAS, Q8 head) on the
 * shapes where the forward pass uses it (the 2B4T projections; its LM
 * head), every wanted variant side by side. For one token the weights are
 * streamed from memory and compared with the machine's read bandwidth,
 * measured in the same run; ternary weights are also timed for a batch of
 * tokens. Prints Markdown tables to `out`. */
#ifndef BN_BENCH_KERNELS_H
#define BN_BENCH_KERNELS_H

#include <stdio.h>

#define BN_BENCH_MAX_THREADS 8

typedef struct bn_bench_kernels_opts {
    int threads[BN_BENCH_MAX_THREADS];  /* thread counts to run, e.g. {1, 2} */
    int n_threads;                      /* entries used in threads[]; 0 = {1, 2} */
    int reps;                           /* timed repetitions per cell; 0 = default (5), best kept */
    const char *variants;               /* comma-separated filter ("avx2,avx2-lut"); NULL/"" = all but ref */
    int batch;                          /* tokens for the batch case; 0 = 128 */
    int stream_mb;                      /* weight set cycled for N = 1; 0 = 256 MB (should exceed the LLC) */
    int head;                           /* 1 = also the LM head formats (2560 x head_rows; ~1 GB of buffers) */
    int head_rows;                      /* the head's M; 0 = 128256 (the 2B4T vocabulary) */
    int skip_ternary;                   /* 1 = leave out the ternary shapes (head only) */
} bn_bench_kernels_opts;

/* Fills the defaults above (n_threads 2: {1, 2}, head on). */
void bn_bench_kernels_default_opts(bn_bench_kernels_opts *o);

/* Runs the bench; o may be NULL for the defaults. Returns 0, or -1 after
 * printing a one-line reason to stderr (bad option, unknown variant, no memory). */
int bn_bench_kernels(FILE *out, const bn_bench_kernels_opts *o);

#endif
