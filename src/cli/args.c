/* Argument parsing: llama.cpp's flag names, strict number validation, and
 * per-command flag sets (a flag of another command is an error, not a
 * silent no-op). The usage text lists every error the CLI can give. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int bn_err(const char *fmt, ...) {
    va_list ap;
    fflush(stdout);
    fputs("bitnet: error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

int bn_parse_int(const char *flag, const char *s, long lo, long hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno == ERANGE || (*s != '-' && *s != '+' && (*s < '0' || *s > '9')))
        return bn_err("%s: bad number '%s' (expected an integer)", flag, s);
    if (v < lo || v > hi)
        return bn_err("%s: %ld is out of range (%ld to %ld)", flag, v, lo, hi);
    *out = (int)v;
    return 0;
}

int bn_parse_float(const char *flag, const char *s, float lo, float hi, float *out) {
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (*s == '\0' || *end != '\0' || errno == ERANGE || !isfinite(v) ||
        (*s != '-' && *s != '+' && *s != '.' && (*s < '0' || *s > '9')))
        return bn_err("%s: bad number '%s' (expected a decimal number)", flag, s);
    if (v < lo || v > hi)
        return bn_err("%s: %g is out of range (%g to %g)", flag, (double)v, (double)lo, (double)hi);
    *out = v;
    return 0;
}

int bn_parse_int_list(const char *flag, const char *s, long lo, long hi, int *out, int max) {
    int n = 0;
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[32];
        if (len == 0 || len >= sizeof item) {
            bn_err("%s: bad list '%s' (expected numbers separated by commas)", flag, s);
            return -1;
        }
        if (n == max) {
            bn_err("%s: more than %d values in '%s'", flag, max, s);
            return -1;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        if (bn_parse_int(flag, item, lo, hi, &out[n]) != 0) return -1;
        n++;
        if (!comma) return n;
        p = comma + 1;
    }
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

size_t bn_cli_unescape(char *s) {
    size_t r = 0, w = 0;
    while (s[r]) {
        if (s[r] != '\\' || !s[r + 1]) {
            s[w++] = s[r++];
            continue;
        }
        char c = s[r + 1], out;
        if (c == 'x' && hex_digit(s[r + 2]) >= 0 && hex_digit(s[r + 3]) >= 0) {
            s[w++] = (char)(hex_digit(s[r + 2]) * 16 + hex_digit(s[r + 3]));
            r += 4;
            continue;
        }
        switch (c) {
        case 'n': out = '\n'; break;
        case 't': out = '\t'; break;
        case 'r': out = '\r'; break;
        case 'a': out = '\a'; break;
        case 'b': out = '\b'; break;
        case 'f': out = '\f'; break;
        case 'v': out = '\v'; break;
        case '\\': case '\'': case '"': out = c; break;
        default:                    /* unknown: the backslash stays, the next byte follows as is */
            s[w++] = s[r++];
            continue;
        }
        s[w++] = out;
        r += 2;
    }
    s[w] = '\0';
    return w;
}

/* ---- the flag table ------------------------------------------------------------ */
enum flag_id {
    F_MODEL, F_PROMPT, F_FILE, F_SYSTEM, F_PREDICT, F_THREADS, F_CTX, F_BATCH, F_SEED,
    F_TEMP, F_TOPK, F_TOPP, F_MINP, F_REPEAT, F_REPEAT_N, F_PRESENCE, F_FREQUENCY,
    F_KERNEL, F_HEAD, F_PRE, F_CNV, F_NO_BOS, F_NO_SPECIAL, F_TOKENS, F_OUT, F_ALL,
    F_BATCHED, F_SEQ, F_REPS, F_KERNELS, F_VARIANTS, F_NUMERICS, F_NO_CNV, F_ESCAPE,
    F_NO_ESCAPE, F_REVERSE, F_IGNORE_EOS, F_NGL, F_DEPTH, F_KEEP, F_NO_SHIFT, F_HELP,
    F_NO_SLOTS, F_SLOTS, F_SLOT_SAVE_PATH,
    F_HOST, F_PORT, F_PARALLEL, F_API_KEY, F_ALIAS, F_TIMEOUT, F_MAX_CONNS, F_CACHE_K, F_CACHE_V,
    F_UBATCH, F_NO_DISPLAY_PROMPT, F_VERBOSE_PROMPT, F_NO_PERF, F_LOG_DISABLE, F_MLOCK,
    F_CHAT_TEMPLATE, F_CHAT_TEMPLATE_FILE, F_PROMPT_CACHE, F_PROMPT_CACHE_ALL, F_PROMPT_CACHE_RO,
    F_KLD_BASE, F_KLD, F_CHUNKS, F_HELLASWAG, F_HELLASWAG_TASKS
};

#define EVAL (BN_CMD_GENERATE | BN_CMD_BENCH | BN_CMD_LOGITS | BN_CMD_PERPLEXITY | BN_CMD_SERVE)
#define TOK (EVAL | BN_CMD_TOKENIZE)
#define ANY (TOK | BN_CMD_INFO)
#define TEXT (BN_CMD_GENERATE | BN_CMD_TOKENIZE | BN_CMD_LOGITS)  /* -p is text */

