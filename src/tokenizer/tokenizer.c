/* Tokenizer: loading from GGUF, special tokens, and the public tokenize /
 * lookup / token-to-bytes API. Splitting is in tok_pretok.c, merging in
 * tok_bpe.c (byte-level BPE) and tok_spm.c (SentencePiece), decoding in
 * tok_detok.c. */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"
#include "unicode.h"
#include "util.h"


/* ---- hashing ------------------------------------------------------------- */

uint64_t bn_tok_hash(const unsigned char *s, size_t n)
{
    uint64_t h = 0x243F6A8885A308D3ull ^ n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0x9E3779B97F4A7C15ull;
        h ^= h >> 32;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    h = (h ^ w) * 0x9E3779B97F4A7C15ull;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 32;
    return h;
}

int32_t bn_tok_find(const bn_tokenizer *t, const unsigned char *s, size_t n)
{
    return bn_tok_find_h(t, s, n, bn_tok_hash(s, n));
}

int32_t bn_tok_find_h(const bn_tokenizer *t, const unsigned char *s, size_t n, uint64_t h)
{
    uint32_t tag = (uint32_t)(h >> 32), i = (uint32_t)h & t->bpe.mask;
    for (;;) {
        const bn_strmap_slot *sl = &t->bpe.slot[i];
        if (sl->id < 0) return -1;
        if (sl->tag == tag && sl->len == n && memcmp(t->bytes + sl->off, s, n) == 0)
            return sl->id;
        i = (i + 1) & t->bpe.mask;
    }
}

/* ---- building --------------------------------------------------------------- */

/* Growable state used only while loading. */
typedef struct builder {
    bn_tokenizer *t;
    size_t bytes_len, bytes_cap;
    int sym_cap;
    int n_bpe;                      /* entries in t->bpe */
    int trie_cap;
    int16_t gpt2_inv[0x144];        /* GPT-2 code point -> byte, -1 outside */
} builder;

static int add_symbol(builder *b, const unsigned char *s, size_t n)
{
    bn_tokenizer *t = b->t;
    if (t->n_sym == b->sym_cap) {
        int nc = b->sym_cap * 2;
        uint32_t *o = realloc(t->off, (size_t)nc * sizeof *o);
        if (!o) return -1;
        t->off = o;
        uint32_t *l = realloc(t->len, (size_t)nc * sizeof *l);
        if (!l) return -1;
        t->len = l;
        b->sym_cap = nc;
    }
    if (b->bytes_len + n > b->bytes_cap) {
        size_t nc = b->bytes_cap * 2 + n;
        if (nc > UINT32_MAX) return -1;
        char *p = realloc(t->bytes, nc);
        if (!p) return -1;
        t->bytes = p;
        b->bytes_cap = nc;
    }
    memcpy(t->bytes + b->bytes_len, s, n);
    t->off[t->n_sym] = (uint32_t)b->bytes_len;
    t->len[t->n_sym] = (uint32_t)n;
    b->bytes_len += n;
    return t->n_sym++;
}

static void strmap_insert_raw(bn_strmap *m, const bn_tokenizer *t, int32_t id)
{
    uint64_t h = bn_tok_hash((const unsigned char *)t->bytes + t->off[id], t->len[id]);
    uint32_t i = (uint32_t)h & m->mask;
    while (m->slot[i].id >= 0) i = (i + 1) & m->mask;
    m->slot[i].tag = (uint32_t)(h >> 32);
    m->slot[i].id = id;
    m->slot[i].off = t->off[id];
    m->slot[i].len = t->len[id];
}

static int strmap_alloc(bn_strmap *m, size_t n_entries)
{
    size_t size = 1024;
    while (size < n_entries * 2) size *= 2;
    m->slot = malloc(size * sizeof *m->slot);
    if (!m->slot) return -1;
    memset(m->slot, 0xFF, size * sizeof *m->slot);
    m->mask = (uint32_t)(size - 1);
    return 0;
}

/* Adds id to the BPE map (load factor kept <= 1/2). */
static int bpe_add(builder *b, int32_t id)
{
    bn_tokenizer *t = b->t;
    if ((size_t)(b->n_bpe + 1) * 2 > (size_t)t->bpe.mask + 1) {
        bn_strmap old = t->bpe, nm;
        if (strmap_alloc(&nm, ((size_t)old.mask + 1))) return -1;
        for (uint32_t i = 0; i <= old.mask; i++)
            if (old.slot[i].id >= 0) strmap_insert_raw(&nm, t, old.slot[i].id);
        free(old.slot);
        t->bpe = nm;
    }
    strmap_insert_raw(&t->bpe, t, id);
    b->n_bpe++;
    return 0;
}

/* SentencePiece map entry: every token, and for a text that occurs twice
 * the later id, as llama.cpp's token_to_id map ends up. */
static int spm_map_set(builder *b, int32_t id)
{
    bn_tokenizer *t = b->t;
    const unsigned char *s = (const unsigned char *)t->bytes + t->off[id];
    uint64_t h = bn_tok_hash(s, t->len[id]);
    uint32_t tag = (uint32_t)(h >> 32), i = (uint32_t)h & t->bpe.mask;
    for (;;) {
        bn_strmap_slot *sl = &t->bpe.slot[i];
        if (sl->id < 0) break;
        if (sl->tag == tag && sl->len == t->len[id] && memcmp(t->bytes + sl->off, s, sl->len) == 0) {
            sl->id = id;
            return 0;
        }
        i = (i + 1) & t->bpe.mask;
    }
    return bpe_add(b, id);
}

