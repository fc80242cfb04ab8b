/* Model loader: synthetic models written at test time (hyperparameters,
 * bindings, I2_S content, repacked weights through every kernel), loader
 * rejections with their messages, the shared reference models when present,
 * and `bitnet info`'s report. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "i2s.h"
#include "bitnet.h"
#include "helper_fixtures.h"
#include "model.h"

#ifndef BN_BINARY_DIR
#define BN_BINARY_DIR "."
#endif
#ifndef BN_SHARED_DIR
#define BN_SHARED_DIR "../shared"
#endif

static char g_small[512];                  /* the small synthetic model */

static void write_model(const bn_synth_config *c, const char *path) {
    fx_synth_write(path, c);
}

static bn_synth_config small_config(void) {
    bn_synth_config c;
    assert_int_equal(bn_synth_preset("small", NULL, &c), 0);
    c.seed = 1234;
    return c;
}

static int setup_all(void **state) {
    (void)state;
    snprintf(g_small, sizeof g_small, "%s/test_model_small.gguf", BN_BINARY_DIR);
    bn_synth_config c = small_config();
    char err[256];
    if (bn_synth_write(&c, g_small, err, sizeof err) != 0) {
        fprintf(stderr, "cannot write %s: %s\n", g_small, err);
        return -1;
    }
    return 0;
}

static int teardown_all(void **state) {
    (void)state;
    unlink(g_small);
    return 0;
}

static bn_model *load_ok(const char *path, const bn_model_params *p) {
    char err[512] = "";
    bn_model *m = bn_model_load(path, p, err, sizeof err);
    if (!m)
        fail_msg("load %s: %s", path, err);
    return m;
}

/* Expect bn_model_load to fail with exactly this message. */
static void expect_reject(const bn_synth_config *c, const char *tag, const char *msg) {
    char path[512], err[512] = "";
    snprintf(path, sizeof path, "%s/test_model_bad_%s.gguf", BN_BINARY_DIR, tag);
    write_model(c, path);
    bn_model *m = bn_model_load(path, NULL, err, sizeof err);
    if (m) {
        bn_model_free(m);
        unlink(path);
        fail_msg("%s: loaded, expected \"%s\"", tag, msg);
    }
    unlink(path);
    assert_string_equal(err, msg);
}

/* Writes c as BN_BINARY_DIR/test_model_<tag>.gguf (its path in path) and
 * loads it with the default parameters. */
static bn_model *write_load(const bn_synth_config *c, const char *tag, char *path, size_t n) {
    snprintf(path, n, "%s/test_model_%s.gguf", BN_BINARY_DIR, tag);
    write_model(c, path);
    return load_ok(path, NULL);
}

/* The retype hook: tensor written as type [ne0, ne1] (ne1 0: a vector [ne0]). */
static void retype(bn_synth_config *c, const char *tensor, uint32_t type, uint64_t ne0, uint64_t ne1) {
    c->retype = tensor;
    c->retype_type = type;
    c->retype_n_dims = ne1 ? 2 : 1;
    c->retype_ne[0] = ne0;
    c->retype_ne[1] = ne1;
}

/* `bitnet info`'s report of m (caller frees). */
static char *info_of(const bn_model *m) {
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    assert_non_null(out);
    bn_model_print_info(m, out);
    fclose(out);
    return buf;
}

/* Every ternary of every layer with its name, for loops below. */
static bn_ternary *ternary_of(bn_layer *L, int i, const char **suffix) {
    static const char *const names[7] = { "attn_q", "attn_k", "attn_v", "attn_output",
                                          "ffn_gate", "ffn_up", "ffn_down" };
    bn_ternary *w[7] = { &L->proj[BN_PROJ_Q], &L->proj[BN_PROJ_K], &L->proj[BN_PROJ_V], &L->proj[BN_PROJ_O], &L->proj[BN_PROJ_GATE], &L->proj[BN_PROJ_UP], &L->proj[BN_PROJ_DOWN] };
    *suffix = names[i];
    return w[i];
}

/* ---- a well-formed synthetic model -------------------------------------------- */

