/*
 * executor.c - the `docker` executor: each task runs in its own container,
 * through the Docker Engine API (v1.41) over the engine's Unix socket.
 *
 * The life of a sandbox is a chain of requests on libcurl's multi interface
 * (http.c), so the loop never waits on the engine:
 *
 *   create  POST /containers/create; its id is the handle (sandbox_started)
 *   wait    POST /containers/{id}/wait?condition=next-exit, a long poll and
 *           the monitor; the engine sends its headers once the wait is
 *           registered, and only then do we
 *   start   POST /containers/{id}/start
 *   logs    GET /containers/{id}/logs?follow=1, into the attempt's log
 *   exit    the wait answers; GET /containers/{id}/json says whether the
 *           kernel killed it for memory (OOMKilled)
 *   remove  DELETE /containers/{id}?force=1&v=1, unless keep_failed and it
 *           failed.  Sent from an idle-priority source, after the host's
 *           end-of-turn commit of the exit: a crash in between leaves an
 *           exited container to adopt, never a task without its container.
 *
 * A failure on the way (no such image, a start the engine refuses, the
 * engine unreachable) ends the sandbox with the engine's message and removes
 * what was created.  Cancel: kill with SIGTERM, SIGKILL after the grace.
 *
 * Adopt, after a restart or a plugin reload: the handle is the container id,
 * with "@SOCKET" after it when the engine is not the executor's own.  The
 * container is inspected: a running one gets a new wait and its logs from the
 * time the log file was last written; one that exited meanwhile is collected
 * (its logs included); one created but never started is started.
 *
 * Orphans are containers labelled with this daemon's instance that no
 * sandbox owns: created just before a crash, before their id was on disk, or
 * whose removal failed.  The host hands every live sandbox to adopt() right
 * after init(), before it returns to the loop; so the first sweep runs from
 * the loop, and again every orphan_sweep seconds.  A container being created
 * is known by its sandbox label, so a sweep never takes it.
 *
 * The host's calls (sandbox_started, sandbox_exited) are made from the loop
 * only, never from inside spawn(), cancel() or adopt().
 *
 * Here are its entry points (executor.h): init and shutdown, spawn, cancel,
 * adopt, forget and check_options.  A sandbox, its end and its kill are in
 * sandbox.c; the steps of its life in steps.c; the removal of containers and
 * the sweep of orphans in removal.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "docker.h"

/* How long the init() checks may take. */
#define PING_TIMEOUT_MS 5000L

static const char *sandbox_id_of(const struct docker *d, struct dagd_sandbox *sb, const struct dagd_spawn *spec) {
	if (spec && spec->sandbox_id)
		return spec->sandbox_id;
	if (d->host->size >= sizeof(struct dagd_host) && d->host->sandbox_id)
		return d->host->sandbox_id(sb);
	return NULL;
}

/* The daemon's socket directory (absolute), and DAGD_SOCKET as seen inside. */
static int socket_paths(struct docker *d, char **ret_error) {
	_cleanup_free_ char *path = NULL, *cwd = NULL;
	const char *sock = d->host->socket_path;
	char *slash;

	if (!sock || !*sock)
		return errorf(ret_error, -EINVAL, "the host gave no socket path");
	if (sock[0] == '/')
		path = strdup(sock);
	else if ((cwd = getcwd(NULL, 0)))
		path = strdupf("%s/%s", cwd, sock);
	else
		return errorf(ret_error, -errno, "cannot get the current directory: %m");
	if (!path)
		return errorf(ret_error, -ENOMEM, "Out of memory");
	slash = strrchr(path, '/');
	d->socket_inside = strdupf("%s/%s", d->set.socket_mount, slash + 1);
	*slash = '\0';
	d->socket_dir = strdup(slash == path ? "/" : path);
	if (!d->socket_inside || !d->socket_dir)
		return errorf(ret_error, -ENOMEM, "Out of memory");
	return 0;
}

