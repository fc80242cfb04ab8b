/* Our logits against bitnet.cpp's own (../shared/ref, see its README), when
 * that directory is present. For every case and for both of our paths (the
 * whole prompt as one batch, and token by token), against both reference
 * modes (seq, batch), with the F16 head:
 *   - max|Δ| <= 0.25 σ and mean|Δ| <= 0.04 σ (σ = std of the reference file);
 *   - row 0 (BOS alone) max|Δ| <= 0.01 σ;
 *   - 16-token seq cases: max|Δ| <= 0.01 σ (our numerics are bitnet.cpp's
 *     decode path's);
 *   - argmax equal where the reference top-1/top-2 margin exceeds 0.25 σ;
 *   - greedy continuation equal up to the first step whose reference margin is
 *     below twice our error. Our error is measured on the prompt rows only;
 *     the continuation runs 32 positions past them and small differences
 *     compound along positions, so the error there is taken as twice the
 *     measured max|Δ| (mid-2b4t.random16 seq: max|Δ| 1.52e-4, and the
 *     continuation parts from bitnet.cpp at a 3.2e-4 near-tie).
 * Besides, the prompt as one batch with BN_NUMERICS_BITNET_CPP ("bcpp":
 * float probabilities and float final state, tinyBLAS FMA order) against the
 * batch reference, with the criteria above plus:
 *   - 16-token batch cases: max|Δ| <= 0.001 σ. Measured (avx512, ref, avx2
 *     alike): mini-llama3 3.7e-7 / 3.6e-7, mid-2b4t.random16 6.2e-6, i.e.
 *     1e-6 σ to 6e-6 σ, where the decode numerics give 0.11-0.14 σ against
 *     the same files; the residue is last-bit float noise of the kind the
 *     seq comparison shows on mid-2b4t (1.5e-4). The bound leaves room for
 *     that noise, and anything that rounds like the decode path again (f16
 *     probabilities: 0.1 σ; f16 final state: 1e-3 σ at row 0) fails it.
 *   - the 160-token case is exact for its first rows only: at row 9 one int8
 *     activation rounding flips (as in the seq comparison at row 23) and the
 *     rows after it sit at the usual noise floor (0.08 σ), so it gets only
 *     the general criteria;
 *   - the greedy continuation runs through the decode path, whose accuracy
 *     is what the seq cases establish (<= 0.01 σ, and a flip can occur at
 *     any position: mid-2b4t.random16 parts from bitnet.cpp at continuation
 *     step 21, margin 0.016, in both numerics); so the continuation error
 *     there is taken as at least 0.01 σ.
 * The family's reference logits (../shared/ref/README-family.md: arch
 * `bitnet` with a Q8_0 head and ffn_down K = 1056, whose reference is an
 * independent numpy forward because bitnet.cpp gets that shape wrong;
 * `llama` with an untied head; Falcon3's head_dim 256) get the same
 * criteria, for every kernel variant (bn_kernels_all) at 1 and 2 threads,
 * and every variant and thread count must give the same bits.
 * The measured numbers are printed for the record. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "bitnet.h"
#include "helper_fixtures.h"
#include "model.h"

#define REF_DIR BN_SHARED_DIR "/ref"
#define MODEL_DIR BN_SHARED_DIR "/models"
#define N_GREEDY 32
#define MAX_TOKENS 1024

/* ---- a small scanner for the reference JSON files ----------------------------------- */

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) buf[n] = '\0';
    if (len) *len = (size_t)n;
    return buf;
}

