/*
 * engine.h - the engine (engine*.c): the graph, dispatch, attempts, sandboxes, events.
 * Included by dagd.h, after the model: include dagd.h.
 */
#ifndef DAGD_ENGINE_H
#define DAGD_ENGINE_H

/* --- engine.c ------------------------------------------------------------ */

extern struct project **projects;      /* indexed by id; NULL holes */
extern size_t n_projects;
extern size_t n_tasks;                 /* ids below it may be a task's (task_at()) */

/* Tasks sit at a place given by their id, in pages of TASK_PAGE
 * (engine-mem.c): a page's bitmap says which places are taken. */
#define TASK_PAGE_SHIFT 10
#define TASK_PAGE (1U << TASK_PAGE_SHIFT)
struct task_page {
	uint32_t used;
	uint64_t taken[TASK_PAGE / 64];
	struct task t[TASK_PAGE];
};
extern struct task_page **task_pages;  /* n_tasks / TASK_PAGE of them; NULL: none taken */

/* The task of that id, or NULL: none, gone, or of a batch not yet made
 * (it has no project until then). */
static inline struct task *task_at(int64_t id)
{
	struct task_page *pg;
	struct task *t;

	if (id <= 0 || (uint64_t) id >= n_tasks)
		return NULL;
	pg = task_pages[id >> TASK_PAGE_SHIFT];
	if (!pg || !((pg->taken[(id & (TASK_PAGE - 1)) >> 6] >> (id & 63)) & 1))
		return NULL;
	t = &pg->t[id & (TASK_PAGE - 1)];
	return t->project ? t : NULL;
}
extern struct idset members[_ST_MAX];  /* every task's id, by status */
extern struct idset in_backoff;        /* the tasks whose backoff timer is armed */

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
		char **ret_reply);      /* the reply's result: JSON text, to free */
/* where a page of task.unblocked ended: the key of its last task */
struct unblocked_cursor {
	enum priority priority;
	uint32_t n_rdeps, id;
};
json_object *tasks_unblocked(struct project *p, size_t limit, const struct unblocked_cursor *after,
			     struct unblocked_cursor *ret_next, bool *ret_more);

/* engine.c, for the engine's other rooms */
extern int64_t next_project_id, next_task_id;
extern unsigned active_total;          /* tasks holding a slot, in all projects */
extern struct sandbox *sandboxes;      /* the live ones */
extern struct task **spawn_queue;      /* claimed, to be started once committed */
extern size_t n_spawn, spawn_cap;
extern bool dispatch_dirty;            /* something may be dispatchable */
void set_status(struct task *t, enum status s);    /* with its event */
/* The largest task id: a project's name index holds ids in 32 bits (names.c). */
#define TASK_ID_MAX UINT32_MAX
/* A task counted, and listed by status, in its project and the daemon. */
int tasks_reserve(size_t n);             /* room in tasks[] for n new ids */
void add_edge(struct task *t, struct task *on, bool store);  /* engine-add.c; store: its row too */
void edge_link(struct task *t, struct task *on);               /* in memory alone */
uint32_t edges_place(struct edges *e);
void edges_free(struct task *t);
void edge_sets_free(void);
bool task_depends_on(const struct task *t, const struct task *on);
void member_add(struct task *t);
void member_del(struct task *t);
/* The task with the smallest id above after whose status want[] marks, of p
 * (or of every project); NULL if none.  Costs a search per status wanted. */
struct task *task_next(const struct project *p, const bool want[static _ST_MAX], int64_t after);
/* The same for one status. */
struct task *task_next_in(const struct project *p, enum status s, int64_t after);
/* engine-def.c: a task's definition, read when asked for, and its row written once a turn */
void task_save(struct task *t);         /* its state to write this turn; its queue place follows */
void task_unsave(struct task *t);       /* it is gone: nothing to write */
void engine_save(void);                 /* the rows of the turn's changed tasks, before the commit */
void task_set_time(struct task *t, enum task_at which, int64_t usec);   /* written with its row */
int64_t task_time(const struct task *t, enum task_at which);
struct task_def *task_def(const struct task *t);
const char *task_name(const struct task *t);    /* or NULL; valid until its definition is let go */
struct task_def *task_def_new(struct task *t);   /* a new task's, empty */
void task_def_drop(struct task *t);
void task_def_own(struct task_def *d);     /* before one of its definition's strings is replaced */
size_t engine_defs_held(void);           /* definitions in memory */
void engine_defs_release(void);         /* after a commit: those no sandbox needs */
void task_defs_prefetch(struct task **list, size_t n);  /* a page's, in one read */
bool has_failed_dep(const struct task *t);
void propagate_failure(struct task *t);
void propagate_recovery(struct task *t);
void remove_edge(struct task *t, struct task *on);
void task_unlink(struct task *t);       /* out of the graph, the store and memory */
json_object *task_payload(const struct task *t);
void task_event(const struct task *t, const char *type, json_object *payload);
/* the events a task makes by the thousand, as compact records (event-record.c) */
void event_status_changed(const struct task *t, enum status old, int64_t now);
void event_spawned(const struct task *t, const struct sandbox *sb);
void event_exited(const struct task *t, const struct sandbox *sb, int code, int signal, const char *reason);
void event_completed(const struct task *t);
void event_unblocked(const struct task *t, struct task *const *unblocked, size_t n, const char *sandbox_id);
json_object *ids_to_json(struct task **list, size_t n);
void clear_str(char **p);
void set_str(char **p, const char *s);
bool task_args_plain(json_object *args);
int check_task_args(const struct project *p, json_object *args, bool need_name);

