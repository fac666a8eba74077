/*
 * store-load.c - the load at start-up: projects, tasks and their edges read
 * from the database into the engine's model.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "dagd.h"
#include "store-private.h"

static char *col_text(sqlite3_stmt *st, int i)
{
	return xstrdup((const char *) sqlite3_column_text(st, i));
}

int store_load(void)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(store_sqlite(), "SELECT id, name, autonomous_execution_enabled, max_concurrency,"
			       " executor, executor_options, created_at, updated_at FROM projects"
			       " ORDER BY id", -1, &st, NULL) != SQLITE_OK)
		return errorf(-EIO, "database: %s", sqlite3_errmsg(store_sqlite()));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct project *p = calloc(1, sizeof(*p));
		int64_t id = sqlite3_column_int64(st, 0);

		if (!p)
			abort();
		p->id = id;
		p->name = col_text(st, 1);
		p->autonomous = sqlite3_column_int(st, 2);
		p->max_concurrency = (unsigned) sqlite3_column_int(st, 3);
		p->executor = col_text(st, 4);
		p->executor_options = col_text(st, 5);
		p->created_at = sqlite3_column_int64(st, 6);
		p->updated_at = sqlite3_column_int64(st, 7);
		if ((size_t) id >= n_projects) {
			projects = xrealloc(projects, (size_t) (id + 1) * sizeof(*projects));
			memset(projects + n_projects, 0, (size_t) (id + 1 - (int64_t) n_projects) * sizeof(*projects));
			n_projects = (size_t) id + 1;
		}
		projects[id] = p;
	}
	sqlite3_finalize(st);

	/* a task's state; its definition stays in the database until asked
	 * for (store_task_def_read()) */
	if (sqlite3_prepare_v2(store_sqlite(), "SELECT id, project_id, name, NULL, NULL, NULL, NULL, executor,"
			       " NULL, priority, timeout_usec, max_retries, backoff_usec,"
			       " validation_command, status, released, attempt, tries, not_before,"
			       " NULL, NULL, sandbox_id, sandbox_executor, sandbox_handle,"
			       " NULL, NULL, created_at, updated_at, started_at, finished_at,"
			       " status_changed_at, held, paused FROM tasks ORDER BY id", -1, &st, NULL) != SQLITE_OK)
		return errorf(-EIO, "database: %s", sqlite3_errmsg(store_sqlite()));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct task *t = calloc(1, sizeof(*t));
		int64_t id = sqlite3_column_int64(st, 0), pid = sqlite3_column_int64(st, 1);

		if (!t)
			abort();
		t->id = id;
		t->project = (size_t) pid < n_projects ? projects[pid] : NULL;
		t->name = col_text(st, 2);
		t->executor = col_text(st, 7);
		t->priority = sqlite3_column_int(st, 9);
		t->timeout_usec = (uint64_t) sqlite3_column_int64(st, 10);
		t->max_retries = (unsigned) sqlite3_column_int(st, 11);
		t->backoff_usec = (uint64_t) sqlite3_column_int64(st, 12);
		t->validation_command = col_text(st, 13);
		t->status = status_from_string((const char *) sqlite3_column_text(st, 14));
		t->released = sqlite3_column_int(st, 15);
		t->attempt = (unsigned) sqlite3_column_int(st, 16);
		t->tries = (unsigned) sqlite3_column_int(st, 17);
		t->not_before = sqlite3_column_int64(st, 18);
		t->sandbox_id = col_text(st, 21);
		t->sandbox_executor = col_text(st, 22);
		t->sandbox_handle = col_text(st, 23);
		t->created_at = sqlite3_column_int64(st, 26);
		t->updated_at = sqlite3_column_int64(st, 27);
		t->started_at = sqlite3_column_int64(st, 28);
		t->finished_at = sqlite3_column_int64(st, 29);
		t->status_changed_at = sqlite3_column_int64(st, 30);
		t->held = sqlite3_column_int(st, 31);
		t->paused = sqlite3_column_int(st, 32) && t->status == ST_RUNNING;
		t->heap_idx = -1;
		if (!t->project || t->status == _ST_INVALID || t->priority < 0 || t->priority >= _PRIO_MAX) {
			sqlite3_finalize(st);
			free(t);
			return errorf(-EBADMSG, "database: task %lld is malformed", (long long) id);
		}
		if ((size_t) id >= n_tasks) {
			size_t n = (size_t) id + 1 > 2 * n_tasks ? (size_t) id + 1 : 2 * n_tasks;
			tasks = xrealloc(tasks, n * sizeof(*tasks));
			memset(tasks + n_tasks, 0, (n - n_tasks) * sizeof(*tasks));
			n_tasks = n;
		}
		tasks[id] = t;
		names_add(&t->project->names, t);
	}
	sqlite3_finalize(st);
	if ((rc = store_attempts_load()) < 0)
		return rc;

	/* trigger rules and finally tasks (schema 005) */
	if (sqlite3_prepare_v2(store_sqlite(), "SELECT id, trigger_rule, is_finally FROM tasks"
			       " WHERE trigger_rule IS NOT NULL OR is_finally", -1, &st, NULL) != SQLITE_OK)
		return errorf(-EIO, "database: %s", sqlite3_errmsg(store_sqlite()));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		const char *rule = (const char *) sqlite3_column_text(st, 1);

		if ((size_t) id >= n_tasks || !tasks[id])
			continue;
		tasks[id]->finally = sqlite3_column_int(st, 2);
		if (task_trigger_set(tasks[id], rule) < 0) {
			sqlite3_finalize(st);
			return errorf(-EBADMSG, "database: task %lld has a malformed trigger", (long long) id);
		}
	}
	sqlite3_finalize(st);

	if (sqlite3_prepare_v2(store_sqlite(), "SELECT task_id, depends_on FROM deps", -1, &st, NULL) != SQLITE_OK)
		return errorf(-EIO, "database: %s", sqlite3_errmsg(store_sqlite()));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t a = sqlite3_column_int64(st, 0), b = sqlite3_column_int64(st, 1);
		struct task *t, *on;

		if ((size_t) a >= n_tasks || (size_t) b >= n_tasks || !(t = tasks[a]) || !(on = tasks[b]))
			continue;
		t->deps = xrealloc(t->deps, (t->n_deps + 1) * sizeof(*t->deps));
		t->deps[t->n_deps++] = on;
		on->rdeps = xrealloc(on->rdeps, (on->n_rdeps + 1) * sizeof(*on->rdeps));
		on->rdeps[on->n_rdeps++] = t;
	}
	sqlite3_finalize(st);
	return 0;
}

