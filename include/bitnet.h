/* bitnet.c public API: load a BitNet b1.58 i2_s GGUF, tokenize, evaluate,
 * sample. Every function that can fail takes (char *err, size_t errlen) and
 * writes a one-line reason there (without the "bitnet: error:" prefix). */
#ifndef BITNET_H
#define BITNET_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BN_VERSION "0.1.0"

typedef struct bn_model bn_model;
typedef struct bn_context bn_context;
typedef struct bn_tokenizer bn_tokenizer;
typedef struct bn_sampler bn_sampler;

/* ---- model -------------------------------------------------------------- */
typedef struct bn_hparams {
    char arch[32];                  /* "bitnet-b1.58", "bitnet-25", "bitnet" or "llama" */
    int n_vocab, n_ctx_train, n_embd, n_layer, n_ff;
    int n_head, n_head_kv, head_dim, n_rot;
    float rope_theta, rms_eps;
} bn_hparams;

enum bn_head_type {                 /* storage of an F16 LM head (other types are used as stored) */
    BN_HEAD_DEFAULT = 0,            /* whatever the engine measures best */
    BN_HEAD_F16 = 1,                /* the file's F16: exact parity with bitnet.cpp */
    BN_HEAD_Q8 = 2,                 /* int8, one scale per 32 (smaller, faster decode) */
    BN_HEAD_EXACT = 3               /* the Q8 table screens, the F16 rows the sampler
                                       can pick are recomputed: the F16 head's tokens
                                       at about the Q8 head's bytes (the default above
                                       32 MB; see bn_context_set_sampler) */
};

typedef struct bn_model_params {
    const char *kernel;             /* NULL/"" = best for this CPU (or $BITNET_KERNEL) */
    int vocab_only;                 /* 1: tokenizer only, weights never touched */
    int head;                       /* enum bn_head_type */
    const char *pre_tokenizer;      /* NULL = from the file; "llama3" or "default" */
} bn_model_params;

bn_model_params bn_model_default_params(void);
bn_model *bn_model_load(const char *path, const bn_model_params *p, char *err, size_t errlen);
void bn_model_free(bn_model *m);
/* Locks in RAM the memory the model made at load (its re-laid weights and
 * quantized head), as llama-cli's --mlock: 0, or -1 with the reason (often
 * the RLIMIT_MEMLOCK limit); the model works either way. */
int bn_model_lock_memory(bn_model *m, char *err, size_t errlen);
const bn_hparams *bn_model_hparams(const bn_model *m);
const bn_tokenizer *bn_model_tokenizer(const bn_model *m);
const char *bn_model_kernel_name(const bn_model *m);
uint64_t bn_model_file_size(const bn_model *m);
uint64_t bn_model_n_params(const bn_model *m);

/* What a loaded model holds and touches, for logs, `bitnet info` and the
 * bench's bytes-per-token figure. Sizes in bytes; a vocab_only model has
 * ternary_bytes and head_bytes 0 (the others are those of a full load). */
typedef struct bn_model_desc {
    const char *arch;               /* hparams.arch */
    const char *head;               /* LM head storage in use: "f16", "q8" (made at load),
                                       "exact" (q8 screen + f16 rows), "q8_0", "q6_k",
                                       "f32" (as stored); "none" when vocab_only */
    const char *kernel;             /* kernel variant in use; "none" when vocab_only */
    int vocab_only;
    uint64_t file_bytes;            /* the GGUF file */
    uint64_t n_params;
    uint64_t ternary_bytes;         /* ternary weights repacked in memory */
    uint64_t head_bytes;            /* LM head bytes read per generated token (exact:
                                       the screen's; plus K * 2 per rescored row) */
    uint64_t embd_bytes;            /* the token embedding table (one row read per token) */
    uint64_t norm_bytes;            /* norm weights (copied out of the file) */
    uint64_t kv_bytes_per_pos;      /* K + V cache bytes per position, all layers */
} bn_model_desc;
void bn_model_describe(const bn_model *m, bn_model_desc *out);
/* `bitnet info`: file, hyperparameters, metadata, tensor table, kernel and
 * memory plan, human-readable. Reads the header only, no tensor data. */
void bn_model_print_info(const bn_model *m, FILE *out);

/* ---- kernels and threads --------------------------------------------------- */
/* Names of the kernel variants compiled in and usable on this CPU, the
 * reference ("ref") first, most capable last. Fills up to max; returns the
 * count. The names stay valid for the life of the process. */
