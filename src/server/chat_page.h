/* The chat page served at "/" (src/server/chat_page.html), compiled into
 * the binary by src/server/embed.cmake. */
#ifndef BN_CHAT_PAGE_H
#define BN_CHAT_PAGE_H

#include <stddef.h>

extern const unsigned char bn_chat_page[];
extern const size_t bn_chat_page_len;

#endif
