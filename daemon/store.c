/*
 * store.c - the SQLite store: migrations, group commit, writes and reading
 * the event log.  The load at start-up is store-load.c.
 *
 * A batch is every change made in one turn of the event loop.  The first
 * write of a batch opens a transaction; the end-of-turn flush commits it, and
 * only then are replies and events let out.  A write that fails marks the
 * batch failed: the flush rolls it back whole and the engine reloads its
 * state from what is on disk.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "dagd.h"
#include "store-private.h"
#include "trigger.h"

extern const char *const schema_migrations[];

static sqlite3 *db;
static bool in_txn, failed;
static uint64_t writes;

/* SQLite's own checkpoint, at the same size (its default of 1,000 pages),
 * but not within the commit that crosses it: that commit's replies go out
 * first (store_checkpoint(), from the flush).  A checkpoint copies the
 * WAL's pages into the database and syncs it (after a batch of 100,000
 * tasks, 4,000 pages: 45 to 50 ms, which the reply waited for).  Nothing
 * about a crash changes: what a checkpoint copies is committed already,
 * and what none copied stays in the WAL, where the next open reads it. */
#define CHECKPOINT_PAGES 1000
static bool checkpoint_due;

static int on_wal_commit(void *userdata, sqlite3 *d, const char *name, int pages)
{
	if (pages >= CHECKPOINT_PAGES)
		checkpoint_due = true;
	return SQLITE_OK;
}

enum {
	Q_PROJECT_INSERT,
	Q_PROJECT_UPDATE,
	Q_PROJECT_DELETE,
	Q_TASK_INSERT,
	Q_TASK_INSERT_MANY,
	Q_TASK_DEFINE,
	Q_TASK_DELETE,
	Q_TASK_TRIGGER,
	Q_DEP_INSERT,
	Q_DEP_DELETE,
	Q_WIPE_DEPS,
	Q_WIPE_TASKS,
	Q_WIPE_PROJECTS,
	Q_WIPE_EVENTS,
	Q_WIPE_IDS,
	Q_BEGIN,
	Q_COMMIT,
	_Q_MAX,
};

/* a batch's tasks are inserted TASK_ROWS at a time: one statement's
 * overhead (and its sqlite_sequence update) for that many rows */
#define TASK_ROWS 32
#define TASK_COLS 19
#define TASK_ROW "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
#define TASK_ROW4 TASK_ROW "," TASK_ROW "," TASK_ROW "," TASK_ROW
#define TASK_ROW16 TASK_ROW4 "," TASK_ROW4 "," TASK_ROW4 "," TASK_ROW4
#define TASK_INSERT \
	"INSERT INTO tasks (id, project_id, name, title, command, env, cwd, executor," \
	" executor_options, priority, timeout_usec, max_retries, backoff_usec," \
	" validation_command, status, created_at, updated_at, status_changed_at, finished_at) VALUES "

static const char *const sql[_Q_MAX] = {
	[Q_PROJECT_INSERT] =
		"INSERT INTO projects (name, autonomous_execution_enabled, max_concurrency, executor,"
		" executor_options, created_at, updated_at, id) VALUES (?,?,?,?,?,?,?,?)",
	[Q_PROJECT_UPDATE] =
		"UPDATE projects SET name=?, autonomous_execution_enabled=?, max_concurrency=?,"
		" executor=?, executor_options=?, created_at=?, updated_at=? WHERE id=?",
	[Q_PROJECT_DELETE] = "DELETE FROM projects WHERE id=?",
	[Q_TASK_INSERT] = TASK_INSERT TASK_ROW,
	[Q_TASK_INSERT_MANY] = TASK_INSERT TASK_ROW16 "," TASK_ROW16,
	[Q_TASK_DEFINE] =
		"UPDATE tasks SET title=?, command=?, env=?, cwd=?, priority=?, timeout_usec=?,"
		" max_retries=?, backoff_usec=?, validation_command=? WHERE id=?",
	[Q_TASK_DELETE] = "DELETE FROM tasks WHERE id=?",
	[Q_TASK_TRIGGER] = "UPDATE tasks SET trigger_rule=?, is_finally=? WHERE id=?",
	[Q_DEP_INSERT] = "INSERT OR IGNORE INTO deps (task_id, depends_on) VALUES (?,?)",
	[Q_DEP_DELETE] = "DELETE FROM deps WHERE task_id=? AND depends_on=?",
	[Q_WIPE_DEPS] = "DELETE FROM deps",
	[Q_WIPE_TASKS] = "DELETE FROM tasks",
	[Q_WIPE_PROJECTS] = "DELETE FROM projects",
	[Q_WIPE_EVENTS] = "DELETE FROM event_chunks",
	[Q_WIPE_IDS] = "DELETE FROM sqlite_sequence",
	[Q_BEGIN] = "BEGIN IMMEDIATE",
	[Q_COMMIT] = "COMMIT",
};

