/* Synthetic model writer (see synth.h for the layout and the weight
 * distributions). Tensor data is produced by the GGUF writer's fill
 * callbacks straight into the output file, one tensor at a time. */
#include "synth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_writer.h"
#include "i2s.h"
#include "kernels.h"

/* The chat template of the published file, byte for byte (the \n are the
 * two characters backslash and n inside a Jinja string literal). */
static const char CHAT_TEMPLATE[] =
    "{% for message in messages %}{% if loop.first %}{{ bos_token }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ 'Human: ' + message['content'] + "
    "'\\n\\nBITNETAssistant: ' + eos_token }}{% elif message['role'] == 'assistant' %}"
    "{{ message['content'] + eos_token }}{% endif %}{% endfor %}";

#define LLAMA_FTYPE_MOSTLY_I2_S 40

/* ---- presets and validation ------------------------------------------------- */

int bn_synth_preset(const char *name, const char *default_vocab_file, bn_synth_config *c) {
    memset(c, 0, sizeof *c);
    c->rms_eps = 1e-5f;
    c->vocab_file = default_vocab_file;
    c->seed = 42;
    if (strcmp(name, "2b4t") == 0) {
        c->n_layer = 30; c->n_embd = 2560; c->n_head = 20; c->n_head_kv = 5;
        c->n_ff = 6912; c->n_ctx = 4096; c->rope_theta = 500000.0f;
        c->vocab = BN_SYNTH_VOCAB_LLAMA3;
        c->name = "bitnet2b";
        return 0;
    }
    if (strcmp(name, "small") == 0) {
        c->n_layer = 2; c->n_embd = 256; c->n_head = 4; c->n_head_kv = 2;
        c->n_ff = 768; c->n_ctx = 256; c->rope_theta = 10000.0f;
        c->vocab = BN_SYNTH_VOCAB_BYTES;
        c->name = "bitnet-synth-small";
        return 0;
    }
    return -1;
}

int bn_synth_validate(const bn_synth_config *c, char *err, size_t errlen) {
    struct { const char *what; int v, lo, hi; } r[] = {
        { "--layers", c->n_layer, 1, 1024 }, { "--embd", c->n_embd, 128, 65536 },
        { "--heads", c->n_head, 1, 4096 }, { "--kv-heads", c->n_head_kv, 1, 4096 },
        { "--ff", c->n_ff, 128, 262144 }, { "--ctx", c->n_ctx, 1, 1 << 24 },
    };
    for (size_t i = 0; i < sizeof r / sizeof r[0]; i++)
        if (r[i].v < r[i].lo || r[i].v > r[i].hi) {
            snprintf(err, errlen, "%s %d is out of range [%d, %d]", r[i].what, r[i].v,
                     r[i].lo, r[i].hi);
            return -1;
        }
    if (c->n_embd % 128 != 0 || c->n_ff % 128 != 0) {
        snprintf(err, errlen, "--embd %d and --ff %d must be multiples of 128 (I2_S blocks)",
                 c->n_embd, c->n_ff);
        return -1;
    }
    if (c->n_embd % c->n_head != 0 || (c->n_embd / c->n_head) % 2 != 0) {
        snprintf(err, errlen, "--embd %d must be an even multiple of --heads %d "
                 "(even head dimension)", c->n_embd, c->n_head);
        return -1;
    }
    if (c->n_head % c->n_head_kv != 0) {
        snprintf(err, errlen, "--heads %d must be a multiple of --kv-heads %d",
                 c->n_head, c->n_head_kv);
        return -1;
    }
    if (!isfinite(c->rope_theta) || !(c->rope_theta > 0.0f)) {
        snprintf(err, errlen, "--rope-theta must be a positive number");
        return -1;
    }
    return 0;
}

/* ---- random numbers ------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1) with 53 random bits. */
static double uniform01(uint64_t *s) { return (double)(splitmix64(s) >> 11) * 0x1.0p-53; }

/* Stream state of one tensor: the model seed mixed with the name (FNV-1a). */
static uint64_t tensor_stream(uint64_t seed, const char *name) {
    uint64_t h = 0xCBF29CE484222325ull;
    for (const char *p = name; *p; p++)
        h = (h ^ (uint8_t)*p) * 0x100000001B3ull;
    uint64_t s = seed ^ h;
    splitmix64(&s);                 /* decorrelate nearby seeds */
    return s;
}

