/*
 * dagd.h - the daemon's one internal header.
 *
 * Prototypes are grouped by the file that defines them.  The one public
 * header is plugins/executor.h, the plugin ABI.
 *
 * Data flows one way: socket -> command -> engine -> store and plugins.  The
 * socket loop (server*.c) reads a client's line and hands it to its command
 * (cmd*.c); the command checks its arguments and calls the engine
 * (engine*.c); the engine changes the model, writes it through the store
 * (store*.c) and runs sandboxes through the plugins (plugin.c).  A layer
 * never calls the one above it; what goes up goes by looking or through a
 * function it was handed:
 *  - the end of a turn (server_flush) looks at what changed after whatever
 *    the loop ran: what the store wrote (store_writes()), whether the engine
 *    may dispatch, and which sandboxes ended (engine_changed(),
 *    engine_take_ended(), the queue of logs whose followers are to be sent
 *    the end);
 *  - at start-up the store reads its rows and hands each to the engine's
 *    loader (struct store_loader), which builds the objects, the arrays
 *    and the edges (engine-load.c);
 *  - a plugin reports through the host's table (plugin.c), which calls the
 *    engine's sandbox_started() and sandbox_exited();
 *  - what both a command and the loop read (an attempt's log) lies in a room
 *    below both (logs.c).
 * (The one way still taken up: a command that starts a follow hands it to
 * the loop, server_subscribe() and server_follow_log(), and daemon.status
 * asks the loop for its part.)
 */
#ifndef DAGD_H
#define DAGD_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>

#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "executor.h"
#include "idset.h"

/* --- conventions (systemd's) ------------------------------------------- */

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define TAKE_PTR(p) ({ __typeof__(p) _p = (p); (p) = NULL; _p; })
#define TAKE_FD(fd) ({ int _fd = (fd); (fd) = -EBADF; _fd; })
#define USEC_PER_SEC 1000000ULL
#define USEC_PER_MSEC 1000ULL

static inline void freep(void *p) { free(*(void **) p); }
#define _cleanup_free_ _cleanup_(freep)
static inline void json_putp(json_object **p) { if (*p) (void) json_object_put(*p); }
#define _cleanup_json_ _cleanup_(json_putp)
void closep(int *fd);
#define _cleanup_close_ _cleanup_(closep)

#define MAX_LINE (1024 * 1024)
/* an operator's lines may be longer: a batch of 100,000 tasks is ~5 MB */
#define MAX_OPERATOR_LINE (256 * 1024 * 1024)

/* --- the model ----------------------------------------------------------- */

enum status {
	ST_WAITING,
	ST_READY,
	ST_SPAWNING,
	ST_RUNNING,
	ST_PENDING_VALIDATION,
	ST_VALIDATING,
	ST_COMPLETED,
	ST_FAILED,
	ST_UPSTREAM_FAILED,
	ST_CANCELLED,
	ST_SKIPPED,                     /* its trigger rule did not hold (engine-trigger.c) */
	ST_AWAITING_APPROVAL,           /* an approval task waiting for an operator */
	_ST_MAX,
	_ST_INVALID = -1,
};

enum priority { PRIO_CRITICAL, PRIO_HIGH, PRIO_MEDIUM, PRIO_LOW, _PRIO_MAX, _PRIO_INVALID = -1 };

struct task;
struct executor;
struct trigger;

/* A named pool (engine-pools.c): tasks naming it run only while the sum of
 * their weights stays within its size. */
struct pool {
	char *name;
	unsigned size;
	unsigned used;                  /* the weights of its active tasks */
	bool reserved;                  /* this dispatch round: kept for a task that does not fit */
	int64_t created_at, updated_at;
	struct pool *next;
};

struct pool_use {
	struct pool *pool;
	unsigned weight;
};

/* A project's named tasks, by name (names.c). */
struct name_index {
	struct task **slots;
	size_t cap, n;
};

struct project {
	int64_t id;
	char *name;
	bool autonomous;
	unsigned max_concurrency;
	char *executor;
	char *executor_options;         /* JSON object text */
	int64_t created_at, updated_at; /* usec since the epoch */

	unsigned counts[_ST_MAX];
	struct idset members[_ST_MAX];  /* its tasks' ids, by status */
	unsigned active;                /* tasks holding a slot */

	/* dispatchable tasks, best first: a binary heap */
	struct task **heap;
	size_t n_heap, heap_cap;
	struct name_index names;
};

