/*
 * test-local-helper.c - the local executor plugin: its helper, the parent
 * of every task, each in a session of its own, and what is killed with it;
 * cancel (SIGTERM, the grace period, SIGKILL, the whole session); restarts
 * of the daemon (list, adopt, forget).  The host and its helpers are in
 * local-harness.c.
 */
#include "local-harness.h"

/* ---- the process and the helper ---- */

static void test_each_task_leads_its_session_as_a_child_of_one_helper(void **unused) {
	static const char *const a_argv[] = { "sh", "-c", "echo $$ > a.pid; echo ready; exec sleep 30", NULL };
	static const char *const b_argv[] = { "sh", "-c", "echo $$ > b.pid; echo ready; exec sleep 30", NULL };
	struct dagd_sandbox a, b;
	struct stat_fields ta, tb, h;
	pid_t helper, pa, pb;
	void *da, *db;

	sb_new(&a, "t-1.1");
	sb_new(&b, "t-2.1");
	da = spawn_ok(&a, a_argv, NULL, E.dir);
	db = spawn_ok(&b, b_argv, NULL, E.dir);
	wait_for_log(&a, "ready");
	wait_for_log(&b, "ready");
	helper = helper_pid();
	assert_true(helper > 1);
	pa = read_pid("a.pid");
	pb = read_pid("b.pid");

	proc_stat_fields(pa, &ta);
	proc_stat_fields(pb, &tb);
	proc_stat_fields(helper, &h);
	assert_int_equal(ta.ppid, helper);              /* one helper, the parent of both */
	assert_int_equal(tb.ppid, helper);
	assert_int_equal(ta.session, pa);               /* each in a session and group of its own */
	assert_int_equal(ta.pgrp, pa);
	assert_int_equal(tb.session, pb);
	assert_int_not_equal(h.session, getsid(0));     /* the helper left the host's session */
	assert_int_not_equal(ta.pgrp, getpgrp());

	/* the task blocks and ignores nothing, though this host blocks SIGTERM
	 * and SIGCHLD; it holds its stdio and nothing else */
	assert_false(proc_status_mask(pa, "SigIgn:") & (1ULL << (SIGTERM - 1)));
	assert_false(proc_status_mask(pa, "SigIgn:") & (1ULL << (SIGPIPE - 1)));
	assert_int_equal(proc_status_mask(pa, "SigBlk:"), 0);
	/* (the exec of sleep opens its libraries on fd 3 for a moment: a leak
	 * is what stays) */
	for (int i = 0; i < 100 && strcmp(proc_fds(pa), "0 1 2") != 0; i++)
		usleep(10000);
	assert_string_equal(proc_fds(pa), "0 1 2");

	assert_int_equal(X->cancel(E.state, &a, da, 0), 0);
	assert_int_equal(X->cancel(E.state, &b, db, 0), 0);
	wait_exit(&a);
	wait_exit(&b);
	assert_int_equal(a.signal, SIGKILL);
	assert_int_equal(b.signal, SIGKILL);
}

static void test_a_killed_helper_takes_its_tasks_along_and_they_end_lost(void **unused) {
	static const char *const argv[] = { "sh", "-c", "echo $$ > task.pid; sleep 30 & echo $! > child.pid; echo ready; wait", NULL };
	struct dagd_sandbox sb;
	pid_t helper, task, child;

	sb_new(&sb, "t-1.1");
	spawn_ok(&sb, argv, NULL, E.dir);
	wait_for_log(&sb, "ready");
	helper = helper_pid();
	assert_true(helper > 1);
	task = read_pid("task.pid");
	child = read_pid("child.pid");

	assert_int_equal(kill(helper, SIGKILL), 0);
	wait_exit(&sb);
	assert_int_equal(sb.code, -1);
	assert_string_equal(sb.reason, "lost");
	assert_non_null(strstr(sb.message, "helper"));
	if (!run_until(proc_gone, &task, 5 * SEC))
		fail_msg("the task %d of a killed helper still runs", (int) task);
	if (!run_until(proc_gone, &child, 5 * SEC))
		fail_msg("the task's child %d outlived the helper", (int) child);
}