static const struct flag {
    const char *name, *alias;
    int has_value;
    int cmds;
    enum flag_id id;
} flags[] = {
    {"-m", "--model", 1, ANY, F_MODEL},
    {"-p", "--prompt", 1, BN_CMD_GENERATE | BN_CMD_TOKENIZE | BN_CMD_LOGITS | BN_CMD_BENCH, F_PROMPT},
    {"-f", "--file", 1, BN_CMD_GENERATE | BN_CMD_TOKENIZE | BN_CMD_PERPLEXITY, F_FILE},
    {"-sys", "--system-prompt", 1, BN_CMD_GENERATE, F_SYSTEM},
    {"-n", "--n-predict", 1, BN_CMD_GENERATE | BN_CMD_BENCH, F_PREDICT},
    {"-t", "--threads", 1, EVAL, F_THREADS},
    {"-c", "--ctx-size", 1, BN_CMD_GENERATE | BN_CMD_LOGITS | BN_CMD_PERPLEXITY | BN_CMD_SERVE, F_CTX},
    {"-b", "--batch-size", 1, BN_CMD_GENERATE | BN_CMD_LOGITS | BN_CMD_PERPLEXITY, F_BATCH},
    {"-s", "--seed", 1, BN_CMD_GENERATE, F_SEED},
    {"--temp", "-temp", 1, BN_CMD_GENERATE, F_TEMP},
    {"--top-k", NULL, 1, BN_CMD_GENERATE, F_TOPK},
    {"--top-p", NULL, 1, BN_CMD_GENERATE, F_TOPP},
    {"--min-p", NULL, 1, BN_CMD_GENERATE, F_MINP},
    {"--repeat-penalty", NULL, 1, BN_CMD_GENERATE, F_REPEAT},
    {"--repeat-last-n", NULL, 1, BN_CMD_GENERATE, F_REPEAT_N},
    {"--presence-penalty", NULL, 1, BN_CMD_GENERATE, F_PRESENCE},
    {"--frequency-penalty", NULL, 1, BN_CMD_GENERATE, F_FREQUENCY},
    {"--kernel", NULL, 1, EVAL, F_KERNEL},
    {"--head", NULL, 1, EVAL, F_HEAD},
    {"--batch-numerics", NULL, 1, EVAL & ~BN_CMD_SERVE, F_NUMERICS},
    {"-ctk", "--cache-type-k", 1, EVAL, F_CACHE_K},
    {"-ctv", "--cache-type-v", 1, EVAL, F_CACHE_V},
    {"--pre-tokenizer", NULL, 1, TOK, F_PRE},
    {"-cnv", "--conversation", 0, BN_CMD_GENERATE, F_CNV},
    {"--chat-template", NULL, 1, BN_CMD_GENERATE | BN_CMD_SERVE, F_CHAT_TEMPLATE},
    {"--chat-template-file", NULL, 1, BN_CMD_GENERATE | BN_CMD_SERVE, F_CHAT_TEMPLATE_FILE},
    {"-no-cnv", "--no-conversation", 0, BN_CMD_GENERATE, F_NO_CNV},
    {"-e", "--escape", 0, TEXT, F_ESCAPE},
    {"--no-escape", NULL, 0, TEXT, F_NO_ESCAPE},
    {"-r", "--reverse-prompt", 1, BN_CMD_GENERATE, F_REVERSE},
    {"--ignore-eos", NULL, 0, BN_CMD_GENERATE, F_IGNORE_EOS},
    {"--keep", NULL, 1, BN_CMD_GENERATE, F_KEEP},
    {"--no-context-shift", NULL, 0, BN_CMD_GENERATE, F_NO_SHIFT},
    {"-ngl", "--n-gpu-layers", 1, EVAL, F_NGL},
    {"--gpu-layers", NULL, 1, EVAL, F_NGL},
    {"--no-bos", NULL, 0, BN_CMD_TOKENIZE, F_NO_BOS},
    {"--no-special", NULL, 0, BN_CMD_TOKENIZE, F_NO_SPECIAL},
    {"--tokens", NULL, 1, BN_CMD_LOGITS, F_TOKENS},
    {"-o", "--output", 1, BN_CMD_LOGITS | BN_CMD_BENCH, F_OUT},
    {"--all", NULL, 0, BN_CMD_LOGITS, F_ALL},
    {"--batch", NULL, 0, BN_CMD_LOGITS, F_BATCHED},
    {"--seq", NULL, 0, BN_CMD_LOGITS, F_SEQ},
    {"-r", "--repetitions", 1, BN_CMD_BENCH, F_REPS},
    {"-d", "--n-depth", 1, BN_CMD_BENCH, F_DEPTH},
    {"--kernels", NULL, 0, BN_CMD_BENCH, F_KERNELS},
    {"--variants", NULL, 1, BN_CMD_BENCH, F_VARIANTS},
    {"--host", NULL, 1, BN_CMD_SERVE, F_HOST},
    {"--port", NULL, 1, BN_CMD_SERVE, F_PORT},
    {"-np", "--parallel", 1, BN_CMD_SERVE | BN_CMD_BENCH, F_PARALLEL},
    {"-npl", NULL, 1, BN_CMD_BENCH, F_PARALLEL},
    {"--api-key", NULL, 1, BN_CMD_SERVE, F_API_KEY},
    {"-a", "--alias", 1, BN_CMD_SERVE, F_ALIAS},
    {"--timeout", "-to", 1, BN_CMD_SERVE, F_TIMEOUT},
    {"--max-conns", NULL, 1, BN_CMD_SERVE, F_MAX_CONNS},
    {"--no-slots", NULL, 0, BN_CMD_SERVE, F_NO_SLOTS},
    {"--slots", NULL, 0, BN_CMD_SERVE, F_SLOTS},
    {"--slot-save-path", NULL, 1, BN_CMD_SERVE, F_SLOT_SAVE_PATH},
    {"-ub", "--ubatch-size", 1, BN_CMD_GENERATE | BN_CMD_LOGITS | BN_CMD_PERPLEXITY | BN_CMD_BENCH, F_UBATCH},
    {"--no-display-prompt", NULL, 0, BN_CMD_GENERATE, F_NO_DISPLAY_PROMPT},
    {"--verbose-prompt", NULL, 0, BN_CMD_GENERATE, F_VERBOSE_PROMPT},
    {"--no-perf", NULL, 0, BN_CMD_GENERATE, F_NO_PERF},
    {"--log-disable", NULL, 0, BN_CMD_GENERATE, F_LOG_DISABLE},
    {"--mlock", NULL, 0, EVAL, F_MLOCK},
    {"--prompt-cache", NULL, 1, BN_CMD_GENERATE, F_PROMPT_CACHE},
    {"--prompt-cache-all", NULL, 0, BN_CMD_GENERATE, F_PROMPT_CACHE_ALL},
    {"--prompt-cache-ro", NULL, 0, BN_CMD_GENERATE, F_PROMPT_CACHE_RO},
    {"--kl-divergence-base", NULL, 1, BN_CMD_PERPLEXITY, F_KLD_BASE},
    {"--kl-divergence", NULL, 0, BN_CMD_PERPLEXITY, F_KLD},
    {"--chunks", NULL, 1, BN_CMD_PERPLEXITY, F_CHUNKS},
    {"--hellaswag", NULL, 0, BN_CMD_PERPLEXITY, F_HELLASWAG},
    {"--hellaswag-tasks", NULL, 1, BN_CMD_PERPLEXITY, F_HELLASWAG_TASKS},
    {"-h", "--help", 0, ANY, F_HELP},
};