struct sandbox {
	char *id;                       /* "t-N.A" or "t-N.A.v" for a validator */
	int64_t task_id;
	unsigned attempt;
	bool validator;
	struct executor *ex;
	char *executor;                 /* its name, to find it again after a reload */
	void *data;                     /* the plugin's */
	char *handle;                   /* the plugin's name for it, once started */
	char *log_path;
	int log_fd;
	bool started, exited;
	bool timed_out, cancelled;
	sd_event_source *timer;         /* timeout */
	struct sandbox *next;
};

/* What a task is, as against where it stands: its definition and its
 * outcome, read from the database when asked for (task_def()) and let go
 * at the end of the turn unless a sandbox of the task is live; the
 * scheduler needs none of it.  A million tasks waiting cost their state,
 * not their commands. */
struct task_def {
	char *title;
	char *command;                  /* JSON: an array of strings, or a string */
	char *env;                      /* JSON object text */
	char *cwd;
	char *executor_options;         /* JSON object text */
	char *result;                   /* JSON text or NULL */
	char *error_message;
	char *token;
	char *report;                   /* the accepted task.complete reply, JSON text */
	char *item;                     /* a child: its item, JSON text */
	bool lost;                      /* could not be read: never written back */
};

struct task {
	int64_t id;
	struct project *project;
	char *name;
	struct task_def *def;            /* its definition and outcome; NULL: in the database */
	char *executor;                 /* NULL: the project's */
	enum priority priority;
	uint64_t timeout_usec;
	unsigned max_retries;
	uint64_t backoff_usec;
	char *validation_command;
	struct trigger *trigger;        /* NULL: all_succeeded (trigger.h) */
	bool finally;                   /* runs once the rest of its batch finished */

	enum status status;
	bool released;
	bool paused;                    /* its sandbox's processes stopped (task.pause) */
	bool held;                      /* by an operator: never dispatched */
	unsigned attempt;               /* sandboxes started, ever */
	unsigned tries;                 /* attempts since the last task.retry */
	unsigned reserved;              /* ready: its next attempt's number, reserved; 0 none */
	bool reserve_ready;             /* that reservation is committed (engine-dispatch.c) */
	int64_t not_before;             /* usec; 0 none */
	char *sandbox_id;
	char *sandbox_executor;
	char *sandbox_handle;
	int64_t created_at, updated_at, started_at, finished_at;
	int64_t status_changed_at;

	struct task **deps;             /* what it depends on */
	size_t n_deps;
	struct task **rdeps;            /* what depends on it */
	size_t n_rdeps;
	unsigned unmet;                 /* deps not completed */

	ssize_t heap_idx;               /* -1: not in its project's heap */
	uint32_t dirty_pos;             /* its place in the rows to write + 1; 0: none */
	uint32_t def_pos;               /* its place among the definitions in memory + 1 */
	struct sandbox *sb;             /* the live sandbox of its current attempt */
	sd_event_source *backoff;

	/* retries that know why, pools, approval (engine-attempts.c,
	 * engine-pools.c, engine-approval.c; stored in task_attempts) */
	uint64_t exit_codes[4];         /* retry_on_exit or no_retry_on_exit: a bitmap of 0..255 */
	int8_t exit_rule;               /* EXIT_RULE_* */
	unsigned max_lost_retries;
	unsigned lost_tries;            /* lost sandboxes retried since the last task.retry */
	uint64_t max_retry_duration_usec;       /* 0: none */
	int64_t first_started_at;       /* usec: the first attempt since the last task.retry */
	struct pool_use *pools;
	size_t n_pools;
	bool approval;                  /* kind "approval": an operator decides, no sandbox */
	bool approve_on_timeout;
	int64_t approval_deadline;      /* usec; 0: none */
	sd_event_source *approval_timer;
	/* fan-out (engine-map.c) */
	int64_t map_over;               /* the dependency whose result it maps over; 0: none */
	unsigned map_concurrency;       /* its children at most this many at a time; 0: no limit */
	bool expanded;                  /* its children exist (map_count of them) */
	unsigned map_count;
	unsigned map_active;            /* its children holding a slot */
	int64_t map_parent;             /* a child: the mapped task; 0: none */
	unsigned map_index;             /* a child: its item's index */
};

enum { EXIT_RULE_NONE, EXIT_RULE_RETRY_ON, EXIT_RULE_NO_RETRY_ON };

/* --- main.c -------------------------------------------------------------- */

struct daemon {
	sd_event *event;
	char *socket_path;
	char *state_dir;
	char *plugin_dir;
	char *instance;
	unsigned global_limit;
	int64_t started_at;
	uint64_t kill_grace_usec;
	json_object *executor_options;  /* name -> options object */
	bool socket_owned;              /* we bound it: unlink at exit */
};

extern struct daemon D;

/* --- names.c ------------------------------------------------------------- */

