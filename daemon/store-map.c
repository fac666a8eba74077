/*
 * store-map.c - what fan-out keeps of a task (schema/007_inputs.sql): written
 * apart from the task's state, read once at start-up as rows for the
 * engine's loader.
 */
#include <sqlite3.h>
#include <string.h>

#include "dagd.h"
#include "store-private.h"

static sqlite3_stmt *update_st;

void store_map_close(void)
{
	sqlite3_finalize(update_st);
	update_st = NULL;
}

int store_task_map(const struct task *t)
{
	sqlite3_stmt *st;

	if (!update_st) {
		if (sqlite3_prepare_v3(store_sqlite(), "UPDATE tasks SET map_over=?, map_concurrency=?, expanded=?,"
				       " map_count=?, map_parent=?, map_index=?, item=COALESCE(?, item) WHERE id=?", -1,
				       SQLITE_PREPARE_PERSISTENT, &update_st, NULL) != SQLITE_OK)
			return errorf(-EIO, "database: %s", sqlite3_errmsg(store_sqlite()));
	}
	st = update_st;
	sqlite3_bind_int64(st, 1, t->map_over);
	sqlite3_bind_int(st, 2, (int) t->map_concurrency);
	sqlite3_bind_int(st, 3, t->expanded);
	sqlite3_bind_int(st, 4, (int) t->map_count);
	sqlite3_bind_int64(st, 5, t->map_parent);
	sqlite3_bind_int(st, 6, (int) t->map_index);
	/* a child's item, made with it (NULL: the stored one stays) */
	if (t->def && t->def->item)
		sqlite3_bind_text(st, 7, t->def->item, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 7);
	sqlite3_bind_int64(st, 8, t->id);
	return store_step(st);
}

/* Last in store_load(): the fan-out of the tasks that have any. */
int store_map_load(const struct store_loader *l)
{
	sqlite3_stmt *st;
	int rc = SQLITE_DONE, r = 0;

	if (sqlite3_prepare_v2(store_sqlite(), "SELECT id, map_over, map_concurrency, expanded, map_count,"
			       " map_parent, map_index, item FROM tasks WHERE map_over != 0 OR map_parent != 0",
			       -1, &st, NULL) != SQLITE_OK)
		return errorf(-EIO, "database: %s", sqlite3_errmsg(store_sqlite()));
	while (r >= 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
		r = l->map(&(const struct map_row) {
			.task_id = sqlite3_column_int64(st, 0),
			.map_over = sqlite3_column_int64(st, 1),
			.map_concurrency = (unsigned) sqlite3_column_int(st, 2),
			.expanded = sqlite3_column_int(st, 3),
			.map_count = (unsigned) sqlite3_column_int(st, 4),
			.map_parent = sqlite3_column_int64(st, 5),
			.map_index = (unsigned) sqlite3_column_int(st, 6),
		});
	sqlite3_finalize(st);
	if (r >= 0 && rc != SQLITE_DONE)
		r = errorf(-EIO, "database: %s", sqlite3_errmsg(store_sqlite()));
	return r;
}
