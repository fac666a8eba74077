/*
 * test-slurm-options.c - the slurm executor's options and the batch job they
 * define (plugins/slurm/options.c): the sbatch command line (the job's name,
 * comment, output, no requeue, no exported environment, resources), the
 * wrapper script run for real under /bin/sh (the task's environment and
 * directory, exit codes and signals recorded in the exit file, TERM passed
 * on), check_options() refusing what is unknown or ill-typed with a message
 * naming the option, and what the tools say (plugins/slurm/tools.c, spool.c).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "slurm.h"

/* the plugin's one export, linked in */
extern const struct dagd_executor dagd_executor;

static const char *const envp[] = {
	"DAGD_TASK_ID=t-3", "DAGD_SANDBOX_ID=t-3.2", "X=it's \"$HOME\"", "bad-name=1", NULL
};

static char spool[] = "/tmp/dagd-test-slurm-XXXXXX";

static int build(const char *options, const char *const *argv, const char *cwd, struct job_def *ret,
		 char **ret_error) {
	struct slurm_settings set = {
		.sbatch = (char *) "/opt/slurm/bin/sbatch",
		.partition = (char *) "batch",
	};
	struct dagd_spawn spec = {
		.sandbox_id = "t-3.2",
		.task_id = "t-3",
		.project_id = "p-1",
		.attempt = 2,
		.argv = argv,
		.envp = envp,
		.cwd = cwd,
		.log_path = "/tmp/log",
		.options_json = options,
	};
	struct job_site site = { .set = &set, .spool = spool, .instance = "/var/lib/dagd", .name = "dagd-h-t-3.2" };

	return job_def_build(&site, &spec, ret, ret_error);
}

static bool has_arg(char **argv, const char *a) {
	for (size_t i = 0; argv[i]; i++)
		if (strcmp(argv[i], a) == 0)
			return true;
	return false;
}

static void the_sbatch_line_names_the_job_and_exports_nothing_of_the_daemon(void **state) {
	static const char *const argv[] = { "/bin/true", NULL };
	struct job_def def = {};
	char *err = NULL, buf[256];
	size_t n = 0;

	assert_int_equal(build("{\"cpus\": 2, \"memory\": \"4G\", \"time_limit\": 90, \"gres\": \"gpu:1\", "
			       "\"qos\": \"high\", \"extra_args\": [\"--exclusive\", \"--nice=5\"]}", argv, NULL,
			       &def, &err), 0);
	assert_string_equal(def.argv[0], "/opt/slurm/bin/sbatch");
	assert_true(has_arg(def.argv, "--parsable"));
	assert_true(has_arg(def.argv, "--no-requeue"));
	assert_true(has_arg(def.argv, "--export=NONE"));
	assert_true(has_arg(def.argv, "--job-name=dagd-h-t-3.2"));
	assert_true(has_arg(def.argv, "--comment=dagd sandbox t-3.2 of instance /var/lib/dagd"));
	snprintf(buf, sizeof(buf), "--output=%s/dagd-h-t-3.2.out", spool);
	assert_true(has_arg(def.argv, buf));
	assert_true(has_arg(def.argv, "--partition=batch"));       /* the executor's default */
	assert_true(has_arg(def.argv, "--qos=high"));
	assert_true(has_arg(def.argv, "--cpus-per-task=2"));
	assert_true(has_arg(def.argv, "--mem=4G"));
	assert_true(has_arg(def.argv, "--time=90"));
	assert_true(has_arg(def.argv, "--gres=gpu:1"));
	assert_true(has_arg(def.argv, "--exclusive"));
	assert_true(has_arg(def.argv, "--nice=5"));
	while (def.argv[n])
		n++;
	snprintf(buf, sizeof(buf), "%s/dagd-h-t-3.2.sh", spool);
	assert_string_equal(def.argv[n - 1], buf);
	job_def_done(&def);

	/* a task's partition wins over the executor's */
	assert_int_equal(build("{\"partition\": \"gpu\"}", argv, NULL, &def, &err), 0);
	assert_true(has_arg(def.argv, "--partition=gpu"));
	assert_false(has_arg(def.argv, "--partition=batch"));
	job_def_done(&def);
}

/* Runs the job's script under /bin/sh as Slurm would (sending it TERM once the
 * command has started, if asked); returns its wait status
 * and the exit file's text in exit_text. */
static int run_script(const struct job_def *def, bool term, char *exit_text, size_t size) {
	char sh[512], ex[512], cmd[1200];
	FILE *f;
	int status;
	size_t n;

	snprintf(sh, sizeof(sh), "%s/dagd-h-t-3.2.sh", spool);
	snprintf(ex, sizeof(ex), "%s/dagd-h-t-3.2.exit", spool);
	unlink(ex);
	assert_int_equal(write_file_atomic(sh, def->script, 0644), 0);
	/* TERM once the command runs (the wrapper traps it before it starts the command) */
	if (term)
		snprintf(cmd, sizeof(cmd), "cd / && rm -f %s/started && { env -i SLURM_JOB_ID=42 /bin/sh %s > %s/out 2>&1 & "
			 "while [ ! -e %s/started ]; do sleep 0.05; done; kill -TERM $!; wait $!; }", spool, sh, spool,
			 spool);
	else
		snprintf(cmd, sizeof(cmd), "cd / && env -i SLURM_JOB_ID=42 /bin/sh %s > %s/out 2>&1", sh, spool);
	status = system(cmd);
	f = fopen(ex, "r");
	assert_non_null(f);
	n = fread(exit_text, 1, size - 1, f);
	exit_text[n] = '\0';
	fclose(f);
	return status;
}

