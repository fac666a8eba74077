/*
 * test-engine.c - the DAG engine: unblocking, failure and recovery,
 * retries, cycles, manual mode, limits and order, and state that survives
 * a reload from the database.
 */
#include <stdio.h>
#include <string.h>

#include "unit.h"
#include "store-private.h"

static json_object *report(struct task *t, bool success, const char *result)
{
	json_object *reply, *res = result ? json_tokener_parse(result) : NULL;
	char *text = NULL;
	int r = task_report(t, success, res, success ? NULL : "boom", &text);

	json_object_put(res);
	assert_int_equal(r, 0);
	reply = json_tokener_parse(text);
	assert_non_null(reply);
	free(text);
	return reply;
}

static void assert_unblocked(json_object *reply, const char *expect)
{
	json_object *u = json_object_object_get(reply, "unblocked_tasks");
	char got[256] = "";

	for (size_t i = 0; i < json_object_array_length(u); i++) {
		if (i)
			strcat(got, " ");
		strcat(got, json_object_get_string(json_object_array_get_idx(u, i)));
	}
	assert_string_equal(got, expect);
	json_object_put(reply);
}

static void completing_a_task_unblocks_exactly_its_ready_dependents(void **state)
{
	struct project *p = mkproject("diamond", true, 5);

	mktasks(p, "a b:a c:a d:b,c");
	assert_string_equal(S(p, "a"), "ready");
	assert_string_equal(S(p, "d"), "waiting");
	assert_int_equal(T(p, "d")->unmet, 2);
	flush();
	assert_string_equal(S(p, "a"), "running");
	assert_unblocked(report(T(p, "a"), true, "{\"n\":1}"), "t-2 t-3");
	assert_string_equal(S(p, "a"), "completed");
	assert_string_equal(task_def(T(p, "a"))->result, "{\"n\":1}");
	flush();
	assert_string_equal(S(p, "b"), "running");
	assert_string_equal(S(p, "c"), "running");
	assert_unblocked(report(T(p, "b"), true, NULL), "");
	assert_int_equal(T(p, "d")->unmet, 1);
	fake_exit(T(p, "c"), 0);
	assert_string_equal(S(p, "d"), "ready");
	flush();
	fake_exit(T(p, "d"), 0);
	assert_int_equal(p->counts[ST_COMPLETED], 4);
}

static void a_failure_marks_dependents_upstream_failed_and_retry_brings_them_back(void **state)
{
	struct project *p = mkproject("chain", true, 5);

	mktasks(p, "a b:a c:b x");
	flush();
	fake_exit(T(p, "a"), 3);
	assert_string_equal(S(p, "a"), "failed");
	assert_string_equal(task_def(T(p, "a"))->error_message, "exited with code 3");
	assert_string_equal(S(p, "b"), "upstream_failed");
	assert_string_equal(S(p, "c"), "upstream_failed");
	assert_int_equal(task_retry(T(p, "b")), -EBUSY);
	assert_int_equal(task_retry(T(p, "a")), 0);
	assert_string_equal(S(p, "a"), "ready");
	assert_string_equal(S(p, "b"), "waiting");
	assert_string_equal(S(p, "c"), "waiting");
	flush();
	fake_exit(T(p, "a"), 0);
	flush();
	fake_exit(T(p, "b"), 0);
	flush();
	fake_exit(T(p, "c"), 0);
	assert_string_equal(S(p, "c"), "completed");
	assert_int_equal(T(p, "a")->attempt, 2);
}

static void a_failure_with_retries_left_waits_out_a_backoff(void **state)
{
	struct project *p = mkproject("retry", true, 5);
	json_object *a = json_tokener_parse("{\"title\":\"r\",\"command\":\"false\",\"max_retries\":2,\"retry_backoff\":30}");
	json_object *list = json_object_new_array();
	struct task **made;
	struct task *t;

	json_object_array_add(list, a);
	assert_int_equal(task_create_batch(p, list, false, &made), 0);
	free(made);
	json_object_put(list);
	t = NULL;
	for (size_t i = 0; i < n_tasks; i++)
		if (task_at(i) && task_at(i)->project == p)
			t = task_at(i);
	flush();
	fake_exit(t, 1);
	assert_string_equal(status_to_string(t->status), "ready");
	assert_non_null(ext_of(t)->backoff);
	/* jitter keeps the first backoff within 15..45 s of now */
	assert_true(ext_of(t)->not_before - now_usec() > 14 * 1000000LL);
	assert_true(ext_of(t)->not_before - now_usec() < 46 * 1000000LL);
	flush();
	assert_string_equal(status_to_string(t->status), "ready");
	assert_int_equal(fake_running(), 0);
}

