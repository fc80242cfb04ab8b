/* The `bitnet` command line: shared options, parsing and helpers.
 * Every mode lives in its own file (generate.c, converse.c, bench.c,
 * tokenize.c, logits.c, perplexity.c); main.c dispatches. Text goes to
 * stdout, everything else to stderr; a failure is one line
 * "bitnet: error: ..." and a non-zero exit status. */
#ifndef BN_CLI_H
#define BN_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bitnet.h"

enum bn_cmd {
    BN_CMD_GENERATE = 1 << 0,       /* one-shot and -cnv chat */
    BN_CMD_BENCH = 1 << 1,
    BN_CMD_TOKENIZE = 1 << 2,
    BN_CMD_LOGITS = 1 << 3,
    BN_CMD_PERPLEXITY = 1 << 4,
    BN_CMD_INFO = 1 << 5,
    BN_CMD_SERVE = 1 << 6
};

#define BN_CLI_MAX_LIST 16          /* entries of a bench list (-p 128,512) */
#define BN_CLI_MAX_THREADS 256
#define BN_CLI_MAX_SEQS 64          /* bench -np: sequences decoded together */
#define BN_CLI_KEEP_DEFAULT (-3)    /* --keep not given */
#define BN_CLI_MAX_NOTES 16         /* ignored llama-cli flags noted */

typedef struct bn_cli_list {
    int v[BN_CLI_MAX_LIST];
    int n;                          /* 0: not given */
} bn_cli_list;

/* bench -o, llama-bench's formats: a table, a JSON array, one JSON object
 * per line, comma-separated values with a header line. */
enum bn_bench_format { BN_BENCH_MD, BN_BENCH_JSON, BN_BENCH_JSONL, BN_BENCH_CSV };

typedef struct bn_cli_opts {
    int cmd;
    const char *model;              /* NULL: the bundled model */
    const char *prompt;             /* -p (NULL: not given); escapes processed in place */
    size_t prompt_len;              /* its bytes (an escape may put a NUL inside) */
    const char *file;               /* -f */
    const char *system;             /* -sys / --system-prompt */
    const char *chat_template;      /* --chat-template NAME|TEXT (chat, serve) */
    const char *chat_template_file; /* --chat-template-file FILE */
    int n_predict;                  /* -n; -1 = until EOG or the context is full */
    int n_threads;                  /* -t; 0 = physical cores */
    int n_ctx;                      /* -c; 0 = the model's */
    int n_batch;                    /* -b; 0 = default */
    int quiet_ctx_note;             /* no warning for -c past the training length (bench) */
    bn_sampler_params sp;
    const char *kernel;             /* --kernel */
    int head;                       /* --head: enum bn_head_type */
    int batch_numerics;             /* --batch-numerics: enum bn_batch_numerics */
    int type_k, type_v;             /* -ctk, -ctv: enum bn_kv_type */
    const char *pre_tokenizer;      /* --pre-tokenizer */
    int cnv;                        /* -cnv (-no-cnv: 0) */
    int escape;                     /* process escapes in -p, -sys, -r (default 1; --no-escape) */
    const char *reverse[BN_CLI_MAX_LIST];   /* -r: stop (one-shot) or end the reply (chat) */
    int n_reverse;
    int ignore_eos;                 /* --ignore-eos: never sample an end-of-generation token */
    int n_keep;                     /* --keep: BN_CLI_KEEP_DEFAULT when not given */
    int no_shift;                   /* --no-context-shift */
    const char *ngl_flag, *ngl;     /* -ngl N as given: accepted, ignored (no GPU) */
    int no_bos, no_special;         /* tokenize */
    const char *tokens;             /* logits --tokens */
    const char *out;                /* logits -o */
    int all, seq;                   /* logits --all, --seq */
    bn_cli_list bench_p, bench_n, bench_t, bench_d, bench_np;
    int reps;                       /* bench -r */
    int bench_format;               /* bench -o: enum bn_bench_format */
    int kernels;                    /* bench --kernels */
    const char *variants;           /* bench --kernels --variants */
    const char *host, *api_key, *alias;     /* serve --host, --api-key, --alias */
    int port, n_parallel, timeout, max_conns;   /* serve --port, -np, --timeout, --max-conns */
    int no_slots;                               /* serve --no-slots */
    const char *slot_save_path;                 /* serve --slot-save-path */
    int n_ubatch;                   /* -ub: caps -b (llama.cpp's physical batch); 0 = not given */
    int no_display_prompt;          /* --no-display-prompt: the prompt is not echoed */
    int verbose_prompt;             /* --verbose-prompt: the prompt's tokens on stderr */
    int no_perf;                    /* --no-perf: no timings at the end */
    int log_disable;                /* --log-disable: no informational lines on stderr */
    int mlock;                      /* --mlock: bn_model_lock_memory after the load */
    const char *prompt_cache;       /* --prompt-cache FILE: the session file (NULL: none) */
    int prompt_cache_all;           /* --prompt-cache-all: also save the generated tokens */
    int prompt_cache_ro;            /* --prompt-cache-ro: load only, never write */
    const char *kld_base;           /* perplexity --kl-divergence-base FILE */
    int kld;                        /* perplexity --kl-divergence: compare with kld_base */
    int n_chunks;                   /* perplexity --chunks: windows scored (-1 = all) */
    int hellaswag;                  /* perplexity --hellaswag: -f holds HellaSwag tasks */
    int n_tasks;                    /* perplexity --hellaswag-tasks (-1 = all) */
    struct {
        const char *flag, *value, *why;
    } notes[BN_CLI_MAX_NOTES];      /* llama-cli flags accepted and ignored (llama_flags.c) */
    int n_notes;
} bn_cli_opts;

