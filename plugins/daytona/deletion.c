/*
 * deletion.c - the daytona executor's deletion of sandboxes: a finished
 * one's once the host has committed its exit (forget()), a cancelled one's at
 * once, and the orphans'.  Orphans are sandboxes labelled with this daemon's
 * instance that no sandbox owns; the sweep lists them, page by page, at start
 * and every orphan_sweep seconds.  A deletion Daytona could not do yet (429,
 * 5xx, no answer) is sent again after a doubling delay.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "daytona.h"

/* ---- deletion, after the host's commit ---- */

void deletion_free(struct deletion *del) {
	http_cancel(del->req);
	sd_event_source_disable_unref(del->retry);
	free(del->id);
	free(del->sandbox_id);
	free(del);
}

static void deletion_drop(struct deletion *del) {
	struct deletion **p = &del->d->deletions;

	while (*p && *p != del)
		p = &(*p)->next;
	if (*p)
		*p = del->next;
	deletion_free(del);
}

static int on_deletion_retry(sd_event_source *s, uint64_t usec, void *userdata) {
	struct deletion *del = userdata;

	del->retry = sd_event_source_disable_unref(del->retry);
	deletion_send(del);
	return 0;
}

static void on_deleted(struct http_request *req, void *userdata) {
	struct deletion *del = userdata;
	struct daytona *d = del->d;
	_cleanup_free_ char *m = NULL;

	del->req = NULL;
	/* 404: gone already */
	if (http_ok(req) || http_status(req) == 404) {
		deletion_drop(del);
		return;
	}
	if (retryable(req, true) && ++del->failures < MAX_FAILURES &&
	    sd_event_add_time_relative(d->host->event, &del->retry, CLOCK_MONOTONIC,
				       backoff_usec(d, del->failures), TIMER_ACCURACY_USEC, on_deletion_retry, del) >= 0)
		return;
	m = api_error(req);
	d->host->log(NULL, LOG_WARNING, "daytona: cannot delete sandbox %s: %s", del->id, m ? m : "out of memory");
	deletion_drop(del);
}

void deletion_send(struct deletion *del) {
	static const struct http_calls calls = { .done = on_deleted };
	struct daytona *d = del->d;
	_cleanup_free_ char *url = strdupf("%s/sandbox/%s", d->set.api_url, del->id);
	int r = url ? http_submit_url(d->http, NULL, url, d->headers, "DELETE", NULL, REQUEST_TIMEOUT_MS, &calls,
				      del, &del->req) : -ENOMEM;

	if (r < 0) {
		d->host->log(NULL, LOG_WARNING, "daytona: cannot delete sandbox %s: %s", del->id, strerror(-r));
		deletion_drop(del);
	}
}

static bool deleting(const struct daytona *d, const char *id) {
	for (const struct deletion *del = d->deletions; del; del = del->next)
		if (strcmp(del->id, id) == 0)
			return true;
	for (const struct deletion *del = d->pending; del; del = del->next)
		if (strcmp(del->id, id) == 0)
			return true;
	return false;
}

/* Deletes sandbox id: at once, or once the host says the exit is on disk
 * (forget() of sandbox_id): a daemon that dies before its commit finds the
 * sandbox, and its exit, again. */
void delete_sandbox(struct daytona *d, const char *id, const char *sandbox_id, bool now) {
	struct deletion *del;

	if (deleting(d, id))
		return;
	del = calloc(1, sizeof(*del));
	if (del) {
		del->id = strdup(id);
		del->sandbox_id = now ? NULL : strdup(sandbox_id ? sandbox_id : "");
	}
	if (!del || !del->id || (!now && !del->sandbox_id)) {
		if (del) {
			free(del->id);
			free(del->sandbox_id);
		}
		free(del);
		d->host->log(NULL, LOG_WARNING, "daytona: out of memory; sandbox %s is left to the orphan sweep", id);
		return;
	}
	del->d = d;
	if (now) {
		del->next = d->deletions;
		d->deletions = del;
		deletion_send(del);
		return;
	}
	del->next = d->pending;
	d->pending = del;
}

/* ---- the sweep of orphans ---- */

static bool sandbox_owns(const struct daytona *d, const char *id, const char *sandbox) {
	for (const struct dt_sandbox *x = d->sandboxes; x; x = x->next)
		if ((x->id && strcmp(x->id, id) == 0) || (sandbox && strcmp(x->sandbox_id, sandbox) == 0))
			return true;
	return false;
}

static void sweep_page(struct daytona *d, const char *cursor);

static void on_sweep_list(struct http_request *req, void *userdata) {
	struct daytona *d = userdata;
	_cleanup_json_ json_object *o = NULL;
	json_object *items;
	const char *cursor;

	if (!http_ok(req) || !(o = json_tokener_parse(http_body(req))) ||
	    !json_object_object_get_ex(o, "items", &items) || !json_object_is_type(items, json_type_array)) {
		_cleanup_free_ char *m = api_error(req);

		d->host->log(NULL, LOG_WARNING, "daytona: cannot list sandboxes to delete orphans: %s",
			     m ? m : "out of memory");
		return;
	}
	for (size_t i = 0; i < json_object_array_length(items); i++) {
		json_object *s = json_object_array_get_idx(items, i), *labels = NULL;
		const char *id = get_str(s, "id"), *state = get_str(s, "state"), *sandbox = NULL;

		if (!id || (state && (strcmp(state, "destroyed") == 0 || strcmp(state, "destroying") == 0)))
			continue;
		if (json_object_object_get_ex(s, "labels", &labels))
			sandbox = get_str(labels, LABEL_SANDBOX);
		if (sandbox_owns(d, id, sandbox) || deleting(d, id))
			continue;
		d->host->log(NULL, LOG_NOTICE, "daytona: deleting sandbox %s (sandbox %s, %s): "
			     "no sandbox of this daemon owns it", id, sandbox ? sandbox : "?", state ? state : "?");
		delete_sandbox(d, id, NULL, true);
	}
	cursor = get_str(o, "nextCursor");
	if (cursor && *cursor)
		sweep_page(d, cursor);
}

static void sweep_page(struct daytona *d, const char *cursor) {
	static const struct http_calls calls = { .done = on_sweep_list };
	_cleanup_json_ json_object *filter = json_object_new_object();
	_cleanup_free_ char *labels = NULL, *c = NULL, *url = NULL;
	int r;

	json_object_object_add(filter, LABEL_INSTANCE, json_object_new_string(d->host->instance));
	labels = url_escape(json_object_to_json_string_ext(filter, JSON_C_TO_STRING_PLAIN));
	c = cursor ? url_escape(cursor) : NULL;
	if (labels && (!cursor || c))
		url = strdupf("%s/sandbox?labels=%s%s%s", d->set.api_url, labels, c ? "&cursor=" : "", c ? c : "");
	r = url ? http_submit_url(d->http, NULL, url, d->headers, "GET", NULL, REQUEST_TIMEOUT_MS, &calls, d, NULL)
		: -ENOMEM;
	if (r < 0)
		d->host->log(NULL, LOG_WARNING, "daytona: cannot list sandboxes: %s", strerror(-r));
}

int on_sweep(sd_event_source *s, uint64_t usec, void *userdata) {
	struct daytona *d = userdata;

	sweep_page(d, NULL);
	if (d->set.sweep_usec > 0) {
		(void) sd_event_source_set_time_relative(s, d->set.sweep_usec);
		(void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
	}
	return 0;
}