static void cycles_and_foreign_or_unknown_dependencies_are_refused(void **state)
{
	struct project *p = mkproject("cyc", false, 5), *q = mkproject("other", false, 5);
	json_object *on = json_object_new_array(), *list;
	struct task **made = NULL;
	size_t before;

	mktasks(p, "a b:a c:b");
	mktasks(q, "z");
	json_object_array_add(on, json_object_new_string("t-3"));
	assert_int_equal(task_depend(T(p, "a"), on, true), -EINVAL);
	assert_non_null(strstr(last_error(), "cycle"));
	json_object_put(on);
	on = json_tokener_parse("[\"t-4\"]");
	assert_int_equal(task_depend(T(p, "a"), on, true), -EINVAL);
	assert_non_null(strstr(last_error(), "another project"));
	json_object_put(on);
	on = json_tokener_parse("[\"t-99\"]");
	assert_int_equal(task_depend(T(p, "a"), on, true), -ENOENT);
	json_object_put(on);
	assert_int_equal(task_n_deps(T(p, "a")), 0);

	before = p->counts[ST_WAITING] + p->counts[ST_READY];
	list = json_tokener_parse("[{\"name\":\"x\",\"title\":\"x\",\"command\":\"true\",\"depends_on\":[\"y\"]},"
				  "{\"name\":\"y\",\"title\":\"y\",\"command\":\"true\",\"depends_on\":[\"x\"]}]");
	assert_int_equal(task_create_batch(p, list, true, &made), -EINVAL);
	assert_non_null(strstr(last_error(), "cycle"));
	json_object_put(list);
	assert_int_equal(p->counts[ST_WAITING] + p->counts[ST_READY], before);
}

static void a_manual_project_runs_only_what_start_released(void **state)
{
	struct project *p = mkproject("manual", false, 5);
	json_object *released = NULL;

	mktasks(p, "a b:a");
	flush();
	assert_int_equal(fake_running(), 0);
	assert_int_equal(project_start(p, &released, NULL), 0);
	assert_int_equal(json_object_array_length(released), 1);
	json_object_put(released);
	flush();
	assert_string_equal(S(p, "a"), "running");
	fake_exit(T(p, "a"), 0);
	flush();
	assert_string_equal(S(p, "b"), "ready");
	assert_int_equal(fake_running(), 0);
	assert_int_equal(task_start(T(p, "b")), 0);
	flush();
	assert_string_equal(S(p, "b"), "running");
}

static void turning_autonomous_on_dispatches_at_once(void **state)
{
	struct project *p = mkproject("toggle", false, 5);

	mktasks(p, "a b c");
	flush();
	assert_int_equal(fake_running(), 0);
	assert_int_equal(project_set_autonomous(p, true), 0);
	flush();
	assert_int_equal(fake_running(), 3);
	assert_int_equal(project_set_autonomous(p, false), 0);
	flush();
	assert_int_equal(fake_running(), 3);      /* nothing stopped */
}

static void limits_hold_and_order_is_priority_then_dependents_then_age(void **state)
{
	struct project *p = mkproject("order", false, 1);
	json_object *list = json_tokener_parse(
		"[{\"name\":\"low\",\"title\":\"l\",\"command\":\"true\",\"priority\":\"low\"},"
		"{\"name\":\"old\",\"title\":\"o\",\"command\":\"true\"},"
		"{\"name\":\"hub\",\"title\":\"h\",\"command\":\"true\"},"
		"{\"name\":\"crit\",\"title\":\"c\",\"command\":\"true\",\"priority\":\"critical\"},"
		"{\"name\":\"d1\",\"title\":\"d\",\"command\":\"true\",\"depends_on\":[\"hub\"]}]");
	struct task **made;

	assert_int_equal(task_create_batch(p, list, true, &made), 0);
	free(made);
	json_object_put(list);
	assert_int_equal(project_set_autonomous(p, true), 0);
	flush();
	assert_int_equal(fake_running(), 1);
	assert_string_equal(S(p, "crit"), "running");
	fake_exit(T(p, "crit"), 0);
	flush();
	assert_string_equal(S(p, "hub"), "running");   /* a task waits on it */
	fake_exit(T(p, "hub"), 0);
	flush();
	assert_string_equal(S(p, "old"), "running");
	assert_int_equal(fake_running(), 1);
}

