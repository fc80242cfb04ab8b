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

/* Shapes of the published models (docs/FORMAT.md, Hyperparameters). Where
 * the model card does not give a number (marked "chosen"), the value is
 * this tool's pick: Falcon3's head is written untied (the larger files, so
 * the memory plan of an untied head is what gets measured) and Falcon-E's
 * widths, heads, contexts and vocabulary are plausible guesses (the 1B
 * untied, as bitnet.cpp's notes say). Vocabularies other than LLaMA-3 are a
 * byte vocabulary padded to the model's size (the tokenizer is not what
 * these files are for). */
typedef struct preset {
    const char *name, *arch, *model_name;
    int n_layer, n_embd, n_head, n_head_kv, head_dim, n_ff, n_ctx, vocab_size;
    float theta;
    int untied, llama3_vocab;
} preset;

static const preset PRESETS[] = {
    /* name          arch      general.name                     L   E     H   Hkv D    F      ctx    V       theta   untied llama3 */
    {"large", "bitnet", "bitnet_b1_58-large",                   24, 1536, 16, 16, 0,   4096,  2048,  32002,  10000, 0, 0},
    {"3b", "bitnet", "bitnet_b1_58-3B",                         26, 3200, 32, 32, 0,   8640,  2048,  32002,  10000, 0, 0},
    {"llama3-8b", "llama", "Llama3-8B-1.58-100B-tokens",        32, 4096, 32, 8,  0,   14336, 8192,  0,      500000, 1, 1},
    /* Falcon3: heads, widths, layers, theta and vocab from the model cards;
     * 1B context 8K, the others 32K; untied (chosen). */
    {"falcon3-1b", "llama", "Falcon3-1B-Instruct-1.58bit",      18, 2048, 8,  4,  256, 8192,  8192,  131072, 1000042, 1, 0},
    {"falcon3-3b", "llama", "Falcon3-3B-Instruct-1.58bit",      22, 3072, 12, 4,  256, 9216,  32768, 131072, 1000042, 1, 0},
    {"falcon3-7b", "llama", "Falcon3-7B-Instruct-1.58bit",      28, 3072, 12, 4,  256, 23040, 32768, 131072, 1000042, 1, 0},
    {"falcon3-10b", "llama", "Falcon3-10B-Instruct-1.58bit",    40, 3072, 12, 4,  256, 23040, 32768, 131072, 1000042, 1, 0},
    /* Falcon-E: layers 24 / 32; everything else chosen (head_dim 128,
     * a 32768-token vocabulary, context 2048, theta 10000). */
    {"falcon-e-1b", "llama", "Falcon-E-1B-Instruct",            24, 2048, 16, 4,  0,   8192,  2048,  32768,  10000, 1, 0},
    {"falcon-e-3b", "llama", "Falcon-E-3B-Instruct",            32, 3072, 24, 8,  0,   9216,  2048,  32768,  10000, 0, 0},
    /* Small models of each architecture for tests: the shapes of the
     * reference models in ../shared (fam-bitnet-spm: Q8_0 head, head_dim
     * 96, ffn_down K = 1056; fam-falcon3: head_dim 256), and an untied
     * llama with head_dim 100 (attn_output K = 400) and n_ff 800, both K
     * off the 128 grid. */
    {"small-bitnet", "bitnet", "bitnet-synth-small-bitnet",     2,  384,  4,  4,  0,   1056,  256,   0,      10000, 0, 0},
    {"small-llama", "llama", "bitnet-synth-small-llama",        2,  512,  2,  1,  256, 1536,  256,   0,      1000042, 0, 0},
    {"small-llama-untied", "llama", "bitnet-synth-small-llama-untied", 2, 256, 4, 1, 100, 800, 256, 0,      500000, 1, 0},
};

const char *bn_synth_preset_names(void) {
    return "2b4t, small, large, 3b, llama3-8b, falcon3-1b, falcon3-3b, falcon3-7b, falcon3-10b, "
           "falcon-e-1b, falcon-e-3b, small-bitnet, small-llama, small-llama-untied";
}

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
    for (size_t i = 0; i < sizeof PRESETS / sizeof PRESETS[0]; i++) {
        const preset *p = &PRESETS[i];
        if (strcmp(name, p->name) != 0)
            continue;
        c->arch = p->arch;
        c->name = p->model_name;
        c->n_layer = p->n_layer; c->n_embd = p->n_embd; c->n_head = p->n_head;
        c->n_head_kv = p->n_head_kv; c->head_dim = p->head_dim; c->n_ff = p->n_ff;
        c->n_ctx = p->n_ctx; c->rope_theta = p->theta; c->untied = p->untied;
        c->vocab = p->llama3_vocab ? BN_SYNTH_VOCAB_LLAMA3 : BN_SYNTH_VOCAB_BYTES;
        c->vocab_size = p->vocab_size;
        return 0;
    }
    return -1;
}

