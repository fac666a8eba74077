/*
 * executor.c - the `daytona` executor: each task attempt runs in a Daytona
 * sandbox of its own, through Daytona's REST API and the sandbox's toolbox.
 *
 * The life of a sandbox is a chain of requests on libcurl's multi interface
 * (the docker executor's http.c), paced by sd-event timers, so the loop never
 * waits on Daytona and hundreds of sandboxes are polled side by side:
 *
 *   create   POST /sandbox; its id is the handle (sandbox_started)
 *   start    GET /sandbox/{id} every poll_interval until "started";
 *            "error" and "build_failed" fail the attempt with errorReason
 *   session  POST {toolbox}/process/session, the session named after the
 *            host's sandbox id ("dagd-<task>.<attempt>")
 *   exec     POST {toolbox}/process/session/{sid}/exec, runAsync: 202, cmdId
 *   run      GET {toolbox}/process/session/{sid}/command/{cmdId} every
 *            poll_interval until it has an exitCode; every few polls, and
 *            whenever the toolbox fails, GET /sandbox/{id} too: a sandbox
 *            that stopped or vanished ends the attempt ("lost"); as often,
 *            the output so far (below)
 *   logs     GET {toolbox}/process/session/{sid}/command/{cmdId}/logs: the
 *            whole output so far, of which what the attempt's log lacks is
 *            appended to it (after a restart, the log's size says how much
 *            it has)
 *   result   GET {toolbox}/files/download?path=$DAGD_RESULT_FILE: a JSON
 *            value there is written next to the attempt's log, as
 *            <attempt>.result.json, which the host takes as the result
 *   delete   DELETE /sandbox/{id}, on the host's forget() after the
 *            host's end-of-turn commit of the exit
 *
 * {toolbox} is the sandbox's toolboxProxyUrl followed by /{id}.  Requests go
 * with "Authorization: Bearer <key>"; 429 and 5xx answers (and no answer)
 * are retried with a doubling delay, up to MAX_FAILURES in a row; a create
 * or an exec only on 429 and 503, which say nothing was done.  Sandboxes are
 * created with autoStopInterval 0 unless the task asks otherwise (auto-stop
 * fires even while a command runs).
 *
 * Cancel (and timeout): the command's output so far is copied into the log,
 * and the sandbox deleted; one still being created is deleted once its id is
 * known.  Adopt, after a restart or a plugin reload:
 * the handle is the sandbox id; the session is named after the sandbox id, so
 * its command is found again (GET {toolbox}/process/session/{sid}) and
 * polled; a session with no command yet gets it.  Orphans, sandboxes
 * labelled with this daemon's instance that no sandbox owns, are deleted at
 * start and every orphan_sweep seconds.
 *
 * The host's calls are made from the loop only, never from inside spawn(),
 * cancel() or adopt().
 *
 * Here are its entry points (executor.h): init and shutdown, spawn, cancel,
 * adopt, forget and check_options.  A sandbox and its end are in sandbox.c;
 * the steps of its life in steps.c; the requests to Daytona, sent again with
 * backoff, in api.c; the deletion of sandboxes and the sweep of orphans in
 * deletion.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "daytona.h"

static void daytona_shutdown(void *state) {
	struct daytona *d = state;

	if (!d)
		return;
	while (d->sandboxes)
		sandbox_free(d->sandboxes);
	/* deletions not done are left to the next sweep */
	while (d->pending) {
		struct deletion *del = d->pending;

		d->pending = del->next;
		deletion_free(del);
	}
	while (d->deletions) {
		struct deletion *del = d->deletions;

		d->deletions = del->next;
		deletion_free(del);
	}
	sd_event_source_disable_unref(d->sweep_source);
	http_free(d->http);
	daytona_settings_done(&d->set);
	if (d->auth)
		explicit_bzero(d->auth, strlen(d->auth));
	free(d->auth);
	free(d);
}

