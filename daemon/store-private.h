/*
 * store-private.h - what store.c shares with store-load.c, store-attempts.c,
 * store-map.c, store-events.c and store-state.c.
 */
#ifndef DAGD_STORE_PRIVATE_H
#define DAGD_STORE_PRIVATE_H

#include <sqlite3.h>

sqlite3 *store_sqlite(void);
int store_step(sqlite3_stmt *st);     /* a write within the batch */
void store_bind_text(sqlite3_stmt *st, int i, const char *s);
int store_attempts_wipe(void);
void store_map_close(void);     /* store-map.c */
int store_events_sync(void);    /* store-events.c */
int store_events_flush(void);   /* what is held, written: before a commit */
void store_events_close(void);
int store_attempts_load(const struct store_loader *l);     /* store-attempts.c */
int store_state_prepare(void);  /* store-state.c */
int store_state_functions(sqlite3 *db);

/* A task's state record (store-state.c), decoded: its strings point into
 * the record and are not NUL-terminated. */
enum { STATE_OUTCOME = 7 };     /* result, error_message, token, report, sandbox_id, _executor, _handle */
enum { STATE_RELEASED = 1, STATE_HELD = 2, STATE_PAUSED = 4 };
struct state_record {
	unsigned flags;         /* STATE_* */
	unsigned attempt, tries, reserved;
	int64_t not_before;
	int64_t at[_AT_MAX];    /* AT_*, but AT_CREATED (0) */
	const char *outcome[STATE_OUTCOME];
	size_t outcome_len[STATE_OUTCOME];
};
bool store_state_decode(const void *blob, size_t len, struct state_record *r);   /* false: damaged */
const char *store_vfs(void);    /* store-vfs.c: the VFS's name, NULL if it cannot be had */
void store_state_close(void);

#endif