/* A ready task waiting for a slot moves in its project's order when its
 * priority is edited, or dependents are added to it or taken away. */
static void a_ready_task_moves_when_its_priority_or_its_dependents_change(void **state)
{
	struct project *p = mkproject("moves", true, 1);
	json_object *args = json_tokener_parse("{\"priority\":\"high\"}"), *changed, *on;
	char id[24];

	mktasks(p, "first a b c");
	flush();
	assert_string_equal(S(p, "first"), "running");  /* a, b and c wait for the slot, in that order */
	assert_int_equal(task_edit(T(p, "c"), args, false, &changed), 0);
	json_object_put(changed);
	json_object_put(args);
	mktasks(p, "d:b e:a f:a");                      /* a has two dependents, b one */
	on = json_object_new_array();
	json_object_array_add(on, json_object_new_string(task_id_string(T(p, "a")->id, id)));
	assert_int_equal(task_depend(T(p, "e"), on, false), 0);
	assert_int_equal(task_depend(T(p, "f"), on, false), 0);    /* and a has none again */
	json_object_put(on);
	for (const char *const *n = (const char *const[]) { "first", "c", "b", "a", NULL }; n[1]; n++) {
		fake_exit(T(p, n[0]), 0);
		flush();
		assert_string_equal(S(p, n[1]), "running");
		assert_int_equal(fake_running(), 1);
	}
}

static void the_global_limit_holds_across_projects(void **state)
{
	struct project *p = mkproject("g1", true, 5), *q = mkproject("g2", true, 5);

	D.global_limit = 3;
	mktasks(p, "a b c");
	mktasks(q, "x y z");
	flush();
	assert_int_equal(fake_running(), 3);
	assert_int_equal(p->active + q->active, 3);
}

static void the_same_report_twice_is_answered_the_same_and_a_different_one_conflicts(void **state)
{
	struct project *p = mkproject("idem", true, 5);
	json_object *first, *res = json_tokener_parse("{\"k\":[1,2]}");
	char *again = NULL;
	int64_t seq;

	mktasks(p, "a b:a c:b");
	flush();
	first = report(T(p, "a"), true, "{\"k\":[1,2]}");
	flush();
	seq = store_last_seq();
	assert_int_equal(task_report(T(p, "a"), true, res, NULL, &again), 0);
	assert_string_equal(again, json_text(first));
	flush();
	assert_int_equal(store_last_seq(), seq);        /* no new event */
	free(again);
	assert_int_equal(task_report(T(p, "a"), false, NULL, "other", &again), -EEXIST);
	assert_int_equal(task_report(T(p, "c"), true, NULL, NULL, &again), -EBUSY);
	/* a failure whose message needs escaping is kept as it came */
	{
		static const char msg[] = "said \"no\"\n\ttab \\ \x01 caf\xc3\xa9 </end>";

		char *failed = NULL;

		assert_string_equal(S(p, "b"), "running");
		assert_int_equal(task_report(T(p, "b"), false, NULL, msg, &failed), 0);
		assert_int_equal(task_report(T(p, "b"), false, NULL, msg, &again), 0);
		assert_string_equal(failed, again);
		free(again);
		assert_int_equal(task_report(T(p, "b"), false, NULL, "said \"no\"", &again), -EEXIST);
		free(failed);
	}
	json_object_put(res);
	json_object_put(first);
}