/* ---- ternary tensors ------------------------------------------------------------ */

/* A payload byte is four independent base-3 digits (one per 32-weight group
 * of its block, SPEC 2.2): index d = 27a + 9b + 3c + e (0..80) picks the byte
 * a<<6 | b<<4 | c<<2 | e, i.e. codes a..e = weights a-1 .. e-1. */
static void digits_table(uint8_t byte_of[81]) {
    for (int d = 0; d < 81; d++)
        byte_of[d] = (uint8_t)((d / 27) << 6 | (d / 9 % 3) << 4 | (d / 3 % 3) << 2 | (d % 3));
}

/* Draws the next digit index 0..80 from 16 random bits (bias < 0.2%). */
typedef struct digit_stream {
    uint64_t s, cur;
    int left;
} digit_stream;

static int next_digits(digit_stream *ds) {
    if (ds->left == 0) {
        ds->cur = splitmix64(&ds->s);
        ds->left = 4;
    }
    int d = (int)(((ds->cur & 0xFFFF) * 81) >> 16);
    ds->cur >>= 16;
    ds->left--;
    return d;
}

static float ternary_scale(uint64_t *s, int K) {
    double sc = (0.8 + 0.4 * uniform01(s)) / sqrt(2.0 * K / 3.0);
    if (sc < 0.02) sc = 0.02;
    if (sc > 0.1) sc = 0.1;
    return (float)sc;
}

void bn_synth_ternary(uint64_t seed, const char *name, int K, int M, int8_t *w, float *scale) {
    uint64_t s = tensor_stream(seed, name);
    *scale = ternary_scale(&s, K);
    digit_stream ds = { s, 0, 0 };
    uint64_t n_bytes = (uint64_t)K * (uint64_t)M / 4;
    for (uint64_t i = 0; i < n_bytes; i++) {
        int d = next_digits(&ds);
        uint64_t base = (i / 32) * BN_I2S_BLOCK + i % 32;   /* weight of group 0 */
        w[base] = (int8_t)(d / 27 - 1);
        w[base + 32] = (int8_t)(d / 9 % 3 - 1);
        w[base + 64] = (int8_t)(d / 3 % 3 - 1);
        w[base + 96] = (int8_t)(d % 3 - 1);
    }
}

/* ---- fill callbacks ---------------------------------------------------------------- */

typedef struct fill_job {
    uint64_t seed;
    char name[96];
    int K;                          /* input width (ternary scale) */
    const uint16_t *normal_f16;     /* embedding table */
} fill_job;

static void fill_ternary(void *ctx, uint8_t *dst, uint64_t nbytes) {
    const fill_job *j = ctx;
    uint8_t byte_of[81];
    digits_table(byte_of);
    uint64_t s = tensor_stream(j->seed, j->name);
    float scale = ternary_scale(&s, j->K);
    digit_stream ds = { s, 0, 0 };
    uint64_t payload = nbytes - BN_I2S_TAIL;
    for (uint64_t i = 0; i < payload; i++)
        dst[i] = byte_of[next_digits(&ds)];
    memset(dst + payload, 0, BN_I2S_TAIL);
    memcpy(dst + payload, &scale, sizeof scale);
}

static void fill_norm(void *ctx, uint8_t *dst, uint64_t nbytes) {
    const fill_job *j = ctx;
    uint64_t s = tensor_stream(j->seed, j->name);
    for (uint64_t i = 0; i + 4 <= nbytes; i += 4) {
        float v = (float)(0.9 + 0.2 * uniform01(&s));
        memcpy(dst + i, &v, 4);
    }
}

static void fill_f16(void *ctx, uint8_t *dst, uint64_t nbytes) {
    const fill_job *j = ctx;
    uint64_t s = tensor_stream(j->seed, j->name);
    uint64_t n = nbytes / 2, i = 0;
    for (; i + 4 <= n; i += 4) {
        uint64_t r = splitmix64(&s);
        uint16_t h[4] = { j->normal_f16[r & 0xFFFF], j->normal_f16[(r >> 16) & 0xFFFF],
                          j->normal_f16[(r >> 32) & 0xFFFF], j->normal_f16[r >> 48] };
        memcpy(dst + 2 * i, h, sizeof h);
    }
    for (; i < n; i++) {
        uint16_t h = j->normal_f16[splitmix64(&s) & 0xFFFF];
        memcpy(dst + 2 * i, &h, 2);
    }
}

