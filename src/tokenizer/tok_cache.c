/* Per-call cache of BPE results: piece bytes -> ids.
 *
 * Natural text repeats its words, so for a long input most pieces that need
 * merging were merged before (the 1.3 MB reference text: 42 K such pieces,
 * 15 K distinct); SentencePiece segments (about words) too. The cache
 * lives for one bn_tokenize call only, so the tokenizer stays read-only
 * and thread-safe. Keys and ids are copied into arenas of their own (a
 * SentencePiece segment lives in a scratch buffer that is reused). */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

struct bn_cache_slot {
    uint64_t hash;
    uint32_t len1;                  /* key length + 1; 0 = empty */
    uint32_t key_off;
    uint32_t ids_off, n_ids;
};

int bn_cache_init(bn_piece_cache *c, size_t text_len)
{
    memset(c, 0, sizeof *c);
    size_t size = 1024;
    while (size < text_len / 16 && size < (1u << 17)) size *= 2;
    c->slot = calloc(size, sizeof *c->slot);
    if (!c->slot) return -1;
    c->mask = (uint32_t)(size - 1);
    return 0;
}

void bn_cache_free(bn_piece_cache *c)
{
    free(c->slot);
    free(c->ids);
    free(c->keys);
    memset(c, 0, sizeof *c);
}

const int32_t *bn_cache_get(const bn_piece_cache *c, const unsigned char *p, size_t n, uint64_t h,
                            int *n_ids)
{
    if (!c->slot) return NULL;
    for (uint32_t i = (uint32_t)h & c->mask;; i = (i + 1) & c->mask) {
        const struct bn_cache_slot *s = &c->slot[i];
        if (!s->len1) return NULL;
        if (s->hash == h && s->len1 == n + 1 && memcmp(c->keys + s->key_off, p, n) == 0) {
            *n_ids = (int)s->n_ids;
            return c->ids + s->ids_off;
        }
    }
}

void bn_cache_put(bn_piece_cache *c, const unsigned char *p, size_t n, uint64_t h,
                  const int32_t *ids, int n_ids)
{
    /* Full (load 1/2) or too big: simply stop caching. */
    if (!c->slot || n >= UINT32_MAX || (size_t)(c->used + 1) * 2 > (size_t)c->mask + 1) return;
    if (c->ids_len + (size_t)n_ids > c->ids_cap) {
        size_t nc = c->ids_cap ? c->ids_cap * 2 : 4096;
        while (nc < c->ids_len + (size_t)n_ids) nc *= 2;
        if (nc > UINT32_MAX) return;
        int32_t *q = realloc(c->ids, nc * sizeof *q);
        if (!q) return;
        c->ids = q;
        c->ids_cap = nc;
    }
    if (c->keys_len + n > c->keys_cap) {
        size_t nc = c->keys_cap ? c->keys_cap * 2 : 16384;
        while (nc < c->keys_len + n) nc *= 2;
        if (nc > UINT32_MAX) return;
        unsigned char *q = realloc(c->keys, nc);
        if (!q) return;
        c->keys = q;
        c->keys_cap = nc;
    }
    uint32_t i = (uint32_t)h & c->mask;
    while (c->slot[i].len1) i = (i + 1) & c->mask;
    c->slot[i].hash = h;
    c->slot[i].len1 = (uint32_t)n + 1;
    c->slot[i].key_off = (uint32_t)c->keys_len;
    c->slot[i].ids_off = (uint32_t)c->ids_len;
    c->slot[i].n_ids = (uint32_t)n_ids;
    memcpy(c->keys + c->keys_len, p, n);
    c->keys_len += n;
    memcpy(c->ids + c->ids_len, ids, (size_t)n_ids * sizeof *ids);
    c->ids_len += (size_t)n_ids;
    c->used++;
}