static void state_reloaded_from_the_database_is_the_same(void **state)
{
	struct project *p = mkproject("persist", true, 1);
	char before[4096], after[4096];
	json_object *o;

	mktasks(p, "a b:a c:a d:b,c e");
	flush();
	fake_exit(T(p, "a"), 0);
	flush();
	o = project_to_json(p);
	snprintf(before, sizeof(before), "%s", json_text(o));
	json_object_put(o);
	unit_reopen();
	p = project_find("persist");
	assert_non_null(p);
	o = project_to_json(p);
	snprintf(after, sizeof(after), "%s", json_text(o));
	json_object_put(o);
	/* updated_at and the like are identical: the same bytes */
	assert_string_equal(before, after);
	assert_int_equal(T(p, "d")->unmet, 2);
	assert_int_equal(T(p, "b")->unmet, 0);
}

/* A task with no options holds its scheduling state alone (no extension;
 * its definition, name, times and last sandbox read when asked for), and reads
 * back the same after a reload: the times a turn changed were written with
 * its row. */
static void a_task_holds_its_state_alone_and_reads_back_the_same(void **state)
{
	struct project *p = mkproject("compact", true, 1);
	char before[8192], after[8192];
	json_object *o;
	int64_t a;

	printf("# sizeof(struct task) %zu, struct task_ext %zu, struct task_def %zu\n", sizeof(struct task),
	       sizeof(struct task_ext), sizeof(struct task_def));
	assert_true(sizeof(struct task) <= 40);
	mktasks(p, "a b:a");
	assert_null(task_ext_held(T(p, "a")));
	flush();
	fake_exit(T(p, "a"), 0);
	flush();
	assert_string_equal(S(p, "a"), "completed");
	o = task_to_json(T(p, "a"));
	snprintf(before, sizeof(before), "%s", json_text(o));
	json_object_put(o);
	assert_non_null(strstr(before, "\"sandbox_id\":\"t-"));
	a = T(p, "a")->id;
	unit_reopen();
	assert_false(task_at(a)->aside);         /* nothing held aside: no extension, no definition */
	o = task_to_json(task_at(a));
	snprintf(after, sizeof(after), "%s", json_text(o));
	json_object_put(o);
	assert_string_equal(before, after);
}

static void a_validator_runs_after_the_work_and_decides(void **state)
{
	struct project *p = mkproject("val", true, 5);
	json_object *list = json_tokener_parse(
		"[{\"name\":\"a\",\"title\":\"a\",\"command\":\"true\",\"validation_command\":\"test -f x\"},"
		"{\"name\":\"b\",\"title\":\"b\",\"command\":\"true\",\"validation_command\":\"false\"},"
		"{\"name\":\"c\",\"title\":\"c\",\"command\":\"true\",\"depends_on\":[\"a\"]}]");
	struct task **made;

	assert_int_equal(task_create_batch(p, list, true, &made), 0);
	free(made);
	json_object_put(list);
	flush();
	fake_exit(T(p, "a"), 0);
	assert_string_equal(S(p, "a"), "pending_validation");
	assert_string_equal(S(p, "c"), "waiting");
	flush();
	assert_string_equal(S(p, "a"), "validating");
	assert_non_null(strstr(task_def(T(p, "a"))->sandbox_id, ".v"));
	fake_exit(T(p, "a"), 0);
	assert_string_equal(S(p, "a"), "completed");
	assert_string_equal(S(p, "c"), "ready");
	fake_exit(T(p, "b"), 0);
	flush();
	fake_exit(T(p, "b"), 1);
	assert_string_equal(S(p, "b"), "failed");
	assert_string_equal(task_def(T(p, "b"))->error_message, "validation failed: exited with code 1");
}

static void cancelling_a_running_task_stops_its_sandbox_and_fails_its_dependents(void **state)
{
	struct project *p = mkproject("cancel", true, 5);

	mktasks(p, "a b:a c:b");
	flush();
	assert_int_equal(fake_running(), 1);
	assert_int_equal(task_cancel(T(p, "a")), 0);
	assert_int_equal(fake_running(), 0);    /* the executor was told */
	assert_string_equal(S(p, "a"), "cancelled");
	assert_string_equal(S(p, "b"), "upstream_failed");
	assert_string_equal(S(p, "c"), "upstream_failed");
	assert_int_equal(task_cancel(T(p, "a")), 0);       /* asked twice: no change */
	assert_string_equal(S(p, "a"), "cancelled");
	assert_int_equal(task_retry(T(p, "a")), 0);
	assert_string_equal(S(p, "c"), "waiting");
}