static void test_small_hparams(void **state) {
    (void)state;
    bn_model *m = load_ok(g_small, NULL);
    const bn_hparams *hp = bn_model_hparams(m);
    assert_string_equal(hp->arch, "bitnet-b1.58");
    assert_int_equal(hp->n_vocab, 256 + 16 + 3);
    assert_int_equal(hp->n_ctx_train, 256);
    assert_int_equal(hp->n_embd, 256);
    assert_int_equal(hp->n_layer, 2);
    assert_int_equal(hp->n_ff, 768);
    assert_int_equal(hp->n_head, 4);
    assert_int_equal(hp->n_head_kv, 2);
    assert_int_equal(hp->head_dim, 64);
    assert_int_equal(hp->n_rot, 64);
    assert_true(hp->rope_theta == 10000.0f);
    assert_true(hp->rms_eps == 1e-5f);
    assert_non_null(bn_model_tokenizer(m));
    assert_int_equal(bn_vocab_size(bn_model_tokenizer(m)), hp->n_vocab);
    /* embedding + output norm + per layer (4 norms + 7 projections) */
    uint64_t per_layer = 3 * 256 + 768 + 2 * 256 * 256 + 2 * 256 * 128 + 3 * 256 * 768;
    assert_int_equal(bn_model_n_params(m), 256 * 275 + 256 + 2 * per_layer);
    FILE *f = fopen(g_small, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    assert_int_equal(bn_model_file_size(m), (uint64_t)ftell(f));
    fclose(f);
    assert_non_null(bn_model_kernel_name(m));
    assert_string_not_equal(bn_model_kernel_name(m), "none");
    assert_int_equal(m->head_type, BN_HEAD_F16);
    bn_model_free(m);
}

/* Bindings point into the mapping, the F16 embedding is not copied, and the
 * I2_S bytes decode to exactly the ternary values the writer drew. */
static void test_small_bindings(void **state) {
    (void)state;
    bn_model *m = load_ok(g_small, NULL);
    const uint8_t *lo = m->gguf.map, *hi = m->gguf.map + m->gguf.size;
    const gguf_tensor *emb = gguf_find_tensor(&m->gguf, "token_embd.weight");
    assert_non_null(emb);
    assert_ptr_equal(m->tok_embd, emb->data);
    assert_true((const uint8_t *)m->tok_embd >= lo && (const uint8_t *)m->tok_embd < hi);
    /* norms are copied out of the mapping (see copy_norms), bit for bit */
    const gguf_tensor *on = gguf_find_tensor(&m->gguf, "output_norm.weight");
    assert_true((const uint8_t *)m->output_norm < lo || (const uint8_t *)m->output_norm >= hi);
    assert_memory_equal(m->output_norm, on->data, 256 * sizeof(float));
    /* embedding rows read through bn_model_embedding_raw equal the file's,
     * and bn_model_embedding_row converts them */
    uint16_t row[256];
    float rowf[256];
    assert_int_equal(m->embd_type, GGML_F16);
    assert_int_equal(m->embd_row_bytes, 512);
    bn_model_embedding_raw(m, 17, row);
    assert_memory_equal(row, m->tok_embd + 17 * 512, sizeof row);
    bn_model_embedding_row(m, 17, row, rowf);
    for (int i = 0; i < 256; i++) assert_true(rowf[i] == bn_f16_to_f32(row[i]));
    for (int il = 0; il < 2; il++) {
        bn_layer *L = &m->layers[il];
        const float *norms[4] = { L->norm[BN_NORM_ATTN], L->norm[BN_NORM_ATTN_SUB], L->norm[BN_NORM_FFN], L->norm[BN_NORM_FFN_SUB] };
        const int widths[4] = { 256, 256, 256, 768 };
        for (int k = 0; k < 4; k++)
            for (int i = 0; i < widths[k]; i++)
                assert_true(norms[k][i] >= 0.9f && norms[k][i] <= 1.1f);
        for (int t = 0; t < 7; t++) {
            const char *suffix;
            bn_ternary *w = ternary_of(L, t, &suffix);
            char name[64];
            snprintf(name, sizeof name, "blk.%d.%s.weight", il, suffix);
            assert_ptr_equal(w->i2s, gguf_find_tensor(&m->gguf, name)->data);
            uint64_t n = (uint64_t)w->K * (uint64_t)w->M;
            int8_t *want = malloc(n), *got = malloc(n);
            assert_non_null(want);
            assert_non_null(got);
            float scale;
            bn_synth_ternary(1234, name, w->K, w->M, want, &scale);
            bn_i2s_decode(w->i2s, n, got);
            assert_memory_equal(want, got, n);
            assert_true(w->scale == scale);
            assert_true(scale >= 0.02f && scale <= 0.1f);
            assert_non_null(w->packed);
            assert_int_equal((uintptr_t)w->packed % 64, 0);
            /* all three codes occur, roughly a third each */
            uint64_t zeros = 0;
            for (uint64_t i = 0; i < n; i++)
                zeros += want[i] == 0;
            assert_true(zeros > n / 4 && zeros < n * 5 / 12);
            free(want);
            free(got);
        }
    }
    assert_true(m->packed_bytes >= 2 * (2 * 256 * 256 + 2 * 256 * 128 + 3 * 256 * 768) / 4);
    bn_model_free(m);
}

/* The repacked weights give the exact integer dot products of the ternary
 * values (docs/NUMERICS.md, BitLinear), for every kernel variant this CPU runs. */
static void test_small_repack_all_kernels(void **state) {
    (void)state;
    const bn_kernels *ks[16];
    int nk = bn_kernels_available(ks, 16);
    assert_true(nk >= 1);
    for (int k = 0; k < nk; k++) {
        bn_model_params p = bn_model_default_params();
        p.kernel = ks[k]->name;
        bn_model *m = load_ok(g_small, &p);
        assert_string_equal(bn_model_kernel_name(m), ks[k]->name);
        for (int t = 0; t < 7; t++) {
            const char *suffix;
            bn_ternary *w = ternary_of(&m->layers[1], t, &suffix);
            char name[64];
            snprintf(name, sizeof name, "blk.1.%s.weight", suffix);
            int K = w->K, M = w->M;
            int8_t *vals = malloc((size_t)K * M), *q = malloc((size_t)K);
            void *prep = aligned_alloc(64, (m->kern->fmt[BN_FMT_TERNARY]->act_size(K) + 63) & ~(size_t)63);
            int32_t *dot = malloc((size_t)M * sizeof *dot);
            assert_true(vals && q && prep && dot);
            float scale;
            bn_synth_ternary(1234, name, K, M, vals, &scale);
            for (int i = 0; i < K; i++)
                q[i] = (int8_t)((i * 37 + t * 11) % 256 - 128);
            m->kern->fmt[BN_FMT_TERNARY]->act_prep(q, K, prep);
            m->kern->fmt[BN_FMT_TERNARY]->gemv(w->packed, K, M, prep, 0, M, dot);
            for (int r = 0; r < M; r++) {
                int32_t want = 0;
                for (int i = 0; i < K; i++)
                    want += vals[(size_t)r * K + i] * q[i];
                if (dot[r] != want)
                    fail_msg("kernel %s, %s row %d: %d != %d", ks[k]->name, name, r,
                             dot[r], want);
            }
            free(vals);
            free(q);
            free(prep);
            free(dot);
        }
        bn_model_free(m);
    }
}

static void test_small_vocab_only(void **state) {
    (void)state;
    bn_model_params p = bn_model_default_params();
    p.vocab_only = 1;
    bn_model *m = load_ok(g_small, &p);
    assert_int_equal(bn_model_hparams(m)->n_embd, 256);
    assert_non_null(bn_model_tokenizer(m));
    assert_null(m->kern);
    assert_null(m->layers);
    assert_null(m->packed_arena);
    assert_string_equal(bn_model_kernel_name(m), "none");
    bn_model_free(m);
}

/* bitnet-25 is the same graph; an output.weight (first upload) is ignored. */
static void test_bitnet25_with_output_weight(void **state) {
    (void)state;
    bn_synth_config c = small_config();
    c.arch = "bitnet-25";
    c.with_output_weight = 1;
    char path[512];
    bn_model *m = write_load(&c, "b25", path, sizeof path);
    assert_string_equal(bn_model_hparams(m)->arch, "bitnet-25");
    assert_int_equal(m->gguf.n_tensors, 2 + 2 * 11 + 1);
    assert_int_equal(bn_model_n_params(m),
                     256 * 275 + 256 + 2 * (3 * 256 + 768 + 2 * 256 * 256 + 2 * 256 * 128 +
                                            3 * 256 * 768));
    bn_model_free(m);
    unlink(path);
}

/* Any GQA ratio and widths that are multiples of 128 load. */
static void test_other_shapes(void **state) {
    (void)state;
    bn_synth_config c = small_config();
    c.n_layer = 3;
    c.n_embd = 384;
    c.n_head = 6;
    c.n_head_kv = 1;
    c.n_ff = 1024;
    c.n_ctx = 512;
    c.rope_theta = 500000.0f;
    char path[512];
    bn_model *m = write_load(&c, "shapes", path, sizeof path);
    const bn_hparams *hp = bn_model_hparams(m);
    assert_int_equal(hp->n_layer, 3);
    assert_int_equal(hp->head_dim, 64);
    assert_int_equal(hp->n_head_kv, 1);
    assert_int_equal(m->layers[2].proj[BN_PROJ_K].M, 64);
    assert_int_equal(m->layers[2].proj[BN_PROJ_DOWN].K, 1024);
    assert_true(hp->rope_theta == 500000.0f);
    bn_model_free(m);
    unlink(path);
}

/* ---- rejections ------------------------------------------------------------------ */

static void test_reject_arch(void **state) {
    (void)state;
    bn_synth_config c = small_config();
    c.arch = "gpt-neox";
    expect_reject(&c, "arch", "unsupported architecture 'gpt-neox' (expected bitnet-b1.58, "
                              "bitnet-25, bitnet or llama)");
    c = small_config();
    c.omit = "general.architecture";
    expect_reject(&c, "noarch", "missing key 'general.architecture'");
}

static void test_reject_missing_tensor(void **state) {
    (void)state;
    bn_synth_config c = small_config();
    c.omit = "blk.1.attn_k.weight";
    expect_reject(&c, "missing", "missing tensor 'blk.1.attn_k.weight'");
    c.omit = "token_embd.weight";
    expect_reject(&c, "missing_emb", "missing tensor 'token_embd.weight'");
    c.omit = "blk.0.ffn_sub_norm.weight";
    expect_reject(&c, "missing_norm", "missing tensor 'blk.0.ffn_sub_norm.weight'");
}

static void test_reject_shape(void **state) {
    (void)state;
    bn_synth_config c = small_config();
    retype(&c, "blk.1.ffn_up.weight", GGML_I2_S, 256, 700);
    expect_reject(&c, "shape", "tensor 'blk.1.ffn_up.weight': expected I2_S [256, 768], "
                               "found I2_S [256, 700]");
    retype(&c, "blk.0.attn_q.weight", GGML_I2_S, 256, 128);     /* transposed */
    expect_reject(&c, "shape2", "tensor 'blk.0.attn_q.weight': expected I2_S [256, 256], "
                                "found I2_S [256, 128]");
    retype(&c, "output_norm.weight", GGML_F32, 255, 0);
    expect_reject(&c, "shape3", "tensor 'output_norm.weight': expected F32 [256], "
                                "found F32 [255]");
}

static void test_reject_type(void **state) {
    (void)state;
    bn_synth_config c = small_config();
    retype(&c, "blk.0.attn_q.weight", GGML_F16, 256, 256);
    expect_reject(&c, "type", "tensor 'blk.0.attn_q.weight': expected I2_S [256, 256], "
                              "found F16 [256, 256]");
    retype(&c, "token_embd.weight", GGML_BF16, 256, 275);
    expect_reject(&c, "type2", "tensor 'token_embd.weight': type BF16 is not supported "
                               "(expected F16, F32, Q8_0 or Q6_K)");
    retype(&c, "blk.1.attn_norm.weight", GGML_Q8_0, 256, 0);
    expect_reject(&c, "type3", "tensor 'blk.1.attn_norm.weight': type Q8_0 is not supported "
                               "(expected F32 or F16)");
    retype(&c, "blk.1.attn_norm.weight", GGML_F16, 255, 0);
    expect_reject(&c, "type4", "tensor 'blk.1.attn_norm.weight': expected F16 [256], "
                               "found F16 [255]");
}

/* Rows of any K load (docs/FORMAT.md, Unaligned I2_S rows): padded to whole
 * blocks for the kernels; a tensor that is not whole blocks is refused. */
static void test_k_not_128(void **state) {
    (void)state;
    bn_synth_config c = small_config();
    c.n_embd = 192;                             /* 4 heads of 48 */
    c.n_ff = 800;
    char path[512];
    bn_model *m = write_load(&c, "k", path, sizeof path);
    const bn_ternary *q = &m->layers[0].proj[BN_PROJ_Q], *d = &m->layers[1].proj[BN_PROJ_DOWN];
    assert_int_equal(q->K, 192);
    assert_int_equal(q->Kp, 256);
    assert_int_equal(d->K, 800);
    assert_int_equal(d->Kp, 896);
    assert_int_equal(d->M, 192);
    bn_model_free(m);
    unlink(path);
    c = small_config();
    c.n_embd = 200;                             /* attn_q 200 x 200: 312.5 blocks */
    c.n_head = 2;
    c.n_head_kv = 1;
    expect_reject(&c, "kblocks", "tensor 'blk.0.attn_q.weight': 40000 weights are not a whole "
                                 "number of I2_S blocks (128)");
}

static void test_reject_missing_key(void **state) {
    (void)state;
    bn_synth_config c = small_config();
    c.omit = "bitnet-b1.58.attention.layer_norm_rms_epsilon";
    expect_reject(&c, "noeps", "missing key 'bitnet-b1.58.attention.layer_norm_rms_epsilon'");
    c.omit = "bitnet-b1.58.embedding_length";
    expect_reject(&c, "noembd", "missing key 'bitnet-b1.58.embedding_length'");
    c.omit = "bitnet-b1.58.block_count";
    expect_reject(&c, "noblocks", "missing key 'bitnet-b1.58.block_count'");
}

/* Optional keys take their defaults: head_count_kv = head_count, rope base
 * 10000, rope dims = head dim, vocab size = token count. */
static void test_optional_key_defaults(void **state) {
    (void)state;
    static const char *const keys[] = { "bitnet-b1.58.attention.head_count_kv",
                                        "bitnet-b1.58.rope.freq_base",
                                        "bitnet-b1.58.rope.dimension_count",
                                        "bitnet-b1.58.vocab_size" };
    for (int i = 0; i < 4; i++) {
        bn_synth_config c = small_config();
        c.n_head_kv = 4;                        /* so a missing kv count = head_count fits */
        c.rope_theta = 10000.0f;
        c.omit = keys[i];
        char path[512];
        snprintf(path, sizeof path, "%s/test_model_opt%d.gguf", BN_BINARY_DIR, i);
        write_model(&c, path);
        bn_model *m = load_ok(path, NULL);
        const bn_hparams *hp = bn_model_hparams(m);
        assert_int_equal(hp->n_head_kv, 4);
        assert_true(hp->rope_theta == 10000.0f);
        assert_int_equal(hp->n_rot, 64);
        assert_int_equal(hp->n_vocab, 275);
        bn_model_free(m);
        unlink(path);
    }
}

static void test_reject_head_counts(void **state) {
    (void)state;
    bn_synth_config c = small_config();
    c.n_head_kv = 3;
    expect_reject(&c, "kv3", "head_count 4 is not a multiple of head_count_kv 3");
    c = small_config();
    c.n_head = 3;
    c.n_head_kv = 1;
    expect_reject(&c, "h3", "embedding_length 256 is not a multiple of head_count 3");
    c = small_config();
    c.n_head = 256;                             /* head dim 1: no RoPE pairs */
    c.n_head_kv = 256;
    expect_reject(&c, "hd1", "head dimension 1 (embedding_length / head_count) must be even "
                             "for NEOX RoPE");
    c = small_config();
    c.n_layer = 0;
    expect_reject(&c, "l0", "key 'bitnet-b1.58.block_count' = 0 is out of range [1, 4096]");
    c = small_config();
    c.n_head_kv = 8;
    expect_reject(&c, "kv8", "head_count 4 is not a multiple of head_count_kv 8");
}

/* Overwrites the scale float of tensor `name` in the file at `path`. */
static void patch_scale(const char *path, const char *name, float v) {
    gguf_file g;
    char err[256];
    assert_int_equal(gguf_open(&g, path, err, sizeof err), 0);
    const gguf_tensor *t = gguf_find_tensor(&g, name);
    assert_non_null(t);
    uint64_t at = g.data_start + t->offset + t->ne[0] * t->ne[1] / 4;
    gguf_close(&g);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, (long)at, SEEK_SET), 0);
    assert_int_equal(fwrite(&v, 4, 1, f), 1);
    fclose(f);
}

