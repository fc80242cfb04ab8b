/* Set-up shared by the tests that run the engine on models written at test
 * time (linked into every tests/test_*.c): synthetic model files, models
 * and contexts that fail the test with the engine's reason, deterministic
 * token streams, the logits of every position, and comparisons of logits
 * (bit for bit, or in units of their spread). Every function here fails
 * the running cmocka test instead of returning an error. */
#ifndef HELPER_FIXTURES_H
#define HELPER_FIXTURES_H

#include <stddef.h>
#include <stdint.h>

#include "bitnet.h"
#include "synth.h"

/* "BN_BINARY_DIR/<name>-<pid>.gguf": a model file of this process, so
 * suites running side by side never share one. */
void fx_model_path(char *path, size_t n, const char *name);

/* bn_synth_write of c, exactly as it is, to path. */
void fx_synth_write(const char *path, const bn_synth_config *c);

/* Writes a synthetic model to path: the "small" preset (bitnet-b1.58, 2
 * layers, 256 wide, 4/2 heads, byte vocabulary, seed 42) with every field
 * that `over` sets (non-zero) in place of the preset's, e.g.
 *   fx_write_model(path, &(bn_synth_config){.n_ff = 256, .seed = 7}); */
void fx_write_model(const char *path, const bn_synth_config *over);

/* A model's dimensions as designated initializers of a bn_synth_config,
 * in its field order (layers, width, heads, KV heads, FFN width, context):
 *   fx_write_model(path, &(bn_synth_config){FX_DIMS(2, 256, 4, 2, 256, 320), .seed = 7}); */
#define FX_DIMS(layers, embd, heads, heads_kv, ff, ctx) \
    .n_layer = (layers), .n_embd = (embd), .n_head = (heads), .n_head_kv = (heads_kv), .n_ff = (ff), \
    .n_ctx = (ctx)

/* Loads path with this kernel (NULL: the dispatcher's choice) and head
 * (bn_model_params.head). */
bn_model *fx_load(const char *path, const char *kernel, int head);

/* A context of m with cp; a zero field means the default, as bitnet.h
 * documents for each, so a compound literal names just what a test sets:
 *   fx_context(m, (bn_context_params){.n_threads = 2, .n_outputs_max = n}) */
bn_context *fx_context(bn_model *m, bn_context_params cp);

/* bn_decode of t[0..n), last row of logits only. */
void fx_decode(bn_context *c, const int32_t *t, int n);

/* n token ids in [1, n_vocab) (never id 0): x = x * 1664525 + 1013904223
 * from x0, an id taken from each step's x. */
void fx_lcg_tokens(int32_t *t, int n, int n_vocab, uint32_t x0);
/* The same stream started at a hash of seed (seeds 1, 2, 3 ... differ). */
void fx_tokens(int32_t *t, int n, int n_vocab, uint32_t seed);

/* The tokens a context shift (keep, n_discard) leaves of t[0..n): the
 * first keep, then those from keep + n_discard on. Returns their count. */
int fx_tokens_after_shift(const int32_t *t, int n, int keep, int n_discard, int32_t *out);

/* Decodes t[0..n) in c, after what it holds, and returns the n rows of
 * logits (malloc'd, caller frees): one bn_decode keeping every row (c's
 * n_outputs_max must be >= n), or with by_token one bn_decode per token. */
float *fx_logits(bn_context *c, const int32_t *t, int n, int by_token);

/* The plain reference's logits of t[0..n) (helper_ref_forward.h), one
 * token at a time from position 0 (malloc'd, caller frees). */
float *fx_ref_logits(const bn_model *m, const int32_t *t, int n);

/* Fails the test unless a and b hold the same n floats bit for bit; the
 * message is the printf-style `what`, then the first differing index and
 * both values. */
void fx_same_bits(const float *a, const float *b, size_t n, const char *what, ...)
    __attribute__((format(printf, 4, 5)));

/* |got - ref| over n values: the largest and the mean, and the standard
 * deviation of ref (the unit the tolerances use: "0.25 sigma"). A NaN
 * difference fails the test. */
typedef struct fx_diff {
    double sigma, max, mean;
} fx_diff;
fx_diff fx_compare(const float *ref, const float *got, size_t n);

#endif