/* "1.41" -> 141; -1 if it is not a version. */
static int api_version_number(const char *s) {
	unsigned major, minor;

	if (!s || sscanf(s, "%u.%u", &major, &minor) != 2 || major > 99 || minor > 99)
		return -1;
	return (int) (major * 100 + minor);
}

/* /_ping, then /version: is the engine there, and does it speak our API?
 * These two calls block; init() runs before the loop does (or while the
 * host reloads its plugins), and each is bounded by PING_TIMEOUT_MS. */
static int engine_check(struct docker *d, char **ret_error) {
	_cleanup_free_ char *body = NULL, *err = NULL;
	_cleanup_json_ json_object *o = NULL;
	json_object *v;
	const char *max = NULL, *min = NULL, *version = "?";
	long status;
	int r, want = api_version_number(DOCKER_API_VERSION);

	r = http_get_sync(d->set.engine, "/_ping", PING_TIMEOUT_MS, &status, &body, &err);
	if (r < 0)
		return errorf(ret_error, r, "%s (is dockerd running, and may dagd use its socket?)",
			      err ? err : strerror(-r));
	if (status != 200 || strncmp(body, "OK", 2) != 0)
		return errorf(ret_error, -EPROTO, "'%s' does not answer /_ping like a Docker engine "
			      "(HTTP %ld)", d->set.engine, status);
	free(TAKE_PTR(body));
	r = http_get_sync(d->set.engine, "/version", PING_TIMEOUT_MS, &status, &body, &err);
	if (r < 0)
		return errorf(ret_error, r, "%s", err ? err : strerror(-r));
	o = json_tokener_parse(body);
	if (status != 200 || !o)
		return errorf(ret_error, -EPROTO, "the engine at '%s' answers /version with HTTP %ld",
			      d->set.engine, status);
	if (json_object_object_get_ex(o, "ApiVersion", &v))
		max = json_object_get_string(v);
	if (json_object_object_get_ex(o, "MinAPIVersion", &v))
		min = json_object_get_string(v);
	if (json_object_object_get_ex(o, "Version", &v))
		version = json_object_get_string(v);
	if (api_version_number(max) < want)
		return errorf(ret_error, -EPROTONOSUPPORT, "the engine at '%s' (Docker %s) speaks Engine "
			      "API %s at most; this executor needs API " DOCKER_API_VERSION " (Docker 20.10 "
			      "or later)", d->set.engine, version, max ? max : "?");
	if (min && api_version_number(min) > want)
		return errorf(ret_error, -EPROTONOSUPPORT, "the engine at '%s' (Docker %s) speaks Engine "
			      "API %s at least; this executor speaks API " DOCKER_API_VERSION, d->set.engine,
			      version, min);
	return 0;
}

static void docker_shutdown(void *state) {
	struct docker *d = state;

	if (!d)
		return;
	while (d->sandboxes)
		sandbox_free(d->sandboxes);
	/* removals not sent yet are left to the next sweep */
	while (d->removals) {
		struct removal *rm = d->removals;

		d->removals = rm->next;
		removal_free(rm);
	}
	sd_event_source_disable_unref(d->sweep_source);
	http_free(d->http);
	executor_settings_done(&d->set);
	free(d->socket_dir);
	free(d->socket_inside);
	free(d);
}