static void test_reject_bad_scale(void **state) {
    (void)state;
    const float bad[3] = { 0.0f, -0.5f, (float)NAN };
    const char *msgs[3] = {
        "tensor 'blk.1.ffn_gate.weight': scale 0 is not a positive finite number",
        "tensor 'blk.1.ffn_gate.weight': scale -0.5 is not a positive finite number",
        "tensor 'blk.1.ffn_gate.weight': scale nan is not a positive finite number",
    };
    char path[512];
    snprintf(path, sizeof path, "%s/test_model_scale.gguf", BN_BINARY_DIR);
    bn_synth_config c = small_config();
    for (int i = 0; i < 3; i++) {
        write_model(&c, path);
        patch_scale(path, "blk.1.ffn_gate.weight", bad[i]);
        char err[512] = "";
        bn_model *m = bn_model_load(path, NULL, err, sizeof err);
        assert_null(m);
        assert_string_equal(err, msgs[i]);
        /* vocab_only never reads tensor data, so it still loads */
        bn_model_params p = bn_model_default_params();
        p.vocab_only = 1;
        m = load_ok(path, &p);
        bn_model_free(m);
    }
    unlink(path);
}

static void test_reject_params(void **state) {
    (void)state;
    char err[512] = "";
    bn_model_params p = bn_model_default_params();
    p.head = 7;
    assert_null(bn_model_load(g_small, &p, err, sizeof err));
    assert_string_equal(err, "unknown head type 7");
    p = bn_model_default_params();
    p.kernel = "no-such-kernel";
    err[0] = 0;
    assert_null(bn_model_load(g_small, &p, err, sizeof err));
    assert_true(strlen(err) > 0);
    err[0] = 0;
    assert_null(bn_model_load(BN_BINARY_DIR "/no-such-model.gguf", NULL, err, sizeof err));
    assert_non_null(strstr(err, "cannot open"));
    /* explicit f16 and the default (a small head stays f16) give the f16 head */
    p = bn_model_default_params();
    p.head = BN_HEAD_F16;
    bn_model *m = load_ok(g_small, &p);
    assert_int_equal(m->head_type, BN_HEAD_F16);
    assert_int_equal(m->head.fmt, BN_FMT_F16);
    assert_null(m->head.owned);
    bn_model_free(m);
    /* an explicit q8 head is quantized at load with the kernel's layout: it
     * must equal a single-threaded quantization of the same embedding */
    p.head = BN_HEAD_Q8;
    m = load_ok(g_small, &p);
    assert_int_equal(m->head_type, BN_HEAD_Q8);
    assert_int_equal(m->head.fmt, BN_FMT_Q8_HEAD);
    assert_non_null(m->head.owned);
    size_t bytes = m->kern->fmt[BN_FMT_Q8_HEAD]->packed_size(m->hp.n_embd, m->hp.n_vocab);
    void *expect = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    assert_non_null(expect);
    m->kern->fmt[BN_FMT_Q8_HEAD]->pack(m->tok_embd, m->hp.n_embd, m->hp.n_vocab, 0, m->hp.n_vocab, expect);
    assert_memory_equal(expect, m->head.W, bytes);
    free(expect);
    /* with the q8 head the embedding rows come through pread: same bytes */
    assert_true(m->embd_fd >= 0);
    uint16_t row[256];
    for (int t = 0; t < m->hp.n_vocab; t += 37) {
        bn_model_embedding_raw(m, t, row);
        assert_memory_equal(row, m->tok_embd + (size_t)t * 512, sizeof row);
    }
    bn_model_free(m);
}

