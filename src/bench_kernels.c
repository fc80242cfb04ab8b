/* The kernel bench: see bench_kernels.h. One table per weight format; a
 * column per distinct kernel record (variants that share a record, such as
 * "avx2" and "avx2-mad", share a column and are measured once); a row per
 * (shape, case, threads). Threads split weight rows in multiples of the
 * format's tile_rows, as the forward pass does. */
#include "bitnet.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels.h"
#include "threadpool.h"

enum { MAX_COLS = 16, MAX_ROWS = 4 * BN_BENCH_MAX_THREADS, CELL = 48 };
/* Tokens of the LM head's batch case: continuous batching's decode of
 * several sequences (serve -np 8) goes through the head's gemm. */
enum { HEAD_BATCH = 8 };

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

/* Row range of thread ith: contiguous, cut at multiples of tile_rows. */
static void split_rows(int M, int rb, int ith, int nth, int *m0, int *m1) {
    int blocks = (M + rb - 1) / rb;
    int b0 = (int)((long long)blocks * ith / nth), b1 = (int)((long long)blocks * (ith + 1) / nth);
    *m0 = b0 * rb < M ? b0 * rb : M;
    *m1 = b1 * rb < M ? b1 * rb : M;
}

/* Best of reps timed runs after one warm-up run. */
static double time_best(bn_threadpool *pool, bn_task_fn task, void *ctx, int reps) {
    double best = 1e30;
    for (int r = 0; r <= reps; r++) {
        double t0 = now_s();
        bn_threadpool_run(pool, task, ctx);
        double dt = now_s() - t0;
        if (r > 0 && dt < best) best = dt;
    }
    return best;
}

/* ---- read bandwidth ---------------------------------------------------------- */

