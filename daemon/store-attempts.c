/*
 * store-attempts.c - the store's part of retry rules, pools and approval:
 * the task_attempts row of a task that uses one of them, the pools table,
 * and reading both at start-up, as rows for the engine's loader
 * (schema/006_attempts.sql).
 */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "dagd.h"
#include "store-private.h"

enum {
	Q_ATTEMPTS_SAVE,
	Q_POOL_SAVE,
	Q_POOL_DELETE,
	_Q_ATTEMPTS_MAX,
};

static const char *const sql[_Q_ATTEMPTS_MAX] = {
	[Q_ATTEMPTS_SAVE] =
		"INSERT OR REPLACE INTO task_attempts (task_id, kind, exit_rule, exit_codes,"
		" max_lost_retries, max_retry_duration_usec, pools, on_timeout, lost_tries,"
		" first_started_at, approval_deadline) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
	[Q_POOL_SAVE] = ("INSERT INTO pools (name, size, created_at, updated_at) VALUES (?,?,?,?)"
			 " ON CONFLICT (name) DO UPDATE SET size = excluded.size, updated_at = excluded.updated_at"),
	[Q_POOL_DELETE] = "DELETE FROM pools WHERE name = ?",
};

static sqlite3_stmt *stmts[_Q_ATTEMPTS_MAX];

static int prepare(int q, sqlite3_stmt **ret)
{
	if (!stmts[q] && sqlite3_prepare_v3(store_sqlite(), sql[q], -1, SQLITE_PREPARE_PERSISTENT,
					    &stmts[q], NULL) != SQLITE_OK)
		return errorf(-EIO, "database: %s", sqlite3_errmsg(store_sqlite()));
	*ret = stmts[q];
	return store_begin();
}

void store_attempts_close(void)
{
	for (int i = 0; i < _Q_ATTEMPTS_MAX; i++)
		sqlite3_finalize(stmts[i]);
	memset(stmts, 0, sizeof(stmts));
}

int store_attempts_wipe(void)
{
	char *msg = NULL;

	if (sqlite3_exec(store_sqlite(), "DELETE FROM task_attempts; DELETE FROM pools", NULL, NULL, &msg) != SQLITE_OK) {
		int r = errorf(-EIO, "database: %s", msg ? msg : "wipe failed");
		sqlite3_free(msg);
		return r;
	}
	return 0;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

int store_attempts_save(const struct task *t)
{
	sqlite3_stmt *st;
	json_object *codes = NULL, *pl = NULL;
	int r = prepare(Q_ATTEMPTS_SAVE, &st);

	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, t->id);
	bind_text(st, 2, t->approval ? "approval" : "command");
	bind_text(st, 3, ext_of(t)->exit_rule == EXIT_RULE_RETRY_ON ? "retry_on_exit" :
		  ext_of(t)->exit_rule == EXIT_RULE_NO_RETRY_ON ? "no_retry_on_exit" : NULL);
	if (ext_of(t)->exit_rule != EXIT_RULE_NONE) {
		codes = json_object_new_array();
		for (int c = 0; c < 256; c++)
			if (ext_of(t)->exit_codes[c / 64] & (1ULL << (c % 64)))
				json_object_array_add(codes, json_object_new_int(c));
	}
	bind_text(st, 4, codes ? json_text(codes) : NULL);
	sqlite3_bind_int(st, 5, (int) ext_of(t)->max_lost_retries);
	sqlite3_bind_int64(st, 6, (int64_t) ext_of(t)->max_retry_duration_usec);
	if (ext_of(t)->n_pools > 0) {
		pl = json_object_new_object();
		for (size_t i = 0; i < ext_of(t)->n_pools; i++)
			json_object_object_add(pl, ext_of(t)->pools[i].pool->name, json_object_new_int((int) ext_of(t)->pools[i].weight));
	}
	bind_text(st, 7, pl ? json_text(pl) : NULL);
	bind_text(st, 8, t->approval ? (ext_of(t)->approve_on_timeout ? "approve" : "reject") : NULL);
	sqlite3_bind_int(st, 9, (int) ext_of(t)->lost_tries);
	sqlite3_bind_int64(st, 10, ext_of(t)->first_started_at);
	sqlite3_bind_int64(st, 11, ext_of(t)->approval_deadline);
	r = store_step(st);
	json_object_put(codes);
	json_object_put(pl);
	return r;
}

