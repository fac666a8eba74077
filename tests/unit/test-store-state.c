/*
 * test-store-state.c - where a task stands, saved (daemon/store-state.c):
 * its row of task_state, its status and one compact record of the rest.
 * Made by its first save, kept across a rollback and a restart, migrated
 * from the columns of older schemas, read back field for field; a damaged
 * record refused, never read past its end.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "unit.h"
#include "store-private.h"

/* the numbers of a task's record (its strings are not kept) */
static struct state_record record(int64_t id)
{
	struct state_record r;
	sqlite3_stmt *st;

	assert_int_equal(sqlite3_prepare_v2(store_sqlite(), "SELECT state FROM task_state WHERE task_id = ?", -1,
					    &st, NULL), SQLITE_OK);
	sqlite3_bind_int64(st, 1, id);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_true(store_state_decode(sqlite3_column_blob(st, 0), (size_t) sqlite3_column_bytes(st, 0), &r));
	sqlite3_finalize(st);
	memset(r.outcome, 0, sizeof(r.outcome));
	return r;
}

/* A database of schema 13 (before 014 put where a task stands in
 * task_state) keeps each task's status, attempt, flags, times and last
 * outcome: read from the new table from then on for the tasks that ran,
 * from tasks still for one that never did. */
static void a_database_of_schema_13_keeps_every_tasks_state_and_outcome(void **state)
{
	struct project *p;
	struct task *done, *failed, *waiting;

	unit_open_schema("thirteen.db", 13,
		"INSERT INTO projects (id, name, created_at, updated_at) VALUES (1, 'p13', 1, 2);"
		"INSERT INTO tasks (id, project_id, name, title, command, status, attempt, tries, result,"
		" token, sandbox_id, sandbox_executor, sandbox_handle, created_at, updated_at, started_at,"
		" finished_at, status_changed_at)"
		" VALUES (1, 1, 'done', 'D', '\"true\"', 'completed', 2, 2, '{\"n\":1}', 'tok1', 't-1.2', 'local',"
		" 'h1', 5, 60, 40, 50, 50);"
		"INSERT INTO tasks (id, project_id, name, title, command, status, attempt, tries, error_message,"
		" held, created_at, updated_at, finished_at, status_changed_at)"
		" VALUES (2, 1, 'failed', 'F', '\"false\"', 'failed', 1, 1, 'exited with code 1', 1, 5, 70, 70, 70);"
		"INSERT INTO tasks (id, project_id, name, title, command, status, created_at, updated_at)"
		" VALUES (3, 1, 'waiting', 'W', '\"true\"', 'waiting', 5, 6);"
		"INSERT INTO deps (task_id, depends_on) VALUES (3, 2);");
	/* the two that ran, each as one record (016); the one that never did
	 * keeps its state in tasks */
	assert_int_equal(unit_scalar(store_sqlite(), "SELECT count(*) FROM task_state"), 2);
	assert_int_equal(unit_scalar(store_sqlite(), "SELECT count(*) FROM pragma_table_info('task_state')"), 3);
	p = project_find("p13");
	assert_non_null(p);
	done = T(p, "done");
	failed = T(p, "failed");
	waiting = T(p, "waiting");
	assert_string_equal(S(p, "done"), "completed");
	assert_int_equal(done->attempt, 2);
	assert_int_equal(done->tries, 2);
	assert_string_equal(task_def(done)->result, "{\"n\":1}");
	assert_string_equal(task_def(done)->token, "tok1");
	assert_string_equal(task_def(done)->sandbox_id, "t-1.2");
	assert_string_equal(task_def(done)->sandbox_handle, "h1");
	assert_int_equal(task_time(done, AT_STARTED), 40);
	assert_int_equal(task_time(done, AT_FINISHED), 50);
	assert_string_equal(S(p, "failed"), "failed");
	assert_true(failed->held);
	assert_string_equal(task_def(failed)->error_message, "exited with code 1");
	assert_null(task_def(failed)->result);
	assert_string_equal(S(p, "waiting"), "waiting");
	assert_int_equal(waiting->attempt, 0);
	assert_false(waiting->stated);
	assert_null(task_def(waiting)->result);
	assert_int_equal(task_time(waiting, AT_UPDATED), 6);
	/* and its first change makes its row */
	waiting->held = true;
	task_save(waiting);
	flush();
	assert_int_equal(record(3).flags, STATE_HELD);
}

/* A task added has no row of task_state until its state is first saved;
 * that save makes the row, from what the tasks row holds for what it does
 * not give.  A batch rolled back takes the new row with it, and the next
 * save makes it again, though the task's bit says it has one; a bit that
 * says it has none updates the row it has.  What was saved is what a
 * restart finds, and the bits it loads are right.  The row goes with its
 * task, and with a wipe. */
