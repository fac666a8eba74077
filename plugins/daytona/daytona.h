/*
 * daytona.h - the daytona executor's own interfaces: its options and the
 * sandbox they define (options.c); the executor's state, and the rooms of a
 * sandbox's life: the sandbox and its end (sandbox.c), the requests to
 * Daytona (api.c), the steps (steps.c), the deletion of sandboxes, after a
 * commit or as orphans (deletion.c).  executor.c, the executor's entry
 * points, uses them all, and what plugins share (common/common.h: the HTTP
 * client, helpers).
 */
#ifndef DAGD_DAYTONA_H
#define DAGD_DAYTONA_H

#include "common/common.h"

/* Where the API is when nobody says. */
#define DAYTONA_DEFAULT_API_URL "https://app.daytona.io/api"
/* The environment variable of the daemon holding the API key, by default. */
#define DAYTONA_DEFAULT_KEY_ENV "DAYTONA_API_KEY"
/* Where a task writes its result, unless its options say otherwise. */
#define DAYTONA_DEFAULT_RESULT_FILE "/tmp/dagd-result.json"

/* --- options.c ----------------------------------------------------------- */

/* The executor's own options (--executor-options daytona='{...}'). */
struct daytona_settings {
	char *api_url;                  /* without a trailing slash */
	char *api_key;                  /* never logged, never stored */
	char *target;                   /* the default region, or NULL */
	uint64_t poll_usec;             /* between two polls of a sandbox */
	uint64_t start_timeout_usec;    /* for a sandbox to reach "started" */
	uint64_t sweep_usec;            /* between sweeps of orphans; 0: the first only */
	bool inputs;                    /* the host gives spawn specs an inputs_path (ABI 4) */
};

/* Where a task's inputs file (DAGD_INPUTS) is uploaded in its sandbox. */
#define DAYTONA_INPUTS_FILE "/tmp/dagd-inputs.json"

int daytona_settings_parse(const char *options_json, struct daytona_settings *ret, char **ret_error);
void daytona_settings_done(struct daytona_settings *s);

/* One sandbox, from its spec and options. */
struct sandbox_def {
	json_object *create;            /* the body of POST /sandbox */
	char *command;                  /* the shell command run in the session */
	char *result_file;              /* DAGD_RESULT_FILE inside */
};

void sandbox_def_done(struct sandbox_def *def);
/* instance: the daemon's, for the labels; api_key: passed in only if the
 * task's options ask for it. */
int sandbox_def_build(const struct daytona_settings *set, const char *instance, const struct dagd_spawn *spec,
		      struct sandbox_def *ret, char **ret_error);

/* --- executor.c, sandbox.c, api.c, steps.c, deletion.c: the executor ----- */

/* How long one request may take. */
#define REQUEST_TIMEOUT_MS 60000L
/* Retryable failures in a row before giving up; the delay doubles up to the cap. */
#define MAX_FAILURES 12
#define BACKOFF_CAP_USEC (30 * 1000000ULL)
#define TIMER_ACCURACY_USEC 10000

enum step {
	STEP_CREATE,            /* POST /sandbox sent */
	STEP_START,             /* waiting for "started" */
	STEP_SESSION,           /* session created, or looked up after adopt */
	STEP_EXEC,              /* command sent */
	STEP_RUN,               /* polling the command */
	STEP_LOGS,              /* exited: logs, then the result */
	STEP_RESULT,
};

struct dt_sandbox;
typedef void (*answer_fn)(struct dt_sandbox *x, struct http_request *req);

/* A sandbox to delete, after the commit; retried like any request. */
struct deletion {
	struct daytona *d;
	struct deletion *next;
	struct http_request *req;
	sd_event_source *retry;
	unsigned failures;
	char *id;
	char *sandbox_id;               /* the host's, for forget(); NULL once sent */
};

struct daytona {
	const struct dagd_host *host;
	struct http *http;
	struct daytona_settings set;
	char *auth;                     /* "Authorization: Bearer ..." */
	const char *headers[3];
	sd_event_source *sweep_source;
	struct deletion *pending;       /* not sent yet: waiting for forget() */
	struct deletion *deletions;     /* sent, or waiting to be again */
	struct dt_sandbox *sandboxes;
};

struct dt_sandbox {
	struct daytona *d;
	struct dagd_sandbox *sb;
	struct dt_sandbox *prev, *next;
	char *sandbox_id;               /* the host's */
	char *session;
	char *id;                       /* Daytona's; NULL until created */
	char *toolbox;                  /* {toolboxProxyUrl}/{id} */
	char *cmd_id;
	char *command, *result_file, *create_body;
	char *inputs;                   /* the inputs file's text, to upload; NULL: none */
	char *content_type;             /* of the request in flight, when not JSON */
	char *log_path;
	enum step step;
	bool cancel, adopted;
	uint64_t deadline;              /* to be started by */
	unsigned polls;
	/* the request in flight, kept to send it again */
	struct http_request *req;
	sd_event_source *timer;
	char *method, *url, *body;
	answer_fn answer;
	bool retry_any;                 /* safe to repeat whatever went wrong */
	unsigned failures;
	unsigned poll_failures;         /* the command's state not had, in a row */
	size_t log_sent;                /* how much of the command's output is in the log */
	int code;
};

/* --- sandbox.c ----------------------------------------------------------- */

uint64_t now_usec(struct daytona *d);
struct dt_sandbox *sandbox_new(struct daytona *d, struct dagd_sandbox *sb, const struct dagd_spawn *spec);
void sandbox_free(struct dt_sandbox *x);
void sandbox_link(struct dt_sandbox *x);
void sandbox_end(struct dt_sandbox *x, int code, const char *reason, char *message);
void sandbox_fail(struct dt_sandbox *x, const char *reason, const char *what, struct http_request *req);

/* --- api.c --------------------------------------------------------------- */

uint64_t backoff_usec(const struct daytona *d, unsigned n);
bool retryable(const struct http_request *req, bool any);
char *api_error(const struct http_request *req);
const char *get_str(json_object *o, const char *key);
int submit_current(struct dt_sandbox *x);
void send_request(struct dt_sandbox *x, const char *method, char *url, const char *body, bool any,
		  answer_fn answer);
void later(struct dt_sandbox *x, uint64_t usec, sd_event_time_handler_t fn);

/* --- steps.c ------------------------------------------------------------- */

void on_created(struct dt_sandbox *x, struct http_request *req);
int on_start_poll(sd_event_source *s, uint64_t usec, void *userdata);
void on_command(struct dt_sandbox *x, struct http_request *req);
void output_new(struct dt_sandbox *x, const char *body);

/* --- deletion.c ---------------------------------------------------------- */

void deletion_free(struct deletion *del);
void deletion_send(struct deletion *del);
void delete_sandbox(struct daytona *d, const char *id, const char *sandbox_id, bool now);
int on_sweep(sd_event_source *s, uint64_t usec, void *userdata);

#endif
