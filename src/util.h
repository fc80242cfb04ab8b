/* Small helpers the library's files share (internal; not in bitnet.h). */
#ifndef BN_UTIL_H
#define BN_UTIL_H

#include <stdarg.h>
#include <stddef.h>

/* Formats a one-line error message into err[errlen] (nothing when err is
 * NULL or errlen is 0) and returns -1, so that a failing function can
 * `return bn_set_err(err, errlen, "what: %d", x);`. */
int bn_set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int bn_vset_err(char *err, size_t errlen, const char *fmt, va_list ap);

static inline int imin(int a, int b) {
    return a < b ? a : b;
}

static inline int imax(int a, int b) {
    return a > b ? a : b;
}

#endif
