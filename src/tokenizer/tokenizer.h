/* Tokenizers built from the GGUF vocabulary: byte-level BPE (LLaMA-3,
 * Falcon3 families; tokenizer.ggml.model = gpt2) and SentencePiece as
 * llama.cpp runs it (LLaMA-2 / 1bitLLM; tokenizer.ggml.model = llama).
 * The public entry points (bn_tokenize, bn_token_to_bytes, bn_detok_*,
 * bn_detokenize, bn_tokenizer_load) are declared in bitnet.h; this header
 * is for the model loader, the chat code and the tests. */
#ifndef BN_TOKENIZER_H
#define BN_TOKENIZER_H

#include "bitnet.h"
#include "gguf.h"

/* BPE pre-tokenizers (docs/TOKENIZER.md, Pre-tokenizer selection). FALCON3 and
 * FALCON_E share one splitter (their regex lists are identical); NONE is a
 * SentencePiece vocabulary, which splits nothing. */
enum bn_pre_type {
    BN_PRE_LLAMA3 = 0, BN_PRE_DEFAULT = 1, BN_PRE_FALCON3 = 2, BN_PRE_FALCON_E = 3,
    BN_PRE_NONE = 4
};

/* Build from the tokenizer.* keys of a validated GGUF. pre_override: NULL to
 * follow tokenizer.ggml.pre (absent + LLaMA-3 vocabulary -> llama3), or one
 * of the names bn_pre_from_name knows (ignored for SentencePiece). The
 * tokenizer copies what it needs: the file may be closed afterwards.
 * Returns NULL with a message in err. */
bn_tokenizer *bn_tokenizer_from_gguf(const gguf_file *f, const char *pre_override,
                                     char *err, size_t errlen);
enum bn_pre_type bn_tokenizer_pre(const bn_tokenizer *t);
/* The pre-tokenizer a tokenizer.ggml.pre / --pre-tokenizer name selects:
 * llama3, llama-bpe, llama-v3, default, falcon3, falcon_e. -1 if unknown. */
int bn_pre_from_name(const char *s, size_t n);
/* Canonical name of a pre-tokenizer ("llama3", "default", "falcon3",
 * "falcon_e", "none"). */
const char *bn_pre_name(enum bn_pre_type pre);
/* tokenizer.chat_template as stored in the file (NUL-terminated copy), or
 * NULL when the file has none. */
const char *bn_tokenizer_chat_template(const bn_tokenizer *t);
/* 1 for a SentencePiece vocabulary, 0 for byte-level BPE. */
int bn_tokenizer_is_spm(const bn_tokenizer *t);

#endif
