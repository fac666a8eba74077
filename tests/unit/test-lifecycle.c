/*
 * test-lifecycle.c - hold and release, edit, remove, clean and rerun, in
 * the engine: what they change, what they refuse, and that the graph's
 * counts (unmet, the projects' counts, the queues) stay exact throughout and
 * after a reload from the database.
 */
#include <string.h>

#include "unit.h"

/* Every count the engine keeps, recomputed from scratch. */
static void assert_graph_exact(void)
{
	for (size_t i = 0; i < n_projects; i++) {
		struct project *p = projects[i];
		unsigned counts[_ST_MAX] = { 0 };

		if (!p)
			continue;
		for (size_t k = 0; k < n_tasks; k++)
			if (task_at(k) && task_at(k)->project == p)
				counts[task_at(k)->status]++;
		for (int s = 0; s < _ST_MAX; s++)
			assert_int_equal(p->counts[s], counts[s]);
	}
	for (size_t i = 0; i < n_tasks; i++) {
		struct task *t = task_at(i);
		unsigned unmet = 0;

		if (!t)
			continue;
		for (size_t k = 0; k < task_n_deps(t); k++) {
			assert_ptr_equal(task_at(task_deps(t)[k]->id), task_deps(t)[k]);
			unmet += task_deps(t)[k]->status != ST_COMPLETED;
		}
		for (size_t k = 0; k < task_n_rdeps(t); k++)
			assert_ptr_equal(task_at(task_rdeps(t)[k]->id), task_rdeps(t)[k]);
		assert_int_equal(t->unmet, unmet);
		if (t->status == ST_READY)
			assert_int_equal(unmet, 0);
		if (t->held)
			assert_false(t->queued);
	}
}

/* Runs the project's tasks one turn at a time until none is running. */
static void run_all(struct project *p)
{
	for (int turn = 0; turn < 20; turn++) {
		bool any = false;

		flush();
		for (size_t i = 0; i < n_tasks; i++)
			if (task_at(i) && task_at(i)->project == p && task_at(i)->status == ST_RUNNING) {
				fake_exit(task_at(i), 0);
				any = true;
			}
		if (!any)
			return;
	}
}

static void a_held_task_keeps_its_status_but_is_not_dispatched_even_after_a_reload(void **state)
{
	struct project *p = mkproject("hold", true, 5);

	mktasks(p, "a b:a c");
	assert_int_equal(task_hold(T(p, "a"), true), 0);
	assert_int_equal(task_hold(T(p, "b"), true), 0);
	flush();
	assert_string_equal(S(p, "a"), "ready");
	assert_string_equal(S(p, "c"), "running");
	assert_int_equal(task_start(T(p, "a")), -EBUSY);
	assert_graph_exact();
	unit_reopen();
	p = project_find("hold");
	assert_true(T(p, "a")->held);
	flush();
	assert_string_equal(S(p, "a"), "ready");
	assert_int_equal(task_hold(T(p, "a"), false), 0);
	flush();
	assert_string_equal(S(p, "a"), "running");
	fake_exit(T(p, "a"), 0);
	flush();
	assert_string_equal(S(p, "b"), "ready");          /* unblocked, still held */
	assert_graph_exact();
}

