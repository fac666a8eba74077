/*
 * sandbox.c - a daytona sandbox: the executor's record of one attempt's
 * Daytona sandbox, from spawn() or adopt() to its end, in the executor's
 * list; and its end: the exit reported to the host, and the Daytona sandbox
 * deleted, at once if it was cancelled, else once the host has committed the
 * exit.
 */
#include <stdlib.h>
#include <string.h>

#include "daytona.h"

uint64_t now_usec(struct daytona *d) {
	uint64_t t = 0;

	(void) sd_event_now(d->host->event, CLOCK_MONOTONIC, &t);
	return t;
}

/* ---- the list of sandboxes ---- */

static void sandbox_unlink(struct dt_sandbox *x) {
	if (x->d)
		LIST_UNLINK(x->d->sandboxes, x);
}

void sandbox_link(struct dt_sandbox *x) {
	LIST_LINK(x->d->sandboxes, x);
}

void sandbox_free(struct dt_sandbox *x) {
	if (!x)
		return;
	sandbox_unlink(x);
	http_cancel(x->req);
	sd_event_source_disable_unref(x->timer);
	free(x->sandbox_id);
	free(x->session);
	free(x->id);
	free(x->toolbox);
	free(x->cmd_id);
	free(x->command);
	free(x->inputs);
	free(x->content_type);
	free(x->result_file);
	free(x->create_body);
	free(x->log_path);
	free(x->method);
	free(x->url);
	free(x->body);
	free(x);
}

struct dt_sandbox *sandbox_new(struct daytona *d, struct dagd_sandbox *sb, const struct dagd_spawn *spec) {
	const char *sandbox_id = spec && spec->sandbox_id ? spec->sandbox_id :
		d->host->size >= sizeof(struct dagd_host) && d->host->sandbox_id ? d->host->sandbox_id(sb) : NULL;
	struct dt_sandbox *x;

	if (!sandbox_id)
		return NULL;
	x = calloc(1, sizeof(*x));
	if (!x)
		return NULL;
	x->d = d;
	x->sb = sb;
	x->code = -1;
	x->sandbox_id = strdup(sandbox_id);
	x->session = strdupf("dagd-%s", sandbox_id);
	x->log_path = spec && spec->log_path ? strdup(spec->log_path) : NULL;
	if (!x->sandbox_id || !x->session || (spec && spec->log_path && !x->log_path)) {
		sandbox_free(x);
		return NULL;
	}
	return x;
}

/* ---- the end of a sandbox ---- */

/* Reports how it ended (message: malloc'd, taken) and forgets it; its
 * Daytona sandbox is deleted, at once if it was cancelled. */
void sandbox_end(struct dt_sandbox *x, int code, const char *reason, char *message) {
	struct daytona *d = x->d;
	struct dagd_exit e = {
		.code = code,
		.reason = x->cancel ? "cancelled" : reason,
		.message = message,
		.result_left = code == 0,       /* downloaded before, if there was one */
	};

	http_cancel(TAKE_PTR(x->req));
	x->timer = sd_event_source_disable_unref(x->timer);
	if (x->id)
		delete_sandbox(d, x->id, x->sandbox_id, x->cancel);
	sandbox_unlink(x);
	x->d = NULL;
	d->host->sandbox_exited(x->sb, &e);
	free(message);
	sandbox_free(x);
}

void sandbox_fail(struct dt_sandbox *x, const char *reason, const char *what, struct http_request *req) {
	_cleanup_free_ char *m = api_error(req);

	sandbox_end(x, -1, reason, strdupf("%s: %s", what, m ? m : "out of memory"));
}