struct task *names_get(const struct name_index *x, const char *name);
void names_add(struct name_index *x, struct task *t);
void names_del(struct name_index *x, const struct task *t);
void names_free(struct name_index *x);

/* --- util.c -------------------------------------------------------------- */

int64_t now_usec(void);
char *format_time(int64_t usec, char buf[static 32]);
size_t format_id(char *buf, const char *prefix, int64_t v);    /* "t-42": its length; buf of 24 */
int random_hex(char *buf, size_t n_bytes);
int mkdir_p(const char *path, mode_t mode);
int log_open(const char *path, int flags);
void crash_point(const char *point);
char *xstrdup(const char *s);
void *xrealloc(void *p, size_t n);
char *xasprintf(const char *fmt, ...) _printf_(1, 2);
void log_msg(int priority, const char *fmt, ...) _printf_(2, 3);
#define log_error(...) log_msg(3, __VA_ARGS__)
#define log_warning(...) log_msg(4, __VA_ARGS__)
#define log_info(...) log_msg(6, __VA_ARGS__)
#define log_debug(...) log_msg(7, __VA_ARGS__)
int log_errno(int priority, int r, const char *fmt, ...) _printf_(3, 4);
#define log_error_errno(r, ...) log_errno(3, r, __VA_ARGS__)
/* with the journal fields DAGD_TASK=, DAGD_PROJECT=, DAGD_SANDBOX= given */
void log_task(int priority, int64_t task_id, const char *sandbox_id, const char *fmt, ...) _printf_(4, 5);
enum log_target { LOG_TARGET_AUTO, LOG_TARGET_JOURNAL, LOG_TARGET_STDERR };
int log_set_target(const char *name);  /* "auto", "journal", "stderr" */

/* The last error's message, for the reply.  Library-like code sets it and
 * returns a negative errno; the command layer turns both into a reply. */
int errorf(int r, const char *fmt, ...) _printf_(2, 3);
const char *last_error(void);

/* --- logs.c: an attempt's output on disk, for task.logs and its followers -- */

json_object *log_lines(int fd, off_t from, off_t to, bool hold_partial, size_t piece, off_t *ret_end,
		       bool *ret_partial);
char *log_path(int64_t task_id, unsigned attempt, bool validation);

/* --- notify.c ------------------------------------------------------------ */

int notify_setup(uint64_t exit_idle_usec);
void notify_ready(void);
void notify_turn(void);                 /* the end of each turn (server_flush) */
void notify_stopping(const char *why);

/* --- json-util.c --------------------------------------------------------- */

/* Each returns 0 and writes ret on success, -ENOENT if absent (ret untouched),
 * or errorf(-EINVAL) if of the wrong type. */
int arg_string(json_object *args, const char *key, const char **ret);
int arg_bool(json_object *args, const char *key, bool *ret);
int arg_int(json_object *args, const char *key, int64_t min, int64_t max, int64_t *ret);
int arg_page(json_object *args, char prefix, int64_t *ret_after, size_t *ret_limit);
int arg_seconds(json_object *args, const char *key, uint64_t *ret_usec);
int arg_object(json_object *args, const char *key, json_object **ret);
int arg_array(json_object *args, const char *key, json_object **ret);
int arg_required(int r, const char *key);
/* errorf(-EINVAL) naming a key of o not in known (and the closest one that
 * is); what says whose arguments they are ("task.add", "tasks[2] ('b')"). */
int args_check(json_object *o, const char *const *known, const char *what);
json_object *json_time(int64_t usec);
json_object *json_parse(const char *text);
const char *json_text(json_object *o);
char *json_line(json_object *o);        /* its text and a newline, to free */

/* --- json-strict.c --------------------------------------------------------- */

#define JSON_DEPTH 64
/* RFC 8259 JSON only; a mistake is errorf(-EINVAL) saying where and what. */
int json_parse_strict(const char *text, size_t len, json_object **ret);
/* Where a value is in a text. */
struct json_span {
	size_t off, len;
};
/* json_parse_strict() of a request, but the array at args.key, if the line
 * has one, left as text: the tree has it empty, and *ret_spans (the
 * caller frees it) says where each of its elements is, to be parsed
 * (json_parse_strict()) when asked for; NULL and 0 if there is none. */
int json_parse_strict_lazy(const char *text, size_t len, const char *key, json_object **ret,
			   struct json_span **ret_spans, size_t *ret_n);
