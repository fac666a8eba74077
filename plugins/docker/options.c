/*
 * options.c - the docker executor's options: its own, and a task's, with the
 * container those define (the body of POST /containers/create).
 *
 * The executor's own (--executor-options docker='{...}'):
 *
 *   socket           the engine's socket, default /var/run/docker.sock
 *   keep_failed      the default of the task option
 *   socket_mount     where the daemon's socket directory appears in a
 *                    container, default /run/dagd
 *   orphan_sweep     seconds between sweeps of orphaned containers, default
 *                    300; 0: only the first, at start
 *   max_concurrency  the executor's limit (the host reads it)
 *
 * A sandbox's options are the project's executor options overlaid by the
 * task's (the host merges them).  The task's own command, env and working
 * directory become the container's Cmd, Env and WorkingDir; the options say
 * the rest:
 *
 *   image        the image to run (required); it must be on the engine already
 *   entrypoint   array of strings replacing the image's entrypoint
 *   env          object: variables for every task (a task's env wins)
 *   workdir      the working directory when the task names none
 *   user         "uid[:gid]" or a name known to the image
 *   memory       bytes, or "64m"; swap is not given on top
 *   cpus         how many CPUs' time, e.g. 0.5
 *   pids_limit   most processes at once
 *   network      the network mode, default "none"
 *   binds        array of "HOST:CONTAINER[:OPTS]", always mounted read-only
 *   labels       object: extra labels (not dagd.*)
 *   tty          give the container a TTY (its output is then not split)
 *   init         run an init process (docker-init) as PID 1
 *   keep_failed  keep a container that did not exit 0, for debugging
 *   socket       the engine's socket, when not the executor's
 *
 * Every container also gets the daemon's socket directory, read-only, at
 * the site's mount point (DAGD_SOCKET points there), and labels naming the
 * daemon instance, project, task, attempt and sandbox.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "docker.h"

#define DEFAULT_SOCKET_MOUNT "/run/dagd"
#define DEFAULT_SWEEP_SEC 300

static const char *const task_options[] = {
	"image", "entrypoint", "env", "workdir", "user", "memory", "cpus", "pids_limit", "network",
	"binds", "labels", "tty", "init", "keep_failed", "socket", NULL
};

static const char *const executor_options[] = {
	"socket", "keep_failed", "socket_mount", "orphan_sweep", "max_concurrency", NULL
};

void container_def_done(struct container_def *def) {
	json_putp(&def->create);
	free(def->engine);
	*def = (struct container_def) {};
}

static json_object *strv_to_json(const char *const *v) {
	json_object *a = json_object_new_array();

	for (size_t i = 0; v && v[i]; i++)
		json_object_array_add(a, json_object_new_string(v[i]));
	return a;
}

/* The container's Env: the options' env, then the spec's (less the daemon's
 * PATH and HOME), with DAGD_SOCKET and DAGD_INPUTS as seen from inside. */
static int build_env(const struct docker_site *site, const struct dagd_spawn *spec, json_object *opt_env,
		     json_object **ret, char **ret_error) {
	_cleanup_json_ json_object *map = json_object_new_object();
	json_object *list;

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
			/* the host's path means nothing inside: the file is bound there */
			if (site->inputs && spec->inputs_path)
				json_object_object_add(map, name, json_object_new_string(DOCKER_INPUTS_INSIDE));
			continue;
		}
		json_object_object_add(map, name, json_object_new_string(strcmp(name, "DAGD_SOCKET") == 0 ?
									 site->socket_inside : eq + 1));
	}
	list = json_object_new_array();
	json_object_object_foreach(map, k2, v2) {
		char *kv;

		if (asprintf(&kv, "%s=%s", k2, json_object_get_string(v2)) < 0) {
			json_object_put(list);
			return errorf(ret_error, -ENOMEM, "Out of memory");
		}
		json_object_array_add(list, json_object_new_string(kv));
		free(kv);
	}
	*ret = list;
	return 0;
}

