/*
 * options.c - the daytona executor's options: its own, and a task's, with
 * the sandbox those define (the body of POST /sandbox and the command).
 *
 * The executor's own (--executor-options daytona='{...}'):
 *
 *   api_url          the API, default https://app.daytona.io/api
 *   api_key          the API key; better left to the environment:
 *   api_key_env      the daemon's variable holding it, default DAYTONA_API_KEY
 *   target           the region sandboxes are created in, unless a task says
 *   poll_interval    seconds between two polls of a sandbox, default 2
 *   start_timeout    seconds a sandbox may take to start, default 600
 *   orphan_sweep     seconds between sweeps of orphaned sandboxes, default
 *                    300; 0: only the first, at start
 *   max_concurrency  the executor's limit (the host reads it)
 *
 * A sandbox's options (the project's overlaid by the task's):
 *
 *   snapshot              the snapshot to create it from, or
 *   image                 an image to build it from (FROM image)
 *   cpu, memory, disk, gpu  resources (cores, GB, GB, units): only with an
 *                         image, never with a snapshot (the API refuses them)
 *   env                   object: variables for every task (a task's env wins)
 *   labels                object: extra labels (not dagd.*)
 *   user, target          the sandbox's user and region
 *   workdir               the working directory when the task names none
 *   auto_stop_interval    minutes, default 0 (no auto-stop)
 *   auto_delete_interval  minutes (negative: never; 0: once stopped)
 *   network_block_all     no network at all
 *   network_allow_list    comma-separated CIDRs the sandbox may reach
 *   pass_api_key          give the sandbox DAYTONA_API_KEY (default false)
 *   result_file           where the task writes its result JSON
 *                         (DAGD_RESULT_FILE), default /tmp/dagd-result.json
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daytona.h"

#define DEFAULT_POLL_SEC 2
#define DEFAULT_START_TIMEOUT_SEC 600
#define DEFAULT_SWEEP_SEC 300

static const char *const executor_options[] = {
	"api_url", "api_key", "api_key_env", "target", "poll_interval", "start_timeout", "orphan_sweep",
	"max_concurrency", NULL
};

static const char *const task_options[] = {
	"snapshot", "image", "cpu", "memory", "disk", "gpu", "env", "labels", "user", "target", "workdir",
	"auto_stop_interval", "auto_delete_interval", "network_block_all", "network_allow_list",
	"pass_api_key", "result_file", NULL
};

/* What the sandbox's environment never gets: the daemon's socket and the
 * task's token mean nothing where the socket cannot be reached. */
static const char *const env_left_out[] = { "DAGD_SOCKET", "DAGD_TASK_TOKEN", NULL };

static const char *const resources[] = { "cpu", "memory", "disk", "gpu", NULL };

void daytona_settings_done(struct daytona_settings *s) {
	free(s->api_url);
	if (s->api_key)
		explicit_bzero(s->api_key, strlen(s->api_key));
	free(s->api_key);
	free(s->target);
	*s = (struct daytona_settings) {};
}