/* ---- the family: bitnet (1bitLLM) and llama (Llama3, Falcon3, Falcon-E) ---------- */

static bn_synth_config preset_config(const char *name) {
    bn_synth_config c;
    assert_int_equal(bn_synth_preset(name, NULL, &c), 0);
    c.seed = 99;
    return c;
}

/* 1bitLLM's layout: sub-norms, no rope.dimension_count (n_rot = head_dim),
 * linear rope scaling x1, a Q8_0 token_embd (n_embd 384) that is the head,
 * ffn_down with K = 1056. */
static void test_family_bitnet(void **state) {
    (void)state;
    char path[512];
    bn_synth_config c = preset_config("small-bitnet");
    bn_model *m = write_load(&c, "fam_bitnet", path, sizeof path);
    const bn_hparams *hp = bn_model_hparams(m);
    assert_string_equal(hp->arch, "bitnet");
    assert_int_equal(hp->n_embd, 384);
    assert_int_equal(hp->head_dim, 96);
    assert_int_equal(hp->n_rot, 96);
    assert_int_equal(m->arch->ffn_act, BN_FFN_SILU);
    assert_int_equal(m->arch->rope, BN_ROPE_NEOX);
    assert_non_null(m->layers[1].norm[BN_NORM_FFN_SUB]);
    assert_int_equal(m->embd_type, GGML_Q8_0);
    assert_int_equal(m->embd_row_bytes, 384 / 32 * 34);
    assert_int_equal(m->head.fmt, BN_FMT_Q8_0);
    assert_ptr_equal(m->head.W, m->tok_embd);
    assert_string_equal(m->head_tensor, "token_embd.weight");
    assert_true(m->embd_fd < 0);                /* the head is read in place anyway */
    assert_int_equal(m->layers[0].proj[BN_PROJ_DOWN].K, 1056);
    assert_int_equal(m->layers[0].proj[BN_PROJ_DOWN].Kp, 1152);
    assert_true(m->attn_scale == 1.0f / sqrtf(96.0f));
    /* the Q8_0 row decodes to d * q */
    float row[384];
    uint8_t raw[408];
    bn_model_embedding_row(m, 42, raw, row);
    const uint8_t *p = m->tok_embd + 42 * 408;
    uint16_t dh;
    memcpy(&dh, p + 34 * 3, 2);
    assert_true(row[3 * 32 + 5] == (float)(int8_t)p[34 * 3 + 2 + 5] * bn_f16_to_f32(dh));
    bn_model_free(m);

    /* projection scales and attention biases are bound when present; F16
     * norms are copied as F32 */
    c.with_scales = 1;
    c.with_biases = 1;
    c.norm_f16 = 1;
    m = write_load(&c, "fam_bitnet2", path, sizeof path);
    const bn_layer *L = &m->layers[1];
    assert_non_null(L->proj[BN_PROJ_Q].bias);
    assert_non_null(L->proj[BN_PROJ_O].bias);
    assert_null(L->proj[BN_PROJ_UP].bias);      /* bitnet adds no FFN bias */
    for (int i = 0; i < BN_PROJ_COUNT; i++)
        assert_true(L->proj[i].out_scale >= 0.5f && L->proj[i].out_scale <= 1.5f);
    const gguf_tensor *bq = gguf_find_tensor(&m->gguf, "blk.1.attn_q.bias");
    float b0;
    memcpy(&b0, bq->data, 4);
    assert_true(L->proj[BN_PROJ_Q].bias[0] == b0);
    const gguf_tensor *nt = gguf_find_tensor(&m->gguf, "blk.1.ffn_sub_norm.weight");
    assert_int_equal(nt->type, GGML_F16);
    uint16_t h;
    memcpy(&h, nt->data + 2 * 7, 2);
    assert_true(L->norm[BN_NORM_FFN_SUB][7] == bn_f16_to_f32(h));
    bn_model_free(m);
    unlink(path);
}

