/* Hand-written pre-tokenizers (no regex engine).
 *
 * LLaMA-3 ("llama-bpe"): the tokenizer.json pattern
 *   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
 *    ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * with leftmost-first alternation and greedy backtracking, as HF tokenizers
 * and tiktoken run it.
 *
 * "default": bitnet.cpp's fallback when tokenizer.ggml.pre is absent
 * (docs/TOKENIZER.md, default pre-tokenizer), four regexes applied in sequence,
 * each re-splitting the pieces of the previous one; reproduced here as
 * nested splitters.
 *
 * "falcon3" / "falcon_e" (one regex list for both): the same scheme with
 * three regexes,
 *   [\p{P}\$\+<=>\^~\|`]+   then the GPT-2 pattern   then [0-9]
 * i.e. default's punctuation runs with the backtick added, the same GPT-2
 * splitter, and every ASCII digit on its own (" 12" -> " ", "1", "2"). */
#include "tok_internal.h"
#include "unicode.h"

#define CAT(k) ((k) & BN_UC_CAT_MASK)
#define IS_L(k) (CAT(k) == BN_UC_LETTER)
#define IS_N(k) (CAT(k) == BN_UC_NUMBER)
#define IS_WS(k) (((k) & BN_UC_SPACE) != 0)
/* [^\s\p{L}\p{N}] */
#define IS_OTHER(k) (!IS_WS(k) && !IS_L(k) && !IS_N(k))

static inline int is_newline(uint32_t c) { return c == '\r' || c == '\n'; }

/* Simple case folding restricted to what the contraction letters need:
 * ASCII upper -> lower, and U+017F LATIN SMALL LETTER LONG S -> 's'. */
static inline uint32_t fold(uint32_t c)
{
    if (c >= 'A' && c <= 'Z') return c + 32;
    if (c == 0x17F) return 's';
    return c;
}

/* End of the contraction at i ('s 't 're 've 'm 'll 'd), or 0 if none. */
static size_t llama3_contraction(const uint32_t *cp, size_t n, size_t i)
{
    if (cp[i] != '\'' || i + 1 >= n) return 0;
    uint32_t a = fold(cp[i + 1]);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
    if (i + 2 >= n) return 0;
    uint32_t b = fold(cp[i + 2]);
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
    return 0;
}

int bn_pretok_llama3(const uint32_t *cp, size_t n, bn_piece_fn emit, void *ctx)
{
    size_t i = 0;
    while (i < n) {
        uint32_t c = cp[i];
        unsigned k = bn_uc_class(c);
        size_t j;

        if ((j = llama3_contraction(cp, n, i))) goto piece;

        /* [^\r\n\p{L}\p{N}]?\p{L}+ */
        if (IS_L(k) || (!is_newline(c) && !IS_N(k) && i + 1 < n && IS_L(bn_uc_class(cp[i + 1])))) {
            j = i + 1;
            while (j < n && IS_L(bn_uc_class(cp[j]))) j++;
            goto piece;
        }

        /* \p{N}{1,3} */
        if (IS_N(k)) {
            j = i + 1;
            while (j < n && j < i + 3 && IS_N(bn_uc_class(cp[j]))) j++;
            goto piece;
        }

        /* ' ?[^\s\p{L}\p{N}]+[\r\n]*' */
        {
            size_t s = i + (c == ' ');
            if (s < n && IS_OTHER(bn_uc_class(cp[s]))) {
                j = s + 1;
                while (j < n && IS_OTHER(bn_uc_class(cp[j]))) j++;
                while (j < n && is_newline(cp[j])) j++;
                goto piece;
            }
        }

        /* Only whitespace is left here. \s*[\r\n]+ backtracks to end right
         * after the run's last newline. */
        {
            size_t last_nl = 0;
            int has_nl = 0;
            j = i;
            while (j < n && IS_WS(bn_uc_class(cp[j]))) {
                if (is_newline(cp[j])) { last_nl = j; has_nl = 1; }
                j++;
            }
            if (j == i) j = i + 1;              /* unreachable for real classes; never stall */
            else if (has_nl) j = last_nl + 1;
            else if (j < n && j - i > 1) j--;   /* \s+(?!\S): leave one for the next word */
            /* else \s+: the whole run (end of fragment, or a single char) */
        }
    piece:;
        int rc = emit(ctx, i, j);
        if (rc) return rc;
        i = j;
    }
    return 0;
}

/* ---- "default" (bitnet.cpp without tokenizer.ggml.pre) -------------------- */

typedef struct dctx {
    const uint32_t *cp;
    bn_piece_fn emit;
    void *ctx;
    int (*after_gpt2)(struct dctx *, size_t, size_t);   /* the stage after the GPT-2 split */
} dctx;

/* Regex 1 class [\p{P}\$\+<=>\^~\|]: ASCII punctuation and symbols except
 * the backtick, and non-ASCII code points of category P (non-ASCII
 * whitespace is collapsed away before the category test in llama.cpp). */
static int d_punct(uint32_t c)
{
    if (c < 128) return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) ||
                        (c >= 0x5B && c <= 0x5E) || c == 0x5F || (c >= 0x7B && c <= 0x7E);
    unsigned k = bn_uc_class(c);
    return !IS_WS(k) && CAT(k) == BN_UC_PUNCT;
}

