/*
 * idset.h - a set of task ids kept in order, as sorted chunks: adding and
 * removing cost a binary search and a move within one chunk, and the next
 * id after a given one is a binary search.  Every task is in two: its
 * project's set for its status, and the daemon's (so that a listing by
 * status costs the page it returns, not the tasks it skips).
 */
#ifndef DAGD_IDSET_H
#define DAGD_IDSET_H

#include <stddef.h>
#include <stdint.h>

struct idchunk;

struct idset {
	struct idchunk **c;
	size_t n, cap;
	size_t count;
};

void idset_add(struct idset *s, int64_t id);
void idset_del(struct idset *s, int64_t id);
/* The smallest id in the set above after, or 0 if none. */
int64_t idset_next(const struct idset *s, int64_t after);
void idset_free(struct idset *s);

#endif