/* "HOST:CONTAINER[:OPTS]" made read-only, or an error. */
static int bind_read_only(const char *bind, char **ret, char **ret_error) {
	const char *c1 = strchr(bind, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	_cleanup_free_ char *opts = NULL;
	bool ro = false;
	char *tok, *save = NULL;

	if (bind[0] != '/' || !c1 || c1[1] != '/' || (c2 && strchr(c2 + 1, ':')))
		return errorf(ret_error, -EINVAL,
			      "option 'binds': '%s' is not HOST:CONTAINER[:OPTIONS] with absolute paths", bind);
	if (c2) {
		opts = strdup(c2 + 1);
		if (!opts)
			return errorf(ret_error, -ENOMEM, "Out of memory");
		for (tok = strtok_r(opts, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			if (strcmp(tok, "rw") == 0)
				return errorf(ret_error, -EINVAL, "option 'binds': '%s': binds are read-only", bind);
			if (strcmp(tok, "ro") == 0)
				ro = true;
		}
	}
	if (asprintf(ret, "%s%s%s", bind, c2 ? (ro ? "" : ",") : ":", ro ? "" : "ro") < 0)
		return errorf(ret_error, -ENOMEM, "Out of memory");
	return 0;
}

static int build_binds(const struct docker_site *site, const struct dagd_spawn *spec, json_object *o,
		       json_object **ret, char **ret_error) {
	_cleanup_json_ json_object *list = json_object_new_array();
	json_object *v;
	char *b;
	int r;

	if (asprintf(&b, "%s:%s:ro", site->socket_dir, site->socket_mount) < 0)
		return errorf(ret_error, -ENOMEM, "Out of memory");
	json_object_array_add(list, json_object_new_string(b));
	free(b);
	if (site->inputs && spec->inputs_path) {
		if (asprintf(&b, "%s:%s:ro", spec->inputs_path, DOCKER_INPUTS_INSIDE) < 0)
			return errorf(ret_error, -ENOMEM, "Out of memory");
		json_object_array_add(list, json_object_new_string(b));
		free(b);
	}
	if (json_object_object_get_ex(o, "binds", &v) && v) {
		if (!json_object_is_type(v, json_type_array))
			return type_error(ret_error, "binds", "an array of \"HOST:CONTAINER[:OPTIONS]\" strings");
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			json_object *x = json_object_array_get_idx(v, i);

			if (!json_object_is_type(x, json_type_string))
				return type_error(ret_error, "binds", "an array of \"HOST:CONTAINER[:OPTIONS]\" strings");
			r = bind_read_only(json_object_get_string(x), &b, ret_error);
			if (r < 0)
				return r;
			json_object_array_add(list, json_object_new_string(b));
			free(b);
		}
	}
	*ret = TAKE_PTR(list);
	return 0;
}

static int build_labels(const struct docker_site *site, const struct dagd_spawn *spec, json_object *extra,
			bool keep_failed, json_object **ret, char **ret_error) {
	json_object *labels = json_object_new_object();
	char attempt[16];

	if (extra) {
		json_object_object_foreach(extra, k, v) {
			if (strncmp(k, "dagd.", 5) == 0) {
				json_object_put(labels);
				return errorf(ret_error, -EINVAL, "option 'labels': '%s': dagd.* labels are dagd's own", k);
			}
			json_object_object_add(labels, k, json_object_get(v));
		}
	}
	snprintf(attempt, sizeof(attempt), "%u", spec->attempt);
	json_object_object_add(labels, LABEL_INSTANCE, json_object_new_string(site->instance));
	json_object_object_add(labels, LABEL_PROJECT, json_object_new_string(spec->project_id ? spec->project_id : ""));
	json_object_object_add(labels, LABEL_TASK, json_object_new_string(spec->task_id ? spec->task_id : ""));
	json_object_object_add(labels, LABEL_ATTEMPT, json_object_new_string(attempt));
	json_object_object_add(labels, LABEL_SANDBOX, json_object_new_string(spec->sandbox_id ? spec->sandbox_id : ""));
	if (keep_failed)
		json_object_object_add(labels, LABEL_KEEP_FAILED, json_object_new_string("1"));
	*ret = labels;
	return 0;
}

/* The resource limits of HostConfig. */
static int build_limits(json_object *o, json_object *host, char **ret_error) {
	json_object *v;
	int64_t bytes;

	if (json_object_object_get_ex(o, "memory", &v) && v) {
		if (parse_size(v, &bytes) < 0 || bytes == 0)
			return type_error(ret_error, "memory", "a size in bytes, or like \"64m\" (k, m, g)");
		json_object_object_add(host, "Memory", json_object_new_int64(bytes));
		/* as much swap as nothing: the limit is the limit */
		json_object_object_add(host, "MemorySwap", json_object_new_int64(bytes));
	}
	if (json_object_object_get_ex(o, "cpus", &v) && v) {
		double cpus = json_object_get_double(v);

		if ((!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double)) ||
		    !(cpus > 0) || cpus > 1e6)
			return type_error(ret_error, "cpus", "a positive number");
		json_object_object_add(host, "NanoCpus", json_object_new_int64(llround(cpus * 1e9)));
	}
	if (json_object_object_get_ex(o, "pids_limit", &v) && v) {
		if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) <= 0)
			return type_error(ret_error, "pids_limit", "a positive integer");
		json_object_object_add(host, "PidsLimit", json_object_new_int64(json_object_get_int64(v)));
	}
	return 0;
}

