/* Helpers every mode shares: finding the bundled model, loading the model
 * and a context with CLI-style errors, reading files, tokenizing, timing. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef __APPLE__
#include <mach-o/dyld.h>
#endif

#include "cli.h"

#ifndef BN_SOURCE_MODEL_DIR
#define BN_SOURCE_MODEL_DIR "models"
#endif
#ifndef BN_INSTALL_MODEL_DIR
#define BN_INSTALL_MODEL_DIR "/usr/local/share/bitnet/models"
#endif

#define BUNDLED_NAME "tiny-shakespeare.gguf"

double bn_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- stdout ------------------------------------------------------------------ */
static int g_out_state;             /* 0 fine, 1 write error (reported), 2 pipe closed */

/* Classifies a failed write to stdout; reports a real error once. */
static int out_failed(int err) {
    if (g_out_state) return -1;
    if (err == EPIPE) {
        g_out_state = 2;
        return -1;
    }
    g_out_state = 1;
    if (err) bn_err("stdout: write error: %s", strerror(err));
    else bn_err("stdout: write error");     /* an earlier buffered write failed */
    return -1;
}

int bn_cli_emit(const char *buf, int n) {
    if (g_out_state) return -1;
    errno = 0;
    if (n > 0 && fwrite(buf, 1, (size_t)n, stdout) != (size_t)n) return out_failed(errno);
    if (fflush(stdout) != 0 || ferror(stdout)) return out_failed(errno);
    return 0;
}

int bn_cli_emit_status(void) {
    return g_out_state == 2 ? 0 : 1;
}

int bn_cli_close_stdout(void) {
    if (g_out_state) return g_out_state == 1;
    errno = 0;
    if (fflush(stdout) != 0 || ferror(stdout)) {
        out_failed(errno);
        return g_out_state == 1;
    }
    return 0;
}

static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The directory of the running executable ("" when unknown: then the
 * places fixed at build time are looked in). Linux: /proc/self/exe;
 * macOS: the loader's record of the path. */
static void exe_dir(char *out, size_t cap) {
    char buf[PATH_MAX];
    out[0] = '\0';
#ifdef __APPLE__
    uint32_t size = sizeof buf;
    if (_NSGetExecutablePath(buf, &size) != 0) return;
#else
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return;
    buf[n] = '\0';
#endif
    char *slash = strrchr(buf, '/');
    if (!slash) return;
    *slash = '\0';
    snprintf(out, cap, "%s", buf);
}