int bn_kernel_variants(const char **names, int max);
/* The variant a model load with bn_model_params.kernel = name uses: NULL or
 * "" = the best for this CPU, or $BITNET_KERNEL when that is set. Returns its
 * name, or NULL with the reason in err (unknown, or this CPU lacks it). */
const char *bn_kernel_resolve(const char *name, char *err, size_t errlen);
int bn_physical_cores(void);        /* the default thread count */

/* ---- tokenizer ------------------------------------------------------------ */
/* Byte-level BPE (tokenizer.ggml.model gpt2: LLaMA-3, Falcon3) or
 * SentencePiece (llama: LLaMA-2 / 1bitLLM), as llama.cpp runs them. */

/* The tokenizer alone, from any GGUF with tokenizer.* keys (no weights or
 * hyperparameters needed). pre_tokenizer as in bn_model_params. */
bn_tokenizer *bn_tokenizer_load(const char *path, const char *pre_tokenizer,
                                char *err, size_t errlen);
void bn_tokenizer_free(bn_tokenizer *t);    /* only for bn_tokenizer_load's */

int bn_vocab_size(const bn_tokenizer *t);
int32_t bn_token_bos(const bn_tokenizer *t);
int32_t bn_token_eos(const bn_tokenizer *t);
int32_t bn_token_eot(const bn_tokenizer *t);        /* -1 when the vocab has none */
int bn_token_is_eog(const bn_tokenizer *t, int32_t id);
int bn_add_bos(const bn_tokenizer *t);              /* tokenizer.ggml.add_bos_token */
/* Look up a token by its exact text (specials included); -1 if absent. */
int32_t bn_token_lookup(const bn_tokenizer *t, const char *text, size_t len);

/* Tokenize len bytes of text (NUL is an ordinary byte; invalid UTF-8 becomes
 * U+FFFD per bad byte). Writes up to max ids and returns the total count
 * (which may exceed max: call again with a larger buffer), or -1 on error. */
int bn_tokenize(const bn_tokenizer *t, const char *text, size_t len,
                int add_bos, int parse_special, int32_t *out, int max);
/* Raw bytes of one token: control tokens give "" unless special != 0.
 * Returns the byte count (may exceed cap: nothing is truncated silently,
 * the caller retries), never negative for a valid id; -1 for a bad id. */
int bn_token_to_bytes(const bn_tokenizer *t, int32_t id, int special, char *buf, int cap);

/* Streaming decoder: feed ids, get bytes that are complete UTF-8 sequences;
 * incomplete trailing sequences are held back until the next token. */
typedef struct bn_detok {
    const bn_tokenizer *tok;
    unsigned char pending[8];
    int n_pending;
} bn_detok;
void bn_detok_init(bn_detok *d, const bn_tokenizer *t);
/* Appends printable bytes for `id` to out (cap bytes); returns count written. */
int bn_detok_push(bn_detok *d, int32_t id, char *out, int cap);
/* Flushes held-back bytes (each incomplete sequence as U+FFFD). */
int bn_detok_flush(bn_detok *d, char *out, int cap);

/* Whole-sequence decoding (llama.cpp's llama_detokenize): the raw bytes of
 * the pieces, except that a SentencePiece text loses the leading space of
 * its first piece unless it starts with BOS. Flags: REMOVE_SPECIAL drops a
 * leading BOS / trailing EOS the tokenizer adds itself, UNPARSE_SPECIAL
 * prints control tokens' text. Returns the byte count (may exceed cap: then
 * nothing is promised about out, call again with more room), -1 for a bad id. */
enum { BN_DETOK_REMOVE_SPECIAL = 1, BN_DETOK_UNPARSE_SPECIAL = 2 };
int bn_detokenize(const bn_tokenizer *t, const int32_t *ids, int n, int flags,
                  char *out, int cap);

/* ---- chat --------------------------------------------------------------------- */
/* A conversation in the format the model's tokenizer.chat_template names,
 * recognised by its markers as llama.cpp does: 2B4T ("User: ...<|eot_id|>
 * Assistant: "), LLaMA-3 (<|start_header_id|>), Falcon3 (<|user|>,
 * <|assistant|>), ChatML (<|im_start|>). It holds every token in the order
 * the model is fed, and how many are already in the KV cache: decode exactly
 * bn_chat_pending(), then bn_chat_mark_fed(). */
