/*
 * sandbox.c - a docker sandbox: the executor's record of one container, from
 * spawn() or adopt() to its end; how it ends (what the wait and the engine's
 * inspection say, an OOM kill), reported once its logs are in, its container
 * then left for removal after the commit; and the kill of a cancel: SIGTERM,
 * then SIGKILL after the grace.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "docker.h"

/* After the exit, how long the rest of the logs may take to come. */
#define DRAIN_USEC (5 * 1000000ULL)

/* Out of the executor's list, if it is in it. */
static void sandbox_unlink(struct docker_sandbox *x) {
	if (x->d)
		LIST_UNLINK(x->d->sandboxes, x);
}

void sandbox_free(struct docker_sandbox *x) {
	if (!x)
		return;
	sandbox_unlink(x);
	http_cancel(x->req);
	http_cancel(x->wait);
	http_cancel(x->logs);
	sd_event_source_disable_unref(x->step_source);
	sd_event_source_disable_unref(x->kill_source);
	sd_event_source_disable_unref(x->drain_source);
	sd_event_source_disable_unref(x->recheck_source);
	if (x->log_fd >= 0)
		close(x->log_fd);
	free(x->sandbox_id);
	free(x->engine);
	free(x->message);
	free(x);
}

struct docker_sandbox *sandbox_new(struct docker *d, struct dagd_sandbox *sb, const char *sandbox_id,
				   const char *engine) {
	struct docker_sandbox *x = calloc(1, sizeof(*x));

	if (!x)
		return NULL;
	x->d = d;
	x->sb = sb;
	x->wait_code = -1;
	x->log_fd = -EBADF;
	x->sandbox_id = strdup(sandbox_id);
	x->engine = strdup(engine ? engine : d->set.engine);
	if (!x->sandbox_id || !x->engine) {
		sandbox_free(x);
		return NULL;
	}
	x->foreign_engine = strcmp(x->engine, d->set.engine) != 0;
	return x;
}

void sandbox_link(struct docker_sandbox *x) {
	LIST_LINK(x->d->sandboxes, x);
}

/* ---- the end of a sandbox ---- */

/* Reports the exit and forgets the sandbox. */
static void sandbox_finish(struct docker_sandbox *x) {
	struct docker *d = x->d;
	const struct dagd_host *host = d->host;
	bool failed = x->code != 0 || x->signal || x->reason;
	struct dagd_exit e = {
		.code = x->code,
		.signal = x->signal,
		.reason = x->reason,
		.message = x->message,
	};

	if (x->id[0]) {
		if (x->keep_failed && failed)
			host->log(x->sb, LOG_INFO, "keeping failed container %.12s (keep_failed)", x->id);
		else
			remove_later(d, x->engine, x->id, x->sandbox_id);
	}
	/* out of our list first: nothing of ours may name it after the host's call */
	sandbox_unlink(x);
	x->d = NULL;
	host->sandbox_exited(x->sb, &e);
	sandbox_free(x);
}

static int on_drain(sd_event_source *s, uint64_t usec, void *userdata) {
	struct docker_sandbox *x = userdata;

	x->drain_source = sd_event_source_disable_unref(x->drain_source);
	x->d->host->log(x->sb, LOG_NOTICE, "the container's logs did not end with it; the rest is not copied");
	http_cancel(TAKE_PTR(x->logs));
	sandbox_finish(x);
	return 0;
}

/* Finishes once the exit is known and the logs are in, or given up. */
void sandbox_try_finish(struct docker_sandbox *x) {
	if (!x->ended)
		return;
	if (!x->logs) {
		sandbox_finish(x);
		return;
	}
	if (!x->drain_source &&
	    sd_event_add_time_relative(x->d->host->event, &x->drain_source, CLOCK_MONOTONIC, DRAIN_USEC,
				       TIMER_ACCURACY_USEC, on_drain, x) < 0) {
		http_cancel(TAKE_PTR(x->logs));
		sandbox_finish(x);
	}
}

/* Records how the sandbox ended (message: malloc'd, taken), stops all but
 * the logs, and finishes once they are in.  From the loop only: it may
 * report the exit at once. */
void sandbox_end(struct docker_sandbox *x, int code, int sig, const char *reason, char *message) {
	if (x->ended) {
		free(message);
		return;
	}
	x->ended = true;
	x->code = code;
	x->signal = sig;
	x->reason = x->cancel && (!reason || strcmp(reason, "oom") != 0) ? "cancelled" : reason;
	x->message = message;
	http_cancel(TAKE_PTR(x->req));
	http_cancel(TAKE_PTR(x->wait));
	x->step_source = sd_event_source_disable_unref(x->step_source);
	x->kill_source = sd_event_source_disable_unref(x->kill_source);
	x->recheck_source = sd_event_source_disable_unref(x->recheck_source);
	sandbox_try_finish(x);
}

/* Ends the sandbox with what the engine said about req, after `what`. */
void sandbox_fail(struct docker_sandbox *x, const char *reason, const char *what, struct http_request *req) {
	_cleanup_free_ char *m = http_error(req);

	sandbox_end(x, -1, 0, reason, strdupf("%s: %s", what, m ? m : "out of memory"));
}