static void ids_are_never_given_twice_even_after_a_delete_and_a_reload(void **state)
{
	struct project *p = mkproject("gone", false, 5);
	int64_t last;

	mktasks(p, "a b c");
	last = T(p, "c")->id;
	assert_int_equal(project_delete(p), 0);
	unit_reopen();
	p = mkproject("next", false, 5);
	mktasks(p, "x");
	assert_true(T(p, "x")->id > last);
	assert_true(p->id > 1);
}

/* A listing of 12,000 tasks reads their definitions 512 at a time: what
 * nothing needs is let go, so that no more than DEFS_KEPT, a quarter more
 * and a page are ever held. */
static int by_dispatch(const void *a, const void *b)
{
	return task_cmp(*(struct task *const *) a, *(struct task *const *) b);
}

/* task.unblocked keeps the best `limit` of the ready tasks as it passes
 * them: what it lists is the head of a sort of them all, whatever the limit. */
static void the_unblocked_are_the_head_of_the_dispatch_order(void **state)
{
	static const char *const prio[] = { "critical", "high", "medium", "low" };
	static const size_t limits[] = { 1, 2, 7, 50, 599, 600, 5000 };
	struct project *p = mkproject("many-ready", true, 1);
	json_object *list = json_object_new_array();
	struct task **made, **want = calloc(600, sizeof(*want));
	size_t n = 0;

	srandom(5);
	for (int i = 0; i < 600; i++) {
		json_object *o = json_object_new_object();
		char name[16];

		snprintf(name, sizeof(name), "r%d", i);
		json_object_object_add(o, "name", json_object_new_string(name));
		json_object_object_add(o, "title", json_object_new_string(name));
		json_object_object_add(o, "command", json_object_new_string("true"));
		json_object_object_add(o, "priority", json_object_new_string(prio[random() % 4]));
		json_object_array_add(list, o);
	}
	assert_int_equal(task_create_batch(p, list, true, &made), 0);
	json_object_put(list);
	for (int i = 0; i < 40; i++)            /* some held: not listed */
		made[random() % 600]->held = true;
	flush();                                /* one runs: the rest wait, ready */
	for (int i = 0; i < 30; i++) {          /* some wait out a backoff: listed, not queued */
		struct task *t = made[random() % 600];

		if (t->status != ST_READY)
			continue;
		task_ext(t)->not_before = now_usec() + 3600 * USEC_PER_SEC;
		arm_backoff(t);
		queue_sync(t);
		assert_false(t->queued);
	}
	assert_true(in_backoff.count >= 20);
	free(made);
	for (struct task *t = task_next_in(p, ST_READY, 0); t; t = task_next_in(p, ST_READY, t->id))
		if (!t->held)
			want[n++] = t;
	assert_true(n > 500);
	qsort(want, n, sizeof(*want), by_dispatch);
	for (size_t k = 0; k < ELEMENTSOF(limits); k++) {
		struct unblocked_cursor next;
		bool more;
		json_object *got = tasks_unblocked(p, limits[k], NULL, &next, &more);
		size_t m = limits[k] < n ? limits[k] : n;
		char id[24];

		assert_int_equal(json_object_array_length(got), m);
		assert_int_equal(more, limits[k] < n);
		for (size_t i = 0; i < m; i++) {
			char head[40];

			snprintf(head, sizeof(head), "{\"id\":\"%s\",", task_id_string(want[i]->id, id));
			assert_memory_equal(json_text(json_object_array_get_idx(got, i)), head, strlen(head));
		}
		json_object_put(got);
	}
	/* page after page, each from where the one before ended: the whole
	 * order, each task once, for any page size */
	for (size_t k = 0; k < 4; k++) {
		static const size_t sizes[] = { 1, 7, 64, 599 };
		struct unblocked_cursor at, next;
		size_t seen = 0;
		bool more = true, first = true;

		while (more) {
			json_object *got = tasks_unblocked(p, sizes[k], first ? NULL : &at, &next, &more);
			size_t m = json_object_array_length(got);
			char id[24], head[40];

			assert_true(m <= sizes[k]);
			for (size_t i = 0; i < m; i++, seen++) {
				assert_true(seen < n);
				snprintf(head, sizeof(head), "{\"id\":\"%s\",", task_id_string(want[seen]->id, id));
				assert_memory_equal(json_text(json_object_array_get_idx(got, i)), head, strlen(head));
			}
			assert_true(m > 0 || !more);
			json_object_put(got);
			at = next;
			first = false;
		}
		assert_int_equal(seen, n);
	}
	/* a task freed takes its backoff with it */
	free(want);
	engine_free();
	assert_int_equal(in_backoff.count, 0);
	assert_int_equal(engine_load(), 0);
}

