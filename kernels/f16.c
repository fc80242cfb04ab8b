/* Scalar IEEE half <-> single conversion, bit-exact with x86 F16C
 * (vcvtph2ps / vcvtps2ph with round-to-nearest-even): every variant's SIMD
 * conversion must agree with these on all inputs (tests/test_kernels.c). */
#include <string.h>

#include "kernels.h"

static float bits_to_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t f32_to_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

float bn_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;

    if (exp == 0x1f) {
        /* inf stays inf; a NaN keeps its payload and comes out quiet, as
         * F16C does. */
        if (mant == 0) return bits_to_f32(sign | 0x7f800000u);
        return bits_to_f32(sign | 0x7fc00000u | (mant << 13));
    }
    if (exp == 0) {
        if (mant == 0) return bits_to_f32(sign);
        /* Subnormal: mant * 2^-24, exact in float. Normalise the mantissa. */
        int e = -1;
        do {
            mant <<= 1;
            e++;
        } while ((mant & 0x400u) == 0);
        mant &= 0x3ffu;
        return bits_to_f32(sign | ((uint32_t)(112 - e) << 23) | (mant << 13));
    }
    return bits_to_f32(sign | ((exp + 112u) << 23) | (mant << 13));
}

uint16_t bn_f32_to_f16(float f) {
    uint32_t x = f32_to_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    x &= 0x7fffffffu;

    if (x >= 0x7f800000u) {
        if (x == 0x7f800000u) return sign | 0x7c00u;
        /* NaN: quiet it and keep the top payload bits (F16C behaviour). */
        return (uint16_t)(sign | 0x7e00u | ((x >> 13) & 0x3ffu));
    }
    uint32_t e = x >> 23;
    if (e >= 113) {
        /* Normal range. Rebias, truncate, then round to nearest even on the
         * 13 dropped bits; a carry out of the mantissa bumps the exponent and
         * past the largest finite value gives exactly inf (0x7c00). */
        if (e > 142) return sign | 0x7c00u;
        uint32_t h = ((e - 112) << 10) | ((x >> 13) & 0x3ffu);
        uint32_t rem = x & 0x1fffu;
        if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;
        return (uint16_t)(sign | h);
    }
    /* Subnormal (or zero) result: value = m * 2^(e-150) with the implicit bit,
     * counted in units of 2^-24 it is m >> (126 - e), rounded to nearest even.
     * A carry into 0x400 is the smallest normal, encoded correctly as is. */
    uint32_t shift = 126 - e;
    if (shift > 24) return sign;            /* below 2^-25: rounds to zero */
    uint32_t m = (x & 0x7fffffu) | (e ? 0x800000u : 0);
    uint32_t q = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1u);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) q++;
    return (uint16_t)(sign | q);
}
