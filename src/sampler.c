/* Token sampler: llama-cli's default chain (docs/CHAT.md, Sampling)
 *   penalties -> top-k -> top-p -> min-p -> temperature -> softmax -> draw
 * with greedy argmax when temp <= 0. Every buffer is sized for the vocabulary
 * in bn_sampler_new, so sampling a token never allocates. The random draw
 * uses our own xoshiro256** seeded through splitmix64: same seed, same
 * tokens, on any machine. */
#include "bitnet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct bn_sampler {
    bn_sampler_params p;
    int n_vocab;
    uint32_t seed;                  /* the seed actually in use */
    uint64_t rng[4];                /* xoshiro256** state */
    int32_t *ids;                   /* candidates: ids ... */
    float *logit;                   /* ... and their (working) logits */
    float *prob;                    /* probabilities of the final candidates */
    int32_t *count;                 /* occurrences in the penalty window */
    int32_t *hist;                  /* ring of the last repeat_last_n accepted */
    int hist_cap, hist_len, hist_head;
    int n_sorted;                   /* candidates sorted best first by the last sample */
    int n_cand;                     /* of them, those the draw chose from (prob[] holds theirs) */
};

bn_sampler_params bn_sampler_default_params(void) {
    bn_sampler_params p;
    p.seed = BN_SEED_RANDOM;
    p.temp = 0.8f;
    p.top_k = 40;
    p.top_p = 0.95f;
    p.min_p = 0.05f;
    p.repeat_penalty = 1.0f;
    p.repeat_last_n = 64;
    p.freq_penalty = 0.0f;
    p.presence_penalty = 0.0f;
    return p;
}

/* ---- PRNG ------------------------------------------------------------------ */
static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t xoshiro_next(uint64_t s[4]) {
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

static void rng_seed(bn_sampler *s, uint32_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&x);
}

/* Uniform double in [0, 1) from the top 53 bits. */
static double rng_uniform(bn_sampler *s) {
    return (double)(xoshiro_next(s->rng) >> 11) * (1.0 / 9007199254740992.0);
}

/* A seed for BN_SEED_RANDOM: /dev/urandom, else clock and pid mixed.
 * Never returns BN_SEED_RANDOM itself, so the printed seed replays. */
static uint32_t random_seed(void) {
    uint32_t v = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    int ok = f && fread(&v, sizeof v, 1, f) == 1;
    if (f) fclose(f);
    if (!ok) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec ^
                     ((uint64_t)getpid() << 32);
        v = (uint32_t)splitmix64(&x);
    }
    if (v == BN_SEED_RANDOM) v = 0x5eed;
    return v;
}

/* ---- life cycle ------------------------------------------------------------- */
bn_sampler *bn_sampler_new(const bn_sampler_params *p, int n_vocab) {
    if (n_vocab <= 0) return NULL;
    bn_sampler *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->p = p ? *p : bn_sampler_default_params();
    s->n_vocab = n_vocab;
    s->hist_cap = s->p.repeat_last_n > 0 ? s->p.repeat_last_n : 0;
    s->ids = malloc((size_t)n_vocab * sizeof *s->ids);
    s->logit = malloc((size_t)n_vocab * sizeof *s->logit);
    s->prob = malloc((size_t)n_vocab * sizeof *s->prob);
    s->count = calloc((size_t)n_vocab, sizeof *s->count);
    s->hist = malloc((size_t)(s->hist_cap > 0 ? s->hist_cap : 1) * sizeof *s->hist);
    if (!s->ids || !s->logit || !s->prob || !s->count || !s->hist) {
        bn_sampler_free(s);
        return NULL;
    }
    s->seed = s->p.seed == BN_SEED_RANDOM ? random_seed() : s->p.seed;
    rng_seed(s, s->seed);
    return s;
}

void bn_sampler_free(bn_sampler *s) {
    if (!s) return;
    free(s->ids);
    free(s->logit);
    free(s->prob);
    free(s->count);
    free(s->hist);
    free(s);
}

uint32_t bn_sampler_seed(const bn_sampler *s) { return s->seed; }

/* Re-seeds with the seed chosen at creation (even a random one), so a chat
 * replayed with the printed seed gives the same replies turn after turn. */
void bn_sampler_reset(bn_sampler *s) {
    s->hist_len = 0;
    s->hist_head = 0;
    rng_seed(s, s->seed);
}

void bn_sampler_accept(bn_sampler *s, int32_t token) {
    if (s->hist_cap == 0 || token < 0 || token >= s->n_vocab) return;
    s->hist[s->hist_head] = token;
    s->hist_head = (s->hist_head + 1) % s->hist_cap;
    if (s->hist_len < s->hist_cap) s->hist_len++;
}

/* ---- the chain -------------------------------------------------------------- */
static int penalties_active(const bn_sampler_params *p) {
    return p->repeat_penalty != 1.0f || p->freq_penalty != 0.0f || p->presence_penalty != 0.0f;
}

/* Penalize, in the candidate array (still indexed by token id), every token
 * seen in the window: repeat penalty first, then frequency and presence. */
static void apply_penalties(bn_sampler *s) {
    if (s->hist_len == 0 || !penalties_active(&s->p)) return;
    for (int i = 0; i < s->hist_len; i++) s->count[s->hist[i]]++;
    for (int i = 0; i < s->hist_len; i++) {
        int32_t id = s->hist[i];
        int c = s->count[id];
        if (c == 0) continue;       /* already handled (duplicate in the window) */
        float l = s->logit[id];
        l = l <= 0.0f ? l * s->p.repeat_penalty : l / s->p.repeat_penalty;
        l -= (float)c * s->p.freq_penalty + s->p.presence_penalty;
        s->logit[id] = l;
        s->count[id] = 0;
    }
}

