/* SentencePiece tokenization as llama.cpp runs it (docs/TOKENIZER.md,
 * SentencePiece), for LLaMA-2-style vocabularies such as 1bitLLM's.
 *
 * A raw-text fragment has every U+0020 escaped to U+2581 "▁" (and one more
 * put in front when the caller asks: start of text, or after a special
 * token), is split into UTF-8 characters, and adjacent symbols merge while
 * their concatenation is a vocabulary piece: the pair whose piece scores
 * highest first, the leftmost on ties. There is no merges list; the scores
 * are the order. Candidates sit in a binary max-heap; one whose symbols
 * changed after it was pushed is skipped when popped. A final symbol that is
 * not a piece (only a single character can be one) becomes one <0xXX> token
 * per byte. O(n log n) per fragment, all memory sized before merging.
 *
 * Speed: two neighbouring characters can only ever end up in one symbol if
 * some piece holds them side by side. The fragment is cut where no piece
 * does (before most "▁": pieces start with it) and each segment, about a
 * word, merges on its own with a small heap; the result is the same as
 * one heap over the fragment, since merges in different segments never
 * meet and each segment keeps its own order. Long inputs also cache the
 * ids of short segments: words repeat. */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"
#include "unicode.h"

/* A candidate: symbol `left` and its right neighbour, `size` bytes together
 * when pushed. Symbols only grow, so the same total later means neither
 * side changed (the check llama.cpp makes). */
struct bn_spm_pair {
    float score;
    uint32_t left;
    uint32_t size;
};

static int pair_before(const struct bn_spm_pair *a, const struct bn_spm_pair *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

/* The caller reserved room: at most 2 pushes per merge, and every merge
 * pops its own pair first, so the heap never holds more than 2 per symbol. */
static void heap_push(bn_spm_scratch *sc, struct bn_spm_pair p)
{
    size_t i = sc->heap_n++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!pair_before(&p, &sc->heap[up])) break;
        sc->heap[i] = sc->heap[up];
        i = up;
    }
    sc->heap[i] = p;
}

static struct bn_spm_pair heap_pop(bn_spm_scratch *sc)
{
    struct bn_spm_pair top = sc->heap[0];
    struct bn_spm_pair last = sc->heap[--sc->heap_n];
    size_t i = 0, n = sc->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && pair_before(&sc->heap[c + 1], &sc->heap[c])) c++;
        if (!pair_before(&sc->heap[c], &last)) break;
        sc->heap[i] = sc->heap[c];
        i = c;
    }
    if (n) sc->heap[i] = last;
    return top;
}

/* Pushes the pair (l, next of l) when their concatenation is a piece. */
static void try_pair(const bn_tokenizer *t, bn_spm_scratch *sc, int32_t l)
{
    if (l < 0) return;
    int32_t r = sc->next[l];
    if (r < 0) return;
    uint32_t size = sc->len[l] + sc->len[r];
    if (size > t->max_piece) return;            /* no piece is that long */
    int32_t id = bn_tok_find(t, sc->text + sc->start[l], size);
    if (id < 0) return;
    struct bn_spm_pair p = { t->score[id], (uint32_t)l, size };
    heap_push(sc, p);
}

/* One final symbol: its piece, else its bytes as byte-fallback tokens (the
 * unknown token for a byte the vocabulary cannot spell at all). */
static void put_symbol(const bn_tokenizer *t, const unsigned char *p, uint32_t n,
                       bn_id_sink *sink)
{
    int32_t id = bn_tok_find(t, p, n);
    if (id >= 0) {
        bn_sink_put(sink, id);
        return;
    }
    for (uint32_t i = 0; i < n; i++) {
        int32_t b = t->byte_id[p[i]];
        if (b < 0) b = t->unk;
        if (b >= 0) bn_sink_put(sink, b);
    }
}

