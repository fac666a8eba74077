/*
 * names.c - a project's name index: its named tasks by name, so that a
 * task.add into a project of a million tasks finds a dependency by name, or
 * a name taken, in what one lookup costs.  Open addressing with linear
 * probing, at most half full; a removal shifts back what followed it.
 *
 * A slot holds a task's id, 4 bytes (task_at() finds the task; 0 is a free
 * slot: ids start at 1).  The name itself is in the task's definition,
 * mostly in the database; the task keeps a 32-bit hash of it (name_hash).
 * A probe compares hashes in memory, and only one that matches reads the
 * definition to compare the name (it is nearly always the name sought): a
 * lookup that misses reads nothing, and growing or removing needs only the
 * hashes.  At most half full: three quarters would save nothing at a
 * million tasks (2^21 slots either way).
 */
#include <stdlib.h>
#include <string.h>

#include "dagd.h"

uint32_t (*names_hash_for_test)(const char *name);

/* Never 0: name_hash 0 is a task without a name. */
uint32_t names_hash(const char *name)
{
	uint64_t h = 14695981039346656037ULL;          /* FNV-1a */

	if (names_hash_for_test)
		return names_hash_for_test(name) ?: 1;
	for (const char *s = name; *s; s++)
		h = (h ^ (unsigned char) *s) * 1099511628211ULL;
	return (uint32_t) (h ^ (h >> 32)) ?: 1;
}

bool task_has_name(const struct task *t, const char *name)
{
	const char *s;

	if (!t->name_hash || t->name_hash != names_hash(name))
		return false;
	s = task_name(t);
	return s && strcmp(s, name) == 0;
}

/* The slot where the task of id would be first looked for. */
static size_t home(uint32_t id, size_t cap)
{
	return task_at(id)->name_hash & (cap - 1);
}

static void grow(struct name_index *x)
{
	size_t cap = x->cap ? 2 * x->cap : 16;
	uint32_t *slots = calloc(cap, sizeof(*slots));

	if (!slots)
		abort();
	for (size_t i = 0; i < x->cap; i++)
		if (x->slots[i]) {
			size_t j = home(x->slots[i], cap);

			while (slots[j])
				j = (j + 1) & (cap - 1);
			slots[j] = x->slots[i];
		}
	free(x->slots);
	x->slots = slots;
	x->cap = cap;
}

/* The tasks of x whose name has the hash h, one a call (*pos, 0 at first,
 * says how far the probe went), their names unread; NULL once none is left. */
struct task *names_each(const struct name_index *x, uint32_t h, size_t *pos)
{
	if (!x->n)
		return NULL;
	for (size_t i; x->slots[i = (h + *pos) & (x->cap - 1)];) {
		struct task *t = task_at(x->slots[i]);

		(*pos)++;
		if (t->name_hash == h)
			return t;
	}
	return NULL;
}

struct task *names_get(const struct name_index *x, const char *name)
{
	struct task *t;
	const char *s;
	uint32_t h;

	if (!name)
		return NULL;
	h = names_hash(name);
	for (size_t pos = 0; (t = names_each(x, h, &pos));)
		if ((s = task_name(t)) && strcmp(s, name) == 0)
			return t;
	return NULL;
}

/* t, found by task_at(), has a name no other task of the index has. */
void names_add(struct name_index *x, struct task *t)
{
	size_t i;

	if (!t->name_hash)
		return;
	if (2 * (x->n + 1) > x->cap)
		grow(x);
	for (i = t->name_hash & (x->cap - 1); x->slots[i]; i = (i + 1) & (x->cap - 1))
		;
	x->slots[i] = (uint32_t) t->id;
	x->n++;
}

/* t, and every task of the index, still found by task_at(). */
void names_del(struct name_index *x, const struct task *t)
{
	size_t i, j;

	if (!t->name_hash || !x->n)
		return;
	for (i = t->name_hash & (x->cap - 1); x->slots[i] != t->id; i = (i + 1) & (x->cap - 1))
		if (!x->slots[i])
			return;
	x->slots[i] = 0;
	x->n--;
	/* what followed in the run moves back if its home allows */
	for (j = (i + 1) & (x->cap - 1); x->slots[j]; j = (j + 1) & (x->cap - 1))
		if (((j - home(x->slots[j], x->cap)) & (x->cap - 1)) >= ((j - i) & (x->cap - 1))) {
			x->slots[i] = x->slots[j];
			x->slots[j] = 0;
			i = j;
		}
}

void names_free(struct name_index *x)
{
	free(x->slots);
	*x = (struct name_index) {};
}