bool utf8_valid(const char *s, size_t n);
char *utf8_sanitize(const char *s, size_t n, size_t *ret_len);   /* U+FFFD for what is not */
char *utf8_valid_line(char *s);         /* s, or (freeing s) s made valid */
void utf8_trim(char *s);                /* cut a sequence left incomplete at the end */
int utf8_prefix(const char *s, size_t max);     /* bytes of s up to max, whole characters */
size_t utf8_complete(const char *s, size_t n);  /* n, less a last character cut short */

/* --- store.c ------------------------------------------------------------- */

int store_open(const char *path);
void store_close(void);
int store_wipe(void);
int store_begin(void);          /* lazily, on the first write of a batch */
int store_commit(void);
void store_rollback(void);
bool store_in_transaction(void);
uint64_t store_writes(void);            /* writes ever begun: has a request written? */
int store_project_save(const struct project *p, bool insert);
int store_project_delete(int64_t id);
int store_task_insert(const struct task *t);
int store_tasks_insert(struct task *const *list, size_t n);     /* a batch's, in order */
int store_task_save(const struct task *t);
int store_task_def_read(int64_t id, struct task_def *d);   /* store-load.c */
int store_read_begin(void);
uint64_t store_reads(void);
int store_task_defs_scan(int64_t lo, int64_t hi, struct task_def *(*want)(int64_t id));
void store_task_def_close(void);
int store_task_define(const struct task *t);
int store_task_delete(int64_t id);
int store_task_trigger(const struct task *t);
int store_dep_insert(int64_t task, int64_t on);
int store_dep_delete(int64_t task, int64_t on);
int store_event_append(const char *type, const char *entity, const char *entity_id,
		       int64_t project_id, const char *payload, int64_t *ret_seq);
int64_t store_last_seq(void);
int64_t store_next_id(const char *table);
int store_attempts_save(const struct task *t);  /* store-attempts.c */
int store_pool_save(const struct pool *p);
int store_pool_delete(const char *name);
void store_attempts_close(void);
typedef int (*event_cb)(int64_t seq, const char *line, void *userdata);
int store_events_read(int64_t after, int64_t upto, int64_t project_id, json_object *types,
		      size_t max, event_cb cb, void *userdata, int64_t *ret_last);

/* store-load.c, store-attempts.c, store-map.c: the load at start-up.  The
 * store reads its rows and hands each to the engine's loader (engine-load.c),
 * which builds the model; the store never sees the engine's arrays.  Strings
 * are the row's, valid during the call only; NULL where the column is. */
struct project_row {
	int64_t id;
	const char *name;
	bool autonomous;
	unsigned max_concurrency;
	const char *executor;
	const char *executor_options;
	int64_t created_at, updated_at;
};
struct task_row {
	int64_t id, project_id;
	const char *name, *executor;
	int priority;
	uint64_t timeout_usec;
	unsigned max_retries;
	uint64_t backoff_usec;
	const char *validation_command;
	const char *status;
	bool released;
	unsigned attempt, tries;
	int64_t not_before;
	const char *sandbox_id, *sandbox_executor, *sandbox_handle;
	int64_t created_at, updated_at, started_at, finished_at, status_changed_at;
	bool held, paused;
	unsigned reserved;
};
struct pool_row {
	const char *name;
	unsigned size;
	int64_t created_at, updated_at;
};
struct pool_weight {
	const char *name;
	unsigned weight;
};
struct attempts_row {                   /* a task's task_attempts row */
	int64_t task_id;
	bool approval;
	int exit_rule;                  /* EXIT_RULE_* */
	uint64_t exit_codes[4];
	unsigned max_lost_retries;
	uint64_t max_retry_duration_usec;
	const struct pool_weight *pools;
	size_t n_pools;
	bool approve_on_timeout;
	unsigned lost_tries;
	int64_t first_started_at;
	int64_t approval_deadline;
};
struct map_row {
	int64_t task_id;
	int64_t map_over;
	unsigned map_concurrency;
	bool expanded;
	unsigned map_count;
	int64_t map_parent;
	unsigned map_index;
};
/* Each returns 0, or a negative errno (with errorf()) that ends the load. */
struct store_loader {
	int (*project)(const struct project_row *r);
	int (*task)(const struct task_row *r);
	int (*pool)(const struct pool_row *r);
	int (*attempts)(const struct attempts_row *r);
	int (*trigger)(int64_t task_id, const char *rule, bool finally);
	int (*dep)(int64_t task_id, int64_t depends_on);
	int (*map)(const struct map_row *r);
};
int store_load(const struct store_loader *l);

/* --- engine.c ------------------------------------------------------------ */

extern struct project **projects;      /* indexed by id; NULL holes */
extern size_t n_projects;
extern struct task **tasks;            /* indexed by id; NULL holes */
extern size_t n_tasks;
extern struct idset members[_ST_MAX];  /* every task's id, by status */