/* Id of the BPE symbol with these bytes, created (as a non-vocab
 * intermediate) when missing. */
static int32_t symbol_for(builder *b, const unsigned char *s, size_t n)
{
    int32_t id = bn_tok_find(b->t, s, n);
    if (id >= 0) return id;
    id = add_symbol(b, s, n);
    if (id < 0 || bpe_add(b, id)) return -1;
    return id;
}

/* Byte-level token text -> raw bytes. Code points outside the GPT-2
 * alphabet (and undecodable bytes) are kept as they are. The alphabet is
 * U+0021..U+0143, so only 1- and 2-byte sequences need the table. */
static void gpt2_inv_init(int16_t inv[0x144])
{
    for (int c = 0; c < 0x144; c++) inv[c] = (int16_t)bn_gpt2_cp_to_byte((uint32_t)c);
}

static size_t gpt2_decode(const int16_t *gpt2_inv, const unsigned char *s, size_t n,
                          unsigned char *out)
{
    size_t o = 0, i = 0;
    while (i < n) {
        unsigned b = s[i];
        uint32_t cp = 0x144;
        size_t k = 1;
        if (b < 0x80) cp = b;
        else if (b >= 0xC2 && b <= 0xC5 && i + 1 < n && (s[i + 1] & 0xC0) == 0x80) {
            cp = ((b & 0x1Fu) << 6) | (s[i + 1] & 0x3Fu);
            k = 2;
        }
        if (cp < 0x144 && gpt2_inv[cp] >= 0) {
            out[o++] = (unsigned char)gpt2_inv[cp];
            i += k;
            continue;
        }
        /* not in the alphabet: copy the whole sequence (or the bad byte) */
        uint32_t c;
        int m = bn_utf8_decode(s + i, n - i, &c);
        k = m > 0 ? (size_t)m : 1;
        memcpy(out + o, s + i, k);
        o += k;
        i += k;
    }
    return o;
}

static int trie_new_node(bn_tokenizer *t, int *cap, uint8_t byte)
{
    if (t->n_trie == *cap) {
        int nc = *cap ? *cap * 2 : 256;
        bn_trie_node *p = realloc(t->trie, (size_t)nc * sizeof *p);
        if (!p) return -1;
        t->trie = p;
        *cap = nc;
    }
    bn_trie_node *nd = &t->trie[t->n_trie];
    nd->child = nd->sibling = nd->token = -1;
    nd->byte = byte;
    nd->always = 0;
    return t->n_trie++;
}

static int trie_insert(bn_tokenizer *t, int *cap, const unsigned char *s, size_t n, int32_t id,
                       int always)
{
    int node = 0;
    for (size_t i = 0; i < n; i++) {
        int c = t->trie[node].child;
        while (c >= 0 && t->trie[c].byte != s[i]) c = t->trie[c].sibling;
        if (c < 0) {
            c = trie_new_node(t, cap, s[i]);
            if (c < 0) return -1;
            t->trie[c].sibling = t->trie[node].child;
            t->trie[node].child = c;
        }
        node = c;
    }
    if (t->trie[node].token < 0) {      /* duplicate texts: the first id wins */
        t->trie[node].token = id;
        t->trie[node].always = (uint8_t)always;
    }
    t->special_first[s[0]] = 1;
    return 0;
}

/* Longest special token starting at s (restricted to USER_DEFINED unless
 * parse_special). Returns its length, 0 if none. */
static size_t trie_match(const bn_tokenizer *t, const unsigned char *s, size_t n, int parse_special,
                         int32_t *id)
{
    size_t best = 0;
    int node = 0;
    for (size_t i = 0; i < n; i++) {
        int c = t->trie[node].child;
        while (c >= 0 && t->trie[c].byte != s[i]) c = t->trie[c].sibling;
        if (c < 0) break;
        node = c;
        if (t->trie[node].token >= 0 && (parse_special || t->trie[node].always)) {
            best = i + 1;
            *id = t->trie[node].token;
        }
    }
    return best;
}

/* A token by its exact raw text: specials first, then the BPE vocabulary. */
static int32_t find_text(const bn_tokenizer *t, const char *s, size_t n)
{
    int32_t id = -1;
    if (n && trie_match(t, (const unsigned char *)s, n, 1, &id) == n) return id;
    id = bn_tok_find(t, (const unsigned char *)s, n);
    return id < t->n_vocab ? id : -1;
}

static int is_special_type(int type)
{
    return type == BN_TT_CONTROL || type == BN_TT_USER_DEFINED || type == BN_TT_UNKNOWN;
}

static int32_t get_token_key(const gguf_file *f, const char *key, int n_vocab, int32_t fallback)
{
    uint32_t v;
    if (gguf_get_u32(f, key, &v) == 0 && v < (uint32_t)n_vocab) return (int32_t)v;
    return fallback;
}