int store_pool_save(const struct pool *p)
{
	sqlite3_stmt *st;
	int r = prepare(Q_POOL_SAVE, &st);

	if (r < 0)
		return r;
	bind_text(st, 1, p->name);
	sqlite3_bind_int(st, 2, (int) p->size);
	sqlite3_bind_int64(st, 3, p->created_at);
	sqlite3_bind_int64(st, 4, p->updated_at);
	return store_step(st);
}

int store_pool_delete(const char *name)
{
	sqlite3_stmt *st;
	int r = prepare(Q_POOL_DELETE, &st);

	if (r < 0)
		return r;
	bind_text(st, 1, name);
	return store_step(st);
}

static int load_row(sqlite3_stmt *st, const struct store_loader *l)
{
	const char *kind = (const char *) sqlite3_column_text(st, 1);
	const char *rule = (const char *) sqlite3_column_text(st, 2);
	const char *codes = (const char *) sqlite3_column_text(st, 3);
	const char *pl = (const char *) sqlite3_column_text(st, 6);
	const char *on_timeout = (const char *) sqlite3_column_text(st, 7);
	struct attempts_row row = {
		.task_id = sqlite3_column_int64(st, 0),
		.approval = kind && strcmp(kind, "approval") == 0,
		.exit_rule = !rule ? EXIT_RULE_NONE : strcmp(rule, "retry_on_exit") == 0 ? EXIT_RULE_RETRY_ON :
			     EXIT_RULE_NO_RETRY_ON,
		.max_lost_retries = (unsigned) sqlite3_column_int(st, 4),
		.max_retry_duration_usec = (uint64_t) sqlite3_column_int64(st, 5),
		.approve_on_timeout = on_timeout && strcmp(on_timeout, "approve") == 0,
		.lost_tries = (unsigned) sqlite3_column_int(st, 8),
		.first_started_at = sqlite3_column_int64(st, 9),
		.approval_deadline = sqlite3_column_int64(st, 10),
	};
	_cleanup_free_ struct pool_weight *weights = NULL;
	_cleanup_json_ json_object *o = NULL;

	if (codes) {
		_cleanup_json_ json_object *a = json_parse(codes);

		for (size_t i = 0; json_object_is_type(a, json_type_array) && i < json_object_array_length(a); i++) {
			int c = json_object_get_int(json_object_array_get_idx(a, i));

			if (c >= 0 && c < 256)
				row.exit_codes[c / 64] |= 1ULL << (c % 64);
		}
	}
	if (pl && (o = json_parse(pl)) && json_object_is_type(o, json_type_object)) {
		json_object_object_foreach(o, name, w) {
			weights = xrealloc(weights, (row.n_pools + 1) * sizeof(*weights));
			weights[row.n_pools++] = (struct pool_weight) { name, (unsigned) json_object_get_int(w) };
		}
		row.pools = weights;
	}
	return l->attempts(&row);
}

/* After the tasks: the pools, then each task's row. */
int store_attempts_load(const struct store_loader *l)
{
	sqlite3_stmt *st;
	int rc = SQLITE_DONE, r = 0;

	if (sqlite3_prepare_v2(store_sqlite(), "SELECT name, size, created_at, updated_at FROM pools ORDER BY name",
			       -1, &st, NULL) != SQLITE_OK)
		return errorf(-EIO, "database: %s", sqlite3_errmsg(store_sqlite()));
	while (r >= 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
		r = l->pool(&(const struct pool_row) {
			.name = (const char *) sqlite3_column_text(st, 0),
			.size = (unsigned) sqlite3_column_int(st, 1),
			.created_at = sqlite3_column_int64(st, 2),
			.updated_at = sqlite3_column_int64(st, 3),
		});
	sqlite3_finalize(st);
	if (r < 0)
		return r;
	if (rc != SQLITE_DONE)
		return errorf(-EIO, "database: %s", sqlite3_errmsg(store_sqlite()));

	if (sqlite3_prepare_v2(store_sqlite(), "SELECT task_id, kind, exit_rule, exit_codes, max_lost_retries,"
			       " max_retry_duration_usec, pools, on_timeout, lost_tries, first_started_at,"
			       " approval_deadline FROM task_attempts", -1, &st, NULL) != SQLITE_OK)
		return errorf(-EIO, "database: %s", sqlite3_errmsg(store_sqlite()));
	while (r >= 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
		r = load_row(st, l);
	sqlite3_finalize(st);
	if (r >= 0 && rc != SQLITE_DONE)
		r = errorf(-EIO, "database: %s", sqlite3_errmsg(store_sqlite()));
	return r;
}