static sqlite3_stmt *stmts[_Q_MAX];

static int sqlerr(int rc)
{
	switch (rc) {
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	default:
		return -EIO;
	}
}

static int exec(const char *s)
{
	char *msg = NULL;
	int rc = sqlite3_exec(db, s, NULL, NULL, &msg);

	if (rc != SQLITE_OK) {
		int r = errorf(sqlerr(rc), "database: %s", msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return r;
	}
	return 0;
}

static int migrate(void)
{
	sqlite3_stmt *st;
	int version, known, r;

	for (known = 0; schema_migrations[known]; known++)
		;
	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return errorf(-EIO, "database: %s", sqlite3_errmsg(db));
	sqlite3_step(st);
	version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);

	if (version > known)
		return errorf(-EPROTO, "database schema version %d is newer than this dagd knows (%d); "
			    "run a newer dagd or restore a backup", version, known);
	for (int v = version; v < known; v++) {
		char pragma[64];

		r = exec("BEGIN IMMEDIATE");
		if (r < 0)
			return r;
		r = exec(schema_migrations[v]);
		if (r < 0) {
			exec("ROLLBACK");
			return errorf(r, "migration %d failed: %s", v + 1, last_error());
		}
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", v + 1);
		r = exec(pragma);
		if (r >= 0)
			r = exec("COMMIT");
		if (r < 0) {
			exec("ROLLBACK");
			return r;
		}
		log_info("database migrated to schema version %d", v + 1);
	}
	return 0;
}

int store_open(const char *path)
{
	int rc, r;

	/* no count of SQLite's memory (a global mutex around every
	 * allocation): before its first open only, and nothing else in the
	 * process uses SQLite before that */
	(void) sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	/* the default VFS, the WAL's writes gathered (store-vfs.c) */
	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			     SQLITE_OPEN_NOMUTEX, store_vfs());
	if (rc != SQLITE_OK)
		return errorf(sqlerr(rc), "cannot open database '%s': %s", path,
			    db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
	sqlite3_busy_timeout(db, 5000);
	sqlite3_wal_hook(db, on_wal_commit, NULL);
	/* The database is dagd's alone while it runs: held exclusively, so
	 * that no one else writes behind the engine's back, a second dagd on
	 * the same state is refused, and a transaction takes no file locks
	 * (WAL's index is in memory, not in a shared -shm file).  Foreign
	 * keys are enforced once the schema is current: a migration that
	 * makes a table again (011) must not cascade into its rows. */
	r = exec("PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
		 " PRAGMA foreign_keys=OFF;");
	if (r >= 0)
		r = store_state_functions(db);
	if (r >= 0)
		r = migrate();
	if (r == -EBUSY)
		return errorf(r, "database '%s' is held by another process (is a dagd already running on this "
			      "state directory?)", path);
	if (r < 0)
		return r;
	r = exec("PRAGMA foreign_keys=ON;");
	if (r < 0)
		return r;
	for (int i = 0; i < _Q_MAX; i++)
		if (sqlite3_prepare_v3(db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &stmts[i], NULL) !=
		    SQLITE_OK)
			return errorf(-EIO, "database: %s", sqlite3_errmsg(db));
	r = store_state_prepare();
	if (r < 0)
		return r;
	return store_events_sync();
}

/* Run a statement prepared once that returns no rows (BEGIN, COMMIT, the
 * wipe's DELETEs): not parsed each turn. */
static int txn(int q)
{
	int rc = sqlite3_step(stmts[q]), r = 0;

	if (rc != SQLITE_DONE)
		r = errorf(sqlerr(rc), "database: %s", sqlite3_errmsg(db));
	sqlite3_reset(stmts[q]);
	return r;
}

/* Empty every table and start the ids again: a fresh state in the same
 * database, at once (what the fuzzers start each input from). */
int store_wipe(void)
{
	static uint64_t wiped = UINT64_MAX;
	int r;

	if (in_txn)
		store_rollback();
	if (wiped == writes)
		return 0;               /* nothing written since */
	wiped = writes;
	r = txn(Q_BEGIN);
	for (int q = Q_WIPE_DEPS; r >= 0 && q <= Q_WIPE_IDS; q++)
		r = txn(q);
	if (r >= 0)
		r = store_attempts_wipe();
	if (r >= 0)
		r = txn(Q_COMMIT);
	if (r < 0) {
		(void) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return r;
	}
	return store_events_sync();
}