/* A table type name ("F16", ...) as its ggml id; -1 if not one of them. */
static int table_type(const char *name) {
    static const struct { const char *name; int type; } t[] = {
        { "F16", GGML_F16 }, { "F32", GGML_F32 }, { "Q8_0", GGML_Q8_0 }, { "Q6_K", GGML_Q6_K },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (strcmp(name, t[i].name) == 0)
            return t[i].type;
    return -1;
}

static int head_dim_of(const bn_synth_config *c) {
    return c->head_dim > 0 ? c->head_dim : c->n_head ? c->n_embd / c->n_head : 0;
}

int bn_synth_validate(const bn_synth_config *c, char *err, size_t errlen) {
    struct { const char *what; int v, lo, hi; } r[] = {
        { "--layers", c->n_layer, 1, 1024 }, { "--embd", c->n_embd, 128, 65536 },
        { "--heads", c->n_head, 1, 4096 }, { "--kv-heads", c->n_head_kv, 1, 4096 },
        { "--ff", c->n_ff, 32, 262144 }, { "--ctx", c->n_ctx, 1, 1 << 24 },
        { "--head-dim", c->head_dim, 0, 4096 },
    };
    for (size_t i = 0; i < sizeof r / sizeof r[0]; i++)
        if (r[i].v < r[i].lo || r[i].v > r[i].hi) {
            snprintf(err, errlen, "%s %d is out of range [%d, %d]", r[i].what, r[i].v,
                     r[i].lo, r[i].hi);
            return -1;
        }
    /* n_embd whole I2_S blocks makes every tensor whole blocks; n_ff only
     * needs whole 32-weight groups (bitnet_b1_58-3B: 8640 = 67.5 x 128). */
    if (c->n_embd % 128 != 0 || c->n_ff % 32 != 0) {
        snprintf(err, errlen, "--embd %d must be a multiple of 128 and --ff %d of 32 "
                 "(I2_S blocks)", c->n_embd, c->n_ff);
        return -1;
    }
    if (c->head_dim == 0 && (c->n_embd % c->n_head != 0 || (c->n_embd / c->n_head) % 2 != 0)) {
        snprintf(err, errlen, "--embd %d must be an even multiple of --heads %d "
                 "(even head dimension)", c->n_embd, c->n_head);
        return -1;
    }
    if (c->head_dim > 0 && (!c->arch || strncmp(c->arch, "bitnet-", 7) == 0)) {
        snprintf(err, errlen, "--head-dim applies to the family presets (bitnet, llama)");
        return -1;
    }
    if (head_dim_of(c) % 2 != 0) {
        snprintf(err, errlen, "--head-dim %d must be even", c->head_dim);
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
    const char *types[2] = { c->head_type, c->embd_type };
    for (int i = 0; i < 2; i++) {
        if (!types[i])
            continue;
        const int t = table_type(types[i]);
        if (t < 0) {
            snprintf(err, errlen, "table type '%s' (expected F16, F32, Q8_0 or Q6_K)", types[i]);
            return -1;
        }
        if (t == GGML_Q6_K && c->n_embd % 256 != 0) {
            snprintf(err, errlen, "a Q6_K table needs --embd %d to be a multiple of 256",
                     c->n_embd);
            return -1;
        }
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
 * of its block, docs/FORMAT.md, I2_S): index d = 27a + 9b + 3c + e (0..80) picks the byte
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
    const uint16_t *normal_f16;     /* N(0, 0.02) samples as f16 */
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

static void fill_norm_f16(void *ctx, uint8_t *dst, uint64_t nbytes) {
    const fill_job *j = ctx;
    uint64_t s = tensor_stream(j->seed, j->name);
    for (uint64_t i = 0; i + 2 <= nbytes; i += 2) {
        uint16_t h = bn_f32_to_f16((float)(0.9 + 0.2 * uniform01(&s)));
        memcpy(dst + i, &h, 2);
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

/* n normal samples as floats (the f16 table's values). */
static void normal_floats(const fill_job *j, uint64_t *s, float *out, uint64_t n) {
    for (uint64_t i = 0; i < n; i++)
        out[i] = bn_f16_to_f32(j->normal_f16[splitmix64(s) & 0xFFFF]);
}

static void fill_f32(void *ctx, uint8_t *dst, uint64_t nbytes) {
    const fill_job *j = ctx;
    uint64_t s = tensor_stream(j->seed, j->name);
    float v[64];
    for (uint64_t i = 0; i < nbytes / 4; i += 64) {
        uint64_t n = nbytes / 4 - i < 64 ? nbytes / 4 - i : 64;
        normal_floats(j, &s, v, n);
        memcpy(dst + 4 * i, v, 4 * n);
    }
}

/* Q8_0 blocks as ggml's reference quantizer (quantize_row_q8_0_ref, what
 * llama-quantize runs) makes them: d = amax / 127, q = roundf(x / d). */
static void fill_q8_0(void *ctx, uint8_t *dst, uint64_t nbytes) {
    const fill_job *j = ctx;
    uint64_t s = tensor_stream(j->seed, j->name);
    for (uint64_t off = 0; off + 34 <= nbytes; off += 34) {
        float x[32], amax = 0.0f;
        normal_floats(j, &s, x, 32);
        for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[i]));
        const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        const uint16_t dh = bn_f32_to_f16(d);
        memcpy(dst + off, &dh, 2);
        for (int i = 0; i < 32; i++) dst[off + 2 + i] = (uint8_t)(int8_t)roundf(x[i] * id);
    }
}

/* Q6_K blocks of random codes and scales, d = 2^-12: values of about the
 * same spread as the other tables (the quantizer's own search is not
 * needed for a random table). */
static void fill_q6_k(void *ctx, uint8_t *dst, uint64_t nbytes) {
    const fill_job *j = ctx;
    uint64_t s = tensor_stream(j->seed, j->name);
    const uint16_t dh = bn_f32_to_f16(0x1p-12f);
    for (uint64_t off = 0; off + 210 <= nbytes; off += 210) {
        for (int i = 0; i < 192; i++) dst[off + i] = (uint8_t)splitmix64(&s);
        for (int i = 0; i < 16; i++) {
            int sc = 4 + (int)(splitmix64(&s) % 8);
            dst[off + 192 + i] = (uint8_t)(int8_t)(splitmix64(&s) & 1 ? sc : -sc);
        }
        memcpy(dst + off + 208, &dh, 2);
    }
}

static void fill_bias(void *ctx, uint8_t *dst, uint64_t nbytes) {
    fill_f32(ctx, dst, nbytes);
}

static void fill_scale(void *ctx, uint8_t *dst, uint64_t nbytes) {
    const fill_job *j = ctx;
    uint64_t s = tensor_stream(j->seed, j->name);
    for (uint64_t i = 0; i + 4 <= nbytes; i += 4) {
        float v = (float)(0.5 + uniform01(&s));
        memcpy(dst + i, &v, 4);
    }
}

/* Any other type (only reachable through the retype test hook): zeros. */
static void fill_zero(void *ctx, uint8_t *dst, uint64_t nbytes) {
    (void)ctx;
    memset(dst, 0, nbytes);
}

/* What a tensor is, which picks its content together with its type. */
enum role { ROLE_TABLE, ROLE_NORM, ROLE_PROJ, ROLE_BIAS, ROLE_SCALE };

static gguf_fill_fn fill_for(enum role role, uint32_t type) {
    switch (role) {
    case ROLE_PROJ: return type == GGML_I2_S ? fill_ternary : fill_zero;
    case ROLE_NORM: return type == GGML_F32 ? fill_norm : type == GGML_F16 ? fill_norm_f16 : fill_zero;
    case ROLE_TABLE:
        return type == GGML_F16 ? fill_f16 : type == GGML_F32 ? fill_f32
             : type == GGML_Q8_0 ? fill_q8_0 : type == GGML_Q6_K ? fill_q6_k : fill_zero;
    case ROLE_BIAS: return type == GGML_F32 ? fill_bias : fill_zero;
    case ROLE_SCALE: return type == GGML_F32 ? fill_scale : fill_zero;
    }
    return fill_zero;
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
 * merges, [PADn] tokens up to pad_to tokens in all (0: none), then BOS /
 * EOS / EOT as control tokens (like the mid-2b4t model). */
static int vocab_bytes(vocab *v, int pad_to, char *err, size_t errlen) {
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
    const uint64_t n_pad = (uint64_t)pad_to > v->n_tokens ? (uint64_t)pad_to - v->n_tokens : 0;
    v->n_tokens += n_pad;
    v->n_merges = n_m;
    v->tokens = malloc((size_t)v->n_tokens * sizeof *v->tokens);
    v->merges = malloc(n_m * sizeof *v->merges);
    v->types = malloc((size_t)v->n_tokens * sizeof *v->types);
    v->scores = malloc((size_t)v->n_tokens * sizeof *v->scores);
    v->text = malloc(4096 + (size_t)n_pad * 16);
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
    for (uint64_t i = 0; i < n_pad; i++, id++) {
        size_t len = (size_t)snprintf(p, 16, "[PAD%llu]", (unsigned long long)i);
        v->tokens[id] = (gguf_str){ p, len };
        p += len;
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

/* The family layout's keys (docs/FORMAT.md, Metadata keys), in the order
 * bitnet.cpp's converter writes them. */
static void write_kvs_family(gguf_writer *w, const bn_synth_config *c, const vocab *v) {
    const char *arch = c->arch;
    const int is_llama = strcmp(arch, "llama") == 0, is_bitnet = strcmp(arch, "bitnet") == 0;
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
    /* 1bitLLM files have no rope.dimension_count (n_rot = head_dim). */
    if (!is_bitnet)
        KV(ARCH_KEY("rope.dimension_count"), gguf_w_u32(w, k_, (uint32_t)head_dim_of(c)));
    KV(ARCH_KEY("attention.head_count"), gguf_w_u32(w, k_, (uint32_t)c->n_head));
    KV(ARCH_KEY("attention.head_count_kv"), gguf_w_u32(w, k_, (uint32_t)c->n_head_kv));
    if (c->head_dim > 0) {
        KV(ARCH_KEY("attention.key_length"), gguf_w_u32(w, k_, (uint32_t)c->head_dim));
        KV(ARCH_KEY("attention.value_length"), gguf_w_u32(w, k_, (uint32_t)c->head_dim));
    }
    KV(ARCH_KEY("rope.freq_base"), gguf_w_f32(w, k_, c->rope_theta));
    KV(ARCH_KEY("attention.layer_norm_rms_epsilon"), gguf_w_f32(w, k_, c->rms_eps));
    if (is_llama && c->attn_scale > 0.0f)
        KV(ARCH_KEY("attention.scale"), gguf_w_f32(w, k_, c->attn_scale));
    if (is_bitnet) {
        KV(ARCH_KEY("rope.scaling.type"), gguf_w_str(w, k_, "linear"));
        KV(ARCH_KEY("rope.scaling.factor"), gguf_w_f32(w, k_, 1.0f));
    }
    KV("general.file_type", gguf_w_u32(w, k_, LLAMA_FTYPE_MOSTLY_I2_S));
    KV("tokenizer.ggml.add_bos_token", gguf_w_bool(w, k_, 1));
    KV("tokenizer.ggml.model", gguf_w_str(w, k_, "gpt2"));
    KV("tokenizer.ggml.pre", gguf_w_str(w, k_, "llama-bpe"));
    KV("tokenizer.ggml.tokens", gguf_w_arr_str(w, k_, v->tokens, v->n_tokens));
    KV("tokenizer.ggml.scores", gguf_w_arr(w, k_, GGUF_F32, v->scores, v->n_tokens));
    KV("tokenizer.ggml.token_type", gguf_w_arr(w, k_, GGUF_I32, v->types, v->n_tokens));
    KV("tokenizer.ggml.merges", gguf_w_arr_str(w, k_, v->merges, v->n_merges));
    KV("tokenizer.ggml.bos_token_id", gguf_w_u32(w, k_, v->bos));
    KV("tokenizer.ggml.eos_token_id", gguf_w_u32(w, k_, v->eos));
    KV("tokenizer.ggml.padding_token_id", gguf_w_u32(w, k_, v->eos));
    KV("general.quantization_version", gguf_w_u32(w, k_, 2));
#undef KV
#undef ARCH_KEY
}

/* Adds one tensor (unless omitted; retyped when the hook names it). */
static void add_tensor(gguf_writer *w, const bn_synth_config *c, fill_job *job,
                       const char *name, enum role role, uint32_t type, uint32_t n_dims,
                       uint64_t ne0, uint64_t ne1) {
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
    gguf_w_tensor(w, name, type, n_dims, ne, NULL, fill_for(role, type), job);
}

/* Block numbers in lexicographic order of their decimal text (0, 1, 10, 11,
 * ..., 19, 2, 20, ...), as in the published file. */
static int cmp_block_text(const void *a, const void *b) {
    char x[16], y[16];
    snprintf(x, sizeof x, "%d", *(const int *)a);
    snprintf(y, sizeof y, "%d", *(const int *)b);
    return strcmp(x, y);
}

/* One layer tensor of either layout: 'E', 'F', 'Q' (n_head * head_dim),
 * 'K' (n_head_kv * head_dim) widths. */
typedef struct layer_tensor {
    const char *suffix;
    enum role role;
    char k, m;                      /* m = 0: a vector [k] */
} layer_tensor;

static uint64_t width(const bn_synth_config *c, char sel) {
    const uint64_t hd = (uint64_t)head_dim_of(c);
    switch (sel) {
    case 'E': return (uint64_t)c->n_embd;
    case 'F': return (uint64_t)c->n_ff;
    case 'Q': return (uint64_t)c->n_head * hd;
    case 'K': return (uint64_t)c->n_head_kv * hd;
    }
    return 1;
}

static void add_layer_tensor(gguf_writer *w, const bn_synth_config *c, fill_job *job, int il,
                             const layer_tensor *t, const char *ext, enum role role,
                             uint32_t type) {
    char name[96];
    snprintf(name, sizeof name, "blk.%d.%s.%s", il, t->suffix, ext);
    if (role == ROLE_BIAS)
        add_tensor(w, c, job, name, role, type, 1, width(c, t->m), 1);
    else if (role == ROLE_SCALE)
        add_tensor(w, c, job, name, role, type, 1, 1, 1);
    else if (t->m)
        add_tensor(w, c, job, name, role, type, 2, width(c, t->k), width(c, t->m));
    else
        add_tensor(w, c, job, name, role, type, 1, width(c, t->k), 1);
}

/* The published 2B4T layout: within a block the published file's order
 * (alphabetical per ggml's tensor map in the converter). */
static void add_tensors_2b4t(gguf_writer *w, const bn_synth_config *c, fill_job **job,
                             int *order, const vocab *v) {
    static const layer_tensor per_block[11] = {
        { "attn_norm", ROLE_NORM, 'E', 0 }, { "ffn_down", ROLE_PROJ, 'F', 'E' },
        { "ffn_sub_norm", ROLE_NORM, 'F', 0 }, { "ffn_gate", ROLE_PROJ, 'E', 'F' },
        { "ffn_up", ROLE_PROJ, 'E', 'F' }, { "ffn_norm", ROLE_NORM, 'E', 0 },
        { "attn_sub_norm", ROLE_NORM, 'Q', 0 }, { "attn_k", ROLE_PROJ, 'E', 'K' },
        { "attn_output", ROLE_PROJ, 'Q', 'E' }, { "attn_q", ROLE_PROJ, 'E', 'Q' },
        { "attn_v", ROLE_PROJ, 'E', 'K' },
    };
    const uint64_t E = (uint64_t)c->n_embd;
    add_tensor(w, c, (*job)++, "token_embd.weight", ROLE_TABLE, GGML_F16, 2, E, v->n_tokens);
    for (int i = 0; i < c->n_layer; i++)
        order[i] = i;
    qsort(order, (size_t)c->n_layer, sizeof *order, cmp_block_text);
    for (int oi = 0; oi < c->n_layer; oi++)
        for (int t = 0; t < 11; t++) {
            const layer_tensor *lt = &per_block[t];
            add_layer_tensor(w, c, (*job)++, order[oi], lt, "weight", lt->role,
                             lt->role == ROLE_PROJ ? GGML_I2_S : GGML_F32);
        }
    add_tensor(w, c, (*job)++, "output_norm.weight", ROLE_NORM, GGML_F32, 1, E, 1);
    if (c->with_output_weight)
        add_tensor(w, c, (*job)++, "output.weight", ROLE_TABLE, GGML_F16, 2, E, v->n_tokens);
}

/* The family layout: blocks in order, sub-norms for `bitnet` only, the head
 * tensor typed by llama-quantize's rule (docs/FORMAT.md, Head and embedding
 * types) unless the config says otherwise. */
static void add_tensors_family(gguf_writer *w, const bn_synth_config *c, fill_job **job,
                               const vocab *v) {
    static const layer_tensor per_block[11] = {
        { "attn_norm", ROLE_NORM, 'E', 0 }, { "attn_q", ROLE_PROJ, 'E', 'Q' },
        { "attn_k", ROLE_PROJ, 'E', 'K' }, { "attn_v", ROLE_PROJ, 'E', 'K' },
        { "attn_sub_norm", ROLE_NORM, 'Q', 0 }, { "attn_output", ROLE_PROJ, 'Q', 'E' },
        { "ffn_norm", ROLE_NORM, 'E', 0 }, { "ffn_gate", ROLE_PROJ, 'E', 'F' },
        { "ffn_up", ROLE_PROJ, 'E', 'F' }, { "ffn_sub_norm", ROLE_NORM, 'F', 0 },
        { "ffn_down", ROLE_PROJ, 'F', 'E' },
    };
    const int sub_norms = strcmp(c->arch, "bitnet") == 0;
    const uint64_t E = (uint64_t)c->n_embd;
    const uint32_t rule = c->n_embd % 256 == 0 ? GGML_F16 : GGML_Q8_0;
    const uint32_t head = c->head_type ? (uint32_t)table_type(c->head_type) : rule;
    const uint32_t embd = c->untied ? (c->embd_type ? (uint32_t)table_type(c->embd_type)
                                                    : GGML_F16) : head;
    const uint32_t norm = c->norm_f16 ? GGML_F16 : GGML_F32;
    add_tensor(w, c, (*job)++, "token_embd.weight", ROLE_TABLE, embd, 2, E, v->n_tokens);
    for (int il = 0; il < c->n_layer; il++)
        for (int t = 0; t < 11; t++) {
            const layer_tensor *lt = &per_block[t];
            if (lt->role == ROLE_NORM) {
                if (sub_norms || strstr(lt->suffix, "_sub_norm") == NULL)
                    add_layer_tensor(w, c, (*job)++, il, lt, "weight", ROLE_NORM, norm);
                continue;
            }
            add_layer_tensor(w, c, (*job)++, il, lt, "weight", ROLE_PROJ, GGML_I2_S);
            if (c->with_scales)
                add_layer_tensor(w, c, (*job)++, il, lt, "scale", ROLE_SCALE, GGML_F32);
            /* FFN biases exist in llama's graph only */
            if (c->with_biases && (!sub_norms || strncmp(lt->suffix, "attn_", 5) == 0))
                add_layer_tensor(w, c, (*job)++, il, lt, "bias", ROLE_BIAS, GGML_F32);
        }
    add_tensor(w, c, (*job)++, "output_norm.weight", ROLE_NORM, norm, 1, E, 1);
    if (c->untied)
        add_tensor(w, c, (*job)++, "output.weight", ROLE_TABLE, head, 2, E, v->n_tokens);
}

int bn_synth_write(const bn_synth_config *c, const char *path, char *err, size_t errlen) {
    vocab v;
    memset(&v, 0, sizeof v);
    int rc = -1;
    gguf_writer *w = NULL;
    fill_job *jobs = NULL;
    int *order = NULL;
    uint16_t *table = NULL;
    const int family = c->arch && strncmp(c->arch, "bitnet-", 7) != 0;

    if (c->n_layer < 0 || c->n_layer > 100000) {
        snprintf(err, errlen, "bad layer count %d", c->n_layer);
        return -1;
    }
    if ((c->head_type && table_type(c->head_type) < 0) ||
        (c->embd_type && table_type(c->embd_type) < 0)) {
        snprintf(err, errlen, "unknown table type");
        return -1;
    }
    if ((c->vocab == BN_SYNTH_VOCAB_LLAMA3 ? vocab_llama3(&v, c->vocab_file, err, errlen)
                                           : vocab_bytes(&v, c->vocab_size, err, errlen)) != 0)
        goto out;
    size_t n_jobs = 3 + (size_t)c->n_layer * 25;
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
    fill_job *job = jobs;
    if (family) {
        write_kvs_family(w, c, &v);
        add_tensors_family(w, c, &job, &v);
    } else {
        write_kvs(w, c, &v);
        add_tensors_2b4t(w, c, &job, order, &v);
    }
    rc = gguf_writer_write(w, path, err, errlen);
out:
    gguf_writer_free(w);
    free(jobs);
    free(order);
    free(table);
    vocab_free(&v);
    return rc;
}