/* Candidate a ranks before b: larger logit, then lower id (deterministic). */
static int better(float la, int32_t ia, float lb, int32_t ib) {
    return la > lb || (la == lb && ia < ib);
}

static void swap_cand(bn_sampler *s, int a, int b) {
    int32_t ti = s->ids[a]; s->ids[a] = s->ids[b]; s->ids[b] = ti;
    float tl = s->logit[a]; s->logit[a] = s->logit[b]; s->logit[b] = tl;
}

/* Heap sift-down over [0, n): a min-heap in "better" order, i.e. the root
 * is the worst candidate kept. */
static void sift_down(bn_sampler *s, int i, int n) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && better(s->logit[w], s->ids[w], s->logit[l], s->ids[l])) w = l;
        if (r < n && better(s->logit[w], s->ids[w], s->logit[r], s->ids[r])) w = r;
        if (w == i) return;
        swap_cand(s, i, w);
        i = w;
    }
}

/* Keep the best k of n candidates, sorted best first (heap select + heap
 * sort in place: O(n log k), no allocation). Returns k. */
static int select_top(bn_sampler *s, int n, int k) {
    if (k > n) k = n;
    for (int i = k / 2 - 1; i >= 0; i--) sift_down(s, i, k);
    for (int i = k; i < n; i++) {
        if (better(s->logit[i], s->ids[i], s->logit[0], s->ids[0])) {
            s->ids[0] = s->ids[i];
            s->logit[0] = s->logit[i];
            sift_down(s, 0, k);
        }
    }
    /* heap sort: repeatedly move the worst to the end -> best first */
    for (int end = k - 1; end > 0; end--) {
        swap_cand(s, 0, end);
        sift_down(s, 0, end);
    }
    return k;
}

/* Softmax of the first n candidate logits divided by temp, into prob[];
 * float arithmetic as llama.cpp (exp(l - max), float sum, divide). */
static void softmax(bn_sampler *s, int n, float temp) {
    float mx = s->logit[0] / temp;
    for (int i = 1; i < n; i++)
        if (s->logit[i] / temp > mx) mx = s->logit[i] / temp;
    float sum = 0.0f;
    for (int i = 0; i < n; i++) {
        s->prob[i] = expf(s->logit[i] / temp - mx);
        sum += s->prob[i];
    }
    for (int i = 0; i < n; i++) s->prob[i] /= sum;
}

int32_t bn_sampler_sample(bn_sampler *s, const float *logits) {
    const int nv = s->n_vocab;
    memcpy(s->logit, logits, (size_t)nv * sizeof *s->logit);
    apply_penalties(s);

    s->n_sorted = s->n_cand = 0;
    if (s->p.temp <= 0.0f) {        /* greedy: first strictly largest logit */
        int32_t best = 0;
        for (int i = 1; i < nv; i++)
            if (s->logit[i] > s->logit[best]) best = i;
        return best;
    }

    for (int i = 0; i < nv; i++) s->ids[i] = i;
    int k = (s->p.top_k > 0 && s->p.top_k < nv) ? s->p.top_k : nv;
    int n = select_top(s, nv, k);   /* sorted best first from here on */

    if (s->p.top_p < 1.0f) {        /* smallest prefix with cumulative >= p */
        softmax(s, n, 1.0f);
        float cum = 0.0f;
        for (int i = 0; i < n; i++) {
            cum += s->prob[i];
            if (cum >= s->p.top_p) { n = i + 1; break; }
        }
    }
    if (s->p.min_p > 0.0f && s->p.min_p <= 1.0f) {  /* logit >= max + ln(p) */
        float floor_l = s->logit[0] + logf(s->p.min_p);
        int keep = 1;
        while (keep < n && s->logit[keep] >= floor_l) keep++;
        n = keep;
    }

    softmax(s, n, s->p.temp);       /* temperature after the filters */
    s->n_sorted = k;
    s->n_cand = n;
    double total = 0.0;
    for (int i = 0; i < n; i++) total += (double)s->prob[i];
    double r = rng_uniform(s) * total, cum = 0.0;
    for (int i = 0; i < n; i++) {
        cum += (double)s->prob[i];
        if (r < cum) return s->ids[i];
    }
    return s->ids[n - 1];
}

/* llama-server's n_probs: after a draw, the candidates it chose from with
 * their probabilities, then the next best of top-k with 0; after a greedy
 * pick, the max largest penalized logits softmaxed among themselves (that
 * server's greedy chain: top-k n_probs, softmax). The greedy case sorts
 * the sampler's scratch once; a second call gives the same. */
int bn_sampler_candidates(bn_sampler *s, int max, int32_t *ids, float *probs) {
    if (max <= 0) return 0;
    if (s->p.temp <= 0.0f && s->n_sorted == 0) {
        for (int i = 0; i < s->n_vocab; i++) s->ids[i] = i;     /* logit[] is by id here */
        s->n_sorted = s->n_cand = select_top(s, s->n_vocab, max);
        softmax(s, s->n_cand, 1.0f);
    }
    const int n = max < s->n_sorted ? max : s->n_sorted;
    for (int i = 0; i < n; i++) {
        ids[i] = s->ids[i];
        probs[i] = i < s->n_cand ? s->prob[i] : 0.0f;
    }
    return n;
}

/* The history ring holds exactly the window's ids (in any order), which is
 * all apply_penalties reads beside the top candidates. */
int bn_sampler_logits_needed(const bn_sampler *s, const int32_t **ids, int *n_ids) {
    *ids = s->hist;
    *n_ids = penalties_active(&s->p) ? s->hist_len : 0;
    if (s->p.temp <= 0.0f) return 1;
    return s->p.top_k > 0 && s->p.top_k < s->n_vocab ? s->p.top_k : 0;
}
