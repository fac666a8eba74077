/*
 * dagctl.h - the internal header of dagctl, the operator CLI of dagd.
 *
 * Every command is one `struct ctl_cmd`, exported by the file of its family
 * (ctl-project.c, ctl-task.c, ...) and listed in the table of dagctl.c, which
 * draws the usage and help text from it.  A command's options map straight
 * onto the args of the protocol command it sends; most commands are nothing
 * but a table entry and a printer.  All of them talk to the daemon through
 * ctl-client.c.
 *
 * Functions return 0 (or a count) or a negative errno, and print their own
 * message before failing.  Made-up errors mark the daemon's side:
 * -EREMOTEIO, the daemon answered with an error (exit 1); -EBADMSG, its reply
 * made no sense (exit 1); -ECANCELED, what was waited for ended but did not
 * complete, or apply found its project differs from its file (exit 1); -ENXIO, a task or project named is not there (exit 1;
 * wait: 4); -ETIME, wait ran out of time (exit 3).  Anything else exits 2: a usage error, or no daemon.
 */
#pragma once

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <json-c/json.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define TAKE_PTR(p) ({ typeof(p) _p_ = (p); (p) = NULL; _p_; })
#define TAKE_FD(fd) ({ int _fd_ = (fd); (fd) = -EBADF; _fd_; })
#define _fallthrough_ __attribute__((__fallthrough__))
#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

static inline void freep(void *p) { free(*(void **) p); }
static inline void closep(int *fd) { if (*fd >= 0) close(*fd); }
static inline void json_object_putp(json_object **o) { if (*o) json_object_put(*o); }

#define CTL_JSON_PRETTY (JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE)
#define CTL_JSON_LINE   (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* How an option's argument becomes a member `key` of the request's args. */
enum ctl_arg {
	ARG_STRING,     /* a string */
	ARG_STRINGS,    /* appended to an array of strings (the option repeats) */
	ARG_INT,        /* a whole number, at least `min` */
	ARG_SECONDS,    /* a duration: a number >= 0, fractions allowed */
	ARG_OBJECT,     /* JSON text that must be an object */
	ARG_JSON,       /* any JSON text */
	ARG_ENV,        /* K=V, set in an object (the option repeats) */
	ARG_TRUE,       /* a flag: true */
	ARG_FALSE,      /* a flag: false */
};

struct ctl_opt {
	const char *name;       /* the long option, without "--" */
	const char *arg;        /* its argument as help names it; NULL for a flag */
	enum ctl_arg type;
	const char *key;        /* the args member it sets */
	long long min;          /* ARG_INT: the least value */
	const char *help;
};

/* -p/--project for a command that takes task names: where they are looked up
 * (not sent to the daemon). */
#define CTL_OPT_PROJECT \
	{ "project", "PROJECT", ARG_STRING, "_project", 0, "look task names up in PROJECT" }

struct ctl;

struct ctl_cmd {
	const char *name;       /* the words that select it: "task add" */
	const char *usage;      /* what follows them in a synopsis */
	const char *summary;    /* one line, for the command list */
	const char *details;    /* more for its help, or NULL */
	const char *example;    /* one or more command lines, or NULL */
	const struct ctl_opt *opts;     /* ends with {}; NULL: none */
	int min_args, max_args;         /* operands; max_args -1: any number */
	const char *keys[2];    /* the args the operands fill in order; the last
				 * takes the rest as an array if max_args is -1 */
	const char *dashdash;   /* if set, the words after "--" go into this arg, as an array */
	const char *required[2];        /* args that must be set when options are parsed */
	const char *call;       /* the protocol command sent ... */
	int (*show)(json_object *result);      /* ... and how its result is printed */
	/* or, for commands that do more than one call: run it all */
	int (*exec)(struct ctl *c, const struct ctl_cmd *cmd, json_object *args,
		    int argc, char **argv);
};

