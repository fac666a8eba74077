/*
 * test-local.c - the local executor plugin, driven by the host of
 * local-harness.c.
 */
#include "local-harness.h"

/* ---- exits ---- */

static void test_exit_zero_is_reported_and_a_silent_task_leaves_no_file(void **unused) {
	static const char *const argv[] = { "true", NULL };
	struct dagd_sandbox sb;
	char dir[PATH_MAX];

	sb_new(&sb, "t-1.1");
	snprintf(sb.log, sizeof(sb.log), "%s/logs/t-1/1.log", E.dir);
	spawn_ok(&sb, argv, NULL, NULL);
	assert_string_equal(sb.handle, "t-1.1");        /* the handle is the sandbox id */
	wait_exit(&sb);
	assert_int_equal(sb.code, 0);
	assert_int_equal(sb.signal, 0);
	assert_string_equal(sb.reason, "");
	assert_string_equal(sb.message, "");
	/* nothing on disk: no log, not even its directory */
	snprintf(dir, sizeof(dir), "%s/logs", E.dir);
	assert_int_equal(access(dir, F_OK), -1);
	run_for(100 * MSEC);
	assert_int_equal(sb.exited, 1);
	assert_int_equal(sb.started, 1);
}

static void test_exit_code_3_is_reported(void **unused) {
	static const char *const argv[] = { "sh", "-c", "exit 3", NULL };
	struct dagd_sandbox sb;

	sb_new(&sb, "t-1.1");
	spawn_ok(&sb, argv, NULL, NULL);
	wait_exit(&sb);
	assert_int_equal(sb.code, 3);
	assert_int_equal(sb.signal, 0);
	assert_string_equal(sb.message, "");    /* the host words plain exits */
}

static void test_death_by_signal_is_reported(void **unused) {
	static const char *const argv[] = { "sh", "-c", "kill -USR1 $$", NULL };
	struct dagd_sandbox sb;

	sb_new(&sb, "t-1.1");
	spawn_ok(&sb, argv, NULL, NULL);
	wait_exit(&sb);
	assert_int_equal(sb.code, -1);
	assert_int_equal(sb.signal, SIGUSR1);
	assert_string_equal(sb.reason, "");
	assert_string_equal(sb.message, "");
}

/* ---- what the process gets ---- */

static void test_argv_and_env_reach_the_process(void **unused) {
	static const char *const argv[] = { "sh", "-c", "printf '[%s][%s][%s]\\n' \"$0\" \"$1\" \"$FOO\"",
					    "zero", "one  two", NULL };
	static const char *const envp[] = { "FOO=bar baz", "PATH=/usr/bin:/bin", NULL };
	struct dagd_sandbox sb;

	sb_new(&sb, "t-1.1");
	spawn_ok(&sb, argv, envp, NULL);
	wait_exit(&sb);
	assert_int_equal(sb.code, 0);
	assert_log_equal(&sb, "[zero][one  two][bar baz]\n");
}

static void test_environment_is_exactly_the_given_one(void **unused) {
	static const char *const argv[] = { "env", NULL };
	static const char *const envp[] = { "A=1", "B=two words", "PATH=/usr/bin:/bin", NULL };
	struct dagd_sandbox sb;

	setenv("DAGD_TEST_HOST_ONLY", "1", 1);
	sb_new(&sb, "t-1.1");
	spawn_ok(&sb, argv, envp, NULL);
	wait_exit(&sb);
	unsetenv("DAGD_TEST_HOST_ONLY");
	assert_int_equal(sb.code, 0);
	assert_log_equal(&sb, "A=1\nB=two words\nPATH=/usr/bin:/bin\n");
}

