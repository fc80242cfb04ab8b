/* Byte-level BPE of one pre-tokenized piece.
 *
 * Symbols start as single bytes in a doubly linked list; candidate pairs sit
 * in a binary min-heap ordered by (merge rank, left position), so the lowest
 * ranked pair, leftmost on ties, merges first, as in llama.cpp and HF. Stale
 * heap entries (a side already merged away) are skipped when popped. Cost is
 * O(n log n) per piece, so a 100 KB "word" is fine. */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

struct bn_bpe_pair {
    uint32_t rank;
    uint32_t left;                  /* position of the left symbol */
    int32_t lid, rid;               /* symbol ids when pushed (staleness check) */
    int32_t result;
};

static const bn_merge_slot *merge_find(const bn_tokenizer *t, int32_t l, int32_t r)
{
    if (!t->merge) return NULL;
    uint64_t key = (((uint64_t)(uint32_t)l << 32) | (uint32_t)r) + 1;
    uint32_t h = (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & t->merge_mask;
    for (;;) {
        const bn_merge_slot *s = &t->merge[h];
        if (s->key == key) return s;
        if (s->key == 0) return NULL;
        h = (h + 1) & t->merge_mask;
    }
}

static int pair_less(const struct bn_bpe_pair *a, const struct bn_bpe_pair *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static int heap_push(bn_bpe_scratch *sc, struct bn_bpe_pair p)
{
    if (sc->heap_n == sc->heap_cap) {
        size_t nc = sc->heap_cap ? sc->heap_cap * 2 : 64;
        struct bn_bpe_pair *h = realloc(sc->heap, nc * sizeof *h);
        if (!h) return -1;
        sc->heap = h;
        sc->heap_cap = nc;
    }
    size_t i = sc->heap_n++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!pair_less(&p, &sc->heap[up])) break;
        sc->heap[i] = sc->heap[up];
        i = up;
    }
    sc->heap[i] = p;
    return 0;
}

static struct bn_bpe_pair heap_pop(bn_bpe_scratch *sc)
{
    struct bn_bpe_pair top = sc->heap[0];
    struct bn_bpe_pair last = sc->heap[--sc->heap_n];
    size_t i = 0, n = sc->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && pair_less(&sc->heap[c + 1], &sc->heap[c])) c++;
        if (!pair_less(&sc->heap[c], &last)) break;
        sc->heap[i] = sc->heap[c];
        i = c;
    }
    if (n) sc->heap[i] = last;
    return top;
}

static int try_pair(const bn_tokenizer *t, bn_bpe_scratch *sc, int32_t l, int32_t r)
{
    if (sc->sym[l] < 0 || sc->sym[r] < 0) return 0;
    const bn_merge_slot *m = merge_find(t, sc->sym[l], sc->sym[r]);
    if (!m) return 0;
    struct bn_bpe_pair p = { m->rank, (uint32_t)l, sc->sym[l], sc->sym[r], m->result };
    return heap_push(sc, p);
}

static int reserve(bn_bpe_scratch *sc, size_t n)
{
    if (n <= sc->cap) return 0;
    size_t nc = sc->cap ? sc->cap : 256;
    while (nc < n) nc *= 2;
    int32_t *a = realloc(sc->sym, nc * sizeof *a); if (!a) return -1; sc->sym = a;
    a = realloc(sc->prev, nc * sizeof *a); if (!a) return -1; sc->prev = a;
    a = realloc(sc->next, nc * sizeof *a); if (!a) return -1; sc->next = a;
    uint32_t *u = realloc(sc->start, nc * sizeof *u); if (!u) return -1; sc->start = u;
    u = realloc(sc->slen, nc * sizeof *u); if (!u) return -1; sc->slen = u;
    sc->cap = nc;
    return 0;
}

void bn_bpe_scratch_free(bn_bpe_scratch *sc)
{
    free(sc->sym); free(sc->prev); free(sc->next);
    free(sc->start); free(sc->slen); free(sc->heap);
    memset(sc, 0, sizeof *sc);
}

/* A symbol that is not a vocabulary token (a merge intermediate absent from
 * the vocab) falls back to its single-byte tokens, as llama.cpp does. */