static void edit_changes_a_waiting_task_and_refuses_a_running_one(void **state)
{
	struct project *p = mkproject("edit", false, 5);
	json_object *args = json_tokener_parse("{\"title\":\"B\",\"priority\":\"critical\",\"command\":[\"echo\",\"x\"]}");
	json_object *bad = json_tokener_parse("{\"priority\":\"urgent\"}"), *changed = NULL, *again;

	mktasks(p, "a b:a");
	assert_int_equal(task_edit(T(p, "b"), bad, false, &changed), -EINVAL);
	assert_int_equal(T(p, "b")->priority, PRIO_MEDIUM);
	assert_int_equal(task_edit(T(p, "b"), args, true, &changed), 0);       /* a dry run */
	assert_int_equal(json_object_array_length(changed), 3);
	json_object_put(changed);
	assert_int_equal(T(p, "b")->priority, PRIO_MEDIUM);
	assert_string_equal(task_def(T(p, "b"))->title, "b");
	assert_int_equal(task_edit(T(p, "b"), args, false, &changed), 0);
	assert_int_equal(json_object_array_length(changed), 3);
	json_object_put(changed);
	assert_int_equal(task_edit(T(p, "b"), args, false, &changed), 0);
	assert_int_equal(json_object_array_length(changed), 0);         /* the same again */
	json_object_put(changed);
	unit_reopen();
	p = project_find("edit");
	assert_string_equal(task_def(T(p, "b"))->title, "B");
	assert_string_equal(task_def(T(p, "b"))->command, "[\"echo\",\"x\"]");
	assert_int_equal(T(p, "b")->priority, PRIO_CRITICAL);
	/* a definition read back holds its strings in one allocation: an
	 * edit replaces them one by one all the same */
	assert_non_null(task_def(T(p, "b"))->block);
	again = json_tokener_parse("{\"title\":\"B2\",\"env\":{\"K\":\"v\"},\"cwd\":\"/tmp\"}");
	assert_int_equal(task_edit(T(p, "b"), again, false, &changed), 0);
	assert_int_equal(json_object_array_length(changed), 3);
	json_object_put(changed);
	json_object_put(again);
	assert_string_equal(task_def(T(p, "b"))->title, "B2");
	assert_string_equal(task_def(T(p, "b"))->command, "[\"echo\",\"x\"]");
	unit_reopen();
	p = project_find("edit");
	assert_string_equal(task_def(T(p, "b"))->title, "B2");
	assert_string_equal(task_def(T(p, "b"))->cwd, "/tmp");
	assert_string_equal(task_def(T(p, "b"))->env, "{\"K\":\"v\"}");
	assert_int_equal(task_start(T(p, "a")), 0);
	flush();
	assert_string_equal(S(p, "a"), "running");
	assert_int_equal(task_edit(T(p, "a"), args, false, &changed), -EBUSY);
	json_object_put(args);
	json_object_put(bad);
}

static void rerun_with_downstream_makes_the_whole_diamond_wait_again(void **state)
{
	struct project *p = mkproject("diamond", true, 5);
	json_object *ids = NULL;

	mktasks(p, "a b:a c:a d:b,c e");
	run_all(p);
	assert_int_equal(p->counts[ST_COMPLETED], 5);
	assert_int_equal(task_rerun(T(p, "a"), true, true, &ids), 0);
	assert_string_equal(json_text(ids), "[\"t-1\",\"t-2\",\"t-3\",\"t-4\"]");
	json_object_put(ids);
	assert_int_equal(p->counts[ST_COMPLETED], 5);                     /* a dry run */
	assert_int_equal(task_rerun(T(p, "a"), true, false, &ids), 0);
	json_object_put(ids);
	assert_string_equal(S(p, "a"), "ready");
	assert_string_equal(S(p, "d"), "waiting");
	assert_string_equal(S(p, "e"), "completed");
	assert_int_equal(T(p, "d")->unmet, 2);
	assert_graph_exact();
	assert_int_equal(project_set_autonomous(p, false), 0);     /* nothing starts across the reload */
	unit_reopen();
	p = project_find("diamond");
	assert_graph_exact();
	assert_int_equal(project_set_autonomous(p, true), 0);
	run_all(p);
	assert_int_equal(p->counts[ST_COMPLETED], 5);
	assert_int_equal(T(p, "d")->attempt, 2);
	assert_int_equal(T(p, "e")->attempt, 1);
}

static void rerun_alone_sends_ready_dependents_back_and_is_refused_while_one_runs(void **state)
{
	struct project *p = mkproject("alone", false, 5);

	mktasks(p, "a b:a c:a");
	assert_int_equal(task_start(T(p, "a")), 0);
	flush();
	fake_exit(T(p, "a"), 0);
	assert_int_equal(task_start(T(p, "b")), 0);
	flush();
	assert_string_equal(S(p, "b"), "running");
	assert_int_equal(task_rerun(T(p, "a"), false, false, NULL), -EBUSY);
	assert_int_equal(task_rerun(T(p, "a"), true, true, NULL), -EBUSY);
	fake_exit(T(p, "b"), 0);
	assert_int_equal(task_rerun(T(p, "a"), false, false, NULL), 0);
	assert_string_equal(S(p, "c"), "waiting");
	assert_string_equal(S(p, "b"), "completed");
	assert_int_equal(T(p, "b")->unmet, 1);
	assert_graph_exact();
}

