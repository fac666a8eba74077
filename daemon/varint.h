/*
 * varint.h - the numbers and strings of dagd's compact records
 * (event-record.c, store-state.c).  A number is unsigned LEB128, seven bits
 * a byte, the low first, the top bit set on every byte but the last: at
 * most ten bytes.  A string is a number, 0 for null, else its length + 1,
 * then its bytes (no NUL among them).
 */
#ifndef DAGD_VARINT_H
#define DAGD_VARINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum { VARINT_MAX = 10 };

/* v written at b (room for VARINT_MAX bytes): how many bytes it took */
static inline size_t varint_put(unsigned char *b, uint64_t v)
{
	size_t n = 0;

	do {
		b[n] = (unsigned char) (v & 0x7f);
		v >>= 7;
		if (v)
			b[n] |= 0x80;
		n++;
	} while (v);
	return n;
}

/* The number at *p, before end, into *ret and *p past it; false if it
 * runs past end or over 64 bits. */
static inline bool varint_get(const char **p, const char *end, uint64_t *ret)
{
	uint64_t v = 0;

	for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
		unsigned char c = (unsigned char) *(*p)++;

		v |= (uint64_t) (c & 0x7f) << shift;
		if (!(c & 0x80)) {
			*ret = v;
			return true;
		}
	}
	return false;
}

/* s (n bytes; NULL: null) written at b (room for VARINT_MAX + n bytes):
 * how many bytes it took */
static inline size_t varint_put_str(unsigned char *b, const char *s, size_t n)
{
	size_t k;

	if (!s) {
		*b = 0;
		return 1;
	}
	k = varint_put(b, (uint64_t) n + 1);
	memcpy(b + k, s, n);
	return k + n;
}

/* The string at *p, before end: *s at its bytes within [*p, end) (NULL for
 * null) and *n their length, *p past it; false if it runs past end or
 * holds a NUL. */
static inline bool varint_get_str(const char **p, const char *end, const char **s, size_t *n)
{
	uint64_t u;

	if (!varint_get(p, end, &u))
		return false;
	*s = NULL;
	*n = 0;
	if (!u)
		return true;
	if (--u > (uint64_t) (end - *p) || memchr(*p, 0, u))
		return false;
	*s = *p;
	*n = u;
	*p += u;
	return true;
}

#endif