/* ---- errors (return 1 so callers can `return bn_err(...)`) ------------------ */
int bn_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- args.c ---------------------------------------------------------------------- */
/* Parses argv[first..argc) for command `cmd`. Returns 0, or prints the error
 * and returns 1. *want_help is set for -h/--help. */
int bn_cli_parse(int cmd, int argc, char **argv, int first, bn_cli_opts *o, int *want_help);
/* Strict numbers: the whole string must be the number. */
int bn_parse_int(const char *flag, const char *s, long lo, long hi, int *out);
int bn_parse_float(const char *flag, const char *s, float lo, float hi, float *out);
/* Comma-separated ints ("1,2,3"), each within [lo, hi]; up to max entries;
 * returns the count or -1 (after printing the error). */
int bn_parse_int_list(const char *flag, const char *s, long lo, long hi, int *out, int max);
/* llama-cli's escapes, in place: \n \t \r \a \b \f \v \\ \' \" and \xNN (two hex
 * digits); any other backslash stays as written. Returns the new length. */
size_t bn_cli_unescape(char *s);
void bn_print_usage(FILE *f);

/* ---- llama_flags.c --------------------------------------------------------------- */
/* llama-cli's flags that bitnet.c ignores (noted in o->notes) or does not
 * offer (an error naming why). argv[*i] is the flag `name` (inline_v: its
 * "--flag=value" value); a value taken from argv advances *i. Returns -1
 * when name is none of them, 0 when accepted, 1 after printing an error. */
int bn_cli_foreign_flag(int cmd, int argc, char **argv, int *i, const char *name, const char *inline_v,
                        bn_cli_opts *o);

/* ---- common.c -------------------------------------------------------------------- */
/* The model path: -m, or the bundled model (error listing where it looked). */
const char *bn_cli_model_path(const bn_cli_opts *o);
/* Loads the model for evaluation (or vocab_only). Prints the error. */
bn_model *bn_cli_load_model(const bn_cli_opts *o, int vocab_only, double *load_ms);
/* The one-line load log on stderr; modes print it once their inputs are
 * validated, so that a failure leaves exactly one line on stderr. */
void bn_cli_log_load(const bn_cli_opts *o, const bn_model *m, double load_ms);
/* Notes about accepted-but-ignored flags (-ngl); part of the load log. */
void bn_cli_log_notes(const bn_cli_opts *o);
/* The sampler of the generating modes from the options (repeat_last_n -1 =
 * the whole context), its seed printed to stderr so a run can be replayed.
 * NULL (with the error printed) when out of memory. */
bn_sampler *bn_cli_new_sampler(const bn_cli_opts *o, const bn_tokenizer *tok, int n_ctx);
/* A context of o->n_ctx (capped by the model's) with n_outputs_max rows. */
bn_context *bn_cli_new_context(const bn_cli_opts *o, bn_model *m, int n_outputs_max);
/* Reads a whole file (NUL appended, not counted). Prints the error. */
char *bn_cli_read_file(const char *path, size_t *len);
/* The chat template of --chat-template or --chat-template-file into *tmpl
 * (NULL: the model's own); *owned is the file's text, to free. Returns 0,
 * or 1 after printing the error (both flags, an unreadable file). */
