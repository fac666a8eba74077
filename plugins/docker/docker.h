/*
 * docker.h - the docker executor's own interfaces, grouped by the file that
 * holds them: the HTTP client on libcurl's multi interface, driven by the
 * host's sd-event loop (http.c); the reader of the Engine's multiplexed log
 * stream (frames.c); the task options and the container they define
 * (options.c); small helpers (util.c).  docker.c, the executor itself, uses
 * them all.
 */
#ifndef DAGD_DOCKER_H
#define DAGD_DOCKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "executor.h"

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_json_ _cleanup_(json_putp)
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define TAKE_PTR(p) ({ __typeof__(p) _take_ = (p); (p) = NULL; _take_; })

/* The Engine API version spoken; every request path is prefixed with it. */
#define DOCKER_API_VERSION "1.41"
/* What the engine socket is when nobody says. */
#define DOCKER_DEFAULT_SOCKET "/var/run/docker.sock"
/* The labels every container of dagd carries. */
#define LABEL_INSTANCE "dagd.instance"
#define LABEL_PROJECT "dagd.project"
#define LABEL_TASK "dagd.task"
#define LABEL_ATTEMPT "dagd.attempt"
#define LABEL_SANDBOX "dagd.sandbox"
#define LABEL_KEEP_FAILED "dagd.keep-failed"

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
/* Starts METHOD on the engine behind the Unix socket `engine`; the path,
 * formatted, is prefixed with the API version.  body: JSON, or NULL.
 * timeout_ms 0: none (a long poll).  The request belongs to h until done. */
int http_submit(struct http *h, const char *engine, const char *method, const char *body,
		long timeout_ms, const struct http_calls *calls, void *userdata,
		struct http_request **ret, const char *path_format, ...) _printf_(9, 10);
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
/* A blocking GET of an unversioned path, for init() only: before the loop
 * runs, or while the host reloads its plugins. */
int http_get_sync(const char *engine, const char *path, long timeout_ms, long *ret_status,
		  char **ret_body, char **ret_error);

/* --- frames.c ------------------------------------------------------------ */

/* The Engine's stream of a container's output without a TTY: frames of an
 * 8-byte header (the stream, 0 0 0, the payload's size as 32-bit big endian)
 * and a payload.  A reader keeps what it saw of a header cut between two
 * pieces, and how much of a payload is still to come. */
struct frame_reader {
	uint8_t header[8];
	size_t header_len;
	uint32_t left;
	uint8_t stream;
};

typedef void (*frame_output_fn)(void *userdata, unsigned stream, const void *data, size_t size);

/* Feeds the next piece of the stream; out() gets each piece of payload.
 * -EBADMSG on a header no engine sends: the stream is not multiplexed. */
int frame_feed(struct frame_reader *fr, const void *data, size_t size, frame_output_fn out, void *userdata);

/* --- options.c ----------------------------------------------------------- */

/* The executor's own options (--executor-options docker='{...}'). */
struct executor_settings {
	char *engine;                   /* the engine's socket */
	char *socket_mount;             /* where the daemon's socket directory appears inside */
	bool keep_failed;               /* the default of the task option */
	uint64_t sweep_usec;            /* between sweeps of orphans; 0: the first only */
};

int executor_settings_parse(const char *options_json, struct executor_settings *ret, char **ret_error);
void executor_settings_done(struct executor_settings *s);

/* What holds for every container of one plugin instance. */
struct docker_site {
	const char *instance;           /* the daemon's, for the instance label */
	const char *socket_dir;         /* the daemon's socket directory, bound into the container */
	const char *socket_mount;       /* where it appears inside */
	const char *socket_inside;      /* DAGD_SOCKET inside */
	bool keep_failed;               /* the default */
};

/* One sandbox's container, from its spec and options. */
struct container_def {
	json_object *create;            /* the body of POST /containers/create */
	char *engine;                   /* the engine socket the options name; NULL: the plugin's */
	bool keep_failed;
	bool tty;
};

void container_def_done(struct container_def *def);
int container_def_build(const struct docker_site *site, const struct dagd_spawn *spec,
			struct container_def *ret, char **ret_error);
/* A size in bytes: a number, or a string like "64m" (k, m, g: powers of 1024). */
int parse_size(json_object *v, int64_t *ret);

/* --- util.c -------------------------------------------------------------- */

/* Returns r; sets *ret_error, if ret_error is not NULL, to the formatted
 * message (%m names -r). */
int errorf(char **ret_error, int r, const char *format, ...) _printf_(3, 4);
/* s with everything but [A-Za-z0-9._~-] percent-encoded; malloc'd. */
char *url_escape(const char *s);
/* Option readers: each leaves *ret alone when the key is absent. */
int type_error(char **ret_error, const char *key, const char *want);
/* json parsed: a JSON object whose keys are all in known. */
int parse_object(const char *json, const char *const *known, json_object **ret, char **ret_error);
/* A non-empty string (*ret NULL if absent). */
int get_string(json_object *o, const char *key, const char **ret, char **ret_error);
/* A number from 0 to max. */
int get_number(json_object *o, const char *key, double max, double *ret, char **ret_error);
int get_bool(json_object *o, const char *key, bool *ret, char **ret_error);
/* An object whose values are all strings (*ret NULL if absent). */
int get_string_map(json_object *o, const char *key, json_object **ret, char **ret_error);
/* Whether "KEY=VALUE" is the PATH or HOME the daemon passes on from its own
 * environment: meaningless in a sandbox, which has its own. */
bool host_default(const char *kv);

#endif