/* Any other type (only reachable through the retype test hook): zeros. */
static void fill_zero(void *ctx, uint8_t *dst, uint64_t nbytes) {
    (void)ctx;
    memset(dst, 0, nbytes);
}

/* 65536 samples of N(0, 0.02) as f16 (Box-Muller on the model's seed). */
static void normal_table(uint64_t seed, uint16_t *t) {
    uint64_t s = seed ^ 0x5EED5EED5EED5EEDull;
    for (int i = 0; i < 65536; i += 2) {
        double u1 = 1.0 - uniform01(&s), u2 = uniform01(&s);
        double r = sqrt(-2.0 * log(u1)) * 0.02;
        t[i] = bn_f32_to_f16((float)(r * cos(2.0 * M_PI * u2)));
        t[i + 1] = bn_f32_to_f16((float)(r * sin(2.0 * M_PI * u2)));
    }
}

/* ---- vocabularies -------------------------------------------------------------- */

typedef struct vocab {
    uint64_t n_tokens, n_merges;
    gguf_str *tokens, *merges;      /* point into `src` or `text` */
    float *scores;
    int32_t *types;
    uint32_t bos, eos;
    int has_pre;                    /* write tokenizer.ggml.pre = llama-bpe */
    gguf_file src;                  /* the LLaMA-3 vocab file (kept open) */
    int src_open;
    char *text;                     /* byte vocab strings */
} vocab;

static void vocab_free(vocab *v) {
    free(v->tokens);
    free(v->merges);
    free(v->scores);
    free(v->types);
    free(v->text);
    if (v->src_open)
        gguf_close(&v->src);
}

static int read_str_array(const gguf_file *f, const char *key, gguf_str **out, uint64_t *n,
                          char *err, size_t errlen) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv || kv->type != GGUF_ARRAY || kv->arr_type != GGUF_STRING) {
        snprintf(err, errlen, "vocab file has no string array '%s'", key);
        return -1;
    }
    *n = kv->arr_n;
    *out = malloc((size_t)(kv->arr_n ? kv->arr_n : 1) * sizeof **out);
    if (!*out) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    const uint8_t *cur = kv->data;
    for (uint64_t i = 0; i < kv->arr_n; i++)
        (*out)[i] = gguf_arr_str_next(&cur);
    return 0;
}

/* Tokens, types and merges copied from a GGUF vocabulary (the committed
 * vocab-only fixture or any LLaMA-3 model); scores copied when present, else
 * 0 for normal and -1000 for control tokens like the published converter. */
static int vocab_llama3(vocab *v, const char *path, char *err, size_t errlen) {
    char why[192];
    if (!path) {
        snprintf(err, errlen, "no LLaMA-3 vocabulary file (use --vocab-file)");
        return -1;
    }
    if (gguf_open(&v->src, path, why, sizeof why) != 0) {
        snprintf(err, errlen, "vocab file %s: %s", path, why);
        return -1;
    }
    v->src_open = 1;
    const gguf_file *f = &v->src;
    if (read_str_array(f, "tokenizer.ggml.tokens", &v->tokens, &v->n_tokens, err, errlen) ||
        read_str_array(f, "tokenizer.ggml.merges", &v->merges, &v->n_merges, err, errlen))
        return -1;
    const gguf_kv *types = gguf_find_kv(f, "tokenizer.ggml.token_type");
    if (!types || types->type != GGUF_ARRAY || types->arr_n != v->n_tokens) {
        snprintf(err, errlen, "vocab file has no token_type array of %llu entries",
                 (unsigned long long)v->n_tokens);
        return -1;
    }
    const gguf_kv *scores = gguf_find_kv(f, "tokenizer.ggml.scores");
    if (scores && (scores->type != GGUF_ARRAY || scores->arr_n != v->n_tokens))
        scores = NULL;
    v->types = malloc((size_t)v->n_tokens * sizeof *v->types);
    v->scores = malloc((size_t)v->n_tokens * sizeof *v->scores);
    if (!v->types || !v->scores) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (uint64_t i = 0; i < v->n_tokens; i++) {
        v->types[i] = (int32_t)gguf_arr_int(types, i);
        v->scores[i] = scores ? (float)gguf_arr_float(scores, i)
                              : (v->types[i] == 3 ? -1000.0f : 0.0f);
    }
    v->bos = 128000;
    v->eos = 128001;
    gguf_get_u32(f, "tokenizer.ggml.bos_token_id", &v->bos);
    gguf_get_u32(f, "tokenizer.ggml.eos_token_id", &v->eos);
    return 0;
}

