/*
 * dagd.h - the daemon's internal header: its conventions, the model, and
 * the small rooms; the layers have headers of their own, included at the
 * end (store.h, engine.h, host.h, server.h, cmd.h).
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
	struct idset tasks;             /* the ids of the tasks that name it */
	struct pool *next;
};

struct pool_use {
	struct pool *pool;
	unsigned weight;
};

/* A project's dispatchable tasks of one priority and one count of
 * dependents, by id (engine-queue.c). */
struct queue {
	enum priority priority;
	uint32_t n_rdeps;
	int64_t first;                  /* the smallest of ids: the best, read at each dispatch */
	struct idset ids;
};

/* A project's named tasks, by name (names.c): their ids. */
struct name_index {
	uint32_t *slots;
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

	/* dispatchable tasks, a queue by key, the best key first (engine-queue.c) */
	struct queue *queues;
	size_t n_queues, queues_cap;
	struct name_index names;
};

struct sandbox {                        /* one allocation with id, executor and log_path after it */
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

/* When things happened to a task: usec since the epoch, 0 not yet
 * (task_time(), task_set_time()). */
enum task_at { AT_CREATED, AT_UPDATED, AT_STARTED, AT_FINISHED, AT_STATUS_CHANGED, _AT_MAX };

/* Times of a task, those in set (1 << AT_*) given. */
struct task_times {
	int64_t at[_AT_MAX];
	unsigned set;
};

/* What a task is, as against where it stands: its definition (its name
 * too) and its outcome (its last sandbox, its times), read from the
 * database when asked for (task_def()) and let go at the end of the turn
 * unless a sandbox of the task is live; the scheduler needs none of it.  A
 * million tasks waiting cost their state, not their commands or names. */
struct task_def {
	char *name;                     /* NULL: none (task_name()) */
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
	char *sandbox_id;               /* its last attempt's */
	char *sandbox_executor;
	char *sandbox_handle;
	int64_t at[_AT_MAX];            /* AT_*: read task_time() */
	/* its TASK_DEF_BLOCK strings, as read from the database: in this one
	 * allocation, not one each; NULL when each is its own (task_def_own(),
	 * before one of them is replaced) */
	char *block;
	bool lost;                      /* could not be read: never written back */
};

/* The strings of a definition that a read puts in its block, in order. */
#define TASK_DEF_BLOCK(d) { &(d)->name, &(d)->title, &(d)->command, &(d)->env, &(d)->cwd, \
	&(d)->executor_options, &(d)->item }

/* What few tasks set, out of struct task: options other than the defaults,
 * the retry rules, pools, approval, fan-out, and the timers of a backoff and
 * of an approval.  NULL for a task that sets none of it; ext_of() reads the
 * defaults then (task_ext_default), task_ext() makes it on the first write
 * (engine-mem.c).  A million tasks with no options cost no extension. */
struct task_ext {
	char *executor;                 /* NULL: the project's */
	char *validation_command;
	struct trigger *trigger;        /* NULL: all_succeeded (trigger.h) */
	uint64_t timeout_usec;          /* 0: none */
	int64_t not_before;             /* usec: its backoff's end; 0 none */
	uint64_t backoff_usec;          /* 1 s unless set */
	unsigned max_retries;
	sd_event_source *backoff;

	/* retries that know why, pools, approval (engine-attempts.c,
	 * engine-pools.c, engine-approval.c; stored in task_attempts) */
	uint64_t exit_codes[4];         /* retry_on_exit or no_retry_on_exit: a bitmap of 0..255 */
	int8_t exit_rule;               /* EXIT_RULE_* */
	bool approve_on_timeout;
	unsigned max_lost_retries;      /* 3 unless set */
	unsigned lost_tries;            /* lost sandboxes retried since the last task.retry */
	uint64_t max_retry_duration_usec;       /* 0: none */
	int64_t first_started_at;       /* usec: the first attempt since the last task.retry */
	struct pool_use *pools;
	size_t n_pools;
	int64_t approval_deadline;      /* usec; 0: none */
	sd_event_source *approval_timer;
	/* fan-out (engine-map.c) */
	int64_t map_over;               /* the dependency whose result it maps over; 0: none */
	int64_t map_parent;             /* a child: the mapped task; 0: none */
	unsigned map_concurrency;       /* its children at most this many at a time; 0: no limit */
	unsigned map_count;
	unsigned map_active;            /* its children holding a slot */
	unsigned map_index;             /* a child: its item's index */
	bool expanded;                  /* its children exist (map_count of them) */
};

