/* Synthetic BitNet b1.58 i2_s GGUF models with seeded random weights: the
 * engine behind tools/bitnet-synth and the tests' model fixtures.
 *
 * Layout follows the published 2B4T file exactly (SPEC 3.2 key list and
 * order, SPEC 3.5 tensor names/types, tensors in the published order: token
 * embedding, blocks in lexicographic order of the block number, output norm).
 *
 * Weights (all from one splitmix64 stream per tensor, seeded by the model seed
 * and the tensor name, so a tensor's content does not depend on the others):
 *   - ternary: each weight -1/0/+1 with probability ~1/3; one per-tensor scale
 *     U(0.8,1.2) / sqrt(2K/3), clipped into [0.02, 0.1]. sqrt(2K/3) is the
 *     standard deviation of a sum of K ternary terms with unit inputs, so the
 *     unclipped scale keeps activations near unit variance; the clip keeps the
 *     scales in the range of real BitNet files.
 *   - norm weights U(0.9, 1.1) (F32);
 *   - token embedding N(0, 0.02) (F16), drawn from a seeded 65536-entry table
 *     of normal samples so 1.19 GB files are written in seconds. */
#ifndef BN_SYNTH_H
#define BN_SYNTH_H

#include <stddef.h>
#include <stdint.h>

enum bn_synth_vocab {
    BN_SYNTH_VOCAB_BYTES = 0,       /* 256 byte tokens + a few merges + 3 specials */
    BN_SYNTH_VOCAB_LLAMA3 = 1       /* copied from a GGUF holding the LLaMA-3 vocab */
};

typedef struct bn_synth_config {
    int n_layer, n_embd, n_head, n_head_kv, n_ff, n_ctx;
    float rope_theta, rms_eps;
    int vocab;                      /* enum bn_synth_vocab */
    const char *vocab_file;         /* source of the LLaMA-3 vocab (GGUF) */
    const char *name;               /* general.name */
    uint64_t seed;

    /* Test hooks for deliberately malformed files (NULL/0 = off). */
    const char *arch;               /* general.architecture; NULL = bitnet-b1.58 */
    const char *omit;               /* leave out this key or tensor */
    const char *retype;             /* write this tensor with the type/shape below */
    uint32_t retype_type;
    uint32_t retype_n_dims;
    uint64_t retype_ne[2];
    int with_output_weight;         /* add an (unused) F16 output.weight, as the
                                       first "bitnet-25" upload had */
} bn_synth_config;

/* Fill c with a preset: "2b4t" (published shapes, LLaMA-3 vocab) or "small"
 * (2 layers, 256 wide, 4/2 heads, ff 768, byte vocab). Returns 0, or -1 for an
 * unknown name. vocab_file defaults to `default_vocab_file`. */
int bn_synth_preset(const char *name, const char *default_vocab_file, bn_synth_config *c);

/* Check the shapes a well-formed model needs (head counts, multiples of 128,
 * bounds). Returns 0 or -1 with a message. */
int bn_synth_validate(const bn_synth_config *c, char *err, size_t errlen);

/* Write the model to path. Returns 0 or -1 with a message. Does not validate
 * (the tests write malformed models through it on purpose). */
int bn_synth_write(const bn_synth_config *c, const char *path, char *err, size_t errlen);

/* The ternary values (-1/0/+1, n = K*M, row-major) and the scale that
 * bn_synth_write stores for the I2_S tensor `name` of a model with this seed. */
void bn_synth_ternary(uint64_t seed, const char *name, int K, int M, int8_t *w, float *scale);

#endif
