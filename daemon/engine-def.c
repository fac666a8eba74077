/*
 * engine-def.c - a task's definition and outcome (struct task_def: its
 * name, title, command, env, options, result, error, token, report, item,
 * last sandbox, times), held in memory only while it is wanted, and its row,
 * written once a turn (task_save(), engine_save()).  The scheduler works on the compact
 * state of struct task; task_def() reads the rest from the database when a
 * command, a spawn or a reply asks for it, and engine_defs_release() lets
 * it go after the turn's commit once more than a few thousand are held,
 * unless a sandbox of the task may still ask (a task that holds a slot or
 * has a live sandbox keeps it).
 *
 * The definitions in memory are listed in defs[] (its aside's def_pos is a
 * task's place + 1), so that a release costs what is held, not every task.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dagd.h"

static struct task **defs;
static size_t n_defs, defs_cap;
static size_t n_lost;                   /* of them, marked lost: all go */

static void track(struct task *t)
{
	if (n_defs == defs_cap) {
		defs_cap = defs_cap ? 2 * defs_cap : 256;
		defs = xrealloc(defs, defs_cap * sizeof(*defs));
	}
	defs[n_defs++] = t;
	aside_make(t)->def_pos = (uint32_t) n_defs;
}

static void untrack(struct task *t)
{
	struct aside *a = aside_of(t);
	size_t i = a ? a->def_pos : 0;

	if (!i)
		return;
	defs[i - 1] = defs[--n_defs];
	aside_of(defs[i - 1])->def_pos = (uint32_t) i;
	a->def_pos = 0;
}

static void def_free(struct task_def *d)
{
	if (!d)
		return;
	if (d->block) {
		free(d->block);
	} else {
		char **own[] = TASK_DEF_BLOCK(d);

		for (size_t i = 0; i < ELEMENTSOF(own); i++)
			free(*own[i]);
	}
	free(d->result);
	free(d->error_message);
	free(d->token);
	free(d->report);
	free(d->sandbox_id);
	free(d->sandbox_executor);
	free(d->sandbox_handle);
	free(d);
}

struct task_def *task_def_new(struct task *t)
{
	struct aside *a = aside_make(t);

	a->def = calloc(1, sizeof(*a->def));
	if (!a->def)
		abort();
	track(t);
	return a->def;
}

/* Its definition's strings each in an allocation of its own, so that one
 * of them can be replaced (set_str()). */
void task_def_own(struct task_def *d)
{
	char **own[] = TASK_DEF_BLOCK(d);

	if (!d->block)
		return;
	for (size_t i = 0; i < ELEMENTSOF(own); i++)
		*own[i] = xstrdup(*own[i]);
	free(TAKE_PTR(d->block));
}

/* Never NULL.  A definition that cannot be read (the database failing)
 * comes back empty and marked lost: nothing of it is written back, and the
 * next turn reads it again. */
struct task_def *task_def(const struct task *c)
{
	struct task *t = (struct task *) c;     /* a cache: the task is the same */
	struct task_def *d = task_def_held(t);

	if (d)
		return d;
	d = task_def_new(t);
	if (store_task_def_read(t->id, d) < 0) {
		log_error("task t-%lld: cannot read its definition: %s", (long long) t->id, last_error());
		d->lost = true;
		n_lost++;
	}
	return d;
}

/* Read from its definition, so that a million names cost the database, not
 * memory; a task without one (name_hash 0) reads nothing, and one whose
 * definition cannot be read has none until it can. */
const char *task_name(const struct task *t)
{
	return t->name_hash ? task_def(t)->name : NULL;
}

void task_def_drop(struct task *t)
{
	struct aside *a = aside_of(t);

	if (!a)
		return;
	untrack(t);
	if (a->def && a->def->lost)
		n_lost--;
	def_free(TAKE_PTR(a->def));
	aside_trim(t);
}

static bool def_wanted(const struct task *t)
{
	const struct aside *a = aside_of(t);

	return a->sb || status_is_active(t->status) || a->dirty_pos;
}

/* Up to DEFS_KEPT definitions stay in memory once read (a board asks for
 * the same page again and again); past that, all that nothing needs go.
 * Those wanted (24,000 running tasks') are not walked at every commit:
 * a walk comes once DEFS_KEPT / 4 more were read since the last one left
 * `kept`, so a definition held but no longer wanted waits at most until
 * then (what is held stays under the most ever wanted at once, plus
 * DEFS_KEPT). */
#define DEFS_KEPT 4096
static size_t kept;

size_t engine_defs_held(void)
{
	return n_defs;
}

