/* Session files (bn_session_save / bn_session_load, src/session.c;
 * docs/FORMAT.md, Session file), on small synthetic models written here:
 *   - resuming from a file gives, bit for bit, the logits of evaluating the
 *     whole prompt afresh, and of the token after it: f16 and q8_0 caches
 *     (and a q8_0 K beside an f16 V), a prompt that extends the saved
 *     tokens, one that parts from them in the middle (bn_context_truncate),
 *     one that equals them (the last token decoded again), across the
 *     256-cell border of the f16 paths; saved and loaded on 1 and 2
 *     threads, other batch sizes and another n_ctx, into a cache filled
 *     with NaN beforehand (so a cell the load forgets shows);
 *   - the file's cells are in the documented canonical layout;
 *   - every truncation and every flipped byte of a file is refused with a
 *     reason and leaves the context empty; so are another model (same
 *     shape, other weights; another shape), other cache types, other
 *     numerics, too many tokens for the context or the buffer, trailing
 *     bytes, a q8_0 value of -128 or a non-finite value or scale under a
 *     valid checksum, a bad magic or
 *     version; saving refuses counts and ids it cannot hold. */
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

#include "bitnet.h"
#include "context.h"
#include "helper_fixtures.h"
#include "kernels.h"
#include "model.h"

#define MODEL_CTX 320               /* rows past 256 cells take the long path */
#define HEADER 120                  /* docs/FORMAT.md, Session file */

static char g_model[512], g_twin[512], g_other[512];
static char g_file[512];

/* head_dim n_embd / 4: 64 or 32, q8_0 takes both */
static void write_model(const char *path, int n_embd, uint64_t seed) {
    fx_write_model(path, &(bn_synth_config){FX_DIMS(2, n_embd, 4, 2, 256, MODEL_CTX), .seed = seed});
}

static int setup(void **state) {
    (void)state;
    fx_model_path(g_model, sizeof g_model, "test_session");
    fx_model_path(g_twin, sizeof g_twin, "test_session-twin");
    fx_model_path(g_other, sizeof g_other, "test_session-other");
    snprintf(g_file, sizeof g_file, "%s/test_session-%d.session", BN_BINARY_DIR, (int)getpid());
    write_model(g_model, 256, 1234);
    write_model(g_twin, 256, 99);   /* the same shape and size, other weights */
    write_model(g_other, 128, 1234);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    remove(g_model);
    remove(g_twin);
    remove(g_other);
    remove(g_file);
    return 0;
}

static bn_model *load_model(const char *path) {
    return fx_load(path, NULL, BN_HEAD_F16);
}

static bn_context *new_ctx(bn_model *m, int n_ctx, int n_threads, int n_batch, int tk, int tv) {
    return fx_context(m, (bn_context_params){.n_ctx = n_ctx, .n_threads = n_threads, .n_batch = n_batch,
                                             .type_k = tk, .type_v = tv});
}

/* Every cell of the cache NaN (f16 0x7e00; q8_0 scales NaN, values 127):
 * whatever the load does not write, or a fresh evaluation would have
 * cleared, poisons the logits. */
static void poison(bn_context *c) {
    size_t f16_cells = (size_t)c->hp.n_layer * (size_t)c->n_ctx * (size_t)c->kv_dim;
    size_t q8_cells = (size_t)c->hp.n_layer * bn_kvq8_positions(c) * (size_t)c->kv_dim;
    if (c->k_cache) for (size_t i = 0; i < f16_cells; i++) c->k_cache[i] = 0x7e00;
    if (c->v_cache) for (size_t i = 0; i < f16_cells; i++) c->v_cache[i] = 0x7e00;
    if (c->k_q8) {
        memset(c->k_q8, 127, q8_cells);
        for (size_t i = 0; i < q8_cells / 32; i++) c->k_q8d[i] = 0x7e00;
    }
    if (c->v_q8) {
        memset(c->v_q8, 127, q8_cells);
        for (size_t i = 0; i < q8_cells / 32; i++) c->v_q8d[i] = 0x7e00;
    }
}

/* ---- resuming gives the fresh bits ---------------------------------------------------- */

