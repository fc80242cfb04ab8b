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
    BN_CMD_INFO = 1 << 5
};

#define BN_CLI_MAX_LIST 16          /* entries of a bench list (-p 128,512) */
#define BN_CLI_MAX_THREADS 256

typedef struct bn_cli_list {
    int v[BN_CLI_MAX_LIST];
    int n;                          /* 0: not given */
} bn_cli_list;

typedef struct bn_cli_opts {
    int cmd;
    const char *model;              /* NULL: the bundled model */
    const char *prompt;             /* -p (NULL: not given) */
    const char *file;               /* -f */
    const char *system;             /* -sys / --system-prompt */
    int n_predict;                  /* -n; -1 = until EOG or the context is full */
    int n_threads;                  /* -t; 0 = physical cores */
    int n_ctx;                      /* -c; 0 = the model's */
    int n_batch;                    /* -b; 0 = default */
    bn_sampler_params sp;
    const char *kernel;             /* --kernel */
    int head;                       /* --head: enum bn_head_type */
    int batch_numerics;             /* --batch-numerics: enum bn_batch_numerics */
    const char *pre_tokenizer;      /* --pre-tokenizer */
    int cnv;                        /* -cnv */
    int no_bos, no_special;         /* tokenize */
    const char *tokens;             /* logits --tokens */
    const char *out;                /* logits -o */
    int all, seq;                   /* logits --all, --seq */
    bn_cli_list bench_p, bench_n, bench_t;
    int reps;                       /* bench -r */
    int json;                       /* bench -o json */
    int kernels;                    /* bench --kernels */
    const char *variants;           /* bench --kernels --variants */
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
void bn_print_usage(FILE *f);

/* ---- common.c -------------------------------------------------------------------- */
/* The model path: -m, or the bundled model (error listing where it looked). */
const char *bn_cli_model_path(const bn_cli_opts *o);
/* Loads the model for evaluation (or vocab_only). Prints the error. */
bn_model *bn_cli_load_model(const bn_cli_opts *o, int vocab_only, double *load_ms);
/* The one-line load log on stderr; modes print it once their inputs are
 * validated, so that a failure leaves exactly one line on stderr. */
void bn_cli_log_load(const bn_cli_opts *o, const bn_model *m, double load_ms);
/* The sampler of the generating modes from the options (repeat_last_n -1 =
 * the whole context), its seed printed to stderr so a run can be replayed.
 * NULL (with the error printed) when out of memory. */
bn_sampler *bn_cli_new_sampler(const bn_cli_opts *o, const bn_tokenizer *tok, int n_ctx);
/* A context of o->n_ctx (capped by the model's) with n_outputs_max rows. */
bn_context *bn_cli_new_context(const bn_cli_opts *o, bn_model *m, int n_outputs_max);
/* Reads a whole file (NUL appended, not counted). Prints the error. */
char *bn_cli_read_file(const char *path, size_t *len);
/* The prompt text from -p or -f (NULL + error when neither/empty). */
char *bn_cli_prompt_text(const bn_cli_opts *o, size_t *len);
/* Tokenizes into a malloc'd array; *n = count. Prints the error. */
int32_t *bn_cli_tokenize(const bn_tokenizer *t, const char *text, size_t len,
                         int add_bos, int parse_special, int *n);
double bn_now_ms(void);
/* Writes all bytes of a token stream piece to stdout and flushes. */
void bn_cli_emit(const char *buf, int n);

/* ---- the modes ---------------------------------------------------------------------- */
int bn_cmd_generate(const bn_cli_opts *o);
int bn_cmd_chat(const bn_cli_opts *o);
int bn_cmd_bench(const bn_cli_opts *o);
int bn_cmd_tokenize(const bn_cli_opts *o);
int bn_cmd_logits(const bn_cli_opts *o);
int bn_cmd_perplexity(const bn_cli_opts *o);

#endif