static void def_fill(sqlite3_stmt *st, int i, struct task_def *d)
{
	d->title = col_text(st, i);
	d->command = col_text(st, i + 1);
	d->env = col_text(st, i + 2);
	d->cwd = col_text(st, i + 3);
	d->executor_options = col_text(st, i + 4);
	d->result = col_text(st, i + 5);
	d->error_message = col_text(st, i + 6);
	d->token = col_text(st, i + 7);
	d->report = col_text(st, i + 8);
	d->item = col_text(st, i + 9);
}

static sqlite3_stmt *def_st;

/* A task's definition and outcome, for task_def(). */
int store_task_def_read(int64_t id, struct task_def *d)
{
	sqlite3_stmt *st;
	int rc;

	if (!def_st && sqlite3_prepare_v3(store_sqlite(), "SELECT title, command, env, cwd, executor_options,"
					  " result, error_message, token, report, item FROM tasks WHERE id=?", -1,
					  SQLITE_PREPARE_PERSISTENT, &def_st, NULL) != SQLITE_OK)
		return errorf(-EIO, "database: %s", sqlite3_errmsg(store_sqlite()));
	if ((rc = store_read_begin()) < 0)
		return rc;
	st = def_st;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		def_fill(st, 0, d);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return errorf(rc == SQLITE_DONE ? -ENOENT : -EIO, "database: task %lld: %s", (long long) id,
			      rc == SQLITE_DONE ? "no row" : sqlite3_errmsg(store_sqlite()));
	return 0;
}

static sqlite3_stmt *scan_st;

/* The definitions of the tasks with ids from lo to hi, in one pass over
 * their rows (a page of a listing: one read of each page of the table, not
 * a lookup each): want(id) says where to put each, or NULL to pass it by. */
int store_task_defs_scan(int64_t lo, int64_t hi, struct task_def *(*want)(int64_t id))
{
	sqlite3_stmt *st;
	int rc;

	if (!scan_st && sqlite3_prepare_v3(store_sqlite(), "SELECT id, title, command, env, cwd, executor_options,"
					   " result, error_message, token, report, item FROM tasks"
					   " WHERE id BETWEEN ? AND ? ORDER BY id", -1,
					   SQLITE_PREPARE_PERSISTENT, &scan_st, NULL) != SQLITE_OK)
		return errorf(-EIO, "database: %s", sqlite3_errmsg(store_sqlite()));
	if ((rc = store_read_begin()) < 0)
		return rc;
	st = scan_st;
	sqlite3_bind_int64(st, 1, lo);
	sqlite3_bind_int64(st, 2, hi);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct task_def *d = want(sqlite3_column_int64(st, 0));

		if (d)
			def_fill(st, 1, d);
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : errorf(-EIO, "database: %s", sqlite3_errmsg(store_sqlite()));
}

void store_task_def_close(void)
{
	sqlite3_finalize(def_st);
	def_st = NULL;
	sqlite3_finalize(scan_st);
	scan_st = NULL;
}