/* The text just after `"key":` (whitespace skipped); fails the test if absent. */
static const char *json_value(const char *json, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = strstr(json, pat);
    if (!p) fail_msg("reference json has no \"%s\"", key);
    p += strlen(pat);
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    if (*p != ':') fail_msg("reference json: no ':' after \"%s\"", key);
    p++;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

static long json_int(const char *json, const char *key) {
    return strtol(json_value(json, key), NULL, 10);
}

static void json_string(const char *json, const char *key, char *out, size_t cap) {
    const char *p = json_value(json, key);
    if (*p != '"') fail_msg("reference json: \"%s\" is not a string", key);
    const char *end = strchr(p + 1, '"');
    if (!end || (size_t)(end - p - 1) >= cap) fail_msg("reference json: bad \"%s\"", key);
    memcpy(out, p + 1, (size_t)(end - p - 1));
    out[end - p - 1] = '\0';
}

/* A flat array of numbers; returns the count. */
static int json_numbers(const char *json, const char *key, double *out, int cap) {
    const char *p = json_value(json, key);
    if (*p != '[') fail_msg("reference json: \"%s\" is not an array", key);
    p++;
    int n = 0;
    for (;;) {
        while (*p == ' ' || *p == ',' || *p == '\n' || *p == '\r' || *p == '\t') p++;
        if (*p == ']') break;
        char *end;
        double v = strtod(p, &end);
        if (end == p || n == cap) fail_msg("reference json: bad array \"%s\"", key);
        out[n++] = v;
        p = end;
    }
    return n;
}

/* ---- one reference file pair --------------------------------------------------------- */

typedef struct refcase {
    int32_t tokens[MAX_TOKENS];
    int rows, n_vocab;
    float *logits;                  /* rows x n_vocab */
    int32_t greedy[N_GREEDY];
    double margins[N_GREEDY];
    double sigma;
} refcase;

static void load_refcase(const char *name, const char *mode, refcase *rc) {
    char path[1024], file[256];
    snprintf(path, sizeof path, "%s/%s.%s.json", REF_DIR, name, mode);
    char *json = read_file(path, NULL);
    if (!json) fail_msg("cannot read %s", path);
    static double nums[MAX_TOKENS];
    rc->rows = (int)json_int(json, "rows");
    rc->n_vocab = (int)json_int(json, "n_vocab");
    int nt = json_numbers(json, "tokens", nums, MAX_TOKENS);
    assert_int_equal(nt, rc->rows);
    for (int i = 0; i < nt; i++) rc->tokens[i] = (int32_t)nums[i];
    assert_int_equal(json_numbers(json, "greedy_tokens", nums, MAX_TOKENS), N_GREEDY);
    for (int i = 0; i < N_GREEDY; i++) rc->greedy[i] = (int32_t)nums[i];
    assert_int_equal(json_numbers(json, "greedy_margins", rc->margins, N_GREEDY), N_GREEDY);
    json_string(json, "logits_file", file, sizeof file);
    free(json);

    snprintf(path, sizeof path, "%s/%s", REF_DIR, file);
    size_t len;
    rc->logits = (float *)read_file(path, &len);
    if (!rc->logits) fail_msg("cannot read %s", path);
    assert_int_equal(len, (size_t)rc->rows * rc->n_vocab * sizeof(float));

    double s = 0, ss = 0;
    size_t n = (size_t)rc->rows * rc->n_vocab;
    for (size_t i = 0; i < n; i++) {
        s += (double)rc->logits[i];
        ss += (double)rc->logits[i] * (double)rc->logits[i];
    }
    double mu = s / n;
    rc->sigma = sqrt(ss / n - mu * mu);
}

/* ---- our side ----------------------------------------------------------------------------- */

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;        /* ties: lowest id */
    return best;
}

typedef struct ours {
    float *logits;                  /* rows x n_vocab */
    int32_t greedy[N_GREEDY];
} ours;

/* Runs the prompt as one batch (batch = 1) or token by token, then the greedy
 * continuation one token at a time, as the reference did. */
static void run_ours(bn_model *m, const refcase *rc, int batch, int numerics, int threads,
                     int greedy, ours *o) {
    int V = rc->n_vocab, n = rc->rows;
    bn_context *c = fx_context(m, (bn_context_params){.n_threads = threads, .n_batch = n, .n_outputs_max = n});
    char err[256] = "";
    if (bn_context_set_numerics(c, numerics, err, sizeof err) != 0)
        fail_msg("bn_context_set_numerics: %s", err);
    o->logits = fx_logits(c, rc->tokens, n, !batch);
    o->greedy[0] = argmax(o->logits + (size_t)(n - 1) * V, V);
    for (int k = 1; k < N_GREEDY && greedy; k++) {
        fx_decode(c, &o->greedy[k - 1], 1);
        o->greedy[k] = argmax(bn_get_logits(c, -1), V);
    }
    bn_context_free(c);
}

/* All criteria of the issue for one (our path, reference mode) pair; prints
 * the numbers and returns how many criteria failed (every case is measured
 * and printed before the test fails). */
