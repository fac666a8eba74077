/*
 * steps.c - the steps of a docker sandbox's life, each a request to the
 * engine on the loop: the create; the wait, registered before the start so
 * that no exit goes unseen; the start; the logs, followed into the attempt's
 * log; and the inspection, after an adopt, a broken wait, or the exit.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>

#include "docker.h"

/* The engine unreachable while watching a container: inspect again after
 * this, so many times, before the sandbox counts as lost. */
#define RECHECK_USEC (2 * 1000000ULL)
#define RECHECK_TRIES 30

/* ---- the steps ----
 *
 * The *_submit() functions only make a request and return < 0 if they could
 * not; their callers, in the loop, end the sandbox. */

static void on_frame(void *userdata, unsigned stream, const void *data, size_t size) {
	struct docker_sandbox *x = userdata;

	x->d->host->sandbox_output(x->sb, data, size);
}

/* Sets the log's mtime to now, exactly: every line the engine has handed
 * over is older.  After a restart, the logs are asked for from then on
 * (x->since), and a file system's own, coarser, timestamps could get the last
 * lines twice. */
static void log_stamp(struct docker_sandbox *x) {
	struct timespec t[2] = { { .tv_nsec = UTIME_OMIT } };

	if (x->log_fd >= 0 && clock_gettime(CLOCK_REALTIME, &t[1]) == 0)
		(void) futimens(x->log_fd, t);
}

static int on_logs_data(struct http_request *req, const void *data, size_t size, void *userdata) {
	struct docker_sandbox *x = userdata;

	if (x->raw)
		x->d->host->sandbox_output(x->sb, data, size);
	else if (frame_feed(&x->frames, data, size, on_frame, x) < 0) {
		x->d->host->log(x->sb, LOG_WARNING, "the container's output is not multiplexed; copying it as it is");
		x->raw = true;
	}
	log_stamp(x);
	return 0;
}

static void on_logs_done(struct http_request *req, void *userdata) {
	struct docker_sandbox *x = userdata;

	x->logs = NULL;
	if (!http_ok(req) && http_status(req) != 404) {
		_cleanup_free_ char *m = http_error(req);

		x->d->host->log(x->sb, LOG_WARNING, "cannot read the container's logs: %s", m ? m : "out of memory");
	}
	x->drain_source = sd_event_source_disable_unref(x->drain_source);
	sandbox_try_finish(x);
}

static const struct http_calls logs_calls = { .data = on_logs_data, .done = on_logs_done };

/* Copies the container's output (from x->since on) into the log, until it
 * stops; a failure here costs the log, not the sandbox. */
static void logs_submit(struct docker_sandbox *x) {
	int r;

	if (x->logs)
		return;
	x->raw = x->tty;
	x->frames = (struct frame_reader) {};
	r = http_submit(x->d->http, x->engine, "GET", NULL, 0, &logs_calls, x, &x->logs,
			"/containers/%s/logs?follow=1&stdout=1&stderr=1%s%s", x->id,
			x->since[0] ? "&since=" : "", x->since);
	if (r < 0)
		x->d->host->log(x->sb, LOG_WARNING, "cannot follow the container's logs: %s", strerror(-r));
}

static void on_inspected(struct http_request *req, void *userdata);
static const struct http_calls inspect_calls = { .done = on_inspected };

int inspect_submit(struct docker_sandbox *x, enum step step) {
	x->step = step;
	return http_submit(x->d->http, x->engine, "GET", NULL, REQUEST_TIMEOUT_MS, &inspect_calls, x, &x->req,
			   "/containers/%s/json", x->id);
}

/* The wait has answered: how did it end? */
static void sandbox_collect(struct docker_sandbox *x) {
	int r = inspect_submit(x, STEP_COLLECT);

	if (r < 0)
		sandbox_end(x, x->wait_code, 0, NULL, NULL);
}

static void on_wait_headers(struct http_request *req, long status, void *userdata);
static void on_wait_done(struct http_request *req, void *userdata);
static const struct http_calls wait_calls = { .headers = on_wait_headers, .done = on_wait_done };

static int wait_submit(struct docker_sandbox *x, const char *condition) {
	x->wait_over = false;
	return http_submit(x->d->http, x->engine, "POST", NULL, 0, &wait_calls, x, &x->wait,
			   "/containers/%s/wait?condition=%s", x->id, condition);
}