/* Which daemon: --system, --user, or as found (ctl-socket.c). */
enum ctl_scope { CTL_SCOPE_ANY, CTL_SCOPE_SYSTEM, CTL_SCOPE_USER };
/* Where the socket path came from, for the hint when nothing answers. */
enum ctl_socket_from { CTL_SOCKET_OPTION, CTL_SOCKET_ENV, CTL_SOCKET_SYSTEM, CTL_SOCKET_USER };

/* One connection to the daemon, and how the user wants output. */
struct ctl {
	const char *socket_path;
	enum ctl_socket_from socket_from;
	const char *user_tried; /* the user's socket, not there, before the system's */
	bool json;              /* print results as JSON */
	bool silent;            /* -q: nothing on stdout */
	bool quiet;             /* keep transport errors in err[] instead of printing them */
	int fd;
	int64_t next_id;
	char *buf;              /* bytes read and not yet consumed: [start, end) */
	size_t buf_start, buf_end, buf_scanned, buf_size;
	const sigset_t *waitmask;       /* if set, wait for input with this signal mask */
	int64_t deadline;       /* if set, waits end with -ETIME at this CLOCK_MONOTONIC usec */
	json_object *queue;     /* stream lines (events, logs) read while awaiting a reply */
	size_t queue_head;
	char err[1024];         /* the last transport error */
	char code[32];          /* the code of the last error reply of ctl_call(), or "" */
};

/* The state of one project as its events change it: what board, wait and
 * graph draw on. */
struct view {
	char *project;          /* the project as named to the daemon: its id once known */
	json_object *p;         /* the project object */
	json_object *tasks;     /* task id -> task object, kept up to date by the events */
	int64_t seq;            /* the last event seen; -1 before the first subscription */
	bool deleted;           /* the project was deleted */
};

/* Lines of text for a terminal: a growing buffer, display widths, colour. */
struct sbuf {
	char *s;
	size_t len, size;
};

/* The drawing characters: UTF-8 ones when the locale's are, else ASCII. */
struct glyphs {
	const char *dot, *ellipsis, *rule, *tee, *corner, *pipe;
};

/* dagctl.c */
int ctl_usage_error(const struct ctl_cmd *cmd, const char *format, ...)
	__attribute__((format(printf, 2, 3)));

/* ctl-socket.c */
void ctl_socket_resolve(struct ctl *c, const char *arg, enum ctl_scope scope);
const char *ctl_socket_hint(const struct ctl *c, int r, char *buf, size_t size);

/* ctl-client.c */
int ctl_fail(struct ctl *c, int r, const char *format, ...) __attribute__((format(printf, 3, 4)));
int ctl_parse_json(const char *s, size_t len, json_object **ret);
int ctl_connect(struct ctl *c);
void ctl_disconnect(struct ctl *c);
int ctl_read(struct ctl *c, json_object **ret);
int ctl_read_ready(struct ctl *c, json_object **ret);
int ctl_pause(struct ctl *c, int fd, int64_t usec);
int64_t ctl_monotonic(void);
bool ctl_lost(int r);
int ctl_request(struct ctl *c, const char *cmd, json_object *args, json_object **ret_reply);
/* ctl_request() with args given as JSON text (an object, on one line), and
 * its reply offered to take as text first (see await_reply()): 1 if take
 * took it, else 0 and the reply in *ret_reply. */
typedef int (*ctl_take_fn)(struct ctl *c, const char *line, size_t len, int64_t id, void *userdata);
int ctl_request_text(struct ctl *c, const char *cmd, const char *args, size_t len,
		     ctl_take_fn take, void *userdata, json_object **ret_reply);
int ctl_result(json_object *reply, json_object **ret_result);
void ctl_error(struct ctl *c, const char *code, const char *format, ...) __attribute__((format(printf, 3, 4)));
int ctl_reply_result(struct ctl *c, json_object *reply, json_object **ret_result);
int ctl_call(struct ctl *c, const char *cmd, json_object *args, json_object **ret_result);
int ctl_run(struct ctl *c, const char *cmd, json_object *args, int (*show)(json_object *result));

