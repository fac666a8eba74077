/*
 * utf8.h - one UTF-8 character's length, checked (utf8.c).
 */
#pragma once

#include <stddef.h>

/* The length of the UTF-8 sequence at p (at most n bytes, n >= 1), or 0
 * if it is not valid: no overlong forms, no surrogates, nothing past
 * U+10FFFF. */
size_t utf8_char(const unsigned char *p, size_t n);