/* EOT candidates by text, in llama.cpp's order; the EOG set of docs/TOKENIZER.md, Special tokens is
 * these plus <|eom_id|> (an end of generation, but not an end of turn). */
static const char *const eot_texts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>",
};

static void add_eog(bn_tokenizer *t, int32_t id)
{
    if (id < 0) return;
    for (int i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id) return;
    if (t->n_eog < (int)(sizeof t->eog / sizeof t->eog[0])) t->eog[t->n_eog++] = id;
}

/* Grows the decoding scratch to hold at least need bytes; frees it and
 * returns -1 when memory runs out. */
static int grow_scratch(unsigned char **buf, size_t *cap, uint64_t need)
{
    if (need <= *cap) return 0;
    size_t n = (size_t)need * 2 + 64;
    unsigned char *p = realloc(*buf, n);
    if (!p) { free(*buf); *buf = NULL; return -1; }
    *buf = p;
    *cap = n;
    return 0;
}

static int load_vocab(builder *b, const gguf_kv *tokens, const gguf_kv *types, char *err,
                      size_t errlen)
{
    bn_tokenizer *t = b->t;
    int n = t->n_vocab;
    if (trie_new_node(t, &b->trie_cap, 0) < 0) return -1;     /* root */
    const uint8_t *cur = tokens->data;
    unsigned char *tmp = NULL;
    size_t tmp_cap = 0;
    for (int i = 0; i < n; i++) {
        gguf_str s = gguf_arr_str_next(&cur);
        if (s.len > UINT32_MAX / 4) {
            bn_set_err(err, errlen, "token %d is too long", i);
            free(tmp);
            return -1;
        }
        if (grow_scratch(&tmp, &tmp_cap, s.len) != 0) return -1;
        int type = BN_TT_NORMAL;
        if (types) {
            int64_t v = gguf_arr_int(types, (uint64_t)i);
            type = v >= 0 && v <= 255 ? (int)v : 0;
        }
        t->type[i] = (uint8_t)type;
        const unsigned char *raw = (const unsigned char *)s.ptr;
        size_t rn = s.len;
        if (t->model == BN_TOK_BPE && !is_special_type(type)) {   /* byte-level text -> raw bytes */
            rn = gpt2_decode(b->gpt2_inv, raw, s.len, tmp);
            raw = tmp;
        }
        if (add_symbol(b, raw, rn) < 0) { free(tmp); return -1; }
        if (is_special_type(type) &&
            rn && trie_insert(t, &b->trie_cap, raw, rn, i, type == BN_TT_USER_DEFINED)) {
            free(tmp);
            return -1;
        }
        if (t->model == BN_TOK_SPM) {            /* every piece can be merged into */
            if (spm_map_set(b, i)) { free(tmp); return -1; }
            if (rn > t->max_piece) t->max_piece = (uint32_t)rn;
        } else if (!is_special_type(type) && bn_tok_find(t, raw, rn) < 0) {
            if (bpe_add(b, i)) { free(tmp); return -1; }
            if (rn == 1 && t->byte_id[raw[0]] < 0) t->byte_id[raw[0]] = i;
        }
    }
    free(tmp);
    return 0;
}