static int check(const char *name, const char *mode, const char *path, const refcase *rc,
                 const ours *o, int strict) {
    int V = rc->n_vocab, n = rc->rows;
    double max = 0, sum = 0, row0 = 0;
    for (int r = 0; r < n; r++)
        for (int v = 0; v < V; v++) {
            size_t i = (size_t)r * V + v;
            double d = fabs((double)o->logits[i] - (double)rc->logits[i]);
            assert_false(isnan(d));
            sum += d;
            if (d > max) max = d;
            if (r == 0 && d > row0) row0 = d;
        }
    double sigma = rc->sigma, mean = sum / ((double)n * V);

    int sure = 0, agree = 0;
    for (int r = 0; r < n; r++) {
        const float *R = rc->logits + (size_t)r * V;
        int top = argmax(R, V);
        float second = -INFINITY;
        for (int v = 0; v < V; v++)
            if (v != top && R[v] > second) second = R[v];
        if ((double)(R[top] - second) > 0.25 * sigma) {
            sure++;
            agree += argmax(o->logits + (size_t)r * V, V) == top;
        }
    }

    int stop = 0;                   /* first greedy step the check may not cover */
    const int bcpp = strcmp(path, "bcpp") == 0;
    double continuation_err = 2 * max;
    if (bcpp && continuation_err < 0.01 * sigma) continuation_err = 0.01 * sigma;
    while (stop < N_GREEDY && rc->margins[stop] >= 2 * continuation_err) stop++;
    int same = 0;
    while (same < N_GREEDY && o->greedy[same] == rc->greedy[same]) same++;

    print_message("  %-24s ref %-5s ours %-5s sigma %.3f  max|d| %.3g = %.4f sigma  "
                  "mean %.5f sigma  row0 %.5f sigma  argmax %d/%d  greedy %d/32 (checked %d)\n",
                  name, mode, path, sigma, max, max / sigma, mean / sigma, row0 / sigma,
                  agree, sure, same, stop);
    int failed = 0;
#define CRITERION(ok, what)                                  \
    do {                                                     \
        if (!(ok)) {                                         \
            print_message("    FAILED: %s\n", what);         \
            failed++;                                        \
        }                                                    \
    } while (0)
    CRITERION(max <= 0.25 * sigma, "max|d| <= 0.25 sigma");
    CRITERION(mean <= 0.04 * sigma, "mean|d| <= 0.04 sigma");
    CRITERION(row0 <= 0.01 * sigma, "row 0 max|d| <= 0.01 sigma");
    CRITERION(!strict || strcmp(mode, "seq") != 0 || n != 16 || max <= 0.01 * sigma,
              "16-token seq case: max|d| <= 0.01 sigma");
    CRITERION(!strict || !bcpp || n != 16 || max <= 0.001 * sigma,
              "16-token batch case, bitnet.cpp batch numerics: max|d| <= 0.001 sigma");
    CRITERION(agree == sure, "argmax equal where the reference margin > 0.25 sigma");
    CRITERION(same >= stop, "greedy tokens equal up to the first margin below twice the continuation error");
#undef CRITERION
    return failed;
}

static void run_model(const char *model_file, const char *const *cases, int n_cases) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", MODEL_DIR, model_file);
    bn_model *m = fx_load(path, NULL, BN_HEAD_F16);
    print_message("%s (kernel %s)\n", model_file, bn_model_kernel_name(m));
    int failed = 0;

    for (int i = 0; i < n_cases; i++) {
        static refcase rc;
        load_refcase(cases[i], "seq", &rc);
        assert_int_equal(rc.n_vocab, bn_model_hparams(m)->n_vocab);
        ours o_batch, o_seq, o_bcpp;
        run_ours(m, &rc, 1, BN_NUMERICS_DECODE, 2, 1, &o_batch);
        run_ours(m, &rc, 0, BN_NUMERICS_DECODE, 2, 1, &o_seq);
        run_ours(m, &rc, 1, BN_NUMERICS_BITNET_CPP, 2, 1, &o_bcpp);
        /* One set of numerics: our two paths agree bit for bit. */
        assert_memory_equal(o_batch.logits, o_seq.logits, (size_t)rc.rows * rc.n_vocab * sizeof(float));

        failed += check(cases[i], "seq", "batch", &rc, &o_batch, 1);
        failed += check(cases[i], "seq", "seq", &rc, &o_seq, 1);
        free(rc.logits);
        load_refcase(cases[i], "batch", &rc);
        failed += check(cases[i], "batch", "batch", &rc, &o_batch, 1);
        failed += check(cases[i], "batch", "seq", &rc, &o_seq, 1);
        failed += check(cases[i], "batch", "bcpp", &rc, &o_bcpp, 1);
        free(rc.logits);
        free(o_batch.logits);
        free(o_seq.logits);
        free(o_bcpp.logits);
    }
    bn_model_free(m);
    assert_int_equal(failed, 0);
}

