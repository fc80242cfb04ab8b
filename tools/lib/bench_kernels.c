/* The kernel bench: see bench_kernels.h. Threads split weight rows in
 * multiples of the variant's row_block, as the forward pass does. */
#include "bench_kernels.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels.h"
#include "threadpool.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *alloc64(size_t n) {
    return aligned_alloc(64, (n + 63) / 64 * 64);
}

void bn_bench_kernels_default_opts(bn_bench_kernels_opts *o) {
    memset(o, 0, sizeof *o);
    o->threads[0] = 1;
    o->threads[1] = 2;
    o->n_threads = 2;
    o->reps = 5;
    o->batch = 128;
    o->stream_mb = 256;
    o->head = 1;
}

/* Row range of thread ith: contiguous, cut at multiples of row_block. */
static void split_rows(int M, int rb, int ith, int nth, int *m0, int *m1) {
    int blocks = (M + rb - 1) / rb;
    int b0 = (int)((long long)blocks * ith / nth), b1 = (int)((long long)blocks * (ith + 1) / nth);
    *m0 = b0 * rb < M ? b0 * rb : M;
    *m1 = b1 * rb < M ? b1 * rb : M;
}

/* ---- read bandwidth ---------------------------------------------------------- */

typedef struct read_job {
    const uint64_t *buf;
    size_t n;               /* words */
    uint64_t sink[BN_BENCH_MAX_THREADS];
} read_job;

/* The reference read stream: one 64-byte line per iteration (eight
 * independent XOR chains, so loads, not ALU work, limit) and a software
 * prefetch 4 KB ahead, as the streaming kernels do: without it this probe
 * read 20-30 % below what the kernels themselves reached, which made
 * "% of read BW" over 100 % and meaningless as a target. */
static void read_task(void *ctx, int ith, int nth) {
    read_job *j = ctx;
    size_t a = j->n * ith / nth / 8 * 8, b = j->n * (ith + 1) / nth / 8 * 8;
    const uint64_t *p = j->buf;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    for (size_t i = a; i < b; i += 8) {
        __builtin_prefetch(p + i + 512);
        s0 ^= p[i], s1 ^= p[i + 1], s2 ^= p[i + 2], s3 ^= p[i + 3];
        s4 ^= p[i + 4], s5 ^= p[i + 5], s6 ^= p[i + 6], s7 ^= p[i + 7];
    }
    j->sink[ith] = s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7;
}

/* ---- one matmul job ----------------------------------------------------------- */

typedef struct mm_job {
    const bn_kernels *k;
    uint8_t **mats;         /* copies of the packed matrix, cycled for N = 1 */
    int n_mats;
    int K, M, N;
    const uint8_t *prep;
    int32_t *dot;
} mm_job;

static void mm_task(void *ctx, int ith, int nth) {
    mm_job *j = ctx;
    int m0, m1;
    split_rows(j->M, j->k->fmt[BN_FMT_TERNARY]->tile_rows, ith, nth, &m0, &m1);
    if (m0 >= m1) return;
    for (int c = 0; c < j->n_mats; c++) {
        if (j->N == 1)
            j->k->fmt[BN_FMT_TERNARY]->gemv(j->mats[c], j->K, j->M, j->prep, m0, m1, j->dot + m0);
        else
            j->k->fmt[BN_FMT_TERNARY]->gemm(j->mats[c], j->K, j->M, j->prep, j->N, m0, m1, j->dot + m0, j->M);
    }
}

/* ---- LM head jobs --------------------------------------------------------------- */

typedef struct head_job {
    const bn_kernels *k;
    int K, M, q8;           /* q8: gemv_head_q8 on Wq, else gemv_f16 on W */
    const uint16_t *W, *x16;
    const void *Wq, *xq;
    void *dst;              /* quantize target (quantize job) */
    float *y;
} head_job;

static void head_task(void *ctx, int ith, int nth) {
    head_job *j = ctx;
    int m0, m1;
    split_rows(j->M, j->q8 ? j->k->fmt[BN_FMT_Q8_HEAD]->tile_rows : 1, ith, nth, &m0, &m1);
    if (m0 >= m1) return;
    if (j->q8) j->k->fmt[BN_FMT_Q8_HEAD]->gemv(j->Wq, j->K, j->M, j->xq, m0, m1, j->y + m0);
    else j->k->gemv_f16(j->W, j->K, j->x16, m0, m1, j->y + m0);
}

