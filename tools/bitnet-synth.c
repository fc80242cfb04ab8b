/* bitnet-synth: write a synthetic BitNet i2_s GGUF with seeded random
 * weights (see tools/lib/synth.h for the layouts and distributions).
 *
 *   bitnet-synth --preset NAME -o FILE [--seed N] [--layers N] [--embd N]
 *                [--heads N] [--kv-heads N] [--head-dim N] [--ff N]
 *                [--vocab llama3|bytes] [--vocab-file GGUF] [--ctx N]
 *                [--rope-theta X] [--name S] [--head-type T] [--embd-type T]
 *
 * Flags override the preset's fields. Bad usage: one line on stderr, exit 2. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synth.h"

#ifndef BN_DEFAULT_LLAMA3_VOCAB
#define BN_DEFAULT_LLAMA3_VOCAB NULL
#endif

static void usage(FILE *out) {
    fprintf(out,
            "usage: bitnet-synth --preset NAME -o FILE [--seed N] [--layers N]\n"
            "                    [--embd N] [--heads N] [--kv-heads N] [--head-dim N] [--ff N]\n"
            "                    [--vocab llama3|bytes] [--vocab-file GGUF] [--ctx N]\n"
            "                    [--rope-theta X] [--name S] [--head-type T] [--embd-type T]\n"
            "Writes an i2_s GGUF with seeded random ternary weights, laid out as\n"
            "bitnet.cpp's converter and llama-quantize write it (default seed 42; the\n"
            "same seed always gives the same bytes).\n"
            "Presets: 2b4t = the published BitNet-b1.58-2B-4T shapes (1,187,801,280 bytes),\n"
            "         small = 2 layers, embd 256, 4 heads, 2 kv heads, ff 768, byte vocab;\n"
            "         the family's published shapes: large, 3b (bitnet, 1bitLLM),\n"
            "         llama3-8b, falcon3-1b, falcon3-3b, falcon3-7b, falcon3-10b,\n"
            "         falcon-e-1b, falcon-e-3b (llama); small test models of each\n"
            "         architecture: small-bitnet, small-llama, small-llama-untied.\n"
            "--head-type / --embd-type: F16, F32, Q8_0 or Q6_K for the head tensor and\n"
            "(untied models) token_embd; default llama-quantize's choice.\n");
}

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("bitnet-synth: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static long long parse_int(const char *flag, const char *s, long long lo, long long hi) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        die("%s: expected an integer in [%lld, %lld], got '%s'", flag, lo, hi, s);
    return v;
}

int main(int argc, char **argv) {
    const char *preset = NULL, *out = NULL;
    /* Overrides are applied after the preset, whatever the flag order. */
    long long seed = -1, layers = -1, embd = -1, heads = -1, kv = -1, ff = -1, ctx = -1;
    long long head_dim = -1;
    const char *vocab = NULL, *vocab_file = NULL, *name = NULL;
    const char *head_type = NULL, *embd_type = NULL;
    double theta = -1;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc)
            die("%s: missing value (or unknown flag; see --help)", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--preset")) preset = v;
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) out = v;
        else if (!strcmp(a, "--seed")) seed = parse_int(a, v, 0, (long long)0x7FFFFFFFFFFFFFFF);
        else if (!strcmp(a, "--layers")) layers = parse_int(a, v, 1, 1024);
        else if (!strcmp(a, "--embd")) embd = parse_int(a, v, 128, 65536);
        else if (!strcmp(a, "--heads")) heads = parse_int(a, v, 1, 4096);
        else if (!strcmp(a, "--kv-heads")) kv = parse_int(a, v, 1, 4096);
        else if (!strcmp(a, "--ff")) ff = parse_int(a, v, 32, 262144);
        else if (!strcmp(a, "--head-dim")) head_dim = parse_int(a, v, 2, 4096);
        else if (!strcmp(a, "--head-type")) head_type = v;
        else if (!strcmp(a, "--embd-type")) embd_type = v;
        else if (!strcmp(a, "--ctx")) ctx = parse_int(a, v, 1, 1 << 24);
        else if (!strcmp(a, "--vocab")) vocab = v;
        else if (!strcmp(a, "--vocab-file")) vocab_file = v;
        else if (!strcmp(a, "--name")) name = v;
        else if (!strcmp(a, "--rope-theta")) {
            char *end;
            theta = strtod(v, &end);
            if (end == v || *end || !(theta > 0) || theta > 1e12)
                die("--rope-theta: expected a positive number, got '%s'", v);
        } else {
            die("unknown flag '%s' (see --help)", a);
        }
    }
    if (!preset)
        die("--preset is required (%s)", bn_synth_preset_names());
    if (!out)
        die("-o FILE is required");

    bn_synth_config c;
    if (bn_synth_preset(preset, BN_DEFAULT_LLAMA3_VOCAB, &c) != 0)
        die("unknown preset '%s' (expected %s)", preset, bn_synth_preset_names());
    if (seed >= 0) c.seed = (uint64_t)seed;
    if (layers > 0) c.n_layer = (int)layers;
    if (embd > 0) c.n_embd = (int)embd;
    if (heads > 0) c.n_head = (int)heads;
    if (kv > 0) c.n_head_kv = (int)kv;
    if (ff > 0) c.n_ff = (int)ff;
    if (head_dim > 0) c.head_dim = (int)head_dim;
    if (head_type) c.head_type = head_type;
    if (embd_type) c.embd_type = embd_type;
    if (ctx > 0) c.n_ctx = (int)ctx;
    if (theta > 0) c.rope_theta = (float)theta;
    if (name) c.name = name;
    if (vocab_file) c.vocab_file = vocab_file;
    if (vocab) {
        if (!strcmp(vocab, "llama3")) c.vocab = BN_SYNTH_VOCAB_LLAMA3;
        else if (!strcmp(vocab, "bytes")) c.vocab = BN_SYNTH_VOCAB_BYTES;
        else die("--vocab: expected llama3 or bytes, got '%s'", vocab);
    }
    /* A preset's head count may no longer fit an overridden width: keep
     * n_kv <= n_head rather than failing on a flag the user did not give. */
    if (heads > 0 && kv < 0 && c.n_head % c.n_head_kv != 0)
        c.n_head_kv = c.n_head;

    char err[256];
    if (bn_synth_validate(&c, err, sizeof err) != 0)
        die("%s", err);
    if (bn_synth_write(&c, out, err, sizeof err) != 0) {
        fprintf(stderr, "bitnet-synth: error: %s: %s\n", out, err);
        return 1;
    }
    return 0;
}