/* ctl-names.c */
bool ctl_is_task_id(const char *s);
bool ctl_is_task_id_n(const char *s, size_t n);
int ctl_resolve_tasks(struct ctl *c, json_object *args, const char *project);

/* ctl-output.c */
json_object *ctl_get(json_object *o, const char *key, json_type type);
json_object *ctl_expect(json_object *o, const char *key, json_type type);
const char *ctl_str(json_object *o, const char *key);
int ctl_bad_reply(const char *format, ...) __attribute__((format(printf, 1, 2)));
int ctl_print_json(json_object *o, int flags);
void ctl_put_value(FILE *f, json_object *v);
const char *ctl_retry_text(json_object *task, double now, char buf[static 48]);
const char *ctl_status_text(json_object *task, char buf[static 64]);
void ctl_print_kv(json_object *o);
void ctl_print_ids(const char *label, json_object *ids);

struct table;
struct table *table_new(size_t ncols, ...);
void table_add(struct table *t, const char *format, ...) __attribute__((format(printf, 2, 3)));
void table_print(struct table *t);
void table_free(struct table *t);
static inline void table_freep(struct table **t) { table_free(*t); }

/* ctl-follow.c */
void ctl_catch_signals(struct ctl *c, const int *sigs);
int ctl_caught(void);
int ctl_reopen(struct ctl *c, int (*open)(struct ctl *c, void *userdata), void *userdata);
int64_t ctl_backoff(int64_t pause);
int ctl_follow(struct ctl *c, int (*open)(struct ctl *c, void *userdata),
	       int (*line)(struct ctl *c, json_object *line, void *userdata), void *userdata);

/* ctl-view.c */
#define VIEW_INIT { .seq = -1 }
int view_load(struct ctl *c, struct view *v);
int view_open(struct ctl *c, void *view);
bool view_apply(struct view *v, json_object *line);
void view_done(struct view *v);
int64_t task_number(json_object *task);
json_object **view_sorted(struct view *v, size_t *ret_n);
bool status_finished(const char *status);

/* ctl-screen.c */
void sbuf_put(struct sbuf *b, const char *s, size_t len);
void sbuf_printf(struct sbuf *b, const char *format, ...) __attribute__((format(printf, 2, 3)));
int sbuf_text(struct sbuf *b, const char *s, int width, bool pad, const struct glyphs *g);
void sbuf_style(struct sbuf *b, bool colour, const char *sgr);
void sbuf_end_line(struct sbuf *b, bool clear);
void sbuf_free(struct sbuf *b);
static inline void sbuf_freep(struct sbuf *b) { sbuf_free(b); }
int text_width(const char *s);
const struct glyphs *ctl_glyphs(void);
bool ctl_colour(int fd);
int ctl_term_size(int fd, int *ret_rows, int *ret_cols);
int ctl_now(double *ret);
int ctl_parse_time(const char *s, double *ret);
const char *ctl_duration(double secs, char buf[static 32]);
void ctl_size_option(json_object *args, const char *key, int *ret);

/* ctl-project.c */
extern const struct ctl_cmd ctl_cmd_project_create, ctl_cmd_project_list, ctl_cmd_project_show,
	ctl_cmd_project_set, ctl_cmd_project_delete, ctl_cmd_autonomous, ctl_cmd_start;

/* ctl-task.c */
int ctl_show_tasks(json_object *result);
extern const struct ctl_cmd ctl_cmd_task_add, ctl_cmd_task_list, ctl_cmd_task_show,
	ctl_cmd_task_cancel, ctl_cmd_task_retry, ctl_cmd_task_start, ctl_cmd_task_depend,
	ctl_cmd_task_undepend, ctl_cmd_unblocked;

/* ctl-lifecycle.c */
extern const struct ctl_cmd ctl_cmd_task_hold, ctl_cmd_task_release, ctl_cmd_task_pause,
	ctl_cmd_task_resume, ctl_cmd_task_edit, ctl_cmd_task_remove, ctl_cmd_project_clean;

