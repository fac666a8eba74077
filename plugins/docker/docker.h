/*
 * docker.h - the docker executor's own interfaces, grouped by the file that
 * holds them: the reader of the Engine's multiplexed log stream (frames.c);
 * the task options and the container they define (options.c); requests to
 * the Engine, on the shared HTTP client (engine.c); the executor's state,
 * and the rooms of a sandbox's life: the sandbox, its end and its kill
 * (sandbox.c), the steps (steps.c), the removal of containers, after a
 * commit or as orphans (removal.c).  executor.c, the executor's entry
 * points, uses them all, and what plugins share (common/common.h).
 */
#ifndef DAGD_DOCKER_H
#define DAGD_DOCKER_H

#include "common/common.h"

/* The Engine API version spoken; every request path is prefixed with it. */
#define DOCKER_API_VERSION "1.41"
/* What the engine socket is when nobody says. */
#define DOCKER_DEFAULT_SOCKET "/var/run/docker.sock"

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
	bool inputs;                    /* the host gives spawn specs an inputs_path (ABI 4) */
};

/* Where a task's inputs file (DAGD_INPUTS) appears in its container. */
#define DOCKER_INPUTS_INSIDE "/dagd/inputs.json"

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

/* --- engine.c ------------------------------------------------------------ */

/* Starts METHOD on the engine behind the Unix socket `engine`; the path,
 * formatted, is prefixed with the API version.  body: JSON, or NULL.
 * timeout_ms 0: none (a long poll).  The request belongs to h until done. */
int http_submit(struct http *h, const char *engine, const char *method, const char *body,
		long timeout_ms, const struct http_calls *calls, void *userdata,
		struct http_request **ret, const char *path_format, ...) _printf_(9, 10);
/* A blocking GET of an unversioned path, for init() only: before the loop
 * runs, or while the host reloads its plugins. */
int http_get_sync(const char *engine, const char *path, long timeout_ms, long *ret_status,
		  char **ret_body, char **ret_error);

/* --- executor.c, sandbox.c, steps.c, removal.c: the executor ------------- */

/* A request that is not a long poll gives up after this. */
#define REQUEST_TIMEOUT_MS 300000L
#define TIMER_ACCURACY_USEC 10000

enum step {
	STEP_CREATE,            /* create sent */
	STEP_ARM,               /* wait sent; start once it is registered */
	STEP_START,             /* start sent */
	STEP_RUN,               /* running: the wait and the logs pending */
	STEP_INSPECT,           /* adopted, or the wait broke: inspect sent */
	STEP_COLLECT,           /* exited: inspect sent, the logs draining */
};

/* A container whose exit the host has yet to commit: removed on forget(). */
struct removal {
	struct removal *next;
	char *engine;
	char *sandbox_id;
	char id[65];
};

struct docker_sandbox;

struct docker {
	const struct dagd_host *host;
	struct http *http;
	struct executor_settings set;   /* set.engine: the executor's engine socket */
	struct docker_site site;
	char *socket_dir, *socket_inside;
	sd_event_source *sweep_source;
	struct removal *removals;
	struct docker_sandbox *sandboxes;
};

struct docker_sandbox {
	struct docker *d;
	struct dagd_sandbox *sb;
	struct docker_sandbox *prev, *next;
	char *sandbox_id;
	char *engine;                   /* its engine's socket */
	bool foreign_engine;            /* not the executor's: named in the handle */
	char id[65];                    /* the container; "" until created */
	enum step step;
	bool tty, keep_failed;
	bool cancel;                    /* stop it as soon as it can be */
	uint64_t grace_usec;
	char since[40];                 /* logs from this time on ("" all) */
	int log_fd;                     /* the attempt's log, to keep its mtime exact */
	unsigned rechecks;
	bool wait_registered;           /* the engine has taken the wait */
	bool wait_over;                 /* and answered it */
	struct http_request *req;       /* the step's: create, start, inspect */
	struct http_request *wait;
	struct http_request *logs;
	sd_event_source *step_source;   /* from a callback inside libcurl to the loop */
	sd_event_source *kill_source;   /* SIGKILL once the grace is over */
	sd_event_source *drain_source;  /* the logs given up */
	sd_event_source *recheck_source;
	struct frame_reader frames;
	bool raw;                       /* output not multiplexed */
	int wait_code;                  /* what the wait said, in case inspect cannot */
	int64_t memory;                 /* its memory limit, bytes (0 none) */
	/* how it ended, once known */
	bool ended;
	int code, signal;
	const char *reason;
	char *message;
};

/* --- sandbox.c ----------------------------------------------------------- */

struct docker_sandbox *sandbox_new(struct docker *d, struct dagd_sandbox *sb, const char *sandbox_id,
				   const char *engine);
void sandbox_free(struct docker_sandbox *x);
void sandbox_link(struct docker_sandbox *x);
void sandbox_try_finish(struct docker_sandbox *x);
void sandbox_end(struct docker_sandbox *x, int code, int sig, const char *reason, char *message);
void sandbox_fail(struct docker_sandbox *x, const char *reason, const char *what, struct http_request *req);
void sandbox_fail_errno(struct docker_sandbox *x, const char *what, int r);
void sandbox_end_inspected(struct docker_sandbox *x, json_object *info);
void sandbox_kill(struct docker_sandbox *x);

/* --- steps.c ------------------------------------------------------------- */

void on_created(struct http_request *req, void *userdata);
int inspect_submit(struct docker_sandbox *x, enum step step);
void step_later(struct docker_sandbox *x);

/* --- removal.c ----------------------------------------------------------- */

void remove_now(struct docker *d, const char *engine, const char *id);
void removal_free(struct removal *rm);
void remove_later(struct docker *d, const char *engine, const char *id, const char *sandbox_id);
int on_sweep(sd_event_source *s, uint64_t usec, void *userdata);

#endif
