/*
 * options.c - the slurm executor's options: its own, and a task's, with the
 * batch job those define (the wrapper script and the sbatch command line).
 *
 * The executor's own (--executor-options slurm='{...}'):
 *
 *   partition, account, qos   defaults of the task options of the same name
 *   spool_dir         where jobs leave their output and exit (a directory
 *                     compute nodes share with dagd), default the state
 *                     directory's slurm-spool/
 *   poll_interval     seconds between two polls of squeue, default 0.5
 *   tool_timeout      seconds one run of a tool may take, default 60
 *   max_tools         tools running at once, default 4
 *   sbatch, squeue, scontrol, scancel   the tools, default found in PATH
 *   max_concurrency   the executor's limit (the host reads it)
 *
 * A job's options (the project's overlaid by the task's):
 *
 *   partition, account, qos, gres, constraint   strings, as sbatch takes them
 *   cpus          CPUs of the job's one task (--cpus-per-task)
 *   memory        MiB, or a string like "512M", "4G" (--mem)
 *   time_limit    minutes, or a string sbatch takes ("1:30:00", "2-0")
 *   extra_args    more sbatch options, each from a short allow-list
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slurm.h"

#define DEFAULT_POLL_SEC 0.5
#define DEFAULT_TOOL_TIMEOUT_SEC 60
#define DEFAULT_MAX_TOOLS 4

static const char *const executor_options[] = {
	"partition", "account", "qos", "spool_dir", "poll_interval", "tool_timeout", "max_tools",
	"sbatch", "squeue", "scontrol", "scancel", "max_concurrency", NULL
};

static const char *const task_options[] = {
	"partition", "account", "qos", "gres", "constraint", "cpus", "memory", "time_limit", "extra_args", NULL
};

/* The sbatch options extra_args may give: "--name=value" for those ending in
 * '=', the bare flag for the others.  What the executor sets itself (name,
 * output, environment, requeue, directory) and what would run something else
 * (--wrap, --array, --dependency, --uid) is not among them. */
static const char *const extra_allowed[] = {
	"--nice=", "--exclusive", "--mem-per-cpu=", "--tmp=", "--nodelist=", "--exclude=", "--licenses=",
	"--reservation=", "--begin=", "--deadline=", "--hint=", "--ntasks=", "--nodes=", "--gpus=",
	"--gpus-per-node=", "--cpus-per-gpu=", "--mem-per-gpu=", "--mail-type=", "--mail-user=",
	"--priority=", "--signal=", "--wckey=", "--cluster-constraint=", "--core-spec=", "--threads-per-core=",
	"--time-min=", "--overcommit", "--contiguous", "--spread-job", NULL
};

