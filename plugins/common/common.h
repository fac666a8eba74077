/*
 * common.h - what the executor plugins share, grouped by the file that holds
 * it: small helpers, error messages for the host, URL and shell quoting,
 * reading options (util.c), which every plugin here compiles in; the HTTP
 * client on libcurl's multi interface, driven by the host's sd-event loop
 * (http.c), which those that speak HTTP compile in; helper programs run from
 * the loop (child.c), for those that drive command-line tools.  A plugin
 * links nothing of the daemon.
 */
#ifndef DAGD_PLUGIN_COMMON_H
#define DAGD_PLUGIN_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "executor.h"

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_json_ _cleanup_(json_putp)
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define TAKE_PTR(p) ({ __typeof__(p) _take_ = (p); (p) = NULL; _take_; })

/* The labels every sandbox of dagd carries, whichever its executor. */
#define LABEL_INSTANCE "dagd.instance"
#define LABEL_PROJECT "dagd.project"
#define LABEL_TASK "dagd.task"
#define LABEL_ATTEMPT "dagd.attempt"
#define LABEL_SANDBOX "dagd.sandbox"
#define LABEL_KEEP_FAILED "dagd.keep-failed"

/* A doubly linked list: x has prev and next, head points at the first. */
#define LIST_LINK(head, x) do {                 \
		(x)->prev = NULL;               \
		(x)->next = (head);             \
		if (head)                       \
			(head)->prev = (x);     \
		(head) = (x);                   \
	} while (0)
#define LIST_UNLINK(head, x) do {                       \
		if ((x)->prev)                          \
			(x)->prev->next = (x)->next;    \
		else if ((head) == (x))                 \
			(head) = (x)->next;             \
		if ((x)->next)                          \
			(x)->next->prev = (x)->prev;    \
		(x)->prev = (x)->next = NULL;           \
	} while (0)

static inline void freep(void *p) {
	free(*(void **) p);
}

static inline void json_putp(json_object **o) {
	if (*o)
		(void) json_object_put(*o);
}

/* --- http.c -------------------------------------------------------------- */

struct http;
struct http_request;

/* What a request reports, each called from the loop.  headers() comes once
 * the final response's headers are in, data() with each piece of a streamed
 * body, done() once at the end; headers() and data() run inside libcurl and
 * must not submit or cancel requests.  data() returns 0, or < 0 to abort the
 * transfer.  After done() returns, the request is freed. */
struct http_calls {
	void (*headers)(struct http_request *req, long status, void *userdata);
	int (*data)(struct http_request *req, const void *data, size_t size, void *userdata);
	void (*done)(struct http_request *req, void *userdata);
};

int http_new(sd_event *event, struct http **ret);
struct http *http_free(struct http *h);
/* Starts METHOD on url, over the Unix socket unix_socket unless it is NULL,
 * with the extra headers (NULL-terminated "Name: value", or NULL). */
int http_submit_url(struct http *h, const char *unix_socket, const char *url, const char *const *headers,
		    const char *method, const char *body, long timeout_ms, const struct http_calls *calls,
		    void *userdata, struct http_request **ret);
/* Aborts a request; its done() is not called.  Not from inside headers() or data(). */
void http_cancel(struct http_request *req);
long http_status(const struct http_request *req);
const char *http_body(const struct http_request *req);
const char *http_engine(const struct http_request *req);
/* Why the exchange did not go through (no answer, or one too large); NULL if it did. */
const char *http_failure(const struct http_request *req);
/* Whether the exchange went through and the engine answered 2xx or 304. */
bool http_ok(const struct http_request *req);
/* What went wrong, for a person: the engine's message, or why it could not be
 * reached.  Malloc'd; NULL if out of memory. */
char *http_error(const struct http_request *req);
/* A blocking GET of url (over unix_socket unless NULL), for init() only:
 * before the loop runs, or while the host reloads its plugins.  what names
 * the other side in the error message. */
int http_get_sync_url(const char *unix_socket, const char *url, const char *what, long timeout_ms,
		      long *ret_status, char **ret_body, char **ret_error);

/* --- child.c ------------------------------------------------------------- */

/* Helper programs run from the loop, at most max_running at a time (0: no
 * limit), the others queued in order. */
struct child_runner;
struct child;

/* How a child ended: error < 0 if it could not be started or was killed at
 * its time limit (-ETIME); else status, as from waitpid().  out and err: what
 * it wrote (NUL-terminated, never NULL), valid during the call only. */
struct child_result {
	int error;
	int status;
	const char *out, *err;
};

/* Called once from the loop, never from inside child_run(); the child is
 * freed after it returns. */
typedef void (*child_done_fn)(struct child *c, const struct child_result *res, void *userdata);

int child_runner_new(sd_event *event, unsigned max_running, struct child_runner **ret);
/* Kills and forgets every child, queued or running; their done() is not called. */
struct child_runner *child_runner_free(struct child_runner *r);
/* Runs argv (looked up in PATH) with the daemon's environment, stdin
 * /dev/null, killed after timeout_usec (0: never). */
int child_run(struct child_runner *r, const char *const *argv, uint64_t timeout_usec, child_done_fn done,
	      void *userdata, struct child **ret);
/* Kills it (if it runs) and forgets it; done() is not called. */
void child_kill(struct child *c);
/* The blocking form, for init() and list(): -ETIME after timeout_usec.  The
 * outputs are malloc'd. */
int child_run_sync(const char *const *argv, uint64_t timeout_usec, int *ret_status, char **ret_out,
		   char **ret_err);

/* --- util.c -------------------------------------------------------------- */

/* A formatted string, malloc'd; NULL if out of memory. */
char *strdupf(const char *format, ...) _printf_(1, 2);
/* Returns r; sets *ret_error, if ret_error is not NULL, to the formatted
 * message (%m names -r). */
int errorf(char **ret_error, int r, const char *format, ...) _printf_(3, 4);
/* s with everything but [A-Za-z0-9._~-] percent-encoded; malloc'd. */
char *url_escape(const char *s);
/* s quoted for a POSIX shell; malloc'd. */
char *shell_quote(const char *s);
/* Option readers: each leaves *ret alone when the key is absent. */
int type_error(char **ret_error, const char *key, const char *want);
/* json parsed: a JSON object whose keys are all in known. */
int parse_object(const char *json, const char *const *known, json_object **ret, char **ret_error);
/* A non-empty string (*ret NULL if absent). */
int get_string(json_object *o, const char *key, const char **ret, char **ret_error);
/* A number from 0 to max. */
int get_number(json_object *o, const char *key, double max, double *ret, char **ret_error);
int get_bool(json_object *o, const char *key, bool *ret, char **ret_error);
int parse_size(json_object *v, int64_t *ret);
int host_check(const struct dagd_host *host, bool state_dir, char **ret_error);
/* An object whose values are all strings (*ret NULL if absent). */
int get_string_map(json_object *o, const char *key, json_object **ret, char **ret_error);
/* Whether "KEY=VALUE" is the PATH or HOME the daemon passes on from its own
 * environment: meaningless in a sandbox, which has its own. */
bool host_default(const char *kv);
int mkdir_p(const char *path, mode_t mode);
/* open(path, flags | O_CREAT), making its directory first if need be */
int open_in_log_dir(const char *path, int flags);

#endif