static void remove_and_clean_take_tasks_out_and_keep_what_waiting_tasks_need(void **state)
{
	struct project *p = mkproject("clean", true, 5);
	json_object *removed = NULL, *kept = NULL;

	mktasks(p, "x y f u:f");
	flush();
	fake_exit(T(p, "x"), 0);
	fake_exit(T(p, "y"), 0);
	fake_exit(T(p, "f"), 1);
	assert_string_equal(S(p, "u"), "upstream_failed");
	assert_int_equal(project_set_autonomous(p, false), 0);
	mktasks(p, "h w:x,h");
	assert_int_equal(task_remove(T(p, "f")), -EBUSY);               /* u waits on it */
	assert_int_equal(task_remove(T(p, "h")), -EBUSY);               /* w waits on it */
	assert_int_equal(project_clean(p, false, &removed, &kept), 0);
	assert_string_equal(json_text(removed), "[\"t-2\"]");
	assert_string_equal(json_text(kept), "[\"t-1\"]");
	json_object_put(removed);
	json_object_put(kept);
	assert_graph_exact();
	assert_int_equal(project_clean(p, true, &removed, &kept), 0);
	assert_string_equal(json_text(removed), "[\"t-3\",\"t-4\"]");
	json_object_put(removed);
	json_object_put(kept);
	assert_int_equal(task_remove(T(p, "w")), 0);
	assert_int_equal(task_n_rdeps(T(p, "h")), 0);
	assert_int_equal(task_remove(T(p, "x")), 0);
	assert_graph_exact();
	{
		/* a kept task keeps what it depends on, however far back; another
		 * project's finished tasks are not this clean's */
		struct project *q = mkproject("other", true, 5);

		/* nothing finished: nothing to walk */
		assert_int_equal(project_clean(q, true, &removed, &kept), 0);
		assert_string_equal(json_text(removed), "[]");
		assert_string_equal(json_text(kept), "[]");
		json_object_put(removed);
		json_object_put(kept);
		mktasks(q, "done");
		flush();
		fake_exit(T(q, "done"), 0);
		mktasks(p, "c1 c2:c1");
		assert_int_equal(task_start(T(p, "c1")), 0);
		flush();
		fake_exit(T(p, "c1"), 0);
		assert_int_equal(task_start(T(p, "c2")), 0);
		flush();
		fake_exit(T(p, "c2"), 0);
		mktasks(p, "c3:c2");
		assert_int_equal(project_clean(p, false, &removed, &kept), 0);
		assert_int_equal(json_object_array_length(removed), 0);
		assert_string_equal(json_text(kept), "[\"t-8\",\"t-9\"]");
		json_object_put(removed);
		json_object_put(kept);
		assert_string_equal(S(q, "done"), "completed");
		assert_int_equal(task_remove(T(p, "c3")), 0);
		assert_int_equal(project_clean(p, false, &removed, &kept), 0);
		assert_string_equal(json_text(removed), "[\"t-8\",\"t-9\"]");
		json_object_put(removed);
		json_object_put(kept);
		assert_string_equal(S(q, "done"), "completed");
	}
	unit_reopen();
	p = project_find("clean");
	assert_int_equal(p->counts[ST_READY], 1);                       /* h alone */
	assert_int_equal(p->counts[ST_COMPLETED] + p->counts[ST_FAILED] + p->counts[ST_WAITING], 0);
	assert_graph_exact();
}

/* Nothing runs and nothing is due, from the queues and sets alone: a manual
 * project's ready task waits for an operator, an autonomous one's is due. */
static void idle_is_nothing_running_and_nothing_due(void **state)
{
	struct project *p = mkproject("idle", false, 1);

	assert_true(engine_idle());
	mktasks(p, "a b");
	flush();
	assert_string_equal(S(p, "a"), "ready");
	assert_true(engine_idle());
	assert_int_equal(project_set_autonomous(p, true), 0);
	assert_false(engine_idle());                    /* queued: due now */
	flush();
	assert_string_equal(S(p, "a"), "running");
	assert_false(engine_idle());
	fake_exit(T(p, "a"), 0);
	flush();
	assert_string_equal(S(p, "b"), "running");
	fake_exit(T(p, "b"), 0);
	flush();
	assert_true(engine_idle());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(a_held_task_keeps_its_status_but_is_not_dispatched_even_after_a_reload, unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(edit_changes_a_waiting_task_and_refuses_a_running_one, unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(rerun_with_downstream_makes_the_whole_diamond_wait_again, unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(rerun_alone_sends_ready_dependents_back_and_is_refused_while_one_runs, unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(remove_and_clean_take_tasks_out_and_keep_what_waiting_tasks_need, unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(idle_is_nothing_running_and_nothing_due, unit_fixture_setup, unit_fixture_teardown),
	};

	return cmocka_run_group_tests_name("lifecycle", tests, NULL, NULL);
}