const char *status_to_string(enum status s);
enum status status_from_string(const char *s);
const char *priority_to_string(enum priority p);
enum priority priority_from_string(const char *s);
bool status_is_active(enum status s);
bool status_is_finished(enum status s);
bool status_is_failure(enum status s);

struct project *project_find(const char *name_or_id);
struct task *task_find(const char *id);
char *task_id_string(int64_t id, char buf[static 24]);
json_object *project_to_json(const struct project *p);
json_object *task_to_json(const struct task *t);
struct jw;
void task_write_json(struct jw *w, const struct task *t);
void task_write_summary(struct jw *w, const struct task *t);  /* TASK_CREATED's */
void task_created_event(const struct task *t);

int project_create(json_object *args, struct project **ret);
int project_update(struct project *p, json_object *args);
int project_set_autonomous(struct project *p, bool on);
int project_delete(struct project *p);
int project_start(struct project *p, json_object **ret_released, json_object **ret_held);
int task_create_batch(struct project *p, json_object *list, bool batch, struct task ***ret_made);
/* A batch's tasks: a json-c array, or the text of each (a long line's,
 * json_parse_strict_lazy()), parsed when asked for. */
struct batch_src {
	json_object *list;
	const char *text;
	const struct json_span *spans;
	size_t n;
};
int batch_get(const struct batch_src *src, size_t i, json_object **ret);     /* a reference, to put */
size_t batch_size(const struct batch_src *src);
/* task_create_batch() in two steps: the batch checked, for p or (p NULL)
 * for a project still to be made that will have this executor, each task
 * also against known (NULL: checked already); then made in p. */
struct batch;
int batch_check(struct project *p, const char *executor, const struct batch_src *src, bool batch,
		const char *const *known, struct batch **ret);
int batch_create(struct batch *b, struct project *p, struct task ***ret_made);
void batch_free(struct batch *b);
int task_check_cwd(json_object *args, const char *executor);
int task_check_options(const struct project *p, json_object *args);
int task_depend(struct task *t, json_object *on, bool add);
int task_start(struct task *t);
int task_cancel(struct task *t);
int task_pause(struct task *t, bool paused);
int task_retry(struct task *t);
void task_stop_sandbox(struct task *t);
int task_report(struct task *t, bool success, json_object *result, const char *error_message,
		json_object **ret_reply);
json_object *tasks_unblocked(struct project *p, size_t limit);

/* engine.c, for the engine's other rooms */
extern int64_t next_project_id, next_task_id;
extern unsigned active_total;          /* tasks holding a slot, in all projects */
extern struct sandbox *sandboxes;      /* the live ones */
extern struct task **spawn_queue;      /* claimed, to be started once committed */
extern size_t n_spawn, spawn_cap;
extern bool dispatch_dirty;            /* something may be dispatchable */
void set_status(struct task *t, enum status s);    /* with its event */
/* A task counted, and listed by status, in its project and the daemon. */
void tasks_reserve(size_t n);            /* room in tasks[] for n new ids */
void add_edge(struct task *t, struct task *on, bool store);  /* engine-add.c; store: its row too */
bool task_depends_on(const struct task *t, const struct task *on);
void member_add(struct task *t);
void member_del(struct task *t);
/* The task with the smallest id above after whose status want[] marks, of p
 * (or of every project); NULL if none.  Costs a search per status wanted. */
struct task *task_next(const struct project *p, const bool want[static _ST_MAX], int64_t after);
/* The same for one status. */
struct task *task_next_in(const struct project *p, enum status s, int64_t after);
void task_save(struct task *t);         /* its state to write this turn; its heap place follows */
void task_unsave(struct task *t);       /* it is gone: nothing to write */
void engine_save(void);                 /* the rows of the turn's changed tasks, before the commit */
/* engine-def.c: a task's definition, read when asked for */
struct task_def *task_def(const struct task *t);
struct task_def *task_def_new(struct task *t);   /* a new task's, empty */
void task_def_drop(struct task *t);
void engine_defs_release(void);         /* after a commit: those no sandbox needs */
void task_defs_prefetch(struct task **list, size_t n);  /* a page's, in one read */
void task_reorder(struct task *t);      /* its priority changed */
void heap_sync(struct task *t);
bool has_failed_dep(const struct task *t);
void propagate_failure(struct task *t);
void propagate_recovery(struct task *t);
void remove_edge(struct task *t, struct task *on);
void task_unlink(struct task *t);       /* out of the graph, the store and memory */
json_object *task_payload(const struct task *t);
void task_event(const struct task *t, const char *type, json_object *payload);
struct jw;
struct jw *payload_open(const struct task *t);  /* a payload written as text: "{task_id, project_id" */
void payload_emit(const char *type, const char *entity, const char *entity_id, int64_t project_id);
void task_payload_emit(const struct task *t, const char *type);
json_object *ids_to_json(struct task **list, size_t n);
void clear_str(char **p);
void set_str(char **p, const char *s);
int check_task_args(const struct project *p, json_object *args, bool need_name);