void store_close(void)
{
	if (!db)
		return;
	if (in_txn)
		store_rollback();
	store_attempts_close();
	for (int i = 0; i < _Q_MAX; i++)
		sqlite3_finalize(stmts[i]);
	memset(stmts, 0, sizeof(stmts));
	store_map_close();
	store_events_close();
	store_task_def_close();
	store_state_close();
	sqlite3_close(db);
	db = NULL;
}

uint64_t store_writes(void)
{
	return writes;
}

static uint64_t reads;         /* transactions a read began */

/* The turn's transaction, begun by its first write or read. */
static int begin(void)
{
	int r;

	if (in_txn)
		return failed ? -EIO : 0;
	r = txn(Q_BEGIN);
	if (r < 0) {
		failed = true;
		return r;
	}
	in_txn = true;
	return 0;
}

/* A read outside a write opens the turn's transaction too (one set of
 * locks a turn, not one a statement), but counts as no write: a reply that
 * only read waits for no commit. */
int store_read_begin(void)
{
	bool was = in_txn;
	int r = begin();

	if (r >= 0 && !was)
		reads++;
	return r;
}

uint64_t store_reads(void)
{
	return reads;
}

int store_begin(void)
{
	writes++;
	return begin();
}

int store_commit(void)
{
	int r;

	if (failed)
		return errorf(-EIO, "the database could not be written; nothing was changed");
	if (!in_txn)
		return 0;
	r = store_events_flush();
	if (r >= 0)
		r = txn(Q_COMMIT);
	if (r < 0) {
		failed = true;
		return errorf(r, "the database could not be written (%s); nothing was changed",
			    last_error());
	}
	in_txn = false;
	return 0;
}

void store_rollback(void)
{
	if (in_txn)
		(void) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	in_txn = false;
	failed = false;
	/* the events of the rolled back batch are gone: find the last one again */
	(void) store_events_sync();
}

bool store_in_transaction(void)
{
	return in_txn;
}

bool store_checkpoint_due(void)
{
	return checkpoint_due && !in_txn;
}

/* Between turns only (a checkpoint within a transaction is refused).  One
 * that fails (a full disk) costs nothing but the WAL's growth: it is tried
 * again after the next commit, and said once, not at every commit. */
void store_checkpoint(void)
{
	static bool failing;
	int rc;

	if (!store_checkpoint_due())
		return;
	checkpoint_due = false;
	rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	if (rc != SQLITE_OK && !failing)
		log_warning("database: cannot copy the WAL into the database (it grows until this works): %s",
			    sqlite3_errmsg(db));
	else if (rc == SQLITE_OK && failing)
		log_info("database: the WAL is copied into the database again");
	failing = rc != SQLITE_OK;
}

/* s, or null: valid until the statement is reset (SQLITE_STATIC) */
void store_bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

/* Run a bound write statement within the batch's transaction. */
static int step(sqlite3_stmt *st);
int store_step(sqlite3_stmt *st)
{
	int r = store_begin();

	if (r < 0) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		return r;
	}
	return step(st);
}

static int step(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE) {
		failed = true;
		return errorf(sqlerr(rc), "database: %s", sqlite3_errmsg(db));
	}
	return 0;
}

int store_project_save(const struct project *p, bool insert)
{
	sqlite3_stmt *st = stmts[insert ? Q_PROJECT_INSERT : Q_PROJECT_UPDATE];
	int r = store_begin();

	if (r < 0)
		return r;
	store_bind_text(st, 1, p->name);
	sqlite3_bind_int(st, 2, p->autonomous);
	sqlite3_bind_int(st, 3, (int) p->max_concurrency);
	store_bind_text(st, 4, p->executor);
	store_bind_text(st, 5, p->executor_options);
	sqlite3_bind_int64(st, 6, p->created_at);
	sqlite3_bind_int64(st, 7, p->updated_at);
	sqlite3_bind_int64(st, 8, p->id);
	return step(st);
}

int store_project_delete(int64_t id)
{
	sqlite3_stmt *st = stmts[Q_PROJECT_DELETE];
	int r = store_begin();

	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	return step(st);
}