static void head_quant_task(void *ctx, int ith, int nth) {
    head_job *j = ctx;
    int m0, m1;
    split_rows(j->M, j->k->fmt[BN_FMT_Q8_HEAD]->tile_rows, ith, nth, &m0, &m1);
    if (m0 < m1 || ith == nth - 1) j->k->fmt[BN_FMT_Q8_HEAD]->pack(j->W, j->K, j->M, m0, m1, j->dst);
}

static double time_best(bn_threadpool *pool, void (*task)(void *, int, int), void *ctx, int reps) {
    double best = 1e30;
    for (int r = 0; r <= reps; r++) {
        double t0 = now_s();
        bn_threadpool_run(pool, task, ctx);
        double dt = now_s() - t0;
        if (r > 0 && dt < best) best = dt;      /* first pass warms up */
    }
    return best;
}

/* The tied embedding as LM head, K = 2560, M = 128256: F16 (656 MB read per
 * token) against the Q8 head (349 MB), one token, every wanted variant. */
static int bench_head(FILE *out, const bn_bench_kernels_opts *o, bn_threadpool **pools,
                      const double *bw, const bn_kernels **vs, int nv) {
    const int K = 2560, M = 128256;
    const size_t n = (size_t)K * M;
    uint16_t *W = alloc64(n * 2), *x16 = alloc64((size_t)K * 2);
    float *x = alloc64((size_t)K * 4), *y = alloc64((size_t)M * 4);
    void *xq = alloc64(bn_act_q8_size(K));
    if (!W || !x16 || !x || !y || !xq) {
        free(W); free(x16); free(x); free(y); free(xq);
        return -1;
    }
    /* Random f16 of embedding-like magnitude (2^-6 .. 2^-2), any sign. */
    uint32_t r = 7;
    for (size_t i = 0; i < n; i++) {
        r = r * 1664525u + 1013904223u;
        W[i] = (uint16_t)(((r >> 16) & 0x83ffu) | ((9u + (r >> 30)) << 10));
    }
    for (int i = 0; i < K; i++) {
        r = r * 1664525u + 1013904223u;
        x[i] = (float)((int32_t)r >> 8) / 4194304.0f;
        x16[i] = bn_f32_to_f16(x[i]);
    }
    fprintf(out, "## LM head (K x M = %dx%d, N = 1: every weight byte read once per token; best of %d)\n\n",
            K, M, o->reps);
    fprintf(out, "| variant | head | threads | ms | weight MB | weight GB/s | %% of read BW | quantize s (load time) |\n"
                 "|---|---|---|---|---|---|---|---|\n");
    for (int v = 0; v < nv; v++) {
        const bn_kernels *k = vs[v];
        int dup = 0;
        for (int u = 0; u < v; u++) dup |= vs[u]->fmt[BN_FMT_Q8_HEAD]->gemv == k->fmt[BN_FMT_Q8_HEAD]->gemv && vs[u]->gemv_f16 == k->gemv_f16;
        if (dup) continue;
        const size_t qsz = k->fmt[BN_FMT_Q8_HEAD]->packed_size(K, M);
        void *Wq = alloc64(qsz);
        if (!Wq) { free(W); free(x16); free(x); free(y); free(xq); return -1; }
        double qs[BN_BENCH_MAX_THREADS];
        for (int t = 0; t < o->n_threads; t++) {
            head_job qj = {.k = k, .K = K, .M = M, .q8 = 1, .W = W, .dst = Wq};
            double t0 = now_s();
            bn_threadpool_run(pools[t], head_quant_task, &qj);
            qs[t] = now_s() - t0;
        }
        k->fmt[BN_FMT_Q8_HEAD]->act_prep(x, K, xq);
        for (int q8 = 0; q8 < 2; q8++) {
            const double bytes = q8 ? (double)qsz : (double)n * 2;
            for (int t = 0; t < o->n_threads; t++) {
                head_job j = {.k = k, .K = K, .M = M, .q8 = q8, .W = W, .x16 = x16, .Wq = Wq, .xq = xq, .y = y};
                const double best = time_best(pools[t], head_task, &j, o->reps);
                fprintf(out, "| %s | %s | %d | %.2f | %.0f | %.1f | %.0f%% |", k->name, q8 ? "q8" : "f16",
                        o->threads[t], best * 1e3, bytes / 1e6, bytes / best / 1e9,
                        100.0 * bytes / best / 1e9 / bw[t]);
                if (q8) fprintf(out, " %.2f |\n", qs[t]);
                else fprintf(out, " - |\n");
                fflush(out);
            }
        }
        free(Wq);
    }
    fprintf(out, "\n");
    free(W); free(x16); free(x); free(y); free(xq);
    return 0;
}

