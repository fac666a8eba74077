/*
 * test-store-vfs.c - the store's VFS, which gathers the WAL's writes until
 * the commit's sync: the database it writes is the one SQLite's own VFS
 * reads back, whole, across transactions larger than a gathering, pages
 * spilled and rewritten before their commit; and a process killed after a
 * commit keeps that commit and nothing of the transaction it was in.
 */
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unit.h"
#include "store-private.h"

/* rows lo..hi: each 300 bytes, made from its number */
#define FILL "WITH RECURSIVE c(i) AS (SELECT %d UNION ALL SELECT i + 1 FROM c WHERE i < %d) " \
	"INSERT INTO t SELECT i, substr(replace(hex(zeroblob(150)), '00', printf('%%04x', i)), 1, 300) FROM c"

static void run(sqlite3 *db, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s: %s", sql, err);
}

static void fill(sqlite3 *db, int lo, int hi)
{
	char sql[512];

	snprintf(sql, sizeof(sql), FILL, lo, hi);
	run(db, sql);
}

static sqlite3 *open_db(const char *vfs)
{
	char path[256];
	sqlite3 *db;

	snprintf(path, sizeof(path), "%s/vfs.db", unit_dir());
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs), SQLITE_OK);
	/* as the store has it, and a cache of 20 pages: a transaction's pages
	 * are written to the WAL (spilled) long before its commit */
	run(db, "PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
		" PRAGMA cache_size=20; CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)");
	return db;
}

static const char *text(sqlite3 *db, const char *sql, char *buf, size_t size)
{
	sqlite3_stmt *st;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	snprintf(buf, size, "%s", (const char *) sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return buf;
}

/* What rows lo..hi, as FILL makes them, sum to, and the same as read. */
static void assert_rows(sqlite3 *db, int lo, int hi)
{
	char want[128], got[128], sql[512];

	snprintf(sql, sizeof(sql), "SELECT count(*) || ' ' || sum(length(v)) || ' ' || sum(k * unicode(substr(v, 3)))"
		 " || ' ' || min(k) || ' ' || max(k) FROM (WITH RECURSIVE c(i) AS (SELECT %d UNION ALL SELECT i + 1"
		 " FROM c WHERE i < %d) SELECT i AS k, substr(replace(hex(zeroblob(150)), '00', printf('%%04x', i)),"
		 " 1, 300) AS v FROM c)", lo, hi);
	text(db, sql, want, sizeof(want));
	text(db, "SELECT count(*) || ' ' || sum(length(v)) || ' ' || sum(k * unicode(substr(v, 3))) || ' ' ||"
		 " min(k) || ' ' || max(k) FROM t", got, sizeof(got));
	assert_string_equal(got, want);
}

static void what_it_writes_sqlite_reads_back_whole(void **state)
{
	sqlite3 *db = open_db(store_vfs());
	char buf[64];

	/* 20,000 rows (6 MB) in one transaction, far more than a gathering;
	 * then rows changed twice in one transaction, their pages spilled in
	 * between (a frame of the WAL rewritten in place) */
	run(db, "BEGIN");
	fill(db, 1, 20000);
	run(db, "COMMIT");
	run(db, "BEGIN; UPDATE t SET v = upper(v) WHERE k % 3 = 0; UPDATE t SET v = lower(v) WHERE k % 3 = 0;"
		" DELETE FROM t WHERE k > 20000; COMMIT");
	for (int i = 0; i < 50; i++)            /* small commits, one after another */
		run(db, "BEGIN; UPDATE t SET v = v WHERE k = 7; COMMIT");
	assert_rows(db, 1, 20000);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);

	db = open_db(NULL);                     /* SQLite's own VFS */
	assert_string_equal(text(db, "PRAGMA integrity_check", buf, sizeof(buf)), "ok");
	assert_rows(db, 1, 20000);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static void killed_after_a_commit_it_keeps_that_commit_and_nothing_after(void **state)
{
	char buf[64];
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		sqlite3 *db = open_db(store_vfs());

		run(db, "BEGIN");
		fill(db, 1, 5000);
		run(db, "COMMIT");
		/* a transaction under way, many of its pages in the WAL already
		 * and some still gathered: then killed, as by kill -9 */
		run(db, "BEGIN");
		fill(db, 5001, 15000);
		run(db, "UPDATE t SET v = 'x' WHERE k <= 100");
		kill(getpid(), SIGKILL);
		_exit(1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

	sqlite3 *db = open_db(NULL);

	assert_string_equal(text(db, "PRAGMA integrity_check", buf, sizeof(buf)), "ok");
	assert_rows(db, 1, 5000);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(what_it_writes_sqlite_reads_back_whole, unit_fixture_setup,
						unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(killed_after_a_commit_it_keeps_that_commit_and_nothing_after,
						unit_fixture_setup, unit_fixture_teardown),
	};

	return cmocka_run_group_tests_name("store-vfs", tests, NULL, NULL);
}
