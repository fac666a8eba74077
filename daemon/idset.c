/*
 * idset.c - a set of task ids kept in order (see idset.h).
 *
 * The ids sit in chunks of at most CHUNK, each sorted, the chunks in order.
 * Ids mostly arrive in increasing order (new tasks, a load at start-up), so
 * adding past the end appends to the last chunk; a full chunk splits in two.
 * An emptied chunk goes.
 */
#include <stdlib.h>
#include <string.h>

#include "idset.h"

#define CHUNK 256

struct idchunk {
	size_t n;
	int64_t id[CHUNK];
};

static void *grow(void *p, size_t size)
{
	p = realloc(p, size);
	if (!p)
		abort();
	return p;
}

/* The first chunk whose last id is >= id, or s->n. */
static size_t chunk_for(const struct idset *s, int64_t id)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->c[mid]->id[s->c[mid]->n - 1] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The first position in c whose id is >= id. */
static size_t pos_in(const struct idchunk *c, int64_t id)
{
	size_t lo = 0, hi = c->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->id[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void chunk_insert(struct idset *s, size_t at, struct idchunk *c)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 4;
		s->c = grow(s->c, s->cap * sizeof(*s->c));
	}
	memmove(s->c + at + 1, s->c + at, (s->n - at) * sizeof(*s->c));
	s->c[at] = c;
	s->n++;
}

void idset_add(struct idset *s, int64_t id)
{
	struct idchunk *c = s->n ? s->c[s->n - 1] : NULL;
	size_t k, i;

	if (!c || c->id[c->n - 1] < id) {
		/* past the last id, the usual case: appended */
		if (!c || c->n == CHUNK) {
			c = grow(NULL, sizeof(*c));
			c->n = 0;
			chunk_insert(s, s->n, c);
		}
		c->id[c->n++] = id;
		s->count++;
		return;
	}
	k = chunk_for(s, id);
	c = s->c[k];
	i = pos_in(c, id);
	if (i < c->n && c->id[i] == id)
		return;
	if (c->n == CHUNK) {
		struct idchunk *h = grow(NULL, sizeof(*h));

		h->n = CHUNK / 2;
		memcpy(h->id, c->id + CHUNK / 2, (CHUNK / 2) * sizeof(*h->id));
		c->n = CHUNK / 2;
		chunk_insert(s, k + 1, h);
		if (i > CHUNK / 2) {
			c = h;
			i -= CHUNK / 2;
		}
	}
	memmove(c->id + i + 1, c->id + i, (c->n - i) * sizeof(*c->id));
	c->id[i] = id;
	c->n++;
	s->count++;
}

void idset_del(struct idset *s, int64_t id)
{
	size_t k = chunk_for(s, id), i;
	struct idchunk *c;

	if (k == s->n)
		return;
	c = s->c[k];
	i = pos_in(c, id);
	if (i == c->n || c->id[i] != id)
		return;
	memmove(c->id + i, c->id + i + 1, (c->n - i - 1) * sizeof(*c->id));
	c->n--;
	s->count--;
	if (c->n == 0) {
		free(c);
		memmove(s->c + k, s->c + k + 1, (s->n - k - 1) * sizeof(*s->c));
		s->n--;
	}
}

int64_t idset_next(const struct idset *s, int64_t after)
{
	size_t k = chunk_for(s, after + 1);

	return k == s->n ? 0 : s->c[k]->id[pos_in(s->c[k], after + 1)];
}

void idset_free(struct idset *s)
{
	for (size_t k = 0; k < s->n; k++)
		free(s->c[k]);
	free(s->c);
	*s = (struct idset) { 0 };
}
