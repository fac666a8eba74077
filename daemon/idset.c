/*
 * idset.c - a set of task ids kept in order (see idset.h), as a roaring
 * bitmap does it.
 *
 * An id's high part (id >> 16) is the key of the container that holds its
 * low 16 bits; the containers sit in an array sorted by key, none empty.  A
 * container of few ids keeps them as a sorted array of uint16_t (2 bytes an
 * id, in an allocation at most twice their size); past ARRAY_MAX it becomes
 * a bitmap of 65,536 bits, 8 KiB whatever it holds, which is no more than
 * the full array was.  A bitmap goes back to an array only below
 * ARRAY_MAX / 2 (so at 4 bytes an id at worst), not as soon as the ids
 * would fit one: ids added and removed at the border do not convert it
 * each time.
 *
 * Negative ids and ids past 2^48 never occur but are kept as well: the key
 * is the id shifted in 64 bits (arithmetically, as gcc and clang shift a
 * signed number), and key * 65536 + low gives the id back.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "idset.h"

#define ARRAY_MAX 4096                  /* ids an array holds: 8 KiB, as a bitmap */
#define ARRAY_MIN 4                     /* the smallest array allocated */
#define WORDS (65536 / 64)              /* a bitmap's words */

struct idcont {
	int64_t key;                    /* its ids' id >> 16 */
	uint32_t n;                     /* ids held */
	uint32_t cap;                   /* an array's room; 0 for a bitmap */
	union {
		uint16_t *low;          /* cap of them, n used, sorted */
		uint64_t *bits;         /* WORDS of them */
	};
};

static void *grow(void *p, size_t size)
{
	p = realloc(p, size);
	if (!p)
		abort();
	return p;
}

/* The first container whose key is >= key, or s->n.  (Ids come and go
 * mostly at the ends: the last container is looked at first.) */