void strv_free(char **v) {
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

void slurm_settings_done(struct slurm_settings *s) {
	free(s->partition);
	free(s->account);
	free(s->qos);
	free(s->spool_dir);
	free(s->sbatch);
	free(s->squeue);
	free(s->scontrol);
	free(s->scancel);
	*s = (struct slurm_settings) {};
}

/* One line, no NUL: what can go on sbatch's command line. */
static int get_word(json_object *o, const char *key, const char **ret, char **ret_error) {
	int r = get_string(o, key, ret, ret_error);

	if (r >= 0 && *ret && strpbrk(*ret, "\r\n"))
		return type_error(ret_error, key, "a string on one line");
	return r;
}

static char *dup_or(const char *s, const char *dflt) {
	return s ? strdup(s) : dflt ? strdup(dflt) : NULL;
}

int slurm_settings_parse(const char *options_json, struct slurm_settings *ret, char **ret_error) {
	_cleanup_json_ json_object *o = NULL;
	const char *partition, *account, *qos, *spool, *sbatch, *squeue, *scontrol, *scancel;
	double poll = DEFAULT_POLL_SEC, tool = DEFAULT_TOOL_TIMEOUT_SEC, tools = DEFAULT_MAX_TOOLS, limit = 0;
	json_object *v;
	int r;

	if ((r = parse_object(options_json, executor_options, &o, ret_error)) < 0 ||
	    (r = get_word(o, "partition", &partition, ret_error)) < 0 ||
	    (r = get_word(o, "account", &account, ret_error)) < 0 ||
	    (r = get_word(o, "qos", &qos, ret_error)) < 0 ||
	    (r = get_word(o, "spool_dir", &spool, ret_error)) < 0 ||
	    (r = get_word(o, "sbatch", &sbatch, ret_error)) < 0 ||
	    (r = get_word(o, "squeue", &squeue, ret_error)) < 0 ||
	    (r = get_word(o, "scontrol", &scontrol, ret_error)) < 0 ||
	    (r = get_word(o, "scancel", &scancel, ret_error)) < 0 ||
	    (r = get_number(o, "poll_interval", 3600, &poll, ret_error)) < 0 ||
	    (r = get_number(o, "tool_timeout", 3600, &tool, ret_error)) < 0 ||
	    (r = get_number(o, "max_tools", 64, &tools, ret_error)) < 0 ||
	    (r = get_number(o, "max_concurrency", INT32_MAX, &limit, ret_error)) < 0)
		return r;
	if (json_object_object_get_ex(o, "max_concurrency", &v) && !json_object_is_type(v, json_type_int))
		return type_error(ret_error, "max_concurrency", "an integer");
	if (json_object_object_get_ex(o, "max_tools", &v) && (!json_object_is_type(v, json_type_int) || tools < 1))
		return type_error(ret_error, "max_tools", "an integer from 1 to 64");
	if (poll < 0.05)
		return type_error(ret_error, "poll_interval", "at least 0.05 (seconds)");
	if (tool < 1)
		return type_error(ret_error, "tool_timeout", "at least 1 (second)");
	if (spool && spool[0] != '/')
		return type_error(ret_error, "spool_dir", "an absolute path");
	*ret = (struct slurm_settings) {
		.partition = dup_or(partition, NULL),
		.account = dup_or(account, NULL),
		.qos = dup_or(qos, NULL),
		.spool_dir = dup_or(spool, NULL),
		.sbatch = dup_or(sbatch, "sbatch"),
		.squeue = dup_or(squeue, "squeue"),
		.scontrol = dup_or(scontrol, "scontrol"),
		.scancel = dup_or(scancel, "scancel"),
		.poll_usec = (uint64_t) (poll * 1e6),
		.tool_timeout_usec = (uint64_t) (tool * 1e6),
		.max_tools = (unsigned) tools,
	};
	if ((partition && !ret->partition) || (account && !ret->account) || (qos && !ret->qos) ||
	    (spool && !ret->spool_dir) || !ret->sbatch || !ret->squeue || !ret->scontrol || !ret->scancel) {
		slurm_settings_done(ret);
		return errorf(ret_error, -ENOMEM, "Out of memory");
	}
	return 0;
}

/* A positive integer, or absent (*ret 0). */
static int get_count(json_object *o, const char *key, int64_t max, int64_t *ret, char **ret_error) {
	json_object *v;

	*ret = 0;
	if (!json_object_object_get_ex(o, key, &v) || !v)
		return 0;
	if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 1 ||
	    json_object_get_int64(v) > max)
		return errorf(ret_error, -EINVAL, "option '%s' must be an integer from 1 to %lld", key,
			      (long long) max);
	*ret = json_object_get_int64(v);
	return 0;
}

/* "--mem=" for memory: MiB as a number, or digits and one of K M G T. */
static int get_memory(json_object *o, char **ret, char **ret_error) {
	json_object *v;
	const char *s;
	size_t n;

	*ret = NULL;
	if (!json_object_object_get_ex(o, "memory", &v) || !v)
		return 0;
	if (json_object_is_type(v, json_type_int) && json_object_get_int64(v) >= 1) {
		*ret = strdupf("%lld", (long long) json_object_get_int64(v));
		return *ret ? 0 : -ENOMEM;
	}
	s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
	n = strspn(s, "0123456789");
	if (n == 0 || n > 15 || (s[n] && (!strchr("KMGTkmgt", s[n]) || s[n + 1])))
		return type_error(ret_error, "memory", "a number of MiB or a size like \"512M\" or \"4G\"");
	*ret = strdup(s);
	return *ret ? 0 : -ENOMEM;
}