/* The engine's rooms, for each other.  The engine is split by job: engine.c
 * (the model, set_status, events), engine-project.c, engine-add.c (a
 * task's arguments, edges), engine-batch.c (adding tasks), engine-queue.c
 * (each project's dispatchable tasks, best first), engine-dispatch.c
 * (limits, claims, starting sandboxes), engine-spec.c (what a sandbox runs:
 * argv, environment, options), engine-sandbox.c (reports and exit
 * judging), engine-task.c (a task's JSON), engine-lifecycle.c, engine-attempts.c, engine-pools.c,
 * engine-approval.c, engine-trigger.c, engine-map.c, engine-inputs.c and
 * engine-load.c (the model built from the store's rows).  They call down to
 * the store and the plugins only; the server's flush reads what they leave
 * for it (engine_changed(), engine_take_ended()). */
/* engine.c */
int64_t parse_id(const char *s, char prefix);
struct executor *task_executor(const struct task *t);
void count_active(struct task *t, int delta);
void arm_backoff(struct task *t);
void backoff_stop(struct task *t);
void task_succeeded(struct task *t, const char *sandbox_id, json_object **ret_ids);
void task_failed(struct task *t, const char *message);
/* engine-queue.c */
int task_key_cmp(const struct task *t, enum priority priority, uint32_t n_rdeps, uint32_t id);
int task_cmp(const struct task *a, const struct task *b);
void queue_sync(struct task *t);
void queue_remove(struct task *t);
void queue_rekey(struct task *t, enum priority priority, uint32_t n_rdeps);    /* the key it had */
struct task *queue_first(const struct project *p);
struct task *queue_next(const struct task *t);
struct task *queue_after(const struct project *p, enum priority priority, uint32_t n_rdeps, uint32_t id);
void queues_free(struct project *p);
/* engine-mem.c */
struct task *task_alloc(uint32_t id);   /* zeroed but its id, at its place */
void task_release(struct task *t);
void task_pages_free(void);
struct task_ext *task_ext(struct task *t);     /* for writing: made on first use */
void task_ext_free(struct task *t);
struct aside *aside_make(struct task *t);
void aside_trim(struct task *t);
size_t engine_asides_held(void);
void task_sb_set(struct task *t, struct sandbox *sb);
/* engine-project.c */
bool valid_name(const char *s, size_t max);
int check_executor(const char *name);
int check_options(const char *executor, const char *base, json_object *over);
void task_name_set(struct task *t, const char *name);  /* a copy; NULL: none */
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
void pool_use_add(struct task *t, struct pool *p, unsigned weight);
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
int trigger_check_names(const struct trigger *tr, const int64_t *deps, size_t n_deps, const char *const *batch_names);
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
int spec_build(struct task *t, struct sandbox *sb, struct dagd_spawn *spec, const char *inputs_path,
	       bool render, char ***ret_argv, char ***ret_envp, char **ret_opts);   /* engine-spec.c */
void spec_free(char **argv, char **envp, char *opts);
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
const struct log_end *engine_take_ended(size_t *ret_n);
void engine_lists_free(void);
bool engine_exits_pending(void);
extern bool status_changed_since_commit;

void sandbox_started(struct sandbox *sb, const char *handle);
void sandbox_output(struct sandbox *sb, const void *data, size_t size);
void sandbox_exited(struct sandbox *sb, const struct dagd_exit *e);
struct sandbox *sandbox_list(void);

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