static int merge_insert(bn_tokenizer *t, int32_t l, int32_t r, uint32_t rank, int32_t result)
{
    uint64_t key = (((uint64_t)(uint32_t)l << 32) | (uint32_t)r) + 1;
    uint32_t h = (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & t->merge_mask;
    while (t->merge[h].key) {
        if (t->merge[h].key == key) return 0;     /* duplicate: keep the lower rank */
        h = (h + 1) & t->merge_mask;
    }
    t->merge[h].key = key;
    t->merge[h].rank = rank;
    t->merge[h].result = result;
    return 0;
}

static int load_merges(builder *b, const gguf_kv *merges, char *err, size_t errlen)
{
    bn_tokenizer *t = b->t;
    uint64_t n = merges->arr_n;
    if (n > (uint64_t)INT32_MAX / 4) {
        bn_set_err(err, errlen, "too many merges (%llu)", (unsigned long long)n);
        return -1;
    }
    size_t size = 1024;
    while (size * 3 < n * 4) size *= 2;      /* load <= 3/4: 280 K merges fit 512 K slots */
    t->merge = calloc(size, sizeof *t->merge);
    if (!t->merge) return -1;
    t->merge_mask = (uint32_t)(size - 1);

    const uint8_t *cur = merges->data;
    unsigned char *tmp = NULL;
    size_t tmp_cap = 0;
    for (uint64_t i = 0; i < n; i++) {
        gguf_str s = gguf_arr_str_next(&cur);
        const char *sp = s.len > 1 ? memchr(s.ptr + 1, ' ', s.len - 1) : NULL;
        if (!sp) {
            bn_set_err(err, errlen, "merge %llu has no space", (unsigned long long)i);
            free(tmp);
            return -1;
        }
        if (grow_scratch(&tmp, &tmp_cap, s.len) != 0) return -1;
        /* left and right decoded back to back: left+right is their concatenation */
        const unsigned char *a = (const unsigned char *)s.ptr;
        size_t an = (size_t)(sp - s.ptr);
        size_t ln = gpt2_decode(b->gpt2_inv, a, an, tmp);
        size_t rn = gpt2_decode(b->gpt2_inv, a + an + 1, s.len - an - 1, tmp + ln);
        int32_t l = symbol_for(b, tmp, ln);
        int32_t r = symbol_for(b, tmp + ln, rn);
        int32_t res = symbol_for(b, tmp, ln + rn);
        if (l < 0 || r < 0 || res < 0) { free(tmp); return -1; }
        merge_insert(t, l, r, (uint32_t)i, res);
    }
    free(tmp);
    return 0;
}

/* ---- pre-tokenizer names ---------------------------------------------------------- */

static const struct { const char *name; enum bn_pre_type pre; } pre_names[] = {
    { "llama3", BN_PRE_LLAMA3 }, { "llama-bpe", BN_PRE_LLAMA3 }, { "llama-v3", BN_PRE_LLAMA3 },
    { "default", BN_PRE_DEFAULT }, { "falcon3", BN_PRE_FALCON3 }, { "falcon_e", BN_PRE_FALCON_E },
};
#define PRE_KNOWN "llama3, llama-bpe, llama-v3, default, falcon3, falcon_e"

int bn_pre_from_name(const char *s, size_t n)
{
    for (size_t i = 0; i < sizeof pre_names / sizeof pre_names[0]; i++)
        if (strlen(pre_names[i].name) == n && memcmp(pre_names[i].name, s, n) == 0)
            return (int)pre_names[i].pre;
    return -1;
}

const char *bn_pre_name(enum bn_pre_type pre)
{
    switch (pre) {
    case BN_PRE_LLAMA3: return "llama3";
    case BN_PRE_DEFAULT: return "default";
    case BN_PRE_FALCON3: return "falcon3";
    case BN_PRE_FALCON_E: return "falcon_e";
    default: return "none";
    }
}

/* The pre-tokenizer of a BPE vocabulary: override, else the file's key,
 * else by vocabulary (the published 2B4T file has no key). */
static int choose_pre(bn_tokenizer *t, const gguf_file *f, const char *override, char *err,
                      size_t errlen)
{
    gguf_str pre;
    int p;
    if (override && *override) {
        if ((p = bn_pre_from_name(override, strlen(override))) < 0) {
            bn_set_err(err, errlen, "unknown pre-tokenizer '%.64s' (known: " PRE_KNOWN ")", override);
            return -1;
        }
    } else if (gguf_get_str(f, "tokenizer.ggml.pre", &pre) == 0) {
        if ((p = bn_pre_from_name(pre.ptr, (size_t)pre.len)) < 0) {
            bn_set_err(err, errlen, "unknown tokenizer.ggml.pre '%.*s' (known: " PRE_KNOWN "); "
                    "choose one with --pre-tokenizer", (int)(pre.len > 64 ? 64 : pre.len), pre.ptr);
            return -1;
        }
    } else {
        int llama3_vocab = t->n_vocab >= 128256 && find_text(t, "<|begin_of_text|>", 17) == 128000;
        p = llama3_vocab ? BN_PRE_LLAMA3 : BN_PRE_DEFAULT;
    }
    t->pre = (enum bn_pre_type)p;
    t->ignore_merges = t->pre == BN_PRE_LLAMA3;
    return 0;
}

/* ---- SentencePiece extras ------------------------------------------------------- */

/* Scores (the merge order) and the byte-fallback tokens <0x00>..<0xFF>. */
static int load_spm(bn_tokenizer *t, const gguf_kv *scores, char *err, size_t errlen)
{
    if (scores->type != GGUF_ARRAY || scores->arr_type != GGUF_F32 ||
        scores->arr_n != (uint64_t)t->n_vocab) {
        bn_set_err(err, errlen, "tokenizer.ggml.scores is not a float32 array of %d entries",
                t->n_vocab);
        return -1;
    }
    t->score = malloc((size_t)t->n_vocab * sizeof *t->score);
    if (!t->score) return -1;
    memcpy(t->score, scores->data, (size_t)t->n_vocab * sizeof *t->score);
    for (int i = 0; i < t->n_vocab; i++)
        if (isnan(t->score[i])) t->score[i] = -FLT_MAX;     /* keep the heap's order total */
    static const char hex[] = "0123456789ABCDEF";
    for (int c = 0; c < 256; c++) {
        char name[6] = { '<', '0', 'x', hex[c >> 4], hex[c & 15], '>' };
        unsigned char one = (unsigned char)c;
        int32_t id = bn_tok_find(t, (const unsigned char *)name, 6);
        t->byte_id[c] = id >= 0 ? id : bn_tok_find(t, &one, 1);
    }
    return 0;
}

/* llama.cpp treats every token named like an end of turn as a control
 * token (whatever the file says), so it is parsed as one and hidden when
 * printed. */
static int force_control(builder *b, int32_t id)
{
    bn_tokenizer *t = b->t;
    if (id < 0 || t->type[id] == BN_TT_CONTROL) return 0;
    t->type[id] = BN_TT_CONTROL;
    if (t->len[id] == 0) return 0;
    return trie_insert(t, &b->trie_cap, (const unsigned char *)t->bytes + t->off[id], t->len[id],
                       id, 0);
}

/* BOS/EOS/EOT/EOM/UNK and the end-of-generation set: eos, eot, eom and every
 * token whose text is a known end of turn (llama.cpp's special_eog_ids). */
static int special_ids(builder *b, const gguf_file *f)
{
    bn_tokenizer *t = b->t;
    int n_vocab = t->n_vocab, spm = t->model == BN_TOK_SPM;
    /* SentencePiece defaults are LLaMA's: <unk> 0, <s> 1, </s> 2 */
    int32_t bos = spm ? (n_vocab > 1 ? 1 : -1) : find_text(t, "<|begin_of_text|>", 17);
    int32_t eos = spm ? (n_vocab > 2 ? 2 : -1) : find_text(t, "<|end_of_text|>", 15);
    t->bos = get_token_key(f, "tokenizer.ggml.bos_token_id", n_vocab, bos);
    t->eos = get_token_key(f, "tokenizer.ggml.eos_token_id", n_vocab, eos);
    t->unk = get_token_key(f, "tokenizer.ggml.unknown_token_id", n_vocab, spm ? 0 : -1);
    t->eot = get_token_key(f, "tokenizer.ggml.eot_token_id", n_vocab, -1);
    t->eom = get_token_key(f, "tokenizer.ggml.eom_token_id", n_vocab, -1);
    size_t n_eot = sizeof eot_texts / sizeof eot_texts[0];
    for (size_t i = 0; t->eot < 0 && i < n_eot; i++)
        t->eot = find_text(t, eot_texts[i], strlen(eot_texts[i]));
    if (t->eom < 0) t->eom = find_text(t, "<|eom_id|>", 10);
    for (size_t i = 0; i < n_eot; i++) {
        int32_t id = find_text(t, eot_texts[i], strlen(eot_texts[i]));
        if (force_control(b, id)) return -1;
        add_eog(t, id);
    }
    if (force_control(b, find_text(t, "<|eom_id|>", 10))) return -1;
    add_eog(t, find_text(t, "<|eom_id|>", 10));
    add_eog(t, t->eos);
    add_eog(t, t->eot);
    add_eog(t, t->eom);
    return 0;
}

bn_tokenizer *bn_tokenizer_from_gguf(const gguf_file *f, const char *pre_override,
                                     char *err, size_t errlen)
{
    gguf_str model;
    if (gguf_get_str(f, "tokenizer.ggml.model", &model) != 0) {
        bn_set_err(err, errlen, "no tokenizer in the file (tokenizer.ggml.model missing)");
        return NULL;
    }
    int spm = gguf_str_eq(model, "llama");
    if (!spm && !gguf_str_eq(model, "gpt2")) {
        bn_set_err(err, errlen, "unsupported tokenizer model '%.*s' (known: gpt2 = byte-level BPE, "
                "llama = SentencePiece)", (int)(model.len > 64 ? 64 : model.len), model.ptr);
        return NULL;
    }
    const gguf_kv *tokens = gguf_find_kv(f, "tokenizer.ggml.tokens");
    if (!tokens || tokens->type != GGUF_ARRAY || tokens->arr_type != GGUF_STRING ||
        tokens->arr_n == 0 || tokens->arr_n > (1u << 24)) {
        bn_set_err(err, errlen, "tokenizer.ggml.tokens is missing or not a non-empty string array");
        return NULL;
    }
    int n_vocab = (int)tokens->arr_n;
    const gguf_kv *types = gguf_find_kv(f, "tokenizer.ggml.token_type");
    if (types && (types->type != GGUF_ARRAY || types->arr_n != tokens->arr_n ||
                  types->arr_type == GGUF_STRING || types->arr_type == GGUF_ARRAY ||
                  types->arr_type == GGUF_F32 || types->arr_type == GGUF_F64 ||
                  types->arr_type == GGUF_BOOL)) {
        bn_set_err(err, errlen, "tokenizer.ggml.token_type is not an integer array of %d entries",
                n_vocab);
        return NULL;
    }
    const gguf_kv *merges = spm ? NULL : gguf_find_kv(f, "tokenizer.ggml.merges");
    if (merges && (merges->type != GGUF_ARRAY || merges->arr_type != GGUF_STRING)) {
        bn_set_err(err, errlen, "tokenizer.ggml.merges is not a string array");
        return NULL;
    }
    const gguf_kv *scores = gguf_find_kv(f, "tokenizer.ggml.scores");
    if (spm && !scores) {           /* before any work: a one-line answer */
        bn_set_err(err, errlen, "SentencePiece vocabulary without tokenizer.ggml.scores "
                "(its merge order)");
        return NULL;
    }

    bn_tokenizer *t = calloc(1, sizeof *t);
    if (!t) { bn_set_err(err, errlen, "out of memory"); return NULL; }
    builder b = { t, 0, 0, 0, 0, 0, { 0 } };
    gpt2_inv_init(b.gpt2_inv);
    t->model = spm ? BN_TOK_SPM : BN_TOK_BPE;
    t->n_vocab = n_vocab;
    b.sym_cap = n_vocab + 16;
    b.bytes_cap = (size_t)tokens->nbytes + 64;
    t->type = malloc((size_t)n_vocab);
    t->off = malloc((size_t)b.sym_cap * sizeof *t->off);
    t->len = malloc((size_t)b.sym_cap * sizeof *t->len);
    t->bytes = malloc(b.bytes_cap);
    for (int i = 0; i < 256; i++) t->byte_id[i] = -1;
    if (!t->type || !t->off || !t->len || !t->bytes ||
        strmap_alloc(&t->bpe, (size_t)n_vocab))
        goto oom;
    if (err && errlen) err[0] = '\0';
    if (load_vocab(&b, tokens, types, err, errlen)) goto fail;
    if (merges && load_merges(&b, merges, err, errlen)) goto fail;
    if (spm && load_spm(t, scores, err, errlen)) goto fail;
    if (spm && bn_spm_build_joins(t)) goto oom;
    if (special_ids(&b, f)) goto oom;

    if (spm) {
        t->pre = BN_PRE_NONE;       /* SentencePiece splits nothing: no pre-tokenizer */
    } else if (choose_pre(t, f, pre_override, err, errlen)) {
        goto fail;
    }
    /* llama.cpp's defaults: SentencePiece adds BOS and a space prefix */
    if (gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &t->add_bos) != 0)
        t->add_bos = (spm || t->pre == BN_PRE_LLAMA3) && t->bos >= 0;
    if (gguf_get_bool(f, "tokenizer.ggml.add_eos_token", &t->add_eos) != 0)
        t->add_eos = 0;
    if (gguf_get_bool(f, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix) != 0)
        t->add_space_prefix = spm;

    gguf_str tmpl;
    if (gguf_get_str(f, "tokenizer.chat_template", &tmpl) == 0) {
        if (!(t->chat_template = malloc((size_t)tmpl.len + 1))) goto oom;
        memcpy(t->chat_template, tmpl.ptr, (size_t)tmpl.len);
        t->chat_template[tmpl.len] = '\0';
    }
    return t;

oom:
    bn_set_err(err, errlen, "out of memory loading the vocabulary");
fail:
    if (err && errlen && !err[0]) bn_set_err(err, errlen, "out of memory loading the vocabulary");
    bn_tokenizer_free(t);
    return NULL;
}

