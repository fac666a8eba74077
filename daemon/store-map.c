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
	sqlite3_bind_int64(st, 1, ext_of(t)->map_over);
	sqlite3_bind_int(st, 2, (int) ext_of(t)->map_concurrency);
	sqlite3_bind_int(st, 3, ext_of(t)->expanded);
	sqlite3_bind_int(st, 4, (int) ext_of(t)->map_count);
	sqlite3_bind_int64(st, 5, ext_of(t)->map_parent);
	sqlite3_bind_int(st, 6, (int) ext_of(t)->map_index);
	/* a child's item, made with it (NULL: the stored one stays) */
	if (task_def_held(t) && task_def_held(t)->item)
		sqlite3_bind_text(st, 7, task_def_held(t)->item, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 7);
	sqlite3_bind_int64(st, 8, t->id);
	return store_step(st);
}
