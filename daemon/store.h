/*
 * store.h - the store (store*.c): SQLite, the rows and their statements.
 * Included by dagd.h, after the model: include dagd.h.
 */
#ifndef DAGD_STORE_H
#define DAGD_STORE_H

/* --- store.c ------------------------------------------------------------- */

int store_open(const char *path);
void store_close(void);
int store_wipe(void);
int store_begin(void);          /* lazily, on the first write of a batch */
int store_commit(void);
void store_rollback(void);
bool store_in_transaction(void);
bool store_checkpoint_due(void);
void store_checkpoint(void);
uint64_t store_writes(void);            /* writes ever begun: has a request written? */
int store_project_save(const struct project *p, bool insert);
int store_project_delete(int64_t id);
int store_task_insert(const struct task *t);
int store_tasks_insert(struct task *const *list, size_t n);     /* a batch's, in order */
int store_task_save(const struct task *t, const struct task_times *at);   /* > 0: its row made */
int store_task_save_flush(void);        /* the saves that wait, written: before the turn's commit */
int store_task_def_read(int64_t id, struct task_def *d);   /* store-load.c */
int store_read_begin(void);
uint64_t store_reads(void);
/* stated: whether a task wanted may have its row of task_state (none
 * has: the tasks rows alone are read, without the join) */
int store_task_defs_scan(int64_t lo, int64_t hi, bool stated, struct task_def *(*want)(int64_t id));
void store_task_def_close(void);
int store_task_define(const struct task *t);
int store_task_delete(int64_t id);
int store_task_trigger(const struct task *t);
int store_dep_insert(int64_t task, int64_t on);
int store_dep_delete(int64_t task, int64_t on);
int store_event_append(const char *type, const char *entity, const char *entity_id,
		       int64_t project_id, const char *payload, int64_t *ret_seq);
struct evrec;
int store_event_record(int64_t project_id, const struct evrec *rec);
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
	bool held, paused;
	unsigned reserved;
	bool stated;                    /* it has a row of task_state */
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

#endif