bn_tokenizer *bn_tokenizer_load(const char *path, const char *pre_tokenizer, char *err,
                                size_t errlen)
{
    gguf_file f;
    if (!path) {
        bn_set_err(err, errlen, "no file given");
        return NULL;
    }
    if (gguf_open(&f, path, err, errlen) != 0) return NULL;
    bn_tokenizer *t = bn_tokenizer_from_gguf(&f, pre_tokenizer, err, errlen);
    gguf_close(&f);             /* the tokenizer keeps copies of what it needs */
    return t;
}

void bn_tokenizer_free(bn_tokenizer *t)
{
    if (!t) return;
    free(t->type);
    free(t->bytes);
    free(t->off);
    free(t->len);
    free(t->bpe.slot);
    free(t->merge);
    free(t->trie);
    free(t->score);
    free(t->spm_join);
    free(t->chat_template);
    free(t);
}

enum bn_pre_type bn_tokenizer_pre(const bn_tokenizer *t) { return t->pre; }
const char *bn_tokenizer_chat_template(const bn_tokenizer *t) { return t->chat_template; }
int bn_tokenizer_is_spm(const bn_tokenizer *t) { return t->model == BN_TOK_SPM; }

/* ---- public accessors ------------------------------------------------------- */

int bn_vocab_size(const bn_tokenizer *t) { return t->n_vocab; }
int32_t bn_token_bos(const bn_tokenizer *t) { return t->bos; }
int32_t bn_token_eos(const bn_tokenizer *t) { return t->eos; }
int32_t bn_token_eot(const bn_tokenizer *t) { return t->eot; }
int bn_add_bos(const bn_tokenizer *t) { return t->add_bos; }

