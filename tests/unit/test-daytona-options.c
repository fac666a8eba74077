/*
 * test-daytona-options.c - the daytona executor's options and the sandbox
 * they define (plugins/daytona/options.c): the body of POST /sandbox
 * (snapshot or image, resources, labels, env without the daemon's socket,
 * token or key, autoStopInterval 0 by default), the command quoted for the
 * session's shell, resources refused with a snapshot, and the executor's own
 * options (the key from an option or the environment).
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

#include "daytona.h"

static const char *const argv_sh[] = { "/bin/sh", "-c", "echo 'it''s' \"$X\"", NULL };
static const char *const envp[] = {
	"DAGD_TASK_ID=t-3", "DAGD_SOCKET=/run/dagd/s", "DAGD_TASK_TOKEN=secret", "X=1", NULL
};

static struct daytona_settings settings(void) {
	return (struct daytona_settings) {
		.api_url = (char *) "http://127.0.0.1:1",
		.api_key = (char *) "the-key",
	};
}

static int build(const char *options, const char *cwd, struct sandbox_def *ret, char **ret_error) {
	struct daytona_settings set = settings();
	struct dagd_spawn spec = {
		.sandbox_id = "t-3.2",
		.task_id = "t-3",
		.project_id = "p-1",
		.attempt = 2,
		.argv = argv_sh,
		.envp = envp,
		.cwd = cwd,
		.log_path = "/tmp/log",
		.options_json = options,
	};

	return sandbox_def_build(&set, "/var/lib/dagd", &spec, ret, ret_error);
}

static const char *str(json_object *o, const char *a, const char *b) {
	json_object *v;

	if (!json_object_object_get_ex(o, a, &v))
		return NULL;
	if (b && !json_object_object_get_ex(v, b, &v))
		return NULL;
	return json_object_get_string(v);
}

static void a_snapshot_sandbox_has_labels_env_and_no_auto_stop(void **state) {
	struct sandbox_def def = {};
	char *err = NULL;

	assert_int_equal(build("{\"snapshot\": \"base\", \"labels\": {\"team\": \"a\"}}", NULL, &def, &err), 0);
	assert_string_equal(str(def.create, "snapshot", NULL), "base");
	assert_string_equal(str(def.create, "autoStopInterval", NULL), "0");
	assert_string_equal(str(def.create, "labels", "dagd.instance"), "/var/lib/dagd");
	assert_string_equal(str(def.create, "labels", "dagd.sandbox"), "t-3.2");
	assert_string_equal(str(def.create, "labels", "dagd.attempt"), "2");
	assert_string_equal(str(def.create, "labels", "team"), "a");
	assert_string_equal(str(def.create, "env", "DAGD_TASK_ID"), "t-3");
	assert_string_equal(str(def.create, "env", "X"), "1");
	assert_string_equal(str(def.create, "env", "DAGD_RESULT_FILE"), DAYTONA_DEFAULT_RESULT_FILE);
	assert_null(str(def.create, "env", "DAGD_SOCKET"));
	assert_null(str(def.create, "env", "DAGD_TASK_TOKEN"));
	assert_null(str(def.create, "env", "DAYTONA_API_KEY"));
	assert_null(str(def.create, "cpu", NULL));
	assert_string_equal(def.command, "'/bin/sh' '-c' 'echo '\\''it'\\'''\\''s'\\'' \"$X\"'");
	assert_string_equal(def.result_file, DAYTONA_DEFAULT_RESULT_FILE);
	sandbox_def_done(&def);
}

static void an_image_sandbox_takes_resources_a_workdir_and_the_key_if_asked(void **state) {
	struct sandbox_def def = {};
	char *err = NULL;

	assert_int_equal(build("{\"image\": \"debian:12\", \"cpu\": 2, \"memory\": 4, \"disk\": 10, "
			       "\"auto_stop_interval\": 30, \"pass_api_key\": true, \"result_file\": \"/r.json\", "
			       "\"workdir\": \"/w\"}", "/src/it's", &def, &err), 0);
	assert_string_equal(str(def.create, "buildInfo", "dockerfileContent"), "FROM debian:12\n");
	assert_string_equal(str(def.create, "cpu", NULL), "2");
	assert_string_equal(str(def.create, "memory", NULL), "4");
	assert_string_equal(str(def.create, "disk", NULL), "10");
	assert_string_equal(str(def.create, "autoStopInterval", NULL), "30");
	assert_string_equal(str(def.create, "env", "DAYTONA_API_KEY"), "the-key");
	assert_string_equal(str(def.create, "env", "DAGD_RESULT_FILE"), "/r.json");
	/* the task's cwd wins over the workdir option */
	assert_true(strncmp(def.command, "cd '/src/it'\\''s' && ", 21) == 0);
	sandbox_def_done(&def);
}