typedef struct bn_chat bn_chat;
typedef enum { BN_ROLE_SYSTEM, BN_ROLE_USER, BN_ROLE_ASSISTANT } bn_chat_role;

/* Starts a conversation: BOS (when the vocabulary adds one), then the
 * system message when system != NULL. NULL with a one-line reason when the
 * model has no chat template or one of an unknown format. */
bn_chat *bn_chat_new(const bn_tokenizer *t, const char *system, char *err, size_t errlen);
/* The same in a format the caller names (llama-cli's --chat-template):
 * tmpl is one of llama.cpp's built-in names "bitnet" (2B4T), "llama3",
 * "falcon3", "chatml", or a template's text, recognised by its markers as
 * the file's would be; NULL means the model's own template (bn_chat_new). */
bn_chat *bn_chat_new_template(const bn_tokenizer *t, const char *tmpl, const char *system,
                              char *err, size_t errlen);
void bn_chat_free(bn_chat *c);
/* "2B4T", "LLaMA-3", "Falcon3" or "ChatML". */
const char *bn_chat_format_name(const bn_chat *c);
/* Appends a whole message of any role, closed as the format closes it. */
int bn_chat_add_message(bn_chat *c, bn_chat_role role, const char *content,
                        char *err, size_t errlen);
/* Appends a user message and opens the assistant's reply. */
int bn_chat_add_user_turn(bn_chat *c, const char *content, char *err, size_t errlen);
/* Takes back the user turn added last while none of it is fed (a message
 * that cannot fit in the context): the conversation is as it was before
 * bn_chat_add_user_turn. Returns 0, or -1 when there is none to take back. */
int bn_chat_undo_user_turn(bn_chat *c);
/* Records one sampled token of the open reply; an end-of-generation token
 * (bn_token_is_eog) closes it. */
int bn_chat_add_reply_token(bn_chat *c, int32_t id, char *err, size_t errlen);
/* Closes a reply no end-of-generation token closed (interrupt, token budget,
 * full context) with the format's end-of-turn token. No-op otherwise. */
int bn_chat_end_reply(bn_chat *c, char *err, size_t errlen);
int bn_chat_n_pending(const bn_chat *c);
const int32_t *bn_chat_pending(const bn_chat *c);
void bn_chat_mark_fed(bn_chat *c);

/* ---- context ---------------------------------------------------------------- */
#define BN_MAX_CTX (1 << 20)        /* tokens; the KV memory is sized up front */
/* The KV cache's element type (llama.cpp's -ctk / -ctv). f16 is the default
 * and the one that matches bitnet.cpp's logits; q8_0 keeps 32 int8 values
 * and an f16 scale per block (34 bytes per 32 values, 0.53x the bytes) and
 * needs a head_dim that is a multiple of 32 (docs/NUMERICS.md, "Quantized
 * KV cache"). */
enum bn_kv_type {
    BN_KV_F16 = 0,
    BN_KV_Q8_0 = 1
};

typedef struct bn_context_params {
    int n_ctx;                      /* 0 = the model's context_length; longer is
                                       allowed (positions past the training
                                       length extrapolate), up to BN_MAX_CTX */
    int n_threads;                  /* 0 = number of physical cores */
    int n_batch;                    /* prompt tokens per forward batch; 0 = 512 */
    int n_outputs_max;              /* logit rows one bn_decode may keep with
                                       all_logits (perplexity, logits --all);
                                       0 = 1 (last token only). Sized up front. */
    int type_k, type_v;             /* enum bn_kv_type of the K and V caches;
                                       0 = f16 */
} bn_context_params;

/* How prompt batches of >= 2 tokens round (bn_context_set_numerics). */
enum bn_batch_numerics {
    BN_NUMERICS_DECODE = 0,         /* the default: one set of numerics, a batch gives
                                       the same logits as token by token */
    BN_NUMERICS_BITNET_CPP = 1      /* as bitnet.cpp's prompt batch: float32 attention
                                       probabilities, tinyBLAS FMA order for P·V and
                                       for an F16 head keeping >= 2 rows (to compare
                                       with its outputs) */
};