/* The task's definition; its state follows with store_task_save(). */
static void bind_task(sqlite3_stmt *st, int at, const struct task *t)
{
	const struct task_def *d = task_def_held(t);

	sqlite3_bind_int64(st, at + 1, t->id);
	sqlite3_bind_int64(st, at + 2, t->project->id);
	store_bind_text(st, at + 3, task_name(t));
	store_bind_text(st, at + 4, d->title);
	store_bind_text(st, at + 5, d->command);
	store_bind_text(st, at + 6, d->env);
	store_bind_text(st, at + 7, d->cwd);
	store_bind_text(st, at + 8, ext_of(t)->executor);
	store_bind_text(st, at + 9, d->executor_options);
	sqlite3_bind_int(st, at + 10, t->priority);
	sqlite3_bind_int64(st, at + 11, (int64_t) ext_of(t)->timeout_usec);
	sqlite3_bind_int(st, at + 12, (int) ext_of(t)->max_retries);
	sqlite3_bind_int64(st, at + 13, (int64_t) ext_of(t)->backoff_usec);
	store_bind_text(st, at + 14, ext_of(t)->validation_command);
	store_bind_text(st, at + 15, status_to_string(t->status));
	sqlite3_bind_int64(st, at + 16, task_time(t, AT_CREATED));
	sqlite3_bind_int64(st, at + 17, task_time(t, AT_UPDATED));
	sqlite3_bind_int64(st, at + 18, task_time(t, AT_STATUS_CHANGED));
	sqlite3_bind_int64(st, at + 19, task_time(t, AT_FINISHED));
}

int store_task_insert(const struct task *t)
{
	sqlite3_stmt *st = stmts[Q_TASK_INSERT];
	int r = store_begin();

	if (r < 0)
		return r;
	bind_task(st, 0, t);
	return step(st);
}

int store_tasks_insert(struct task *const *list, size_t n)
{
	size_t i = 0;
	int r = 0;

	for (; r >= 0 && n - i >= TASK_ROWS; i += TASK_ROWS) {
		sqlite3_stmt *st = stmts[Q_TASK_INSERT_MANY];

		r = store_begin();
		if (r < 0)
			return r;
		for (size_t k = 0; k < TASK_ROWS; k++)
			bind_task(st, (int) k * TASK_COLS, list[i + k]);
		r = step(st);
	}
	for (; r >= 0 && i < n; i++)
		r = store_task_insert(list[i]);
	return r;
}

/* What task.edit may change of a task's definition. */
int store_task_define(const struct task *t)
{
	const struct task_def *d = task_def_held(t);
	sqlite3_stmt *st = stmts[Q_TASK_DEFINE];
	int r = store_begin();

	if (r < 0)
		return r;
	store_bind_text(st, 1, d->title);
	store_bind_text(st, 2, d->command);
	store_bind_text(st, 3, d->env);
	store_bind_text(st, 4, d->cwd);
	sqlite3_bind_int(st, 5, t->priority);
	sqlite3_bind_int64(st, 6, (int64_t) ext_of(t)->timeout_usec);
	sqlite3_bind_int(st, 7, (int) ext_of(t)->max_retries);
	sqlite3_bind_int64(st, 8, (int64_t) ext_of(t)->backoff_usec);
	store_bind_text(st, 9, ext_of(t)->validation_command);
	sqlite3_bind_int64(st, 10, t->id);
	return step(st);
}

/* Its trigger rule and whether it is a finally task (engine-trigger.c). */
int store_task_trigger(const struct task *t)
{
	sqlite3_stmt *st = stmts[Q_TASK_TRIGGER];
	int r = store_begin();

	if (r < 0)
		return r;
	store_bind_text(st, 1, ext_of(t)->trigger ? trigger_text(ext_of(t)->trigger) : NULL);
	sqlite3_bind_int(st, 2, t->finally);
	sqlite3_bind_int64(st, 3, t->id);
	return step(st);
}

/* The task and (by the schema's cascade) its dependency rows. */
int store_task_delete(int64_t id)
{
	sqlite3_stmt *st = stmts[Q_TASK_DELETE];
	int r = store_begin();

	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	return step(st);
}

static int dep_write(int q, int64_t task, int64_t on)
{
	sqlite3_stmt *st = stmts[q];
	int r = store_begin();

	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, task);
	sqlite3_bind_int64(st, 2, on);
	return step(st);
}

int store_dep_insert(int64_t task, int64_t on)
{
	return dep_write(Q_DEP_INSERT, task, on);
}

int store_dep_delete(int64_t task, int64_t on)
{
	return dep_write(Q_DEP_DELETE, task, on);
}

int64_t store_next_id(const char *table)
{
	sqlite3_stmt *st;
	char *q = xasprintf("SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = '%s'), 0),"
			    " (SELECT COALESCE(MAX(id), 0) FROM %s)) + 1", table, table);
	int64_t id = 1;

	if (sqlite3_prepare_v2(db, q, -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			id = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	free(q);
	return id;
}

/* The database, for store-load.c. */
sqlite3 *store_sqlite(void)
{
	return db;
}