/* GPT-2's byte-to-unicode map: printable Latin-1 bytes stand for themselves,
 * the rest are shifted to U+0100 and up, in byte order. */
static unsigned byte_to_codepoint(unsigned b) {
    unsigned extra = 0;
    for (unsigned x = 0; x < 256; x++) {
        int printable = (x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174);
        if (x == b)
            return printable ? x : 256 + extra;
        if (!printable)
            extra++;
    }
    return 0;
}

static size_t put_utf8(char *out, unsigned cp) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;                       /* every code point here is < U+0800 */
}

/* A small byte-level BPE: the 256 bytes (id = byte value), a few English
 * merges, then BOS / EOS / EOT as control tokens (like the mid-2b4t model). */
static int vocab_bytes(vocab *v, char *err, size_t errlen) {
    static const char *const merges[][2] = {
        { "\xC4\xA0", "t" }, { "h", "e" }, { "\xC4\xA0", "a" }, { "i", "n" },
        { "\xC4\xA0t", "he" }, { "e", "r" }, { "o", "u" }, { "\xC4\xA0", "s" },
        { "a", "n" }, { "o", "r" }, { "\xC4\xA0", "w" }, { "e", "n" },
        { "\xC4\xA0", "m" }, { "l", "l" }, { "\xC4\xA0", "h" }, { "\xC4\xA0", "b" },
    };
    static const char *const specials[] = { "<|begin_of_text|>", "<|end_of_text|>",
                                            "<|eot_id|>" };
    const size_t n_m = sizeof merges / sizeof merges[0];
    v->n_tokens = 256 + n_m + 3;
    v->n_merges = n_m;
    v->tokens = malloc((size_t)v->n_tokens * sizeof *v->tokens);
    v->merges = malloc(n_m * sizeof *v->merges);
    v->types = malloc((size_t)v->n_tokens * sizeof *v->types);
    v->scores = malloc((size_t)v->n_tokens * sizeof *v->scores);
    v->text = malloc(4096);
    if (!v->tokens || !v->merges || !v->types || !v->scores || !v->text) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char *p = v->text;
    uint64_t id = 0;
    for (unsigned b = 0; b < 256; b++, id++) {
        size_t len = put_utf8(p, byte_to_codepoint(b));
        v->tokens[id] = (gguf_str){ p, len };
        p += len;
    }
    for (size_t i = 0; i < n_m; i++, id++) {
        size_t la = strlen(merges[i][0]), lb = strlen(merges[i][1]);
        memcpy(p, merges[i][0], la);
        p[la] = ' ';
        memcpy(p + la + 1, merges[i][1], lb);
        v->merges[i] = (gguf_str){ p, la + 1 + lb };
        v->tokens[id] = (gguf_str){ p + la + 1 + lb, la + lb };
        memcpy(p + la + 1 + lb, merges[i][0], la);
        memcpy(p + la + 1 + lb + la, merges[i][1], lb);
        p += la + 1 + lb + la + lb;
    }
    for (size_t i = 0; i < 3; i++, id++)
        v->tokens[id] = (gguf_str){ specials[i], strlen(specials[i]) };
    for (uint64_t i = 0; i < v->n_tokens; i++) {
        v->types[i] = i < v->n_tokens - 3 ? 1 : 3;
        v->scores[i] = i < v->n_tokens - 3 ? 0.0f : -1000.0f;
    }
    v->bos = (uint32_t)(v->n_tokens - 3);
    v->eos = (uint32_t)(v->n_tokens - 2);
    v->has_pre = 1;
    return 0;
}

/* ---- the file ---------------------------------------------------------------------- */

static int omitted(const bn_synth_config *c, const char *name) {
    return c->omit && strcmp(c->omit, name) == 0;
}