static int docker_init(const struct dagd_host *host, const char *options_json, void **ret_state, char **ret_error) {
	struct docker *d;
	int r;

	r = host_check(host, false, ret_error);
	if (r < 0)
		return r;

	d = calloc(1, sizeof(*d));
	if (!d)
		return errorf(ret_error, -ENOMEM, "Out of memory");
	d->host = host;
	r = executor_settings_parse(options_json, &d->set, ret_error);
	if (r >= 0)
		r = socket_paths(d, ret_error);
	if (r < 0)
		goto fail;
	d->site = (struct docker_site) {
		.instance = host->instance,
		.socket_dir = d->socket_dir,
		.socket_mount = d->set.socket_mount,
		.socket_inside = d->socket_inside,
		.keep_failed = d->set.keep_failed,
		.inputs = host->abi_version >= 4,
	};
	r = http_new(host->event, &d->http);
	if (r < 0) {
		r = errorf(ret_error, r, "cannot set up libcurl: %m");
		goto fail;
	}
	r = engine_check(d, ret_error);
	if (r < 0)
		goto fail;
	/* the first sweep from the loop: every live sandbox is adopted by then */
	if (r >= 0)
		r = sd_event_add_time_relative(host->event, &d->sweep_source, CLOCK_MONOTONIC, 0,
					       TIMER_ACCURACY_USEC, on_sweep, d);
	if (r < 0) {
		r = errorf(ret_error, r, "cannot add event sources: %m");
		goto fail;
	}
	*ret_state = d;
	return 0;

fail:
	docker_shutdown(d);
	return r;
}

/* The attempt's log file, opened only to set its mtime; -EBADF if it cannot be. */
static int log_open(const struct dagd_spawn *spec) {
	int fd;

	if (!spec || !spec->log_path)
		return -EBADF;
	fd = open_in_log_dir(spec->log_path, O_WRONLY | O_APPEND);
	return fd >= 0 ? fd : -EBADF;
}