int bn_cli_chat_template(const bn_cli_opts *o, const char **tmpl, char **owned);
/* The prompt text from -p or -f (NULL + error when neither/empty). */
char *bn_cli_prompt_text(const bn_cli_opts *o, size_t *len);
/* Tokenizes into a malloc'd array; *n = count. Prints the error. */
int32_t *bn_cli_tokenize(const bn_tokenizer *t, const char *text, size_t len,
                         int add_bos, int parse_special, int *n);
double bn_now_ms(void);

/* ---- stdout ------------------------------------------------------------------------ */
/* Writes n bytes to stdout and flushes. Returns 0, or -1 once stdout is gone:
 * a write error (ENOSPC, EIO: reported once, "bitnet: error: stdout: ...")
 * or a reader that closed the pipe (quiet: `bitnet ... | head` is no error;
 * with SIGPIPE at its default the process ends there, status 141). */
int bn_cli_emit(const char *buf, int n);
/* The exit status a mode returns after bn_cli_emit failed: 0 for a closed
 * pipe, 1 for a write error. */
int bn_cli_emit_status(void);
/* Flushes stdout at exit; reports a write error not yet reported.
 * Returns 0, or 1 for a write error. */
int bn_cli_close_stdout(void);

/* ---- generation helpers ------------------------------------------------------------- */
/* -r: watches the generated text for the reverse prompts. Its buffer is
 * sized once, from the longest prompt. */
typedef struct bn_cli_stop {
    const char *const *text;
    int n;
    char *tail;                     /* the last bytes generated */
    size_t len, cap, longest;
} bn_cli_stop;
int bn_cli_stop_init(bn_cli_stop *st, const bn_cli_opts *o);   /* prints the error */
void bn_cli_stop_free(bn_cli_stop *st);
void bn_cli_stop_reset(bn_cli_stop *st);                        /* a new reply */
/* Feeds the next n bytes of output (n <= BN_CLI_PIECE); returns 1 when a
 * reverse prompt now appears in the text, ending in or across these bytes. */
int bn_cli_stop_push(bn_cli_stop *st, const char *s, int n);
#define BN_CLI_PIECE 512            /* bytes one streamed token piece may take */

/* --ignore-eos: the logits with every end-of-generation token at -inf. */
typedef struct bn_cli_noeog {
    float *logits;                  /* n_vocab */
    int32_t *eog;                   /* the EOG ids of the vocabulary */
    int n_eog, n_vocab;
} bn_cli_noeog;
int bn_cli_noeog_init(bn_cli_noeog *ne, const bn_tokenizer *t);  /* prints the error */
void bn_cli_noeog_free(bn_cli_noeog *ne);
const float *bn_cli_noeog_apply(bn_cli_noeog *ne, const float *logits);
/* Ties the sampler to the context's exact head; ne: the ids --ignore-eos bans. */
void bn_cli_exact_head(bn_context *c, const bn_sampler *s, const bn_cli_noeog *ne);
/* One stderr line: the exact head's rescored rows per token (nothing when
 * no row was screened). */
void bn_cli_print_head_stats(const bn_context *c);
/* --verbose-prompt: the prompt's ids and pieces on stderr, one per line
 * (control bytes, quotes and backslashes as \xNN). */
void bn_cli_print_tokens(const bn_tokenizer *tok, const int32_t *ids, int n);
/* One stderr line "head: NAME": the head that computes logits and
 * perplexity's full rows (an exact head computes them from its F16 table). */
void bn_cli_print_full_rows_head(const bn_model *m);

/* ---- context shift (docs/CHAT.md, Context shift) ---------------------------------------- */
/* The tokens a shift keeps, from --keep as llama-cli reads it: N plus BOS,
 * or the whole prompt for -1 (or N past it); never more than n_prompt.
 * Without --keep: BOS (one-shot) or the whole prompt (chat: BOS and the
 * system turn), as chat_default says. */
int bn_cli_keep(const bn_cli_opts *o, int n_prompt, int add_bos, int chat_default);
typedef struct bn_cli_shift {
    int keep;                       /* tokens kept at the start */
    int enabled;                    /* 0: --no-context-shift or -n -2 */
    int n_shifts, n_discarded;      /* so far, for the summary */
} bn_cli_shift;
/* Makes room for n more tokens: when they would fill the context
 * (n_past + n >= n_ctx, llama-cli's rule) it keeps the first sh->keep
 * tokens and discards half of the rest (more when n needs it). Without
 * shifting (off, or n longer than the context minus the kept tokens) the
 * last free cells are used. Returns 0 when the n tokens fit now, 1 when they
 * do not (nothing changed), -1 on error (printed). */