static void test_command_is_searched_in_the_tasks_path(void **unused) {
	static const char *const argv[] = { "dagd-test-tool", "hello", NULL };
	char bin[DIR_MAX], tool[PATH_MAX], path_var[PATH_MAX];
	const char *envp[] = { path_var, NULL };
	struct dagd_sandbox sb;
	FILE *f;

	snprintf(bin, sizeof(bin), "%.*s/bin", DIR_MAX - 64, E.dir);
	assert_int_equal(mkdir(bin, 0755), 0);
	snprintf(tool, sizeof(tool), "%s/dagd-test-tool", bin);
	f = fopen(tool, "we");
	assert_non_null(f);
	fputs("#!/bin/sh\necho \"tool says $1\"\n", f);
	fclose(f);
	assert_int_equal(chmod(tool, 0755), 0);
	snprintf(path_var, sizeof(path_var), "PATH=%s:/usr/bin:/bin", bin);

	sb_new(&sb, "t-1.1");
	spawn_ok(&sb, argv, envp, NULL);
	wait_exit(&sb);
	assert_int_equal(sb.code, 0);
	assert_log_equal(&sb, "tool says hello\n");
}

static void test_cwd_is_honoured(void **unused) {
	static const char *const argv[] = { "pwd", "-P", NULL };
	char work[PATH_MAX], expected[PATH_MAX + 2];
	struct dagd_sandbox sb;

	snprintf(work, sizeof(work), "%s/work dir", E.dir);
	assert_int_equal(mkdir(work, 0755), 0);
	snprintf(expected, sizeof(expected), "%s\n", work);

	sb_new(&sb, "t-1.1");
	spawn_ok(&sb, argv, NULL, work);
	wait_exit(&sb);
	assert_int_equal(sb.code, 0);
	assert_log_equal(&sb, expected);
}

static void test_stdin_is_dev_null(void **unused) {
	static const char *const argv[] = { "readlink", "/proc/self/fd/0", NULL };
	struct dagd_sandbox sb;

	sb_new(&sb, "t-1.1");
	spawn_ok(&sb, argv, NULL, NULL);
	wait_exit(&sb);
	assert_int_equal(sb.code, 0);
	assert_log_equal(&sb, "/dev/null\n");
}

static void test_no_descriptor_of_the_host_leaks(void **unused) {
	static const char *const argv[] = { "sh", "-c", "ls /proc/$$/fd | tr '\\n' ' '", NULL };
	struct dagd_sandbox sb;
	int fd, leaky;

	/* a descriptor the host forgot to mark close-on-exec */
	fd = open("/dev/null", O_RDONLY);
	assert_true(fd >= 0);
	leaky = fcntl(fd, F_DUPFD, 40);
	assert_true(leaky >= 40);
	close(fd);

	sb_new(&sb, "t-1.1");
	spawn_ok(&sb, argv, NULL, NULL);
	wait_exit(&sb);
	close(leaky);
	assert_int_equal(sb.code, 0);
	assert_log_equal(&sb, "0 1 2 ");
}

