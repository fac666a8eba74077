/*
 * test-local-options.c - the local executor plugin's options: checked, the
 * limits of a task (its cgroups), the user a task runs as.  The host and
 * its helpers are in local-harness.c.
 */
#include "local-harness.h"

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

int main(int argc, char **argv) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_options_are_checked),
		T(test_limit_options_are_checked),
		T(test_a_task_with_limits_runs_in_its_cgroups_or_not_at_all),
		T(test_tasks_of_a_root_host_run_as_nobody),
		T(test_a_task_runs_as_the_user_it_names),
	};
#undef T

	if (harness_init(argc, argv) < 0)
		return 1;
	return cmocka_run_group_tests_name("local executor: options", tests, NULL, NULL);
}