static void put_symbol(const bn_tokenizer *t, const unsigned char *p, int32_t id,
                       uint32_t start, uint32_t len, bn_id_sink *sink)
{
    if (id >= 0 && id < t->n_vocab) {
        bn_sink_put(sink, id);
        return;
    }
    for (uint32_t i = 0; i < len; i++)
        if (t->byte_id[p[start + i]] >= 0) bn_sink_put(sink, t->byte_id[p[start + i]]);
}

/* Short pieces (most of them): the same merge order found by a linear scan
 * for the lowest (rank, position) pair over a small linked list on the
 * stack; no heap and no stale entries. Quadratic, so only up to SMALL_PIECE
 * bytes. A symbol is named by its first byte's position. */
#define SMALL_PIECE 48

static void pair_rank(const bn_tokenizer *t, const int32_t *sym, int i, int j, uint32_t *rk,
                      int32_t *res)
{
    rk[i] = UINT32_MAX;
    if (sym[i] < 0 || sym[j] < 0) return;
    const bn_merge_slot *m = merge_find(t, sym[i], sym[j]);
    if (m) {
        rk[i] = m->rank;
        res[i] = m->result;
    }
}

static void bpe_small(const bn_tokenizer *t, const unsigned char *p, int n, bn_id_sink *sink)
{
    int32_t sym[SMALL_PIECE], res[SMALL_PIECE];
    uint32_t rk[SMALL_PIECE];
    uint8_t nx[SMALL_PIECE], pv[SMALL_PIECE + 1];   /* n = end of list */
    for (int i = 0; i < n; i++) {
        sym[i] = t->byte_id[p[i]];
        nx[i] = (uint8_t)(i + 1);
        pv[i + 1] = (uint8_t)i;
    }
    for (int i = 0; i + 1 < n; i++) pair_rank(t, sym, i, i + 1, rk, res);
    for (;;) {
        uint32_t best = UINT32_MAX;
        int b = -1;
        for (int i = 0; nx[i] < n; i = nx[i])
            if (rk[i] < best) { best = rk[i]; b = i; }
        if (b < 0) break;
        int j = nx[b];                      /* merged into b */
        sym[b] = res[b];
        nx[b] = nx[j];
        pv[nx[j]] = (uint8_t)b;
        if (nx[b] < n) pair_rank(t, sym, b, nx[b], rk, res);
        if (b > 0) pair_rank(t, sym, pv[b], b, rk, res);
    }
    for (int i = 0; i < n; i = nx[i]) put_symbol(t, p, sym[i], (uint32_t)i, (uint32_t)(nx[i] - i), sink);
}

int bn_bpe_merge(const bn_tokenizer *t, bn_bpe_scratch *sc, const unsigned char *p, size_t n,
                 bn_id_sink *sink)
{
    if (n < 2) {
        if (n) put_symbol(t, p, t->byte_id[p[0]], 0, 1, sink);
        return 0;
    }
    if (n <= SMALL_PIECE) {
        bpe_small(t, p, (int)n, sink);
        return 0;
    }
    if (n > INT32_MAX || reserve(sc, n)) return -1;
    for (size_t i = 0; i < n; i++) {
        sc->sym[i] = t->byte_id[p[i]];
        sc->prev[i] = (int32_t)i - 1;
        sc->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
        sc->start[i] = (uint32_t)i;
        sc->slen[i] = 1;
    }
    sc->heap_n = 0;
    for (size_t i = 0; i + 1 < n; i++)
        if (try_pair(t, sc, (int32_t)i, (int32_t)i + 1)) return -1;

    while (sc->heap_n) {
        struct bn_bpe_pair top = heap_pop(sc);
        int32_t l = (int32_t)top.left, r = sc->next[l];
        if (sc->sym[l] != top.lid || r < 0 || sc->sym[r] != top.rid) continue;   /* stale */
        sc->sym[l] = top.result;
        sc->slen[l] += sc->slen[r];
        sc->next[l] = sc->next[r];
        if (sc->next[r] >= 0) sc->prev[sc->next[r]] = l;
        sc->sym[r] = -2;                                   /* dead */
        if (sc->prev[l] >= 0 && try_pair(t, sc, sc->prev[l], l)) return -1;
        if (sc->next[l] >= 0 && try_pair(t, sc, l, sc->next[l])) return -1;
    }
    for (int32_t i = 0; i >= 0; i = sc->next[i])
        put_symbol(t, p, sc->sym[i], sc->start[i], sc->slen[i], sink);
    return 0;
}
