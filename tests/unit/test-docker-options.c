/*
 * test-docker-options.c - the docker executor's task options and the
 * container they define (plugins/docker/options.c): sizes, the environment
 * (the daemon's PATH and HOME left out, DAGD_SOCKET as seen inside), labels,
 * read-only binds, limits, and the errors a person gets for bad options.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "docker.h"

static const struct docker_site site = {
	.instance = "/var/lib/dagd",
	.socket_dir = "/run/dagd-host",
	.socket_mount = "/run/dagd",
	.socket_inside = "/run/dagd/dagd.sock",
	.keep_failed = false,
};

static const char *const argv_sh[] = { "/bin/sh", "-c", "make test", NULL };

/* Builds the container of these options with a typical spec; the error
 * message, if any, into *ret_error. */
static int build(const char *options, const char *cwd, const char *const *envp,
		 struct container_def *ret, char **ret_error) {
	static const char *const no_env[] = { NULL };
	struct dagd_spawn spec = {
		.sandbox_id = "t-3.2",
		.task_id = "t-3",
		.project_id = "p-1",
		.attempt = 2,
		.argv = argv_sh,
		.envp = envp ? envp : no_env,
		.cwd = cwd,
		.log_path = "/tmp/log",
		.options_json = options,
	};

	return container_def_build(&site, &spec, ret, ret_error);
}

static json_object *get(json_object *o, const char *path) {
	char key[64];
	const char *dot;

	while (o && (dot = strchr(path, '.'))) {
		snprintf(key, sizeof(key), "%.*s", (int) (dot - path), path);
		if (!json_object_object_get_ex(o, key, &o))
			return NULL;
		path = dot + 1;
	}
	return o && json_object_object_get_ex(o, path, &o) ? o : NULL;
}

static const char *get_str(json_object *o, const char *path) {
	json_object *v = get(o, path);

	return v ? json_object_get_string(v) : NULL;
}

static bool array_has(json_object *a, const char *s) {
	for (size_t i = 0; a && i < json_object_array_length(a); i++)
		if (strcmp(json_object_get_string(json_object_array_get_idx(a, i)), s) == 0)
			return true;
	return false;
}

/* The error for these options: it must contain `want`. */
static void assert_error(const char *options, const char *want) {
	struct container_def def = {};
	char *err = NULL;

	assert_int_equal(build(options, NULL, NULL, &def, &err), -EINVAL);
	assert_non_null(err);
	if (!strstr(err, want))
		fail_msg("error '%s' does not say '%s'", err, want);
	assert_null(def.create);
	free(err);
}

static void sizes_are_bytes_or_k_m_g(void **state) {
	static const struct {
		const char *json;
		int64_t bytes;
	} good[] = {
		{ "1024", 1024 }, { "\"1024\"", 1024 }, { "\"10k\"", 10240 }, { "\"64m\"", 64 << 20 },
		{ "\"64M\"", 64 << 20 }, { "\"5MiB\"", 5 << 20 }, { "\"2g\"", 2LL << 30 }, { "\"3gb\"", 3LL << 30 },
	};
	static const char *const bad[] = { "-1", "\"-1m\"", "\"64q\"", "\"m\"", "\"\"", "1.5", "true",
					   "\"99999999999999999999\"", "\"9999999999999g\"" };
	int64_t n;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		json_object *v = json_tokener_parse(good[i].json);

		assert_int_equal(parse_size(v, &n), 0);
		assert_int_equal(n, good[i].bytes);
		json_object_put(v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_object *v = json_tokener_parse(bad[i]);

		if (parse_size(v, &n) >= 0)
			fail_msg("%s was taken for a size (%lld)", bad[i], (long long) n);
		json_object_put(v);
	}
}

static void the_minimal_container_runs_the_command_without_network_and_with_labels(void **state) {
	struct container_def def = {};
	json_object *c;

	assert_int_equal(build("{\"image\": \"busybox:1\"}", NULL, NULL, &def, NULL), 0);
	c = def.create;
	assert_string_equal(get_str(c, "Image"), "busybox:1");
	assert_int_equal(json_object_array_length(get(c, "Cmd")), 3);
	assert_string_equal(json_object_get_string(json_object_array_get_idx(get(c, "Cmd"), 2)), "make test");
	assert_null(get(c, "Entrypoint"));
	assert_null(get(c, "WorkingDir"));
	assert_null(get(c, "User"));
	assert_false(json_object_get_boolean(get(c, "Tty")));
	assert_string_equal(get_str(c, "HostConfig.NetworkMode"), "none");
	assert_null(get(c, "HostConfig.Memory"));
	assert_null(get(c, "HostConfig.Init"));
	assert_int_equal(json_object_array_length(get(c, "HostConfig.Binds")), 1);
	assert_true(array_has(get(c, "HostConfig.Binds"), "/run/dagd-host:/run/dagd:ro"));
	assert_string_equal(json_object_get_string(json_object_object_get(get(c, "Labels"), "dagd.instance")),
			    "/var/lib/dagd");
	assert_string_equal(json_object_get_string(json_object_object_get(get(c, "Labels"), "dagd.project")), "p-1");
	assert_string_equal(json_object_get_string(json_object_object_get(get(c, "Labels"), "dagd.task")), "t-3");
	assert_string_equal(json_object_get_string(json_object_object_get(get(c, "Labels"), "dagd.attempt")), "2");
	assert_string_equal(json_object_get_string(json_object_object_get(get(c, "Labels"), "dagd.sandbox")), "t-3.2");
	assert_null(json_object_object_get(get(c, "Labels"), "dagd.keep-failed"));
	assert_null(def.engine);
	assert_false(def.keep_failed);
	assert_false(def.tty);
	container_def_done(&def);
}

