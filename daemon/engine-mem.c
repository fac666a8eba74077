/*
 * engine-mem.c - a task's memory: its place in a slab, and the extension
 * that holds what few tasks set (struct task_ext), made on the first write
 * of one of its fields and kept until the task goes.
 */
#include <stdlib.h>
#include <string.h>
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>
#else
#define ASAN_POISON_MEMORY_REGION(p, n) ((void) (p), (void) (n))
#define ASAN_UNPOISON_MEMORY_REGION(p, n) ((void) (p), (void) (n))
#endif

#include "dagd.h"
#include "trigger.h"

/* Tasks are cut from slabs of SLAB_TASKS, never moved (the graph and the
 * indexes hold their addresses): no allocator's header each, no rounding
 * up, no fragmentation of the heap by a million small blocks.
 * A freed task's place is taken first by the next; the slabs go once no
 * task is left.  Under ASan a free place is poisoned, as a freed block is. */
#define SLAB_TASKS 4096

static struct task **slabs;
static size_t n_slabs, slab_used;      /* places handed out of the last slab */
static struct task **free_places;
static size_t n_free, free_cap;
static size_t n_live;

/* A task, zeroed. */
struct task *task_alloc(void)
{
	struct task *t;

	if (n_free > 0)
		t = free_places[--n_free];
	else {
		if (n_slabs == 0 || slab_used == SLAB_TASKS) {
			slabs = xrealloc(slabs, (n_slabs + 1) * sizeof(*slabs));
			slabs[n_slabs] = malloc(SLAB_TASKS * sizeof(struct task));
			if (!slabs[n_slabs])
				abort();
			ASAN_POISON_MEMORY_REGION(slabs[n_slabs], SLAB_TASKS * sizeof(struct task));
			n_slabs++;
			slab_used = 0;
		}
		t = &slabs[n_slabs - 1][slab_used++];
	}
	ASAN_UNPOISON_MEMORY_REGION(t, sizeof(*t));
	memset(t, 0, sizeof(*t));
	n_live++;
	return t;
}

/* Its place, back to be taken again (what it points to is freed already). */
void task_release(struct task *t)
{
	if (!t)
		return;
	if (--n_live == 0) {
		for (size_t i = 0; i < n_slabs; i++)
			free(slabs[i]);
		free(slabs);
		free(free_places);
		slabs = free_places = NULL;
		n_slabs = slab_used = n_free = free_cap = 0;
		return;
	}
	if (n_free == free_cap) {
		free_cap = free_cap ? 2 * free_cap : 256;
		free_places = xrealloc(free_places, free_cap * sizeof(*free_places));
	}
	free_places[n_free++] = t;
	ASAN_POISON_MEMORY_REGION(t, sizeof(*t));
}

const struct task_ext task_ext_default = {
	.backoff_usec = USEC_PER_SEC,
	.max_lost_retries = 3,
};

/* For writing: the task's extension, made with the defaults if it has none. */
struct task_ext *task_ext(struct task *t)
{
	if (!t->ext) {
		t->ext = malloc(sizeof(*t->ext));
		if (!t->ext)
			abort();
		*t->ext = task_ext_default;
	}
	return t->ext;
}

void task_ext_free(struct task *t)
{
	struct task_ext *x = TAKE_PTR(t->ext);

	if (!x)
		return;
	sd_event_source_unref(x->backoff);
	sd_event_source_unref(x->approval_timer);
	free(x->pools);
	free(x->executor);
	free(x->validation_command);
	trigger_free(x->trigger);
	free(x);
}