static const char *cmd_name(int cmd) {
    switch (cmd) {
    case BN_CMD_BENCH: return "bitnet bench";
    case BN_CMD_TOKENIZE: return "bitnet tokenize";
    case BN_CMD_LOGITS: return "bitnet logits";
    case BN_CMD_PERPLEXITY: return "bitnet perplexity";
    case BN_CMD_INFO: return "bitnet info";
    case BN_CMD_SERVE: return "bitnet serve";
    default: return "bitnet";
    }
}

static void set_defaults(int cmd, bn_cli_opts *o) {
    memset(o, 0, sizeof *o);
    o->cmd = cmd;
    o->n_predict = -1;
    o->port = 8080;
    o->sp = bn_sampler_default_params();
    o->head = BN_HEAD_DEFAULT;
    o->reps = 5;
    o->escape = 1;
    o->n_keep = BN_CLI_KEEP_DEFAULT;
    o->n_chunks = -1;
    o->n_tasks = -1;
}

/* One flag with its value (NULL for switches). */
static int apply(bn_cli_opts *o, const struct flag *fl, const char *flag, const char *v) {
    const int bench = o->cmd == BN_CMD_BENCH;
    switch (fl->id) {
    case F_MODEL: o->model = v; return 0;
    case F_PROMPT:
        if (bench) {
            int n = bn_parse_int_list(flag, v, 0, 1 << 20, o->bench_p.v, BN_CLI_MAX_LIST);
            if (n < 0) return 1;
            o->bench_p.n = n;
            return 0;
        }
        o->prompt = v;
        return 0;
    case F_FILE: o->file = v; return 0;
    case F_KLD_BASE: o->kld_base = v; return 0;
    case F_KLD: o->kld = 1; return 0;
    case F_CHUNKS: return bn_parse_int(flag, v, -1, INT_MAX, &o->n_chunks);
    case F_HELLASWAG: o->hellaswag = 1; return 0;
    case F_HELLASWAG_TASKS: return bn_parse_int(flag, v, 0, INT_MAX, &o->n_tasks);
    case F_SYSTEM: o->system = v; return 0;
    case F_CHAT_TEMPLATE: o->chat_template = v; return 0;
    case F_CHAT_TEMPLATE_FILE: o->chat_template_file = v; return 0;
    case F_PREDICT:
        if (bench) {
            int n = bn_parse_int_list(flag, v, 0, 1 << 20, o->bench_n.v, BN_CLI_MAX_LIST);
            if (n < 0) return 1;
            o->bench_n.n = n;
            return 0;
        }
        return bn_parse_int(flag, v, -2, INT_MAX, &o->n_predict);
    case F_THREADS:
        if (bench) {
            int n = bn_parse_int_list(flag, v, 1, BN_CLI_MAX_THREADS, o->bench_t.v, BN_CLI_MAX_LIST);
            if (n < 0) return 1;
            o->bench_t.n = n;
            return 0;
        }
        return bn_parse_int(flag, v, 1, BN_CLI_MAX_THREADS, &o->n_threads);
    case F_CTX: return bn_parse_int(flag, v, 0, 1 << 20, &o->n_ctx);
    case F_BATCH: return bn_parse_int(flag, v, 1, 1 << 16, &o->n_batch);
    case F_SEED: {
        char *end;
        errno = 0;
        long long s = strtoll(v, &end, 10);
        if (*v == '\0' || *end != '\0' || errno == ERANGE)
            return bn_err("%s: bad number '%s' (expected an integer)", flag, v);
        if (s < -1 || s >= (long long)BN_SEED_RANDOM)
            return bn_err("%s: %lld is out of range (-1 = random, or 0 to %u)", flag, s,
                          BN_SEED_RANDOM - 1);
        o->sp.seed = s < 0 ? BN_SEED_RANDOM : (uint32_t)s;
        return 0;
    }
    case F_TEMP: return bn_parse_float(flag, v, -1e9f, 1e9f, &o->sp.temp);
    case F_TOPK: return bn_parse_int(flag, v, -1, INT_MAX, &o->sp.top_k);
    case F_TOPP: return bn_parse_float(flag, v, 0.0f, 1.0f, &o->sp.top_p);
    case F_MINP: return bn_parse_float(flag, v, 0.0f, 1.0f, &o->sp.min_p);
    case F_REPEAT:
        if (bn_parse_float(flag, v, 0.0f, 1e9f, &o->sp.repeat_penalty) != 0) return 1;
        if (o->sp.repeat_penalty <= 0.0f)
            return bn_err("%s: must be greater than 0 (1 = off), got %s", flag, v);
        return 0;
    case F_REPEAT_N: return bn_parse_int(flag, v, -1, 1 << 20, &o->sp.repeat_last_n);
    case F_PRESENCE: return bn_parse_float(flag, v, -1e9f, 1e9f, &o->sp.presence_penalty);
    case F_FREQUENCY: return bn_parse_float(flag, v, -1e9f, 1e9f, &o->sp.freq_penalty);
    case F_KERNEL: o->kernel = v; return 0;
    case F_HEAD:
        if (strcmp(v, "f16") == 0) o->head = BN_HEAD_F16;
        else if (strcmp(v, "q8") == 0) o->head = BN_HEAD_Q8;
        else if (strcmp(v, "exact") == 0) o->head = BN_HEAD_EXACT;
        else if (strcmp(v, "default") == 0) o->head = BN_HEAD_DEFAULT;
        else return bn_err("%s: unknown head type '%s' (expected f16, q8, exact or default)", flag, v);
        return 0;
    case F_NUMERICS:
        if (strcmp(v, "decode") == 0) o->batch_numerics = BN_NUMERICS_DECODE;
        else if (strcmp(v, "bitnet-cpp") == 0) o->batch_numerics = BN_NUMERICS_BITNET_CPP;
        else return bn_err("%s: unknown numerics '%s' (expected decode or bitnet-cpp)", flag, v);
        return 0;
    case F_CACHE_K:
    case F_CACHE_V: {
        int t = bn_kv_type_from_name(v);
        if (t < 0)          /* llama.cpp's names; the long one whichever was typed */
            return bn_err("%s: unsupported cache type '%s' (supported: f16, q8_0)", fl->alias, v);
        *(fl->id == F_CACHE_K ? &o->type_k : &o->type_v) = t;
        return 0;
    }
    case F_PRE:
        if (strcmp(v, "llama3") != 0 && strcmp(v, "llama-bpe") != 0 &&
            strcmp(v, "default") != 0 && strcmp(v, "falcon3") != 0 && strcmp(v, "falcon_e") != 0)
            return bn_err("%s: unknown pre-tokenizer '%s' (expected llama3, llama-bpe, default, "
                          "falcon3 or falcon_e)", flag, v);
        o->pre_tokenizer = v;
        return 0;
    case F_CNV: o->cnv = 1; return 0;
    case F_NO_CNV: o->cnv = 0; return 0;
    case F_ESCAPE: o->escape = 1; return 0;
    case F_NO_ESCAPE: o->escape = 0; return 0;
    case F_REVERSE:
        if (o->n_reverse == BN_CLI_MAX_LIST)
            return bn_err("%s: at most %d reverse prompts", flag, BN_CLI_MAX_LIST);
        if (!v[0]) return bn_err("%s: empty reverse prompt", flag);
        o->reverse[o->n_reverse++] = v;
        return 0;
    case F_IGNORE_EOS: o->ignore_eos = 1; return 0;
    case F_KEEP: return bn_parse_int(flag, v, -1, INT_MAX, &o->n_keep);
    case F_NO_SHIFT: o->no_shift = 1; return 0;
    case F_NGL: {                   /* checked like llama-cli's, then ignored */
        int tmp[BN_CLI_MAX_LIST];
        if (bn_parse_int_list(flag, v, -1, INT_MAX, tmp, bench ? BN_CLI_MAX_LIST : 1) < 0) return 1;
        o->ngl_flag = flag;
        o->ngl = v;
        return 0;
    }
    case F_DEPTH: {
        int n = bn_parse_int_list(flag, v, 0, 1 << 20, o->bench_d.v, BN_CLI_MAX_LIST);
        if (n < 0) return 1;
        o->bench_d.n = n;
        return 0;
    }
    case F_NO_BOS: o->no_bos = 1; return 0;
    case F_NO_SPECIAL: o->no_special = 1; return 0;
    case F_TOKENS: o->tokens = v; return 0;
    case F_OUT:
        if (!bench) { o->out = v; return 0; }
        if (strcmp(v, "md") == 0) o->bench_format = BN_BENCH_MD;
        else if (strcmp(v, "json") == 0) o->bench_format = BN_BENCH_JSON;
        else if (strcmp(v, "jsonl") == 0) o->bench_format = BN_BENCH_JSONL;
        else if (strcmp(v, "csv") == 0) o->bench_format = BN_BENCH_CSV;
        else return bn_err("%s: unknown output format '%s' (expected md, json, jsonl or csv)", flag, v);
        return 0;
    case F_ALL: o->all = 1; return 0;
    case F_BATCHED: o->seq = 0; return 0;
    case F_SEQ: o->seq = 1; return 0;
    case F_REPS: return bn_parse_int(flag, v, 1, 1000, &o->reps);
    case F_KERNELS: o->kernels = 1; return 0;
    case F_VARIANTS: o->variants = v; return 0;
    case F_HOST: o->host = v; return 0;
    case F_PORT: return bn_parse_int(flag, v, 0, 65535, &o->port);
    case F_PARALLEL:
        if (bench) {
            int n = bn_parse_int_list(flag, v, 1, BN_CLI_MAX_SEQS, o->bench_np.v, BN_CLI_MAX_LIST);
            if (n < 0) return 1;
            o->bench_np.n = n;
            return 0;
        }
        return bn_parse_int(flag, v, 1, 256, &o->n_parallel);
    case F_API_KEY:
        if (!v[0]) return bn_err("%s: empty key", flag);
        o->api_key = v;
        return 0;
    case F_ALIAS: o->alias = v; return 0;
    case F_TIMEOUT: return bn_parse_int(flag, v, 1, 3600, &o->timeout);
    case F_MAX_CONNS: return bn_parse_int(flag, v, 1, 4096, &o->max_conns);
    case F_NO_SLOTS: o->no_slots = 1; return 0;
    case F_SLOTS: o->no_slots = 0; return 0;
    case F_SLOT_SAVE_PATH: o->slot_save_path = v; return 0;
    case F_UBATCH: return bn_parse_int(flag, v, 1, 1 << 16, &o->n_ubatch);
    case F_NO_DISPLAY_PROMPT: o->no_display_prompt = 1; return 0;
    case F_VERBOSE_PROMPT: o->verbose_prompt = 1; return 0;
    case F_NO_PERF: o->no_perf = 1; return 0;
    case F_LOG_DISABLE: o->log_disable = 1; o->no_perf = 1; return 0;
    case F_MLOCK: o->mlock = 1; return 0;
    case F_PROMPT_CACHE:
        if (!v[0]) return bn_err("%s: empty file name", flag);
        o->prompt_cache = v;
        return 0;
    case F_PROMPT_CACHE_ALL: o->prompt_cache_all = 1; return 0;
    case F_PROMPT_CACHE_RO: o->prompt_cache_ro = 1; return 0;
    case F_HELP: return 0;
    }
    return 0;
}