/* Regex 3 class \p{N}: ASCII digits or non-ASCII numbers. */
static int d_number(uint32_t c)
{
    if (c < 128) return c >= '0' && c <= '9';
    return IS_N(bn_uc_class(c));
}

static int is_digit(uint32_t c) { return c >= '0' && c <= '9'; }

/* Regex 4 [0-9][0-9][0-9]: leftmost non-overlapping triples split out. */
static int d_stage4(dctx *d, size_t a, size_t b)
{
    size_t gap = a, i = a;
    int rc;
    while (i + 3 <= b) {
        if (is_digit(d->cp[i]) && is_digit(d->cp[i + 1]) && is_digit(d->cp[i + 2])) {
            if (gap < i && (rc = d->emit(d->ctx, gap, i))) return rc;
            if ((rc = d->emit(d->ctx, i, i + 3))) return rc;
            i += 3;
            gap = i;
        } else {
            i++;
        }
    }
    if (gap < b) return d->emit(d->ctx, gap, b);
    return 0;
}

/* Split [a,b) into maximal runs of cls and the gaps between them. */
static int d_runs(dctx *d, size_t a, size_t b, int (*cls)(uint32_t),
                  int (*next)(dctx *, size_t, size_t))
{
    size_t i = a;
    while (i < b) {
        int in = cls(d->cp[i]);
        size_t j = i + 1;
        while (j < b && cls(d->cp[j]) == in) j++;
        int rc = next(d, i, j);
        if (rc) return rc;
        i = j;
    }
    return 0;
}

static int d_stage3(dctx *d, size_t a, size_t b) { return d_runs(d, a, b, d_number, d_stage4); }

/* Regex 2, the GPT-2 pattern, as llama.cpp's hand-written splitter runs it
 * (only ASCII lower-case contractions; a lone space joins the next run). */
static int d_stage2(dctx *d, size_t a, size_t b)
{
    const uint32_t *cp = d->cp;
    size_t pos = a;
    while (pos < b) {
        uint32_t c = cp[pos];
        size_t end = 0;
        if (c == '\'' && pos + 1 < b) {
            uint32_t x = cp[pos + 1];
            if (x == 's' || x == 't' || x == 'm' || x == 'd') end = pos + 2;
            else if (pos + 2 < b) {
                uint32_t y = cp[pos + 2];
                if ((x == 'r' && y == 'e') || (x == 'v' && y == 'e') || (x == 'l' && y == 'l'))
                    end = pos + 3;
            }
        }
        if (!end) {
            /* flags of the class-deciding code point; 0 past the piece */
            size_t s = pos + (c == ' ');
            int have = s < b;
            unsigned k = have ? bn_uc_class(cp[s]) : 0;
            if (have && IS_L(k)) {
                end = s + 1;
                while (end < b && IS_L(bn_uc_class(cp[end]))) end++;
            } else if (have && IS_N(k)) {
                end = s + 1;
                while (end < b && IS_N(bn_uc_class(cp[end]))) end++;
            } else if (have && IS_OTHER(k)) {
                end = s + 1;
                while (end < b && IS_OTHER(bn_uc_class(cp[end]))) end++;
            } else {
                size_t w = 0;
                while (pos + w < b && IS_WS(bn_uc_class(cp[pos + w]))) w++;
                if (w > 1 && pos + w < b) end = pos + w - 1;
                else if (w > 0) end = pos + w;
                else end = pos + 1;
            }
        }
        int rc = d->after_gpt2(d, pos, end);
        if (rc) return rc;
        pos = end;
    }
    return 0;
}

int bn_pretok_default(const uint32_t *cp, size_t n, bn_piece_fn emit, void *ctx)
{
    dctx d = { cp, emit, ctx, d_stage3 };
    return d_runs(&d, 0, n, d_punct, d_stage2);
}

/* ---- "falcon3" / "falcon_e" --------------------------------------------------- */

/* Regex 1 class [\p{P}\$\+<=>\^~\|`]: every ASCII punctuation or symbol
 * character (default's set plus the backtick), and non-ASCII category P. */
static int f_punct(uint32_t c)
{
    if (c < 128) return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) ||
                        (c >= 0x5B && c <= 0x60) || (c >= 0x7B && c <= 0x7E);
    unsigned k = bn_uc_class(c);
    return !IS_WS(k) && CAT(k) == BN_UC_PUNCT;
}

/* Regex 3 [0-9]: each ASCII digit is a piece, the gaps between them too. */
static int f_digits(dctx *d, size_t a, size_t b)
{
    size_t gap = a;
    int rc;
    for (size_t i = a; i < b; i++) {
        if (!is_digit(d->cp[i])) continue;
        if (gap < i && (rc = d->emit(d->ctx, gap, i))) return rc;
        if ((rc = d->emit(d->ctx, i, i + 1))) return rc;
        gap = i + 1;
    }
    if (gap < b) return d->emit(d->ctx, gap, b);
    return 0;
}

int bn_pretok_falcon3(const uint32_t *cp, size_t n, bn_piece_fn emit, void *ctx)
{
    dctx d = { cp, emit, ctx, f_digits };
    return d_runs(&d, 0, n, f_punct, d_stage2);
}
