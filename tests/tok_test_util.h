/* Shared helpers for the tokenizer tests (header-only: tests/helper_*.c
 * would be linked into every test of the project). Include after cmocka.h:
 * the tt_expect_* checks and tt_from_writer fail the running test. */
#ifndef BN_TOK_TEST_UTIL_H
#define BN_TOK_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitnet.h"
#include "gguf.h"
#include "gguf_writer.h"
#include "tokenizer.h"
#include "unicode.h"

#define LLAMA3_VOCAB BN_SOURCE_DIR "/tests/data/llama3-vocab.gguf"

/* Loads a tokenizer from a GGUF path (NULL on failure, message printed). */
static inline bn_tokenizer *tt_load(const char *path, const char *pre)
{
    gguf_file f;
    char err[256];
    if (gguf_open(&f, path, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", path, err);
        return NULL;
    }
    bn_tokenizer *t = bn_tokenizer_from_gguf(&f, pre, err, sizeof err);
    if (!t) fprintf(stderr, "%s: %s\n", path, err);
    gguf_close(&f);     /* the tokenizer keeps copies of everything it needs */
    return t;
}

/* Whole file into a malloc'd buffer (NUL-terminated), or NULL. */
static inline char *tt_read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, fp) != (size_t)n) { free(buf); buf = NULL; }
    fclose(fp);
    if (buf) { buf[n] = '\0'; if (len) *len = (size_t)n; }
    return buf;
}

/* Hex string [s, s+n) -> bytes in out; returns the byte count. */
static inline size_t tt_unhex(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i + 1 < n; i += 2) {
        unsigned v;
        sscanf(s + i, "%2x", &v);
        out[o++] = (char)v;
    }
    return o;
}

/* Space-separated decimal ids in [s, s+n) -> out; returns the count. */
static inline int tt_parse_ids(const char *s, size_t n, int32_t *out, int max)
{
    int k = 0;
    size_t i = 0;
    while (i < n && k < max) {
        while (i < n && s[i] == ' ') i++;
        if (i >= n) break;
        out[k++] = (int32_t)strtol(s + i, NULL, 10);
        while (i < n && s[i] != ' ') i++;
    }
    return k;
}

/* The tokenizer of the GGUF built in w (freed here), with this pre-tokenizer
 * override (NULL: the file's); NULL with the reason in err when refused. */
static inline bn_tokenizer *tt_from_writer(gguf_writer *w, const char *pre, char *err, size_t errlen)
{
    uint8_t *buf;
    uint64_t len;
    assert_int_equal(gguf_writer_to_buffer(w, &buf, &len), 0);
    gguf_writer_free(w);
    gguf_file f;
    assert_int_equal(gguf_parse(&f, buf, len, err, errlen), 0);
    bn_tokenizer *t = bn_tokenizer_from_gguf(&f, pre, err, errlen);
    gguf_close(&f);
    free(buf);
    return t;
}

/* Fails the test unless got[0..n_got) equals want[0..n_want); the message
 * shows both lists (their first ~50 ids). */
static inline void tt_expect_ids(const char *what, const int32_t *got, int n_got, const int32_t *want,
                                 int n_want)
{
    if (n_got == n_want && (n_got == 0 || !memcmp(got, want, (size_t)n_got * sizeof *got))) return;
    char g[256] = "", w[256] = "";
    for (int i = 0, o = 0; i < n_got && o < 200; i++) o += snprintf(g + o, sizeof g - (size_t)o, "%d ", got[i]);
    for (int i = 0, o = 0; i < n_want && o < 200; i++) o += snprintf(w + o, sizeof w - (size_t)o, "%d ", want[i]);
    fail_msg("%s: got [%s] (%d), want [%s] (%d)", what, g, n_got, w, n_want);
}

/* Lossy UTF-8 of a byte string into out (room for 3n bytes): one U+FFFD
 * per maximal invalid subpart, as the reference's text fields are made.
 * Returns the length. */
static inline size_t tt_lossy(const unsigned char *s, size_t n, char *out)
{
    size_t o = 0, i = 0;
    while (i < n) {
        uint32_t c;
        int k = bn_utf8_decode(s + i, n - i, &c);
        if (k) { memcpy(out + o, s + i, (size_t)k); o += (size_t)k; i += (size_t)k; continue; }
        int p = bn_utf8_partial(s + i, n - i);
        memcpy(out + o, "\xEF\xBF\xBD", 3);
        o += 3;
        i += p ? (size_t)p : 1;
    }
    return o;
}

/* Tokenizes into a malloc'd array (*n ids), or NULL on error. */
static inline int32_t *tt_tokenize(const bn_tokenizer *t, const char *s, size_t len, int bos,
                                   int special, int *n)
{
    int need = bn_tokenize(t, s, len, bos, special, NULL, 0);
    if (need < 0) return NULL;
    int32_t *ids = malloc(((size_t)need + 1) * sizeof *ids);
    if (!ids) return NULL;
    *n = bn_tokenize(t, s, len, bos, special, ids, need);
    return ids;
}