static void a_tasks_state_row_is_made_by_its_first_save_even_after_a_rollback(void **state)
{
	struct project *p = mkproject("lazy", false, 5);
	struct task *t;
	char q[256];

	mktasks(p, "a b");
	flush();
	t = T(p, "a");
	task_def_drop(t);       /* what the row holds, not a definition in memory */
	snprintf(q, sizeof(q), "SELECT count(*) FROM task_state WHERE task_id = %lld", (long long) t->id);
	assert_int_equal(unit_scalar(store_sqlite(), q), 0);                 /* added: none */

	assert_false(t->stated);
	t->held = true;
	assert_int_equal(store_task_save(t, &(struct task_times) { 0 }), 1);    /* made */
	assert_int_equal(unit_scalar(store_sqlite(), q), 1);
	store_rollback();
	assert_int_equal(unit_scalar(store_sqlite(), q), 0);                 /* gone with its batch */

	/* the engine took it as made: its bit says so, wrongly now */
	t->stated = true;
	assert_int_equal(store_task_save(t, &(struct task_times) { .at[AT_UPDATED] = 1234, .set = 1U << AT_UPDATED }), 1);
	assert_int_equal(store_commit(), 0);
	assert_int_equal(unit_scalar(store_sqlite(), q), 1);
	assert_int_equal(record(t->id).flags, STATE_HELD);
	assert_int_equal(record(t->id).at[AT_UPDATED], 1234);
	/* the times not given are the tasks row's: its creation's */
	snprintf(q, sizeof(q), "SELECT status_changed_at FROM tasks WHERE id = %lld", (long long) t->id);
	assert_int_equal(record(t->id).at[AT_STATUS_CHANGED], unit_scalar(store_sqlite(), q));
	snprintf(q, sizeof(q), "SELECT status = 'ready' FROM task_state WHERE task_id = %lld", (long long) t->id);
	assert_int_equal(unit_scalar(store_sqlite(), q), 1);

	/* and a bit that says none while it has one */
	t->stated = false;
	t->held = false;
	t->tries = 3;
	assert_int_equal(store_task_save(t, &(struct task_times) { 0 }), 0);
	assert_int_equal(store_commit(), 0);
	assert_int_equal(unit_scalar(store_sqlite(), "SELECT count(*) FROM task_state"), 1);   /* b has none */
	assert_int_equal(record(t->id).flags, 0);
	assert_int_equal(record(t->id).tries, 3);
	unit_reopen();
	p = project_find("lazy");
	assert_false(T(p, "a")->held);
	assert_int_equal(T(p, "a")->tries, 3);
	assert_int_equal(task_time(T(p, "a"), AT_UPDATED), 1234);
	assert_true(T(p, "a")->stated);                                 /* as the load found it */
	assert_false(T(p, "b")->stated);
	assert_false(T(p, "b")->held);
	assert_string_equal(S(p, "b"), "ready");
	/* it goes with its task, a project's deletion cascading to it */
	assert_int_equal(sqlite3_exec(store_sqlite(), "DELETE FROM projects WHERE name = 'lazy'", NULL, NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(unit_scalar(store_sqlite(), "SELECT count(*) FROM tasks"), 0);
	assert_int_equal(unit_scalar(store_sqlite(), "SELECT count(*) FROM task_state"), 0);
	/* and with a wipe (the fresh state the fuzzers start each input from) */
	p = mkproject("wiped", false, 5);
	mktasks(p, "w");
	flush();
	T(p, "w")->held = true;
	task_save(T(p, "w"));
	flush();
	assert_int_equal(unit_scalar(store_sqlite(), "SELECT count(*) FROM task_state"), 1);
	assert_int_equal(store_wipe(), 0);
	assert_int_equal(unit_scalar(store_sqlite(), "SELECT count(*) FROM task_state"), 0);
	engine_free();
}

/* Every field a save gives is what a restart reads: the definition held
 * (the record made whole in the daemon), then dropped (the record made by
 * dagd_state() from the row's, the outcome and the times not given kept). */
static void a_record_keeps_every_field_across_saves_and_a_restart(void **state)
{
	struct project *p = mkproject("rec", false, 5);
	struct task_def *d;
	struct task *t;
	unsigned attempt;

	mktasks(p, "a");
	flush();
	t = T(p, "a");
	d = task_def(t);
	free(d->result);
	d->result = strdup("{\"rows\":[1,2,3]}");
	d->error_message = strdup("exit 3: \u00e9t\u00e9 \"quoted\"\nline two");
	d->token = strdup("tok-0123");
	d->report = strdup("{}");
	d->sandbox_id = strdup("t-1.4");
	d->sandbox_executor = strdup("local");
	d->sandbox_handle = strdup("pid:4242");
	t->attempt = 4;
	t->tries = 3;
	t->released = true;
	t->held = true;
	task_set_time(t, AT_STARTED, 1700000000123456);
	task_set_time(t, AT_FINISHED, -5);                      /* signed, whatever it is */
	task_save(t);
	flush();
	assert_true(t->stated);
	assert_int_equal(record(t->id).flags, STATE_RELEASED | STATE_HELD);
	assert_int_equal(record(t->id).attempt, 4);

	/* its definition dropped: a save of its state alone keeps the outcome */
	task_def_drop(t);
	assert_null(task_def_held(t));
	t->released = false;
	t->tries = 5;
	attempt = t->attempt;
	task_save(t);
	task_set_time(t, AT_UPDATED, 99);
	flush();
	assert_int_equal(record(t->id).attempt, attempt);
	assert_int_equal(record(t->id).tries, 5);

	unit_reopen();
	p = project_find("rec");
	t = T(p, "a");
	assert_true(t->stated);
	assert_false(t->released);
	assert_true(t->held);
	assert_int_equal(t->attempt, attempt);
	assert_int_equal(t->tries, 5);
	d = task_def(t);
	assert_string_equal(d->result, "{\"rows\":[1,2,3]}");
	assert_string_equal(d->error_message, "exit 3: \u00e9t\u00e9 \"quoted\"\nline two");
	assert_string_equal(d->token, "tok-0123");
	assert_string_equal(d->report, "{}");
	assert_string_equal(d->sandbox_id, "t-1.4");
	assert_string_equal(d->sandbox_executor, "local");
	assert_string_equal(d->sandbox_handle, "pid:4242");
	assert_int_equal(task_time(t, AT_STARTED), 1700000000123456);
	assert_int_equal(task_time(t, AT_FINISHED), -5);
	assert_int_equal(task_time(t, AT_UPDATED), 99);
	assert_string_equal(S(p, "a"), "ready");
}

/* A turn's saves are written together, 64 rows a statement, then 8, then
 * one: 100 of them, each with what is its own, among them one whose
 * definition is not in memory (written at once, by a statement of its
 * own), come back each as it was saved, across a restart too. */
static void a_turn_of_many_saves_writes_each_tasks_own_record(void **state)
{
	struct project *p = mkproject("many", false, 5);
	char spec[1024] = "", name[16], token[16];
	size_t n = 0;

	for (int i = 0; i < 100; i++)
		n += (size_t) snprintf(spec + n, sizeof(spec) - n, "%st%d", i ? " " : "", i);
	mktasks(p, spec);
	flush();
	for (int i = 0; i < 100; i++) {
		struct task *t;

		snprintf(name, sizeof(name), "t%d", i);
		t = T(p, name);
		if (i == 37) {
			task_def_drop(t);
		} else {
			snprintf(token, sizeof(token), "tok%d", i);
			task_def(t)->token = strdup(token);
		}
		t->tries = (unsigned) i;
		t->held = i % 3 == 0;
		task_save(t);
	}
	flush();
	unit_reopen();
	p = project_find("many");
	assert_int_equal(unit_scalar(store_sqlite(), "SELECT count(*) FROM task_state"), 100);
	for (int i = 0; i < 100; i++) {
		struct task *t;

		snprintf(name, sizeof(name), "t%d", i);
		t = T(p, name);
		assert_int_equal(t->tries, i);
		assert_int_equal(t->held, i % 3 == 0);
		assert_int_equal(record(t->id).tries, i);
		snprintf(token, sizeof(token), "tok%d", i);
		if (i == 37)
			assert_null(task_def(t)->token);
		else
			assert_string_equal(task_def(t)->token, token);
	}
}

/* The decoder takes a record as the encoder made it and nothing else: not
 * one cut short anywhere, nor one with a byte more, another format, flags
 * it does not know or a NUL in a string.  Whatever the damage, it reads
 * nothing past the record's end (the copy is of its length, for ASan). */
static void a_damaged_record_is_refused_by_the_decoder(void **state)
{
	struct project *p = mkproject("dmg", false, 5);
	struct state_record r;
	unsigned char good[256], *copy, *token;
	const void *blob;
	sqlite3_stmt *st;
	size_t n;

	mktasks(p, "a");
	flush();
	task_def(T(p, "a"))->token = strdup("abc");
	T(p, "a")->held = true;
	task_save(T(p, "a"));
	flush();
	assert_int_equal(sqlite3_prepare_v2(store_sqlite(), "SELECT state FROM task_state", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	blob = sqlite3_column_blob(st, 0);
	n = (size_t) sqlite3_column_bytes(st, 0);
	assert_true(n < sizeof(good) - 1);
	memcpy(good, blob, n);
	sqlite3_finalize(st);
	assert_true(store_state_decode(good, n, &r));
	assert_int_equal(r.outcome_len[2], 3);
	assert_memory_equal(r.outcome[2], "abc", 3);
	for (size_t k = 0; k < n; k++) {
		copy = malloc(k ? k : 1);
		memcpy(copy, good, k);
		assert_false(store_state_decode(copy, k, &r));
		free(copy);
	}
	good[n] = 0;
	assert_false(store_state_decode(good, n + 1, &r));     /* a byte more */
	good[0] = 2;
	assert_false(store_state_decode(good, n, &r));         /* a format it does not know */
	good[0] = 1;
	good[1] = 8;
	assert_false(store_state_decode(good, n, &r));         /* flags */
	good[1] = STATE_HELD;
	assert_true(store_state_decode(good, n, &r));
	token = memmem(good, n, "abc", 3);
	assert_non_null(token);
	token[1] = 0;                                           /* a NUL in the token */
	assert_false(store_state_decode(good, n, &r));
}

/* A database whose record was damaged behind dagd's back is not loaded as
 * if the task had never run: the load stops, naming the task. */
static void a_damaged_record_stops_the_load_naming_its_task(void **state)
{
	struct project *p = mkproject("bad", false, 5);
	char path[128];
	int64_t id;

	mktasks(p, "a");
	flush();
	id = T(p, "a")->id;
	T(p, "a")->held = true;
	task_save(T(p, "a"));
	flush();
	assert_int_equal(sqlite3_exec(store_sqlite(), "UPDATE task_state SET state = x'0108'", NULL, NULL, NULL),
			 SQLITE_OK);
	engine_free();
	store_close();
	snprintf(path, sizeof(path), "%s/dagd.db", unit_dir());
	assert_int_equal(store_open(path), 0);
	assert_int_equal(engine_load(), -EBADMSG);
	snprintf(path, sizeof(path), "task %lld: its state record is damaged", (long long) id);
	assert_non_null(strstr(last_error(), path));
	/* and dagd_state() refuses to build on it */
	assert_int_not_equal(sqlite3_exec(store_sqlite(), "UPDATE task_state SET state = dagd_state(state, 0, 0, 0, 0, 0, 0, 0,"
					  " NULL, NULL, NULL, NULL)", NULL, NULL, NULL), SQLITE_OK);
	assert_non_null(strstr(sqlite3_errmsg(store_sqlite()), "damaged"));
	assert_int_equal(sqlite3_exec(store_sqlite(), "DELETE FROM task_state", NULL, NULL, NULL), SQLITE_OK);
	engine_free();
	assert_int_equal(engine_load(), 0);
}

/* A task holds its tries in 12 bits: a record of more (written by a
 * daemon of before, or by hand) is read as TRIES_MAX, which every
 * max_retries (at most 1,000) is below, not as what 12 bits wrap it to. */
static void tries_past_what_a_task_holds_are_read_as_the_most_it_holds(void **state)
{
	struct project *p;

	unit_open_schema("tries.db", 13,
		"INSERT INTO projects (id, name, created_at, updated_at) VALUES (1, 'many', 1, 2);"
		"INSERT INTO tasks (id, project_id, name, title, command, status, attempt, tries, created_at,"
		" updated_at, status_changed_at) VALUES (1, 1, 'x', 'X', '\"true\"', 'ready', 70000, 70000, 5, 6, 6);");
	p = project_find("many");
	assert_non_null(p);
	assert_int_equal(T(p, "x")->attempt, 70000);
	assert_int_equal(T(p, "x")->tries, TRIES_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(a_database_of_schema_13_keeps_every_tasks_state_and_outcome, unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(a_tasks_state_row_is_made_by_its_first_save_even_after_a_rollback, unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(a_record_keeps_every_field_across_saves_and_a_restart, unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(a_turn_of_many_saves_writes_each_tasks_own_record, unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(a_damaged_record_is_refused_by_the_decoder, unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(a_damaged_record_stops_the_load_naming_its_task, unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(tries_past_what_a_task_holds_are_read_as_the_most_it_holds, unit_fixture_setup, unit_fixture_teardown),
	};

	return cmocka_run_group_tests_name("store-state", tests, NULL, NULL);
}
