/* A small strict JSON reader and writer for the server (RFC 8259).
 *
 * Reader: the whole text must be one value with optional whitespace around
 * it. Strings must be valid UTF-8 (no overlong forms, no surrogates, nothing
 * above U+10FFFF), control characters must be escaped, \u escapes are
 * decoded (a surrogate pair becomes one code point; a lone surrogate is an
 * error), numbers follow the JSON grammar (no leading zeros, no NaN or
 * infinities, no '+'), nesting is limited to max_depth. The parsed values
 * live in one node array; strings are decoded into one buffer, each
 * NUL-terminated (a string may also hold a NUL: use its len).
 *
 * Writer: a growing byte buffer with helpers that escape strings (invalid
 * UTF-8 becomes U+FFFD, so the output is always valid JSON). */
#ifndef BN_JSON_H
#define BN_JSON_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    BN_JSON_NULL, BN_JSON_FALSE, BN_JSON_TRUE, BN_JSON_NUMBER, BN_JSON_STRING,
    BN_JSON_ARRAY, BN_JSON_OBJECT
} bn_json_type;

typedef struct bn_json {
    bn_json_type type;
    int next;                       /* next sibling (node index), -1 at the end */
    int child;                      /* first element / member, -1 when empty */
    int n;                          /* elements / members of an array / object */
    const char *key;                /* member name inside an object, else NULL */
    size_t key_len;
    const char *str;                /* BN_JSON_STRING: decoded bytes */
    size_t len;
    double num;                     /* BN_JSON_NUMBER */
} bn_json;

typedef struct bn_json_doc {
    bn_json *nodes;                 /* nodes[0] is the root */
    int n_nodes, cap_nodes;
    char *strings;                  /* decoded strings and keys */
    size_t n_strings;
} bn_json_doc;

#define BN_JSON_MAX_DEPTH 64

/* Parses len bytes. Returns 0, or -1 with a one-line reason (with the byte
 * offset) in err; the doc is then empty. Free with bn_json_free either way. */
int bn_json_parse(bn_json_doc *doc, const char *text, size_t len, int max_depth,
                  char *err, size_t errlen);
void bn_json_free(bn_json_doc *doc);

const bn_json *bn_json_root(const bn_json_doc *doc);
/* First element / member of v, or the one after v; NULL at the end. */
const bn_json *bn_json_first(const bn_json_doc *doc, const bn_json *v);
const bn_json *bn_json_next(const bn_json_doc *doc, const bn_json *v);
/* The member named key of an object (the last one if repeated), else NULL. */
const bn_json *bn_json_get(const bn_json_doc *doc, const bn_json *obj, const char *key);

/* ---- writer ------------------------------------------------------------------------ */
typedef struct bn_jbuf {
    char *data;
    size_t len, cap;
    int oom;                        /* an allocation failed: the text is incomplete */
} bn_jbuf;

void bn_jbuf_free(bn_jbuf *b);
void bn_jbuf_raw(bn_jbuf *b, const char *s, size_t n);
void bn_jbuf_puts(bn_jbuf *b, const char *s);          /* raw, NUL-terminated */
void bn_jbuf_printf(bn_jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A quoted, escaped JSON string of n bytes. */
void bn_jbuf_str(bn_jbuf *b, const char *s, size_t n);
/* A number: integers exactly, others with 17 significant digits; a
 * non-finite value is written as null (JSON has no NaN). */
void bn_jbuf_num(bn_jbuf *b, double v);

/* Length of the valid UTF-8 sequence at s (1-4), or 0 when the bytes there
 * are not one (bad lead, bad continuation, overlong, surrogate, > U+10FFFF,
 * or cut short by n). */
int bn_utf8_seq_len(const unsigned char *s, size_t n);

#endif