/* ---- escaped text (the tests/data case files) -----------------------------------
 * Text columns use \\ \t \n \r and \xHH (any byte); everything else is as is.
 * Lines starting with '#' are comments (a text starting with '#' is \x23...).
 * The CLI tests feed the same column to printf '%b'. */

/* Unescapes [s, s+n) into out (room for n bytes); returns the length. */
static inline size_t tt_unescape(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\' || i + 1 >= n) { out[o++] = s[i]; continue; }
        char c = s[++i];
        if (c == 't') out[o++] = '\t';
        else if (c == 'n') out[o++] = '\n';
        else if (c == 'r') out[o++] = '\r';
        else if (c == 'x' && i + 2 < n) {
            unsigned v;
            sscanf(s + i + 1, "%2x", &v);
            out[o++] = (char)v;
            i += 2;
        } else out[o++] = c;
    }
    return o;
}

/* The inverse: control bytes and the backslash escaped, the rest raw; a
 * leading '#' too, which would start a comment line. */
static inline void tt_escape(FILE *fp, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '#' && i == 0) fputs("\\x23", fp);
        else if (c == '\\') fputs("\\\\", fp);
        else if (c == '\t') fputs("\\t", fp);
        else if (c == '\n') fputs("\\n", fp);
        else if (c == '\r') fputs("\\r", fp);
        else if (c < 0x20 || c == 0x7F) fprintf(fp, "\\x%02x", c);
        else fputc(c, fp);
    }
}

/* Splits a line into up to max tab-separated fields; returns their count. */
static inline int tt_split_tabs(char *line, char **f, size_t *len, int max)
{
    int k = 0;
    char *p = line;
    while (k < max) {
        char *tab = strchr(p, '\t');
        f[k] = p;
        len[k] = tab ? (size_t)(tab - p) : strlen(p);
        k++;
        if (!tab) break;
        p = tab + 1;
    }
    return k;
}

/* ---- JSON Lines (the ../shared reference cases) ------------------------------
 * Just enough JSON for one flat object per line: a string or an int array
 * found by key. A key's quotes cannot occur unescaped inside a string. */

/* Just past `"key":` and blanks, or NULL. */
static inline const char *tt_json_find(const char *line, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    if (!p) return NULL;
    p += strlen(pat);
    while (*p == ' ') p++;
    return p;
}

static inline unsigned tt_hex4(const char *p)
{
    unsigned v = 0;
    sscanf(p, "%4x", &v);
    return v;
}

/* The string value of key as UTF-8 in out (room for strlen(line) bytes);
 * returns its length, or -1 when the key is absent or not a string. */
static inline long tt_json_str(const char *line, const char *key, char *out)
{
    const char *p = tt_json_find(line, key);
    if (!p || *p != '"') return -1;
    long o = 0;
    for (p++; *p && *p != '"'; p++) {
        if (*p != '\\') { out[o++] = *p; continue; }
        char c = *++p;
        uint32_t cp;
        switch (c) {
        case 'n': out[o++] = '\n'; break;
        case 't': out[o++] = '\t'; break;
        case 'r': out[o++] = '\r'; break;
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'u':
            cp = tt_hex4(p + 1);
            p += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && p[1] == '\\' && p[2] == 'u') {
                uint32_t lo = tt_hex4(p + 3);
                if (lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    p += 6;
                }
            }
            if (cp >= 0xD800 && cp < 0xE000) cp = BN_UTF8_REPLACEMENT;   /* lone surrogate */
            o += bn_utf8_encode(cp, (unsigned char *)out + o);
            break;
        default: out[o++] = c; break;       /* \" \\ \/ */
        }
    }
    return o;
}

/* The int array of key into out (up to max); returns the count, or -1 when
 * the key is absent or not an array. */
static inline int tt_json_ids(const char *line, const char *key, int32_t *out, int max)
{
    const char *p = tt_json_find(line, key);
    if (!p || *p != '[') return -1;
    int k = 0;
    for (p++; *p && *p != ']';) {
        if (*p == ',' || *p == ' ') { p++; continue; }
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p) return -1;
        if (k < max) out[k] = (int32_t)v;
        k++;
        p = end;
    }
    return k < max ? k : max;
}

/* Next line of a buffer (modified in place), or NULL at the end. */
static inline char *tt_next_line(char **cur)
{
    char *s = *cur;
    if (!s || !*s) return NULL;
    char *nl = strchr(s, '\n');
    if (nl) { *nl = '\0'; *cur = nl + 1; }
    else *cur = s + strlen(s);
    return s;
}

#endif
