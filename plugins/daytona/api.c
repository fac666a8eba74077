/*
 * api.c - the daytona executor's requests to Daytona's API and to a
 * sandbox's toolbox: the one request in flight of each sandbox, kept to be
 * sent again after a doubling delay when Daytona answers 429 or 503 (or, if
 * the request may be repeated, 5xx or nothing); the timers between polls;
 * and what Daytona's answers say.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "daytona.h"

/* The delay before the n-th try again: the poll interval, doubled each time. */
uint64_t backoff_usec(const struct daytona *d, unsigned n) {
	uint64_t t = d->set.poll_usec;

	while (n-- > 1 && t < BACKOFF_CAP_USEC)
		t *= 2;
	return t < BACKOFF_CAP_USEC ? t : BACKOFF_CAP_USEC;
}

bool retryable(const struct http_request *req, bool any) {
	long s = http_status(req);

	if (s == 429 || s == 503)
		return true;
	return any && (s == 0 || s >= 500);
}

/* What Daytona said went wrong, for a person.  Malloc'd. */
char *api_error(const struct http_request *req) {
	_cleanup_json_ json_object *o = NULL;
	json_object *m;
	const char *f = http_failure(req);

	if (f)
		return strdupf("cannot reach Daytona: %s", f);
	o = json_tokener_parse(http_body(req));
	if (o && (json_object_object_get_ex(o, "message", &m) || json_object_object_get_ex(o, "error", &m)) &&
	    json_object_is_type(m, json_type_string))
		return strdupf("%s (HTTP %ld)", json_object_get_string(m), http_status(req));
	return strdupf("Daytona answered HTTP %ld", http_status(req));
}

const char *get_str(json_object *o, const char *key) {
	json_object *v;

	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string) ?
		json_object_get_string(v) : NULL;
}

/* ---- requests ---- */

static void send_current(struct dt_sandbox *x);

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
	struct dt_sandbox *x = userdata;

	x->timer = sd_event_source_disable_unref(x->timer);
	send_current(x);
	return 0;
}

static void on_answer(struct http_request *req, void *userdata) {
	struct dt_sandbox *x = userdata;
	_cleanup_free_ char *m = NULL;

	x->req = NULL;
	/* a command's state not had but for throttling: on_command() asks
	 * whether the sandbox is still there */
	if (retryable(req, x->retry_any) && !(x->answer == on_command && http_status(req) != 429) &&
	    ++x->failures < MAX_FAILURES) {
		uint64_t t = backoff_usec(x->d, x->failures);

		m = api_error(req);
		x->d->host->log(x->sb, LOG_DEBUG, "%s %s: %s; again in %llu ms", x->method, x->url,
				m ? m : "?", (unsigned long long) (t / 1000));
		if (sd_event_add_time_relative(x->d->host->event, &x->timer, CLOCK_MONOTONIC, t,
					       TIMER_ACCURACY_USEC, on_retry, x) >= 0)
			return;
	}
	x->failures = 0;
	x->answer(x, req);
}

int submit_current(struct dt_sandbox *x) {
	static const struct http_calls calls = { .done = on_answer };
	const char *headers[] = { x->d->headers[0], x->d->headers[1], x->content_type, NULL };

	return http_submit_url(x->d->http, NULL, x->url, x->content_type ? headers : x->d->headers, x->method,
			       x->body, REQUEST_TIMEOUT_MS, &calls, x, &x->req);
}

static void send_current(struct dt_sandbox *x) {
	int r = submit_current(x);

	if (r < 0)
		sandbox_end(x, -1, "error", strdupf("cannot send a request to Daytona: %s", strerror(-r)));
}

/* Sends METHOD url (body: JSON or NULL) and hands the answer to answer();
 * any: whether any failure may be retried (else only 429 and 503).  May end
 * the sandbox. */
void send_request(struct dt_sandbox *x, const char *method, char *url, const char *body, bool any,
		  answer_fn answer) {
	free(x->method);
	free(x->url);
	free(x->body);
	x->method = strdup(method);
	x->url = url;
	x->body = body ? strdup(body) : NULL;
	x->answer = answer;
	x->retry_any = any;
	if (!x->method || !x->url || (body && !x->body)) {
		sandbox_end(x, -1, "error", strdup("out of memory"));
		return;
	}
	send_current(x);
}

/* Calls fn in usec, from the loop. */
void later(struct dt_sandbox *x, uint64_t usec, sd_event_time_handler_t fn) {
	x->timer = sd_event_source_disable_unref(x->timer);
	if (sd_event_add_time_relative(x->d->host->event, &x->timer, CLOCK_MONOTONIC, usec,
				       TIMER_ACCURACY_USEC, fn, x) < 0)
		sandbox_end(x, -1, "error", strdup("cannot arm a timer"));
}