int bn_cli_make_room(bn_context *c, bn_cli_shift *sh, int n);

/* ---- --prompt-cache (prompt_cache.c) ------------------------------------------------ */
/* Before anything runs: a cache that will be written must be a file in a
 * writable directory. 0, or 1 after printing the error. */
int bn_cli_cache_check_path(const char *path);
/* Loads o->prompt_cache into c and keeps the cells of the longest common
 * start with prompt (with need_logits, not the prompt's last token, so that
 * decoding it gives logits); a refused file is a warning and an empty cache.
 * *n_reuse: prompt tokens now in the cache; kv_tokens (n_ctx ids) gets the
 * file's. Returns 1 when the file should be written after the prompt. */
int bn_cli_cache_load(const bn_cli_opts *o, bn_context *c, const int32_t *prompt, int n_prompt,
                      int need_logits, int32_t *kv_tokens, int *n_reuse);
/* Saves c's first n cells with their ids. 0, or 1 after printing the error. */
int bn_cli_cache_save(const bn_cli_opts *o, const bn_context *c, const int32_t *kv_tokens, int n);

/* ---- kld.c: llama-perplexity's log-probability file, KL-divergence statistics ---- */
/* log softmax(logits)[target] as llama-perplexity takes it (float exp,
 * double sum): perplexity, --hellaswag. */
double bn_cli_log_prob(const float *logits, int n_vocab, int32_t target);
/* u16 per record of a vocabulary of n_vocab tokens (two floats, then one each). */
size_t bn_kld_record_len(int n_vocab);
/* One scored position's record from its logits. */
void bn_kld_record(const float *logits, int n_vocab, uint16_t *rec);
/* The header and the windows' tokens. 0, or -1 on a write error. */
int bn_kld_write_header(FILE *f, int n_ctx, int n_vocab, int n_chunk, const int32_t *tokens);

typedef struct bn_kld_base {
    FILE *f;
    const char *path;
    int n_ctx, n_vocab, n_chunk;
    int32_t *tokens;                /* n_chunk * n_ctx, each checked < n_vocab */
    uint16_t *recs;                 /* the current window's records */
} bn_kld_base;
/* Opens and checks a base for a model of n_vocab tokens (header, exact
 * size, tokens). 0, or 1 after printing the error. */
int bn_kld_open(const char *path, int n_vocab, bn_kld_base *b);
/* The next window's records into b->recs. 0, or 1 after printing the error. */
int bn_kld_read_window(bn_kld_base *b);
void bn_kld_close(bn_kld_base *b);

typedef struct bn_kld_stats {
    double sum_nll, sum_nll2, sum_nll_base, sum_nll_base2, sum_nll_cross;
    double sum_kld, sum_kld2, sum_p_diff, sum_p_diff2, sum_p_diff4;
    float max_p_diff;
    long count, same_top;
    float *kld, *p_diff;            /* per token (room for every scored one) */
} bn_kld_stats;
/* Adds one token: these logits against the base's record, tok the next token. */
void bn_kld_token(bn_kld_stats *s, const float *logits, int n_vocab, const uint16_t *rec, int32_t tok);
void bn_kld_print_window(const bn_kld_stats *s, int window);
/* The totals and percentiles (sorts s->kld and s->p_diff). */
void bn_kld_print_summary(bn_kld_stats *s);

/* ---- hellaswag.c: perplexity --hellaswag (text: the -f file, split in place) ---- */
int bn_cli_hellaswag(const bn_cli_opts *o, bn_model *m, double load_ms, char *text, size_t len);

/* ---- the modes ---------------------------------------------------------------------- */
int bn_cmd_generate(const bn_cli_opts *o);
int bn_cmd_chat(const bn_cli_opts *o);
int bn_cmd_bench(const bn_cli_opts *o);
int bn_cmd_tokenize(const bn_cli_opts *o);
int bn_cmd_logits(const bn_cli_opts *o);
int bn_cmd_perplexity(const bn_cli_opts *o);
int bn_cmd_serve(const bn_cli_opts *o);

#endif