bn_context_params bn_context_default_params(void);
bn_context *bn_context_new(bn_model *m, const bn_context_params *p, char *err, size_t errlen);
void bn_context_free(bn_context *c);
int bn_context_n_ctx(const bn_context *c);
int bn_context_n_past(const bn_context *c);        /* tokens in the KV cache */
int bn_context_n_threads(const bn_context *c);
/* Bytes of K and V cache per position, all layers, at the context's types. */
uint64_t bn_context_kv_bytes_per_pos(const bn_context *c);
/* "f16", "q8_0" (NULL for an unknown type), and the type of a name (-1 for
 * an unknown one): the names of llama.cpp's --cache-type-k/v. */
const char *bn_kv_type_name(int type);
int bn_kv_type_from_name(const char *name);
void bn_context_reset(bn_context *c);              /* empty the KV cache */
/* Keeps the first n_keep tokens of the KV cache and forgets the rest, so a
 * prompt whose first n_keep tokens are those decodes only what follows
 * (llama-server's prompt cache): with the default numerics the logits are
 * then the bits of decoding the whole prompt afresh. 0 empties the cache.
 * Returns 0, or -1 with a message (n_keep < 0 or > n_past). */
int bn_context_truncate(bn_context *c, int n_keep, char *err, size_t errlen);
/* Chooses the batch numerics (enum bn_batch_numerics) for the following
 * bn_decode calls. Returns 0, or -1 with a message for an unknown value. */
int bn_context_set_numerics(bn_context *c, int numerics, char *err, size_t errlen);

/* Evaluate n tokens at positions n_past .. n_past+n-1 (prompt batches use the
 * GEMM kernels, n == 1 the GEMV kernels; both give the same numbers, except
 * with BN_NUMERICS_BITNET_CPP, where each forward batch of >= 2 tokens (up
 * to n_batch of them) rounds like bitnet.cpp's prompt batch).
 * Logits are kept for the last token, or for every token when all_logits
 * (then n must be <= n_outputs_max).
 * Returns 0, or -1 with a message (e.g. context full) and the cache untouched.
 * The calling thread runs part of the work: give a thread of your own that
 * calls bn_decode (or bn_decode_multi) a stack of BN_DECODE_STACK bytes, as
 * the library's workers have (glibc's default; musl's 128 KB is too small). */
#define BN_DECODE_STACK ((size_t)8 << 20)
int bn_decode(bn_context *c, const int32_t *tokens, int n, int all_logits,
              char *err, size_t errlen);
/* Context shift, as llama-cli does when the context is full (docs/CHAT.md,
 * Context shift): removes the cells of positions [keep, keep + n_discard)
 * from the KV cache and moves the later ones down by n_discard positions,
 * their cached K re-rotated by RoPE to the new positions (docs/NUMERICS.md,
 * Context shift); n_past goes down by n_discard. The kept tokens need no
 * re-evaluation; the logits of the last bn_decode stay as they were.
 * Returns 0, or -1 with a message (keep < 0, n_discard < 1, or
 * keep + n_discard > n_past) and the cache untouched. */
int bn_context_shift(bn_context *c, int keep, int n_discard, char *err, size_t errlen);
/* Logits of row i of the last bn_decode (i = 0 .. n-1 with all_logits,
 * else only the last row: pass -1). n_vocab floats. With an exact head
 * (BN_HEAD_EXACT) and a sampler or top_k set below, only the logits that
 * sampler can read are exact: the largest top_k (in value and order) and the
 * ids asked for; every other entry is a smaller, screened value. */
const float *bn_get_logits(const bn_context *c, int i);

/* Session files (llama-cli's --prompt-cache; docs/FORMAT.md, Session file):
 * the first n_tokens cells of the KV cache and the ids of their tokens, in
 * a layout of their own, bound to the model, the K/V cache types and the
 * batch numerics that computed them (any n_ctx, n_batch, thread count or
 * kernel variant may load them).
 * Save: n_tokens <= n_past, tokens[i] the token of cell i. The file is
 * written beside path and renamed over it, so a reader never sees half a
 * file and a failed save leaves the old one. Returns 0, or -1 with the
 * reason. */
int bn_session_save(const bn_context *c, const char *path, const int32_t *tokens, int n_tokens,
                    char *err, size_t errlen);
/* Load: replaces the context's cache with the file's cells; the ids go to
 * tokens[0 .. *n_tokens) (room for cap). Then n_past = *n_tokens and there
 * are no logits: decode at least one more token (bn_context_truncate to
 * re-decode the last one). With the default numerics the logits are then
 * those of decoding every token afresh, bit for bit. A file of another
 * model, other cache types or numerics, more tokens than n_ctx or cap, or
 * one truncated or corrupt: -1 with the reason, and the context is empty. */