/* ctl-approval.c, ctl-pool.c */
extern const struct ctl_cmd ctl_cmd_approve, ctl_cmd_reject, ctl_cmd_pool_set, ctl_cmd_pool_list,
	ctl_cmd_pool_delete;

/* ctl-logs.c */
extern const struct ctl_cmd ctl_cmd_logs, ctl_cmd_task_logs;

/* ctl-board-draw.c */
#define BOARD_LANES 6
/* A board: the view it shows, its size and how it is drawn. */
struct board {
	struct view v;
	int width, height;      /* height 0: as many lines as it takes */
	bool colour, watch;
	const struct glyphs *g;
	double now;
	json_object **lane[BOARD_LANES]; /* the tasks of each lane, borrowed */
	size_t count[BOARD_LANES];
	/* the cards of each lane: a task, or the first of a run of a mapped
	 * task's children (many[i][k] of them) drawn as one */
	json_object **card[BOARD_LANES];
	size_t *many[BOARD_LANES], cards[BOARD_LANES];
	char note[256];         /* --watch: the last key's outcome, or what went wrong */
	bool note_bad, lost;
};
void board_lanes_free(struct board *b);
bool board_autonomous(const struct board *b);
int board_draw(struct board *b, struct sbuf *o);
int board_show_json(struct board *b);

/* ctl-board.c */
extern const struct ctl_cmd ctl_cmd_board;

/* ctl-graph.c */
extern const struct ctl_cmd ctl_cmd_graph;

/* ctl-wait.c */
int ctl_wait_task(struct ctl *c, const char *task_id, int64_t after, bool validating,
		  char status[static 32]);
extern const struct ctl_cmd ctl_cmd_wait;

/* ctl-complete.c */
extern const struct ctl_cmd ctl_cmd_complete;

/* ctl-apply.c */
int ctl_show_applied(json_object *result);
extern const struct ctl_cmd ctl_cmd_apply;

/* ctl-scan.c: plain JSON walked in its text, without a tree; -EINVAL for
 * anything else (then json-c reads it).  Each function skips white space
 * first where a value may start. */
struct jscan {
	const char *p, *end;
	unsigned depth;
};
int jscan_value(struct jscan *s);       /* checks and skips one value */
/* A string: its text between the quotes, and whether it has no escapes. */
int jscan_string(struct jscan *s, const char **ret, size_t *ret_len, bool *ret_plain);
int jscan_open(struct jscan *s, char c);        /* '{' or '[' */
/* The next member of an object (close '}': *ret_key, its key without
 * escapes, and s at its value) or element of an array (']'): 1; 0 at the
 * close.  first: true before the first. */
int jscan_next(struct jscan *s, char close, bool *first, const char **ret_key, size_t *ret_len);
int jscan_end(struct jscan *s);         /* nothing but white space is left */

/* ctl-apply-text.c: apply of a file in its text, to a new project or to one
 * that has none of its tasks yet: 1 once done, 0 if ctl-apply.c is to do
 * it, or a negative errno. */
int apply_text(struct ctl *c, const char *text, size_t len, json_object *args);

/* ctl-apply-update.c */
extern const char *const apply_task_keys[];
int apply_check_tasks(const char *path, json_object *tasks);
int apply_find_project(struct ctl *c, const char *name, json_object **ret);
/* The file's settings that differ from the project's, as {field, old, new}. */
void apply_diff_project(json_object *spec, json_object *p, json_object *diffs);
int apply_existing(struct ctl *c, const char *path, json_object *spec, bool update);

/* ctl-events.c */
extern const struct ctl_cmd ctl_cmd_events;

/* web.c (web-none.c in the static dagctl) */
extern const struct ctl_cmd ctl_cmd_web;

/* ctl-daemon.c */
extern const struct ctl_cmd ctl_cmd_status, ctl_cmd_executors, ctl_cmd_executors_reload;