typedef struct resume_case {
    int tk, tv;
    int n_saved, n_prompt;
    int part;                       /* the saved tokens differ from the prompt's from here;
                                       -1: they are its first n_saved */
    int saved_extra;                /* tokens decoded after the saved ones (not saved) */
    int threads_save, threads_load;
} resume_case;

static void run_case(bn_model *m, const resume_case *rc) {
    const int V = m->hp.n_vocab;
    int32_t prompt[400], saved[400], next = 7;
    fx_tokens(prompt, rc->n_prompt, V, 11);
    memcpy(saved, prompt, sizeof saved);
    if (rc->part >= 0) fx_tokens(saved + rc->part, rc->n_saved + rc->saved_extra - rc->part, V, 23);
    else fx_tokens(saved + rc->n_saved, rc->saved_extra, V, 29);
    char err[256] = "";

    /* afresh: the whole prompt in one batch, then one more token */
    bn_context *a = new_ctx(m, 0, rc->threads_load, 0, rc->tk, rc->tv);
    fx_decode(a, prompt, rc->n_prompt);
    float *want = malloc(2 * (size_t)V * sizeof(float));
    assert_non_null(want);
    memcpy(want, bn_get_logits(a, -1), (size_t)V * sizeof(float));
    fx_decode(a, &next, 1);
    memcpy(want + V, bn_get_logits(a, -1), (size_t)V * sizeof(float));
    bn_context_free(a);

    /* the saving run: odd batches, perhaps more tokens than it saves */
    bn_context *b = new_ctx(m, 0, rc->threads_save, 7, rc->tk, rc->tv);
    fx_decode(b, saved, rc->n_saved + rc->saved_extra);
    if (bn_session_save(b, g_file, saved, rc->n_saved, err, sizeof err) != 0)
        fail_msg("bn_session_save: %s", err);
    bn_context_free(b);

    /* the resuming run: another n_ctx and batch, a poisoned cache */
    bn_context *c = new_ctx(m, MODEL_CTX + 80, rc->threads_load, 64, rc->tk, rc->tv);
    poison(c);
    int32_t got[400];
    int n = -1;
    if (bn_session_load(c, g_file, got, 400, &n, err, sizeof err) != 0) fail_msg("bn_session_load: %s", err);
    assert_int_equal(n, rc->n_saved);
    assert_int_equal(bn_context_n_past(c), rc->n_saved);
    assert_memory_equal(got, saved, (size_t)n * sizeof *got);
    assert_null(bn_get_logits(c, -1));          /* no logits until a decode */
    int match = 0;
    while (match < n && match < rc->n_prompt && got[match] == prompt[match]) match++;
    if (match == rc->n_prompt) match--;
    /* a prompt that extends the file decodes straight on: the load itself
     * must leave the cache as evaluating the saved tokens would */
    if (match < n) assert_int_equal(bn_context_truncate(c, match, err, sizeof err), 0);
    fx_decode(c, prompt + match, rc->n_prompt - match);
    assert_memory_equal(bn_get_logits(c, -1), want, (size_t)V * sizeof(float));
    fx_decode(c, &next, 1);
    assert_memory_equal(bn_get_logits(c, -1), want + V, (size_t)V * sizeof(float));
    bn_context_free(c);
    free(want);
}