/* Tokens are cut from a pool of random bytes refilled a page at a time:
 * across several refills each is whole (64 hex digits) and none repeats,
 * and a request past what a token can be is refused. */
static int by_string(const void *a, const void *b)
{
	return strcmp((const char *) a, (const char *) b);
}

static void tokens_from_the_random_pool_are_whole_and_never_repeat(void **state)
{
	enum { N = 1000 };      /* 32 bytes each: about eight refills of 4 KiB */
	char (*tok)[65] = calloc(N, sizeof(*tok)), big[200];

	for (int i = 0; i < N; i++) {
		assert_int_equal(random_hex(tok[i], 32), 0);
		assert_int_equal(strlen(tok[i]), 64);
		assert_int_equal(strspn(tok[i], "0123456789abcdef"), 64);
	}
	qsort(tok, N, sizeof(*tok), by_string);
	for (int i = 1; i < N; i++)
		assert_string_not_equal(tok[i - 1], tok[i]);
	assert_int_equal(random_hex(big, 65), -EINVAL);
	free(tok);
}

/* Tasks sit in pages by id: a page goes with its last task, and a row
 * whose id a task cannot have (past 32 bits, or taken twice) is refused as
 * malformed, not put at another's place. */
static void a_page_goes_with_its_last_task_and_an_id_past_32_bits_is_refused(void **state)
{
	struct project *p = mkproject("paged", false, 1);
	char spec[3000 * 8], db[256];
	size_t len = 0;
	int64_t last;

	for (int i = 0; i < 3000; i++)
		len += (size_t) snprintf(spec + len, sizeof(spec) - len, "%sq%d", i ? " " : "", i);
	mktasks(p, spec);
	last = T(p, "q2999")->id;
	assert_true(last >= 3000);
	for (int64_t k = 1; k <= last / TASK_PAGE; k++)
		assert_non_null(task_pages[k]);
	assert_int_equal(project_delete(p), 0);
	for (int64_t k = 0; k <= last / TASK_PAGE; k++)
		assert_null(task_pages[k]);
	assert_null(task_at(last));

	p = mkproject("wide", false, 1);
	mktasks(p, "w");
	flush();
	assert_int_equal(sqlite3_exec(store_sqlite(), "UPDATE tasks SET id = 4294967296 WHERE name = 'w'", NULL, NULL,
				      NULL), SQLITE_OK);
	server_close();
	engine_free();
	store_close();
	snprintf(db, sizeof(db), "%s/dagd.db", unit_dir());
	assert_int_equal(store_open(db), 0);
	assert_true(engine_load() < 0);
	assert_non_null(strstr(last_error(), "task 4294967296 is malformed"));
	engine_free();
	assert_int_equal(sqlite3_exec(store_sqlite(), "UPDATE tasks SET id = 7 WHERE name = 'w'", NULL, NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(engine_load(), 0);
	assert_non_null(task_at(7));
}

/* Tasks hold an extension and a sandbox aside, and let them go, in a random
 * order: each finds its own record, a record goes once it holds nothing,
 * and the table's count is the model's. */
static void what_a_task_holds_aside_is_its_own_and_goes_with_it(void **state)
{
	enum { N = 5000 };
	struct task **t = calloc(N, sizeof(*t));
	bool *ext = calloc(N, sizeof(bool)), *sb = calloc(N, sizeof(bool));
	struct sandbox *mark = (struct sandbox *) &mark;        /* never read */
	size_t held = 0;

	srandom(11);
	for (size_t i = 0; i < N; i++)
		t[i] = task_alloc((uint32_t) (2000001 + i));     /* a place of its own: no project, not found by id */
	for (int round = 0; round < 200000; round++) {
		size_t i = (size_t) random() % N;
		bool before = ext[i] || sb[i];

		if (random() % 2) {
			if (ext[i])
				task_ext_free(t[i]);
			else
				task_ext(t[i])->max_retries = (unsigned) i;
			ext[i] = !ext[i];
		} else {
			task_sb_set(t[i], sb[i] ? NULL : mark + i);
			sb[i] = !sb[i];
		}
		held += (ext[i] || sb[i]) - before;
		assert_int_equal(engine_asides_held(), held);
		assert_int_equal(t[i]->aside, ext[i] || sb[i]);
		if (round % 1000 == 0)
			for (size_t k = 0; k < N; k++) {
				assert_int_equal(t[k]->aside, ext[k] || sb[k]);
				assert_int_equal(t[k]->has_ext, ext[k]);
				assert_int_equal(ext_of(t[k])->max_retries, ext[k] ? (unsigned) k : task_ext_default.max_retries);
				assert_ptr_equal(task_sb(t[k]), sb[k] ? mark + k : NULL);
			}
	}
	for (size_t i = 0; i < N; i++) {
		task_ext_free(t[i]);
		task_sb_set(t[i], NULL);
		assert_false(t[i]->aside);
		task_release(t[i]);
	}
	assert_int_equal(engine_asides_held(), 0);
	free(t);
	free(ext);
	free(sb);
}

static void definitions_read_are_let_go_past_a_bound(void **state)
{
	struct project *p = mkproject("many", false, 1);
	size_t n = 12000, most = 0;
	char *spec = malloc(n * 8);
	size_t len = 0;

	for (size_t i = 0; i < n; i++)
		len += (size_t) sprintf(spec + len, "%st%zu", i ? " " : "", i);
	mktasks(p, spec);
	free(spec);
	flush();
	unit_reopen();
	p = project_find("many");
	for (size_t i = 1; i < n_tasks; i++) {
		if (task_at(i) && task_at(i)->project == p)
			(void) task_def(task_at(i));
		if (i % 512 == 0) {
			most = engine_defs_held() > most ? engine_defs_held() : most;
			engine_defs_release();
		}
	}
	engine_defs_release();
	assert_true(most > 4096);               /* they were read */
	assert_true(most <= 4096 + 1024 + 512);
	assert_true(engine_defs_held() <= 4096 + 1024);
	/* what they held aside went with them: nothing else was held */
	assert_true(engine_asides_held() <= engine_defs_held() + 16);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(completing_a_task_unblocks_exactly_its_ready_dependents, unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(a_failure_marks_dependents_upstream_failed_and_retry_brings_them_back, unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(a_failure_with_retries_left_waits_out_a_backoff, unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(cycles_and_foreign_or_unknown_dependencies_are_refused, unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(a_manual_project_runs_only_what_start_released, unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(turning_autonomous_on_dispatches_at_once, unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(limits_hold_and_order_is_priority_then_dependents_then_age, unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(a_ready_task_moves_when_its_priority_or_its_dependents_change, unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(the_global_limit_holds_across_projects, unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(the_same_report_twice_is_answered_the_same_and_a_different_one_conflicts, unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(state_reloaded_from_the_database_is_the_same, unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(a_task_holds_its_state_alone_and_reads_back_the_same, unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(a_validator_runs_after_the_work_and_decides, unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(cancelling_a_running_task_stops_its_sandbox_and_fails_its_dependents, unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(ids_are_never_given_twice_even_after_a_delete_and_a_reload, unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(definitions_read_are_let_go_past_a_bound, unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(what_a_task_holds_aside_is_its_own_and_goes_with_it, unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(the_unblocked_are_the_head_of_the_dispatch_order, unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(a_page_goes_with_its_last_task_and_an_id_past_32_bits_is_refused, unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test(tokens_from_the_random_pool_are_whole_and_never_repeat),
	};

	return cmocka_run_group_tests_name("engine", tests, NULL, NULL);
}
