/* Small helpers the library's files share (util.h). */
#include "util.h"

#include <stdio.h>

int bn_vset_err(char *err, size_t errlen, const char *fmt, va_list ap) {
    if (err && errlen) vsnprintf(err, errlen, fmt, ap);
    return -1;
}

int bn_set_err(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    bn_vset_err(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}
