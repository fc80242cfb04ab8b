/* Internal layout of bn_tokenizer, shared by tokenizer.c (loading, API),
 * tok_bpe.c (BPE merging), tok_spm.c (SentencePiece merging), tok_pretok.c
 * (splitting) and tok_detok.c (decoding). */
#ifndef BN_TOK_INTERNAL_H
#define BN_TOK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer.h"

/* GGUF tokenizer.ggml.token_type values. */
enum { BN_TT_NORMAL = 1, BN_TT_UNKNOWN = 2, BN_TT_CONTROL = 3, BN_TT_USER_DEFINED = 4,
       BN_TT_UNUSED = 5, BN_TT_BYTE = 6 };

/* Open-addressing table: byte string -> symbol id. Each slot keeps the
 * upper hash bits so that most misses never touch the token bytes. */
typedef struct bn_strmap_slot {
    uint32_t tag;                   /* hash >> 32 */
    int32_t id;                     /* -1 = empty */
    uint32_t off, len;              /* copy of the symbol's bytes location */
} bn_strmap_slot;

typedef struct bn_strmap {
    bn_strmap_slot *slot;
    uint32_t mask;
} bn_strmap;

/* Open-addressing table: (left id, right id) -> merge rank and result. */
typedef struct bn_merge_slot {
    uint64_t key;                   /* (left << 32 | right) + 1; 0 = empty */
    uint32_t rank;
    int32_t result;                 /* symbol id of left+right */
} bn_merge_slot;

/* Byte trie of special-token texts for leftmost-longest matching. */
typedef struct bn_trie_node {
    int32_t child;                  /* first child, -1 none */
    int32_t sibling;                /* next sibling, -1 none */
    int32_t token;                  /* token ending here, -1 none */
    uint8_t byte;
    uint8_t always;                 /* USER_DEFINED: matched even without parse_special */
} bn_trie_node;

enum bn_tok_model { BN_TOK_BPE = 0, BN_TOK_SPM = 1 };

struct bn_tokenizer {
    int model;                      /* enum bn_tok_model */
    int n_vocab;
    int n_sym;                      /* n_vocab + merge intermediates absent from the vocab */
    uint8_t *type;                  /* token_type per vocab id */
    char *bytes;                    /* BPE: raw bytes of every symbol; SPM: the piece text
                                       as stored (spaces as U+2581), back to back */
    uint32_t *off, *len;            /* per symbol (n_sym) */
    bn_strmap bpe;                  /* BPE: raw bytes -> id of BPE-reachable symbols;
                                       SPM: piece text -> id, every token (last id wins) */
    int32_t byte_id[256];           /* BPE: single-byte token; SPM: <0xXX> byte-fallback
                                       token (else the 1-byte piece); -1 if absent */

    float *score;                   /* SPM: score per piece (higher merges first) */
    uint32_t max_piece;             /* SPM: longest piece in bytes (longer pairs: no lookup) */
    uint64_t *spm_join;             /* SPM: set of (code point, next code point) pairs that
                                       occur inside some piece; key (a << 32 | b) + 1 */
    uint32_t spm_join_mask;
    int add_space_prefix;           /* SPM: " " before the first fragment and after specials */

    bn_merge_slot *merge;
    uint32_t merge_mask;

    bn_trie_node *trie;
    int n_trie;
    uint8_t special_first[256];     /* bytes a special text can start with */

    enum bn_pre_type pre;
    int ignore_merges;              /* whole-piece vocab hit first (LLaMA-3) */
    int add_bos, add_eos;
    int32_t bos, eos, eot, eom, unk;
    int32_t eog[16];
    int n_eog;
    char *chat_template;            /* copy of tokenizer.chat_template, NULL if none */
};

