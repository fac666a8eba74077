/*
 * closest.h - "did you mean": the known name closest to a given one, for
 * dagd's argument checks and dagctl's file checks alike (closest.c).
 */
#ifndef DAGD_CLOSEST_H
#define DAGD_CLOSEST_H

/* The name of known (NULL-ended; may be NULL) closest to key, if it is
 * key itself or close enough to be a typo of it: a few edits (insert,
 * delete, substitute, swap two neighbours), fewer than half its letters.
 * NULL if none is. */
const char *closest_name(const char *key, const char *const *known);

#endif