typedef struct read_job {
    const uint64_t *buf;
    size_t n; /* words */
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

/* ---- the jobs ------------------------------------------------------------------- */

/* One matrix product of a format: gemv (N = 1) or gemm over copies of the
 * weights, cycled so that N = 1 streams them from memory. Every format's
 * outputs are 4 bytes (int32 dots or floats). */
typedef struct mm_job {
    const bn_format_traits *f;
    uint8_t *const *mats;
    int n_mats;
    int K, M, N;
    const uint8_t *act;
    uint8_t *y;
} mm_job;

static void mm_task(void *ctx, int ith, int nth) {
    mm_job *j = ctx;
    int m0, m1;
    split_rows(j->M, j->f->tile_rows, ith, nth, &m0, &m1);
    if (m0 >= m1) return;
    for (int c = 0; c < j->n_mats; c++) {
        if (j->N == 1)
            j->f->gemv(j->mats[c], j->K, j->M, j->act, m0, m1, j->y + 4 * (size_t)m0);
        else
            j->f->gemm(j->mats[c], j->K, j->M, j->act, j->N, m0, m1, j->y + 4 * (size_t)m0, j->M);
    }
}

/* Load-time packing of formats that take row ranges (the ternary ones pack
 * whole tensors and are timed on one thread). */
typedef struct pack_job {
    const bn_format_traits *f;
    const void *src;
    int K, M;
    void *dst;
} pack_job;

static void pack_task(void *ctx, int ith, int nth) {
    pack_job *j = ctx;
    int m0, m1;
    split_rows(j->M, j->f->tile_rows, ith, nth, &m0, &m1);
    /* the part that ends at M also writes the padding rows */
    if (m0 < m1 || ith == nth - 1) j->f->pack(j->src, j->K, j->M, m0, m1, j->dst);
}

/* ---- what each format is measured on --------------------------------------------- */

typedef struct bench_format {
    const char *title; /* NULL: not benched (a format without a case here) */
    int ternary;       /* 1: I2_S weights, int8 inputs, the 2B4T shapes, N = 1 and
                               a batch; 0: F16 weights, float inputs, the LM head, N = 1
                               and N = HEAD_BATCH */
} bench_format;

static const bench_format formats[BN_FMT_COUNT] = {
    [BN_FMT_TERNARY] = {"Ternary matmul (I2_S)", 1},
    [BN_FMT_F16] = {"LM head, F16 (decode numerics)", 0},
    [BN_FMT_F16_TINYBLAS] = {"LM head, F16 in tinyBLAS order (bitnet.cpp's prompt-batch numerics)",
                             0},
    [BN_FMT_Q8_HEAD] = {"LM head, Q8 (the default head)", 0},
};

static const int ternary_shapes[][2] = {{2560, 2560}, {2560, 640}, {2560, 6912}, {6912, 2560}};

/* A column: one kernel record and the variants that use it. */
typedef struct column {
    const bn_format_traits *f;
    char names[96];
} column;

static int make_columns(int fmt, const bn_kernels *const *vs, int nv, column *cols) {
    int nc = 0;
    for (int v = 0; v < nv; v++) {
        const bn_format_traits *f = vs[v]->fmt[fmt];
        int c = 0;
        while (c < nc && cols[c].f != f) c++;
        if (c == nc) {
            cols[nc].f = f;
            snprintf(cols[nc].names, sizeof cols[nc].names, "%s", vs[v]->name);
            nc++;
        } else {
            size_t len = strlen(cols[c].names);
            snprintf(cols[c].names + len, sizeof cols[c].names - len, " = %s", vs[v]->name);
        }
    }
    return nc;
}

typedef struct bench {
    FILE *out;
    const bn_bench_kernels_opts *o;
    bn_threadpool **pools;
    const double *bw; /* read GB/s per thread count */
    size_t stream_bytes;
} bench;

typedef struct table {
    int rows;
    char label[MAX_ROWS][48];
    char cell[MAX_ROWS][MAX_COLS][CELL];
    double sec[MAX_ROWS][MAX_COLS];     /* time per matrix of the timed rows, else 0 */
} table;

/* One column of one shape: fills its cells, row by row in the order
 * N = 1 (per thread count), N = batch (ternary, per thread count),
 * act_prep, pack (per thread count; ternary once). Returns -1 when out of
 * memory. */
static int measure(const bench *b, const bench_format *bf, const bn_format_traits *f, int K, int M,
                   const void *src, size_t src_bytes, const void *inputs, int n_in, table *t,
                   int col) {
    const bn_bench_kernels_opts *o = b->o;
    const size_t wbytes = f->pack ? f->packed_size(K, M) : src_bytes;
    const size_t asz = f->act_size(K);
    const int n_copies = (int)((b->stream_bytes + wbytes - 1) / wbytes);
    uint8_t **mats = calloc((size_t)n_copies, sizeof *mats);
    uint8_t *act = alloc64(asz * (size_t)n_in);
    uint8_t *y = alloc64(4 * (size_t)M * (size_t)n_in);
    int ok = mats && act && y;
    for (int c = 0; ok && c < n_copies; c++) {
        /* a format without pack reads the source bytes in place */
        mats[c] = c == 0 && !f->pack ? (uint8_t *)src : alloc64(wbytes);
        if (!mats[c]) ok = 0;
    }
    int r = 0;
    double pack_s[BN_BENCH_MAX_THREADS] = {0};
    if (ok && f->pack) {
        for (int ti = 0; ti < (bf->ternary ? 1 : o->n_threads); ti++) {
            pack_job pj = {.f = f, .src = src, .K = K, .M = M, .dst = mats[0]};
            double t0 = now_s();
            if (bf->ternary)
                f->pack(src, K, M, 0, M, mats[0]);
            else
                bn_threadpool_run(b->pools[ti], pack_task, &pj);
            pack_s[ti] = now_s() - t0;
        }
    }
    for (int c = 1; ok && c < n_copies; c++) memcpy(mats[c], mats[0], wbytes);
    if (!ok) goto done;

    /* inputs: int8 q (ternary) or float x, n_in tokens of K; a batch's
     * preparation (act_prep_batch, where the record has one) timed too,
     * then act_prep's bytes put back for the gemv */
    double prep_best = 1e30, batch_prep_best = 1e30;
    for (int pass = 0; pass < 2; pass++) {
        void (*prep)(const void *, int, void *) =
            pass == 0 && f->act_prep_batch ? f->act_prep_batch : f->act_prep;
        double *best = pass == 0 ? &batch_prep_best : &prep_best;
        for (int rep = 0; rep <= o->reps; rep++) {
            double t0 = now_s();
            for (int n = 0; n < n_in; n++)
                prep((const uint8_t *)inputs + (size_t)n * K * (bf->ternary ? 1 : 4), K,
                     act + asz * (size_t)n);
            double dt = (now_s() - t0) / n_in;
            if (rep > 0 && dt < *best) *best = dt;
        }
    }

    for (int pass = 0; pass < 2; pass++) {
        const int N = pass == 0 ? 1 : n_in;
        mm_job j = {.f = f,
                    .mats = mats,
                    .n_mats = pass == 0 ? n_copies : 1,
                    .K = K,
                    .M = M,
                    .N = N,
                    .act = act,
                    .y = y};
        for (int ti = 0; ti < o->n_threads; ti++, r++) {
            const double per_mat = time_best(b->pools[ti], mm_task, &j, o->reps) / j.n_mats;
            t->sec[r][col] = per_mat;
            snprintf(t->label[r], sizeof t->label[r], "%dx%d | N = %d | %d", K, M, N,
                     o->threads[ti]);
            if (N == 1)
                snprintf(t->cell[r][col], CELL, "%.3f ms, %.1f GB/s (%.0f%%)", per_mat * 1e3,
                         (double)wbytes / per_mat / 1e9,
                         100.0 * (double)wbytes / per_mat / 1e9 / b->bw[ti]);
            else
                snprintf(t->cell[r][col], CELL, "%.3f ms, %.1f GMAC/s", per_mat * 1e3,
                         (double)K * M * N / per_mat / 1e9);
        }
    }
    snprintf(t->label[r], sizeof t->label[r], "%dx%d | act_prep | 1", K, M);
    snprintf(t->cell[r][col], CELL, "%.2f us/token", prep_best * 1e6);
    r++;
    if (bf->ternary) {
        snprintf(t->label[r], sizeof t->label[r], "%dx%d | act_prep batch | 1", K, M);
        snprintf(t->cell[r][col], CELL, "%.2f us/token%s", batch_prep_best * 1e6,
                 f->act_prep_batch ? "" : " (act_prep)");
        r++;
    }
    for (int ti = 0; ti < (bf->ternary ? 1 : o->n_threads); ti++, r++) {
        snprintf(t->label[r], sizeof t->label[r], "%dx%d | pack | %d", K, M, o->threads[ti]);
        if (f->pack)
            snprintf(t->cell[r][col], CELL, "%.1f ms", pack_s[ti] * 1e3);
        else
            snprintf(t->cell[r][col], CELL, "-");
    }
    t->rows = r;
done:
    for (int c = 0; mats && c < n_copies; c++)
        if (mats[c] != src) free(mats[c]);
    free(mats);
    free(act);
    free(y);
    return ok ? 0 : -1;
}

/* Random weights and inputs of a shape, every column measured, the rows
 * printed. */
static int bench_shape(const bench *b, const bench_format *bf, const column *cols, int nc, int K,
                       int M) {
    const bn_bench_kernels_opts *o = b->o;
    const size_t n = (size_t)K * M;
    const size_t src_bytes = bf->ternary ? n / 4 : n * 2;
    const int n_in = bf->ternary ? o->batch : HEAD_BATCH;
    uint8_t *src = alloc64(src_bytes);
    void *inputs = alloc64((size_t)K * (size_t)n_in * (bf->ternary ? 1 : 4));
    table *t = calloc(1, sizeof *t);
    int rc = -1;
    if (!src || !inputs || !t) goto done;
    uint32_t x = 1;
    if (bf->ternary) {
        /* I2_S payload with codes 0..2, int8 activations */
        for (size_t i = 0; i < src_bytes; i++) {
            uint8_t v = 0;
            for (int j = 0; j < 4; j++) {
                x = x * 1664525u + 1013904223u;
                v = (uint8_t)(v << 2 | (x >> 24) % 3);
            }
            src[i] = v;
        }
        int8_t *q = inputs;
        for (size_t i = 0; i < (size_t)K * n_in; i++) {
            x = x * 1664525u + 1013904223u;
            q[i] = (int8_t)(x >> 24);
        }
    } else {
        /* f16 of embedding-like magnitude (2^-6 .. 2^-2), any sign; float input */
        uint16_t *W = (uint16_t *)src;
        for (size_t i = 0; i < n; i++) {
            x = x * 1664525u + 1013904223u;
            W[i] = (uint16_t)(((x >> 16) & 0x83ffu) | ((9u + (x >> 30)) << 10));
        }
        float *in = inputs;
        for (int i = 0; i < K * n_in; i++) {
            x = x * 1664525u + 1013904223u;
            in[i] = (float)((int32_t)x >> 8) / 4194304.0f;
        }
    }
    for (int c = 0; c < nc; c++)
        if (measure(b, bf, cols[c].f, K, M, src, src_bytes, inputs, n_in, t, c) != 0) goto done;
    for (int r = 0; r < t->rows; r++) {
        int any = 0; /* leave out rows no column has (pack of F16) */
        for (int c = 0; c < nc; c++) any |= strcmp(t->cell[r][c], "-") != 0;
        if (!any) continue;
        fprintf(b->out, "| %s |", t->label[r]);
        for (int c = 0; c < nc; c++) fprintf(b->out, " %s |", t->cell[r][c]);
        /* The fastest record by time per matrix (each record reads its own
         * layout's bytes, so GB/s does not compare them), and by how much
         * it beats the next. */
        int best = -1, next = -1;
        for (int c = 0; c < nc; c++) {
            if (t->sec[r][c] <= 0) continue;
            if (best < 0 || t->sec[r][c] < t->sec[r][best]) {
                next = best;
                best = c;
            } else if (next < 0 || t->sec[r][c] < t->sec[r][next]) {
                next = c;
            }
        }
        if (best >= 0 && next >= 0)
            fprintf(b->out, " %s, %.2fx |", cols[best].names, t->sec[r][next] / t->sec[r][best]);
        else if (nc > 1)
            fprintf(b->out, " |");
        fprintf(b->out, "\n");
    }
    fflush(b->out);
    rc = 0;
done:
    free(src);
    free(inputs);
    free(t);
    return rc;
}

static int bench_format_table(const bench *b, int fmt, const bn_kernels *const *vs, int nv) {
    const bench_format *bf = &formats[fmt];
    const bn_bench_kernels_opts *o = b->o;
    column cols[MAX_COLS];
    const int nc = make_columns(fmt, vs, nv, cols);
    fprintf(b->out, "## %s, best of %d\n\n", bf->title, o->reps);
    fprintf(b->out, "| K x M | case | threads |");
    for (int c = 0; c < nc; c++) fprintf(b->out, " %s [%s] |", cols[c].names, cols[c].f->name);
    if (nc > 1) fprintf(b->out, " fastest, vs next |");
    fprintf(b->out, "\n|---|---|---|");
    for (int c = 0; c < nc + (nc > 1); c++) fprintf(b->out, "---|");
    fprintf(b->out, "\n");
    if (bf->ternary) {
        for (size_t s = 0; s < sizeof ternary_shapes / sizeof ternary_shapes[0]; s++)
            if (bench_shape(b, bf, cols, nc, ternary_shapes[s][0], ternary_shapes[s][1]) != 0)
                return -1;
    } else if (bench_shape(b, bf, cols, nc, 2560, o->head_rows) != 0) {
        return -1;
    }
    fprintf(b->out, "\n");
    return 0;
}

static int wanted(const char *filter, const char *name) {
    if (!filter || !*filter) return strcmp(name, "ref") != 0; /* ref is far too slow */
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
    if (opts)
        o = *opts;
    else
        bn_bench_kernels_default_opts(&o);
    if (o.n_threads <= 0) {
        o.threads[0] = 1;
        o.threads[1] = 2;
        o.n_threads = 2;
    }
    if (o.n_threads > BN_BENCH_MAX_THREADS) o.n_threads = BN_BENCH_MAX_THREADS;
    if (o.reps <= 0) o.reps = 5;
    if (o.batch <= 0) o.batch = 128;
    if (o.stream_mb <= 0) o.stream_mb = 256;
    if (o.head_rows <= 0) o.head_rows = 128256;
    for (int i = 0; i < o.n_threads; i++)
        if (o.threads[i] < 1 || o.threads[i] > 256) {
            fprintf(stderr, "bitnet: error: bad thread count %d\n", o.threads[i]);
            return -1;
        }

    const bn_kernels *all[MAX_COLS], *vs[MAX_COLS];
    int n_all = bn_kernels_all(all, MAX_COLS), nv = 0;
    if (n_all > MAX_COLS) n_all = MAX_COLS;
    for (int i = 0; i < n_all; i++)
        if (wanted(o.variants, all[i]->name)) vs[nv++] = all[i];
    if (nv == 0) {
        fprintf(stderr, "bitnet: error: no kernel variant matches '%s'\n",
                o.variants ? o.variants : "");
        return -1;
    }

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
        fprintf(out,
                "## Read bandwidth (%d MB buffer, best of %d)\n\n| threads | GB/s |\n|---|---|\n",
                o.stream_mb, o.reps);
        for (int t = 0; t < o.n_threads; t++) {
            bw[t] = (double)stream_bytes / time_best(pools[t], read_task, &rj, o.reps) / 1e9;
            fprintf(out, "| %d | %.1f |\n", o.threads[t], bw[t]);
        }
        fprintf(out, "\n");
        free(buf);
    }

    fprintf(out,
            "Columns are kernel records (\"a = b\": variants sharing one; [layout "
            "record]). The measure is time per matrix; \"fastest\" names the record "
            "with the least, and its speed-up over the next. N = 1 cycles "
            "through copies of the packed matrix (>= %d MB) so the weights come from "
            "memory; GB/s counts the record's own packed bytes per matrix pass (layouts "
            "differ in size), %% is of "
            "the read bandwidth above. N = %d (ternary) or %d (LM head) reuses one matrix; GMAC/s counts K*M*N "
            "multiply-adds. act_prep is per token (act_prep batch: a token of a batch, "
            "where the record prepares it for gemm alone); pack is load-time work.\n\n",
            o.stream_mb, o.batch, HEAD_BATCH);
    const bench b = {.out = out, .o = &o, .pools = pools, .bw = bw, .stream_bytes = stream_bytes};
    for (int fmt = 0; fmt < BN_FMT_COUNT; fmt++) {
        if (!formats[fmt].title) continue;
        if (formats[fmt].ternary ? o.skip_ternary : !o.head) continue;
        if (bench_format_table(&b, fmt, vs, nv) != 0) goto oom;
    }
    for (int i = 0; i < o.n_threads; i++) bn_threadpool_free(pools[i]);
    return 0;
oom:
    for (int i = 0; i < o.n_threads; i++) bn_threadpool_free(pools[i]);
    fprintf(stderr, "bitnet: error: out of memory in the kernel bench\n");
    return -1;
}
