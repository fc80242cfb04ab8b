/* Unicode helpers for the tokenizer: code point classes (\p{L}, \p{N},
 * \p{P}, White_Space), strict UTF-8 decoding/encoding, and the GPT-2
 * byte <-> code point map used by byte-level BPE vocabularies. */
#ifndef BN_UNICODE_H
#define BN_UNICODE_H

#include <stddef.h>
#include <stdint.h>

/* Class byte: low 3 bits = general category group, bit 3 = White_Space. */
enum bn_uc_category {
    BN_UC_OTHER = 0,        /* C* and unassigned */
    BN_UC_LETTER = 1,       /* L* */
    BN_UC_NUMBER = 2,       /* N* */
    BN_UC_PUNCT = 3,        /* P* */
    BN_UC_MARK = 4,         /* M* */
    BN_UC_SYMBOL = 5,       /* S* */
    BN_UC_SEPARATOR = 6     /* Z* */
};
#define BN_UC_CAT_MASK 7u
#define BN_UC_SPACE 8u

/* Generated tables (src/unicode_tables.c): two-level lookup in blocks of 128. */
extern const uint16_t bn_uc_stage1[0x110000 >> 7];
extern const uint8_t bn_uc_stage2[];

static inline unsigned bn_uc_class(uint32_t cp)
{
    if (cp > 0x10FFFF) return BN_UC_OTHER;
    return bn_uc_stage2[(size_t)bn_uc_stage1[cp >> 7] * 128 + (cp & 127)];
}
static inline int bn_uc_is_letter(uint32_t cp) { return (bn_uc_class(cp) & BN_UC_CAT_MASK) == BN_UC_LETTER; }
static inline int bn_uc_is_number(uint32_t cp) { return (bn_uc_class(cp) & BN_UC_CAT_MASK) == BN_UC_NUMBER; }
static inline int bn_uc_is_space(uint32_t cp) { return (bn_uc_class(cp) & BN_UC_SPACE) != 0; }

#define BN_UTF8_REPLACEMENT 0xFFFDu

/* Length (1..4) of the valid UTF-8 sequence at s[0..n) with its code point
 * in *cp, or 0 when s does not start with a complete, valid sequence
 * (overlong forms, surrogates and code points above U+10FFFF are invalid). */
int bn_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* Writes the UTF-8 form of a valid code point; returns its length (1..4). */
int bn_utf8_encode(uint32_t cp, unsigned char out[4]);

/* Length of the longest prefix of s[0..n) that could still become a valid
 * sequence with more bytes (0 if s[0] can only be an error, or n == 0);
 * this is the "maximal subpart" of the WHATWG / Unicode replacement rule. */
int bn_utf8_partial(const unsigned char *s, size_t n);

/* Number of bytes at the start of s[0..n) that form valid UTF-8. */
size_t bn_utf8_valid_len(const unsigned char *s, size_t n);

/* GPT-2 byte-level alphabet: byte -> code point (U+0021..U+0143). */
uint32_t bn_gpt2_byte_to_cp(unsigned char b);
/* Inverse map: the byte, or -1 when cp is not in the alphabet. */
int bn_gpt2_cp_to_byte(uint32_t cp);

#endif
