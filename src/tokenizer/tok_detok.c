/* Streaming detokenizer: token bytes in, well-formed UTF-8 out.
 *
 * A token may end inside a multi-byte character (1352 LLaMA-3 tokens are not
 * valid UTF-8 alone), so an incomplete sequence at the end is held back until
 * the next token completes it. Bytes that can never be part of a valid
 * sequence become U+FFFD, one per maximal subpart (the WHATWG / Unicode rule),
 * so the concatenated output equals a lossy decode of all bytes. Control
 * tokens print nothing. */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"
#include "unicode.h"

void bn_detok_init(bn_detok *d, const bn_tokenizer *t)
{
    memset(d, 0, sizeof *d);
    d->tok = t;
}

/* Decodes s[0..n) into out. Returns the bytes written, or -1 if more than cap
 * would be needed. *held = length of the incomplete tail left undecoded. */
static int decode_lossy(const unsigned char *s, size_t n, int at_end, char *out, int cap,
                        size_t *held)
{
    size_t i = 0;
    int o = 0;
    *held = 0;
    while (i < n) {
        uint32_t c;
        int k = s[i] < 0x80 ? 1 : bn_utf8_decode(s + i, n - i, &c);
        if (k > 0) {
            if (o + k > cap) return -1;
            memcpy(out + o, s + i, (size_t)k);
            o += k;
            i += (size_t)k;
            continue;
        }
        int p = bn_utf8_partial(s + i, n - i);
        if (p > 0 && i + (size_t)p == n && !at_end) {   /* may complete later */
            *held = (size_t)p;
            break;
        }
        if (o + 3 > cap) return -1;
        memcpy(out + o, "\xEF\xBF\xBD", 3);
        o += 3;
        i += p > 0 ? (size_t)p : 1;
    }
    return o;
}

int bn_detok_push(bn_detok *d, int32_t id, char *out, int cap)
{
    const bn_tokenizer *t = d->tok;
    int n = bn_token_to_bytes(t, id, 0, NULL, 0);
    if (n < 0) return -1;
    if (n == 0) return 0;
    unsigned char local[256];
    size_t total = (size_t)d->n_pending + (size_t)n;
    unsigned char *buf = total <= sizeof local ? local : malloc(total);
    if (!buf) return -1;
    memcpy(buf, d->pending, (size_t)d->n_pending);
    bn_token_to_bytes(t, id, 0, (char *)buf + d->n_pending, n);
    size_t held;
    int o = decode_lossy(buf, total, 0, out, cap, &held);
    if (o >= 0) {              /* state changes only on success */
        memcpy(d->pending, buf + total - held, held);
        d->n_pending = (int)held;
    }
    if (buf != local) free(buf);
    return o;
}

int bn_detok_flush(bn_detok *d, char *out, int cap)
{
    size_t held;
    int o = decode_lossy(d->pending, (size_t)d->n_pending, 1, out, cap, &held);
    if (o >= 0) d->n_pending = 0;
    return o;
}