/* The engine's rooms, for each other.  The engine is split by job: engine.c
 * (the model, set_status, events, the dispatch heap), engine-project.c,
 * engine-add.c (a task's arguments, edges), engine-batch.c (adding tasks),
 * engine-dispatch.c (limits, claims, starting sandboxes), engine-sandbox.c (reports and exit judging), engine-task.c (a
 * task's JSON), engine-lifecycle.c, engine-attempts.c, engine-pools.c,
 * engine-approval.c, engine-trigger.c, engine-map.c, engine-inputs.c and
 * engine-load.c (the model built from the store's rows).  They call down to
 * the store and the plugins only; the server's flush reads what they leave
 * for it (engine_changed(), engine_take_ended()). */
/* engine.c */
int64_t parse_id(const char *s, char prefix);
struct executor *task_executor(const struct task *t);
int task_cmp(const struct task *a, const struct task *b);
void heap_fix(struct project *p, size_t i);
void heap_remove(struct task *t);
void count_active(struct task *t, int delta);
void arm_backoff(struct task *t);
json_object *task_succeeded(struct task *t, const char *sandbox_id);
void task_failed(struct task *t, const char *message);
/* engine-project.c */
bool valid_name(const char *s, size_t max);
int check_executor(const char *name);
int check_options(const char *executor, const char *base, json_object *over);
void task_free(struct task *t);
void project_free(struct project *p);
/* engine-task.c */
void sandbox_cancel(struct sandbox *sb);
/* engine-dispatch.c */
struct sandbox *sandbox_new(struct task *t, struct executor *ex);
void sandbox_unlink(struct sandbox *sb);
void sandbox_free(struct sandbox *sb);
void sandbox_launch(struct task *t, struct sandbox *sb, bool adopt);
/* engine-sandbox.c */
struct task *sandbox_task(const struct sandbox *sb);
void sandbox_rejudge(void);
int on_timeout(sd_event_source *s, uint64_t usec, void *userdata);     /* engine-sandbox.c */

/* engine-attempts.c: retries that know why, and the task_attempts row */
struct fail_how {
	int exit_code;                  /* -1: none (a signal, a timeout, a report) */
	bool lost;                      /* the executor lost the sandbox (reason lost or error) */
};
void task_failed_how(struct task *t, const char *message, const struct fail_how *how); /* engine.c */
bool retry_decide(struct task *t, const struct fail_how *how, const char **ret_rule);
int attempts_check_args(json_object *args);
bool attempts_is_approval(json_object *args);   /* kind "approval" */
void attempts_from_args(struct task *t, json_object *args);
void attempts_write_json(struct jw *w, const struct task *t);
void attempts_claimed(struct task *t);
void attempts_reset(struct task *t);
int attempts_row_loaded(const struct attempts_row *r);
void attempts_loaded(struct task *t);
void attempts_status_changed(struct task *t, enum status old);
bool attempts_row_wanted(const struct task *t);
/* engine-pools.c */
extern struct pool *pools;
struct pool *pool_find(const char *name);
int pools_check_args(json_object *args);
void pools_count(struct task *t, int delta);
bool pools_fit(const struct task *t);
void pools_reserve(const struct task *t);
void pools_round(void);                 /* a dispatch round begins */
int pool_set(const char *name, int64_t size, json_object **ret);
int pool_delete(const char *name);
json_object *pools_to_json(void);
void pools_free(void);
int pool_loaded(const struct pool_row *r);
/* engine-approval.c */
int task_approve(struct task *t, json_object *result, uid_t uid, json_object **ret_unblocked);
int task_reject(struct task *t, const char *message, uid_t uid);
void approval_enter(struct task *t);
void approval_arm(struct task *t);
/* engine-trigger.c: trigger rules, `skipped`, and `finally` tasks */
enum status task_verdict(const struct task *t);
void task_settle(struct task *t, const struct task *cause);
void task_born(struct task *t);
int trigger_check_rdeps_idle(const struct task *t);
int check_trigger_arg(json_object *args);
int trigger_check_names(const struct trigger *tr, const int *deps, size_t n_deps, const char *const *batch_names);
int task_trigger_set(struct task *t, const char *text);
int trigger_check_edit(struct task *t, json_object *v);
bool trigger_apply_edit(struct task *t, json_object *v, bool apply);
bool trigger_names(const struct task *t, const struct task *dep);
size_t finally_env(const struct task *t, char **envp);
void task_trigger_write_json(struct jw *w, const struct task *t);