/* "--time=" for time_limit: minutes as a number, or what sbatch takes. */
static int get_time_limit(json_object *o, char **ret, char **ret_error) {
	json_object *v;
	const char *s;

	*ret = NULL;
	if (!json_object_object_get_ex(o, "time_limit", &v) || !v)
		return 0;
	if (json_object_is_type(v, json_type_int) && json_object_get_int64(v) >= 1 &&
	    json_object_get_int64(v) <= 100000000) {
		*ret = strdupf("%lld", (long long) json_object_get_int64(v));
		return *ret ? 0 : -ENOMEM;
	}
	s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
	if (!*s || strlen(s) > 32 || strspn(s, "0123456789:-") != strlen(s) || !isdigit((unsigned char) s[0]))
		return type_error(ret_error, "time_limit", "minutes, or a time like \"1:30:00\" or \"2-0\"");
	*ret = strdup(s);
	return *ret ? 0 : -ENOMEM;
}

static bool extra_arg_allowed(const char *a) {
	for (size_t i = 0; extra_allowed[i]; i++) {
		size_t n = strlen(extra_allowed[i]);

		if (extra_allowed[i][n - 1] == '=' ? strncmp(a, extra_allowed[i], n) == 0 && a[n] :
		    strcmp(a, extra_allowed[i]) == 0)
			return true;
	}
	return false;
}

static int get_extra_args(json_object *o, json_object **ret, char **ret_error) {
	json_object *v;

	*ret = NULL;
	if (!json_object_object_get_ex(o, "extra_args", &v) || !v)
		return 0;
	if (!json_object_is_type(v, json_type_array))
		return type_error(ret_error, "extra_args", "a list of strings");
	for (size_t i = 0; i < json_object_array_length(v); i++) {
		json_object *a = json_object_array_get_idx(v, i);
		const char *s = json_object_is_type(a, json_type_string) ? json_object_get_string(a) : NULL;

		if (!s)
			return type_error(ret_error, "extra_args", "a list of strings");
		if (strpbrk(s, "\r\n") || !extra_arg_allowed(s))
			return errorf(ret_error, -EINVAL, "option 'extra_args': '%s' is not allowed (allowed: --nice=, "
				      "--exclusive, --mem-per-cpu=, --tmp=, --nodelist=, --exclude=, --licenses=, "
				      "--reservation=, --begin=, --gpus=, and a few more; see the README)", s);
	}
	*ret = v;
	return 0;
}

/* What a job's options say, checked. */
struct task_opts {
	const char *partition, *account, *qos, *gres, *constraint;
	int64_t cpus;
	char *memory, *time_limit;
	json_object *extra;
	json_object *root;
};

static void task_opts_done(struct task_opts *t) {
	free(t->memory);
	free(t->time_limit);
	json_putp(&t->root);
}

static int task_opts_parse(const char *options_json, struct task_opts *ret, char **ret_error) {
	int r;

	*ret = (struct task_opts) {};
	if ((r = parse_object(options_json, task_options, &ret->root, ret_error)) < 0 ||
	    (r = get_word(ret->root, "partition", &ret->partition, ret_error)) < 0 ||
	    (r = get_word(ret->root, "account", &ret->account, ret_error)) < 0 ||
	    (r = get_word(ret->root, "qos", &ret->qos, ret_error)) < 0 ||
	    (r = get_word(ret->root, "gres", &ret->gres, ret_error)) < 0 ||
	    (r = get_word(ret->root, "constraint", &ret->constraint, ret_error)) < 0 ||
	    (r = get_count(ret->root, "cpus", 100000, &ret->cpus, ret_error)) < 0 ||
	    (r = get_memory(ret->root, &ret->memory, ret_error)) < 0 ||
	    (r = get_time_limit(ret->root, &ret->time_limit, ret_error)) < 0 ||
	    (r = get_extra_args(ret->root, &ret->extra, ret_error)) < 0) {
		if (r == -ENOMEM)
			(void) errorf(ret_error, r, "Out of memory");
		task_opts_done(ret);
		return r;
	}
	return 0;
}

int task_options_check(const char *options_json, char **ret_error) {
	struct task_opts t;
	int r = task_opts_parse(options_json, &t, ret_error);

	if (r >= 0)
		task_opts_done(&t);
	return r;
}

