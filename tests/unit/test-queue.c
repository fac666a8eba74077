/*
 * test-queue.c - a project's dispatchable tasks, in queues by priority and
 * count of dependents: through random adds and removals, changes of status,
 * of priority and of dependents, and takings of the best as dispatch takes
 * them, the queues walk and give up their tasks exactly in the order of a
 * sort by task_cmp(), and hold a queue for each key their tasks have, no
 * more.  The tasks are the queues' alone: no store, no loop.
 */
#include <string.h>

#include "unit.h"

#define N 3000                  /* tasks */
#define SPREAD 3                /* ids 1, 4, 7, ...: not each one taken */

static unsigned rng = 4321;
static struct project proj;
static struct task *all[N];     /* at the places of their ids (task_alloc()) */
static bool model[N];           /* all[i] should be queued */

static unsigned rnd(void)
{
	rng = rng * 1103515245 + 12345;
	return rng >> 8;
}

/* Its count of dependents, as the queues read it (its edges' list is not). */
static void set_rdeps(struct task *t, uint32_t n)
{
	if (!t->edges) {
		struct edges *e = calloc(1, sizeof(*e));

		assert_non_null(e);
		t->edges = edges_place(e);
	}
	task_edges(t)->n_rdeps = n;
}

static int cmp(const void *a, const void *b)
{
	return task_cmp(*(struct task *const *) a, *(struct task *const *) b);
}

/* The tasks the model queues, sorted by task_cmp(); their count. */
static size_t sorted(struct task **out)
{
	size_t n = 0;

	for (size_t i = 0; i < N; i++)
		if (model[i])
			out[n++] = all[i];
	qsort(out, n, sizeof(*out), cmp);
	return n;
}

static size_t keys(struct task **list, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		k += i == 0 || list[i]->priority != list[i - 1]->priority || task_n_rdeps(list[i]) != task_n_rdeps(list[i - 1]);
	return k;
}

/* Walked from the first, the queues give the sorted model, a queue a key. */
static void same_order(void)
{
	static struct task *want[N];
	size_t n = sorted(want), i = 0;

	for (struct task *t = queue_first(&proj); t; t = queue_next(t)) {
		assert_true(i < n);
		assert_int_equal(t->id, want[i]->id);
		i++;
	}
	assert_int_equal(i, n);
	assert_int_equal(proj.n_queues, keys(want, n));
	for (size_t k = 0; k < N; k++)
		assert_int_equal(all[k]->queued, model[k]);
}

/* As dispatch does: the best, taken one at a time, is the model's next;
 * then they go back (the round's stash). */
static void take_best(size_t count)
{
	static struct task *want[N], *taken[N];
	size_t n = sorted(want), k;

	for (k = 0; k < count && k < n; k++) {
		taken[k] = queue_first(&proj);
		assert_non_null(taken[k]);
		assert_int_equal(taken[k]->id, want[k]->id);
		queue_remove(taken[k]);
		model[(taken[k]->id - 1) / SPREAD] = false;
		assert_false(taken[k]->queued);
	}
	if (k == n)
		assert_null(queue_first(&proj));
	for (size_t i = 0; i < k; i++) {
		queue_sync(taken[i]);
		model[(taken[i]->id - 1) / SPREAD] = true;
	}
}

/* Few dependents mostly, so that keys are shared; now and then many. */
static uint32_t some_rdeps(void)
{
	return rnd() % 8 == 0 ? rnd() % 1000 : rnd() % 4;
}

static void random_changes_keep_the_order_of_task_cmp(void **state)
{
	static const enum status statuses[] = { ST_READY, ST_READY, ST_PENDING_VALIDATION, ST_WAITING };
	static struct task *want[N];

	proj.autonomous = true;
	for (size_t i = 0; i < N; i++) {
		struct task *t = all[i] = task_alloc((uint32_t) (i * SPREAD + 1));

		t->project = &proj;
		t->priority = rnd() % _PRIO_MAX;
		set_rdeps(t, some_rdeps());
		t->status = statuses[rnd() % 4];
		queue_sync(t);
		model[i] = t->status != ST_WAITING;
	}
	same_order();
	for (int step = 0; step < 40000; step++) {
		size_t i = rnd() % N;
		struct task *t = all[i];
		enum priority was = t->priority;
		uint32_t had = task_n_rdeps(t);

		switch (rnd() % 6) {
		case 0:         /* held or let go */
			t->held = !t->held;
			break;
		case 1:
			t->status = statuses[rnd() % 4];
			break;
		case 2:
			t->priority = rnd() % _PRIO_MAX;
			queue_rekey(t, was, had);
			break;
		case 3:         /* a dependent added or taken away, or several */
			set_rdeps(t, rnd() % 2 ? some_rdeps() : task_n_rdeps(t) + 1);
			queue_rekey(t, was, had);
			break;
		case 4:
			queue_remove(t);
			model[i] = false;
			break;
		case 5:
			take_best(rnd() % 5);
			break;
		}
		queue_sync(t);
		model[i] = t->status != ST_WAITING && !t->held;
		if (step % 97 == 0)
			same_order();
	}
	same_order();
	/* emptied one at a time from the best: the sort's order, then nothing */
	for (size_t k = 0, n = sorted(want); k < n; k++) {
		struct task *t = queue_first(&proj);

		assert_non_null(t);
		assert_int_equal(t->id, want[k]->id);
		queue_remove(t);
	}
	assert_null(queue_first(&proj));
	assert_int_equal(proj.n_queues, 0);
	queues_free(&proj);
	for (size_t i = 0; i < N; i++) {
		edges_free(all[i]);
		task_release(all[i]);
	}
	task_pages_free();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(random_changes_keep_the_order_of_task_cmp),
	};

	return cmocka_run_group_tests_name("queue", tests, NULL, NULL);
}