/* A task as the scheduler holds it: what every task needs, and no more
 * (its definition and outcome, and what few set, are held aside: struct
 * aside). */
#define TASK_ID_MAX UINT32_MAX
#define TRIES_MAX 4095                  /* tries stops there: max_retries is at most 1,000 */

/* 32 bytes: a million tasks are 31 MiB of them. */
struct task {
	uint32_t id;                    /* 1 .. TASK_ID_MAX */
	uint32_t unmet;                 /* deps not completed */
	struct project *project;
	uint32_t edges;                 /* its place in edge_sets + 1; 0: none (task_deps(), task_rdeps()) */
	uint32_t name_hash;             /* of its name (names_hash()), in its definition; 0: none */
	unsigned attempt;               /* sandboxes started, ever */
	enum status status : 5;
	enum priority priority : 4;
	bool finally : 1;               /* runs once the rest of its batch finished */
	bool approval : 1;              /* kind "approval": an operator decides, no sandbox */
	bool released : 1;
	bool paused : 1;                /* its sandbox's processes stopped (task.pause) */
	bool held : 1;                  /* by an operator: never dispatched */
	bool reserved : 1;              /* ready: its next attempt (attempt + 1) is reserved */
	bool reserve_ready : 1;         /* that reservation is committed (engine-dispatch.c) */
	bool aside : 1;                 /* it holds something aside (aside_of()) */
	bool has_ext : 1;               /* among it an extension (ext_of()) */
	bool queued : 1;                /* in its project's queue of its key (engine-queue.c) */
	bool stated : 1;                /* it has its row of task_state (store-state.c) */
	unsigned tries : 12;            /* attempts since the last task.retry, up to TRIES_MAX */
};
_Static_assert(sizeof(struct task) == 32, "a task is 32 bytes");
_Static_assert(_ST_MAX <= 16 && _PRIO_MAX <= 8, "a status and a priority fit their bits");

/* A task's edges: what it depends on, then what depends on it, in one
 * block (engine-add.c: add_edge(), remove_edge()), found by the task's
 * place in edge_sets: most tasks of a big store have none, and pay 4
 * bytes for it, not a pointer's 8. */
struct edges {
	uint32_t n_deps, n_rdeps, cap;
	struct task *e[];
};
extern struct edges **edge_sets;

static inline struct edges *task_edges(const struct task *t)
{
	return t->edges ? edge_sets[t->edges - 1] : NULL;
}

static inline uint32_t task_n_deps(const struct task *t)
{
	return t->edges ? task_edges(t)->n_deps : 0;
}

static inline uint32_t task_n_rdeps(const struct task *t)
{
	return t->edges ? task_edges(t)->n_rdeps : 0;
}

/* What it depends on: task_n_deps() of them. */
static inline struct task **task_deps(const struct task *t)
{
	return t->edges ? task_edges(t)->e : NULL;
}

/* What depends on it: task_n_rdeps() of them. */
static inline struct task **task_rdeps(const struct task *t)
{
	struct edges *e = task_edges(t);

	return e ? e->e + e->n_deps : NULL;
}

/* What a task holds aside from its state, for the few that hold any
 * (engine-mem.c): what few set, its definition while in memory, its live
 * sandbox, its places in the lists of those and of the rows to write. */
