/*
 * engine-mem.c - a task's memory: its place in a slab, and what it holds
 * aside (struct aside): the extension that holds what few tasks set (struct
 * task_ext), made on the first write of one of its fields and kept until
 * the task goes, and what a task in flight holds for a while.
 */
#include <assert.h>
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

/* A task's place is given by its id: page id / TASK_PAGE, place id %
 * TASK_PAGE.  It never moves (the graph, the queues and the indexes hold
 * addresses), and finding a task by id costs two reads, with no array of
 * pointers a task beside it.  A page goes once its last task does; ids are
 * given in order, so a page's tasks came together and mostly go together.
 * Under ASan a free place is poisoned, as a freed block is. */
struct task_page **task_pages;
size_t n_tasks;

struct task *task_alloc(uint32_t id)
{
	size_t k = id >> TASK_PAGE_SHIFT, at = id & (TASK_PAGE - 1);
	struct task_page *pg;
	struct task *t;

	assert(id > 0);
	if (id >= n_tasks) {
		size_t n = n_tasks / TASK_PAGE, m = n ? n : 16;

		while (m <= k)
			m *= 2;
		task_pages = xrealloc(task_pages, m * sizeof(*task_pages));
		memset(task_pages + n, 0, (m - n) * sizeof(*task_pages));
		n_tasks = m * TASK_PAGE;
	}
	pg = task_pages[k];
	if (!pg) {
		pg = task_pages[k] = calloc(1, sizeof(*pg));
		if (!pg)
			abort();
		ASAN_POISON_MEMORY_REGION(pg->t, sizeof(pg->t));
	}
	assert(!((pg->taken[at / 64] >> (at % 64)) & 1));
	pg->taken[at / 64] |= 1ULL << (at % 64);
	pg->used++;
	t = &pg->t[at];
	ASAN_UNPOISON_MEMORY_REGION(t, sizeof(*t));
	memset(t, 0, sizeof(*t));
	t->id = id;
	return t;
}

/* Its place, free again (what it points to is freed already). */
void task_release(struct task *t)
{
	size_t k, at;
	struct task_page *pg;

	if (!t)
		return;
	k = t->id >> TASK_PAGE_SHIFT;
	at = t->id & (TASK_PAGE - 1);
	pg = task_pages[k];
	pg->taken[at / 64] &= ~(1ULL << (at % 64));
	ASAN_POISON_MEMORY_REGION(t, sizeof(*t));
	if (--pg->used == 0) {
		free(pg);
		task_pages[k] = NULL;
	}
}

static void asides_free(void);

/* No task is left (engine_free()): the directory goes too, and the table
 * of what tasks hold aside. */
void task_pages_free(void)
{
	asides_free();
	for (size_t k = 0; k < n_tasks / TASK_PAGE; k++)
		free(task_pages[k]);
	free(task_pages);
	task_pages = NULL;
	n_tasks = 0;
}

const struct task_ext task_ext_default = {
	.backoff_usec = USEC_PER_SEC,
	.max_lost_retries = 3,
};

/* For writing: the task's extension, made with the defaults if it has none. */
struct task_ext *task_ext(struct task *t)
{
	struct aside *a = aside_make(t);

	if (!a->ext) {
		a->ext = malloc(sizeof(*a->ext));
		if (!a->ext)
			abort();
		*a->ext = task_ext_default;
		t->has_ext = true;
	}
	return a->ext;
}

void task_ext_free(struct task *t)
{
	struct aside *a;
	struct task_ext *x;

	backoff_stop(t);
	a = aside_of(t);
	x = a ? TAKE_PTR(a->ext) : NULL;
	if (!x)
		return;
	t->has_ext = false;
	aside_trim(t);
	sd_event_source_unref(x->approval_timer);
	for (size_t i = 0; i < x->n_pools; i++)
		idset_del(&x->pools[i].pool->tasks, t->id);
	free(x->pools);
	free(x->executor);
	free(x->validation_command);
	trigger_free(x->trigger);
	free(x);
}

