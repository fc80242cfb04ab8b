/* Byte-level BPE tokenizer (LLaMA-3 family) built from the GGUF vocabulary.
 * The public entry points (bn_tokenize, bn_token_to_bytes, bn_detok_*) are
 * declared in bitnet.h; this header is for the loader and the tests. */
#ifndef BN_TOKENIZER_H
#define BN_TOKENIZER_H

#include "bitnet.h"
#include "gguf.h"

enum bn_pre_type { BN_PRE_LLAMA3 = 0, BN_PRE_DEFAULT = 1 };

/* Build from the tokenizer.* keys of a validated GGUF. pre_override: NULL to
 * follow tokenizer.ggml.pre (absent + LLaMA-3 vocabulary -> llama3), or
 * "llama3" / "default". Strings may point into the mapping, which must
 * outlive the tokenizer. Returns NULL with a message in err. */
bn_tokenizer *bn_tokenizer_from_gguf(const gguf_file *f, const char *pre_override,
                                     char *err, size_t errlen);
void bn_tokenizer_free(bn_tokenizer *t);
enum bn_pre_type bn_tokenizer_pre(const bn_tokenizer *t);

#endif