/* A name the operator can read in `docker ps`: dagd-<sandbox>-<random>. */
static int container_name(const char *sandbox_id, char *buf, size_t size) {
	uint32_t nonce;

	if (getrandom(&nonce, sizeof(nonce), GRND_NONBLOCK) != sizeof(nonce))
		nonce = (uint32_t) getpid() ^ (uint32_t) time(NULL);
	if (strspn(sandbox_id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != strlen(sandbox_id) ||
	    (size_t) snprintf(buf, size, "dagd-%s-%08" PRIx32, sandbox_id, nonce) >= size)
		return -EINVAL;
	return 0;
}

static int docker_spawn(void *state, struct dagd_sandbox *sb, const struct dagd_spawn *spec,
			void **ret_data, char **ret_error) {
	static const struct http_calls calls = { .done = on_created };
	struct docker *d = state;
	struct container_def def = {};
	struct docker_sandbox *x = NULL;
	const char *sandbox_id = sandbox_id_of(d, sb, spec);
	char name[128];
	int r;

	if (!sandbox_id || container_name(sandbox_id, name, sizeof(name)) < 0)
		return errorf(ret_error, -EINVAL, "invalid sandbox id '%s'", sandbox_id ? sandbox_id : "(null)");
	r = container_def_build(&d->site, spec, &def, ret_error);
	if (r < 0)
		return r;
	x = sandbox_new(d, sb, sandbox_id, def.engine);
	if (!x) {
		container_def_done(&def);
		return errorf(ret_error, -ENOMEM, "Out of memory");
	}
	x->tty = def.tty;
	x->keep_failed = def.keep_failed;
	x->log_fd = log_open(spec);
	x->step = STEP_CREATE;
	r = http_submit(d->http, x->engine, "POST", json_object_to_json_string_ext(def.create, JSON_C_TO_STRING_PLAIN),
			REQUEST_TIMEOUT_MS, &calls, x, &x->req, "/containers/create?name=%s", name);
	container_def_done(&def);
	if (r < 0) {
		sandbox_free(x);
		return errorf(ret_error, r, "cannot ask the engine for a container: %m");
	}
	sandbox_link(x);
	d->host->log(sb, LOG_DEBUG, "creating container %s", name);
	*ret_data = x;
	return 0;
}

static int docker_cancel(void *state, struct dagd_sandbox *sb, void *data, uint64_t grace_usec) {
	struct docker_sandbox *x = data;

	if (!x)
		return -EINVAL;
	if (x->ended)
		return 0;
	if (x->cancel && x->kill_source)
		grace_usec = 0;         /* a second cancel: at once */
	x->cancel = true;
	x->grace_usec = grace_usec;
	switch (x->step) {
	case STEP_RUN:
		sandbox_kill(x);
		break;
	case STEP_ARM:
		step_later(x);
		break;
	default:
		/* acted on when the step in flight is over */
		break;
	}
	return 0;
}

static int docker_adopt(void *state, struct dagd_sandbox *sb, const struct dagd_spawn *spec,
			const char *handle, void **ret_data, char **ret_error) {
	struct docker *d = state;
	struct docker_sandbox *x;
	const char *sandbox_id = sandbox_id_of(d, sb, spec), *at;
	size_t id_len;
	struct stat st;
	int r;

	if (!handle || !sandbox_id)
		return errorf(ret_error, -EINVAL, "no handle or sandbox id to adopt");
	at = strchr(handle, '@');
	id_len = at ? (size_t) (at - handle) : strlen(handle);
	if (id_len < 12 || id_len > 64 || strspn(handle, "0123456789abcdef") != id_len || (at && !at[1]))
		return errorf(ret_error, -EINVAL, "invalid handle '%s': expected a container id[@engine socket]", handle);
	x = sandbox_new(d, sb, sandbox_id, at ? at + 1 : NULL);
	if (!x)
		return errorf(ret_error, -ENOMEM, "Out of memory");
	memcpy(x->id, handle, id_len);
	x->id[id_len] = '\0';
	x->log_fd = log_open(spec);
	/* what the log file has is not asked for again (see log_stamp()) */
	if (x->log_fd >= 0 && fstat(x->log_fd, &st) == 0 && st.st_size > 0)
		snprintf(x->since, sizeof(x->since), "%lld.%09ld", (long long) st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	r = inspect_submit(x, STEP_INSPECT);
	if (r < 0) {
		sandbox_free(x);
		return errorf(ret_error, r, "cannot ask the engine about container %.12s: %m", handle);
	}
	sandbox_link(x);
	*ret_data = x;
	return 0;
}

static void docker_forget(void *state, const char *sandbox_id, const char *handle) {
	struct docker *d = state;

	for (struct removal **p = &d->removals; *p; p = &(*p)->next)
		if (strcmp((*p)->sandbox_id, sandbox_id) == 0) {
			struct removal *rm = *p;

			*p = rm->next;
			remove_now(d, rm->engine, rm->id);
			removal_free(rm);
			return;
		}
}

/* Checks options as spawn() would, with a command and an image standing in
 * for what the task may still give. */
static int docker_check_options(void *state, const char *options_json, char **ret_error) {
	struct docker *d = state;
	static const char *const argv[] = { "true", NULL }, *const envp[] = { NULL };
	_cleanup_json_ json_object *o = json_tokener_parse(options_json ? options_json : "{}");
	struct dagd_spawn spec = { .sandbox_id = "t-0.0", .task_id = "t-0", .project_id = "p-0", .attempt = 1,
				   .argv = argv, .envp = envp, .log_path = "/dev/null" };
	struct container_def def = {};
	int r;

	if (!json_object_is_type(o, json_type_object))
		return errorf(ret_error, -EINVAL, "executor options must be a JSON object");
	if (!json_object_object_get_ex(o, "image", NULL))
		json_object_object_add(o, "image", json_object_new_string("-"));
	spec.options_json = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	r = container_def_build(&d->site, &spec, &def, ret_error);
	container_def_done(&def);
	return r;
}

DAGD_EXECUTOR_EXPORT const struct dagd_executor dagd_executor = {
	.abi_version = DAGD_EXECUTOR_ABI_VERSION,
	.size = sizeof(struct dagd_executor),
	.name = "docker",
	.description = "runs each task in a container of the Docker engine (API " DOCKER_API_VERSION ")",
	.max_concurrency = 0,
	.init = docker_init,
	.shutdown = docker_shutdown,
	.spawn = docker_spawn,
	.cancel = docker_cancel,
	.adopt = docker_adopt,
	.forget = docker_forget,
	.check_options = docker_check_options,
};