int bn_session_load(bn_context *c, const char *path, int32_t *tokens, int cap, int *n_tokens,
                    char *err, size_t errlen);

/* ---- several sequences (continuous batching) -------------------------------- */
/* Another sequence on base's model: a KV cache, a position and logits of its
 * own, sized and typed like base's (n_ctx, n_outputs_max, type_k/v), while the batch scratch and
 * the thread pool are base's (no second copy); it starts with base's
 * numerics choice.
 * Every call above works on it as on any context. Contexts that share a
 * base must be used from one thread at a time, and freed before the base.
 * NULL with a message on out of memory. */
bn_context *bn_context_new_sequence(bn_context *base, char *err, size_t errlen);
/* One token of each of n different sequences in one forward pass: the
 * weights are read once for all n rows, while each row stores its K/V in
 * its own context's cache at that context's n_past and attends that cache
 * only. Each context's logits and n_past are then exactly those that
 * bn_decode(ctxs[i], &tokens[i], 1, 0, ...) gives: the same bits, whatever
 * the other rows are. The first context's scratch and
 * pool run the pass, so n <= its n_batch and its n_outputs_max; the
 * contexts must be distinct, of one model and one n_ctx, none of them
 * full. Returns 0, or -1 with a message and every context untouched. */
int bn_decode_multi(bn_context *const *ctxs, const int32_t *tokens, int n,
                    char *err, size_t errlen);

/* The exact head (docs/NUMERICS.md, Exact head): the logits the following
 * bn_decode calls must compute as the F16 head does. top_k: the largest
 * top_k (1 for greedy; <= 0: every logit, the default); ids: rows the caller
 * reads or changes besides (penalised ids; banned ids it sets to -inf, which
 * then leave top_k others exact), copied. Only a single row of logits per
 * bn_decode is screened (all_logits with n >= 2 computes every row whole).
 * Without an exact head this only records the request. Returns 0, or -1
 * with a message (n_ids < 0 or > n_vocab, ids NULL with n_ids > 0). */
int bn_context_set_exact_head(bn_context *c, int top_k, const int32_t *ids, int n_ids,
                              char *err, size_t errlen);
/* Ties a sampler to the context: every bn_decode reads from it what
 * bn_sampler_logits_needed says (its history as it is then: accept a token
 * before decoding it), which replaces top_k above and adds to the ids, so
 * bn_sampler_sample gives the F16 head's tokens. NULL unties (do so before
 * freeing the sampler); then top_k above applies again. */
void bn_context_set_sampler(bn_context *c, const bn_sampler *s);

/* What the head has done since the context was made (a screened row is one
 * token's logits computed by screening; rescored rows are the F16 rows
 * recomputed for them). */
typedef struct bn_head_stats {
    uint64_t screened_rows;         /* logit rows screened, then rescored */
    uint64_t rescored_rows;         /* F16 table rows recomputed for them */
    uint64_t full_rows;             /* logit rows an exact head computed whole from F16 */
} bn_head_stats;
void bn_context_head_stats(const bn_context *c, bn_head_stats *out);

/* ---- sampler ----------------------------------------------------------------- */
typedef struct bn_sampler_params {
    uint32_t seed;                  /* BN_SEED_RANDOM = pick one (see bn_sampler_seed) */
    float temp;                     /* <= 0: greedy */
    int top_k;                      /* <= 0: off */
    float top_p;                    /* >= 1: off */
    float min_p;                    /* <= 0: off */
    float repeat_penalty;           /* 1: off */
    int repeat_last_n;
    float freq_penalty, presence_penalty;
} bn_sampler_params;
#define BN_SEED_RANDOM 0xFFFFFFFFu

bn_sampler_params bn_sampler_default_params(void);  /* llama-cli defaults (docs/CHAT.md, Sampling) */
bn_sampler *bn_sampler_new(const bn_sampler_params *p, int n_vocab);
void bn_sampler_free(bn_sampler *s);
uint32_t bn_sampler_seed(const bn_sampler *s);      /* the seed actually used */
void bn_sampler_reset(bn_sampler *s);               /* clear history, re-seed */
void bn_sampler_accept(bn_sampler *s, int32_t token); /* push into penalty history */
int32_t bn_sampler_sample(bn_sampler *s, const float *logits);
/* The logits bn_sampler_sample reads: returns how many of the largest (1
 * when greedy, top_k, or 0 for every logit: temp > 0 without top_k), and
 * sets *ids / *n_ids to the ids its penalties read (the window; n_ids 0
 * when no penalty is active). The pointer is valid until the next accept. */