static int daytona_init(const struct dagd_host *host, const char *options_json, void **ret_state, char **ret_error) {
	struct daytona *d;
	int r;

	r = host_check(host, false, ret_error);
	if (r < 0)
		return r;

	d = calloc(1, sizeof(*d));
	if (!d)
		return errorf(ret_error, -ENOMEM, "Out of memory");
	d->host = host;
	r = daytona_settings_parse(options_json, &d->set, ret_error);
	if (r < 0)
		goto fail;
	d->set.inputs = host->abi_version >= 4;
	d->auth = strdupf("Authorization: Bearer %s", d->set.api_key);
	if (!d->auth) {
		r = errorf(ret_error, -ENOMEM, "Out of memory");
		goto fail;
	}
	d->headers[0] = d->auth;
	d->headers[1] = "Accept: application/json, text/plain, */*";
	r = http_new(host->event, &d->http);
	if (r < 0) {
		r = errorf(ret_error, r, "cannot set up libcurl: %m");
		goto fail;
	}
	/* the first sweep from the loop: every live sandbox is adopted by then */
	r = sd_event_add_time_relative(host->event, &d->sweep_source, CLOCK_MONOTONIC, 0,
					       TIMER_ACCURACY_USEC, on_sweep, d);
	if (r < 0) {
		r = errorf(ret_error, r, "cannot add event sources: %m");
		goto fail;
	}
	*ret_state = d;
	return 0;

fail:
	daytona_shutdown(d);
	return r;
}