static void write_kvs(gguf_writer *w, const bn_synth_config *c, const vocab *v) {
    const char *arch = c->arch ? c->arch : "bitnet-b1.58";
    char key[160];
#define ARCH_KEY(suffix) (snprintf(key, sizeof key, "%s." suffix, arch), key)
#define KV(keyexpr, call) do { const char *k_ = (keyexpr); if (!omitted(c, k_)) call; } while (0)
    KV("general.architecture", gguf_w_str(w, k_, arch));
    KV("general.name", gguf_w_str(w, k_, c->name ? c->name : "bitnet-synth"));
    KV(ARCH_KEY("vocab_size"), gguf_w_u32(w, k_, (uint32_t)v->n_tokens));
    KV(ARCH_KEY("context_length"), gguf_w_u32(w, k_, (uint32_t)c->n_ctx));
    KV(ARCH_KEY("embedding_length"), gguf_w_u32(w, k_, (uint32_t)c->n_embd));
    KV(ARCH_KEY("block_count"), gguf_w_u32(w, k_, (uint32_t)c->n_layer));
    KV(ARCH_KEY("feed_forward_length"), gguf_w_u32(w, k_, (uint32_t)c->n_ff));
    KV(ARCH_KEY("rope.dimension_count"),
       gguf_w_u32(w, k_, (uint32_t)(c->n_head ? c->n_embd / c->n_head : 0)));
    KV(ARCH_KEY("attention.head_count"), gguf_w_u32(w, k_, (uint32_t)c->n_head));
    KV(ARCH_KEY("attention.head_count_kv"), gguf_w_u32(w, k_, (uint32_t)c->n_head_kv));
    KV("tokenizer.ggml.add_bos_token", gguf_w_bool(w, k_, 1));
    KV(ARCH_KEY("attention.layer_norm_rms_epsilon"), gguf_w_f32(w, k_, c->rms_eps));
    KV(ARCH_KEY("rope.freq_base"), gguf_w_f32(w, k_, c->rope_theta));
    KV("general.file_type", gguf_w_u32(w, k_, LLAMA_FTYPE_MOSTLY_I2_S));
    KV("tokenizer.ggml.model", gguf_w_str(w, k_, "gpt2"));
    if (v->has_pre)
        KV("tokenizer.ggml.pre", gguf_w_str(w, k_, "llama-bpe"));
    KV("tokenizer.ggml.tokens", gguf_w_arr_str(w, k_, v->tokens, v->n_tokens));
    KV("tokenizer.ggml.scores", gguf_w_arr(w, k_, GGUF_F32, v->scores, v->n_tokens));
    KV("tokenizer.ggml.token_type", gguf_w_arr(w, k_, GGUF_I32, v->types, v->n_tokens));
    KV("tokenizer.ggml.merges", gguf_w_arr_str(w, k_, v->merges, v->n_merges));
    KV("tokenizer.ggml.bos_token_id", gguf_w_u32(w, k_, v->bos));
    KV("tokenizer.ggml.eos_token_id", gguf_w_u32(w, k_, v->eos));
    KV("tokenizer.ggml.padding_token_id", gguf_w_u32(w, k_, v->eos));
    KV("tokenizer.chat_template", gguf_w_str(w, k_, CHAT_TEMPLATE));
    KV("general.quantization_version", gguf_w_u32(w, k_, 2));
#undef KV
#undef ARCH_KEY
}

/* Adds one tensor (unless omitted; retyped when the hook names it). */
static void add_tensor(gguf_writer *w, const bn_synth_config *c, fill_job *job,
                       const char *name, uint32_t type, uint32_t n_dims, uint64_t ne0,
                       uint64_t ne1) {
    if (omitted(c, name))
        return;
    uint64_t ne[2] = { ne0, ne1 };
    if (c->retype && strcmp(c->retype, name) == 0) {
        type = c->retype_type;
        n_dims = c->retype_n_dims;
        ne[0] = c->retype_ne[0];
        ne[1] = c->retype_ne[1];
    }
    snprintf(job->name, sizeof job->name, "%s", name);
    job->K = (int)ne[0];
    gguf_fill_fn fill = type == GGML_I2_S ? fill_ternary : type == GGML_F32 ? fill_norm
                      : type == GGML_F16 ? fill_f16 : fill_zero;
    gguf_w_tensor(w, name, type, n_dims, ne, NULL, fill, job);
}

/* Block numbers in lexicographic order of their decimal text (0, 1, 10, 11,
 * ..., 19, 2, 20, ...), as in the published file. */