int daytona_settings_parse(const char *options_json, struct daytona_settings *ret, char **ret_error) {
	_cleanup_json_ json_object *o = NULL;
	const char *url, *key, *key_env, *target;
	double poll = DEFAULT_POLL_SEC, start = DEFAULT_START_TIMEOUT_SEC, sweep = DEFAULT_SWEEP_SEC, limit = 0;
	json_object *v;
	size_t len;
	int r;

	if ((r = parse_object(options_json, executor_options, &o, ret_error)) < 0 ||
	    (r = get_string(o, "api_url", &url, ret_error)) < 0 ||
	    (r = get_string(o, "api_key", &key, ret_error)) < 0 ||
	    (r = get_string(o, "api_key_env", &key_env, ret_error)) < 0 ||
	    (r = get_string(o, "target", &target, ret_error)) < 0 ||
	    (r = get_number(o, "poll_interval", 3600, &poll, ret_error)) < 0 ||
	    (r = get_number(o, "start_timeout", 86400, &start, ret_error)) < 0 ||
	    (r = get_number(o, "orphan_sweep", 86400 * 365, &sweep, ret_error)) < 0 ||
	    (r = get_number(o, "max_concurrency", INT32_MAX, &limit, ret_error)) < 0)
		return r;
	if (json_object_object_get_ex(o, "max_concurrency", &v) && !json_object_is_type(v, json_type_int))
		return type_error(ret_error, "max_concurrency", "an integer");
	if (poll < 0.01)
		return type_error(ret_error, "poll_interval", "at least 0.01 (seconds)");
	if (start < 1)
		return type_error(ret_error, "start_timeout", "at least 1 (second)");
	url = url ? url : DAYTONA_DEFAULT_API_URL;
	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
		return type_error(ret_error, "api_url", "an http:// or https:// URL");
	if (!key) {
		key_env = key_env ? key_env : DAYTONA_DEFAULT_KEY_ENV;
		key = getenv(key_env);
		if (!key || !*key)
			return errorf(ret_error, -ENOKEY, "no API key: set %s in the daemon's environment, or "
				      "the option api_key", key_env);
	}
	if (strpbrk(key, "\r\n"))
		return type_error(ret_error, "api_key", "a key on one line");
	*ret = (struct daytona_settings) {
		.api_url = strdup(url),
		.api_key = strdup(key),
		.target = target ? strdup(target) : NULL,
		.poll_usec = (uint64_t) (poll * 1e6),
		.start_timeout_usec = (uint64_t) (start * 1e6),
		.sweep_usec = (uint64_t) (sweep * 1e6),
	};
	if (!ret->api_url || !ret->api_key || (target && !ret->target)) {
		daytona_settings_done(ret);
		return errorf(ret_error, -ENOMEM, "Out of memory");
	}
	len = strlen(ret->api_url);
	while (len > 0 && ret->api_url[len - 1] == '/')
		ret->api_url[--len] = '\0';
	return 0;
}

void sandbox_def_done(struct sandbox_def *def) {
	json_putp(&def->create);
	free(def->command);
	free(def->result_file);
	*def = (struct sandbox_def) {};
}

/* "cd 'DIR' && 'ARG0' 'ARG1' ...": what the session's shell runs. */
static int build_command(const struct dagd_spawn *spec, const char *workdir, char **ret, char **ret_error) {
	const char *dir = spec->cwd && *spec->cwd ? spec->cwd : workdir;
	char *cmd = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&cmd, &size);
	bool ok = f != NULL;

	if (f && dir) {
		_cleanup_free_ char *q = shell_quote(dir);

		ok = q && fprintf(f, "cd %s && ", q) >= 0;
	}
	for (size_t i = 0; ok && spec->argv[i]; i++) {
		_cleanup_free_ char *q = shell_quote(spec->argv[i]);

		ok = q && fprintf(f, "%s%s", i ? " " : "", q) >= 0;
	}
	if (f && fclose(f) != 0)
		ok = false;
	if (!ok) {
		free(cmd);
		return errorf(ret_error, -ENOMEM, "Out of memory");
	}
	*ret = cmd;
	return 0;
}

static bool env_keep(const char *name) {
	for (size_t i = 0; env_left_out[i]; i++)
		if (strcmp(name, env_left_out[i]) == 0)
			return false;
	return true;
}

/* The sandbox's env: the options', then the spec's (less the daemon's PATH,
 * HOME, socket and token), DAGD_RESULT_FILE, and the key if asked for. */