/* The host's inputs file, whole; < 0 with errno set. */
static int read_inputs(const char *path, char **ret) {
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t size = 0;
	FILE *m;
	char chunk[65536];
	size_t n;

	if (!f)
		return -1;
	m = open_memstream(&buf, &size);
	if (!m) {
		fclose(f);
		return -1;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		fwrite(chunk, 1, n, m);
	fclose(f);
	if (fclose(m) != 0) {
		free(buf);
		return -1;
	}
	*ret = buf;
	return 0;
}

static int daytona_spawn(void *state, struct dagd_sandbox *sb, const struct dagd_spawn *spec,
			 void **ret_data, char **ret_error) {
	struct daytona *d = state;
	struct sandbox_def def = {};
	struct dt_sandbox *x;
	int r;

	r = sandbox_def_build(&d->set, d->host->instance, spec, &def, ret_error);
	if (r < 0)
		return r;
	x = sandbox_new(d, sb, spec);
	if (!x) {
		sandbox_def_done(&def);
		return errorf(ret_error, -ENOMEM, "Out of memory");
	}
	x->command = TAKE_PTR(def.command);
	x->result_file = TAKE_PTR(def.result_file);
	if (d->set.inputs && spec->inputs_path && read_inputs(spec->inputs_path, &x->inputs) < 0) {
		r = errorf(ret_error, -errno, "cannot read the inputs file %s: %m", spec->inputs_path);
		sandbox_def_done(&def);
		sandbox_free(x);
		return r;
	}
	x->step = STEP_CREATE;
	x->deadline = now_usec(d) + d->set.start_timeout_usec;
	x->method = strdup("POST");
	x->url = strdupf("%s/sandbox", d->set.api_url);
	x->body = strdup(json_object_to_json_string_ext(def.create, JSON_C_TO_STRING_PLAIN));
	x->answer = on_created;
	sandbox_def_done(&def);
	r = x->method && x->url && x->body ? submit_current(x) : -ENOMEM;
	if (r < 0) {
		sandbox_free(x);
		return errorf(ret_error, r, "cannot ask Daytona for a sandbox: %m");
	}
	sandbox_link(x);
	*ret_data = x;
	return 0;
}

static void on_cancel_logs(struct dt_sandbox *x, struct http_request *req) {
	if (http_ok(req))
		output_new(x, http_body(req));
	sandbox_end(x, -1, "cancelled", NULL);
}

/* The output so far into the log, if there is a command, then the end. */
static int on_cancel(sd_event_source *s, uint64_t usec, void *userdata) {
	struct dt_sandbox *x = userdata;

	x->timer = sd_event_source_disable_unref(x->timer);
	if (x->cmd_id && x->toolbox && x->step < STEP_LOGS) {
		x->step = STEP_LOGS;
		send_request(x, "GET", strdupf("%s/process/session/%s/command/%s/logs", x->toolbox, x->session,
					       x->cmd_id), NULL, false, on_cancel_logs);
		return 0;
	}
	sandbox_end(x, -1, "cancelled", NULL);
	return 0;
}

static int daytona_cancel(void *state, struct dagd_sandbox *sb, void *data, uint64_t grace_usec) {
	struct dt_sandbox *x = data;

	if (!x)
		return -EINVAL;
	x->cancel = true;
	/* a create in flight: its sandbox is deleted once its id is known */
	if (x->step == STEP_CREATE && x->req)
		return 0;
	http_cancel(TAKE_PTR(x->req));
	x->timer = sd_event_source_disable_unref(x->timer);
	return sd_event_add_time_relative(x->d->host->event, &x->timer, CLOCK_MONOTONIC, 0, TIMER_ACCURACY_USEC,
					  on_cancel, x);
}

static int daytona_adopt(void *state, struct dagd_sandbox *sb, const struct dagd_spawn *spec,
			 const char *handle, void **ret_data, char **ret_error) {
	struct daytona *d = state;
	struct sandbox_def def = {};
	_cleanup_free_ char *err = NULL;
	struct dt_sandbox *x;
	struct stat st;

	if (!handle || !*handle || strpbrk(handle, "/?#% "))
		return errorf(ret_error, -EINVAL, "invalid handle '%s': expected a Daytona sandbox id",
			      handle ? handle : "(null)");
	x = sandbox_new(d, sb, spec);
	if (!x || !(x->id = strdup(handle))) {
		sandbox_free(x);
		return errorf(ret_error, -ENOMEM, "Out of memory");
	}
	/* the command, in case it was never sent */
	if (spec && sandbox_def_build(&d->set, d->host->instance, spec, &def, &err) >= 0) {
		x->command = TAKE_PTR(def.command);
		x->result_file = TAKE_PTR(def.result_file);
		sandbox_def_done(&def);
		if (d->set.inputs && spec->inputs_path)
			(void) read_inputs(spec->inputs_path, &x->inputs);
	}
	/* the log has what was copied before (the host writes nothing else there) */
	if (spec && spec->log_path && stat(spec->log_path, &st) == 0)
		x->log_sent = (size_t) st.st_size;
	x->adopted = true;
	x->step = STEP_START;
	x->deadline = now_usec(d) + d->set.start_timeout_usec;
	if (sd_event_add_time_relative(d->host->event, &x->timer, CLOCK_MONOTONIC, 0, TIMER_ACCURACY_USEC,
				       on_start_poll, x) < 0) {
		sandbox_free(x);
		return errorf(ret_error, -ENOMEM, "cannot arm a timer");
	}
	sandbox_link(x);
	*ret_data = x;
	return 0;
}

static void daytona_forget(void *state, const char *sandbox_id, const char *handle) {
	struct daytona *d = state;

	for (struct deletion **p = &d->pending; *p; p = &(*p)->next)
		if (strcmp((*p)->sandbox_id, sandbox_id) == 0) {
			struct deletion *del = *p;

			*p = del->next;
			del->next = d->deletions;
			d->deletions = del;
			deletion_send(del);
			return;
		}
}

/* Checks options as spawn() would, with a command standing in for the
 * task's. */
static int daytona_check_options(void *state, const char *options_json, char **ret_error) {
	struct daytona *d = state;
	static const char *const argv[] = { "true", NULL }, *const envp[] = { NULL };
	struct dagd_spawn spec = { .sandbox_id = "t-0.0", .task_id = "t-0", .project_id = "p-0", .attempt = 1,
				   .argv = argv, .envp = envp, .log_path = "/dev/null",
				   .options_json = options_json ? options_json : "{}" };
	struct sandbox_def def = {};
	int r;

	r = sandbox_def_build(&d->set, d->host->instance, &spec, &def, ret_error);
	sandbox_def_done(&def);
	return r;
}

DAGD_EXECUTOR_EXPORT const struct dagd_executor dagd_executor = {
	.abi_version = DAGD_EXECUTOR_ABI_VERSION,
	.size = sizeof(struct dagd_executor),
	.name = "daytona",
	.description = "runs each task in a Daytona sandbox, through Daytona's API and the sandbox's toolbox",
	.max_concurrency = 0,
	.init = daytona_init,
	.shutdown = daytona_shutdown,
	.spawn = daytona_spawn,
	.cancel = daytona_cancel,
	.adopt = daytona_adopt,
	.forget = daytona_forget,
	.check_options = daytona_check_options,
};