static int reserve(bn_spm_scratch *sc, size_t text_len, size_t n_sym)
{
    if (text_len > sc->text_cap) {
        unsigned char *p = realloc(sc->text, text_len);
        if (!p) return -1;
        sc->text = p;
        sc->text_cap = text_len;
    }
    if (n_sym > sc->cap) {
        uint32_t *u = realloc(sc->start, n_sym * sizeof *u); if (!u) return -1; sc->start = u;
        u = realloc(sc->len, n_sym * sizeof *u); if (!u) return -1; sc->len = u;
        int32_t *a = realloc(sc->prev, n_sym * sizeof *a); if (!a) return -1; sc->prev = a;
        a = realloc(sc->next, n_sym * sizeof *a); if (!a) return -1; sc->next = a;
        sc->cap = n_sym;
    }
    if (2 * n_sym > sc->heap_cap) {
        struct bn_spm_pair *h = realloc(sc->heap, 2 * n_sym * sizeof *h);
        if (!h) return -1;
        sc->heap = h;
        sc->heap_cap = 2 * n_sym;
    }
    return 0;
}

void bn_spm_scratch_free(bn_spm_scratch *sc)
{
    free(sc->text);
    free(sc->start); free(sc->len); free(sc->prev); free(sc->next);
    free(sc->heap);
    memset(sc, 0, sizeof *sc);
}

/* Length of the UTF-8 sequence a lead byte starts (the text is valid). */
static uint32_t utf8_len(unsigned char b)
{
    return b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
}

/* ---- the set of character pairs that occur inside pieces ---------------------- */

static uint32_t join_slot(uint64_t key, uint32_t mask)
{
    return (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 40) & mask;
}

static int joins(const bn_tokenizer *t, uint32_t a, uint32_t b)
{
    uint64_t key = ((uint64_t)a << 32 | b) + 1;
    for (uint32_t i = join_slot(key, t->spm_join_mask);; i = (i + 1) & t->spm_join_mask) {
        if (t->spm_join[i] == key) return 1;
        if (t->spm_join[i] == 0) return 0;
    }
}

/* Counts the pairs of neighbouring code points in a piece and, given the
 * set, adds them. A piece that is not valid UTF-8 can never be built from
 * text: its pairs from the first bad byte on are left out (more pairs than
 * needed only means fewer cuts). */
static size_t piece_pairs(const unsigned char *p, size_t n, uint64_t *set, uint32_t mask)
{
    size_t count = 0, i = 0;
    uint32_t prev = 0;
    while (i < n) {
        uint32_t c;
        int k = bn_utf8_decode(p + i, n - i, &c);
        if (k <= 0) return count;
        if (i > 0) {
            count++;
            if (set) {
                uint64_t key = ((uint64_t)prev << 32 | c) + 1;
                uint32_t j = join_slot(key, mask);
                while (set[j] && set[j] != key) j = (j + 1) & mask;
                set[j] = key;
            }
        }
        prev = c;
        i += (size_t)k;
    }
    return count;
}

int bn_spm_build_joins(bn_tokenizer *t)
{
    size_t n = 0;
    for (int id = 0; id < t->n_vocab; id++)
        n += piece_pairs((const unsigned char *)t->bytes + t->off[id], t->len[id], NULL, 0);
    size_t size = 1024;
    while (size < 2 * n) size *= 2;
    t->spm_join = calloc(size, sizeof *t->spm_join);
    if (!t->spm_join) return -1;
    t->spm_join_mask = (uint32_t)(size - 1);
    for (int id = 0; id < t->n_vocab; id++)
        piece_pairs((const unsigned char *)t->bytes + t->off[id], t->len[id], t->spm_join,
                    t->spm_join_mask);
    return 0;
}

