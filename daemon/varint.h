/*
 * varint.h - the numbers of dagd's compact records (event-record.c,
 * store-state.c): unsigned LEB128, seven bits a byte, the low first, the
 * top bit set on every byte but the last.  At most ten bytes.
 */
#ifndef DAGD_VARINT_H
#define DAGD_VARINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

#endif