/* Ends the sandbox because a request could not even be made. */
void sandbox_fail_errno(struct docker_sandbox *x, const char *what, int r) {
	sandbox_end(x, -1, 0, "error", strdupf("%s: %s", what, strerror(-r)));
}

static void on_oom_events(struct http_request *req, void *userdata) {
	struct docker_sandbox *x = userdata;

	x->req = NULL;
	if (http_ok(req) && strstr(http_body(req), "\"oom\""))
		sandbox_end(x, -1, SIGKILL, "oom", strdupf("over its memory limit of %" PRId64 " bytes", x->memory));
	else
		sandbox_end(x, 128 + SIGKILL, 0, NULL, NULL);
}

static const struct http_calls oom_events_calls = { .done = on_oom_events };

/* The engine sets OOMKilled only if the kernel's OOM event reaches it before
 * the exit does; under load it can come after, and then only the engine's
 * event log has it.  So a SIGKILLed container with a memory limit that dagd
 * did not stop is looked up there, the stream held open a second more for an
 * event still on its way.  Returns < 0 if the question cannot be asked. */
static int oom_events_submit(struct docker_sandbox *x) {
	time_t now = time(NULL);

	return http_submit(x->d->http, x->engine, "GET", NULL, 5000L, &oom_events_calls, x, &x->req,
			   "/events?since=%lld&until=%lld&filters=%%7B%%22container%%22%%3A%%5B%%22%s%%22%%5D"
			   "%%2C%%22event%%22%%3A%%5B%%22oom%%22%%5D%%7D",
			   (long long) now - 7 * 86400, (long long) now + 1, x->id);
}

/* How a container ended, from its inspection. */
void sandbox_end_inspected(struct docker_sandbox *x, json_object *info) {
	json_object *state = NULL, *hc = NULL, *v;
	bool oom = false;
	const char *error = NULL;
	int64_t memory = 0;
	int code = x->wait_code;

	if (json_object_object_get_ex(info, "State", &state)) {
		if (json_object_object_get_ex(state, "ExitCode", &v))
			code = json_object_get_int(v);
		if (json_object_object_get_ex(state, "OOMKilled", &v))
			oom = json_object_get_boolean(v);
		if (json_object_object_get_ex(state, "Error", &v) && json_object_get_string_len(v) > 0)
			error = json_object_get_string(v);
	}
	if (json_object_object_get_ex(info, "HostConfig", &hc) && json_object_object_get_ex(hc, "Memory", &v))
		memory = json_object_get_int64(v);

	x->memory = memory;
	if (!oom && code == 128 + SIGKILL && memory > 0 && !x->cancel && oom_events_submit(x) >= 0)
		return;
	if (oom && code == 128 + SIGKILL)
		sandbox_end(x, -1, SIGKILL, "oom",
			    memory > 0 ? strdupf("over its memory limit of %" PRId64 " bytes", memory) : NULL);
	else if (oom)
		sandbox_end(x, code, 0, NULL, strdup("a process of the container ran out of memory"));
	else if (error)
		sandbox_end(x, code != 0 ? code : -1, 0, "error", strdup(error));
	else
		sandbox_end(x, code, 0, NULL, NULL);
}

/* ---- kill ---- */

static void on_killed(struct http_request *req, void *userdata) {
	struct docker *d = userdata;
	_cleanup_free_ char *m = NULL;

	/* 409: not running (any more); 404: gone */
	if (http_ok(req) || http_status(req) == 409 || http_status(req) == 404)
		return;
	m = http_error(req);
	d->host->log(NULL, LOG_WARNING, "docker: cannot kill a container: %s", m ? m : "out of memory");
}

static const struct http_calls kill_calls = { .done = on_killed };

static void kill_container(struct docker_sandbox *x, const char *sig) {
	int r = http_submit(x->d->http, x->engine, "POST", NULL, REQUEST_TIMEOUT_MS, &kill_calls, x->d, NULL,
			    "/containers/%s/kill?signal=%s", x->id, sig);

	if (r < 0)
		x->d->host->log(x->sb, LOG_ERR, "cannot send %s to container %.12s: %s", sig, x->id, strerror(-r));
}

static int on_grace_over(sd_event_source *s, uint64_t usec, void *userdata) {
	struct docker_sandbox *x = userdata;

	x->kill_source = sd_event_source_disable_unref(x->kill_source);
	x->d->host->log(x->sb, LOG_NOTICE, "container %.12s still runs after its grace period, sending SIGKILL", x->id);
	kill_container(x, "SIGKILL");
	return 0;
}

/* SIGTERM now, SIGKILL after the grace (at once if there is none, or on a
 * second cancel). */
void sandbox_kill(struct docker_sandbox *x) {
	int r;

	if (x->grace_usec == 0 || x->kill_source) {
		x->kill_source = sd_event_source_disable_unref(x->kill_source);
		kill_container(x, "SIGKILL");
		return;
	}
	kill_container(x, "SIGTERM");
	r = sd_event_add_time_relative(x->d->host->event, &x->kill_source, CLOCK_MONOTONIC, x->grace_usec,
				       TIMER_ACCURACY_USEC, on_grace_over, x);
	if (r < 0) {
		x->d->host->log(x->sb, LOG_WARNING, "cannot arm the grace period timer (%s), killing at once", strerror(-r));
		kill_container(x, "SIGKILL");
	}
}
