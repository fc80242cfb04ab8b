/* libFuzzer harness for the server's JSON reader and writer
 * (src/server/json.c; build with -DBITNET_FUZZ=ON, clang).
 *
 * Byte 0 picks the depth limit (1..64); the rest is the text. Checks: no
 * crash or sanitizer report; a rejected text has a message; an accepted
 * one is walked completely (every string valid UTF-8 of its length, every
 * number finite, child counts right) and written back with the writer,
 * which must parse again to the same tree. An object also goes through
 * the native /completion request reader (src/server/native.c), which must
 * take it with its fields in range or refuse it with a reason. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "native.h"

static void write_value(const bn_json_doc *d, const bn_json *v, bn_jbuf *b) {
    switch (v->type) {
    case BN_JSON_NULL: bn_jbuf_puts(b, "null"); return;
    case BN_JSON_FALSE: bn_jbuf_puts(b, "false"); return;
    case BN_JSON_TRUE: bn_jbuf_puts(b, "true"); return;
    case BN_JSON_NUMBER: bn_jbuf_num(b, v->num); return;
    case BN_JSON_STRING: bn_jbuf_str(b, v->str, v->len); return;
    case BN_JSON_ARRAY:
    case BN_JSON_OBJECT: {
        int obj = v->type == BN_JSON_OBJECT, n = 0;
        bn_jbuf_puts(b, obj ? "{" : "[");
        for (const bn_json *e = bn_json_first(d, v); e; e = bn_json_next(d, e), n++) {
            if (n) bn_jbuf_puts(b, ",");
            if (obj) {
                bn_jbuf_str(b, e->key, e->key_len);
                bn_jbuf_puts(b, ":");
            }
            write_value(d, e, b);
        }
        if (n != v->n) abort();
        bn_jbuf_puts(b, obj ? "}" : "]");
        return;
    }
    }
}

static void check_utf8(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        int k = bn_utf8_seq_len(u + i, n - i);
        if (k == 0) abort();
        i += (size_t)k;
    }
    if (s[n] != '\0') abort();
}

/* Same shape and values (numbers: the writer's 17 digits round-trip). */
static void same(const bn_json_doc *a, const bn_json *x, const bn_json_doc *b, const bn_json *y) {
    if (x->type != y->type || x->n != y->n || x->key_len != y->key_len) abort();
    if (x->key && memcmp(x->key, y->key, x->key_len) != 0) abort();
    if (x->type == BN_JSON_NUMBER && x->num != y->num) abort();
    if (x->type == BN_JSON_STRING) {
        if (x->len != y->len || memcmp(x->str, y->str, x->len) != 0) abort();
        check_utf8(x->str, x->len);
    }
    if (x->key) check_utf8(x->key, x->key_len);
    if (x->type == BN_JSON_NUMBER && !isfinite(x->num)) abort();
    const bn_json *e = bn_json_first(a, x), *f = bn_json_first(b, y);
    for (; e && f; e = bn_json_next(a, e), f = bn_json_next(b, f)) same(a, e, b, f);
    if (e || f) abort();
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    if (size < 1) return 0;
    int depth = 1 + data[0] % 64;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    bn_json_doc d;
    char err[160];
    if (bn_json_parse(&d, text, len, depth, err, sizeof err) != 0) {
        if (strncmp(err, "bad JSON at byte ", 17) != 0 && strncmp(err, "out of memory", 13) != 0) abort();
        if (d.nodes || d.strings) abort();
        return 0;
    }
    if (bn_json_root(&d)->type == BN_JSON_OBJECT) {
        bn_native_req nr;
        char msg[320] = "";
        const int n_slots = 1 + data[0] % 4;
        if (bn_native_parse(&d, bn_json_root(&d), n_slots, &nr, msg, sizeof msg) == 0) {
            if (nr.n_probs < 0 || nr.n_probs > BN_SCHED_MAX_TOP || nr.id_slot < -1 || nr.id_slot >= n_slots) abort();
        } else if (msg[0] == '\0') {
            abort();
        }
    }
    bn_jbuf b = {0};
    write_value(&d, bn_json_root(&d), &b);
    if (b.oom) abort();
    bn_json_doc d2;
    if (bn_json_parse(&d2, b.data, b.len, depth, err, sizeof err) != 0) {
        fprintf(stderr, "written JSON does not parse: %s\n", err);
        abort();
    }
    same(&d, bn_json_root(&d), &d2, bn_json_root(&d2));
    bn_json_free(&d2);
    bn_json_free(&d);
    bn_jbuf_free(&b);
    return 0;
}
