/* I2_S encode / decode, by the layout functions of i2s.h. */
#include "i2s.h"

#include <string.h>

void bn_i2s_encode_block(const int8_t *w, uint8_t *out32) {
    memset(out32, 0, 32);
    for (int j = 0; j < BN_I2S_BLOCK; j++)
        out32[bn_i2s_byte_index((uint64_t)j)] |= (uint8_t)((w[j] + 1) << bn_i2s_shift((uint64_t)j));
}

int bn_i2s_encode(const int8_t *w, uint64_t n, uint8_t *out) {
    if (n % BN_I2S_BLOCK != 0)
        return -1;
    for (uint64_t i = 0; i < n; i++)
        if (w[i] < -1 || w[i] > 1)
            return -1;
    for (uint64_t b = 0; b < n / BN_I2S_BLOCK; b++)
        bn_i2s_encode_block(w + b * BN_I2S_BLOCK, out + b * 32);
    return 0;
}

int bn_i2s_encode_tensor(const int8_t *w, uint64_t n, float scale, uint8_t *out) {
    if (bn_i2s_encode(w, n, out) != 0)
        return -1;
    uint8_t *tail = out + bn_i2s_payload_bytes(n);
    memset(tail, 0, BN_I2S_TAIL);
    memcpy(tail, &scale, sizeof scale);
    return 0;
}

void bn_i2s_decode(const uint8_t *payload, uint64_t n, int8_t *w) {
    for (uint64_t f = 0; f < n; f++) w[f] = (int8_t)bn_i2s_weight(payload, f);
}

float bn_i2s_scale(const uint8_t *tensor, uint64_t n) {
    float s;
    memcpy(&s, tensor + bn_i2s_payload_bytes(n), sizeof s);
    return s;
}