int bn_token_is_eog(const bn_tokenizer *t, int32_t id)
{
    for (int i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id) return 1;
    return 0;
}

/* A SentencePiece piece's text: spaces escaped as U+2581. */
int32_t bn_token_lookup(const bn_tokenizer *t, const char *text, size_t len)
{
    if (!t || (!text && len)) return -1;
    int32_t id = find_text(t, text ? text : "", len);
    if (id >= 0 || t->model != BN_TOK_SPM || !memchr(text, ' ', len) || len > 256) return id;
    char esc[3 * 256];
    size_t m = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') { memcpy(esc + m, "\xE2\x96\x81", 3); m += 3; }
        else esc[m++] = text[i];
    }
    return find_text(t, esc, m);
}

static int hex_digit(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* SentencePiece piece -> bytes (llama.cpp's llama_token_to_piece): BYTE
 * tokens <0xXX> give their byte, other pieces their text with U+2581 back to
 * a space. Returns the full length; copies at most cap bytes of it. */
static int spm_piece_bytes(const bn_tokenizer *t, int32_t id, int type, char *buf, int cap)
{
    const unsigned char *p = (const unsigned char *)t->bytes + t->off[id];
    uint32_t n = t->len[id];
    if (type == BN_TT_BYTE && n == 6 && p[0] == '<' && p[1] == '0' && p[2] == 'x' &&
        hex_digit(p[3]) >= 0 && hex_digit(p[4]) >= 0 && p[5] == '>') {
        if (buf && cap >= 1) buf[0] = (char)(hex_digit(p[3]) * 16 + hex_digit(p[4]));
        return 1;
    }
    if (type == BN_TT_USER_DEFINED || type == BN_TT_CONTROL || type == BN_TT_UNKNOWN) {
        if (buf && cap > 0) memcpy(buf, p, n < (uint32_t)cap ? n : (uint32_t)cap);
        return (int)n;
    }
    int o = 0;
    for (uint32_t i = 0; i < n; o++) {
        int meta = i + 3 <= n && p[i] == 0xE2 && p[i + 1] == 0x96 && p[i + 2] == 0x81;
        if (buf && o < cap) buf[o] = meta ? ' ' : (char)p[i];
        i += meta ? 3 : 1;
    }
    return o;
}

int bn_token_to_bytes(const bn_tokenizer *t, int32_t id, int special, char *buf, int cap)
{
    if (!t || id < 0 || id >= t->n_vocab) return -1;
    int type = t->type[id];
    if (type == BN_TT_UNUSED) return 0;
    if ((type == BN_TT_CONTROL || type == BN_TT_UNKNOWN) && !special) return 0;
    if (t->model == BN_TOK_SPM) {
        /* measure first, so a short buffer is never half written */
        int n = spm_piece_bytes(t, id, type, NULL, 0);
        if (buf && n <= cap) spm_piece_bytes(t, id, type, buf, cap);
        return n;
    }
    int n = (int)t->len[id];
    if (buf && n <= cap) memcpy(buf, t->bytes + t->off[id], (size_t)n);
    return n;
}

/* Does the (non-empty) printed piece of id start with a space? */
static int starts_with_space(const bn_tokenizer *t, int32_t id)
{
    const unsigned char *p = (const unsigned char *)t->bytes + t->off[id];
    uint32_t n = t->len[id];
    if (t->model == BN_TOK_SPM) {
        char c;
        return spm_piece_bytes(t, id, t->type[id], &c, 1) >= 1 && c == ' ';
    }
    return n > 0 && p[0] == ' ';
}

int bn_detokenize(const bn_tokenizer *t, const int32_t *ids, int n, int flags, char *out, int cap)
{
    if (!t || n < 0 || (!ids && n)) return -1;
    if (!out || cap < 0) cap = 0;
    /* a SentencePiece text starts with the space its first word carries,
     * unless BOS leads */
    int strip = t->add_space_prefix;
    if ((flags & BN_DETOK_REMOVE_SPECIAL) && t->add_bos && n > 0 && ids[0] == t->bos) {
        strip = 0;
        ids++;
        n--;
    }
    if ((flags & BN_DETOK_REMOVE_SPECIAL) && t->add_eos && n > 0 && ids[n - 1] == t->eos) n--;
    int special = (flags & BN_DETOK_UNPARSE_SPECIAL) != 0;
    long long total = 0;
    for (int i = 0; i < n; i++) {
        int k = bn_token_to_bytes(t, ids[i], special, NULL, 0);
        if (k < 0) return -1;
        int skip = strip && k > 0 && starts_with_space(t, ids[i]);  /* drop one */
        strip = 0;
        if (k - skip > 0) {
            if (total + k <= cap) {
                bn_token_to_bytes(t, ids[i], special, out + total, k);
                if (skip) memmove(out + total, out + total + 1, (size_t)(k - 1));
            }
            total += k - skip;
        }
        if (total > INT_MAX) return -1;
    }
    return (int)total;
}

/* ---- tokenize ------------------------------------------------------------------ */

typedef struct tok_run {
    const bn_tokenizer *t;
    const unsigned char *text;      /* the fragment's bytes */
    const uint32_t *off;            /* byte offset of each code point (+ end) */
    bn_bpe_scratch sc;
    bn_spm_scratch spm;
    bn_id_sink sink;
    bn_piece_cache cache;           /* only for long inputs */
    int32_t *tmp;                   /* ids of one piece on their way to the cache */
    size_t tmp_cap;
} tok_run;

/* Inputs at least this long cache merged pieces (see tok_cache.c). */
#define CACHE_MIN_LEN 16384

/* One piece: a single byte, the whole-piece vocabulary hit (LLaMA-3's
 * ignore_merges), a cached result, or BPE merging. */
static int on_piece(void *ctx, size_t a, size_t b)
{
    tok_run *r = ctx;
    const bn_tokenizer *t = r->t;
    const unsigned char *p = r->text + r->off[a];
    size_t n = r->off[b] - r->off[a];
    if (n == 1) {
        if (t->byte_id[p[0]] >= 0) bn_sink_put(&r->sink, t->byte_id[p[0]]);
        return 0;
    }
    uint64_t h = bn_tok_hash(p, n);
    if (t->ignore_merges) {
        int32_t id = bn_tok_find_h(t, p, n, h);
        if (id >= 0 && id < t->n_vocab) {
            bn_sink_put(&r->sink, id);
            return 0;
        }
    }
    if (!r->cache.slot) return bn_bpe_merge(t, &r->sc, p, n, &r->sink);

    int k;
    const int32_t *ids = bn_cache_get(&r->cache, p, n, h, &k);
    if (!ids) {
        if (n > r->tmp_cap) {
            int32_t *q = realloc(r->tmp, n * sizeof *q);
            if (!q) return -1;
            r->tmp = q;
            r->tmp_cap = n;
        }
        bn_id_sink one = { r->tmp, (int)n, 0 };
        if (n > INT_MAX || bn_bpe_merge(t, &r->sc, p, n, &one)) return -1;
        k = (int)one.n;
        bn_cache_put(&r->cache, p, n, h, r->tmp, k);
        ids = r->tmp;
    }
    for (int i = 0; i < k; i++) bn_sink_put(&r->sink, ids[i]);
    return 0;
}

/* Pre-tokenize and BPE one text fragment of valid UTF-8. */
static int tokenize_fragment(tok_run *r, const unsigned char *s, size_t n, uint32_t *cp,
                             uint32_t *off)
{
    size_t m = 0, i = 0;
    while (i < n) {
        uint32_t c;
        int k = s[i] < 0x80 ? (c = s[i], 1) : bn_utf8_decode(s + i, n - i, &c);
        if (k <= 0) { c = BN_UTF8_REPLACEMENT; k = 1; }   /* cannot happen: input is clean */
        cp[m] = c;
        off[m++] = (uint32_t)i;
        i += (size_t)k;
    }
    off[m] = (uint32_t)n;
    r->text = s;
    r->off = off;
    switch (r->t->pre) {
    case BN_PRE_LLAMA3: return bn_pretok_llama3(cp, m, on_piece, r);
    case BN_PRE_FALCON3:
    case BN_PRE_FALCON_E: return bn_pretok_falcon3(cp, m, on_piece, r);
    default: return bn_pretok_default(cp, m, on_piece, r);
    }
}

/* One raw-text fragment. Fragments alternate with special tokens, so each
 * is the first or follows a special token: SentencePiece puts a space in
 * front of every one. */
static int raw_fragment(tok_run *r, const unsigned char *s, size_t n, uint32_t *cp, uint32_t *off)
{
    const bn_tokenizer *t = r->t;
    if (t->model == BN_TOK_SPM)
        return bn_spm_fragment(t, &r->spm, r->cache.slot ? &r->cache : NULL, s, n,
                               t->add_space_prefix, &r->sink);
    return tokenize_fragment(r, s, n, cp, off);
}

/* Copy of text with every byte that does not start a valid UTF-8 sequence
 * replaced by U+FFFD (llama.cpp's convention: one U+FFFD per bad byte). */
static unsigned char *sanitize(const unsigned char *s, size_t n, size_t *out_n)
{
    if (n > SIZE_MAX / 3) return NULL;
    unsigned char *o = malloc(n * 3 + 1);
    if (!o) return NULL;
    size_t j = 0, i = 0;
    while (i < n) {
        uint32_t c;
        int k = s[i] < 0x80 ? 1 : bn_utf8_decode(s + i, n - i, &c);
        if (k > 0) {
            memcpy(o + j, s + i, (size_t)k);
            j += (size_t)k;
            i += (size_t)k;
        } else {
            o[j++] = 0xEF; o[j++] = 0xBF; o[j++] = 0xBD;
            i++;
        }
    }
    *out_n = j;
    return o;
}

int bn_tokenize(const bn_tokenizer *t, const char *text, size_t len,
                int add_bos, int parse_special, int32_t *out, int max)
{
    if (!t || (!text && len)) return -1;
    if (!out || max < 0) max = 0;
    const unsigned char *s = (const unsigned char *)(text ? text : "");
    unsigned char *clean = NULL;
    size_t n = len;
    if (bn_utf8_valid_len(s, len) != len) {
        clean = sanitize(s, len, &n);
        if (!clean) return -1;
        s = clean;
    }
    if (n >= UINT32_MAX) { free(clean); return -1; }

    tok_run r;
    memset(&r, 0, sizeof r);
    r.t = t;
    r.sink.out = out;
    r.sink.max = max;
    if (add_bos && t->bos >= 0) bn_sink_put(&r.sink, t->bos);
    if (n >= CACHE_MIN_LEN && bn_cache_init(&r.cache, n)) { free(clean); return -1; }

    /* code points and their offsets: BPE pre-tokenizers only */
    uint32_t *cp = NULL, *off = NULL;
    int rc = 0;
    if (t->model == BN_TOK_BPE) {
        cp = malloc((n + 1) * sizeof *cp);
        off = malloc((n + 1) * sizeof *off);
        rc = cp && off ? 0 : -1;
    }
    size_t frag = 0, i = 0;
    while (!rc && i < n) {
        int32_t id;
        size_t m;
        if (t->special_first[s[i]] && (m = trie_match(t, s + i, n - i, parse_special, &id))) {
            if (frag < i) rc = raw_fragment(&r, s + frag, i - frag, cp, off);
            bn_sink_put(&r.sink, id);
            i += m;
            frag = i;
        } else {
            i++;
        }
    }
    if (!rc && frag < n) rc = raw_fragment(&r, s + frag, n - frag, cp, off);

    free(cp);
    free(off);
    free(clean);
    bn_bpe_scratch_free(&r.sc);
    bn_spm_scratch_free(&r.spm);
    bn_cache_free(&r.cache);
    free(r.tmp);
    if (rc || r.sink.n > INT_MAX) return -1;
    return (int)r.sink.n;
}
