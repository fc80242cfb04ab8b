/* bitnet-tokbench: tokenizer load time and single-thread throughput.
 *
 * usage: bitnet-tokbench [-m VOCAB.gguf] [-f TEXT] [-r REPS]
 *                        [--pre NAME] [--no-special] [-o IDS.txt]
 *
 * Tokenizes the whole file as one string REPS times (no BOS) and reports the
 * best time in MB/s. -o writes the ids one per line (compare with
 * ../shared/tokenizer/llama3-bigtext.ids.txt). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bitnet.h"
#include "gguf.h"
#include "tokenizer.h"

#ifndef BN_SOURCE_DIR
#define BN_SOURCE_DIR "."
#endif
#ifndef BN_DEFAULT_LLAMA3_VOCAB
#define BN_DEFAULT_LLAMA3_VOCAB "tests/data/llama3-vocab.gguf"
#endif

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double now(void) { return clock_s(CLOCK_MONOTONIC); }
/* CPU time of this thread: on a busy machine it leaves out the time the
 * thread waited for a core, so it is the fairer single-thread figure. */
static double cpu_now(void) { return clock_s(CLOCK_THREAD_CPUTIME_ID); }

static char *read_all(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, fp) != (size_t)n) { free(buf); buf = NULL; }
    fclose(fp);
    *len = (size_t)n;
    return buf;
}

int main(int argc, char **argv)
{
    const char *vocab = BN_DEFAULT_LLAMA3_VOCAB;
    const char *file = BN_SOURCE_DIR "/../shared/tokenizer/llama3-bigtext.txt";
    const char *pre = NULL, *ids_out = NULL;
    int reps = 5, special = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-m") && i + 1 < argc) vocab = argv[++i];
        else if (!strcmp(argv[i], "-f") && i + 1 < argc) file = argv[++i];
        else if (!strcmp(argv[i], "-r") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--pre") && i + 1 < argc) pre = argv[++i];
        else if (!strcmp(argv[i], "-o") && i + 1 < argc) ids_out = argv[++i];
        else if (!strcmp(argv[i], "--no-special")) special = 0;
        else {
            fprintf(stderr, "usage: bitnet-tokbench [-m VOCAB.gguf] [-f TEXT] [-r REPS] "
                            "[--pre NAME] [--no-special] [-o IDS.txt]\n");
            return 2;
        }
    }
    if (reps < 1) reps = 1;

    char err[256];
    double t0 = now(), c0 = cpu_now();
    gguf_file f;
    if (gguf_open(&f, vocab, err, sizeof err)) {
        fprintf(stderr, "bitnet-tokbench: error: %s: %s\n", vocab, err);
        return 1;
    }
    double t_open = now() - t0, c_open = cpu_now() - c0;
    bn_tokenizer *tok = bn_tokenizer_from_gguf(&f, pre, err, sizeof err);
    double t_load = now() - t0, c_load = cpu_now() - c0;
    gguf_close(&f);
    if (!tok) {
        fprintf(stderr, "bitnet-tokbench: error: %s: %s\n", vocab, err);
        return 1;
    }

    size_t len;
    char *text = read_all(file, &len);
    if (!text) {
        fprintf(stderr, "bitnet-tokbench: error: cannot read %s\n", file);
        return 1;
    }
    int n = bn_tokenize(tok, text, len, 0, special, NULL, 0);
    if (n < 0) {
        fprintf(stderr, "bitnet-tokbench: error: tokenize failed\n");
        return 1;
    }
    int32_t *ids = malloc(((size_t)n + 1) * sizeof *ids);
    double best = 1e30, best_cpu = 1e30;
    for (int r = 0; r < reps; r++) {
        double t1 = now(), c1 = cpu_now();
        bn_tokenize(tok, text, len, 0, special, ids, n);
        double dt = now() - t1, dc = cpu_now() - c1;
        if (dt < best) best = dt;
        if (dc < best_cpu) best_cpu = dc;
    }
    printf("vocab     %s (%d tokens, %s, pre %s)\n", vocab, bn_vocab_size(tok),
           bn_tokenizer_is_spm(tok) ? "SentencePiece" : "BPE", bn_pre_name(bn_tokenizer_pre(tok)));
    printf("load      %.1f ms wall, %.1f ms CPU (gguf_open %.1f ms wall, %.1f ms CPU)\n",
           t_load * 1e3, c_load * 1e3, t_open * 1e3, c_open * 1e3);
    printf("text      %s (%zu bytes)\n", file, len);
    printf("tokens    %d\n", n);
    printf("tokenize  %.1f ms best of %d = %.1f MB/s, %.2f M tokens/s (1 thread, wall clock)\n",
           best * 1e3, reps, (double)len / best / 1e6, (double)n / best / 1e6);
    printf("tokenize  %.1f ms best of %d = %.1f MB/s (thread CPU time)\n", best_cpu * 1e3, reps,
           (double)len / best_cpu / 1e6);

    if (ids_out) {
        FILE *fp = fopen(ids_out, "w");
        if (!fp) {
            fprintf(stderr, "bitnet-tokbench: error: cannot write %s\n", ids_out);
            return 1;
        }
        for (int i = 0; i < n; i++) fprintf(fp, "%d\n", ids[i]);
        fclose(fp);
    }
    free(ids);
    free(text);
    bn_tokenizer_free(tok);
    return 0;
}