static void the_environment_drops_the_daemons_path_and_home_and_points_dagd_socket_inside(void **state) {
	char path[4096], home[4096];
	const char *envp[] = { path, home, "SHARED=task", "TASK=1", "DAGD_TASK_ID=t-3",
			       "DAGD_SOCKET=/run/dagd-host/dagd.sock", "DAGD_TASK_TOKEN=abc", NULL };
	struct container_def def = {};
	json_object *env;

	setenv("PATH", "/usr/bin:/bin", 1);
	setenv("HOME", "/root", 1);
	snprintf(path, sizeof(path), "PATH=%s", getenv("PATH"));
	snprintf(home, sizeof(home), "HOME=%s", getenv("HOME"));
	assert_int_equal(build("{\"image\": \"i\", \"env\": {\"SHARED\": \"options\", \"OPT\": \"o\"}}",
			       NULL, envp, &def, NULL), 0);
	env = get(def.create, "Env");
	assert_int_equal(json_object_array_length(env), 6);
	assert_true(array_has(env, "SHARED=task"));
	assert_true(array_has(env, "OPT=o"));
	assert_true(array_has(env, "TASK=1"));
	assert_true(array_has(env, "DAGD_TASK_ID=t-3"));
	assert_true(array_has(env, "DAGD_TASK_TOKEN=abc"));
	assert_true(array_has(env, "DAGD_SOCKET=/run/dagd/dagd.sock"));
	container_def_done(&def);

	/* a PATH or HOME the task sets itself is kept */
	envp[0] = "PATH=/opt/bin:/bin";
	envp[1] = "HOME=/home/builder";
	assert_int_equal(build("{\"image\": \"i\"}", NULL, envp, &def, NULL), 0);
	env = get(def.create, "Env");
	assert_true(array_has(env, "PATH=/opt/bin:/bin"));
	assert_true(array_has(env, "HOME=/home/builder"));
	container_def_done(&def);
}

static void options_set_limits_user_workdir_tty_init_labels_and_engine(void **state) {
	struct container_def def = {};
	json_object *c;

	assert_int_equal(build("{\"image\": \"i\", \"memory\": \"64m\", \"cpus\": 0.5, \"pids_limit\": 50,"
			       " \"user\": \"65534:65534\", \"workdir\": \"/src\", \"tty\": true, \"init\": true,"
			       " \"network\": \"host\", \"labels\": {\"team\": \"qa\"}, \"keep_failed\": true,"
			       " \"entrypoint\": [\"/bin/env\"], \"socket\": \"/run/other.sock\"}",
			       NULL, NULL, &def, NULL), 0);
	c = def.create;
	assert_int_equal(json_object_get_int64(get(c, "HostConfig.Memory")), 64 << 20);
	assert_int_equal(json_object_get_int64(get(c, "HostConfig.MemorySwap")), 64 << 20);
	assert_int_equal(json_object_get_int64(get(c, "HostConfig.NanoCpus")), 500000000);
	assert_int_equal(json_object_get_int64(get(c, "HostConfig.PidsLimit")), 50);
	assert_true(json_object_get_boolean(get(c, "HostConfig.Init")));
	assert_string_equal(get_str(c, "HostConfig.NetworkMode"), "host");
	assert_string_equal(get_str(c, "User"), "65534:65534");
	assert_string_equal(get_str(c, "WorkingDir"), "/src");
	assert_true(json_object_get_boolean(get(c, "Tty")));
	assert_true(array_has(get(c, "Entrypoint"), "/bin/env"));
	assert_string_equal(json_object_get_string(json_object_object_get(get(c, "Labels"), "team")), "qa");
	assert_string_equal(json_object_get_string(json_object_object_get(get(c, "Labels"), "dagd.keep-failed")), "1");
	assert_string_equal(def.engine, "/run/other.sock");
	assert_true(def.keep_failed);
	assert_true(def.tty);
	container_def_done(&def);

	/* the task's own working directory wins */
	assert_int_equal(build("{\"image\": \"i\", \"workdir\": \"/src\"}", "/build", NULL, &def, NULL), 0);
	assert_string_equal(get_str(def.create, "WorkingDir"), "/build");
	container_def_done(&def);
}