static int have_refs(void) {
    struct stat st;
    return stat(REF_DIR "/README.md", &st) == 0 && stat(MODEL_DIR "/mid-2b4t.gguf", &st) == 0;
}

static void test_mini_llama3(void **state) {
    (void)state;
    if (!have_refs()) skip();
    static const char *const cases[] = {"mini-llama3.capital16", "mini-llama3.random16"};
    run_model("mini-llama3.gguf", cases, 2);
}

static void test_mid_2b4t(void **state) {
    (void)state;
    if (!have_refs()) skip();
    static const char *const cases[] = {"mid-2b4t.random16", "mid-2b4t.shakespeare160"};
    run_model("mid-2b4t.gguf", cases, 2);
}

/* ---- the family (README-family.md) ------------------------------------------------------ */

/* The models folder: ../shared/models, or $BN_REF_MODEL_DIR (copies of the
 * same files, e.g. with a tokenizer this build reads). */
static void family_model_path(const char *file, char *path, size_t n) {
    const char *dir = getenv("BN_REF_MODEL_DIR");
    snprintf(path, n, "%s/%s", dir && *dir ? dir : MODEL_DIR, file);
}

/* max|d| / sigma of our logits against a reference file. */
static double max_rel(const refcase *rc, const ours *o) {
    double max = 0;
    for (size_t i = 0; i < (size_t)rc->rows * rc->n_vocab; i++) {
        double d = fabs((double)o->logits[i] - (double)rc->logits[i]);
        if (d > max) max = d;
    }
    return max / rc->sigma;
}

/* Every case of a family model, for every kernel variant at 1 and 2
 * threads. The reference's criteria (README-family.md, How to compare:
 * max, mean, argmax, greedy; row 0 <= 0.01 sigma) on the reference kernel
 * at 1 thread with the greedy continuation, and every other variant and
 * thread count must give the same bits for the prompt. The stricter
 * 16-token bounds of bitnet-b1.58 do not carry over: the family's seq
 * references part from an engine that follows every documented rounding
 * at one int8 flip (fam-llama-untied.sonnet16 0.025 sigma, as the
 * reference's own numpy forward; fam-bitnet-spm.caesar16 0.09 sigma against
 * numpy), and bitnet.cpp's prompt batch on these shapes is not reproduced
 * by its documented batch rules (0.02 sigma for the numpy forward on
 * fam-falcon3.globe16). Instead each model's random16 seq case, where no
 * rounding flips, must match to 0.001 sigma (measured: 0 to 6e-7 sigma). */
