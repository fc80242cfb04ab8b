/* libFuzzer harness for everything that parses a model file beyond the GGUF
 * container: hyperparameters, tensor binding and shape checks, the I2_S
 * scales, the repack, the tokenizer built from the file's vocabulary and, when
 * the model loads, a short forward pass. A hostile file must give a clean
 * error or a working model, never a crash or a sanitizer report.
 *
 * The input is written to a memory file and loaded through its /proc path,
 * exactly as a user's file would be (bn_model_load maps it).
 *
 * Seeds: FUZZ_MODEL_WRITE_SEEDS=DIR ./fuzz_model writes tiny valid models
 * (1 layer, width 128, byte vocabulary) of each architecture into DIR and
 * exits: bitnet-b1.58; bitnet with a Q8_0 head, ffn_down K = 160 and
 * projection scales; llama with head_dim 80, an untied Q8_0 output, biases
 * and F16 norms. Run the fuzzer with -max_len=131072 or more so mutations
 * can keep a whole file. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bitnet.h"
#include "synth.h"

static void write_seed(const char *dir, const char *file, const bn_synth_config *c) {
    char path[4096], err[256];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    if (bn_synth_write(c, path, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_model: %s\n", err);
        exit(1);
    }
}

static void write_seeds(const char *dir) {
    static const char *const presets[] = { "small", "small-bitnet", "small-llama-untied" };
    static const char *const files[] = { "tiny.gguf", "tiny-bitnet.gguf", "tiny-llama.gguf" };
    for (int i = 0; i < 3; i++) {
        bn_synth_config c;
        if (bn_synth_preset(presets[i], NULL, &c) != 0) {
            fprintf(stderr, "fuzz_model: no %s preset\n", presets[i]);
            exit(1);
        }
        c.n_layer = 1;
        c.n_embd = 128;
        c.n_head = 2;
        c.n_head_kv = 1;
        c.n_ff = i == 0 ? 256 : 160;
        c.n_ctx = 64;
        if (i == 1) {
            c.with_scales = 1;                  /* a Q8_0 head by the n_embd rule */
        } else if (i == 2) {
            c.head_dim = 80;
            c.embd_type = "Q8_0";
            c.with_biases = 1;
            c.norm_f16 = 1;
        }
        write_seed(dir, files[i], &c);
    }
    exit(0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *dir = getenv("FUZZ_MODEL_WRITE_SEEDS");
    if (dir) write_seeds(dir);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int fd = memfd_create("fuzz-model", 0);
    if (fd < 0) return 0;
    size_t done = 0;
    while (done < size) {
        ssize_t w = write(fd, data + done, size - done);
        if (w <= 0) { close(fd); return 0; }
        done += (size_t)w;
    }
    char path[64], err[512] = "";
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);

    bn_model_params mp = bn_model_default_params();
    mp.kernel = "ref";              /* the reference: every variant is checked
                                       against it elsewhere */
    bn_model *m = bn_model_load(path, &mp, err, sizeof err);
    if (m) {
        const bn_tokenizer *tok = bn_model_tokenizer(m);
        int32_t ids[64];
        int n = bn_tokenize(tok, "Hello, world! 123", 17, bn_add_bos(tok), 1, ids, 64);
        bn_context_params cp = bn_context_default_params();
        cp.n_ctx = 16;
        cp.n_threads = 1;
        bn_context *c = bn_context_new(m, &cp, err, sizeof err);
        if (c && n > 0) {
            if (n > 8) n = 8;
            if (bn_decode(c, ids, n, 0, err, sizeof err) == 0) {
                const float *l = bn_get_logits(c, -1);
                volatile float sink = l[0];
                (void)sink;
            }
        }
        bn_context_free(c);
        bn_model_free(m);
    } else if (err[0] == 0) {
        abort();                    /* a failure must say why */
    }
    close(fd);
    return 0;
}