/* The container runs (or ran): copy its output, wait for its end. */
static void sandbox_running(struct docker_sandbox *x, const char *wait_condition) {
	int r;

	x->step = STEP_RUN;
	logs_submit(x);
	if (x->wait_over) {
		sandbox_collect(x);
		return;
	}
	if (!x->wait && (r = wait_submit(x, wait_condition)) < 0) {
		sandbox_fail_errno(x, "cannot wait for the container", r);
		return;
	}
	if (x->cancel)
		sandbox_kill(x);
}

static void on_started(struct http_request *req, void *userdata) {
	struct docker_sandbox *x = userdata;

	x->req = NULL;
	if (!http_ok(req)) {
		sandbox_fail(x, "error", "cannot start the container", req);
		return;
	}
	sandbox_running(x, "not-running");
}

static const struct http_calls start_calls = { .done = on_started };

/* The wait is registered, or a cancel came: on, from the loop. */
static int on_step(sd_event_source *s, void *userdata) {
	struct docker_sandbox *x = userdata;
	int r;

	x->step_source = sd_event_source_disable_unref(x->step_source);
	if (x->step != STEP_ARM || x->ended)
		return 0;
	if (x->cancel) {
		sandbox_end(x, -1, 0, "cancelled", NULL);
		return 0;
	}
	if (!x->wait_registered)
		return 0;
	x->step = STEP_START;
	r = http_submit(x->d->http, x->engine, "POST", NULL, REQUEST_TIMEOUT_MS, &start_calls, x, &x->req,
			"/containers/%s/start", x->id);
	if (r < 0)
		sandbox_fail_errno(x, "cannot start the container", r);
	return 0;
}

void step_later(struct docker_sandbox *x) {
	if (!x->step_source && sd_event_add_defer(x->d->host->event, &x->step_source, on_step, x) < 0)
		x->d->host->log(x->sb, LOG_ERR, "cannot schedule the container's next step");
}

static void on_wait_headers(struct http_request *req, long status, void *userdata) {
	struct docker_sandbox *x = userdata;

	/* inside libcurl: no request may be made here */
	if (status != 200)
		return;
	x->wait_registered = true;
	if (x->step == STEP_ARM)
		step_later(x);
}

static int on_recheck(sd_event_source *s, uint64_t usec, void *userdata) {
	struct docker_sandbox *x = userdata;
	int r;

	x->recheck_source = sd_event_source_disable_unref(x->recheck_source);
	r = inspect_submit(x, STEP_INSPECT);
	if (r < 0)
		sandbox_fail_errno(x, "cannot inspect the container", r);
	return 0;
}

/* The engine could not be asked: try again a little later, for a while. */
static void sandbox_recheck(struct docker_sandbox *x, struct http_request *req) {
	_cleanup_free_ char *m = http_error(req);

	if (++x->rechecks > RECHECK_TRIES ||
	    sd_event_add_time_relative(x->d->host->event, &x->recheck_source, CLOCK_MONOTONIC, RECHECK_USEC,
				       TIMER_ACCURACY_USEC, on_recheck, x) < 0) {
		sandbox_end(x, -1, 0, "lost", strdupf("lost sight of container %.12s: %s", x->id,
						       m ? m : "out of memory"));
		return;
	}
	x->d->host->log(x->sb, LOG_WARNING, "%s; asking again", m ? m : "out of memory");
}

static void on_wait_done(struct http_request *req, void *userdata) {
	struct docker_sandbox *x = userdata;
	_cleanup_json_ json_object *o = NULL;
	json_object *v;

	x->wait = NULL;
	x->wait_registered = false;
	if (!http_ok(req)) {
		if (http_status(req) == 404)
			sandbox_fail(x, "lost", "the container is gone", req);
		else if (http_status(req) != 0)
			sandbox_fail(x, "error", "cannot wait for the container", req);
		else if (!x->req)
			/* the engine went away (a restart?): see what became of it */
			sandbox_recheck(x, req);
		/* else the step in flight finds out */
		return;
	}
	o = json_tokener_parse(http_body(req));
	if (o && json_object_object_get_ex(o, "StatusCode", &v))
		x->wait_code = json_object_get_int(v);
	x->rechecks = 0;
	x->wait_over = true;
	/* a start in flight goes on to collect when it is answered */
	if (!x->req)
		sandbox_collect(x);
}