int bn_sampler_logits_needed(const bn_sampler *s, const int32_t **ids, int *n_ids);
/* After bn_sampler_sample, llama-server's n_probs: up to max candidates,
 * best first, into ids/probs: those the draw chose from with their
 * probabilities (after penalties, top-k, top-p, min-p, temperature), then
 * the next ones of top-k with 0; greedy: the max largest penalized logits
 * and their softmax among themselves. Returns how many. */
int bn_sampler_candidates(bn_sampler *s, int max, int32_t *ids, float *probs);

/* ---- server ------------------------------------------------------------------ */
/* `bitnet serve`: an OpenAI-shaped HTTP server over a loaded model
 * (src/server/). */
typedef struct bn_serve_params {
    const char *host;               /* numeric IPv4 address; default 127.0.0.1 */
    int port;                       /* 0: any free port (the bound one is logged) */
    int n_slots;                    /* requests generated at the same time */
    int n_ctx;                      /* context per slot */
    int n_threads;                  /* threads of the forward pass (one pass serves
                                       every slot: continuous batching) */
    const char *api_key;            /* NULL: no key; else "Authorization: Bearer KEY" */
    const char *model_name;         /* the id /v1/models reports */
    int timeout_s;                  /* to receive a whole request, and idle keep-alive */
    int max_conns;                  /* open connections at once (503 beyond) */
    size_t max_body;                /* request body bytes (413 beyond) */
    int type_k, type_v;             /* KV cache types of every slot (enum bn_kv_type) */
    const char *chat_template;      /* NULL: the model's; else as bn_chat_new_template */
    int no_slots;                   /* 1: GET /slots answers 501 (llama-server's --no-slots) */
    const char *slot_save_path;     /* NULL: no slot save/restore; else an existing directory
                                       for POST /slots/ID?action=save|restore|erase */
} bn_serve_params;

/* Runs until SIGINT or SIGTERM. Logs to stderr, among them one line
 * "serve: listening on http://HOST:PORT" once it accepts connections.
 * Returns 0 after a clean stop, 1 on a start-up failure (one line
 * "bitnet: error: ..." printed). */
int bn_serve(bn_model *m, const bn_serve_params *p);


/* ---- kernel bench ------------------------------------------------------------ */
/* The kernel bench (`bitnet bench --kernels`): every weight format of the
 * kernel tables (kernels.h: ternary, F16, F16-tinyBLAS, Q8 head) on the
 * shapes where the forward pass uses it (the 2B4T projections; its LM
 * head), every wanted variant side by side. For one token the weights are
 * streamed from memory and compared with the machine's read bandwidth,
 * measured in the same run; ternary weights are also timed for a batch of
 * tokens. Prints Markdown tables to `out`. */
#define BN_BENCH_MAX_THREADS 8

typedef struct bn_bench_kernels_opts {
    int threads[BN_BENCH_MAX_THREADS];  /* thread counts to run, e.g. {1, 2} */
    int n_threads;                      /* entries used in threads[]; 0 = {1, 2} */
    int reps;                           /* timed repetitions per cell; 0 = default (5), best kept */
    const char *variants;               /* comma-separated filter ("avx2,avx2-lut"); NULL/"" = all but ref */
    int batch;                          /* tokens for the batch case; 0 = 128 */
    int stream_mb;                      /* weight set cycled for N = 1; 0 = 256 MB (should exceed the LLC) */
    int head;                           /* 1 = also the LM head formats (2560 x head_rows; ~1 GB of buffers) */
    int head_rows;                      /* the head's M; 0 = 128256 (the 2B4T vocabulary) */
    int skip_ternary;                   /* 1 = leave out the ternary shapes (head only) */
} bn_bench_kernels_opts;

/* Fills the defaults above (n_threads 2: {1, 2}, head on). */
void bn_bench_kernels_default_opts(bn_bench_kernels_opts *o);

/* Runs the bench; o may be NULL for the defaults. Returns 0, or -1 after
 * printing a one-line reason to stderr (bad option, unknown variant, no memory). */
int bn_bench_kernels(FILE *out, const bn_bench_kernels_opts *o);

#ifdef __cplusplus
}
#endif
#endif