static void run_family(const char *model_file, const char *const *cases, int n_cases) {
    char path[1024];
    struct stat st;
    family_model_path(model_file, path, sizeof path);
    if (stat(REF_DIR "/README-family.md", &st) != 0 || stat(path, &st) != 0) {
        print_message("skipped: no %s or no family reference files in %s\n", path, REF_DIR);
        skip();
    }
    const bn_kernels *all[16];
    int n_all = bn_kernels_all(all, 16);
    assert_true(n_all >= 1 && strcmp(all[0]->name, "ref") == 0);
    /* BN_REF_VARIANTS=N keeps the first N (ref, then the best variant):
     * the sanitizer run in CI, where every variant would take minutes
     * (test_kernels already proves every variant's integers equal ref's). */
    const char *lim = getenv("BN_REF_VARIANTS");
    if (lim && atoi(lim) >= 1 && atoi(lim) < n_all) n_all = atoi(lim);
    int failed = 0;
    for (int i = 0; i < n_cases; i++) {
        static refcase seq, batch;
        load_refcase(cases[i], "seq", &seq);
        load_refcase(cases[i], "batch", &batch);
        size_t bytes = (size_t)seq.rows * seq.n_vocab * sizeof(float);
        float *first = NULL, *first_bcpp = NULL;   /* ref -t 1 */
        for (int k = 0; k < n_all; k++) {
            bn_model_params mp = bn_model_default_params();
            mp.kernel = "ref";
            char err[256] = "";
            bn_model *m = bn_model_load(path, &mp, err, sizeof err);
            if (!m) {
                /* The tokenizers of these files (SentencePiece, falcon3)
                 * may not be in this build yet; the logits need only ids. */
                if (strstr(err, "tokenizer")) {
                    print_message("skipped: %s: %s\n", path, err);
                    free(seq.logits);
                    free(batch.logits);
                    skip();
                }
                fail_msg("bn_model_load(%s): %s", path, err);
            }
            if (k > 0 && bn_model_use_kernels(m, all[k], err, sizeof err) != 0)
                fail_msg("bn_model_use_kernels(%s): %s", all[k]->name, err);
            assert_int_equal(seq.n_vocab, bn_model_hparams(m)->n_vocab);
            for (int threads = 1; threads <= 2; threads++) {
                const int base = k == 0 && threads == 1;
                ours o_batch, o_seq, o_bcpp;
                run_ours(m, &seq, 1, BN_NUMERICS_DECODE, threads, base, &o_batch);
                run_ours(m, &seq, 0, BN_NUMERICS_DECODE, threads, base, &o_seq);
                run_ours(m, &seq, 1, BN_NUMERICS_BITNET_CPP, threads, base, &o_bcpp);
                assert_memory_equal(o_batch.logits, o_seq.logits, bytes);
                if (base) {
                    print_message("%s (kernel ref -t 1; the same bits expected from every "
                                  "variant at 1 and 2 threads)\n", cases[i]);
                    failed += check(cases[i], "seq", "batch", &seq, &o_batch, 0);
                    failed += check(cases[i], "seq", "seq", &seq, &o_seq, 0);
                    failed += check(cases[i], "batch", "batch", &batch, &o_batch, 0);
                    failed += check(cases[i], "batch", "seq", &batch, &o_seq, 0);
                    failed += check(cases[i], "batch", "bcpp", &batch, &o_bcpp, 0);
                    if (strstr(cases[i], ".random16") && max_rel(&seq, &o_seq) > 0.001) {
                        print_message("    FAILED: random16 seq case: max|d| <= 0.001 sigma\n");
                        failed++;
                    }
                    first = o_seq.logits;
                    first_bcpp = o_bcpp.logits;
                    free(o_batch.logits);
                    continue;
                }
                if (memcmp(first, o_seq.logits, bytes) != 0 ||
                    memcmp(first_bcpp, o_bcpp.logits, bytes) != 0) {
                    print_message("    FAILED: %s: kernel %s -t %d gives other bits than ref -t 1\n",
                                  cases[i], all[k]->name, threads);
                    failed++;
                }
                free(o_batch.logits);
                free(o_seq.logits);
                free(o_bcpp.logits);
            }
            bn_model_free(m);
        }
        free(first);
        free(first_bcpp);
        free(seq.logits);
        free(batch.logits);
    }
    assert_int_equal(failed, 0);
}

static void test_fam_bitnet_spm(void **state) {
    (void)state;
    static const char *const cases[] = {"fam-bitnet-spm.caesar16", "fam-bitnet-spm.macbeth35",
                                        "fam-bitnet-spm.random16"};
    run_family("fam-bitnet-spm.gguf", cases, 3);
}

static void test_fam_llama_untied(void **state) {
    (void)state;
    static const char *const cases[] = {"fam-llama-untied.sonnet16", "fam-llama-untied.hamlet93",
                                        "fam-llama-untied.random16"};
    run_family("fam-llama-untied.gguf", cases, 3);
}

static void test_fam_falcon3(void **state) {
    (void)state;
    static const char *const cases[] = {"fam-falcon3.globe16", "fam-falcon3.sonnet93",
                                        "fam-falcon3.random16"};
    run_family("fam-falcon3.gguf", cases, 3);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mini_llama3),
        cmocka_unit_test(test_mid_2b4t),
        cmocka_unit_test(test_fam_bitnet_spm),
        cmocka_unit_test(test_fam_llama_untied),
        cmocka_unit_test(test_fam_falcon3),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