/* --- what a task holds aside ----------------------------------------------
 *
 * Most tasks hold nothing aside: a task waiting holds its state and no
 * more.  Those that do (an extension, a definition in memory, a live
 * sandbox, a row to write) have a record found by the task's address (a
 * task in a slab never moves; a new one has no id yet) in an open-addressing
 * table at most half full (linear probing; a removal shifts back what
 * followed), and the task's `aside` bit says so, so that asking about the
 * others costs a bit test.  A record goes once all it holds is gone
 * (aside_trim()); the table shrinks as a big turn's records go, down to
 * ASIDE_KEPT slots (128 KiB), which it keeps: the definitions a busy
 * daemon reads and lets go (DEFS_KEPT at a time) come and go within it,
 * not through a table made again and again. */
#define ASIDE_KEPT 16384

static struct aside **aside_slots;
static size_t aside_cap, aside_n;        /* aside_cap: a power of two */

/* Fibonacci hashing: the product's top bits, which every bit of the
 * address stirs (its low bits are the same in every task, 32 bytes apart). */
static size_t aside_home(const struct task *t)
{
	unsigned bits = (unsigned) __builtin_ctzll(aside_cap);

	return (size_t) (((uint64_t) (uintptr_t) t * 0x9E3779B97F4A7C15ULL) >> (64 - bits));
}

static void aside_resize(size_t cap)
{
	struct aside **old = aside_slots;
	size_t old_cap = aside_cap;

	aside_slots = cap ? calloc(cap, sizeof(*aside_slots)) : NULL;
	if (cap && !aside_slots)
		abort();
	aside_cap = cap;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i]) {
			size_t j = aside_home(old[i]->task);

			while (aside_slots[j])
				j = (j + 1) & (aside_cap - 1);
			aside_slots[j] = old[i];
		}
	free(old);
}

/* The record last found: a task's turn asks for its own again and again
 * (its definition, its extension, its sandbox). */
static struct aside *aside_last;

struct aside *aside_get(const struct task *t)
{
	if (aside_last && aside_last->task == t)
		return aside_last;
	for (size_t i = aside_home(t);; i = (i + 1) & (aside_cap - 1)) {
		assert(aside_slots[i]);         /* the task's bit says it is here */
		if (aside_slots[i]->task == t)
			return aside_last = aside_slots[i];
	}
}

struct aside *aside_make(struct task *t)
{
	struct aside *a;
	size_t i;

	if (t->aside)
		return aside_get(t);
	if (2 * (aside_n + 1) > aside_cap)
		aside_resize(aside_cap ? 2 * aside_cap : 64);
	a = calloc(1, sizeof(*a));
	if (!a)
		abort();
	a->task = t;
	for (i = aside_home(t); aside_slots[i]; i = (i + 1) & (aside_cap - 1))
		;
	aside_slots[i] = a;
	aside_n++;
	t->aside = true;
	return a;
}

/* Its record goes if it holds nothing any more. */
void aside_trim(struct task *t)
{
	struct aside *a = aside_of(t);
	size_t i, j, home;

	if (!a || a->ext || a->def || a->sb || a->def_pos || a->dirty_pos)
		return;
	for (i = aside_home(t); aside_slots[i] != a; i = (i + 1) & (aside_cap - 1))
		;
	aside_slots[i] = NULL;
	for (j = (i + 1) & (aside_cap - 1); aside_slots[j]; j = (j + 1) & (aside_cap - 1)) {
		home = aside_home(aside_slots[j]->task);
		if (((j - home) & (aside_cap - 1)) >= ((j - i) & (aside_cap - 1))) {
			aside_slots[i] = aside_slots[j];
			aside_slots[j] = NULL;
			i = j;
		}
	}
	if (aside_last == a)
		aside_last = NULL;
	free(a);
	t->aside = false;
	if (--aside_n * 8 < aside_cap && aside_cap > ASIDE_KEPT)
		aside_resize(aside_cap / 2);
}

static void asides_free(void)
{
	if (aside_n == 0)
		aside_resize(0);
}

size_t engine_asides_held(void)
{
	return aside_n;
}

void task_sb_set(struct task *t, struct sandbox *sb)
{
	if (sb)
		aside_make(t)->sb = sb;
	else if (t->aside) {
		aside_get(t)->sb = NULL;
		aside_trim(t);
	}
}