/* Merges the characters of text[a, b) and emits the result. */
static void merge_segment(const bn_tokenizer *t, bn_spm_scratch *sc, size_t a, size_t b,
                          bn_id_sink *sink)
{
    int32_t n_sym = 0;
    for (size_t i = a; i < b;) {
        uint32_t k = utf8_len(sc->text[i]);
        if (k > b - i) k = (uint32_t)(b - i);
        sc->start[n_sym] = (uint32_t)i;
        sc->len[n_sym] = k;
        sc->prev[n_sym] = n_sym - 1;
        sc->next[n_sym] = n_sym + 1;
        n_sym++;
        i += k;
    }
    if (n_sym == 0) return;
    sc->next[n_sym - 1] = -1;

    sc->heap_n = 0;
    for (int32_t i = 0; i + 1 < n_sym; i++) try_pair(t, sc, i);
    while (sc->heap_n) {
        struct bn_spm_pair top = heap_pop(sc);
        int32_t l = (int32_t)top.left, r = sc->next[l];
        if (sc->len[l] == 0 || r < 0 || sc->len[l] + sc->len[r] != top.size) continue;  /* stale */
        sc->len[l] = top.size;
        sc->len[r] = 0;
        sc->next[l] = sc->next[r];
        if (sc->next[r] >= 0) sc->prev[sc->next[r]] = l;
        try_pair(t, sc, sc->prev[l]);
        try_pair(t, sc, l);
    }
    for (int32_t i = 0; i >= 0; i = sc->next[i])
        put_symbol(t, sc->text + sc->start[i], sc->len[i], sink);
}

/* Segments up to this many bytes are cached (their ids fit on the stack:
 * at most one per byte). */
#define CACHED_SEGMENT 128

/* One segment: from the cache, or merged (and cached). */
static void segment(const bn_tokenizer *t, bn_spm_scratch *sc, bn_piece_cache *cache, size_t a,
                    size_t b, bn_id_sink *sink)
{
    if (!cache || b - a > CACHED_SEGMENT) {
        merge_segment(t, sc, a, b, sink);
        return;
    }
    const unsigned char *p = sc->text + a;
    uint64_t h = bn_tok_hash(p, b - a);
    int k;
    const int32_t *ids = bn_cache_get(cache, p, b - a, h, &k);
    int32_t local[CACHED_SEGMENT];
    if (!ids) {
        bn_id_sink one = { local, CACHED_SEGMENT, 0 };
        merge_segment(t, sc, a, b, &one);
        k = (int)one.n;
        bn_cache_put(cache, p, b - a, h, local, k);
        ids = local;
    }
    for (int i = 0; i < k; i++) bn_sink_put(sink, ids[i]);
}

int bn_spm_fragment(const bn_tokenizer *t, bn_spm_scratch *sc, bn_piece_cache *cache,
                    const unsigned char *s, size_t n, int prefix, bn_id_sink *sink)
{
    static const unsigned char meta[3] = { 0xE2, 0x96, 0x81 };     /* U+2581 */
    if (n > (UINT32_MAX - 3) / 3) return -1;
    size_t cap = 3 * n + 3;
    if (reserve(sc, cap, n + 1)) return -1;

    /* escape: " " -> "▁" */
    size_t m = 0;
    if (prefix) { memcpy(sc->text, meta, 3); m = 3; }
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ') { memcpy(sc->text + m, meta, 3); m += 3; }
        else sc->text[m++] = s[i];
    }

    /* cut between characters no piece holds side by side */
    size_t seg = 0;
    uint32_t prev = 0;
    for (size_t i = 0; i < m;) {
        uint32_t c;
        int k = bn_utf8_decode(sc->text + i, m - i, &c);
        if (k <= 0) { c = BN_UTF8_REPLACEMENT; k = 1; }     /* cannot happen: valid text */
        if (i > seg && !joins(t, prev, c)) {
            segment(t, sc, cache, seg, i, sink);
            seg = i;
        }
        prev = c;
        i += (size_t)k;
    }
    segment(t, sc, cache, seg, m, sink);
    return 0;
}