static void test_output_is_appended_to_the_log_in_new_directories(void **unused) {
	static const char *const one[] = { "sh", "-c", "echo one; echo err >&2", NULL };
	static const char *const two[] = { "echo", "two", NULL };
	struct dagd_sandbox a, b;
	struct stat st;

	sb_new(&a, "t-1.1");
	snprintf(a.log, sizeof(a.log), "%s/logs/t-1/1.log", E.dir);
	spawn_ok(&a, one, NULL, NULL);
	wait_exit(&a);

	sb_new(&b, "t-1.2");
	snprintf(b.log, sizeof(b.log), "%s", a.log);
	spawn_ok(&b, two, NULL, NULL);
	wait_exit(&b);

	assert_log_equal(&b, "one\nerr\ntwo\n");
	assert_int_equal(stat(a.log, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
}

static void test_output_that_cannot_be_written_is_said(void **unused) {
	static const char *const argv[] = { "echo", "lost", NULL };
	struct dagd_sandbox sb;

	touch("file");
	sb_new(&sb, "t-1.1");
	snprintf(sb.log, sizeof(sb.log), "%s/file/sub/x.log", E.dir);
	spawn_ok(&sb, argv, NULL, NULL);
	wait_exit(&sb);
	assert_int_equal(sb.code, 0);
	assert_non_null(strstr(sb.message, "could not be written"));
}

/* ---- what cannot run ---- */

static void test_unknown_command_exits_127(void **unused) {
	static const char *const argv[] = { "dagd-no-such-command", "x", NULL };
	struct dagd_sandbox sb;

	sb_new(&sb, "t-1.1");
	spawn_ok(&sb, argv, NULL, NULL);
	wait_exit(&sb);
	assert_int_equal(sb.code, 127);
	assert_int_equal(sb.signal, 0);
	assert_log_contains(&sb, "dagd-no-such-command");
	assert_log_contains(&sb, "No such file or directory");
}

static void test_missing_cwd_exits_127(void **unused) {
	static const char *const argv[] = { "true", NULL };
	char cwd[PATH_MAX];
	struct dagd_sandbox sb;

	snprintf(cwd, sizeof(cwd), "%s/nonexistent", E.dir);
	sb_new(&sb, "t-1.1");
	spawn_ok(&sb, argv, NULL, cwd);
	wait_exit(&sb);
	assert_int_equal(sb.code, 127);
	assert_log_contains(&sb, "nonexistent");
}

static void test_spawn_errors_start_nothing(void **unused) {
	static const char *const empty[] = { NULL };
	static const char *const argv[] = { "true", NULL };
	struct dagd_sandbox sb;
	char *error = NULL;
	void *data = NULL;
	int r;

	sb_new(&sb, "t-1.1");
	r = spawn(&sb, empty, NULL, NULL, &data, &error);
	assert_int_equal(r, -EINVAL);
	assert_non_null(error);
	free(error);
	error = NULL;

	sb_new(&sb, "../escape");
	r = spawn(&sb, argv, NULL, NULL, &data, &error);
	assert_int_equal(r, -EINVAL);
	assert_non_null(error);
	free(error);

	assert_null(data);
	run_for(100 * MSEC);
	assert_int_equal(sb.started, 0);
	assert_int_equal(sb.exited, 0);
}

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

/* ---- options ---- */

static void check_refused(const char *json, const char *needle) {
	char *error = NULL;

	assert_true(X->check_options(E.state, json, &error) < 0);
	assert_non_null(error);
	if (!strstr(error, needle))
		fail_msg("the error for %s does not name '%s': %s", json, needle, error);
	free(error);
}

static void test_options_are_checked(void **unused) {
	char *error = NULL;

	assert_int_equal(X->check_options(E.state, "{}", &error), 0);
	assert_int_equal(X->check_options(E.state, "{\"user\": \"root\"}", &error), geteuid() == 0 ? 0 : -EPERM);
	free(error);
	check_refused("{\"usr\": \"nobody\"}", "usr");
	check_refused("{\"user\": 5}", "user");
	check_refused("{\"user\": \"dagd-no-such-user\"}", "dagd-no-such-user");
}

static void test_limit_options_are_checked(void **unused) {
	static const char *const good[] = {
		"{\"memory_max\": \"64m\", \"pids_max\": 8, \"cpu_max\": 0.5}",
		"{\"memory_max\": 1048576, \"cpu_max\": 2}",
		"{\"memory_max\": \"2G\", \"pids_max\": 4194304, \"cpu_max\": 0.01}",
		"{\"memory_max\": \"4096kib\", \"pids_max\": 1}",
	};
	char *error = NULL;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (X->check_options(E.state, good[i], &error) < 0)
			fail_msg("%s refused: %s", good[i], error);
		assert_null(error);
	}
	check_refused("{\"memory_max\": \"lots\"}", "memory_max");
	check_refused("{\"memory_max\": \"512k\"}", "at least 1m");
	check_refused("{\"memory_max\": -1}", "memory_max");
	check_refused("{\"memory_max\": \"99999999999g\"}", "memory_max");
	check_refused("{\"pids_max\": 0}", "pids_max");
	check_refused("{\"pids_max\": 4194305}", "pids_max");
	check_refused("{\"pids_max\": \"8\"}", "pids_max");
	check_refused("{\"cpu_max\": 0.005}", "cpu_max");
	check_refused("{\"cpu_max\": true}", "cpu_max");
	check_refused("{\"cpu_max\": 10001}", "cpu_max");
	/* the executor's own: refused at init */
	void *state = NULL;
	assert_int_equal(X->init(&E.host, "{\"pids_max\": 0}", &state, &error), -EINVAL);
	assert_null(state);
	assert_non_null(error);
	assert_non_null(strstr(error, "pids_max"));
	free(error);
}

/* A task with limits runs in cgroups of its own that hold them (v1 on the
 * hosts these tests run on, as root), or, where the helper can set none, is
 * refused at its start and nothing runs. */
static void test_a_task_with_limits_runs_in_its_cgroups_or_not_at_all(void **unused) {
	static const char *const first[] = { "true", NULL }, *const argv[] = { "cat", "/proc/self/cgroup", NULL };
	struct dagd_sandbox sb, sb2;
	struct dagd_spawn spec;
	char *error = NULL, *text;
	const char *status;
	void *data = NULL;
	int r;

	/* the helper's hello says how it limits tasks */
	sb_new(&sb, "t-1.1");
	spawn_ok(&sb, first, NULL, "/");
	wait_exit(&sb);
	status = X->status(E.state);
	sb_new(&sb2, "t-2.1");
	spec = spec_of(&sb2, argv, NULL, "/");
	spec.options_json = "{\"pids_max\": 5, \"memory_max\": \"64m\"}";
	r = X->spawn(E.state, &sb2, &spec, &data, &error);
	if (strstr(status, "no limits")) {
		assert_int_equal(r, -EOPNOTSUPP);
		assert_non_null(error);
		if (!strstr(error, "needs the cgroup") || !strstr(error, "which the local helper cannot use here"))
			fail_msg("the error: %s", error);
		free(error);
		assert_int_equal(sb2.started, 0);
		return;
	}
	if (r < 0)
		fail_msg("spawn: %s", error);
	wait_exit(&sb2);
	assert_int_equal(sb2.code, 0);
	text = file_read(sb2.log);
	assert_non_null(text);
	if (strstr(status, "cgroup v1")) {
		/* in its own cgroup of both hierarchies */
		char *pids = strstr(text, ":pids:"), *memory = strstr(text, ":memory:");

		assert_true(pids && memory);
		assert_true(strstr(pids, "/dagd-") && strstr(pids, "-t-2.1\n"));
		assert_true(strstr(memory, "/dagd-") && strstr(memory, "-t-2.1\n"));
	} else
		assert_non_null(strstr(text, "/t-2.1\n"));
	free(text);
}

static void test_tasks_of_a_root_host_run_as_nobody(void **unused) {
	static const char *const argv[] = { "id", "-u", NULL };
	struct dagd_sandbox sb;
	char *error = NULL, expected[32];

	if (geteuid() != 0)
		skip();
	plugin_stop();
	assert_int_equal(X->init(&E.host, "{}", &E.state, &error), 0);
	sb_new(&sb, "t-1.1");
	spawn_ok(&sb, argv, NULL, "/");
	wait_exit(&sb);
	assert_int_equal(sb.code, 0);
	snprintf(expected, sizeof(expected), "%u\n", (unsigned) getpwnam("nobody")->pw_uid);
	assert_log_equal(&sb, expected);
}

static void test_a_task_runs_as_the_user_it_names(void **unused) {
	static const char *const argv[] = { "id", "-u", NULL };
	struct dagd_sandbox sb;
	struct dagd_spawn spec;
	char *error = NULL, expected[32];
	void *data = NULL;

	if (geteuid() != 0)
		skip();
	sb_new(&sb, "t-1.1");
	spec = spec_of(&sb, argv, NULL, "/");
	spec.options_json = "{\"user\": \"nobody\"}";
	assert_int_equal(X->spawn(E.state, &sb, &spec, &data, &error), 0);
	wait_exit(&sb);
	assert_int_equal(sb.code, 0);
	snprintf(expected, sizeof(expected), "%u\n", (unsigned) getpwnam("nobody")->pw_uid);
	assert_log_equal(&sb, expected);
}

/* ---- the broken plugins of the loader tests are broken as they claim ---- */

static void test_broken_plugins_fail_the_way_they_should(void **unused) {
	static const char *const names[] = { "notso", "nosym", "badabi", "smallsize", "initfail" };
	char path[PATH_MAX];
	const struct dagd_executor *p;
	void *dl[5] = { NULL };
	char *error = NULL;
	void *state = NULL;

	for (size_t i = 0; i < 5; i++) {
		snprintf(path, sizeof(path), "%s/%s.so", broken_dir, names[i]);
		if (access(path, F_OK) < 0)
			skip();
	}

	snprintf(path, sizeof(path), "%s/notso.so", broken_dir);
	assert_null(dlopen(path, RTLD_NOW | RTLD_LOCAL));

	snprintf(path, sizeof(path), "%s/nosym.so", broken_dir);
	dl[1] = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	assert_non_null(dl[1]);
	assert_null(dlsym(dl[1], DAGD_EXECUTOR_SYMBOL));

	snprintf(path, sizeof(path), "%s/badabi.so", broken_dir);
	dl[2] = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	assert_non_null(dl[2]);
	p = dlsym(dl[2], DAGD_EXECUTOR_SYMBOL);
	assert_non_null(p);
	assert_int_equal(p->abi_version, 999);

	snprintf(path, sizeof(path), "%s/smallsize.so", broken_dir);
	dl[3] = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	assert_non_null(dl[3]);
	p = dlsym(dl[3], DAGD_EXECUTOR_SYMBOL);
	assert_non_null(p);
	assert_int_equal(p->abi_version, DAGD_EXECUTOR_ABI_VERSION);
	assert_true(p->size < sizeof(struct dagd_executor));

	snprintf(path, sizeof(path), "%s/initfail.so", broken_dir);
	dl[4] = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	assert_non_null(dl[4]);
	p = dlsym(dl[4], DAGD_EXECUTOR_SYMBOL);
	assert_non_null(p);
	assert_int_equal(p->abi_version, DAGD_EXECUTOR_ABI_VERSION);
	assert_int_equal(p->size, sizeof(struct dagd_executor));
	assert_int_equal(p->init(&E.host, "{}", &state, &error), -EINVAL);
	assert_non_null(error);
	assert_string_equal(error, "init failed on purpose");
	free(error);

	for (size_t i = 0; i < 5; i++)
		if (dl[i])
			dlclose(dl[i]);
}

static void test_plugin_describes_itself(void **unused) {
	assert_int_equal(X->abi_version, DAGD_EXECUTOR_ABI_VERSION);
	assert_int_equal(X->size, sizeof(struct dagd_executor));
	assert_string_equal(X->name, "local");
	assert_non_null(X->description);
	assert_non_null(X->init);
	assert_non_null(X->shutdown);
	assert_non_null(X->spawn);
	assert_non_null(X->cancel);
	assert_non_null(X->adopt);
	assert_non_null(X->list);
	assert_non_null(X->forget);
	assert_non_null(X->check_options);
}

int main(int argc, char **argv) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_plugin_describes_itself),
		T(test_exit_zero_is_reported_and_a_silent_task_leaves_no_file),
		T(test_exit_code_3_is_reported),
		T(test_death_by_signal_is_reported),
		T(test_argv_and_env_reach_the_process),
		T(test_environment_is_exactly_the_given_one),
		T(test_command_is_searched_in_the_tasks_path),
		T(test_cwd_is_honoured),
		T(test_stdin_is_dev_null),
		T(test_no_descriptor_of_the_host_leaks),
		T(test_output_is_appended_to_the_log_in_new_directories),
		T(test_output_that_cannot_be_written_is_said),
		T(test_unknown_command_exits_127),
		T(test_missing_cwd_exits_127),
		T(test_spawn_errors_start_nothing),
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
		T(test_options_are_checked),
		T(test_limit_options_are_checked),
		T(test_a_task_with_limits_runs_in_its_cgroups_or_not_at_all),
		T(test_tasks_of_a_root_host_run_as_nobody),
		T(test_a_task_runs_as_the_user_it_names),
		T(test_broken_plugins_fail_the_way_they_should),
	};
#undef T

	if (harness_init(argc, argv) < 0)
		return 1;
	return cmocka_run_group_tests_name("local executor", tests, NULL, NULL);
}