static int build_env(const struct daytona_settings *set, const struct dagd_spawn *spec, json_object *opt_env,
		     const char *result_file, bool pass_key, json_object **ret, char **ret_error) {
	_cleanup_json_ json_object *map = json_object_new_object();

	if (opt_env) {
		json_object_object_foreach(opt_env, k, v) {
			if (strchr(k, '='))
				return errorf(ret_error, -EINVAL, "option 'env': '%s' is not a variable name", k);
			json_object_object_add(map, k, json_object_get(v));
		}
	}
	for (size_t i = 0; spec->envp && spec->envp[i]; i++) {
		const char *kv = spec->envp[i], *eq = strchr(kv, '=');
		_cleanup_free_ char *name = NULL;

		if (!eq || eq == kv || host_default(kv))
			continue;
		name = strndup(kv, (size_t) (eq - kv));
		if (!name)
			return errorf(ret_error, -ENOMEM, "Out of memory");
		if (strcmp(name, "DAGD_INPUTS") == 0) {
			/* the host's path means nothing there: the file is uploaded */
			if (set->inputs && spec->inputs_path)
				json_object_object_add(map, name, json_object_new_string(DAYTONA_INPUTS_FILE));
			continue;
		}
		if (env_keep(name))
			json_object_object_add(map, name, json_object_new_string(eq + 1));
	}
	json_object_object_add(map, "DAGD_RESULT_FILE", json_object_new_string(result_file));
	if (pass_key)
		json_object_object_add(map, DAYTONA_DEFAULT_KEY_ENV, json_object_new_string(set->api_key));
	*ret = TAKE_PTR(map);
	return 0;
}

static int build_labels(const char *instance, const struct dagd_spawn *spec, json_object *extra,
			json_object **ret, char **ret_error) {
	_cleanup_json_ json_object *labels = json_object_new_object();
	char attempt[16];

	if (extra) {
		json_object_object_foreach(extra, k, v) {
			if (strncmp(k, "dagd.", 5) == 0)
				return errorf(ret_error, -EINVAL, "option 'labels': '%s': dagd.* labels are dagd's own", k);
			json_object_object_add(labels, k, json_object_get(v));
		}
	}
	snprintf(attempt, sizeof(attempt), "%u", spec->attempt);
	json_object_object_add(labels, LABEL_INSTANCE, json_object_new_string(instance));
	json_object_object_add(labels, LABEL_PROJECT, json_object_new_string(spec->project_id ? spec->project_id : ""));
	json_object_object_add(labels, LABEL_TASK, json_object_new_string(spec->task_id ? spec->task_id : ""));
	json_object_object_add(labels, LABEL_ATTEMPT, json_object_new_string(attempt));
	json_object_object_add(labels, LABEL_SANDBOX, json_object_new_string(spec->sandbox_id ? spec->sandbox_id : ""));
	*ret = TAKE_PTR(labels);
	return 0;
}

/* An integer from min to max into create[field], if the option is there. */
static int copy_int(json_object *o, const char *key, int64_t min, int64_t max, json_object *create,
		    const char *field, char **ret_error) {
	json_object *v;
	int64_t n;

	if (!json_object_object_get_ex(o, key, &v) || !v)
		return 0;
	n = json_object_get_int64(v);
	if (!json_object_is_type(v, json_type_int) || n < min || n > max)
		return errorf(ret_error, -EINVAL, "option '%s' must be an integer from %lld to %lld", key,
			      (long long) min, (long long) max);
	json_object_object_add(create, field, json_object_new_int64(n));
	return 0;
}

