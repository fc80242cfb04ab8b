/* I2_S ternary encoding (docs/FORMAT.md, I2_S and I2_S scale): 2-bit codes
 * 0/1/2 = -1/0/+1 (3 reads as 0), 128-weight blocks of 32 bytes, byte 32b+p
 * holding weights p, 32+p, 64+p, 96+p of the block in bits 7-6, 5-4, 3-2,
 * 1-0, then a 32-byte tail whose first 4 bytes are the tensor's float scale.
 *
 * The one definition of the layout: every scalar reader and writer (the
 * loader, the synthetic writer, the reference kernel, repacks, tests) calls
 * these; SIMD repacks decode whole blocks in vectors and say which of these
 * they follow. */
#ifndef BN_I2S_H
#define BN_I2S_H

#include <stddef.h>
#include <stdint.h>

#define BN_I2S_BLOCK 128            /* weights per block */
#define BN_I2S_TAIL 32              /* bytes after the payload (scale + garbage) */

/* Payload bytes (n/4) and whole-tensor bytes (n/4 + 32) for n weights. */
static inline uint64_t bn_i2s_payload_bytes(uint64_t n) { return n / 4; }
static inline uint64_t bn_i2s_tensor_bytes(uint64_t n) { return n / 4 + BN_I2S_TAIL; }

/* Where weight f (flat row-major index) lives: payload byte and bit shift.
 * The flat index also covers rows that do not start on a block (docs/FORMAT.md,
 * Unaligned I2_S rows). */
static inline uint64_t bn_i2s_byte_index(uint64_t f) {
    return (f / BN_I2S_BLOCK) * 32 + (f % 32);
}
static inline unsigned bn_i2s_shift(uint64_t f) {
    return 6u - 2u * (unsigned)((f % BN_I2S_BLOCK) / 32);
}
/* The raw 2-bit code of weight f (0..3). */
static inline unsigned bn_i2s_code(const uint8_t *payload, uint64_t f) {
    return (payload[bn_i2s_byte_index(f)] >> bn_i2s_shift(f)) & 3u;
}
/* The ternary value of a code: -1, 0 or +1 (the unused code 3 reads as 0). */
static inline int bn_i2s_code_value(unsigned code) {
    return code == 3u ? 0 : (int)code - 1;
}
/* The ternary value of weight f. */
static inline int bn_i2s_weight(const uint8_t *payload, uint64_t f) {
    return bn_i2s_code_value(bn_i2s_code(payload, f));
}
/* A payload byte with every code 3 rewritten as 1 (both read as 0), so
 * that each of its four codes is w + 1 in 0..2: the form multiply-add
 * kernels use (Σ code·q − Σ q = Σ w·q). A field holds 3 where both its bits
 * are set; that low bit, moved up, clears the high one. */
static inline uint8_t bn_i2s_canonical_byte(uint8_t b) {
    const unsigned both = b & (b >> 1) & 0x55u;
    return (uint8_t)(b & ~(both << 1));
}

/* Encode n ternary values (each -1, 0 or +1; n % 128 == 0) into n/4 payload
 * bytes. Returns 0, or -1 if n is not a whole number of blocks or a value is
 * outside {-1,0,+1} (out is then unspecified). */
int bn_i2s_encode(const int8_t *w, uint64_t n, uint8_t *out);

/* Encode a whole tensor: payload then the 32-byte tail (scale, then zeros);
 * out holds bn_i2s_tensor_bytes(n) bytes. Same return as bn_i2s_encode. */
int bn_i2s_encode_tensor(const int8_t *w, uint64_t n, float scale, uint8_t *out);

/* Encode one 128-weight block (values -1..+1, not checked) into 32 bytes. */
void bn_i2s_encode_block(const int8_t *w, uint8_t *out32);

/* Decode n weights (n % 128 == 0) from the payload to -1/0/+1. */
void bn_i2s_decode(const uint8_t *payload, uint64_t n, int8_t *w);

/* The float scale stored after the payload of an n-weight tensor
 * (read with memcpy: the tail is not necessarily 4-byte aligned). */
float bn_i2s_scale(const uint8_t *tensor, uint64_t n);

#endif