static void the_wrapper_records_exit_codes_signals_and_passes_term_on(void **state) {
	static const char *const exit7[] = { "/bin/sh", "-c", "exit 7", NULL };
	static const char *const killed[] = { "/bin/sh", "-c", "kill -USR1 $$", NULL };
	static const char *const env[] = { "/bin/sh", "-c", "printf '%s|%s|%s' \"$X\" \"$DAGD_TASK_ID\" \"$PWD\" > ../env", NULL };
	static const char *const polite[] = { "/bin/sh", "-c", "trap 'exit 3' TERM; touch started; while :; do sleep 0.05; done",
					      NULL };
	struct job_def def = {};
	char *err = NULL, text[256], path[600], dir[256];
	struct job_exit e;
	FILE *f;

	assert_int_equal(build("{}", exit7, NULL, &def, &err), 0);
	run_script(&def, false, text, sizeof(text));
	assert_string_equal(text, "exited 7\njob 42\n");
	snprintf(path, sizeof(path), "%s/dagd-h-t-3.2.exit", spool);
	assert_int_equal(exit_file_read(path, &e), 0);
	assert_int_equal(e.code, 7);
	assert_int_equal(e.signal, 0);
	assert_string_equal(e.job_id, "42");
	job_def_done(&def);

	assert_int_equal(build("{}", killed, NULL, &def, &err), 0);
	run_script(&def, false, text, sizeof(text));
	assert_string_equal(text, "killed 10\njob 42\n");
	assert_int_equal(exit_file_read(path, &e), 0);
	assert_int_equal(e.code, -1);
	assert_int_equal(e.signal, 10);
	job_def_done(&def);

	/* the task's environment, quoted; its directory */
	snprintf(dir, sizeof(dir), "%s/work", spool);
	assert_int_equal(mkdir_p(dir, 0755), 0);
	assert_int_equal(build("{}", env, dir, &def, &err), 0);
	run_script(&def, false, text, sizeof(text));
	assert_string_equal(text, "exited 0\njob 42\n");
	snprintf(path, sizeof(path), "%s/env", spool);
	f = fopen(path, "r");
	assert_non_null(f);
	text[fread(text, 1, sizeof(text) - 1, f)] = '\0';
	fclose(f);
	snprintf(path, sizeof(path), "it's \"$HOME\"|t-3|%s", dir);
	assert_string_equal(text, path);
	job_def_done(&def);

	/* a directory that is not there: 127, said in the output */
	assert_int_equal(build("{}", exit7, "/no/such/dir", &def, &err), 0);
	run_script(&def, false, text, sizeof(text));
	assert_string_equal(text, "exited 127\njob 42\n");
	job_def_done(&def);

	/* TERM to the wrapper reaches the command, which exits on its own */
	assert_int_equal(build("{}", polite, NULL, &def, &err), 0);
	run_script(&def, true, text, sizeof(text));
	assert_string_equal(text, "exited 3\njob 42\n");
	job_def_done(&def);
}

static void check_options_refuses_what_is_unknown_or_ill_typed_naming_the_option(void **state) {
	static const struct {
		const char *options, *error;
	} cases[] = {
		{ "{\"image\": \"x\"}", "unknown option 'image'" },
		{ "{\"cpus\": 0}", "option 'cpus' must be an integer from 1" },
		{ "{\"cpus\": \"2\"}", "option 'cpus' must be an integer from 1" },
		{ "{\"memory\": \"lots\"}", "option 'memory' must be" },
		{ "{\"memory\": -1}", "option 'memory' must be" },
		{ "{\"time_limit\": \"soon\"}", "option 'time_limit' must be" },
		{ "{\"time_limit\": 0}", "option 'time_limit' must be" },
		{ "{\"partition\": \"\"}", "option 'partition' must be a non-empty string" },
		{ "{\"account\": \"a\\nb\"}", "option 'account' must be a string on one line" },
		{ "{\"gres\": 1}", "option 'gres' must be a non-empty string" },
		{ "{\"extra_args\": \"--exclusive\"}", "option 'extra_args' must be a list of strings" },
		{ "{\"extra_args\": [1]}", "option 'extra_args' must be a list of strings" },
		{ "{\"extra_args\": [\"--wrap=true\"]}", "option 'extra_args': '--wrap=true' is not allowed" },
		{ "{\"extra_args\": [\"--export=ALL\"]}", "option 'extra_args': '--export=ALL' is not allowed" },
		{ "{\"extra_args\": [\"--nice\"]}", "option 'extra_args': '--nice' is not allowed" },
		{ "[]", "the options are not a JSON object" },
	};
	static const char *const argv[] = { "/bin/true", NULL };
	struct job_def def = {};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *err = NULL;

		assert_int_equal(dagd_executor.check_options(NULL, cases[i].options, &err), -EINVAL);
		assert_non_null(err);
		if (!strstr(err, cases[i].error))
			fail_msg("%s: '%s' does not say '%s'", cases[i].options, err, cases[i].error);
		free(err);
		/* and spawn refuses them too */
		err = NULL;
		assert_int_equal(build(cases[i].options, argv, NULL, &def, &err), -EINVAL);
		free(err);
	}
	assert_int_equal(dagd_executor.check_options(NULL, "{\"cpus\": 4, \"memory\": 512, \"time_limit\": \"1:30:00\", "
							 "\"constraint\": \"a&b\", \"extra_args\": [\"--tmp=1G\"]}",
						     NULL), 0);
	assert_int_equal(dagd_executor.check_options(NULL, "{}", NULL), 0);
}