/* Whether the container is ours: this daemon's, and this sandbox's. */
static bool labels_match(struct docker_sandbox *x, json_object *labels) {
	json_object *instance, *sandbox;

	return json_object_object_get_ex(labels, LABEL_INSTANCE, &instance) &&
	       json_object_object_get_ex(labels, LABEL_SANDBOX, &sandbox) &&
	       strcmp(json_object_get_string(instance), x->d->host->instance) == 0 &&
	       strcmp(json_object_get_string(sandbox), x->sandbox_id) == 0;
}

static void on_inspected(struct http_request *req, void *userdata) {
	struct docker_sandbox *x = userdata;
	_cleanup_json_ json_object *o = NULL;
	json_object *config = NULL, *labels = NULL, *state = NULL, *v;
	const char *status = "";
	int r;

	x->req = NULL;
	if (!http_ok(req)) {
		if (http_status(req) == 404)
			sandbox_fail(x, "lost", "the container is gone", req);
		else if (x->step == STEP_COLLECT && http_status(req) != 0)
			/* it exited; the wait's word will do */
			sandbox_end(x, x->wait_code, 0, NULL, NULL);
		else
			sandbox_recheck(x, req);
		return;
	}
	x->rechecks = 0;
	o = json_tokener_parse(http_body(req));
	if (!o) {
		sandbox_end(x, -1, 0, "error", strdup("the engine's inspection of the container is not JSON"));
		return;
	}
	if (x->step == STEP_COLLECT) {
		sandbox_end_inspected(x, o);
		return;
	}

	/* adopted, or the wait broke */
	(void) json_object_object_get_ex(o, "Config", &config);
	(void) json_object_object_get_ex(config, "Labels", &labels);
	if (!labels_match(x, labels)) {
		char *m = strdupf("container %.12s belongs to another daemon or sandbox", x->id);

		x->id[0] = '\0';        /* not ours: leave it alone */
		sandbox_end(x, -1, 0, "lost", m);
		return;
	}
	x->tty = json_object_object_get_ex(config, "Tty", &v) && json_object_get_boolean(v);
	x->keep_failed = json_object_object_get_ex(labels, LABEL_KEEP_FAILED, NULL);
	if (json_object_object_get_ex(o, "State", &state) && json_object_object_get_ex(state, "Status", &v))
		status = json_object_get_string(v);

	if (strcmp(status, "created") == 0) {
		/* never started: go on from where the spawn was */
		x->step = STEP_ARM;
		if (x->cancel || x->wait_registered)
			step_later(x);
		else if (!x->wait && (r = wait_submit(x, "next-exit")) < 0)
			sandbox_fail_errno(x, "cannot wait for the container", r);
	} else if (strcmp(status, "running") == 0 || strcmp(status, "paused") == 0 ||
		   strcmp(status, "restarting") == 0)
		sandbox_running(x, "not-running");
	else if (strcmp(status, "exited") == 0 || strcmp(status, "dead") == 0) {
		/* it ended while nobody watched: its logs, then its exit */
		x->step = STEP_COLLECT;
		logs_submit(x);
		sandbox_end_inspected(x, o);
	} else
		sandbox_end(x, -1, 0, "lost", strdupf("container %.12s is %s", x->id, status));
}

void on_created(struct http_request *req, void *userdata) {
	struct docker_sandbox *x = userdata;
	_cleanup_json_ json_object *o = NULL;
	json_object *v;
	char handle[1024];
	const char *id;
	int r;

	x->req = NULL;
	if (!http_ok(req)) {
		sandbox_fail(x, "error", "cannot create the container", req);
		return;
	}
	o = json_tokener_parse(http_body(req));
	id = o && json_object_object_get_ex(o, "Id", &v) ? json_object_get_string(v) : "";
	if (strlen(id) < 12 || strlen(id) >= sizeof(x->id) || strspn(id, "0123456789abcdef") != strlen(id)) {
		sandbox_end(x, -1, 0, "error", strdup("the engine created a container but did not say its id"));
		return;
	}
	snprintf(x->id, sizeof(x->id), "%s", id);
	if (x->foreign_engine)
		snprintf(handle, sizeof(handle), "%s@%s", x->id, x->engine);
	else
		snprintf(handle, sizeof(handle), "%s", x->id);
	x->d->host->sandbox_started(x->sb, handle);
	if (x->cancel) {
		sandbox_end(x, -1, 0, "cancelled", NULL);
		return;
	}
	x->step = STEP_ARM;
	r = wait_submit(x, "next-exit");
	if (r < 0)
		sandbox_fail_errno(x, "cannot wait for the container", r);
}