int bn_cli_parse(int cmd, int argc, char **argv, int first, bn_cli_opts *o, int *want_help) {
    set_defaults(cmd, o);
    *want_help = 0;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        const char *inline_v = NULL;   /* --flag=value */
        char name[64];
        const char *eq = (a[0] == '-' && a[1] == '-') ? strchr(a, '=') : NULL;
        if (eq && (size_t)(eq - a) < sizeof name) {
            memcpy(name, a, (size_t)(eq - a));
            name[eq - a] = '\0';
            inline_v = eq + 1;
            a = name;
        }
        /* a name may mean different flags in different commands (-r) */
        const struct flag *fl = NULL;
        for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++)
            if (strcmp(a, flags[k].name) == 0 || (flags[k].alias && strcmp(a, flags[k].alias) == 0))
                if (!fl || (flags[k].cmds & cmd)) fl = &flags[k];
        if (!fl) {
            int rc = bn_cli_foreign_flag(cmd, argc, argv, &i, a, inline_v, o);
            if (rc >= 0) {
                if (rc) return 1;
                continue;
            }
            /* `bitnet info MODEL`: a bare path is the model */
            if (cmd == BN_CMD_INFO && argv[i][0] != '-' && !o->model) {
                o->model = argv[i];
                continue;
            }
            if (argv[i][0] == '-')
                return bn_err("unknown argument: %s (see bitnet --help)", argv[i]);
            return bn_err("unexpected argument: '%s' (see bitnet --help)", argv[i]);
        }
        if (!(fl->cmds & cmd))
            return bn_err("%s is not an option of '%s' (see bitnet --help)", a, cmd_name(cmd));
        if (fl->id == F_HELP) {
            *want_help = 1;
            return 0;
        }
        const char *v = NULL;
        if (fl->has_value) {
            if (inline_v) v = inline_v;
            else if (i + 1 < argc) v = argv[++i];
            else return bn_err("%s needs a value (see bitnet --help)", a);
        } else if (inline_v) {
            return bn_err("%s takes no value", a);
        }
        if (apply(o, fl, a, v) != 0) return 1;
    }
    if ((o->prompt_cache_all || o->prompt_cache_ro) && !o->prompt_cache)
        return bn_err("%s needs --prompt-cache FILE",
                      o->prompt_cache_all ? "--prompt-cache-all" : "--prompt-cache-ro");
    /* Escapes, as llama-cli: in the text given on the command line (the
     * strings live in argv, which may be changed in place), not in files. */
    if (o->prompt) o->prompt_len = strlen(o->prompt);
    if (o->escape) {
        if (o->prompt) o->prompt_len = bn_cli_unescape((char *)o->prompt);
        if (o->system) bn_cli_unescape((char *)o->system);
        for (int k = 0; k < o->n_reverse; k++) {
            bn_cli_unescape((char *)o->reverse[k]);
            if (!o->reverse[k][0])  /* \x00 first: the C string ends there */
                return bn_err("-r: empty reverse prompt after escapes");
        }
    }
    return 0;
}