static int cmp_block_text(const void *a, const void *b) {
    char x[16], y[16];
    snprintf(x, sizeof x, "%d", *(const int *)a);
    snprintf(y, sizeof y, "%d", *(const int *)b);
    return strcmp(x, y);
}

int bn_synth_write(const bn_synth_config *c, const char *path, char *err, size_t errlen) {
    vocab v;
    memset(&v, 0, sizeof v);
    int rc = -1;
    gguf_writer *w = NULL;
    fill_job *jobs = NULL;
    int *order = NULL;
    uint16_t *table = NULL;

    if (c->n_layer < 0 || c->n_layer > 100000) {
        snprintf(err, errlen, "bad layer count %d", c->n_layer);
        return -1;
    }
    if ((c->vocab == BN_SYNTH_VOCAB_LLAMA3 ? vocab_llama3(&v, c->vocab_file, err, errlen)
                                           : vocab_bytes(&v, err, errlen)) != 0)
        goto out;
    size_t n_jobs = 3 + (size_t)c->n_layer * 11;
    w = gguf_writer_new(32);
    jobs = calloc(n_jobs, sizeof *jobs);
    order = malloc((size_t)(c->n_layer ? c->n_layer : 1) * sizeof *order);
    table = malloc(65536 * sizeof *table);
    if (!w || !jobs || !order || !table) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    normal_table(c->seed, table);
    for (size_t i = 0; i < n_jobs; i++) {
        jobs[i].seed = c->seed;
        jobs[i].normal_f16 = table;
    }
    write_kvs(w, c, &v);

    const uint64_t E = (uint64_t)c->n_embd, F = (uint64_t)c->n_ff;
    const uint64_t KV = c->n_head ? E / (uint64_t)c->n_head * (uint64_t)c->n_head_kv : 0;
    fill_job *job = jobs;
    add_tensor(w, c, job++, "token_embd.weight", GGML_F16, 2, E, v.n_tokens);
    for (int i = 0; i < c->n_layer; i++)
        order[i] = i;
    qsort(order, (size_t)c->n_layer, sizeof *order, cmp_block_text);
    /* Within a block: the published file's order (alphabetical per ggml's
     * tensor map in the converter). */
    struct { const char *suffix; uint32_t type; int n_dims; char k, m; } per_block[11] = {
        { "attn_norm", GGML_F32, 1, 'E', 0 }, { "ffn_down", GGML_I2_S, 2, 'F', 'E' },
        { "ffn_sub_norm", GGML_F32, 1, 'F', 0 }, { "ffn_gate", GGML_I2_S, 2, 'E', 'F' },
        { "ffn_up", GGML_I2_S, 2, 'E', 'F' }, { "ffn_norm", GGML_F32, 1, 'E', 0 },
        { "attn_sub_norm", GGML_F32, 1, 'E', 0 }, { "attn_k", GGML_I2_S, 2, 'E', 'K' },
        { "attn_output", GGML_I2_S, 2, 'E', 'E' }, { "attn_q", GGML_I2_S, 2, 'E', 'E' },
        { "attn_v", GGML_I2_S, 2, 'E', 'K' },
    };
    for (int oi = 0; oi < c->n_layer; oi++) {
        for (int t = 0; t < 11; t++) {
            char name[96];
            snprintf(name, sizeof name, "blk.%d.%s.weight", order[oi], per_block[t].suffix);
            uint64_t dim[2];
            char sel[2] = { per_block[t].k, per_block[t].m };
            for (int d = 0; d < 2; d++)
                dim[d] = sel[d] == 'E' ? E : sel[d] == 'F' ? F : sel[d] == 'K' ? KV : 1;
            add_tensor(w, c, job++, name, per_block[t].type, (uint32_t)per_block[t].n_dims,
                       dim[0], dim[1]);
        }
    }
    add_tensor(w, c, job++, "output_norm.weight", GGML_F32, 1, E, 1);
    if (c->with_output_weight)
        add_tensor(w, c, job++, "output.weight", GGML_F16, 2, E, v.n_tokens);
    rc = gguf_writer_write(w, path, err, errlen);
out:
    gguf_writer_free(w);
    free(jobs);
    free(order);
    free(table);
    vocab_free(&v);
    return rc;
}