static void test_resume_bits(void **state) {
    (void)state;
    bn_model *m = load_model(g_model);
    const int F = BN_KV_F16, Q = BN_KV_Q8_0;
    const resume_case cases[] = {
        /* tk tv  saved prompt part extra  threads */
        {F, F, 20, 33, -1, 0, 1, 2},        /* extends */
        {F, F, 20, 21, -1, 0, 1, 2},        /* by one token: its block's V past it read */
        {F, F, 270, 271, -1, 0, 2, 1},
        {F, F, 30, 33, 12, 5, 2, 1},        /* parts in the middle */
        {F, F, 33, 33, -1, 4, 2, 2},        /* the same (and the file holds only those) */
        {F, F, 270, 300, -1, 0, 2, 2},      /* across 256 cells */
        {F, F, 290, 300, 262, 0, 1, 2},
        {F, F, 300, 300, -1, 0, 1, 1},
        {Q, Q, 20, 33, -1, 0, 1, 2},
        {Q, Q, 21, 22, -1, 0, 2, 1},
        {Q, Q, 30, 33, 12, 5, 2, 1},
        {Q, Q, 33, 33, -1, 0, 2, 2},
        {Q, Q, 290, 300, 262, 0, 2, 1},
        {Q, F, 29, 41, 17, 3, 1, 2},
        {F, Q, 41, 41, -1, 0, 2, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run_case(m, &cases[i]);
        print_message("  %s K / %s V: saved %d, prompt %d, parting at %d, threads %d -> %d: "
                      "the fresh bits\n", bn_kv_type_name(cases[i].tk), bn_kv_type_name(cases[i].tv),
                      cases[i].n_saved, cases[i].n_prompt, cases[i].part, cases[i].threads_save,
                      cases[i].threads_load);
    }
    bn_model_free(m);
}

/* ---- the canonical layout -------------------------------------------------------------- */

static unsigned char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc((size_t)n + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return p;
}

static void write_all(const char *path, const unsigned char *p, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

static uint16_t u16_at(const unsigned char *p) {
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint64_t fnv1a(const unsigned char *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static void reseal(unsigned char *p, size_t n) {      /* a valid checksum again */
    uint64_t h = fnv1a(p, n - 8);
    for (int i = 0; i < 8; i++) p[n - 8 + (size_t)i] = (unsigned char)(h >> (8 * i));
}

/* Each row of the file is the documented one: per layer K then V, per KV
 * head the positions in order; f16 halves, or q8_0 blocks (scale, 32
 * values) as the cache's own row reads give them. */
static void test_layout(void **state) {
    (void)state;
    bn_model *m = load_model(g_model);
    const int n = 13, V = m->hp.n_vocab;
    int32_t t[13];
    fx_tokens(t, n, V, 5);
    for (int q8 = 0; q8 < 2; q8++) {
        int type = q8 ? BN_KV_Q8_0 : BN_KV_F16;
        bn_context *c = new_ctx(m, 0, 1, 0, type, type);
        fx_decode(c, t, n);
        char err[256] = "";
        assert_int_equal(bn_session_save(c, g_file, t, n, err, sizeof err), 0);
        size_t len;
        unsigned char *f = read_all(g_file, &len);
        const int L = c->hp.n_layer, H = c->hp.n_head_kv, hd = c->hp.head_dim;
        size_t row = q8 ? (size_t)hd / 32 * 34 : (size_t)hd * 2;
        assert_int_equal(len, HEADER + 4 * n + (size_t)L * 2 * H * n * row + 8);
        assert_memory_equal(f, "bitnetKV", 8);
        for (int i = 0; i < n; i++) assert_int_equal(f[HEADER + 4 * i], t[i] & 0xff);
        const unsigned char *p = f + HEADER + 4 * n;
        for (int l = 0; l < L; l++)
            for (int v = 0; v < 2; v++)
                for (int g = 0; g < H; g++)
                    for (int pos = 0; pos < n; pos++, p += row) {
                        if (!q8) {
                            for (int d = 0; d < hd; d++) {
                                uint16_t want = v ? c->v_cache[((size_t)l * c->kv_dim + (size_t)g * hd + d) * c->n_ctx + pos]
                                                  : c->k_cache[(((size_t)l * H + g) * c->n_ctx + pos) * hd + d];
                                assert_int_equal(u16_at(p + 2 * d), want);
                            }
                            continue;
                        }
                        int8_t qv[BN_KVQ8_MAX_HD];
                        uint16_t qd[BN_KVQ8_MAX_HD / 32];
                        size_t series = bn_kvq8_series(c, l, g);
                        bn_q8_kv_row_read(v ? BN_KVQ8_V : BN_KVQ8_K, (v ? c->v_q8 : c->k_q8) + series * hd,
                                          (v ? c->v_q8d : c->k_q8d) + series * (hd / 32), hd, pos, qv, qd);
                        for (int b = 0; b < hd / 32; b++) {
                            assert_int_equal(u16_at(p + 34 * b), qd[b]);
                            assert_memory_equal(p + 34 * b + 2, qv + 32 * b, 32);
                        }
                    }
        assert_int_equal((size_t)(p - f), len - 8);
        assert_true(fnv1a(f, len - 8) == ((uint64_t)u16_at(f + len - 8) | (uint64_t)u16_at(f + len - 6) << 16 |
                                          (uint64_t)u16_at(f + len - 4) << 32 | (uint64_t)u16_at(f + len - 2) << 48));
        free(f);
        bn_context_free(c);
    }
    bn_model_free(m);
}

/* ---- refusals ----------------------------------------------------------------------------- */

/* Loads path into c, which must refuse it with a reason containing `why`
 * (NULL: any) and be empty afterwards, though it held a token before. */
static void refused(bn_context *c, const char *path, int cap, const char *why) {
    char err[512] = "";
    int32_t got[64], one = 3;
    int n = 123;
    assert_true(cap <= 64);
    fx_decode(c, &one, 1);
    assert_int_equal(bn_session_load(c, path, got, cap, &n, err, sizeof err), -1);
    assert_true(err[0] != '\0');
    if (why && !strstr(err, why)) fail_msg("expected '%s' in: %s", why, err);
    assert_int_equal(n, 0);
    assert_int_equal(bn_context_n_past(c), 0);
}

static void saved_file(bn_model *m, int type, const int32_t *t, int n) {
    bn_context *c = new_ctx(m, 0, 1, 0, type, type);
    fx_decode(c, t, n);
    char err[256] = "";
    if (bn_session_save(c, g_file, t, n, err, sizeof err) != 0) fail_msg("bn_session_save: %s", err);
    bn_context_free(c);
}

/* The file as saved, edited by one byte (resealed: a valid checksum). */
static void edited(const unsigned char *good, size_t len, const char *path, size_t at, unsigned char value,
                   int reseal_it) {
    unsigned char *p = malloc(len);
    assert_non_null(p);
    memcpy(p, good, len);
    p[at] = value;
    if (reseal_it) reseal(p, len);
    write_all(path, p, len);
    free(p);
}

static void test_refusals(void **state) {
    (void)state;
    bn_model *m = load_model(g_model);
    const int F = BN_KV_F16, Q = BN_KV_Q8_0, N = 9;
    int32_t t[9];
    fx_tokens(t, N, m->hp.n_vocab, 3);
    char bad[600], err[256];
    snprintf(bad, sizeof bad, "%s.bad", g_file);
    bn_context *c = new_ctx(m, 0, 1, 0, F, F);

    saved_file(m, F, t, N);
    size_t len;
    unsigned char *good = read_all(g_file, &len);

    /* contexts the file does not fit */
    bn_context *q = new_ctx(m, 0, 1, 0, Q, F);
    refused(q, g_file, 64, "-ctk");
    bn_context_free(q);
    bn_context *small = new_ctx(m, 8, 1, 0, F, F);
    refused(small, g_file, 64, "more than the context");
    bn_context_free(small);
    refused(c, g_file, 8, "token buffer");
    bn_context *nc = new_ctx(m, 0, 1, 0, F, F);
    assert_int_equal(bn_context_set_numerics(nc, BN_NUMERICS_BITNET_CPP, err, sizeof err), 0);
    refused(nc, g_file, 64, "--batch-numerics");
    bn_context_free(nc);
    bn_model *twin = load_model(g_twin);
    assert_true(bn_model_file_size(twin) == bn_model_file_size(m));
    bn_context *tc = new_ctx(twin, 0, 1, 0, F, F);
    refused(tc, g_file, 64, "fingerprint");
    bn_context_free(tc);
    bn_model_free(twin);
    bn_model *other = load_model(g_other);
    bn_context *oc = new_ctx(other, 0, 1, 0, F, F);
    refused(oc, g_file, 64, "another model");
    bn_context_free(oc);
    bn_model_free(other);
    refused(c, "/nonexistent-dir/x.session", 64, "cannot open");

    /* edited files */
    edited(good, len, bad, 0, 'B', 0);
    refused(c, bad, 64, "not a bitnet session file");
    edited(good, len, bad, 8, 2, 1);
    refused(c, bad, 64, "version 2");
    edited(good, len, bad, 12, N + 1, 1);              /* n_tokens */
    refused(c, bad, 64, "cells take");
    edited(good, len, bad, 112, good[112] ^ 1, 1);     /* the cells' bytes */
    refused(c, bad, 64, "cells take");
    edited(good, len, bad, HEADER + 3, 0x7f, 1);       /* token 0 past the vocabulary */
    refused(c, bad, 64, "out of range");
    edited(good, len, bad, len - 1, good[len - 1] ^ 0x40, 0);
    refused(c, bad, 64, "checksum");
    unsigned char *longer = malloc(len + 1);
    assert_non_null(longer);
    memcpy(longer, good, len);
    longer[len] = 0;
    write_all(bad, longer, len + 1);
    refused(c, bad, 64, "trailing bytes");
    free(longer);
    edited(good, len, bad, HEADER + 4 * N + 1, 0x7e, 1); /* the first K cell a NaN */
    refused(c, bad, 64, "not finite");
    edited(good, len, bad, HEADER + 4 * N + 1, 0xfc, 1); /* -Inf */
    refused(c, bad, 64, "not finite");

    /* cuts and flipped bytes: every one in the header, the ids and the
     * first cells, then a sample of the cells (the suite runs emulated too) */
    const size_t dense = HEADER + 4 * N + 256;
    int n_cuts = 0, n_flips = 0;
    for (size_t cut = 0; cut < len; cut += cut < dense ? 1 : 61, n_cuts++) {
        write_all(bad, good, cut);
        refused(c, bad, 64, NULL);
    }
    for (size_t at = 0; at < len; at += at < dense ? 1 : 29, n_flips++) {
        edited(good, len, bad, at, good[at] ^ (unsigned char)(1u << (at % 8)), 0);
        refused(c, bad, 64, NULL);
    }
    write_all(bad, good, len - 1);                      /* the last byte cut */
    refused(c, bad, 64, "truncated");
    print_message("  %d cuts and %d flipped bytes of a %zu-byte file refused\n", n_cuts, n_flips, len);

    /* the refused context still works: the good file loads into it */
    int32_t got[64];
    int n = 0;
    assert_int_equal(bn_session_load(c, g_file, got, 64, &n, err, sizeof err), 0);
    assert_int_equal(n, N);
    assert_int_equal(bn_context_n_past(c), N);

    /* q8_0: a value of -128 (never quantized) under a valid checksum */
    saved_file(m, Q, t, N);
    free(good);
    good = read_all(g_file, &len);
    edited(good, len, bad, HEADER + 4 * N + 2 + 5, 0x80, 1);
    bn_context *qq = new_ctx(m, 0, 1, 0, Q, Q);
    refused(qq, bad, 64, "-128");
    edited(good, len, bad, HEADER + 4 * N + 1, 0x7c, 1); /* the first block's scale an Inf */
    refused(qq, bad, 64, "scale that is not finite");
    assert_int_equal(bn_session_load(qq, g_file, got, 64, &n, err, sizeof err), 0);
    bn_context_free(qq);

    /* an empty session is a session */
    bn_context_reset(c);
    assert_int_equal(bn_session_save(c, g_file, NULL, 0, err, sizeof err), 0);
    n = -1;
    assert_int_equal(bn_session_load(c, g_file, got, 0, &n, err, sizeof err), 0);
    assert_int_equal(n, 0);

    /* saving what the cache does not hold */
    fx_decode(c, t, 4);
    assert_int_equal(bn_session_save(c, g_file, t, 5, err, sizeof err), -1);
    assert_non_null(strstr(err, "the cache holds 4"));
    assert_int_equal(bn_session_save(c, g_file, t, -1, err, sizeof err), -1);
    int32_t wrong[4] = {1, 2, (int32_t)m->hp.n_vocab, 3};
    assert_int_equal(bn_session_save(c, g_file, wrong, 4, err, sizeof err), -1);
    assert_non_null(strstr(err, "out of range"));
    assert_int_equal(bn_session_save(c, "/nonexistent-dir/x.session", t, 4, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot create"));
    /* a failed save leaves the old file */
    assert_int_equal(bn_session_load(c, g_file, got, 64, &n, err, sizeof err), 0);
    assert_int_equal(n, 0);

    remove(bad);
    free(good);
    bn_context_free(c);
    bn_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_bits),
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
