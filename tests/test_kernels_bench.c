/* The kernel bench (src/bench_kernels.c) on a small problem: every
 * table it promises (one per weight format), every variant named in a
 * column header once, numbers in every cell, and its errors for a bad
 * variant list or thread count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bitnet.h"
#include "kernels.h"

/* The bench's output for o, as a string (caller frees). */
static char *run_bench(const bn_bench_kernels_opts *o, int *rc) {
    FILE *f = tmpfile();
    assert_non_null(f);
    *rc = bn_bench_kernels(f, o);
    long n = ftell(f);
    assert_true(n >= 0);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    rewind(f);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    return s;
}

static void small_opts(bn_bench_kernels_opts *o, const char *variants) {
    bn_bench_kernels_default_opts(o);
    o->reps = 1;
    o->batch = 3;
    o->stream_mb = 1;
    o->head_rows = 300; /* not a multiple of any tile height */
    o->variants = variants;
}

/* The header line of the table titled `title` (starts with "| K x M"). */
static const char *table_header(const char *out, const char *title) {
    const char *t = strstr(out, title);
    if (!t) fail_msg("no table '%s' in:\n%s", title, out);
    const char *h = strstr(t, "| K x M");
    assert_non_null(h);
    return h;
}

static void test_every_variant_side_by_side(void **state) {
    (void)state;
    const bn_kernels *all[16];
    const int n = bn_kernels_all(all, 16);
    char list[256] = "";
    for (int i = 0; i < n; i++) {
        strcat(list, i ? "," : "");
        strcat(list, all[i]->name);
    }
    bn_bench_kernels_opts o;
    small_opts(&o, list);
    int rc;
    char *out = run_bench(&o, &rc);
    assert_int_equal(rc, 0);
    static const char *const titles[] = {"## Ternary matmul", "## LM head, F16 (",
                                         "## LM head, F16 in tinyBLAS", "## LM head, Q8"};
    for (size_t t = 0; t < sizeof titles / sizeof titles[0]; t++) {
        const char *h = table_header(out, titles[t]);
        const char *eol = strchr(h, '\n');
        assert_non_null(eol);
        /* each variant in exactly one column header */
        for (int i = 0; i < n; i++) {
            int found = 0;
            for (const char *p = h; (p = strstr(p, all[i]->name)) && p < eol; p++) {
                const char before = p[-1], after = p[strlen(all[i]->name)];
                found += (before == ' ') && (after == ' ');
            }
            if (found != 1)
                fail_msg("%s: variant %s in %d headers", titles[t], all[i]->name, found);
        }
    }
    /* ternary: N = 1 and N = 3 for both thread counts, on all four shapes */
    assert_non_null(strstr(out, "| 2560x2560 | N = 1 | 1 |"));
    assert_non_null(strstr(out, "| 6912x2560 | N = 3 | 2 |"));
    assert_non_null(strstr(out, "| 2560x300 | N = 1 | 2 |"));
    assert_non_null(strstr(out, "| 2560x300 | pack | 2 |"));
    assert_null(strstr(out, "nan"));
    assert_null(strstr(out, "inf"));
    free(out);
}

static void test_errors(void **state) {
    (void)state;
    bn_bench_kernels_opts o;
    small_opts(&o, "sse9");
    int rc;
    char *out = run_bench(&o, &rc);
    assert_int_equal(rc, -1);
    free(out);
    small_opts(&o, "ref");
    o.threads[0] = 0;
    out = run_bench(&o, &rc);
    assert_int_equal(rc, -1);
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_variant_side_by_side),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