int container_def_build(const struct docker_site *site, const struct dagd_spawn *spec,
			struct container_def *ret, char **ret_error) {
	_cleanup_json_ json_object *o = NULL, *create = NULL;
	json_object *host, *env = NULL, *labels = NULL, *binds = NULL, *opt_env, *extra_labels, *v;
	const char *image, *workdir, *user, *network, *engine;
	bool tty = false, init = false, keep_failed = site->keep_failed;
	int r;

	if (!spec->argv || !spec->argv[0])
		return errorf(ret_error, -EINVAL, "nothing to run: the command is empty");
	r = parse_object(spec->options_json, task_options, &o, ret_error);
	if (r < 0)
		return r;

	if ((r = get_string(o, "image", &image, ret_error)) < 0 ||
	    (r = get_string(o, "workdir", &workdir, ret_error)) < 0 ||
	    (r = get_string(o, "user", &user, ret_error)) < 0 ||
	    (r = get_string(o, "network", &network, ret_error)) < 0 ||
	    (r = get_string(o, "socket", &engine, ret_error)) < 0 ||
	    (r = get_bool(o, "tty", &tty, ret_error)) < 0 ||
	    (r = get_bool(o, "init", &init, ret_error)) < 0 ||
	    (r = get_bool(o, "keep_failed", &keep_failed, ret_error)) < 0 ||
	    (r = get_string_map(o, "env", &opt_env, ret_error)) < 0 ||
	    (r = get_string_map(o, "labels", &extra_labels, ret_error)) < 0)
		return r;
	if (!image)
		return errorf(ret_error, -EINVAL, "no image: set \"image\" in the executor options of the "
			      "project or the task");

	create = json_object_new_object();
	host = json_object_new_object();
	json_object_object_add(create, "HostConfig", host);
	json_object_object_add(create, "Image", json_object_new_string(image));
	json_object_object_add(create, "Cmd", strv_to_json(spec->argv));
	if (json_object_object_get_ex(o, "entrypoint", &v) && v) {
		if (!json_object_is_type(v, json_type_array))
			return type_error(ret_error, "entrypoint", "an array of strings");
		for (size_t i = 0; i < json_object_array_length(v); i++)
			if (!json_object_is_type(json_object_array_get_idx(v, i), json_type_string))
				return type_error(ret_error, "entrypoint", "an array of strings");
		json_object_object_add(create, "Entrypoint", json_object_get(v));
	}
	if ((r = build_env(site, spec, opt_env, &env, ret_error)) < 0)
		return r;
	json_object_object_add(create, "Env", env);
	if (spec->cwd && *spec->cwd)
		json_object_object_add(create, "WorkingDir", json_object_new_string(spec->cwd));
	else if (workdir)
		json_object_object_add(create, "WorkingDir", json_object_new_string(workdir));
	if (user)
		json_object_object_add(create, "User", json_object_new_string(user));
	json_object_object_add(create, "Tty", json_object_new_boolean(tty));
	if ((r = build_labels(site, spec, extra_labels, keep_failed, &labels, ret_error)) < 0)
		return r;
	json_object_object_add(create, "Labels", labels);

	json_object_object_add(host, "NetworkMode", json_object_new_string(network ? network : "none"));
	if ((r = build_binds(site, spec, o, &binds, ret_error)) < 0)
		return r;
	json_object_object_add(host, "Binds", binds);
	if ((r = build_limits(o, host, ret_error)) < 0)
		return r;
	if (init)
		json_object_object_add(host, "Init", json_object_new_boolean(true));

	*ret = (struct container_def) {
		.keep_failed = keep_failed,
		.tty = tty,
	};
	if (engine && !(ret->engine = strdup(engine)))
		return errorf(ret_error, -ENOMEM, "Out of memory");
	ret->create = TAKE_PTR(create);
	return 0;
}

void executor_settings_done(struct executor_settings *s) {
	free(s->engine);
	free(s->socket_mount);
	*s = (struct executor_settings) {};
}

int executor_settings_parse(const char *options_json, struct executor_settings *ret, char **ret_error) {
	_cleanup_json_ json_object *o = NULL;
	const char *engine, *mount;
	double sweep = DEFAULT_SWEEP_SEC, limit = 0;
	bool keep_failed = false;
	json_object *v;
	int r;

	if ((r = parse_object(options_json, executor_options, &o, ret_error)) < 0 ||
	    (r = get_string(o, "socket", &engine, ret_error)) < 0 ||
	    (r = get_string(o, "socket_mount", &mount, ret_error)) < 0 ||
	    (r = get_bool(o, "keep_failed", &keep_failed, ret_error)) < 0 ||
	    (r = get_number(o, "orphan_sweep", 86400 * 365, &sweep, ret_error)) < 0 ||
	    (r = get_number(o, "max_concurrency", INT32_MAX, &limit, ret_error)) < 0)
		return r;
	if (json_object_object_get_ex(o, "max_concurrency", &v) && !json_object_is_type(v, json_type_int))
		return type_error(ret_error, "max_concurrency", "an integer");
	if (mount && mount[0] != '/')
		return type_error(ret_error, "socket_mount", "an absolute path");
	*ret = (struct executor_settings) {
		.engine = strdup(engine ? engine : DOCKER_DEFAULT_SOCKET),
		.socket_mount = strdup(mount ? mount : DEFAULT_SOCKET_MOUNT),
		.keep_failed = keep_failed,
		.sweep_usec = (uint64_t) (sweep * 1e6),
	};
	if (!ret->engine || !ret->socket_mount) {
		executor_settings_done(ret);
		return errorf(ret_error, -ENOMEM, "Out of memory");
	}
	return 0;
}