/* Llama's layout: no sub-norms, NORM RoPE, attention.key_length (head_dim
 * 100, so the query width 400 is not n_embd), an untied F16 output that
 * is the head while token_embd rows are read with pread. */
static void test_family_llama(void **state) {
    (void)state;
    char path[512];
    bn_synth_config c = preset_config("small-llama-untied");
    c.attn_scale = 0.125f;
    bn_model *m = write_load(&c, "fam_llama", path, sizeof path);
    const bn_hparams *hp = bn_model_hparams(m);
    assert_string_equal(hp->arch, "llama");
    assert_int_equal(hp->n_embd, 256);
    assert_int_equal(hp->n_head, 4);
    assert_int_equal(hp->head_dim, 100);
    assert_int_equal(hp->n_rot, 100);
    assert_int_equal(m->arch->rope, BN_ROPE_NORM);
    assert_null(m->layers[0].norm[BN_NORM_ATTN_SUB]);
    assert_null(m->layers[0].norm[BN_NORM_FFN_SUB]);
    assert_int_equal(m->layers[0].proj[BN_PROJ_Q].M, 400);
    assert_int_equal(m->layers[0].proj[BN_PROJ_O].K, 400);
    assert_int_equal(m->layers[0].proj[BN_PROJ_O].Kp, 512);
    assert_int_equal(m->layers[0].proj[BN_PROJ_DOWN].Kp, 896);
    assert_true(m->attn_scale == 0.125f);
    assert_string_equal(m->head_tensor, "output.weight");
    assert_ptr_equal(m->head.W, gguf_find_tensor(&m->gguf, "output.weight")->data);
    assert_int_equal(m->head.fmt, BN_FMT_F16);
    assert_true(m->embd_fd >= 0);
    /* embedding + output + output_norm + per layer 2 norms and 7 projections */
    uint64_t per_layer = 2 * 256 + 256 * 400 * 2 + 256 * 100 * 2 + 3 * 256 * 800;
    assert_int_equal(bn_model_n_params(m), 2 * 256 * 275 + 256 + 2 * per_layer);
    uint16_t raw[256];
    bn_model_embedding_raw(m, 100, raw);
    assert_memory_equal(raw, m->tok_embd + 100 * 512, sizeof raw);
    bn_model_free(m);

    /* Falcon3's tied head_dim 256 */
    c = preset_config("small-llama");
    m = write_load(&c, "fam_llama2", path, sizeof path);
    assert_int_equal(bn_model_hparams(m)->head_dim, 256);
    assert_string_equal(m->head_tensor, "token_embd.weight");
    assert_true(m->embd_fd < 0);
    bn_model_free(m);

    /* every table type, as stored; the q8 request applies to F16 only */
    static const char *const types[] = { "F32", "Q8_0", "Q6_K" };
    static const int fmts[] = { BN_FMT_F32, BN_FMT_Q8_0, BN_FMT_Q6_K };
    for (int i = 0; i < 3; i++) {
        c = preset_config("small-llama-untied");
        c.head_type = types[i];
        c.embd_type = types[i];
        snprintf(path, sizeof path, "%s/test_model_fam_type%d.gguf", BN_BINARY_DIR, i);
        write_model(&c, path);
        bn_model_params p = bn_model_default_params();
        p.head = BN_HEAD_Q8;
        m = load_ok(path, &p);
        assert_int_equal(m->head.fmt, fmts[i]);
        assert_int_equal(m->head_type, BN_HEAD_DEFAULT);
        assert_null(m->head.owned);
        bn_model_desc d;
        bn_model_describe(m, &d);
        assert_string_equal(d.head, types[i][0] == 'F' ? "f32" : types[i][1] == '8' ? "q8_0" : "q6_k");
        bn_model_free(m);
        unlink(path);
    }
}