static void test_what_a_task_leaves_behind_is_killed_when_it_ends(void **unused) {
	static const char *const argv[] = { "sh", "-c", "sleep 30 & echo $! > child.pid", NULL };
	struct dagd_sandbox sb;
	pid_t child;

	sb_new(&sb, "t-1.1");
	spawn_ok(&sb, argv, NULL, E.dir);
	wait_exit(&sb);
	assert_int_equal(sb.code, 0);
	child = read_pid("child.pid");
	if (!run_until(proc_gone, &child, 5 * SEC))
		fail_msg("the task's child %d outlived it", (int) child);
}

/* A helper nobody can reach again (its state directory removed) must not
 * run on, nor keep its tasks running, forever. */
static void test_a_helper_whose_socket_is_gone_kills_its_tasks_and_exits(void **unused) {
	static const char *const argv[] = { "sh", "-c", "echo $$ > task.pid; exec sleep 60", NULL };
	char sock[PATH_MAX];
	struct dagd_sandbox sb;
	pid_t helper, task;

	sb_new(&sb, "t-1.1");
	spawn_ok(&sb, argv, NULL, E.dir);
	run_for(200 * MSEC);
	task = read_pid("task.pid");
	helper = helper_pid();
	assert_true(helper > 1);
	plugin_stop();
	snprintf(sock, sizeof(sock), "%s/local/helper.sock", E.state_dir);
	assert_int_equal(unlink(sock), 0);
	/* it looks every 10 s */
	if (!run_until(proc_gone, &task, 15 * SEC))
		fail_msg("the task %d of an unreachable helper still runs", (int) task);
	if (!run_until(proc_gone, &helper, 5 * SEC))
		fail_msg("the unreachable helper %d still runs", (int) helper);
	(void) waitpid(helper, NULL, 0);
}

/* ---- cancel ---- */

static void test_cancel_terminates_with_sigterm(void **unused) {
	static const char *const argv[] = { "sleep", "30", NULL };
	struct dagd_sandbox sb;
	uint64_t t0;
	void *data;

	sb_new(&sb, "t-1.1");
	data = spawn_ok(&sb, argv, NULL, NULL);
	t0 = now_usec();
	assert_int_equal(X->cancel(E.state, &sb, data, 10 * SEC), 0);
	wait_exit(&sb);
	assert_true(now_usec() - t0 < 5 * SEC);
	assert_int_equal(sb.code, -1);
	assert_int_equal(sb.signal, SIGTERM);
	assert_string_equal(sb.reason, "cancelled");
}

static void test_cancel_right_after_spawn_is_not_lost(void **unused) {
	static const char *const argv[] = { "sleep", "30", NULL };
	struct dagd_sandbox sb;
	char id[32];
	void *data;

	for (int i = 0; i < 25; i++) {
		snprintf(id, sizeof(id), "t-1.%d", i + 1);
		sb_new(&sb, id);
		data = spawn_ok(&sb, argv, NULL, NULL);
		assert_int_equal(X->cancel(E.state, &sb, data, 20 * SEC), 0);
		wait_exit(&sb);
		assert_int_equal(sb.signal, SIGTERM);
	}
}

static const char *const stubborn[] = {
	"sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.02; done", NULL
};

static void test_cancel_kills_after_the_grace_period_when_sigterm_is_ignored(void **unused) {
	struct dagd_sandbox sb;
	uint64_t t0;
	void *data;

	sb_new(&sb, "t-1.1");
	data = spawn_ok(&sb, stubborn, NULL, NULL);
	wait_for_log(&sb, "ready");

	t0 = now_usec();
	assert_int_equal(X->cancel(E.state, &sb, data, 400 * MSEC), 0);
	run_for(200 * MSEC);
	assert_int_equal(sb.exited, 0);
	wait_exit(&sb);
	assert_true(now_usec() - t0 >= 400 * MSEC);
	assert_int_equal(sb.code, -1);
	assert_int_equal(sb.signal, SIGKILL);
	assert_string_equal(sb.reason, "cancelled");
}

