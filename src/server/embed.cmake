# Turns a file into a C array at build time, with nothing but CMake:
#   cmake -DIN=file -DOUT=file.c -DNAME=symbol -DHEADER=name.h -P embed.cmake
# defines `const unsigned char NAME[]` (the bytes and a NUL after them, so
# the array is never empty) and `const size_t NAME_len` (without the NUL).
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" n_hex)
math(EXPR n "${n_hex} / 2")
# 16 bytes a line, "0xAB," each (CMake's regex has no {n}: spell the 32 digits)
string(REPEAT "[0-9a-f]" 32 line)
string(REGEX REPLACE "(${line})" "\\1\n    " hex "${hex}")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE "${OUT}"
"/* Generated from ${IN} by embed.cmake: do not edit. */
#include <stddef.h>

#include \"${HEADER}\"

const unsigned char ${NAME}[] = {
    ${bytes}0x00
};
const size_t ${NAME}_len = ${n};
")