static void bad_options_are_refused_before_anything_is_sent(void **state) {
	static const struct {
		const char *options, *error;
	} cases[] = {
		{ "{\"snapshot\": \"base\", \"cpu\": 2}", "option 'cpu' cannot go with a snapshot" },
		{ "{\"snapshot\": \"base\", \"memory\": 2}", "option 'memory' cannot go with a snapshot" },
		{ "{\"snapshot\": \"base\", \"image\": \"x\"}", "options 'snapshot' and 'image' exclude each other" },
		{ "{\"image\": \"x\", \"cpu\": 0}", "option 'cpu' must be an integer from 1" },
		{ "{\"image\": \"x\", \"cpu\": \"2\"}", "option 'cpu' must be an integer from 1" },
		{ "{\"labels\": {\"dagd.x\": \"1\"}}", "option 'labels': 'dagd.x': dagd.* labels are dagd's own" },
		{ "{\"result_file\": \"r.json\"}", "option 'result_file' must be an absolute path" },
		{ "{\"imag\": \"x\"}", "unknown option 'imag'" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sandbox_def def = {};
		char *err = NULL;

		assert_int_equal(build(cases[i].options, NULL, &def, &err), -EINVAL);
		assert_non_null(err);
		if (strncmp(err, cases[i].error, strlen(cases[i].error)) != 0)
			fail_msg("%s: got '%s', want '%s...'", cases[i].options, err, cases[i].error);
		free(err);
	}
}

static void the_executors_own_options_take_the_key_from_an_option_or_the_environment(void **state) {
	struct daytona_settings set = {};
	char *err = NULL;

	unsetenv("DAYTONA_API_KEY");
	assert_int_equal(daytona_settings_parse("{}", &set, &err), -ENOKEY);
	assert_non_null(strstr(err, "DAYTONA_API_KEY"));
	free(TAKE_PTR(err));

	setenv("DAYTONA_API_KEY", "from-env", 1);
	assert_int_equal(daytona_settings_parse("{}", &set, &err), 0);
	assert_string_equal(set.api_url, DAYTONA_DEFAULT_API_URL);
	assert_string_equal(set.api_key, "from-env");
	assert_int_equal(set.poll_usec, 2000000);
	daytona_settings_done(&set);

	setenv("OTHER_KEY", "other", 1);
	assert_int_equal(daytona_settings_parse("{\"api_url\": \"http://x/api/\", \"api_key_env\": \"OTHER_KEY\", "
						"\"poll_interval\": 0.5}", &set, &err), 0);
	assert_string_equal(set.api_url, "http://x/api");
	assert_string_equal(set.api_key, "other");
	assert_int_equal(set.poll_usec, 500000);
	daytona_settings_done(&set);

	assert_int_equal(daytona_settings_parse("{\"api_key\": \"k\", \"api_url\": \"ftp://x\"}", &set, &err), -EINVAL);
	free(TAKE_PTR(err));
	assert_int_equal(daytona_settings_parse("{\"api_key\": \"k\", \"poll_interval\": 0}", &set, &err), -EINVAL);
	free(TAKE_PTR(err));
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_snapshot_sandbox_has_labels_env_and_no_auto_stop),
		cmocka_unit_test(an_image_sandbox_takes_resources_a_workdir_and_the_key_if_asked),
		cmocka_unit_test(bad_options_are_refused_before_anything_is_sent),
		cmocka_unit_test(the_executors_own_options_take_the_key_from_an_option_or_the_environment),
	};

	return cmocka_run_group_tests_name("daytona options", tests, NULL, NULL);
}