static int wanted(const char *filter, const char *name) {
    if (!filter || !*filter) return strcmp(name, "ref") != 0;     /* ref is far too slow */
    size_t n = strlen(name);
    for (const char *p = filter; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0) return 1;
        p += len + (e != NULL);
    }
    return 0;
}

int bn_bench_kernels(FILE *out, const bn_bench_kernels_opts *opts) {
    bn_bench_kernels_opts o;
    if (opts) o = *opts; else bn_bench_kernels_default_opts(&o);
    if (o.n_threads <= 0) { o.threads[0] = 1; o.threads[1] = 2; o.n_threads = 2; }
    if (o.n_threads > BN_BENCH_MAX_THREADS) o.n_threads = BN_BENCH_MAX_THREADS;
    if (o.reps <= 0) o.reps = 5;
    if (o.batch <= 0) o.batch = 128;
    if (o.stream_mb <= 0) o.stream_mb = 256;
    for (int i = 0; i < o.n_threads; i++)
        if (o.threads[i] < 1 || o.threads[i] > 256) {
            fprintf(stderr, "bitnet: error: bad thread count %d\n", o.threads[i]);
            return -1;
        }

    const bn_kernels *all[16], *vs[16];
    int n_all = bn_kernels_all(all, 16), nv = 0;
    for (int i = 0; i < n_all; i++) {
        if (!wanted(o.variants, all[i]->name)) continue;
        /* "avx2" is one of its alternatives: measure the code once. */
        int dup = 0;
        for (int j = 0; j < n_all; j++)
            if (j != i && all[j]->fmt[BN_FMT_TERNARY]->gemm == all[i]->fmt[BN_FMT_TERNARY]->gemm && wanted(o.variants, all[j]->name) &&
                strchr(all[j]->name, '-'))
                dup = 1;
        if (dup) {
            fprintf(out, "(%s uses the same kernels as its alternative listed below)\n", all[i]->name);
            continue;
        }
        vs[nv++] = all[i];
    }
    if (nv == 0) {
        fprintf(stderr, "bitnet: error: no kernel variant matches '%s'\n", o.variants ? o.variants : "");
        return -1;
    }

    int max_threads = 1;
    for (int i = 0; i < o.n_threads; i++) if (o.threads[i] > max_threads) max_threads = o.threads[i];
    bn_threadpool *pools[BN_BENCH_MAX_THREADS] = {0};
    for (int i = 0; i < o.n_threads; i++) {
        pools[i] = bn_threadpool_new(o.threads[i]);
        if (!pools[i]) {
            fprintf(stderr, "bitnet: error: cannot start %d threads\n", o.threads[i]);
            for (int j = 0; j < i; j++) bn_threadpool_free(pools[j]);
            return -1;
        }
    }

    /* Read bandwidth over a buffer as large as the streamed weight set. */
    const size_t stream_bytes = (size_t)o.stream_mb << 20;
    double bw[BN_BENCH_MAX_THREADS] = {0};
    {
        read_job rj = {.n = stream_bytes / 8};
        uint64_t *buf = alloc64(stream_bytes);
        if (!buf) goto oom;
        for (size_t i = 0; i < rj.n; i++) buf[i] = i * 0x9e3779b97f4a7c15ull;
        rj.buf = buf;
        fprintf(out, "## Read bandwidth (%d MB buffer, best of %d)\n\n| threads | GB/s |\n|---|---|\n",
                o.stream_mb, o.reps);
        for (int t = 0; t < o.n_threads; t++) {
            double best = 1e30;
            for (int r = 0; r <= o.reps; r++) {
                double t0 = now_s();
                bn_threadpool_run(pools[t], read_task, &rj);
                double dt = now_s() - t0;
                if (r > 0 && dt < best) best = dt;      /* first pass warms up */
            }
            bw[t] = (double)stream_bytes / best / 1e9;
            fprintf(out, "| %d | %.1f |\n", o.threads[t], bw[t]);
        }
        fprintf(out, "\n");
        free(buf);
    }

    if (o.head && bench_head(out, &o, pools, bw, vs, nv) != 0) goto oom;

    static const int shapes[][2] = {{2560, 2560}, {2560, 640}, {2560, 6912}, {6912, 2560}};
    fprintf(out, "## Ternary matmul (K x M weights; N = 1 streams a >= %d MB weight set, "
                 "N = %d reuses one matrix; best of %d)\n\n",
            o.stream_mb, o.batch, o.reps);
    fprintf(out, "| variant | K x M | N | threads | ms | GMAC/s | weight GB/s | %% of read BW | prep us/token |\n"
                 "|---|---|---|---|---|---|---|---|---|\n");
    for (int s = 0; s < (o.skip_ternary ? 0 : 4); s++) {
        const int K = shapes[s][0], M = shapes[s][1];
        /* Random I2_S weights (codes 0..2) and activations. */
        uint8_t *i2s = alloc64((size_t)K * M / 4);
        int8_t *q = alloc64((size_t)K * o.batch);
        int32_t *dot = alloc64(sizeof(int32_t) * (size_t)M * o.batch);
        if (!i2s || !q || !dot) { free(i2s); free(q); free(dot); goto oom; }
        uint32_t x = 1;
        for (size_t i = 0; i < (size_t)K * M / 4; i++) {
            uint8_t b = 0;
            for (int j = 0; j < 4; j++) { x = x * 1664525u + 1013904223u; b = (uint8_t)(b << 2 | (x >> 24) % 3); }
            i2s[i] = b;
        }
        for (size_t i = 0; i < (size_t)K * o.batch; i++) { x = x * 1664525u + 1013904223u; q[i] = (int8_t)(x >> 24); }

        for (int v = 0; v < nv; v++) {
            const bn_kernels *k = vs[v];
            const size_t psz = k->fmt[BN_FMT_TERNARY]->packed_size(K, M), asz = k->fmt[BN_FMT_TERNARY]->act_size(K);
            uint8_t *prep = alloc64(asz * o.batch);
            const int n_copies = (int)((stream_bytes + psz - 1) / psz);
            uint8_t **mats = calloc((size_t)n_copies, sizeof *mats);
            int ok = prep && mats;
            for (int c = 0; ok && c < n_copies; c++) {
                mats[c] = alloc64(psz);
                if (!mats[c]) { ok = 0; break; }
                if (c == 0) k->fmt[BN_FMT_TERNARY]->pack(i2s, K, M, 0, M, mats[0]);
                else memcpy(mats[c], mats[0], psz);
            }
            if (!ok) {
                for (int c = 0; mats && c < n_copies; c++) free(mats[c]);
                free(mats); free(prep); free(i2s); free(q); free(dot);
                goto oom;
            }
            double tp0 = now_s();
            for (int n = 0; n < o.batch; n++) k->fmt[BN_FMT_TERNARY]->act_prep(q + (size_t)n * K, K, prep + asz * n);
            const double prep_us = (now_s() - tp0) / o.batch * 1e6;

            for (int pass = 0; pass < 2; pass++) {
                const int N = pass == 0 ? 1 : o.batch;
                mm_job j = {.k = k, .mats = mats, .n_mats = pass == 0 ? n_copies : 1,
                            .K = K, .M = M, .N = N, .prep = prep, .dot = dot};
                for (int t = 0; t < o.n_threads; t++) {
                    double best = 1e30;
                    for (int r = 0; r <= o.reps; r++) {
                        double t0 = now_s();
                        bn_threadpool_run(pools[t], mm_task, &j);
                        double dt = now_s() - t0;
                        if (r > 0 && dt < best) best = dt;
                    }
                    const double per_mat = best / j.n_mats;
                    const double macs = (double)K * M * N;
                    const double wbytes = (double)psz;
                    fprintf(out, "| %s | %dx%d | %d | %d | %.3f | %.1f | %.1f |", k->name, K, M, N,
                            o.threads[t], per_mat * 1e3, macs / per_mat / 1e9, wbytes / per_mat / 1e9);
                    if (N == 1) fprintf(out, " %.0f%% |", 100.0 * wbytes / per_mat / 1e9 / bw[t]);
                    else fprintf(out, " - |");
                    fprintf(out, " %.1f |\n", prep_us);
                    fflush(out);
                }
            }
            for (int c = 0; c < n_copies; c++) free(mats[c]);
            free(mats);
            free(prep);
        }
        free(i2s);
        free(q);
        free(dot);
    }
    fprintf(out, "\nGMAC/s counts K*M*N multiply-adds; weight GB/s counts the variant's own "
                 "packed bytes per matrix pass.\n");
    for (int i = 0; i < o.n_threads; i++) bn_threadpool_free(pools[i]);
    (void)max_threads;
    return 0;
oom:
    for (int i = 0; i < o.n_threads; i++) bn_threadpool_free(pools[i]);
    fprintf(stderr, "bitnet: error: out of memory in the kernel bench\n");
    return -1;
}