/* Every preset writes a file its architecture's loader takes (the big
 * ones' shapes checked by bn_synth_validate only: they take gigabytes). */
static void test_family_presets(void **state) {
    (void)state;
    static const char *const big[] = { "large", "3b", "llama3-8b", "falcon3-1b", "falcon3-3b",
                                       "falcon3-7b", "falcon3-10b", "falcon-e-1b", "falcon-e-3b" };
    char err[256];
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
        bn_synth_config c;
        assert_int_equal(bn_synth_preset(big[i], "vocab.gguf", &c), 0);
        if (bn_synth_validate(&c, err, sizeof err) != 0) fail_msg("%s: %s", big[i], err);
    }
    bn_synth_config c;
    assert_int_equal(bn_synth_preset("3b", NULL, &c), 0);
    assert_int_equal(c.n_ff, 8640);             /* K = 67.5 blocks */
    assert_int_equal(c.n_embd / c.n_head, 100);
    assert_int_equal(bn_synth_preset("no-such", NULL, &c), -1);
}

static void test_family_rejects(void **state) {
    (void)state;
    bn_synth_config c = preset_config("small-llama-untied");
    c.omit = "blk.1.ffn_norm.weight";
    expect_reject(&c, "fam_norm", "missing tensor 'blk.1.ffn_norm.weight'");
    c = preset_config("small-bitnet");
    c.omit = "blk.0.attn_sub_norm.weight";
    expect_reject(&c, "fam_sub", "missing tensor 'blk.0.attn_sub_norm.weight'");
    /* shapes from the hparams: head_dim 100 makes attn_q 256 x 400 */
    c = preset_config("small-llama-untied");
    retype(&c, "blk.0.attn_q.weight", GGML_I2_S, 256, 256);
    expect_reject(&c, "fam_q", "tensor 'blk.0.attn_q.weight': expected I2_S [256, 400], "
                               "found I2_S [256, 256]");
    retype(&c, "output.weight", GGML_F16, 256, 274);
    expect_reject(&c, "fam_out", "tensor 'output.weight': expected F16 [256, 275], "
                                 "found F16 [256, 274]");
    retype(&c, "output.weight", GGML_BF16, 256, 275);
    expect_reject(&c, "fam_out2", "tensor 'output.weight': type BF16 is not supported "
                                  "(expected F16, F32, Q8_0 or Q6_K)");
    c = preset_config("small-llama-untied");
    c.with_biases = 1;
    retype(&c, "blk.0.ffn_up.bias", GGML_F32, 256, 0);
    expect_reject(&c, "fam_bias", "tensor 'blk.0.ffn_up.bias': expected F32 [800], "
                                  "found F32 [256]");
    c = preset_config("small-bitnet");
    c.with_scales = 1;
    retype(&c, "blk.1.attn_v.scale", GGML_I2_S, 4, 0);
    expect_reject(&c, "fam_scale", "tensor 'blk.1.attn_v.scale': type I2_S is not supported "
                                   "(expected F32 or F16)");
    /* head dimensions */
    c = preset_config("small-llama-untied");
    c.head_dim = 99;
    expect_reject(&c, "fam_hd", "head dimension 99 (attention.key_length) must be even for "
                                "NORM RoPE");
    c = preset_config("small-llama");
    c.head_dim = 0;
    c.n_head = 3;
    c.n_head_kv = 1;
    expect_reject(&c, "fam_hd2", "embedding_length 512 is not a multiple of head_count 3");
    c = preset_config("small-llama");
    c.omit = "llama.attention.value_length";    /* defaults to the key length: fine */
    char path[512];
    bn_model *m = write_load(&c, "fam_vl", path, sizeof path);
    assert_int_equal(bn_model_hparams(m)->head_dim, 256);
    bn_model_free(m);
    unlink(path);
    c = preset_config("small-llama");
    c.attn_scale = 0.0f;
    c.omit = "llama.rope.dimension_count";      /* defaults to the head dimension */
    m = write_load(&c, "fam_rot", path, sizeof path);
    assert_int_equal(bn_model_hparams(m)->n_rot, 256);
    bn_model_free(m);
    unlink(path);
}