void bn_print_usage(FILE *f) {
    fputs(
"usage:\n"
"  bitnet [-m MODEL] -p TEXT [options]     one-shot generation (prints the prompt, then\n"
"                                          the continuation, until an end-of-generation\n"
"                                          token or -n tokens; a full context shifts)\n"
"  bitnet [-m MODEL] -cnv [-sys TEXT]      chat; /exit or end of input quits\n"
"  bitnet bench [-m MODEL] [-p 512] [-n 128] [-d 0] [-t 1,2] [-np 1] [-r 5] [-o md|json|jsonl|csv]\n"
"  bitnet bench --kernels [-t 1,2] [-r 5] [--variants LIST]\n"
"  bitnet tokenize [-m MODEL] (-p TEXT | -f FILE) [--no-bos] [--no-special]\n"
"  bitnet logits [-m MODEL] (--tokens 1,2,3 | -p TEXT) -o OUT [--all] [--batch | --seq]\n"
"  bitnet perplexity [-m MODEL] -f FILE [-c 512] [-b N] [--chunks N]\n"
"                    [--kl-divergence-base BASE [--kl-divergence]]\n"
"  bitnet perplexity [-m MODEL] --hellaswag -f TASKS [--hellaswag-tasks N]\n"
"  bitnet info [MODEL | -m MODEL]\n"
"  bitnet serve [-m MODEL] [--host 127.0.0.1] [--port 8080] [-np 1] [-c N] [-t N]\n"
"               [--api-key KEY] [--alias NAME] [--timeout 30] [--max-conns 64]\n"
"  bitnet --help | --version\n"
"\n"
"generation options:\n"
"  -m, --model FILE          i2_s GGUF model (default: the bundled tiny-shakespeare.gguf)\n"
"  -p, --prompt TEXT         prompt (with -cnv: the system prompt)\n"
"  -f, --file FILE           read the prompt from FILE (taken as is: no escapes)\n"
"  -sys, --system-prompt T   chat system prompt (default: a helpful-assistant prompt)\n"
"  -cnv, --conversation      chat mode\n"
"  --chat-template NAME      chat format instead of the model's template: bitnet, llama3,\n"
"                            falcon3, chatml, or a template's text (recognised by its\n"
"                            markers); also for serve\n"
"  --chat-template-file F    the same, the template read from FILE\n"
"  -no-cnv, --no-conversation  one-shot generation (the default)\n"
"  --no-escape               take -p, -sys and -r literally; by default, as llama-cli,\n"
"                            \\n \\t \\r \\a \\b \\f \\v \\\\ \\' \\\" and \\xNN are processed\n"
"                            (any other backslash stays); -e, --escape: the default\n"
"  -r, --reverse-prompt T    stop when the generated text contains T (chat: end the\n"
"                            reply, the turn goes back); repeatable, up to 16\n"
"  --ignore-eos              never sample an end-of-generation token (runs to -n)\n"
"  -n, --n-predict N         tokens to generate (default -1: until end of generation,\n"
"                            shifting the context as it fills; -2: until the context\n"
"                            is full; per reply in chat mode)\n"
"  --keep N                  tokens kept when the context is full and shifts (as\n"
"                            llama-cli: N plus BOS; -1 = the whole prompt; default:\n"
"                            BOS, in chat mode BOS and the system turn); the rest\n"
"                            is halved and generation goes on\n"
"  --no-context-shift        stop when the context is full instead of shifting\n"
"  -t, --threads N           threads, 1-256 (default: physical cores)\n"
"  -c, --ctx-size N          context size (default 0: the model's; capped by it)\n"
"  -b, --batch-size N        prompt tokens per forward batch (default 512)\n"
"  -s, --seed N              random seed (default -1: random, printed to stderr)\n"
"  --temp X                  temperature (default 0.8; <= 0: greedy argmax)\n"
"  --top-k N                 top-k (default 40; 0 = off)\n"
"  --top-p X                 top-p, 0-1 (default 0.95; 1 = off)\n"
"  --min-p X                 min-p, 0-1 (default 0.05; 0 = off)\n"
"  --repeat-penalty X        repeat penalty, > 0 (default 1.0 = off)\n"
"  --repeat-last-n N         tokens the penalties look back (default 64; -1 = context)\n"
"  --presence-penalty X      (default 0)\n"
"  --frequency-penalty X     (default 0)\n"
"  --kernel NAME             ref | avx2 | avx512 | neon (default: best for this CPU,\n"
"                            or $BITNET_KERNEL); alternatives: avx2-mad, avx2-lut,\n"
"                            avx2-tl, neon-lut, neon-tl, neon-tl-sdot, ref-tl\n"
"  --head f16|q8|exact|default\n"
"                            LM head: f16 = the file's table (parity with bitnet.cpp);\n"
"                            q8 = int8 copy (half the bytes, logits differ slightly);\n"
"                            exact = the q8 copy screens, the rows the sampler can\n"
"                            pick are recomputed from f16: f16's tokens at about q8's\n"
"                            bytes; default = exact above 32 MB of f16, else f16\n"
"  --batch-numerics decode|bitnet-cpp\n"
"                            roundings of prompt batches (all commands that run the\n"
"                            model): decode (default) = bitnet.cpp's token-by-token\n"
"                            path, so a batch gives the same logits as one token at a\n"
"                            time; bitnet-cpp = bitnet.cpp's own prompt batch (float\n"
"                            attention probabilities, its FMA order), as llama-cli\n"
"                            evaluates a prompt: reproduces its text where a near-tie\n"
"                            parts the two\n"
"  -ctk, --cache-type-k T    KV cache type of K: f16 (default; bitnet.cpp's logits) or\n"
"                            q8_0 (int8 blocks of 32 with an f16 scale: 0.53x the\n"
"                            bytes, faster at depth, logits differ slightly; needs a\n"
"                            head_dim that is a multiple of 32); all commands that\n"
"                            run the model\n"
"  -ctv, --cache-type-v T    the same for V\n"
"  --pre-tokenizer NAME      llama3 | default | falcon3 | falcon_e (default: from\n"
"                            the file; BPE vocabularies only)\n"
"  -ub, --ubatch-size N      caps -b (llama.cpp's physical batch)\n"
"  --no-display-prompt       print only the continuation, not the prompt\n"
"  --verbose-prompt          the prompt's token ids and pieces on stderr\n"
"  --no-perf                 no timings at the end\n"
"  --log-disable             no informational lines on stderr (errors still print)\n"
"  --prompt-cache FILE       llama-cli's prompt cache: load the session FILE when\n"
"                            it exists and evaluate only the prompt's tokens past\n"
"                            the longest common start (at least the last one);\n"
"                            then save the prompt's cells to FILE. With -cnv the\n"
"                            prompt is the system turn. A FILE of another model,\n"
"                            -ctk/-ctv or --batch-numerics, or a damaged one, is\n"
"                            ignored with a warning saying why\n"
"  --prompt-cache-all        also save the generated tokens at the end (not with -cnv)\n"
"  --prompt-cache-ro         load FILE but never write it\n"
"  --mlock                   lock the weights bitnet re-lays at load in RAM (no swap);\n"
"                            a warning if the memory-lock limit refuses it\n"
"  -ngl, --n-gpu-layers N    accepted for llama-cli's scripts and ignored, with a note\n"
"                            (bitnet runs on the CPU); also --gpu-layers\n"
"  llama-cli flags that change nothing here are accepted with a note saying why:\n"
"  --no-mmap, -fa/--flash-attn [on|off|auto], -tb, --numa, --no-warmup, --color,\n"
"  -v, --simple-io; --mirostat 0, --typical 1 (their off values). Ones\n"
"  that would change the output in a way bitnet cannot follow are errors naming\n"
"  it: -i/-if/-ins (use -cnv), --in-prefix, --grammar, -j, --lora, -md,\n"
"  --rope-* overrides, other --mirostat/--typical values\n"
"\n"
"other options:\n"
"  --no-bos, --no-special    tokenize: no BOS; control-token text is not parsed\n"
"  --tokens LIST             logits: comma-separated token ids\n"
"  -o FILE                   logits: output file (float32 little-endian, n_vocab per row)\n"
"  --all                     logits: every position (default: the last one)\n"
"  --batch | --seq           logits: whole prompt in one batch (default) or one by one\n"
"  -o md|json|jsonl|csv      bench: output format (llama-bench's)\n"
"  -r N                      bench: repetitions (default 5)\n"
"  -d, --n-depth LIST        bench: tokens already in the cache when pp/tg are timed\n"
"                            (default 0; e.g. -d 0,4096); every threads x depth x\n"
"                            -p/-n combination is a row\n"
"  -np, -npl LIST            bench: tg of N sequences at once, one forward pass per\n"
"                            step (the server's continuous batching; default 1, at\n"
"                            most 64; e.g. -np 1,8): rows tgN xS, t/s summed\n"
"  --kernels                 bench: the ternary kernels alone, every variant\n"
"  --variants LIST           bench --kernels: only these variants (e.g. avx2,avx512)\n"
"  --chunks N                perplexity: score the first N windows only (default all)\n"
"  --kl-divergence-base F    perplexity: also write every scored position's log-\n"
"                            probabilities to F (llama-perplexity's file: either\n"
"                            program reads the other's)\n"
"  --kl-divergence           perplexity: compare with the base F instead (its tokens,\n"
"                            its window size; no -f): KL divergence, PPL ratio, Δp,\n"
"                            same top token, per window and in total\n"
"  --hellaswag               perplexity: -f holds HellaSwag tasks (llama.cpp's\n"
"                            hellaswag_val_full.txt: context, right ending 0-3, four\n"
"                            endings); prints the running acc_norm per task\n"
"  --hellaswag-tasks N       perplexity --hellaswag: the first N tasks (default all)\n"
"\n"
"serve options (an OpenAI-shaped HTTP server; see README, Server):\n"
"  --host ADDR               IPv4 address to listen on (default 127.0.0.1)\n"
"  --port N                  port (default 8080; 0 = any free port, logged on stderr)\n"
"  -np, --parallel N         slots: requests generated at the same time (default 1)\n"
"  -c N                      context of all slots together, -c / -np each (default:\n"
"                            the model's context length per slot)\n"
"  -t N                      threads of the one forward pass that serves every slot\n"
"                            (default: the physical cores)\n"
"  --api-key KEY             require 'Authorization: Bearer KEY' (not for /health)\n"
"  -a, --alias NAME          the model id in responses (default: the file name)\n"
"  --timeout N               seconds to receive a whole request, or to wait on an\n"
"                            idle connection (default 30)\n"
"  --max-conns N             open connections at once; more get 503 (default 64)\n"
"  --no-slots                GET /slots answers 501 (it shows what each slot runs and\n"
"                            its sampling parameters; on by default, as llama-server)\n"
"  --slot-save-path DIR      enable POST /slots/ID?action=save|restore|erase: a slot's\n"
"                            KV cache to and from files in DIR (an existing directory)\n"
"  --chat-template NAME      the chat format of /v1/chat/completions (as for -cnv)\n"
"\n"
"errors (one line 'bitnet: error: ...' on stderr, non-zero exit status):\n"
"  model file missing, unreadable or invalid ('bitnet: error: FILE: what is wrong');\n"
"  bundled model not found (lists where it looked); unknown flag or a flag of another\n"
"  command; missing flag value; bad number (the whole value must be a number);\n"
"  value out of range (-n < -2, --keep < -1, -t outside 1-256, -c < 0, --top-p/--min-p outside 0-1,\n"
"  --repeat-penalty <= 0, ...); unknown --head or --batch-numerics value; unsupported\n"
"  -ctk/-ctv type, or q8_0 on a model whose head_dim is not a multiple of 32;\n"
"  empty prompt or no prompt; prompt longer than the context; empty -r; unknown\n"
"  --kernel or BITNET_KERNEL, or one this CPU lacks; unwritable output file; a failed\n"
"  write to stdout (a reader that closes the pipe, as | head, is no error).\n"
"  A full context during generation is not an error: the context shifts (or, with\n"
"  --no-context-shift or -n -2, generation stops with a note). A chat message longer\n"
"  than the context minus the kept tokens is skipped with a note; the chat goes on.\n",
        f);
}