static void the_executors_own_options_have_defaults_and_are_checked(void **state) {
	struct slurm_settings set = {};
	char *err = NULL;

	assert_int_equal(slurm_settings_parse("{}", &set, &err), 0);
	assert_string_equal(set.sbatch, "sbatch");
	assert_string_equal(set.squeue, "squeue");
	assert_null(set.spool_dir);
	assert_int_equal(set.poll_usec, 500000);
	assert_int_equal(set.max_tools, 4);
	slurm_settings_done(&set);
	assert_int_equal(slurm_settings_parse("{\"spool_dir\": \"/shared/dagd\", \"poll_interval\": 2, "
					      "\"scancel\": \"/opt/bin/scancel\", \"max_concurrency\": 50}", &set, &err), 0);
	assert_string_equal(set.spool_dir, "/shared/dagd");
	assert_string_equal(set.scancel, "/opt/bin/scancel");
	assert_int_equal(set.poll_usec, 2000000);
	slurm_settings_done(&set);
	assert_int_equal(slurm_settings_parse("{\"spool_dir\": \"relative\"}", &set, &err), -EINVAL);
	assert_non_null(strstr(err, "'spool_dir'"));
	free(TAKE_PTR(err));
	assert_int_equal(slurm_settings_parse("{\"poll_interval\": 0}", &set, &err), -EINVAL);
	free(TAKE_PTR(err));
	assert_int_equal(slurm_settings_parse("{\"cpus\": 2}", &set, &err), -EINVAL);
	assert_non_null(strstr(err, "unknown option 'cpus'"));
	free(TAKE_PTR(err));
}

static void what_the_tools_say_is_read(void **state) {
	struct squeue_job *jobs = NULL;
	struct scontrol_job j;
	size_t n = 0;

	assert_int_equal(squeue_parse("12|dagd-abc-t-1.1|RUNNING|None\n13|other|PENDING|Priority\n"
				      "14|dagd-abc-t-2.1|COMPLETED|None\n15|dagd-xyz-t-1.1|RUNNING|None\n",
				      "dagd-abc-", &jobs, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(jobs[0].id, "12");
	assert_string_equal(jobs[0].state, "RUNNING");
	assert_string_equal(jobs[1].name, "dagd-abc-t-2.1");
	assert_false(state_is_final(jobs[0].state));
	assert_true(state_is_final(jobs[1].state));
	squeue_jobs_free(jobs, n);

	assert_int_equal(scontrol_parse("JobId=12 JobName=x UserId=root(0) JobState=TIMEOUT Reason=TimeLimit "
					"Dependency=(null) ExitCode=0:15 RunTime=00:00:31\n", &j), 0);
	assert_string_equal(j.state, "TIMEOUT");
	assert_string_equal(j.reason, "TimeLimit");
	assert_int_equal(j.exit_code, 0);
	assert_int_equal(j.exit_signal, 15);
	assert_string_equal(state_reason(j.state), "timeout");
	assert_string_equal(state_reason("OUT_OF_MEMORY"), "oom");
	assert_string_equal(state_reason("NODE_FAIL"), "lost");
	assert_int_equal(scontrol_parse("slurm_load_jobs error: Invalid job id specified\n", &j), -EBADMSG);
}

static int setup(void **state) {
	return mkdtemp(spool) ? 0 : -1;
}

static int teardown(void **state) {
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", spool);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(the_sbatch_line_names_the_job_and_exports_nothing_of_the_daemon),
		cmocka_unit_test(the_wrapper_records_exit_codes_signals_and_passes_term_on),
		cmocka_unit_test(check_options_refuses_what_is_unknown_or_ill_typed_naming_the_option),
		cmocka_unit_test(the_executors_own_options_have_defaults_and_are_checked),
		cmocka_unit_test(what_the_tools_say_is_read),
	};

	return cmocka_run_group_tests_name("slurm options", tests, setup, teardown);
}
