/*
 * idset.h - a set of task ids kept in order, in about a bit an id when the
 * ids are dense (as task ids are: the daemon hands them out 1, 2, 3, ...)
 * and no more than about 4 bytes an id when they are sparse (and a few
 * dozen bytes for each block of 65,536 ids that has any).  Adding,
 * removing and the next id after a given one each cost a binary search
 * among the set's containers of 65,536 ids, then a look within one.  Every
 * task is in two: its project's set for its status, and the daemon's (so
 * that a listing by status costs the page it returns, not the tasks it
 * skips).
 */
#ifndef DAGD_IDSET_H
#define DAGD_IDSET_H

#include <stddef.h>
#include <stdint.h>

struct idcont;

struct idset {
	struct idcont *c;       /* containers, by key */
	size_t n, cap;
	size_t count;           /* ids held */
};

void idset_add(struct idset *s, int64_t id);
void idset_del(struct idset *s, int64_t id);
/* The smallest id in the set above after, or 0 if none. */
int64_t idset_next(const struct idset *s, int64_t after);
void idset_free(struct idset *s);
/* The bytes the set has allocated (what its compactness is measured by). */
size_t idset_bytes(const struct idset *s);

#endif