void engine_defs_release(void)
{
	if (!n_lost && (n_defs <= DEFS_KEPT || n_defs < kept + DEFS_KEPT / 4))
		return;
	for (size_t i = 0; i < n_defs;) {
		struct task *t = defs[i];

		if (def_wanted(t) && !task_def_held(t)->lost)
			i++;
		else
			task_def_drop(t);       /* defs[i] is now another */
	}
	kept = n_defs;
}

static struct task_def *def_wanted_by_id(int64_t id)
{
	struct task *t = task_at(id);

	return t && !task_def_held(t) ? task_def_new(t) : NULL;
}

/* The definitions a page of tasks will want, read in one pass over their
 * rows when they lie close together (most pages: ids in order), rather
 * than one lookup each; the tasks in between come along, let go with the
 * rest at the end of the turn. */
void task_defs_prefetch(struct task **list, size_t n)
{
	int64_t lo = INT64_MAX, hi = 0;
	size_t missing = 0;
	bool stated = false;

	for (size_t i = 0; i < n; i++)
		if (!task_def_held(list[i])) {
			missing++;
			stated |= list[i]->stated;
			lo = list[i]->id < lo ? list[i]->id : lo;
			hi = list[i]->id > hi ? list[i]->id : hi;
		}
	if (missing < 16 || (uint64_t) (hi - lo) >= 4 * (uint64_t) missing)
		return;                 /* task_def() reads each */
	if (store_task_defs_scan(lo, hi, stated, def_wanted_by_id) < 0)
		log_error("cannot read the definitions of tasks t-%lld to t-%lld: %s", (long long) lo,
			  (long long) hi, last_error());
}

/* --- the rows to write ---------------------------------------------------- */

/* A task's row is written once a turn, however often it changed: the
 * changed tasks wait in dirty[] for engine_save(), which the loop calls
 * just before its commit.  Each brings the times that changed with it (a
 * status change, a claim): they are not kept in struct task but in its
 * definition, which need not be in memory when they change; the row's
 * save writes those given, the others as the definition has them (or, when
 * it is not in memory, as the row has them).  A definition read from
 * the row in the meantime is behind them: task_time() reads here first. */
struct dirty {
	struct task *t;
	struct task_times at;
};
static struct dirty *dirty;
static size_t n_dirty, dirty_cap;

static struct dirty *dirty_of(struct task *t, struct aside *a)
{
	if (!a->dirty_pos) {
		if (n_dirty == dirty_cap) {
			dirty_cap = dirty_cap ? 2 * dirty_cap : 256;
			dirty = xrealloc(dirty, dirty_cap * sizeof(*dirty));
		}
		dirty[n_dirty++] = (struct dirty) { .t = t };
		a->dirty_pos = (uint32_t) n_dirty;
	}
	return &dirty[a->dirty_pos - 1];
}

void task_save(struct task *t)
{
	task_set_time(t, AT_UPDATED, now_usec());
	queue_sync(t);
}

/* A time of the task's (AT_*), to write with its row this turn. */
void task_set_time(struct task *t, enum task_at which, int64_t usec)
{
	struct aside *a = aside_make(t);
	struct dirty *d = dirty_of(t, a);

	d->at.at[which] = usec;
	d->at.set |= 1U << which;
	if (a->def)
		a->def->at[which] = usec;
}

int64_t task_time(const struct task *t, enum task_at which)
{
	const struct aside *a = aside_of(t);
	const struct dirty *d = a && a->dirty_pos ? &dirty[a->dirty_pos - 1] : NULL;

	if (d && (d->at.set & (1U << which)))
		return d->at.at[which];
	return task_def(t)->at[which];
}

/* It is gone (its row deleted, or all of them reloaded): nothing to write. */
void task_unsave(struct task *t)
{
	struct aside *a = aside_of(t);
	size_t i = a ? a->dirty_pos : 0;

	if (!i)
		return;
	dirty[i - 1] = dirty[--n_dirty];
	aside_of(dirty[i - 1].t)->dirty_pos = (uint32_t) i;
	a->dirty_pos = 0;
	aside_trim(t);
}

void engine_save(void)
{
	for (size_t i = 0; i < n_dirty; i++) {
		struct task *t = dirty[i].t;
		struct aside *a = aside_of(t);

		a->dirty_pos = 0;
		for (int k = 0; k < _AT_MAX; k++)
			if (a->def && (dirty[i].at.set & (1U << k)))
				a->def->at[k] = dirty[i].at.at[k];
		if (store_task_save(t, &dirty[i].at) > 0)
			t->stated = true;
		aside_trim(t);
	}
	(void) store_task_save_flush();         /* a failure fails the commit */
	n_dirty = 0;
	if (dirty_cap > 65536) {        /* a turn that changed many: not kept for the next */
		free(dirty);
		dirty = NULL;
		dirty_cap = 0;
	}
}