/* ---- bitnet info ------------------------------------------------------------------- */

static void test_info_report(void **state) {
    (void)state;
    bn_model *m = load_ok(g_small, NULL);
    char *buf = info_of(m);
    static const char *const want[] = {
        "architecture:  bitnet-b1.58", "n_embd       256", "metadata (25 keys)", "tokenizer.ggml.tokens",
        "arr[str,275]", "tensors (24)", "token_embd.weight", "[256, 275]", "blk.1.ffn_down.weight",
        "[768, 256]", "49184" /* 768*256/4 + 32 */, "14 I2_S", "9 F32", "KV cache",
    };
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++)
        if (!strstr(buf, want[k])) fail_msg("no '%s' in:\n%s", want[k], buf);
    assert_non_null(strstr(buf, bn_model_kernel_name(m)));
    free(buf);
    bn_model_free(m);

    /* the family: the head's tensor and type, token_embd's residency */
    static const struct { const char *preset, *want[4]; } fam[] = {
        { "small-bitnet", { "architecture:  bitnet", "lm head:       q8_0 (token_embd.weight, mapped)",
                            "token_embd / lm head (Q8_0, mapped)", "[1056, 384]" } },
        { "small-llama-untied", { "architecture:  llama", "lm head:       f16 (output.weight, mapped)",
                                  "token_embd (F16, mapped)", "rows read with pread" } },
    };
    for (int i = 0; i < 2; i++) {
        bn_synth_config c = preset_config(fam[i].preset);
        char path[512];
        bn_model *fm = write_load(&c, "fam_info", path, sizeof path);
        buf = info_of(fm);
        for (int k = 0; k < 4; k++)
            if (!strstr(buf, fam[i].want[k])) fail_msg("%s: no '%s' in:\n%s", fam[i].preset, fam[i].want[k], buf);
        assert_null(strstr(buf, "unused"));
        free(buf);
        bn_model_free(fm);
        /* the q8 head made from output.weight */
        if (i == 1) {
            bn_model_params p = bn_model_default_params();
            p.head = BN_HEAD_Q8;
            fm = load_ok(path, &p);
            buf = info_of(fm);
            assert_non_null(strstr(buf, "lm head:       q8 (quantized copy of output.weight, F16)"));
            assert_non_null(strstr(buf, "lm head (q8 copy of output.weight)"));
            free(buf);
            bn_model_free(fm);
        }
        unlink(path);
    }
}