static size_t cont_for(const struct idset *s, int64_t key)
{
	size_t lo = 0, hi = s->n;

	if (hi > 0 && s->c[hi - 1].key <= key)
		return s->c[hi - 1].key == key ? hi - 1 : hi;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->c[mid].key < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The first position in an array container whose low is >= low.  (Ids
 * are added in order and leave in order, mostly: the ends first.) */
static size_t pos_in(const struct idcont *c, unsigned low)
{
	size_t lo = 0, hi = c->n;

	if (hi == 0 || c->low[hi - 1] < low)
		return hi;
	if (c->low[0] >= low)
		return 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->low[mid] < low)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The smallest low in c that is >= low, or -1 if none. */
static int cont_next(const struct idcont *c, unsigned low)
{
	size_t w = low / 64;
	uint64_t b;

	if (c->cap) {
		size_t i = pos_in(c, low);

		return i < c->n ? c->low[i] : -1;
	}
	b = c->bits[w] & (~UINT64_C(0) << (low % 64));
	while (!b) {
		if (++w == WORDS)
			return -1;
		b = c->bits[w];
	}
	return w * 64 + __builtin_ctzll(b);
}

static void to_bitmap(struct idcont *c)
{
	uint64_t *bits = calloc(WORDS, sizeof(*bits));

	if (!bits)
		abort();
	for (uint32_t i = 0; i < c->n; i++)
		bits[c->low[i] / 64] |= UINT64_C(1) << (c->low[i] % 64);
	free(c->low);
	c->bits = bits;
	c->cap = 0;
}

/* Below ARRAY_MAX / 2 ids: an array with room for ARRAY_MAX / 2. */
static void to_array(struct idcont *c)
{
	uint16_t *low = grow(NULL, ARRAY_MAX / 2 * sizeof(*low));
	uint32_t n = 0;

	for (size_t w = 0; w < WORDS; w++)
		for (uint64_t b = c->bits[w]; b; b &= b - 1)
			low[n++] = w * 64 + __builtin_ctzll(b);
	free(c->bits);
	c->low = low;
	c->cap = ARRAY_MAX / 2;
}

/* An array's room for n ids and more: half as many again, so that it is
 * within twice its ids after it grows or shrinks (it shrinks at half full),
 * and a few adds and removes do not resize it each time. */
static uint32_t room(uint32_t n)
{
	uint32_t cap = n + n / 2;

	return cap < ARRAY_MIN ? ARRAY_MIN : cap > ARRAY_MAX ? ARRAY_MAX : cap;
}

/* Whether low was not in c (and now is). */
static bool cont_add(struct idcont *c, unsigned low)
{
	uint64_t bit = UINT64_C(1) << (low % 64);

	if (c->cap) {
		size_t i = pos_in(c, low);

		if (i < c->n && c->low[i] == low)
			return false;
		if (c->n < ARRAY_MAX) {
			if (c->n == c->cap) {
				c->cap = room(c->cap);
				c->low = grow(c->low, c->cap * sizeof(*c->low));
			}
			memmove(c->low + i + 1, c->low + i, (c->n - i) * sizeof(*c->low));
			c->low[i] = low;
			c->n++;
			return true;
		}
		to_bitmap(c);
	}
	if (c->bits[low / 64] & bit)
		return false;
	c->bits[low / 64] |= bit;
	c->n++;
	return true;
}

/* Whether low was in c (and now is not). */
static bool cont_del(struct idcont *c, unsigned low)
{
	uint64_t bit = UINT64_C(1) << (low % 64);

	if (c->cap) {
		size_t i = pos_in(c, low);

		if (i == c->n || c->low[i] != low)
			return false;
		memmove(c->low + i, c->low + i + 1, (c->n - i - 1) * sizeof(*c->low));
		c->n--;
		if (c->cap > ARRAY_MIN && c->n <= c->cap / 2) {
			c->cap = room(c->n);
			c->low = grow(c->low, c->cap * sizeof(*c->low));
		}
		return true;
	}
	if (!(c->bits[low / 64] & bit))
		return false;
	c->bits[low / 64] &= ~bit;
	c->n--;
	if (c->n < ARRAY_MAX / 2)
		to_array(c);
	return true;
}

static void cont_free(struct idcont *c)
{
	free(c->cap ? (void *) c->low : (void *) c->bits);
}

void idset_add(struct idset *s, int64_t id)
{
	int64_t key = id >> 16;
	size_t k = cont_for(s, key);

	if (k == s->n || s->c[k].key != key) {
		if (s->n == s->cap) {
			s->cap = s->n + s->n / 2 + 1;
			s->c = grow(s->c, s->cap * sizeof(*s->c));
		}
		memmove(s->c + k + 1, s->c + k, (s->n - k) * sizeof(*s->c));
		s->c[k] = (struct idcont) {
			.key = key,
			.cap = ARRAY_MIN,
			.low = grow(NULL, ARRAY_MIN * sizeof(uint16_t)),
		};
		s->n++;
	}
	if (cont_add(&s->c[k], id & 0xffff))
		s->count++;
}

void idset_del(struct idset *s, int64_t id)
{
	int64_t key = id >> 16;
	size_t k = cont_for(s, key);

	if (k == s->n || s->c[k].key != key || !cont_del(&s->c[k], id & 0xffff))
		return;
	s->count--;
	if (s->c[k].n > 0)
		return;
	cont_free(&s->c[k]);
	memmove(s->c + k, s->c + k + 1, (s->n - k - 1) * sizeof(*s->c));
	/* the containers' room kept within twice their number, as an array's;
	 * an emptied set holds nothing (a project has a set for each status,
	 * most of them empty) */
	if (--s->n == 0)
		idset_free(s);
	else if (s->n <= s->cap / 2) {
		s->cap = s->n + s->n / 2 + 1;
		s->c = grow(s->c, s->cap * sizeof(*s->c));
	}
}

int64_t idset_next(const struct idset *s, int64_t after)
{
	int64_t key;
	unsigned low;

	if (after == INT64_MAX)
		return 0;
	key = (after + 1) >> 16;
	low = (after + 1) & 0xffff;
	/* in the container of after + 1, or else the first of the next one
	 * (none is empty) */
	for (size_t k = cont_for(s, key); k < s->n; k++) {
		int l = cont_next(&s->c[k], s->c[k].key == key ? low : 0);

		if (l >= 0)
			return s->c[k].key * 65536 + l;
	}
	return 0;
}

void idset_free(struct idset *s)
{
	for (size_t k = 0; k < s->n; k++)
		cont_free(&s->c[k]);
	free(s->c);
	*s = (struct idset) { 0 };
}

size_t idset_bytes(const struct idset *s)
{
	size_t b = s->cap * sizeof(*s->c);

	for (size_t k = 0; k < s->n; k++)
		b += s->c[k].cap ? s->c[k].cap * sizeof(uint16_t) : WORDS * sizeof(uint64_t);
	return b;
}