int sandbox_def_build(const struct daytona_settings *set, const char *instance, const struct dagd_spawn *spec,
		      struct sandbox_def *ret, char **ret_error) {
	_cleanup_json_ json_object *o = NULL, *create = NULL;
	_cleanup_free_ char *command = NULL, *result = NULL;
	json_object *env = NULL, *labels = NULL, *opt_env, *extra_labels;
	const char *snapshot, *image, *user, *target, *workdir, *allow, *result_file;
	bool block_all = false, pass_key = false;
	int r;

	if (!spec->argv || !spec->argv[0])
		return errorf(ret_error, -EINVAL, "nothing to run: the command is empty");
	r = parse_object(spec->options_json, task_options, &o, ret_error);
	if (r < 0)
		return r;
	if ((r = get_string(o, "snapshot", &snapshot, ret_error)) < 0 ||
	    (r = get_string(o, "image", &image, ret_error)) < 0 ||
	    (r = get_string(o, "user", &user, ret_error)) < 0 ||
	    (r = get_string(o, "target", &target, ret_error)) < 0 ||
	    (r = get_string(o, "workdir", &workdir, ret_error)) < 0 ||
	    (r = get_string(o, "network_allow_list", &allow, ret_error)) < 0 ||
	    (r = get_string(o, "result_file", &result_file, ret_error)) < 0 ||
	    (r = get_bool(o, "network_block_all", &block_all, ret_error)) < 0 ||
	    (r = get_bool(o, "pass_api_key", &pass_key, ret_error)) < 0 ||
	    (r = get_string_map(o, "env", &opt_env, ret_error)) < 0 ||
	    (r = get_string_map(o, "labels", &extra_labels, ret_error)) < 0)
		return r;
	if (snapshot && image)
		return errorf(ret_error, -EINVAL, "options 'snapshot' and 'image' exclude each other");
	for (size_t i = 0; snapshot && resources[i]; i++)
		if (json_object_object_get_ex(o, resources[i], NULL))
			return errorf(ret_error, -EINVAL, "option '%s' cannot go with a snapshot, which sets the "
				      "resources itself (Daytona refuses both); give an image instead", resources[i]);
	if (result_file && result_file[0] != '/')
		return type_error(ret_error, "result_file", "an absolute path");
	result = strdup(result_file ? result_file : DAYTONA_DEFAULT_RESULT_FILE);
	if (!result)
		return errorf(ret_error, -ENOMEM, "Out of memory");

	create = json_object_new_object();
	if (snapshot)
		json_object_object_add(create, "snapshot", json_object_new_string(snapshot));
	if (image) {
		json_object *build = json_object_new_object();
		_cleanup_free_ char *dockerfile = NULL;

		if (strpbrk(image, " \t\r\n"))
			return type_error(ret_error, "image", "an image name");
		if (asprintf(&dockerfile, "FROM %s\n", image) < 0)
			return errorf(ret_error, -ENOMEM, "Out of memory");
		json_object_object_add(build, "dockerfileContent", json_object_new_string(dockerfile));
		json_object_object_add(create, "buildInfo", build);
	}
	if ((r = copy_int(o, "cpu", 1, 1024, create, "cpu", ret_error)) < 0 ||
	    (r = copy_int(o, "memory", 1, 1 << 16, create, "memory", ret_error)) < 0 ||
	    (r = copy_int(o, "disk", 1, 1 << 20, create, "disk", ret_error)) < 0 ||
	    (r = copy_int(o, "gpu", 1, 1024, create, "gpu", ret_error)) < 0 ||
	    (r = copy_int(o, "auto_delete_interval", -1, INT32_MAX, create, "autoDeleteInterval", ret_error)) < 0)
		return r;
	/* auto-stop fires even while a command runs: off unless asked for */
	json_object_object_add(create, "autoStopInterval", json_object_new_int(0));
	if ((r = copy_int(o, "auto_stop_interval", 0, INT32_MAX, create, "autoStopInterval", ret_error)) < 0)
		return r;
	if (user)
		json_object_object_add(create, "user", json_object_new_string(user));
	if (target || set->target)
		json_object_object_add(create, "target", json_object_new_string(target ? target : set->target));
	if (block_all)
		json_object_object_add(create, "networkBlockAll", json_object_new_boolean(true));
	if (allow)
		json_object_object_add(create, "networkAllowList", json_object_new_string(allow));
	if ((r = build_env(set, spec, opt_env, result, pass_key, &env, ret_error)) < 0)
		return r;
	json_object_object_add(create, "env", env);
	if ((r = build_labels(instance, spec, extra_labels, &labels, ret_error)) < 0)
		return r;
	json_object_object_add(create, "labels", labels);
	if ((r = build_command(spec, workdir, &command, ret_error)) < 0)
		return r;

	*ret = (struct sandbox_def) {
		.create = TAKE_PTR(create),
		.command = TAKE_PTR(command),
		.result_file = TAKE_PTR(result),
	};
	return 0;
}
