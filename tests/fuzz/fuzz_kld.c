/* libFuzzer harness for the reader of llama-perplexity's log-probability
 * file (bitnet perplexity --kl-divergence; src/cli/kld.c, docs/FORMAT.md,
 * Log-probability file). The input is the file, read through a memory
 * file's /proc path as a user's file would be, for a model of N_VOCAB
 * tokens (odd, so records carry their padding). An accepted file has every
 * window read and every scored token compared with fixed logits, then the
 * summary sorted and printed to /dev/null: the statistics must stay in
 * bounds whatever the records hold.
 *
 * Seeds: FUZZ_KLD_WRITE_SEEDS=DIR ./fuzz_kld writes valid files (windows of
 * 4, 5 and 8; 1 to 3 windows) with the writer itself and exits. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cli.h"

#define N_VOCAB 37

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The CLI's error printer (args.c), which kld.c reports through. */
int bn_err(const char *fmt, ...) {
    (void)fmt;
    return 1;
}

static float g_logits[N_VOCAB];

static void write_seed(const char *dir, int n_ctx, int n_chunk) {
    char path[4096];
    snprintf(path, sizeof path, "%s/seed-%d-%d.kld", dir, n_ctx, n_chunk);
    FILE *f = fopen(path, "wb");
    if (!f) return;
    int32_t tokens[3 * 8];
    for (int i = 0; i < n_ctx * n_chunk; i++) tokens[i] = (i * 7 + 3) % N_VOCAB;
    uint16_t rec[2 * ((N_VOCAB + 1) / 2) + 4];
    bn_kld_write_header(f, n_ctx, N_VOCAB, n_chunk, tokens);
    for (int r = 0; r < n_chunk * (n_ctx - 1 - n_ctx / 2); r++) {
        float l[N_VOCAB];
        for (int i = 0; i < N_VOCAB; i++) l[i] = g_logits[(i + r) % N_VOCAB];
        bn_kld_record(l, N_VOCAB, rec);
        fwrite(rec, sizeof rec, 1, f);
    }
    fclose(f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    for (int i = 0; i < N_VOCAB; i++) g_logits[i] = (float)((i * 13) % 17) * 0.75f - 4.0f;
    const char *dir = getenv("FUZZ_KLD_WRITE_SEEDS");
    if (dir) {
        write_seed(dir, 4, 1);
        write_seed(dir, 5, 2);
        write_seed(dir, 8, 3);
        exit(0);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int fd = memfd_create("fuzz-kld", 0);
    if (fd < 0) return 0;
    if (size && write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    bn_kld_base b;
    if (bn_kld_open(path, N_VOCAB, &b) == 0) {
        const int per = b.n_ctx - 1 - b.n_ctx / 2;
        bn_kld_stats s = {0};
        s.kld = malloc(((size_t)b.n_chunk * (size_t)per + 1) * sizeof *s.kld);
        s.p_diff = malloc(((size_t)b.n_chunk * (size_t)per + 1) * sizeof *s.p_diff);
        for (int j = 0; s.kld && s.p_diff && j < b.n_chunk && bn_kld_read_window(&b) == 0; j++)
            for (int i = 0; i < per; i++)
                bn_kld_token(&s, g_logits, N_VOCAB, b.recs + (size_t)i * bn_kld_record_len(N_VOCAB),
                             b.tokens[(size_t)j * b.n_ctx + b.n_ctx / 2 + i + 1]);
        if (s.count > (long)b.n_chunk * per) abort();
        FILE *null = fopen("/dev/null", "w");
        if (null && s.count > 0) {
            FILE *keep = stdout;
            stdout = null;
            bn_kld_print_window(&s, 1);
            bn_kld_print_summary(&s);
            stdout = keep;
        }
        if (null) fclose(null);
        free(s.kld);
        free(s.p_diff);
        bn_kld_close(&b);
    }
    close(fd);
    return 0;
}
