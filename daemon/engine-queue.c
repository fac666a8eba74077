/*
 * engine-queue.c - each project's dispatchable tasks, best first.
 *
 * The order (task_cmp()) is priority, then more dependents, then the
 * smaller id.  Tasks of one priority and one count of dependents (a key)
 * differ only by id, so each key has a queue that is a set of ids (idset.h),
 * and a project keeps its queues in a small array sorted best key first:
 * its best task is the first id of its first queue, the next ones follow
 * that queue's ids, then the next queue's.  A task costs its id in a set and
 * a bit (t->queued), nothing of its own besides; a project has a queue for
 * each key its queued tasks have (an emptied queue goes), so a few.
 *
 * A queued task sits in the queue of its key: whoever changes its priority
 * or its count of dependents says what the key was (queue_rekey()), and the
 * task moves.
 */
#include <assert.h>
#include <string.h>

#include "dagd.h"

/* < 0 when t goes before a task of this key: priority, then more
 * dependents, then older.  The key need not be a live task's (a page's end). */
int task_key_cmp(const struct task *t, enum priority priority, uint32_t n_rdeps, uint32_t id)
{
	if (t->priority != priority)
		return t->priority < priority ? -1 : 1;
	if (task_n_rdeps(t) != n_rdeps)
		return task_n_rdeps(t) > n_rdeps ? -1 : 1;
	return t->id < id ? -1 : t->id > id;
}

/* < 0 when a goes first. */
int task_cmp(const struct task *a, const struct task *b)
{
	return task_key_cmp(a, b->priority, task_n_rdeps(b), b->id);
}

/* < 0 when the tasks of q go before those of key (priority, n_rdeps). */
static int key_cmp(const struct queue *q, enum priority priority, uint32_t n_rdeps)
{
	if (q->priority != priority)
		return q->priority < priority ? -1 : 1;
	if (q->n_rdeps != n_rdeps)
		return q->n_rdeps > n_rdeps ? -1 : 1;
	return 0;
}

/* The place of the queue of a key in p's: where it is (*ret_found) or
 * where it would go. */
static size_t queue_find(const struct project *p, enum priority priority, uint32_t n_rdeps, bool *ret_found)
{
	size_t lo = 0, hi = p->n_queues;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = key_cmp(&p->queues[mid], priority, n_rdeps);

		if (c == 0) {
			*ret_found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*ret_found = false;
	return lo;
}

static void queue_add(struct task *t)
{
	struct project *p = t->project;
	bool found;
	size_t i = queue_find(p, t->priority, task_n_rdeps(t), &found);
	struct queue *q;

	if (!found) {
		if (p->n_queues == p->queues_cap) {
			p->queues_cap = p->queues_cap ? 2 * p->queues_cap : 4;
			p->queues = xrealloc(p->queues, p->queues_cap * sizeof(*p->queues));
		}
		memmove(p->queues + i + 1, p->queues + i, (p->n_queues - i) * sizeof(*p->queues));
		p->n_queues++;
		p->queues[i] = (struct queue) { .priority = t->priority, .n_rdeps = task_n_rdeps(t) };
	}
	q = &p->queues[i];
	idset_add(&q->ids, t->id);
	if (q->first == 0 || t->id < q->first)
		q->first = t->id;
	t->queued = true;
}

/* t out of the queue of key (priority, n_rdeps), where it is. */
static void queue_del(struct task *t, enum priority priority, uint32_t n_rdeps)
{
	struct project *p = t->project;
	bool found;
	size_t i = queue_find(p, priority, n_rdeps, &found);
	struct queue *q = &p->queues[i];

	assert(found);
	idset_del(&q->ids, t->id);
	t->queued = false;
	if (q->ids.count == 0) {
		idset_free(&q->ids);
		memmove(p->queues + i, p->queues + i + 1, (p->n_queues - i - 1) * sizeof(*p->queues));
		p->n_queues--;
	} else if (q->first == t->id)
		q->first = idset_next(&q->ids, t->id);
}

void queue_remove(struct task *t)
{
	if (t->queued)
		queue_del(t, t->priority, task_n_rdeps(t));
}

static bool dispatchable(const struct task *t)
{
	if (task_sb(t) || ext_of(t)->backoff || t->held)
		return false;
	if (t->status == ST_PENDING_VALIDATION)
		return true;
	return t->status == ST_READY && (t->project->autonomous || t->released);
}

/* Put the task in its project's queues, or take it out, as it now deserves. */
void queue_sync(struct task *t)
{
	bool want = dispatchable(t);

	if (want == t->queued)
		return;
	if (!want) {
		queue_del(t, t->priority, task_n_rdeps(t));
		return;
	}
	queue_add(t);
	dispatch_dirty = true;
}

/* Its priority or its count of dependents changed, from (priority,
 * n_rdeps): if queued, it moves to the queue of its key now.  Another task
 * may be the best now, one that fits where the best did not (a pool). */
void queue_rekey(struct task *t, enum priority priority, uint32_t n_rdeps)
{
	if (!t->queued || (priority == t->priority && n_rdeps == task_n_rdeps(t)))
		return;
	queue_del(t, priority, n_rdeps);
	queue_add(t);
	dispatch_dirty = true;
}

/* The project's best dispatchable task; NULL if none. */
struct task *queue_first(const struct project *p)
{
	return p->n_queues > 0 ? task_at(p->queues[0].first) : NULL;
}

/* p's first queued task after the key (priority, n_rdeps, id), which need
 * not be a queued task's; NULL if none. */
struct task *queue_after(const struct project *p, enum priority priority, uint32_t n_rdeps, uint32_t id)
{
	bool found;
	size_t i = queue_find(p, priority, n_rdeps, &found);

	if (found) {
		int64_t next = idset_next(&p->queues[i].ids, id);

		if (next > 0)
			return task_at(next);
		i++;
	}
	return i < p->n_queues ? task_at(p->queues[i].first) : NULL;
}

/* The queued task after t in its project's order; NULL if none. */
struct task *queue_next(const struct task *t)
{
	assert(t->queued);
	return queue_after(t->project, t->priority, task_n_rdeps(t), t->id);
}

void queues_free(struct project *p)
{
	for (size_t i = 0; i < p->n_queues; i++)
		idset_free(&p->queues[i].ids);
	free(p->queues);
	p->queues = NULL;
	p->n_queues = p->queues_cap = 0;
}
