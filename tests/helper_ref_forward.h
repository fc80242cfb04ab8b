/* A plain, slow reference of the forward pass of every architecture the
 * engine runs (docs/NUMERICS.md: "bitnet-b1.58 graph", "bitnet graph",
 * "llama graph"), written straight from the docs with bitnet.cpp's
 * single-token numerics (f16 KV cache; Q, the softmax probabilities and an
 * F16 head's hidden state rounded to f16; a Q8_0, Q6_K or F32 head as ggml's
 * x86 build computes it). It reads the model's tensors from the file and
 * decodes them itself (I2_S by flat index, so rows of any K; embedding and
 * head tables of every type), never touching the kernel table, so the
 * engine can be checked against it without ../shared. */
#ifndef HELPER_REF_FORWARD_H
#define HELPER_REF_FORWARD_H

#include <stdint.h>

#include "model.h"

typedef struct ref_forward ref_forward;

/* A reference evaluator for up to n_ctx positions; NULL when out of memory. */
ref_forward *ref_forward_new(const bn_model *m, int n_ctx);
void ref_forward_free(ref_forward *r);

/* Evaluates `token` at the next position and writes n_vocab logits.
 * Returns 0, or -1 when the context is full or the id is out of range. */
int ref_forward_token(ref_forward *r, int32_t token, float *logits);

#endif
