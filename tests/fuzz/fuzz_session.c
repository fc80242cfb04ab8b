/* libFuzzer harness for the session loader (bn_session_load, src/session.c;
 * docs/FORMAT.md, Session file). Byte 0 of an input picks one of four
 * contexts of a tiny model (K / V caches f16 or q8_0) and, with bit 2,
 * has the harness write a valid checksum over the rest first, so mutated
 * ids and cells get past it to the checks behind. The rest is the session
 * file, loaded through a memory file's /proc path as a user's file would
 * be. A refused file must come with a reason and leave the context empty;
 * an accepted one must leave n_past at its token count and ids inside the
 * vocabulary, and the cache must then serve a decode (the truncation and
 * the next token run on the loaded cells under ASan).
 *
 * Seeds: FUZZ_SESSION_WRITE_SEEDS=DIR ./fuzz_session writes a valid
 * session of each context (1, 5, 9 and 17 tokens), with and without bit 2,
 * into DIR and exits. Inputs stay small: -max_len=16384 holds the largest
 * seed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bitnet.h"
#include "synth.h"

#define N_CTX 32

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bn_model *g_model;
static bn_context *g_ctx[4];        /* K / V: f16 f16, q8_0 q8_0, q8_0 f16, f16 q8_0 */
static char g_prefill[4][64];       /* a valid 3-token session of each context (memory
                                       files): loading one before each input puts
                                       cells in the cache without a decode's cost */

static void die(const char *what, const char *err) {
    fprintf(stderr, "fuzz_session: %s: %s\n", what, err);
    exit(1);
}

/* One layer, width 128, 4 heads over 2 KV heads of 32 dims (q8_0 takes
 * them), a byte vocabulary. Written to a temporary file, mapped, unlinked. */
static void load_model(void) {
    bn_synth_config c;
    char err[256] = "", path[] = "/tmp/fuzz_session-XXXXXX";
    if (bn_synth_preset("small", NULL, &c) != 0) die("preset", "small");
    c.n_layer = 1;
    c.n_embd = 128;
    c.n_head = 4;
    c.n_head_kv = 2;
    c.n_ff = 256;
    c.n_ctx = N_CTX;
    int fd = mkstemp(path);
    if (fd < 0) die("mkstemp", path);
    close(fd);
    if (bn_synth_write(&c, path, err, sizeof err) != 0) die("synth", err);
    bn_model_params mp = bn_model_default_params();
    mp.kernel = "ref";
    g_model = bn_model_load(path, &mp, err, sizeof err);
    unlink(path);
    if (!g_model) die("model", err);
    for (int i = 0; i < 4; i++) {
        bn_context_params cp = bn_context_default_params();
        cp.n_ctx = N_CTX;
        cp.n_threads = 1;
        cp.type_k = i == 1 || i == 2 ? BN_KV_Q8_0 : BN_KV_F16;
        cp.type_v = i == 1 || i == 3 ? BN_KV_Q8_0 : BN_KV_F16;
        if (!(g_ctx[i] = bn_context_new(g_model, &cp, err, sizeof err))) die("context", err);
        /* saved to a file (the save renames), copied into a memory file */
        int32_t t[3] = {5, 6, 7};
        uint8_t buf[4096];
        if (bn_decode(g_ctx[i], t, 3, 0, err, sizeof err) != 0 ||
            bn_session_save(g_ctx[i], path, t, 3, err, sizeof err) != 0)
            die("prefill", err);
        FILE *f = fopen(path, "rb");
        size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
        if (f) fclose(f);
        unlink(path);
        int mfd = memfd_create("fuzz-session-prefill", 0);
        if (n == 0 || n == sizeof buf || mfd < 0 || write(mfd, buf, n) != (ssize_t)n) die("prefill", "copy");
        snprintf(g_prefill[i], sizeof g_prefill[i], "/proc/self/fd/%d", mfd);
    }
}

static void write_seeds(const char *dir) {
    static const int counts[4] = {1, 5, 9, 17};
    for (int i = 0; i < 4; i++) {
        char path[4096], path2[4200], tmp[4200], err[256] = "";
        int32_t t[17];
        for (int k = 0; k < counts[i]; k++) t[k] = (int32_t)(1 + (k * 37 + i) % 200);
        bn_context_reset(g_ctx[i]);
        if (bn_decode(g_ctx[i], t, counts[i], 0, err, sizeof err) != 0) die("decode", err);
        snprintf(tmp, sizeof tmp, "%s/seed-%d.tmp", dir, i);
        if (bn_session_save(g_ctx[i], tmp, t, counts[i], err, sizeof err) != 0) die("save", err);
        /* the input: the context's byte, then the file */
        FILE *in = fopen(tmp, "rb");
        snprintf(path, sizeof path, "%s/seed-%d", dir, i);
        FILE *out = fopen(path, "wb");
        snprintf(path2, sizeof path2, "%s/seed-%d-resealed", dir, i);
        FILE *out2 = fopen(path2, "wb");
        if (!in || !out || !out2) die("seed", path);
        fputc(i, out);
        fputc(i | 4, out2);
        int ch;
        while ((ch = fgetc(in)) != EOF) {
            fputc(ch, out);
            fputc(ch, out2);
        }
        fclose(in);
        if (fclose(out) != 0 || fclose(out2) != 0) die("seed", path);
        unlink(tmp);
    }
    exit(0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    load_model();
    const char *dir = getenv("FUZZ_SESSION_WRITE_SEEDS");
    if (dir) write_seeds(dir);
    return 0;
}

static uint8_t g_file[1 << 16];     /* the session file of an input */

/* FNV-1a, 64 bits, little-endian into the last 8 bytes (docs/FORMAT.md,
 * Session file). */
static void reseal(uint8_t *p, size_t n) {
    if (n < 8) return;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n - 8; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    for (int i = 0; i < 8; i++) p[n - 8 + (size_t)i] = (uint8_t)(h >> (8 * i));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size - 1 > sizeof g_file) return 0;
    bn_context *c = g_ctx[data[0] % 4];
    size_t n_file = size - 1;
    memcpy(g_file, data + 1, n_file);
    if (data[0] & 4) reseal(g_file, n_file);
    int fd = memfd_create("fuzz-session", 0);
    if (fd < 0) return 0;
    for (size_t done = 0; done < n_file;) {
        ssize_t w = write(fd, g_file + done, n_file - done);
        if (w <= 0) {
            close(fd);
            return 0;
        }
        done += (size_t)w;
    }
    char path[64], err[512] = "";
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int32_t tokens[N_CTX], one = 5;
    int n = -1;
    /* something in the cache first: a refusal must empty it */
    if (bn_session_load(c, g_prefill[data[0] % 4], tokens, N_CTX, &n, err, sizeof err) != 0 || n != 3)
        abort();
    n = -1;
    if (bn_session_load(c, path, tokens, N_CTX, &n, err, sizeof err) != 0) {
        if (err[0] == '\0' || n != 0 || bn_context_n_past(c) != 0) abort();
    } else {
        if (n < 0 || n > N_CTX || bn_context_n_past(c) != n) abort();
        for (int i = 0; i < n; i++)
            if (tokens[i] < 0 || tokens[i] >= bn_model_hparams(g_model)->n_vocab) abort();
        if (n > 0 && bn_context_truncate(c, n - 1, err, sizeof err) != 0) abort();
        if (bn_decode(c, n > 0 ? &tokens[n - 1] : &one, 1, 0, err, sizeof err) != 0) abort();
        volatile float sink = bn_get_logits(c, -1)[0];
        (void)sink;
    }
    close(fd);
    return 0;
}