struct aside {
	const struct task *task;
	struct task_ext *ext;           /* NULL: the defaults (ext_of()) */
	struct task_def *def;           /* NULL: in the database (task_def()) */
	struct sandbox *sb;             /* the live sandbox of its current attempt */
	uint32_t def_pos;               /* its place among the definitions in memory + 1 */
	uint32_t dirty_pos;             /* its place in the rows to write + 1; 0: none */
};

struct aside *aside_get(const struct task *t);  /* the task's, which has one */

static inline struct aside *aside_of(const struct task *t)
{
	return t->aside ? aside_get(t) : NULL;
}

/* The live sandbox of its current attempt, or NULL. */
static inline struct sandbox *task_sb(const struct task *t)
{
	return t->aside ? aside_get(t)->sb : NULL;
}

/* Its definition if in memory, or NULL (task_def() reads it). */
static inline struct task_def *task_def_held(const struct task *t)
{
	return t->aside ? aside_get(t)->def : NULL;
}

/* The number of its reserved attempt, or 0. */
static inline unsigned task_reserved(const struct task *t)
{
	return t->reserved ? t->attempt + 1 : 0;
}

extern const struct task_ext task_ext_default;

/* The task's extension, or NULL. */
static inline struct task_ext *task_ext_held(const struct task *t)
{
	return t->has_ext ? aside_get(t)->ext : NULL;
}

/* The task's extension, or the defaults: for reading. */
static inline const struct task_ext *ext_of(const struct task *t)
{
	return t->has_ext ? aside_get(t)->ext : &task_ext_default;
}

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

/* a test's, for names that share a hash: NULL in the daemon */
extern uint32_t (*names_hash_for_test)(const char *name);
uint32_t names_hash(const char *name);
bool task_has_name(const struct task *t, const char *name);    /* a name read only if its hash is */
struct task *names_each(const struct name_index *x, uint32_t h, size_t *pos);
struct task *names_get(const struct name_index *x, const char *name);
void names_add(struct name_index *x, struct task *t);
void names_del(struct name_index *x, const struct task *t);
void names_free(struct name_index *x);

/* --- util.c -------------------------------------------------------------- */

int64_t now_usec(void);
/* what malloc holds free, back to the system: now, or soon if the last
 * time was just now (util.c) */
void memory_give_back(void);
void memory_give_back_stop(void);
char *format_time(int64_t usec, char buf[static 32]);
size_t format_id(char *buf, const char *prefix, int64_t v);    /* "t-42": its length; buf of 24 */
int random_hex(char *buf, size_t n_bytes);
int mkdir_p(const char *path, mode_t mode);
int log_open(const char *path, int flags);
void crash_point(const char *point);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
void *xrealloc(void *p, size_t n);
void buf_reserve(char **p, size_t *cap, size_t len, size_t want);
void *buf_free(char *p, size_t *cap);
bool buf_mapped(size_t cap);
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
#define LOG_PATH_MAX() (strlen(D.state_dir) + 80)     /* what log_path_put() writes at most */
void log_path_put(char *p, int64_t task_id, unsigned attempt, bool validation);

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

/* --- json-strict.c --------------------------------------------------------- */

#define JSON_DEPTH 64
/* RFC 8259 JSON only; a mistake is errorf(-EINVAL) saying where and what. */
int json_parse_strict(const char *text, size_t len, json_object **ret);
/* json-c's tree of a checked text, if plain enough to be made directly (json-build.c) */
bool json_build_plain(const char *text, size_t len, json_object **ret);
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
/* s (*len bytes), or (freeing s) s made valid, *len its length then */
char *utf8_valid_line(char *s, size_t *len);
void utf8_trim(char *s);                /* cut a sequence left incomplete at the end */
int utf8_prefix(const char *s, size_t max);     /* bytes of s up to max, whole characters */
size_t utf8_complete(const char *s, size_t n);  /* n, less a last character cut short */

/* the rooms, each its own header: */
#include "store.h"
#include "engine.h"
#include "host.h"
#include "server.h"
#include "cmd.h"

#endif
