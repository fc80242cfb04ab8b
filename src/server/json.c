/* Strict JSON reader and writer (see json.h). A recursive-descent parser
 * whose recursion is bounded by max_depth; nodes are appended to one array
 * (indices, not pointers, so the array may grow while parsing). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

typedef struct parser {
    const unsigned char *s;
    size_t len, pos;
    int max_depth;
    bn_json_doc *doc;
    char *err;
    size_t errlen;
    int failed;
} parser;

static int fail(parser *p, const char *what) {
    if (!p->failed) snprintf(p->err, p->errlen, "bad JSON at byte %zu: %s", p->pos, what);
    p->failed = 1;
    return -1;
}

static void skip_ws(parser *p) {
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

/* A new node; returns its index or -1. */
static int new_node(parser *p, bn_json_type type) {
    bn_json_doc *d = p->doc;
    if (d->n_nodes == d->cap_nodes) {
        int cap = d->cap_nodes ? d->cap_nodes * 2 : 64;
        bn_json *nn = cap > d->cap_nodes ? realloc(d->nodes, (size_t)cap * sizeof *nn) : NULL;
        if (!nn) return fail(p, "out of memory");
        d->nodes = nn;
        d->cap_nodes = cap;
    }
    bn_json *v = &d->nodes[d->n_nodes];
    memset(v, 0, sizeof *v);
    v->type = type;
    v->next = v->child = -1;
    return d->n_nodes++;
}

