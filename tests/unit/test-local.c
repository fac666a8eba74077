/*
 * test-local.c - the local executor plugin: a process's life.  Its exit
 * (code, signal), what it gets (argv, environment, PATH, cwd, stdin, no
 * descriptor of the host), where its output goes, what cannot run; and the
 * plugin as the loader sees it (its description, the broken plugins of the
 * loader tests).  The host and its helpers are in local-harness.c.
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
	/* the shell's own descriptors, read by ls while the shell waits for it
	 * (a pipeline would show the pipe the shell has not closed yet) */
	static const char *const argv[] = { "sh", "-c", "ls /proc/$$/fd; true", NULL };
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
	assert_log_equal(&sb, "0\n1\n2\n");
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
		T(test_broken_plugins_fail_the_way_they_should),
	};
#undef T

	if (harness_init(argc, argv) < 0)
		return 1;
	return cmocka_run_group_tests_name("local executor", tests, NULL, NULL);
}