const char *bn_cli_model_path(const bn_cli_opts *o) {
    static char found[PATH_MAX + 64];
    if (o->model) return o->model;
    char dir[PATH_MAX];
    exe_dir(dir, sizeof dir);
    /* next to the executable first (build tree: build/bitnet -> ../models;
     * installed: bin/bitnet -> ../share/bitnet/models), then the places
     * fixed at build time, so a moved install still finds its own copy */
    char cand[4][PATH_MAX + 64];
    int n = 0;
    if (dir[0]) snprintf(cand[n++], sizeof cand[0], "%s/../models/" BUNDLED_NAME, dir);
    if (dir[0]) snprintf(cand[n++], sizeof cand[0], "%s/../share/bitnet/models/" BUNDLED_NAME, dir);
    snprintf(cand[n++], sizeof cand[0], "%s/" BUNDLED_NAME, BN_SOURCE_MODEL_DIR);
    snprintf(cand[n++], sizeof cand[0], "%s/" BUNDLED_NAME, BN_INSTALL_MODEL_DIR);
    for (int i = 0; i < n; i++) {
        if (is_file(cand[i])) {
            memcpy(found, cand[i], sizeof found);
            return found;
        }
    }
    char list[4 * (PATH_MAX + 64) + 16];
    size_t len = 0;
    list[0] = '\0';
    for (int i = 0; i < n && len < sizeof list; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", cand[i]);
    bn_err("no -m given and the bundled model was not found (looked in: %s)", list);
    return NULL;
}

bn_model *bn_cli_load_model(const bn_cli_opts *o, int vocab_only, double *load_ms) {
    char err[512];
    const char *path = bn_cli_model_path(o);
    if (!path) return NULL;
    /* a bad kernel name is the flag's or the environment's fault, not the file's */
    if (!vocab_only && !bn_kernel_resolve(o->kernel, err, sizeof err)) {
        bn_err("%s: %s", o->kernel && o->kernel[0] ? "--kernel" : "BITNET_KERNEL", err);
        return NULL;
    }
    bn_model_params mp = bn_model_default_params();
    mp.kernel = o->kernel;
    mp.vocab_only = vocab_only;
    mp.head = o->head;
    mp.pre_tokenizer = o->pre_tokenizer;
    double t0 = bn_now_ms();
    bn_model *m = bn_model_load(path, &mp, err, sizeof err);
    double ms = bn_now_ms() - t0;
    if (!m) {
        bn_err("%s: %s", path, err);
        return NULL;
    }
    if (load_ms) *load_ms = ms;
    if (o->mlock && !vocab_only && bn_model_lock_memory(m, err, sizeof err) != 0)
        fprintf(stderr, "warning: --mlock: %s; going on unlocked\n", err);
    return m;
}

bn_sampler *bn_cli_new_sampler(const bn_cli_opts *o, const bn_tokenizer *tok, int n_ctx) {
    bn_sampler_params sp = o->sp;
    if (sp.repeat_last_n < 0) sp.repeat_last_n = n_ctx;
    bn_sampler *s = bn_sampler_new(&sp, bn_vocab_size(tok));
    if (!s) {
        bn_err("out of memory (sampler)");
        return NULL;
    }
    if (!o->log_disable) fprintf(stderr, "seed: %u\n", bn_sampler_seed(s));
    return s;
}

void bn_cli_log_notes(const bn_cli_opts *o) {
    if (o->log_disable) return;
    if (o->ngl)
        fprintf(stderr, "note: %s %s ignored: bitnet runs on the CPU (no GPU offload)\n",
                o->ngl_flag, o->ngl);
    for (int i = 0; i < o->n_notes; i++)
        fprintf(stderr, "note: %s%s%s ignored: %s\n", o->notes[i].flag, o->notes[i].value ? " " : "",
                o->notes[i].value ? o->notes[i].value : "", o->notes[i].why);
}

void bn_cli_log_load(const bn_cli_opts *o, const bn_model *m, double load_ms) {
    bn_cli_log_notes(o);
    if (o->log_disable) return;
    const bn_hparams *hp = bn_model_hparams(m);
    const char *path = o->model ? o->model : bn_cli_model_path(o);
    bn_model_desc d;
    bn_model_describe(m, &d);
    if (d.vocab_only)
        fprintf(stderr, "load: %s: vocabulary of %d tokens\n", path, hp->n_vocab);
    else
        fprintf(stderr, "load: %s: %s, %d layers, %.2fM params, %.2f MB, kernel %s, %.1f ms\n",
                path, hp->arch, hp->n_layer, (double)bn_model_n_params(m) / 1e6,
                (double)bn_model_file_size(m) / 1e6, bn_model_kernel_name(m), load_ms);
}

bn_context *bn_cli_new_context(const bn_cli_opts *o, bn_model *m, int n_outputs_max) {
    const bn_hparams *hp = bn_model_hparams(m);
    bn_context_params cp = bn_context_default_params();
    cp.n_ctx = o->n_ctx == 0 ? hp->n_ctx_train : o->n_ctx;
    /* llama.cpp's habit: a longer context is honoured, with a warning. */
    if (cp.n_ctx > hp->n_ctx_train && !o->quiet_ctx_note)
        fprintf(stderr, "warning: -c %d is longer than the model's training context (%d); "
                        "past it the model may lose coherence\n", cp.n_ctx, hp->n_ctx_train);
    cp.n_threads = o->n_threads;
    cp.n_batch = o->n_batch;
    /* -ub, llama.cpp's physical batch, caps the tokens of one forward pass */
    if (o->n_ubatch > 0 && (cp.n_batch == 0 || cp.n_batch > o->n_ubatch)) cp.n_batch = o->n_ubatch;
    cp.n_outputs_max = n_outputs_max;
    cp.type_k = o->type_k;
    cp.type_v = o->type_v;
    char err[512];
    bn_context *c = bn_context_new(m, &cp, err, sizeof err);
    if (!c) {
        bn_err("cannot create the context: %s", err);
        return NULL;
    }
    if (bn_context_set_numerics(c, o->batch_numerics, err, sizeof err) != 0) {
        bn_err("--batch-numerics: %s", err);
        bn_context_free(c);
        return NULL;
    }
    return c;
}

char *bn_cli_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        bn_err("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap) break;
        char *nb = cap < ((size_t)1 << 40) ? realloc(buf, cap * 2 + 1) : NULL;
        if (!nb) { free(buf); buf = NULL; break; }
        buf = nb;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf) {
        bn_err("%s: out of memory reading the file", path);
        return NULL;
    }
    if (bad) {
        free(buf);
        bn_err("%s: read error", path);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

int bn_cli_chat_template(const bn_cli_opts *o, const char **tmpl, char **owned) {
    *tmpl = o->chat_template;
    *owned = NULL;
    if (o->chat_template && o->chat_template_file)
        return bn_err("give --chat-template or --chat-template-file, not both");
    if (!o->chat_template_file) return 0;
    size_t len = 0;
    if (!(*owned = bn_cli_read_file(o->chat_template_file, &len))) return 1;
    if (strlen(*owned) != len) {
        free(*owned);
        *owned = NULL;
        return bn_err("%s: the chat template holds a NUL byte", o->chat_template_file);
    }
    *tmpl = *owned;
    return 0;
}

char *bn_cli_prompt_text(const bn_cli_opts *o, size_t *len) {
    if (o->prompt && o->file) {
        bn_err("give either -p or -f, not both");
        return NULL;
    }
    char *text;
    if (o->file) {
        text = bn_cli_read_file(o->file, len);
        if (!text) return NULL;
        if (*len == 0) {
            free(text);
            bn_err("%s: empty prompt file", o->file);
            return NULL;
        }
        return text;
    }
    if (!o->prompt) {
        bn_err("no prompt: give -p TEXT or -f FILE (see bitnet --help)");
        return NULL;
    }
    if (o->prompt_len == 0) {
        bn_err("empty prompt");
        return NULL;
    }
    text = malloc(o->prompt_len + 1);
    if (!text) {
        bn_err("out of memory");
        return NULL;
    }
    memcpy(text, o->prompt, o->prompt_len + 1);
    *len = o->prompt_len;
    return text;
}

int32_t *bn_cli_tokenize(const bn_tokenizer *t, const char *text, size_t len,
                         int add_bos, int parse_special, int *n) {
    if (len > (size_t)INT_MAX / 2) {
        bn_err("text too long (%zu bytes)", len);
        return NULL;
    }
    int cap = (int)len + 2;         /* byte-level BPE: at most one token per byte (+ BOS) */
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    if (!ids) {
        bn_err("out of memory");
        return NULL;
    }
    int k = bn_tokenize(t, text, len, add_bos, parse_special, ids, cap);
    if (k > cap) {                  /* a vocabulary without every byte: retry */
        int32_t *more = realloc(ids, (size_t)k * sizeof *ids);
        if (!more) { free(ids); bn_err("out of memory"); return NULL; }
        ids = more;
        k = bn_tokenize(t, text, len, add_bos, parse_special, ids, k);
    }
    if (k < 0) {
        free(ids);
        bn_err("cannot tokenize the text");
        return NULL;
    }
    *n = k;
    return ids;
}

/* ---- -r: reverse prompts --------------------------------------------------------- */
int bn_cli_stop_init(bn_cli_stop *st, const bn_cli_opts *o) {
    memset(st, 0, sizeof *st);
    st->text = o->reverse;
    st->n = o->n_reverse;
    for (int i = 0; i < st->n; i++) {
        size_t l = strlen(o->reverse[i]);
        if (l > st->longest) st->longest = l;
    }
    if (st->n == 0) return 0;
    st->cap = st->longest + BN_CLI_PIECE;
    st->tail = malloc(st->cap);
    if (!st->tail) return bn_err("out of memory");
    return 0;
}

void bn_cli_stop_free(bn_cli_stop *st) {
    free(st->tail);
    st->tail = NULL;
}

void bn_cli_stop_reset(bn_cli_stop *st) {
    st->len = 0;
}

int bn_cli_stop_push(bn_cli_stop *st, const char *s, int n) {
    if (st->n == 0 || n <= 0) return 0;
    /* Keep the bytes a match ending in s could start in; an older match
     * would have been found by an earlier push. */
    size_t keep = st->longest > 0 ? st->longest - 1 : 0, add = (size_t)n;
    if (add > st->cap - keep) {     /* never for a piece of BN_CLI_PIECE bytes */
        s += add - (st->cap - keep);
        add = st->cap - keep;
    }
    if (st->len > keep) {
        memmove(st->tail, st->tail + st->len - keep, keep);
        st->len = keep;
    }
    memcpy(st->tail + st->len, s, add);
    st->len += add;
    for (int i = 0; i < st->n; i++) {
        size_t l = strlen(st->text[i]);
        for (size_t at = 0; l > 0 && at + l <= st->len; at++)    /* memmem is not POSIX */
            if (memcmp(st->tail + at, st->text[i], l) == 0) return 1;
    }
    return 0;
}

/* ---- --ignore-eos ---------------------------------------------------------------- */
int bn_cli_noeog_init(bn_cli_noeog *ne, const bn_tokenizer *t) {
    memset(ne, 0, sizeof *ne);
    ne->n_vocab = bn_vocab_size(t);
    for (int32_t id = 0; id < ne->n_vocab; id++) ne->n_eog += bn_token_is_eog(t, id) != 0;
    ne->logits = malloc((size_t)ne->n_vocab * sizeof *ne->logits);
    ne->eog = malloc(((size_t)ne->n_eog + 1) * sizeof *ne->eog);
    if (!ne->logits || !ne->eog) {
        bn_cli_noeog_free(ne);
        return bn_err("out of memory");
    }
    int k = 0;
    for (int32_t id = 0; id < ne->n_vocab; id++)
        if (bn_token_is_eog(t, id)) ne->eog[k++] = id;
    return 0;
}

void bn_cli_noeog_free(bn_cli_noeog *ne) {
    free(ne->logits);
    free(ne->eog);
    ne->logits = NULL;
    ne->eog = NULL;
}

const float *bn_cli_noeog_apply(bn_cli_noeog *ne, const float *logits) {
    memcpy(ne->logits, logits, (size_t)ne->n_vocab * sizeof *logits);
    for (int i = 0; i < ne->n_eog; i++) ne->logits[ne->eog[i]] = -INFINITY;
    return ne->logits;
}

/* The exact head computes what the sampler reads; banned EOG ids leave
 * top-k others exact (bitnet.h, bn_context_set_exact_head). */
void bn_cli_exact_head(bn_context *c, const bn_sampler *s, const bn_cli_noeog *ne) {
    bn_context_set_exact_head(c, 0, ne ? ne->eog : NULL, ne ? ne->n_eog : 0, NULL, 0);
    bn_context_set_sampler(c, s);
}

void bn_cli_print_full_rows_head(const bn_model *m) {
    bn_model_desc d;
    bn_model_describe(m, &d);
    if (strcmp(d.head, "exact") == 0)
        fprintf(stderr, "head: f16 (every row from the F16 table: the exact head's rows)\n");
    else
        fprintf(stderr, "head: %s\n", d.head);
}

void bn_cli_print_tokens(const bn_tokenizer *tok, const int32_t *ids, int n) {
    fprintf(stderr, "prompt tokens: %d\n", n);
    for (int i = 0; i < n; i++) {
        char piece[BN_CLI_PIECE];
        int np = bn_token_to_bytes(tok, ids[i], 1, piece, (int)sizeof piece);
        if (np > (int)sizeof piece) np = (int)sizeof piece;     /* shown cut, as a log line */
        fprintf(stderr, "%6d -> '", ids[i]);
        for (int k = 0; k < np; k++) {      /* control bytes escaped: one line per token */
            unsigned char ch = (unsigned char)piece[k];
            if (ch < 0x20 || ch == 0x7f || ch == '\\' || ch == '\'') fprintf(stderr, "\\x%02x", ch);
            else fputc(ch, stderr);
        }
        fputs("'\n", stderr);
    }
}

void bn_cli_print_head_stats(const bn_context *c) {
    bn_head_stats hs;
    bn_context_head_stats(c, &hs);
    if (hs.screened_rows > 0)
        fprintf(stderr, "bitnet: %16s = %10.1f F16 rows rescored per token (%llu tokens screened, "
                "%llu computed whole)\n", "exact head",
                (double)hs.rescored_rows / (double)hs.screened_rows,
                (unsigned long long)hs.screened_rows, (unsigned long long)hs.full_rows);
}

/* ---- context shift ---------------------------------------------------------------- */
int bn_cli_keep(const bn_cli_opts *o, int n_prompt, int add_bos, int chat_default) {
    int n = o->n_keep;
    if (n == BN_CLI_KEEP_DEFAULT) n = chat_default ? -1 : 0;
    if (n < 0 || n > n_prompt) return n_prompt;
    n += add_bos != 0;
    return n < n_prompt ? n : n_prompt;
}

int bn_cli_make_room(bn_context *c, bn_cli_shift *sh, int n) {
    const int n_ctx = bn_context_n_ctx(c), n_past = bn_context_n_past(c);
    if (n_past + n < n_ctx) return 0;
    int keep = sh->keep < n_past ? sh->keep : n_past;
    /* no shift, or nothing a shift could free: the last cells, then stop */
    if (!sh->enabled || keep + n >= n_ctx) return n_past + n > n_ctx;
    /* half of what follows the kept tokens; at least what n needs */
    int n_discard = (n_past - keep) / 2, need = n_past + n - (n_ctx - 1);
    if (n_discard < need) n_discard = need;
    char err[256];
    if (bn_context_shift(c, keep, n_discard, err, sizeof err) != 0) {
        bn_err("context shift: %s", err);
        return -1;
    }
    sh->n_shifts++;
    sh->n_discarded += n_discard;
    return 0;
}