/* 64-bit hash of a byte string: low bits index, high bits tag. */
uint64_t bn_tok_hash(const unsigned char *s, size_t n);
/* Id of a BPE symbol with these bytes, or -1 (_h: with its bn_tok_hash). */
int32_t bn_tok_find(const bn_tokenizer *t, const unsigned char *s, size_t n);
int32_t bn_tok_find_h(const bn_tokenizer *t, const unsigned char *s, size_t n, uint64_t h);

/* Reusable scratch for bn_bpe_merge (grown on demand). */
typedef struct bn_bpe_scratch {
    int32_t *sym, *prev, *next;
    uint32_t *start, *slen;
    struct bn_bpe_pair *heap;
    size_t cap, heap_cap, heap_n;
} bn_bpe_scratch;

/* Sink for token ids: stores up to max, counts everything. */
typedef struct bn_id_sink {
    int32_t *out;
    int max;
    long long n;
} bn_id_sink;

static inline void bn_sink_put(bn_id_sink *s, int32_t id)
{
    if (s->n < s->max) s->out[s->n] = id;
    s->n++;
}

/* Byte-level BPE merging of one pre-tokenized piece of n >= 2 bytes (the
 * whole-piece vocabulary hit is the caller's business). Emits at most n ids.
 * Returns 0, or -1 when out of memory. */
int bn_bpe_merge(const bn_tokenizer *t, bn_bpe_scratch *sc, const unsigned char *p, size_t n,
                 bn_id_sink *sink);
void bn_bpe_scratch_free(bn_bpe_scratch *sc);

/* Per-call cache of merged pieces (tok_cache.c). */
typedef struct bn_piece_cache {
    struct bn_cache_slot *slot;     /* NULL = caching off */
    uint32_t mask, used;
    int32_t *ids;
    size_t ids_len, ids_cap;
    unsigned char *keys;
    size_t keys_len, keys_cap;
} bn_piece_cache;
int bn_cache_init(bn_piece_cache *c, size_t text_len);
void bn_cache_free(bn_piece_cache *c);
const int32_t *bn_cache_get(const bn_piece_cache *c, const unsigned char *p, size_t n, uint64_t h,
                            int *n_ids);
void bn_cache_put(bn_piece_cache *c, const unsigned char *p, size_t n, uint64_t h,
                  const int32_t *ids, int n_ids);

/* Reusable scratch for bn_spm_fragment (grown on demand, once per fragment). */
typedef struct bn_spm_scratch {
    unsigned char *text;            /* the escaped fragment */
    uint32_t *start, *len;          /* per symbol; len 0 = merged away */
    int32_t *prev, *next;
    struct bn_spm_pair *heap;
    size_t text_cap, cap, heap_cap, heap_n;
} bn_spm_scratch;

/* SentencePiece of one raw-text fragment (valid UTF-8, no special tokens):
 * spaces become U+2581 (and one is put in front when `prefix`), then the
 * characters merge by piece score; pieces missing from the vocabulary fall
 * back to <0xXX> tokens. cache: NULL, or the call's cache of segments.
 * Returns 0, or -1 when out of memory. */
int bn_spm_fragment(const bn_tokenizer *t, bn_spm_scratch *sc, bn_piece_cache *cache,
                    const unsigned char *s, size_t n, int prefix, bn_id_sink *sink);
void bn_spm_scratch_free(bn_spm_scratch *sc);
/* Builds t->spm_join from the pieces (at load). Returns 0, -1 out of memory. */
int bn_spm_build_joins(bn_tokenizer *t);

/* Pre-tokenizers: split the code points cp[0..n) of one text fragment into
 * pieces, calling emit(ctx, start, end) (code point indices) in order. */
typedef int (*bn_piece_fn)(void *ctx, size_t start, size_t end);
int bn_pretok_llama3(const uint32_t *cp, size_t n, bn_piece_fn emit, void *ctx);
int bn_pretok_default(const uint32_t *cp, size_t n, bn_piece_fn emit, void *ctx);
int bn_pretok_falcon3(const uint32_t *cp, size_t n, bn_piece_fn emit, void *ctx);

#endif
