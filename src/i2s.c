/* I2_S encode / decode (layout in i2s.h, SPEC 2.2). */
#include "i2s.h"

#include <string.h>

void bn_i2s_encode_block(const int8_t *w, uint8_t *out32) {
    for (int p = 0; p < 32; p++) {
        out32[p] = (uint8_t)(((w[p] + 1) << 6) | ((w[32 + p] + 1) << 4) |
                             ((w[64 + p] + 1) << 2) | (w[96 + p] + 1));
    }
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
    static const int8_t val[4] = { -1, 0, 1, 0 };
    for (uint64_t b = 0; b < n / BN_I2S_BLOCK; b++) {
        const uint8_t *src = payload + b * 32;
        int8_t *dst = w + b * BN_I2S_BLOCK;
        for (int p = 0; p < 32; p++) {
            uint8_t byte = src[p];
            dst[p] = val[(byte >> 6) & 3];
            dst[32 + p] = val[(byte >> 4) & 3];
            dst[64 + p] = val[(byte >> 2) & 3];
            dst[96 + p] = val[byte & 3];
        }
    }
}

float bn_i2s_scale(const uint8_t *tensor, uint64_t n) {
    float s;
    memcpy(&s, tensor + bn_i2s_payload_bytes(n), sizeof s);
    return s;
}