static void test_cancel_without_grace_kills_at_once(void **unused) {
	struct dagd_sandbox sb;
	uint64_t t0;
	void *data;

	sb_new(&sb, "t-1.1");
	data = spawn_ok(&sb, stubborn, NULL, NULL);
	wait_for_log(&sb, "ready");

	/* a second cancel, without grace, cuts the first one's short */
	t0 = now_usec();
	assert_int_equal(X->cancel(E.state, &sb, data, 60 * SEC), 0);
	assert_int_equal(X->cancel(E.state, &sb, data, 0), 0);
	wait_exit(&sb);
	assert_true(now_usec() - t0 < 5 * SEC);
	assert_int_equal(sb.signal, SIGKILL);
	run_for(50 * MSEC);
	assert_int_equal(sb.exited, 1);
}

static void test_cancel_kills_the_group_and_what_left_it_in_the_session(void **unused) {
	/* a stubborn child in the group, and one that made a group of its own */
	static const char *const argv[] = { "sh", "-c",
		"(trap '' TERM; echo $$ > /dev/null; exec sleep 30) & echo $! > child.pid; "
		"perl -e 'setpgrp(0, 0); $SIG{TERM} = \"IGNORE\"; sleep 30' & echo $! > grouped.pid; "
		"echo ready; wait", NULL };
	struct dagd_sandbox sb;
	pid_t child, grouped;
	struct stat_fields g;
	void *data;

	sb_new(&sb, "t-1.1");
	data = spawn_ok(&sb, argv, NULL, E.dir);
	wait_for_log(&sb, "ready");
	child = read_pid("child.pid");
	grouped = read_pid("grouped.pid");
	run_for(100 * MSEC);
	proc_stat_fields(grouped, &g);
	assert_int_equal(g.pgrp, grouped);

	assert_int_equal(X->cancel(E.state, &sb, data, 300 * MSEC), 0);
	wait_exit(&sb);
	if (!run_until(proc_gone, &child, 5 * SEC))
		fail_msg("the task's child %d survived the cancel", (int) child);
	if (!run_until(proc_gone, &grouped, 5 * SEC))
		fail_msg("the task's child %d in a group of its own survived the cancel", (int) grouped);
}

/* ---- restarts: list, adopt, forget ---- */

static void test_adopt_after_restart_reports_the_running_task(void **unused) {
	static const char *const argv[] = { "sh", "-c", "echo $$ > task.pid; while [ ! -e go ]; do sleep 0.02; done; exit 7", NULL };
	struct dagd_sandbox before, after;
	pid_t task;

	sb_new(&before, "t-1.1");
	spawn_ok(&before, argv, NULL, E.dir);
	run_for(200 * MSEC);
	task = read_pid("task.pid");

	plugin_stop();
	run_for(100 * MSEC);
	assert_false(proc_gone(&task));                 /* shutdown kills nothing */
	plugin_start();

	assert_string_equal(list_ids(), "t-1.1 ");
	sb_new(&after, "t-1.1");
	adopt_ok(&after, before.handle);
	run_for(100 * MSEC);
	assert_int_equal(after.exited, 0);
	touch("go");
	wait_exit(&after);
	assert_int_equal(after.code, 7);
	assert_int_equal(after.started, 0);
	assert_int_equal(before.exited, 0);
}

static void test_adopted_task_can_be_cancelled(void **unused) {
	struct dagd_sandbox before, after;
	void *data;

	sb_new(&before, "t-1.1");
	spawn_ok(&before, stubborn, NULL, NULL);
	wait_for_log(&before, "ready");
	plugin_stop();
	plugin_start();

	sb_new(&after, "t-1.1");
	data = adopt_ok(&after, before.handle);
	assert_int_equal(X->cancel(E.state, &after, data, 200 * MSEC), 0);
	wait_exit(&after);
	assert_int_equal(after.signal, SIGKILL);
	assert_string_equal(after.reason, "cancelled");
}

/* The daemon died after the exit came but before it committed it: the next
 * one must find the exit again, and only forget() lets it go. */