static void binds_are_always_read_only(void **state) {
	struct container_def def = {};
	json_object *binds;

	assert_int_equal(build("{\"image\": \"i\", \"binds\": [\"/a:/b\", \"/c:/d:z\", \"/e:/f:ro\"]}",
			       NULL, NULL, &def, NULL), 0);
	binds = get(def.create, "HostConfig.Binds");
	assert_int_equal(json_object_array_length(binds), 4);
	assert_true(array_has(binds, "/a:/b:ro"));
	assert_true(array_has(binds, "/c:/d:z,ro"));
	assert_true(array_has(binds, "/e:/f:ro"));
	container_def_done(&def);

	assert_error("{\"image\": \"i\", \"binds\": [\"/a:/b:rw\"]}", "read-only");
	assert_error("{\"image\": \"i\", \"binds\": [\"a:/b\"]}", "absolute");
	assert_error("{\"image\": \"i\", \"binds\": [\"/a\"]}", "HOST:CONTAINER");
	assert_error("{\"image\": \"i\", \"binds\": \"/a:/b\"}", "binds");
}

static void bad_options_are_refused_with_a_message_naming_them(void **state) {
	assert_error("{}", "no image");
	assert_error("{\"image\": \"\"}", "image");
	assert_error("{\"image\": \"i\", \"imgae\": \"x\"}", "unknown option 'imgae'");
	assert_error("{\"image\": \"i\", \"memory\": \"lots\"}", "memory");
	assert_error("{\"image\": \"i\", \"memory\": 0}", "memory");
	assert_error("{\"image\": \"i\", \"cpus\": 0}", "cpus");
	assert_error("{\"image\": \"i\", \"cpus\": \"2\"}", "cpus");
	assert_error("{\"image\": \"i\", \"pids_limit\": -1}", "pids_limit");
	assert_error("{\"image\": \"i\", \"tty\": \"yes\"}", "tty");
	assert_error("{\"image\": \"i\", \"env\": {\"A\": 1}}", "env");
	assert_error("{\"image\": \"i\", \"env\": {\"A=B\": \"1\"}}", "variable name");
	assert_error("{\"image\": \"i\", \"labels\": {\"dagd.task\": \"x\"}}", "dagd.");
	assert_error("{\"image\": \"i\", \"entrypoint\": \"/bin/sh\"}", "entrypoint");
	assert_error("[1]", "not a JSON object");
}

static void the_executors_own_options_have_defaults_and_are_checked(void **state) {
	struct executor_settings set = {};
	char *err = NULL;

	assert_int_equal(executor_settings_parse("{}", &set, NULL), 0);
	assert_string_equal(set.engine, "/var/run/docker.sock");
	assert_string_equal(set.socket_mount, "/run/dagd");
	assert_false(set.keep_failed);
	assert_int_equal(set.sweep_usec, 300 * 1000000ULL);
	executor_settings_done(&set);

	assert_int_equal(executor_settings_parse("{\"socket\": \"/run/d.sock\", \"socket_mount\": \"/dagd\","
						 " \"keep_failed\": true, \"orphan_sweep\": 0.5,"
						 " \"max_concurrency\": 4}", &set, NULL), 0);
	assert_string_equal(set.engine, "/run/d.sock");
	assert_string_equal(set.socket_mount, "/dagd");
	assert_true(set.keep_failed);
	assert_int_equal(set.sweep_usec, 500000);
	executor_settings_done(&set);

	static const struct {
		const char *json, *want;
	} bad[] = {
		{ "{\"sockt\": \"/x\"}", "unknown option 'sockt' (known: socket, keep_failed," },
		{ "{\"socket_mount\": \"run\"}", "absolute" },
		{ "{\"orphan_sweep\": -1}", "orphan_sweep" },
		{ "{\"max_concurrency\": 1.5}", "integer" },
		{ "{\"keep_failed\": 1}", "keep_failed" },
		{ "[]", "not a JSON object" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(executor_settings_parse(bad[i].json, &set, &err), -EINVAL);
		if (!err || !strstr(err, bad[i].want))
			fail_msg("%s: error '%s' does not say '%s'", bad[i].json, err, bad[i].want);
		free(err);
		err = NULL;
	}
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sizes_are_bytes_or_k_m_g),
		cmocka_unit_test(the_minimal_container_runs_the_command_without_network_and_with_labels),
		cmocka_unit_test(the_environment_drops_the_daemons_path_and_home_and_points_dagd_socket_inside),
		cmocka_unit_test(options_set_limits_user_workdir_tty_init_labels_and_engine),
		cmocka_unit_test(binds_are_always_read_only),
		cmocka_unit_test(bad_options_are_refused_with_a_message_naming_them),
		cmocka_unit_test(the_executors_own_options_have_defaults_and_are_checked),
	};

	return cmocka_run_group_tests_name("docker options", tests, NULL, NULL);
}
