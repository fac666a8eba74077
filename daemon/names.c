/*
 * names.c - a project's name index: its named tasks by name, so that a
 * task.add into a project of a million tasks finds a dependency by name, or
 * a name taken, in what one lookup costs.  Open addressing with linear
 * probing, at most half full; a removal shifts back what followed it.
 */
#include <stdlib.h>
#include <string.h>

#include "dagd.h"

static uint64_t hash(const char *s)
{
	uint64_t h = 14695981039346656037ULL;          /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char) *s) * 1099511628211ULL;
	return h;
}

static void grow(struct name_index *x)
{
	size_t cap = x->cap ? 2 * x->cap : 16;
	struct task **slots = calloc(cap, sizeof(*slots));

	if (!slots)
		abort();
	for (size_t i = 0; i < x->cap; i++)
		if (x->slots[i]) {
			size_t j = hash(task_name(x->slots[i])) & (cap - 1);

			while (slots[j])
				j = (j + 1) & (cap - 1);
			slots[j] = x->slots[i];
		}
	free(x->slots);
	x->slots = slots;
	x->cap = cap;
}

struct task *names_get(const struct name_index *x, const char *name)
{
	if (!x->n || !name)
		return NULL;
	for (size_t i = hash(name) & (x->cap - 1); x->slots[i]; i = (i + 1) & (x->cap - 1))
		if (strcmp(task_name(x->slots[i]), name) == 0)
			return x->slots[i];
	return NULL;
}

/* t has a name no other task of the index has. */
void names_add(struct name_index *x, struct task *t)
{
	size_t i;

	if (!task_name(t))
		return;
	if (2 * (x->n + 1) > x->cap)
		grow(x);
	for (i = hash(task_name(t)) & (x->cap - 1); x->slots[i]; i = (i + 1) & (x->cap - 1))
		;
	x->slots[i] = t;
	x->n++;
}

void names_del(struct name_index *x, const struct task *t)
{
	size_t i, j, home;

	if (!task_name(t) || !x->n)
		return;
	for (i = hash(task_name(t)) & (x->cap - 1); x->slots[i] != t; i = (i + 1) & (x->cap - 1))
		if (!x->slots[i])
			return;
	x->slots[i] = NULL;
	x->n--;
	/* what followed in the run moves back if its home allows */
	for (j = (i + 1) & (x->cap - 1); x->slots[j]; j = (j + 1) & (x->cap - 1)) {
		home = hash(task_name(x->slots[j])) & (x->cap - 1);
		if (((j - home) & (x->cap - 1)) >= ((j - i) & (x->cap - 1))) {
			x->slots[i] = x->slots[j];
			x->slots[j] = NULL;
			i = j;
		}
	}
}

void names_free(struct name_index *x)
{
	free(x->slots);
	*x = (struct name_index) {};
}