/* ---- the shared reference models (when present) ------------------------------------ */

typedef struct ref_model {
    const char *file, *arch;
    int n_vocab, n_ctx, n_embd, n_layer, n_ff, n_head, n_head_kv, head_dim;
    float theta;
    uint64_t n_params;                          /* 0: not documented */
} ref_model;

static void check_ref(const ref_model *r) {
    char path[512];
    snprintf(path, sizeof path, "%s/models/%s", BN_SHARED_DIR, r->file);
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "[   SKIP   ] %s not present\n", path);
        return;
    }
    for (int vocab_only = 0; vocab_only <= 1; vocab_only++) {
        bn_model_params p = bn_model_default_params();
        p.vocab_only = vocab_only;
        char err[512] = "";
        bn_model *m = bn_model_load(path, &p, err, sizeof err);
        if (!m && strstr(err, "tokenizer")) {
            /* SentencePiece and falcon3 tokenizers land separately */
            fprintf(stderr, "[   SKIP   ] %s: %s\n", path, err);
            return;
        }
        if (!m)
            fail_msg("load %s: %s", path, err);
        const bn_hparams *hp = bn_model_hparams(m);
        assert_string_equal(hp->arch, r->arch);
        assert_int_equal(hp->n_vocab, r->n_vocab);
        assert_int_equal(hp->n_ctx_train, r->n_ctx);
        assert_int_equal(hp->n_embd, r->n_embd);
        assert_int_equal(hp->n_layer, r->n_layer);
        assert_int_equal(hp->n_ff, r->n_ff);
        assert_int_equal(hp->n_head, r->n_head);
        assert_int_equal(hp->n_head_kv, r->n_head_kv);
        assert_int_equal(hp->head_dim, r->head_dim);
        assert_int_equal(hp->n_rot, r->head_dim);
        assert_true(hp->rope_theta == r->theta);
        assert_true(hp->rms_eps == 1e-5f);
        assert_int_equal(bn_vocab_size(bn_model_tokenizer(m)), r->n_vocab);
        if (!vocab_only) {
            if (r->n_params)
                assert_int_equal(bn_model_n_params(m), r->n_params);
            /* Real I2_S data: every code is 0..2 and all three occur. */
            bn_ternary *w = &m->layers[0].proj[BN_PROJ_Q];
            uint64_t n = (uint64_t)w->K * w->M, count[4] = { 0 };
            for (uint64_t i = 0; i < n; i++)
                count[bn_i2s_code(w->i2s, i)]++;
            assert_int_equal(count[3], 0);
            assert_true(count[0] > n / 5 && count[1] > n / 5 && count[2] > n / 5);
            assert_true(w->scale > 0.0f && w->scale < 1.0f);
        } else {
            assert_null(m->layers);
        }
        bn_model_free(m);
    }
}

static void test_shared_models(void **state) {
    (void)state;
    static const ref_model refs[] = {
        { "tiny-shakespeare.gguf", "bitnet-b1.58", 2048, 256, 256, 4, 768, 4, 2, 64, 10000.0f,
          3676416 },
        { "mini-llama3.gguf", "bitnet-b1.58", 128256, 4096, 256, 2, 768, 2, 1, 128, 500000.0f, 0 },
        { "mid-2b4t.gguf", "bitnet-b1.58", 2048, 4096, 2560, 2, 6912, 20, 5, 128, 500000.0f, 0 },
        /* the family (../shared/ref/README-family.md) */
        { "fam-bitnet-spm.gguf", "bitnet", 32002, 2048, 384, 2, 1056, 4, 4, 96, 10000.0f, 0 },
        { "fam-llama-untied.gguf", "llama", 2048, 2048, 512, 2, 1536, 4, 1, 128, 500000.0f, 0 },
        { "fam-falcon3.gguf", "llama", 2048, 2048, 512, 2, 1536, 2, 1, 256, 1000042.0f, 0 },
    };
    for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++)
        check_ref(&refs[i]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_hparams),
        cmocka_unit_test(test_small_bindings),
        cmocka_unit_test(test_small_repack_all_kernels),
        cmocka_unit_test(test_small_vocab_only),
        cmocka_unit_test(test_bitnet25_with_output_weight),
        cmocka_unit_test(test_other_shapes),
        cmocka_unit_test(test_reject_arch),
        cmocka_unit_test(test_reject_missing_tensor),
        cmocka_unit_test(test_reject_shape),
        cmocka_unit_test(test_reject_type),
        cmocka_unit_test(test_k_not_128),
        cmocka_unit_test(test_reject_missing_key),
        cmocka_unit_test(test_optional_key_defaults),
        cmocka_unit_test(test_reject_head_counts),
        cmocka_unit_test(test_reject_bad_scale),
        cmocka_unit_test(test_reject_params),
        cmocka_unit_test(test_family_bitnet),
        cmocka_unit_test(test_family_llama),
        cmocka_unit_test(test_family_presets),
        cmocka_unit_test(test_family_rejects),
        cmocka_unit_test(test_info_report),
        cmocka_unit_test(test_shared_models),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