int bn_utf8_seq_len(const unsigned char *s, size_t n) {
    if (n == 0) return 0;
    unsigned c = s[0];
    if (c < 0x80) return 1;
    int k;
    unsigned min, cp;
    if (c >= 0xC2 && c <= 0xDF) { k = 2; min = 0x80; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { k = 3; min = 0x800; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { k = 4; min = 0x10000; cp = c & 0x07; }
    else return 0;
    if (n < (size_t)k) return 0;
    for (int i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return k;
}

static int hex4(const unsigned char *s, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = s[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return -1;
        v = v << 4 | d;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18);
    o[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* A string at p->pos (the opening quote), decoded into doc->strings. The
 * decoded bytes never outnumber the source bytes, and the closing quote
 * pays for the NUL, so a buffer of len + 1 bytes always has room. */
static int parse_string(parser *p, const char **out, size_t *out_len) {
    char *o = p->doc->strings + p->doc->n_strings, *o0 = o;
    p->pos++;
    for (;;) {
        if (p->pos >= p->len) return fail(p, "unterminated string");
        unsigned char c = p->s[p->pos];
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c < 0x20) return fail(p, "control character in a string (escape it)");
        if (c == '\\') {
            if (p->pos + 1 >= p->len) return fail(p, "unterminated string");
            unsigned char e = p->s[p->pos + 1];
            p->pos += 2;
            switch (e) {
            case '"': *o++ = '"'; break;
            case '\\': *o++ = '\\'; break;
            case '/': *o++ = '/'; break;
            case 'b': *o++ = '\b'; break;
            case 'f': *o++ = '\f'; break;
            case 'n': *o++ = '\n'; break;
            case 'r': *o++ = '\r'; break;
            case 't': *o++ = '\t'; break;
            case 'u': {
                unsigned cp, lo;
                if (p->pos + 4 > p->len || hex4(p->s + p->pos, &cp) != 0)
                    return fail(p, "bad \\u escape (expected 4 hex digits)");
                p->pos += 4;
                if (cp >= 0xDC00 && cp <= 0xDFFF) return fail(p, "lone low surrogate in \\u escape");
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (p->pos + 6 > p->len || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u' ||
                        hex4(p->s + p->pos + 2, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF)
                        return fail(p, "high surrogate not followed by a low one in \\u escape");
                    p->pos += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                o += put_utf8(o, cp);
                break;
            }
            default:
                p->pos--;
                return fail(p, "unknown escape in a string");
            }
            continue;
        }
        int k = bn_utf8_seq_len(p->s + p->pos, p->len - p->pos);
        if (k == 0) return fail(p, "invalid UTF-8 in a string");
        memcpy(o, p->s + p->pos, (size_t)k);
        o += k;
        p->pos += (size_t)k;
    }
    *o = '\0';
    *out = o0;
    *out_len = (size_t)(o - o0);
    p->doc->n_strings += (size_t)(o - o0) + 1;
    return 0;
}

static int is_digit(unsigned char c) {
    return c >= '0' && c <= '9';
}

static int parse_number(parser *p, double *out) {
    size_t start = p->pos;
    const unsigned char *s = p->s;
    if (p->pos < p->len && s[p->pos] == '-') p->pos++;
    if (p->pos >= p->len || !is_digit(s[p->pos])) return fail(p, "bad number");
    if (s[p->pos] == '0') {
        p->pos++;
        if (p->pos < p->len && is_digit(s[p->pos])) return fail(p, "leading zero in a number");
    } else {
        while (p->pos < p->len && is_digit(s[p->pos])) p->pos++;
    }
    if (p->pos < p->len && s[p->pos] == '.') {
        p->pos++;
        if (p->pos >= p->len || !is_digit(s[p->pos])) return fail(p, "bad fraction in a number");
        while (p->pos < p->len && is_digit(s[p->pos])) p->pos++;
    }
    if (p->pos < p->len && (s[p->pos] == 'e' || s[p->pos] == 'E')) {
        p->pos++;
        if (p->pos < p->len && (s[p->pos] == '+' || s[p->pos] == '-')) p->pos++;
        if (p->pos >= p->len || !is_digit(s[p->pos])) return fail(p, "bad exponent in a number");
        while (p->pos < p->len && is_digit(s[p->pos])) p->pos++;
    }
    /* strtod needs a NUL-terminated copy; numbers longer than this are
     * refused rather than half-read */
    char buf[128];
    size_t n = p->pos - start;
    if (n >= sizeof buf) return fail(p, "number too long");
    memcpy(buf, s + start, n);
    buf[n] = '\0';
    double v = strtod(buf, NULL);
    if (!isfinite(v)) return fail(p, "number out of range");
    *out = v;
    return 0;
}

static int match_word(parser *p, const char *w) {
    size_t n = strlen(w);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, w, n) != 0) return fail(p, "unexpected character");
    p->pos += n;
    return 0;
}

static int parse_value(parser *p, int depth);

/* An array or object at p->pos; members are chained through next. */
static int parse_container(parser *p, int depth, int is_object) {
    int self = new_node(p, is_object ? BN_JSON_OBJECT : BN_JSON_ARRAY);
    if (self < 0) return -1;
    if (depth >= p->max_depth) return fail(p, "nesting too deep");
    const char close = is_object ? '}' : ']';
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        return self;
    }
    int prev = -1;
    for (;;) {
        const char *key = NULL;
        size_t key_len = 0;
        if (is_object) {
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != '"') return fail(p, "expected a member name");
            if (parse_string(p, &key, &key_len) != 0) return -1;
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':') return fail(p, "expected ':'");
            p->pos++;
        }
        int v = parse_value(p, depth + 1);
        if (v < 0) return -1;
        bn_json *nodes = p->doc->nodes;
        nodes[v].key = key;
        nodes[v].key_len = key_len;
        if (prev < 0) nodes[self].child = v;
        else nodes[prev].next = v;
        nodes[self].n++;
        prev = v;
        skip_ws(p);
        if (p->pos >= p->len) return fail(p, is_object ? "unterminated object" : "unterminated array");
        if (p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->s[p->pos] == close) {
            p->pos++;
            return self;
        }
        return fail(p, is_object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

/* One value at p->pos (after whitespace); returns its node index or -1. */
static int parse_value(parser *p, int depth) {
    skip_ws(p);
    if (p->pos >= p->len) return fail(p, "unexpected end of input");
    unsigned char c = p->s[p->pos];
    int v;
    switch (c) {
    case '{': return parse_container(p, depth, 1);
    case '[': return parse_container(p, depth, 0);
    case '"':
        if ((v = new_node(p, BN_JSON_STRING)) < 0) return -1;
        {
            const char *s;
            size_t n;
            if (parse_string(p, &s, &n) != 0) return -1;
            p->doc->nodes[v].str = s;
            p->doc->nodes[v].len = n;
        }
        return v;
    case 't':
        if ((v = new_node(p, BN_JSON_TRUE)) < 0 || match_word(p, "true") != 0) return -1;
        return v;
    case 'f':
        if ((v = new_node(p, BN_JSON_FALSE)) < 0 || match_word(p, "false") != 0) return -1;
        return v;
    case 'n':
        if ((v = new_node(p, BN_JSON_NULL)) < 0 || match_word(p, "null") != 0) return -1;
        return v;
    default:
        if (c == '-' || is_digit(c)) {
            double num;
            if ((v = new_node(p, BN_JSON_NUMBER)) < 0 || parse_number(p, &num) != 0) return -1;
            p->doc->nodes[v].num = num;
            return v;
        }
        return fail(p, "unexpected character");
    }
}

void bn_json_free(bn_json_doc *doc) {
    free(doc->nodes);
    free(doc->strings);
    memset(doc, 0, sizeof *doc);
}

int bn_json_parse(bn_json_doc *doc, const char *text, size_t len, int max_depth,
                  char *err, size_t errlen) {
    memset(doc, 0, sizeof *doc);
    parser p = {(const unsigned char *)text, len, 0, max_depth > 0 ? max_depth : 1, doc, err, errlen, 0};
    doc->strings = malloc(len + 1);
    if (!doc->strings) {
        snprintf(err, errlen, "out of memory for a JSON text of %zu bytes", len);
        return -1;
    }
    if (parse_value(&p, 0) < 0) goto bad;
    skip_ws(&p);
    if (p.pos != len) {
        fail(&p, "trailing characters after the value");
        goto bad;
    }
    return 0;
bad:
    free(doc->nodes);
    free(doc->strings);
    memset(doc, 0, sizeof *doc);
    return -1;
}

const bn_json *bn_json_root(const bn_json_doc *doc) {
    return doc->n_nodes > 0 ? &doc->nodes[0] : NULL;
}

const bn_json *bn_json_first(const bn_json_doc *doc, const bn_json *v) {
    return v && v->child >= 0 ? &doc->nodes[v->child] : NULL;
}

const bn_json *bn_json_next(const bn_json_doc *doc, const bn_json *v) {
    return v && v->next >= 0 ? &doc->nodes[v->next] : NULL;
}

const bn_json *bn_json_get(const bn_json_doc *doc, const bn_json *obj, const char *key) {
    if (!obj || obj->type != BN_JSON_OBJECT) return NULL;
    size_t n = strlen(key);
    const bn_json *found = NULL;
    for (const bn_json *m = bn_json_first(doc, obj); m; m = bn_json_next(doc, m))
        if (m->key_len == n && memcmp(m->key, key, n) == 0) found = m;
    return found;
}

/* ---- writer ------------------------------------------------------------------------ */
static int reserve(bn_jbuf *b, size_t more) {
    if (b->oom) return -1;
    if (b->len + more + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1) cap *= 2;
    char *nd = realloc(b->data, cap);
    if (!nd) {
        b->oom = 1;
        return -1;
    }
    b->data = nd;
    b->cap = cap;
    return 0;
}

void bn_jbuf_free(bn_jbuf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

void bn_jbuf_raw(bn_jbuf *b, const char *s, size_t n) {
    if (reserve(b, n) != 0) return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void bn_jbuf_puts(bn_jbuf *b, const char *s) {
    bn_jbuf_raw(b, s, strlen(s));
}

void bn_jbuf_printf(bn_jbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || reserve(b, (size_t)n) != 0) return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void bn_jbuf_str(bn_jbuf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    if (reserve(b, n + 2) != 0) return;
    bn_jbuf_raw(b, "\"", 1);
    size_t i = 0;
    while (i < n) {
        unsigned char c = u[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            bn_jbuf_raw(b, esc, 2);
            i++;
        } else if (c < 0x20 || c == 0x7F) {
            const char *named = c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
            if (named) {
                bn_jbuf_raw(b, named, 2);
            } else {
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                bn_jbuf_raw(b, esc, 6);
            }
            i++;
        } else if (c < 0x80) {
            bn_jbuf_raw(b, (const char *)u + i, 1);
            i++;
        } else {
            int k = bn_utf8_seq_len(u + i, n - i);
            if (k == 0) {
                bn_jbuf_raw(b, "\xEF\xBF\xBD", 3);   /* U+FFFD for one bad byte */
                i++;
            } else {
                bn_jbuf_raw(b, (const char *)u + i, (size_t)k);
                i += (size_t)k;
            }
        }
    }
    bn_jbuf_raw(b, "\"", 1);
}

void bn_jbuf_num(bn_jbuf *b, double v) {
    if (!isfinite(v)) bn_jbuf_puts(b, "null");
    else if (v == floor(v) && fabs(v) < 9007199254740992.0) bn_jbuf_printf(b, "%.0f", v);
    else bn_jbuf_printf(b, "%.17g", v);
}