void job_def_done(struct job_def *def) {
	free(def->script);
	strv_free(def->argv);
	*def = (struct job_def) {};
}

static bool env_name_ok(const char *kv) {
	const char *eq = strchr(kv, '=');

	if (!eq || eq == kv || isdigit((unsigned char) kv[0]))
		return false;
	for (const char *p = kv; p < eq; p++)
		if (!isalnum((unsigned char) *p) && *p != '_')
			return false;
	return true;
}

/* The wrapper: the task's environment (with the PATH and HOME the daemon
 * passes on: a cluster's nodes are laid out like the host that submits),
 * then its command in the background,
 * TERM and INT passed on to it, and how it ended recorded in <name>.exit. */
static int script_build(const struct job_site *site, const struct dagd_spawn *spec, char **ret) {
	_cleanup_free_ char *buf = NULL, *base = spool_path(site->spool, site->name, "");
	_cleanup_free_ char *qbase = NULL, *qdir = NULL, *result = NULL, *qresult = NULL;
	const char *dir = spec->cwd && *spec->cwd ? spec->cwd : site->spool;
	size_t size = 0;
	FILE *f;
	bool ok;

	if (!base || !(qbase = shell_quote(base)) || !(qdir = shell_quote(dir)) ||
	    !(result = strdupf("%s.result.json", base)) || !(qresult = shell_quote(result)))
		return -ENOMEM;
	f = open_memstream(&buf, &size);
	if (!f)
		return -ENOMEM;
	ok = fprintf(f, "#!/bin/sh\n# dagd sandbox %s of instance %s: runs the task's command and records\n"
		     "# how it ended in %s.exit\n", spec->sandbox_id, site->instance, base) >= 0;
	for (size_t i = 0; ok && spec->envp && spec->envp[i]; i++) {
		const char *kv = spec->envp[i];
		_cleanup_free_ char *q = NULL;

		if (!env_name_ok(kv) || strncmp(kv, "DAGD_RESULT_FILE=", 17) == 0)
			continue;
		/* the host's path is not on the nodes: the copy in the spool is */
		if (strncmp(kv, "DAGD_INPUTS=", 12) == 0 && !site->inputs)
			continue;
		q = shell_quote(strncmp(kv, "DAGD_INPUTS=", 12) == 0 ? site->inputs : strchr(kv, '=') + 1);
		ok = q && fprintf(f, "export %.*s=%s\n", (int) (strchr(kv, '=') - kv), kv, q) >= 0;
	}
	ok = ok && fprintf(f,
		"export DAGD_RESULT_FILE=%s\n"
		"x=%s\n"
		"pid=\n"
		"trapped=\n"
		"trap 'trapped=1; [ -n \"$pid\" ] && kill -TERM \"$pid\" 2>/dev/null' TERM\n"
		"trap 'trapped=1; [ -n \"$pid\" ] && kill -INT \"$pid\" 2>/dev/null' INT\n"
		"record() {\n"
		"\tprintf '%%s\\njob %%s\\n' \"$1\" \"${SLURM_JOB_ID:-}\" >\"$x.exit.tmp\" && mv -f \"$x.exit.tmp\" \"$x.exit\"\n"
		"}\n"
		"if ! cd %s; then\n"
		"\techo \"dagd: cannot change to the directory %s\" >&2\n"
		"\trecord 'exited 127'\n"
		"\texit 127\n"
		"fi\n",
		qresult, qbase, qdir, dir) >= 0;
	for (size_t i = 0; ok && spec->argv[i]; i++) {
		_cleanup_free_ char *q = shell_quote(spec->argv[i]);

		ok = q && fprintf(f, "%s%s", i ? " " : "", q) >= 0;
	}
	ok = ok && fprintf(f,
		" </dev/null &\n"
		"pid=$!\n"
		/* a wait a trap cut short says 128+signal, not how the command
		 * ended: wait again, which then tells (or waits on) */
		"while :; do\n"
		"\ttrapped=\n"
		"\twait \"$pid\"\n"
		"\trc=$?\n"
		"\t[ -n \"$trapped\" ] || break\n"
		"done\n"
		"if [ \"$rc\" -gt 128 ] && [ \"$rc\" -lt 193 ]; then\n"
		"\trecord \"killed $((rc - 128))\"\n"
		"else\n"
		"\trecord \"exited $rc\"\n"
		"fi\n"
		"exit \"$rc\"\n") >= 0;
	if (fclose(f) != 0 || !ok)
		return -ENOMEM;
	*ret = TAKE_PTR(buf);
	return 0;
}

