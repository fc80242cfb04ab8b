/* Synthetic BitNet i2_s GGUF models with seeded random weights: the engine
 * behind tools/bitnet-synth and the tests' model fixtures.
 *
 * Two layouts:
 *   - bitnet-b1.58 / bitnet-25 (the default): the published 2B4T file exactly
 *     (docs/FORMAT.md, "2B4T keys" in order, "2B4T tensors" names and
 *     types, tensors in the published order: token embedding, blocks in
 *     lexicographic order of the block number, output norm);
 *   - the family (`bitnet`, `llama`): what bitnet.cpp's converter and
 *     llama-quantize write (docs/FORMAT.md, Metadata keys, Tensors per
 *     architecture, Head and embedding types): token_embd, blocks in
 *     order (attn_norm, attn_q, attn_k, attn_v, [attn_sub_norm],
 *     attn_output, ffn_norm, ffn_gate, ffn_up, [ffn_sub_norm], ffn_down),
 *     output_norm, [output]; the head tensor F16 when n_embd % 256 == 0,
 *     else Q8_0; a token_embd that is not the head F16.
 *
 * Weights (all from one splitmix64 stream per tensor, seeded by the model seed
 * and the tensor name, so a tensor's content does not depend on the others):
 *   - ternary: each weight -1/0/+1 with probability ~1/3; one per-tensor scale
 *     U(0.8,1.2) / sqrt(2K/3), clipped into [0.02, 0.1]. sqrt(2K/3) is the
 *     standard deviation of a sum of K ternary terms with unit inputs, so the
 *     unclipped scale keeps activations near unit variance; the clip keeps the
 *     scales in the range of real BitNet files. The stream is flat (rows of
 *     any K, docs/FORMAT.md, Unaligned I2_S rows).
 *   - norm weights U(0.9, 1.1) (F32, or F16 with the norm_f16 hook);
 *   - embedding / output tables N(0, 0.02), drawn from a seeded
 *     65536-entry table of normal samples so 1-3 GB files are written in
 *     seconds: F16 and F32 as drawn, Q8_0 quantized as ggml's reference
 *     quantizer does, Q6_K as random blocks of the same scale;
 *   - test hooks: biases N(0, 0.02), projection scales U(0.5, 1.5). */
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
    int vocab_size;                 /* byte vocab: padded with [PADn] tokens to this
                                       many (0: no padding) */
    const char *name;               /* general.name */
    uint64_t seed;

    /* The architecture: NULL = bitnet-b1.58 (the published layout); "bitnet"
     * or "llama" = the family layout (any other name, for tests, too). */
    const char *arch;
    int head_dim;                   /* 0: n_embd / n_head; else written as
                                       attention.key_length and value_length */
    int untied;                     /* family: write output.weight (the head) */
    const char *head_type;          /* family: the head tensor's type, "F16", "F32",
                                       "Q8_0" or "Q6_K"; NULL = llama-quantize's rule */
    const char *embd_type;          /* family, untied: token_embd's type; NULL = F16 */

    /* Test hooks (NULL/0 = off). */
    const char *omit;               /* leave out this key or tensor */
    const char *retype;             /* write this tensor with the type/shape below */
    uint32_t retype_type;
    uint32_t retype_n_dims;
    uint64_t retype_ne[2];
    int with_output_weight;         /* add an (unused) F16 output.weight, as the
                                       first "bitnet-25" upload had */
    int with_biases;                /* family: blk.N.<proj>.bias where the graph adds
                                       one (bitnet: attention only; llama: all) */
    int with_scales;                /* family: blk.N.<proj>.scale for every projection */
    int norm_f16;                   /* family: norms stored as F16 */
    float attn_scale;               /* family: write <arch>.attention.scale when > 0 */
} bn_synth_config;

/* Fill c with a preset (bn_synth_preset_names lists them): "2b4t"
 * (published shapes, LLaMA-3 vocab), "small" (2 layers, 256 wide, 4/2
 * heads, ff 768, byte vocab), every published family shape ("large", "3b",
 * "llama3-8b", "falcon3-1b" ... "falcon3-10b", "falcon-e-1b", "falcon-e-3b")
 * and small test models of each architecture ("small-bitnet",
 * "small-llama", "small-llama-untied"). Returns 0, or -1 for an unknown
 * name. vocab_file defaults to `default_vocab_file`. */
int bn_synth_preset(const char *name, const char *default_vocab_file, bn_synth_config *c);
/* "2b4t, small, ...": the preset names, for usage messages. */
const char *bn_synth_preset_names(void);

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