/* engine-lifecycle.c: what an operator does to a task beyond running it */
int task_hold(struct task *t, bool hold);
int task_edit(struct task *t, json_object *args, bool dry_run, json_object **ret_changed);
int task_remove(struct task *t);
int project_clean(struct project *p, bool failed, json_object **ret_removed, json_object **ret_kept);
int task_rerun(struct task *t, bool downstream, bool dry_run, json_object **ret_ids);

int engine_load(void);
void engine_free(void);
void engine_reset(void);
void engine_dispatch(void);
bool engine_spawn_pending(void);
void engine_reservations_committed(void);
void engine_reservations_forget(struct task *t);
void reserve_found(struct task *t, const char *executor);
void engine_counts(unsigned counts[static _ST_MAX], unsigned *ret_active);
bool engine_idle(void);
int engine_adopt_all(void);
void engine_readopt(void);
void engine_committed(void);
/* What the end of a turn looks at (server.c): the engine never calls up. */
struct log_end {
	int64_t task_id;
	unsigned attempt;
	bool validation;
};
bool engine_changed(bool dispatching);
struct log_end *engine_take_ended(size_t *ret_n);
bool engine_exits_pending(void);
extern bool status_changed_since_commit;

void sandbox_started(struct sandbox *sb, const char *handle);
void sandbox_output(struct sandbox *sb, const void *data, size_t size);
void sandbox_exited(struct sandbox *sb, const struct dagd_exit *e);
struct sandbox *sandbox_list(void);

/* --- plugin.c ------------------------------------------------------------ */

struct executor {
	char *name;
	char *path;                     /* the file, what messages name */
	int fd;                         /* its private copy (plugin-copy.c), what is loaded */
	void *dl;
	struct dagd_host host;          /* what init() was given */
	const struct dagd_executor *vt;
	void *state;
	char *error;                    /* why it is not loaded */
	unsigned limit;                 /* 0: none */
	unsigned active;
	bool list_failed;               /* it can list its sandboxes, but could not */
	struct executor *next;
};

extern struct executor *executors;

int plugins_load(const char *dir);
void plugins_unload(void);
int plugins_reload(void);
struct executor *executor_find(const char *name);
/* What an executor's list() reported: one sandbox it still has. */
struct listed {
	struct executor *ex;
	char *sandbox_id;
	char *handle;
	bool owned;
	struct listed *next;
};
int executor_list(struct executor *ex, struct listed **ret);
bool executor_can_list(const struct executor *ex);
void listed_free(struct listed *l);
void executor_forget(struct executor *ex, const char *sandbox_id, const char *handle);
int executor_check_options(struct executor *ex, const char *options_json, char **ret_error);
int executor_pause(struct executor *ex, struct dagd_sandbox *sb, void *data, bool paused);
const char *executor_status(struct executor *ex);
bool executor_full(const struct executor *ex);

/* --- plugin-copy.c ------------------------------------------------------- */

/* A sealed private copy of the plugin file at path, checked to be a whole
 * ELF shared object: its fd, to be loaded by the name plugin_copy_name()
 * gives it.  errorf() naming path on failure. */
int plugin_copy(const char *path, int *ret_fd);
void plugin_copy_name(int fd, char *buf, size_t size);

/* --- server.c, server-follow.c, server-socket.c --------------------------- */

#define OUT_HIGH (1024 * 1024)          /* stop reading a client above this */
#define OUT_FEED (256 * 1024)           /* feed followers below this */
#define OUT_MAX (64 * 1024 * 1024)      /* drop a client above this */

struct pend {
	char *id;                       /* JSON text */
	char *line;
	bool durable;                   /* says what the batch changed: only once committed */
};

struct sub;
struct logsub;

struct client {
	int fd;
	sd_event_source *io;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	bool operator;
	bool closing;                   /* close once the output is out */
	bool paused;                    /* read this turn already: wait for the flush */
	bool eof;                       /* it will send no more */
	char *in;
	size_t in_len, in_cap;
	char *out;
	size_t out_len, out_off, out_cap;
	struct pend *pend;
	size_t n_pend, pend_bytes;
	struct sub *subs;               /* server-follow.c's */
	struct logsub *logsubs;
	struct client *next;
};

extern struct client *clients;