/* Appends "--key=value" (value formatted) to argv. */
static int argv_add(char ***argv, size_t *n, const char *format, ...) _printf_(3, 4);
static int argv_add(char ***argv, size_t *n, const char *format, ...) {
	va_list ap;
	char **a, *s;

	va_start(ap, format);
	if (vasprintf(&s, format, ap) < 0)
		s = NULL;
	va_end(ap);
	if (!s)
		return -ENOMEM;
	a = realloc(*argv, (*n + 2) * sizeof(*a));
	if (!a) {
		free(s);
		return -ENOMEM;
	}
	a[(*n)++] = s;
	a[*n] = NULL;
	*argv = a;
	return 0;
}

int job_def_build(const struct job_site *site, const struct dagd_spawn *spec, struct job_def *ret,
		  char **ret_error) {
	const struct slurm_settings *set = site->set;
	_cleanup_free_ char *script = NULL, *out = NULL, *sh = NULL;
	struct task_opts t;
	char **argv = NULL;
	size_t n = 0;
	const char *v;
	int r;

	r = task_opts_parse(spec->options_json, &t, ret_error);
	if (r < 0)
		return r;
	r = script_build(site, spec, &script);
	out = spool_path(site->spool, site->name, ".out");
	sh = spool_path(site->spool, site->name, ".sh");
	if (r < 0 || !out || !sh)
		goto oom;
	if (argv_add(&argv, &n, "%s", set->sbatch) < 0 ||
	    argv_add(&argv, &n, "--parsable") < 0 ||
	    argv_add(&argv, &n, "--no-requeue") < 0 ||
	    argv_add(&argv, &n, "--export=NONE") < 0 ||
	    argv_add(&argv, &n, "--job-name=%s", site->name) < 0 ||
	    argv_add(&argv, &n, "--comment=dagd sandbox %s of instance %s", spec->sandbox_id, site->instance) < 0 ||
	    argv_add(&argv, &n, "--output=%s", out) < 0 ||
	    argv_add(&argv, &n, "--open-mode=append") < 0 ||
	    argv_add(&argv, &n, "--chdir=%s", site->spool) < 0)
		goto oom;
	if ((v = t.partition ? t.partition : set->partition) && argv_add(&argv, &n, "--partition=%s", v) < 0)
		goto oom;
	if ((v = t.account ? t.account : set->account) && argv_add(&argv, &n, "--account=%s", v) < 0)
		goto oom;
	if ((v = t.qos ? t.qos : set->qos) && argv_add(&argv, &n, "--qos=%s", v) < 0)
		goto oom;
	if ((t.gres && argv_add(&argv, &n, "--gres=%s", t.gres) < 0) ||
	    (t.constraint && argv_add(&argv, &n, "--constraint=%s", t.constraint) < 0) ||
	    (t.cpus && argv_add(&argv, &n, "--cpus-per-task=%lld", (long long) t.cpus) < 0) ||
	    (t.memory && argv_add(&argv, &n, "--mem=%s", t.memory) < 0) ||
	    (t.time_limit && argv_add(&argv, &n, "--time=%s", t.time_limit) < 0))
		goto oom;
	for (size_t i = 0; t.extra && i < json_object_array_length(t.extra); i++)
		if (argv_add(&argv, &n, "%s", json_object_get_string(json_object_array_get_idx(t.extra, i))) < 0)
			goto oom;
	if (argv_add(&argv, &n, "%s", sh) < 0)
		goto oom;
	task_opts_done(&t);
	*ret = (struct job_def) { .script = TAKE_PTR(script), .argv = argv };
	return 0;

oom:
	task_opts_done(&t);
	strv_free(argv);
	return errorf(ret_error, -ENOMEM, "Out of memory");
}
