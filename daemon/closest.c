/*
 * closest.c - the known name closest to a given one (see closest.h).
 */
#include <stddef.h>
#include <string.h>

#include "closest.h"

#define MAX_LEN 64
#define MAX_EDITS 3

/* Edits from a to b (Damerau-Levenshtein, restricted); past MAX_LEN, more
 * than MAX_EDITS. */
static unsigned distance(const char *a, const char *b)
{
	size_t n = strlen(a), m = strlen(b);
	unsigned d[MAX_LEN + 1][MAX_LEN + 1];

	if (n > MAX_LEN || m > MAX_LEN)
		return MAX_EDITS + 1;
	for (size_t i = 0; i <= n; i++)
		d[i][0] = (unsigned) i;
	for (size_t j = 0; j <= m; j++)
		d[0][j] = (unsigned) j;
	for (size_t i = 1; i <= n; i++)
		for (size_t j = 1; j <= m; j++) {
			unsigned x = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);

			if (d[i - 1][j] + 1 < x)
				x = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < x)
				x = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < x)
				x = d[i - 2][j - 2] + 1;
			d[i][j] = x;
		}
	return d[n][m];
}

const char *closest_name(const char *key, const char *const *known)
{
	const char *best = NULL;
	unsigned best_d = MAX_EDITS + 1;

	for (; known && *known && best_d > 0; known++) {
		unsigned d = distance(key, *known);

		if (d < best_d && (d == 0 || 2 * d < strlen(*known)))
			best = *known, best_d = d;
	}
	return best;
}