int server_listen(void);
void server_close(void);
void server_kick(void);                 /* run the end-of-turn flush (the server's own, and main's) */
void server_flush(void);
struct client *server_client_new(int fd);
unsigned server_clients(void);
int64_t server_committed_seq(void);
void server_status(json_object *o);     /* add the server's part of daemon.status */
/* durable: the reply says what this turn wrote, so goes out only once committed */
void server_reply(struct client *c, json_object *id, json_object *reply, bool durable);
void client_out(struct client *c, const char *s, size_t n);
size_t client_unsent(const struct client *c);

int server_subscribe(struct client *c, json_object *id, int64_t since, int64_t project_id,
		     json_object *types);
int server_follow_log(struct client *c, json_object *id, int64_t task_id, unsigned attempt,
		      bool validation, int fd, off_t offset);
void follow_ended(void);                /* the logs the engine says ended */
bool follow_behind(const struct client *c);
void follow_feed(struct client *c);
void follow_free(struct client *c);
int server_socket_open(void);
int server_accept_start(int fd);
void server_accept_stop(void);
void server_accept_status(json_object *o);

/* --- cmd.c --------------------------------------------------------------- */

struct req {
	struct client *client;
	json_object *id;                /* borrowed */
	json_object *args;              /* borrowed; an empty object if none */
	bool operator;
	uint64_t writes;                /* store_writes() when it came */
	/* a long line's args.tasks, left as text (json_parse_strict_lazy()):
	 * in args an empty array, here where each task is */
	const char *tasks_text;
	const struct json_span *tasks;
	size_t n_tasks;
};

struct cmd_entry {
	const char *name;
	int (*exec)(struct req *r);
	unsigned flags;
	const char *const *args;        /* the arguments it takes, NULL-terminated */
};
#define CMD_ANYONE 1u                   /* not only operators */

void cmd_line(struct client *c, bool operator, const char *line, size_t len);
int reply_ok(struct req *r, json_object *result);
int reply_error(struct req *r, const char *code, const char *fmt, ...) _printf_(3, 4);
int reply_errno(struct req *r, int err);
int req_project(struct req *r, const char *key, struct project **ret);
int req_task(struct req *r, struct task **ret);
extern const char *const task_add_args[], *const project_create_args[];

/* cmd-*.c */
extern const struct cmd_entry cmd_project_create_entry, cmd_project_list_entry,
	cmd_project_get_entry, cmd_project_update_entry, cmd_project_delete_entry,
	cmd_project_set_autonomous_entry, cmd_project_start_entry;
extern const struct cmd_entry cmd_task_add_entry, cmd_task_add_batch_entry, cmd_task_get_entry,
	cmd_task_list_entry, cmd_task_depend_entry, cmd_task_undepend_entry, cmd_task_start_entry,
	cmd_task_cancel_entry, cmd_task_retry_entry, cmd_task_unblocked_entry,
	cmd_task_logs_entry;
extern const struct cmd_entry cmd_task_complete_entry;
extern const struct cmd_entry cmd_task_pause_entry, cmd_task_resume_entry;
extern const struct cmd_entry cmd_task_hold_entry, cmd_task_release_entry, cmd_task_edit_entry,
	cmd_task_remove_entry, cmd_project_clean_entry;
extern const struct cmd_entry cmd_events_subscribe_entry;
extern const struct cmd_entry cmd_task_approve_entry, cmd_task_reject_entry, cmd_pool_set_entry,
	cmd_pool_list_entry, cmd_pool_delete_entry;
extern const struct cmd_entry cmd_executor_list_entry, cmd_executor_reload_entry,
	cmd_daemon_status_entry;

/* --- engine-map.c, engine-inputs.c, store-map.c: outputs and fan-out ------ */

int map_check_args(json_object *args);
int map_find_dep(const char *map_over, const char *const *given, size_t n, const char *const *names,
		 const int64_t *ids, size_t *ret_idx);
void map_created(struct task *t);
bool map_dep_completed(struct task *d);
bool map_launch(struct task *t);
bool map_child_failed(struct task *d, struct task *child);
void map_count_active(struct task *t, int delta);
bool map_full(const struct task *t);
void map_write_json(struct jw *w, const struct task *t);
void task_fail_final(struct task *t, const char *reason, const char *message);
/* The attempt's inputs file, argv and env with their templates put in:
 * errorf() on a template that names what is not there. */
int inputs_prepare(struct task *t, struct sandbox *sb, bool write, char **ret_path);
int inputs_render(const struct task *t, const char *s, bool shell, char **ret);
int store_task_map(const struct task *t);
int map_loaded(const struct map_row *r);

/* --- events (engine.c) ----------------------------------------------------- */

void event_emit(const char *type, const char *entity, const char *entity_id, int64_t project_id,
		json_object *payload);

#endif
