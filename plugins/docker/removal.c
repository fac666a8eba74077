/*
 * removal.c - the docker executor's removal of containers: a sandbox's,
 * once the host has committed its exit (forget()), and the orphans'.
 * Orphans are containers labelled with this daemon's instance that no
 * sandbox owns; the sweep lists them on every engine in use, at start and
 * every orphan_sweep seconds, and removes them, but for those kept by
 * keep_failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "docker.h"

/* ---- removal, after the host's commit ---- */

static void on_removed(struct http_request *req, void *userdata) {
	struct docker *d = userdata;
	_cleanup_free_ char *m = NULL;

	/* 404: gone already; 409: someone is removing it */
	if (http_ok(req) || http_status(req) == 404 || http_status(req) == 409)
		return;
	m = http_error(req);
	d->host->log(NULL, LOG_WARNING, "docker: cannot remove a container: %s", m ? m : "out of memory");
}

static const struct http_calls remove_calls = { .done = on_removed };

void remove_now(struct docker *d, const char *engine, const char *id) {
	int r = http_submit(d->http, engine, "DELETE", NULL, REQUEST_TIMEOUT_MS, &remove_calls, d, NULL,
			    "/containers/%s?force=1&v=1", id);

	if (r < 0)
		d->host->log(NULL, LOG_WARNING, "docker: cannot remove container %.12s: %s", id, strerror(-r));
}

void removal_free(struct removal *rm) {
	free(rm->engine);
	free(rm->sandbox_id);
	free(rm);
}

/* Keeps the container until the host says its exit is on disk (forget()):
 * a daemon that dies before that finds it again, and its exit with it. */
void remove_later(struct docker *d, const char *engine, const char *id, const char *sandbox_id) {
	struct removal *rm = calloc(1, sizeof(*rm));

	if (rm) {
		rm->engine = strdup(engine);
		rm->sandbox_id = strdup(sandbox_id ? sandbox_id : "");
	}
	if (!rm || !rm->engine || !rm->sandbox_id) {
		if (rm)
			removal_free(rm);
		return;         /* the orphan sweep removes it */
	}
	snprintf(rm->id, sizeof(rm->id), "%s", id);
	rm->next = d->removals;
	d->removals = rm;
}

/* ---- the sweep of orphans ---- */

/* Whether a container (id, its sandbox label) is one of ours, alive or in the making. */
/* A live sandbox, or one whose exit the host has yet to commit (removed on
 * forget(), not before: a daemon killed before the commit must find it). */
static bool sandbox_owns(struct docker *d, const char *id, const char *sandbox) {
	for (struct docker_sandbox *x = d->sandboxes; x; x = x->next)
		if (strcmp(x->id, id) == 0 || (sandbox && strcmp(x->sandbox_id, sandbox) == 0))
			return true;
	for (struct removal *rm = d->removals; rm; rm = rm->next)
		if (strcmp(rm->id, id) == 0 || (sandbox && strcmp(rm->sandbox_id, sandbox) == 0))
			return true;
	return false;
}

static void on_sweep_list(struct http_request *req, void *userdata) {
	struct docker *d = userdata;
	_cleanup_json_ json_object *list = NULL;

	if (!http_ok(req)) {
		_cleanup_free_ char *m = http_error(req);

		d->host->log(NULL, LOG_WARNING, "docker: cannot list containers to remove orphans: %s",
			     m ? m : "out of memory");
		return;
	}
	list = json_tokener_parse(http_body(req));
	if (!json_object_is_type(list, json_type_array))
		return;
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		json_object *c = json_object_array_get_idx(list, i), *labels = NULL, *v;
		const char *id, *sandbox = NULL, *state = "";

		if (!json_object_object_get_ex(c, "Id", &v))
			continue;
		id = json_object_get_string(v);
		(void) json_object_object_get_ex(c, "Labels", &labels);
		if (json_object_object_get_ex(labels, LABEL_SANDBOX, &v))
			sandbox = json_object_get_string(v);
		if (json_object_object_get_ex(c, "State", &v))
			state = json_object_get_string(v);
		if (sandbox_owns(d, id, sandbox))
			continue;
		/* kept on purpose, for someone to look at */
		if (json_object_object_get_ex(labels, LABEL_KEEP_FAILED, NULL) &&
		    (strcmp(state, "exited") == 0 || strcmp(state, "dead") == 0))
			continue;
		d->host->log(NULL, LOG_NOTICE, "docker: removing container %.12s (sandbox %s, %s): "
			     "no sandbox of this daemon owns it", id, sandbox ? sandbox : "?", state);
		remove_now(d, http_engine(req), id);
	}
}

static void sweep_engine(struct docker *d, const char *engine) {
	static const struct http_calls calls = { .done = on_sweep_list };
	_cleanup_json_ json_object *filter = json_object_new_object();
	json_object *labels = json_object_new_array();
	_cleanup_free_ char *label = NULL, *escaped = NULL;
	int r;

	json_object_object_add(filter, "label", labels);
	if (asprintf(&label, LABEL_INSTANCE "=%s", d->host->instance) < 0) {
		label = NULL;
		return;
	}
	json_object_array_add(labels, json_object_new_string(label));
	escaped = url_escape(json_object_to_json_string_ext(filter, JSON_C_TO_STRING_PLAIN));
	if (!escaped)
		return;
	r = http_submit(d->http, engine, "GET", NULL, REQUEST_TIMEOUT_MS, &calls, d, NULL,
			"/containers/json?all=1&filters=%s", escaped);
	if (r < 0)
		d->host->log(NULL, LOG_WARNING, "docker: cannot list containers: %s", strerror(-r));
}

int on_sweep(sd_event_source *s, uint64_t usec, void *userdata) {
	struct docker *d = userdata;

	/* every engine in use, each once */
	sweep_engine(d, d->set.engine);
	for (struct docker_sandbox *x = d->sandboxes; x; x = x->next) {
		bool seen = !x->foreign_engine;

		for (struct docker_sandbox *y = d->sandboxes; y != x && !seen; y = y->next)
			seen = strcmp(x->engine, y->engine) == 0;
		if (!seen)
			sweep_engine(d, x->engine);
	}
	if (d->set.sweep_usec > 0) {
		(void) sd_event_source_set_time_relative(s, d->set.sweep_usec);
		(void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
	}
	return 0;
}