static void test_an_exit_is_held_until_forgotten(void **unused) {
	static const char *const argv[] = { "sh", "-c", "exit 5", NULL };
	struct dagd_sandbox before, after, again;

	sb_new(&before, "t-1.1");
	spawn_ok(&before, argv, NULL, NULL);
	wait_exit(&before);
	assert_int_equal(before.code, 5);
	plugin_stop();

	plugin_start();
	assert_string_equal(list_ids(), "t-1.1 ");
	sb_new(&after, "t-1.1");
	adopt_ok(&after, "t-1.1");
	assert_int_equal(after.exited, 0);              /* from the loop, not from inside adopt() */
	wait_exit(&after);
	assert_int_equal(after.code, 5);

	X->forget(E.state, "t-1.1", "t-1.1");
	assert_string_equal(list_ids(), "");
	sb_new(&again, "t-1.1");
	adopt_ok(&again, "t-1.1");
	wait_exit(&again);
	assert_string_equal(again.reason, "lost");
}

/* The daemon died after spawn() but before the handle was on disk: list()
 * still has the task, so it is adopted, not started twice. */
static void test_list_has_a_task_whose_start_was_never_committed(void **unused) {
	static const char *const argv[] = { "sh", "-c", "echo run >> runs; while [ ! -e go ]; do sleep 0.02; done", NULL };
	struct dagd_sandbox before, after;
	char path[PATH_MAX], *runs;

	sb_new(&before, "t-3.1");
	spawn_ok(&before, argv, NULL, E.dir);
	plugin_stop();                                  /* at once: nothing ran in the loop */
	plugin_start();
	assert_string_equal(list_ids(), "t-3.1 ");
	sb_new(&after, "t-3.1");
	adopt_ok(&after, "t-3.1");
	touch("go");
	wait_exit(&after);
	assert_int_equal(after.code, 0);
	snprintf(path, sizeof(path), "%s/runs", E.dir);
	runs = file_read(path);
	assert_non_null(runs);
	assert_string_equal(runs, "run\n");
	free(runs);
}

static void test_forget_of_a_running_task_kills_it(void **unused) {
	static const char *const argv[] = { "sh", "-c", "echo $$ > task.pid; trap '' TERM; echo ready; while :; do sleep 0.02; done", NULL };
	struct dagd_sandbox sb;
	pid_t task;

	sb_new(&sb, "t-1.1");
	spawn_ok(&sb, argv, NULL, E.dir);
	wait_for_log(&sb, "ready");
	task = read_pid("task.pid");
	plugin_stop();
	plugin_start();
	X->forget(E.state, "t-1.1", "t-1.1");
	if (!run_until(proc_gone, &task, 5 * SEC))
		fail_msg("a forgotten task %d still runs", (int) task);
	assert_string_equal(list_ids(), "");
}

static void test_adopt_of_an_unknown_sandbox_ends_it_as_lost(void **unused) {
	struct dagd_sandbox sb;

	sb_new(&sb, "t-9.1");
	adopt_ok(&sb, "t-9.1");
	wait_exit(&sb);
	assert_int_equal(sb.code, -1);
	assert_string_equal(sb.reason, "lost");
}

int main(int argc, char **argv) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_each_task_leads_its_session_as_a_child_of_one_helper),
		T(test_a_killed_helper_takes_its_tasks_along_and_they_end_lost),
		T(test_what_a_task_leaves_behind_is_killed_when_it_ends),
		T(test_a_helper_whose_socket_is_gone_kills_its_tasks_and_exits),
		T(test_cancel_terminates_with_sigterm),
		T(test_cancel_right_after_spawn_is_not_lost),
		T(test_cancel_kills_after_the_grace_period_when_sigterm_is_ignored),
		T(test_cancel_without_grace_kills_at_once),
		T(test_cancel_kills_the_group_and_what_left_it_in_the_session),
		T(test_adopt_after_restart_reports_the_running_task),
		T(test_adopted_task_can_be_cancelled),
		T(test_an_exit_is_held_until_forgotten),
		T(test_list_has_a_task_whose_start_was_never_committed),
		T(test_forget_of_a_running_task_kills_it),
		T(test_adopt_of_an_unknown_sandbox_ends_it_as_lost),
	};
#undef T

	if (harness_init(argc, argv) < 0)
		return 1;
	return cmocka_run_group_tests_name("local executor: the helper", tests, NULL, NULL);
}
