/*
 * test-store.c - the SQLite store: migrations, the refusal of a newer
 * schema, the pragmas, group commit, and reading the event log, its
 * compact records too.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "event-record.h"
#include "store-private.h"

/* The database as dagd has it: through the store's own connection while it
 * is open (dagd holds it exclusively), else a connection of our own. */
static sqlite3 *peek(void)
{
	char path[128];
	sqlite3 *db;

	if (store_sqlite())
		return store_sqlite();
	snprintf(path, sizeof(path), "%s/dagd.db", unit_dir());
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	return db;
}

static void unpeek(sqlite3 *db)
{
	if (db != store_sqlite())
		sqlite3_close(db);
}

static void a_new_database_is_migrated_to_the_latest_schema_once(void **state)
{
	sqlite3 *db = peek();
	int64_t v = unit_scalar(db, "PRAGMA user_version");

	assert_true(v >= 1);
	assert_int_equal(unit_scalar(db, "SELECT count(*) FROM sqlite_master WHERE name='ix_projects_autonomous_execution_enabled'"), 1);
	assert_int_equal(unit_scalar(db, "SELECT dflt_value = 'FALSE' FROM pragma_table_info('projects') WHERE name='autonomous_execution_enabled'"), 1);
	unpeek(db);
	unit_reopen();
	db = peek();
	assert_int_equal(unit_scalar(db, "PRAGMA user_version"), v);
	assert_string_equal("wal", (const char *) (unit_scalar(db, "SELECT journal_mode = 'wal' FROM pragma_journal_mode") ? "wal" : "other"));
	unpeek(db);
}

static void a_database_from_a_newer_dagd_is_refused_with_a_clear_message(void **state)
{
	sqlite3 *db = peek();
	int64_t version = unit_scalar(db, "PRAGMA user_version");
	char path[128], pragma[64];

	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 999", NULL, NULL, NULL), SQLITE_OK);
	unpeek(db);
	store_close();
	snprintf(path, sizeof(path), "%s/dagd.db", unit_dir());
	assert_int_equal(store_open(path), -EPROTO);
	assert_non_null(strstr(last_error(), "schema version 999 is newer"));
	store_close();
	db = peek();
	snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %lld", (long long) version);
	assert_int_equal(sqlite3_exec(db, pragma, NULL, NULL, NULL), SQLITE_OK);
	unpeek(db);
	assert_int_equal(store_open(path), 0);
}

struct seen {
	int64_t seqs[64];
	char lines[4][512];     /* the first ones' text */
	size_t n;
};

static int collect(int64_t seq, const char *line, void *userdata)
{
	struct seen *s = userdata;
	json_object *o = json_tokener_parse(line);

	assert_non_null(o);     /* every line is JSON */
	json_object_put(o);
	if (s->n < 4)
		snprintf(s->lines[s->n], sizeof(s->lines[0]), "%s", line);
	s->seqs[s->n++] = seq;
	return 0;
}

/* A turn's changes are one commit; before it nothing of them is on disk
 * (a daemon that stops there leaves none of them), and while dagd has the
 * database open no one else reads or writes it. */
static void changes_of_one_turn_share_one_commit_and_are_invisible_before_it(void **state)
{
	struct project *p = mkproject("batch", false, 5);
	json_object *types = json_tokener_parse("[\"TASK_CREATED\"]");
	struct seen created = { 0 };
	int64_t last, before;
	char path[128];
	sqlite3 *other;

	flush();
	before = store_last_seq();
	mktasks(p, "a b c d e f g h");
	assert_true(store_in_transaction());
	assert_int_equal(store_last_seq(), before + 8);
	/* another connection is refused, not shown the batch */
	snprintf(path, sizeof(path), "%s/dagd.db", unit_dir());
	assert_int_equal(sqlite3_open_v2(path, &other, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(other, "SELECT count(*) FROM tasks", NULL, NULL, NULL), SQLITE_BUSY);
	sqlite3_close(other);
	/* stopped before its commit: nothing of the batch is kept, rows or events */
	engine_free();
	store_close();
	assert_int_equal(store_open(path), 0);
	assert_int_equal(engine_load(), 0);
	assert_int_equal(unit_scalar(store_sqlite(), "SELECT count(*) FROM tasks"), 0);
	assert_int_equal(store_last_seq(), before);
	p = project_find("batch");
	assert_non_null(p);
	mktasks(p, "a b c d e f g h");
	flush();
	assert_false(store_in_transaction());
	assert_int_equal(unit_scalar(store_sqlite(), "SELECT count(*) FROM tasks"), 8);
	assert_int_equal(unit_scalar(store_sqlite(), "SELECT MAX(last_seq) FROM event_chunks"), before + 8);
	/* the eight events of one project share a row */
	assert_int_equal(unit_scalar(store_sqlite(), "SELECT count(*) FROM event_chunks WHERE last_seq > (SELECT MAX(last_seq) - 8 FROM event_chunks)"), 1);
	assert_int_equal(store_events_read(0, store_last_seq(), 0, types, 64, collect, &created, &last), 8);
	json_object_put(types);
}

extern const char *const schema_migrations[];

static void a_database_of_an_older_schema_is_migrated_with_its_data(void **state)
{
	struct project *p;
	int n;

	unit_open_schema("old.db", 1,
		"INSERT INTO projects (id, name, created_at, updated_at) VALUES (1, 'old', 1, 2);"
		"INSERT INTO tasks (id, project_id, name, title, command, status, created_at, updated_at)"
		" VALUES (1, 1, 'kept', 'Kept', '\"true\"', 'ready', 5, 777000000);");
	p = project_find("old");
	assert_non_null(p);
	assert_string_equal(task_def(T(p, "kept"))->title, "Kept");
	assert_int_equal(task_time(T(p, "kept"), AT_STATUS_CHANGED), 777000000);   /* from updated_at */
	assert_string_equal(S(p, "kept"), "ready");
	assert_false(T(p, "kept")->held);                               /* 003 */
	n = 0;
	while (schema_migrations[n])
		n++;
	assert_int_equal(unit_scalar(store_sqlite(), "PRAGMA user_version"), n);  /* every migration ran */
	assert_false(T(p, "kept")->paused);
}

/* A database of schema 10 (before 011 made the tasks table again without
 * its index of names, and 012 put events in chunks) keeps every row: the
 * dependencies and attempt rules (which a cascade would have deleted), the
 * last id given, the events with their seqs, types and payloads. */
static void a_database_of_schema_10_keeps_its_tasks_ids_and_events(void **state)
{
	json_object *types = json_tokener_parse("[\"TASK_CREATED\"]");
	struct seen read = { 0 };
	struct project *p;
	struct task *made;
	int64_t last;
	int n;

	unit_open_schema("ten.db", 10,
		"INSERT INTO projects (id, name, created_at, updated_at) VALUES (1, 'ten', 1, 2);"
		"INSERT INTO tasks (id, project_id, name, title, command, status, created_at, updated_at)"
		" VALUES (1, 1, 'a', 'A', '\"true\"', 'ready', 5, 6), (2, 1, 'b', 'B', '\"true\"', 'waiting', 5, 6),"
		" (3, 1, 'gone', 'G', '\"true\"', 'ready', 5, 6);"
		"DELETE FROM tasks WHERE id = 3;"
		"INSERT INTO deps (task_id, depends_on) VALUES (2, 1);"
		"INSERT INTO task_attempts (task_id, max_lost_retries) VALUES (2, 7);"
		"INSERT INTO events (seq, type, entity, entity_id, project_id, time, payload) VALUES"
		" (1, 'PROJECT_CREATED', 'project', 'p-1', 1, 1000001, '{\"name\":\"ten\"}'),"
		" (2, 'TASK_CREATED', 'task', 't-1', 1, 1000002, '{\"task\":{\"title\":\"A\\tb\"}}'),"
		" (3, 'DAEMON_STARTED', 'daemon', '-', NULL, 1000003, '{}');");
	p = project_find("ten");
	assert_non_null(p);
	assert_int_equal(task_n_deps(T(p, "b")), 1);
	assert_ptr_equal(task_deps(T(p, "b"))[0], T(p, "a"));
	assert_int_equal(T(p, "b")->unmet, 1);
	assert_int_equal(ext_of(T(p, "b"))->max_lost_retries, 7);
	assert_int_equal(store_last_seq(), 3);
	/* a name taken is still refused, now by the daemon's index alone */
	{
		json_object *list = json_tokener_parse("[{\"name\":\"a\",\"title\":\"x\",\"command\":\"true\"}]");
		struct task **none = NULL;

		assert_int_equal(task_create_batch(p, list, true, &none), -EEXIST);
		free(none);
		json_object_put(list);
		flush();
	}
	mktasks(p, "c");
	flush();
	made = T(p, "c");
	assert_int_equal(made->id, 4);                   /* 3 was given once */
	n = store_events_read(0, store_last_seq(), 0, NULL, 64, collect, &read, &last);
	assert_int_equal(n, (int) read.n);
	assert_true(n >= 4);
	for (size_t i = 0; i < read.n; i++)
		assert_int_equal(read.seqs[i], (int64_t) i + 1);
	assert_string_equal(read.lines[1], "{\"seq\":2,\"type\":\"TASK_CREATED\",\"entity\":\"task\",\"entity_id\":\"t-1\","
			    "\"project_id\":\"p-1\",\"time\":\"1970-01-01T00:00:01.000002Z\","
			    "\"payload\":{\"task\":{\"title\":\"A\\tb\"}}}");
	assert_non_null(strstr(read.lines[2], "\"project_id\":null"));
	memset(&read, 0, sizeof(read));
	assert_int_equal(store_events_read(0, store_last_seq(), p->id, types, 64, collect, &read, &last), 2);
	assert_int_equal(read.seqs[0], 2);
	json_object_put(types);
}

static void the_event_log_reads_in_order_with_filters_and_from_any_seq(void **state)
{
	struct project *p = mkproject("ev1", false, 5), *q = mkproject("ev2", false, 5);
	json_object *types = json_tokener_parse("[\"TASK_CREATED\"]");
	struct seen all = { 0 }, some = { 0 }, after = { 0 };
	int64_t last;

	mktasks(p, "a b");
	mktasks(q, "x");
	flush();
	int n = store_events_read(0, store_last_seq(), 0, NULL, 64, collect, &all, &last);

	assert_int_equal(n, (int) all.n);
	assert_int_equal(n, 5);      /* 2 PROJECT_CREATED, 3 TASK_CREATED */
	for (size_t i = 1; i < all.n; i++)
		assert_true(all.seqs[i] == all.seqs[i - 1] + 1);
	assert_int_equal(last, store_last_seq());
	store_events_read(0, store_last_seq(), q->id, types, 64, collect, &some, &last);
	assert_int_equal(some.n, 1);
	store_events_read(all.seqs[2], store_last_seq(), 0, NULL, 2, collect, &after, &last);
	assert_int_equal(after.n, 2);
	assert_int_equal(after.seqs[0], all.seqs[3]);
	json_object_put(types);
}

struct kept {
	char *lines[8];
	size_t n;
};

static int keep(int64_t seq, const char *line, void *userdata)
{
	struct kept *k = userdata;

	assert_true(k->n < ELEMENTSOF(k->lines));
	k->lines[k->n++] = strdup(line);
	return 0;
}

/* The events a task makes by the thousand are kept as compact records
 * (event-record.c), between text ones, and read back as the JSON they
 * stand for, field for field: nulls, a project-less exit, a validator's
 * sandbox, a result longer than a one-byte length.  A damaged record is
 * refused, not read as something else. */
static void compact_event_records_read_back_as_their_json(void **state)
{
	struct project *p = mkproject("compact", false, 5);
	struct evrec r = { 0 };
	struct kept k = { 0 };
	char big[400], want[1024], *line;
	int64_t first, last;
	sqlite3 *db;

	flush();
	first = store_last_seq() + 1;
	memset(big, 'x', sizeof(big));
	memcpy(big, "{\"k\":\"", 6);
	memcpy(big + sizeof(big) - 3, "\"}", 3);
	evrec_status(&r, 1000001, 7, 2, "ready", "spawning");
	assert_int_equal(store_event_record(p->id, &r), 0);
	evrec_spawned(&r, 1000002, 7, 2, "t-7.2", "local");
	assert_int_equal(store_event_record(p->id, &r), 0);
	assert_int_equal(store_event_append("TASK_PAUSED", "task", "t-7", p->id, "{\"task_id\":\"t-7\"}", NULL), 0);
	evrec_exited(&r, 1000003, "t-7.2.v", -1, 9, "timeout");
	assert_int_equal(store_event_record(0, &r), 0);
	evrec_exited(&r, 1000004, "t-7.2", 3, 0, "failed");
	assert_int_equal(store_event_record(p->id, &r), 0);
	evrec_completed(&r, 1000005, 7, 2, big);
	assert_int_equal(store_event_record(p->id, &r), 0);
	evrec_completed(&r, 1000006, 8, 1, NULL);
	assert_int_equal(store_event_record(p->id, &r), 0);
	flush();
	assert_int_equal(store_events_read(first - 1, store_last_seq(), 0, NULL, 64, keep, &k, &last), 7);

#define EXPECT(i, type, entity, id, project, usec, payload) \
	snprintf(want, sizeof(want), "{\"seq\":%lld,\"type\":\"%s\",\"entity\":\"%s\",\"entity_id\":\"%s\"," \
		 "\"project_id\":%s,\"time\":\"1970-01-01T00:00:01.00000%dZ\",\"payload\":%s}", \
		 (long long) first + (i), type, entity, id, project, usec, payload); \
	assert_string_equal(k.lines[i], want)

	char pid[16], quoted[24], payload[600];

	snprintf(pid, sizeof(pid), "p-%lld", (long long) p->id);
	snprintf(quoted, sizeof(quoted), "\"%s\"", pid);
	snprintf(payload, sizeof(payload), "{\"task_id\":\"t-7\",\"project_id\":\"%s\",\"old_status\":\"ready\","
		 "\"new_status\":\"spawning\",\"attempt\":2}", pid);
	EXPECT(0, "TASK_STATUS_CHANGED", "task", "t-7", quoted, 1, payload);
	snprintf(payload, sizeof(payload), "{\"sandbox_id\":\"t-7.2\",\"task_id\":\"t-7\",\"project_id\":\"%s\","
		 "\"executor\":\"local\",\"attempt\":2}", pid);
	EXPECT(1, "SANDBOX_SPAWNED", "sandbox", "t-7.2", quoted, 2, payload);
	assert_non_null(strstr(k.lines[2], "\"type\":\"TASK_PAUSED\""));
	assert_non_null(strstr(k.lines[2], "\"payload\":{\"task_id\":\"t-7\"}}"));
	EXPECT(3, "SANDBOX_EXITED", "sandbox", "t-7.2.v", "null", 3,
	       "{\"sandbox_id\":\"t-7.2.v\",\"exit_code\":null,\"signal\":9,\"reason\":\"timeout\",\"task_id\":\"t-7\"}");
	snprintf(payload, sizeof(payload), "{\"sandbox_id\":\"t-7.2\",\"exit_code\":3,\"signal\":null,"
		 "\"reason\":\"failed\",\"task_id\":\"t-7\",\"project_id\":\"%s\"}", pid);
	EXPECT(4, "SANDBOX_EXITED", "sandbox", "t-7.2", quoted, 4, payload);
	snprintf(payload, sizeof(payload), "{\"task_id\":\"t-7\",\"project_id\":\"%s\",\"attempt\":2,\"result\":%s}",
		 pid, big);
	EXPECT(5, "TASK_COMPLETED", "task", "t-7", quoted, 5, payload);
	snprintf(payload, sizeof(payload), "{\"task_id\":\"t-8\",\"project_id\":\"%s\",\"attempt\":1,\"result\":null}", pid);
	EXPECT(6, "TASK_COMPLETED", "task", "t-8", quoted, 6, payload);
#undef EXPECT
	/* from within the chunk, by type: the records passed by are skipped,
	 * those given are the same lines */
	{
		json_object *types = json_tokener_parse("[\"SANDBOX_EXITED\",\"TASK_COMPLETED\"]");
		struct kept some = { 0 };
		int64_t stopped;

		assert_int_equal(store_events_read(first + 1, store_last_seq(), 0, types, 3, keep, &some, &stopped), 3);
		assert_string_equal(some.lines[0], k.lines[3]);
		assert_string_equal(some.lines[1], k.lines[4]);
		assert_string_equal(some.lines[2], k.lines[5]);
		assert_int_equal(stopped, first + 5);
		for (size_t i = 0; i < some.n; i++)
			free(some.lines[i]);
		json_object_put(types);
	}
	for (size_t i = 0; i < k.n; i++)
		free(k.lines[i]);
	k.n = 0;

	/* a record cut short (its kind and time, no task id) is damaged */
	db = peek();
	line = sqlite3_mprintf("INSERT INTO event_chunks (last_seq, first_seq, project_id, events) "
			       "VALUES (%lld, %lld, NULL, X'01C0843D')", (long long) last + 1, (long long) last + 1);
	assert_int_equal(sqlite3_exec(db, line, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_free(line);
	unpeek(db);
	assert_int_equal(store_events_read(last, last + 1, 0, NULL, 64, keep, &k, &last), -EIO);
	assert_int_equal(k.n, 0);
	assert_non_null(strstr(last_error(), "damaged"));
	free(r.buf);
}

/* TASK_CREATED's record reads back as the summary it stands for, byte for
 * byte: a title to escape, no name, dependencies, a map's child with its
 * flags set, a mapped task with none; one with an unknown flag is damaged.
 * TASKS_UNBLOCKED's as its ids, with its sandbox or without. */
static void task_creation_and_unblocking_records_read_back_as_their_json(void **state)
{
	struct project *p = mkproject("created", false, 5);
	struct evrec r = { 0 };
	struct kept k = { 0 };
	struct evrec_task child = {
		.id = 12, .attempt = 3, .name = "m[4]", .title = "tab\there \"q\" \\ caf\xc3\xa9",
		.priority = "critical", .status = "awaiting_approval", .approval = true, .released = true,
		.held = true, .map_parent = 11, .map_index = 4, .created_at = 1000001, .status_changed_at = 2000002,
		.n_deps = 3,
	};
	struct evrec_task mapped = {
		.id = 11, .title = NULL, .priority = "low", .status = "waiting", .map_over = 300,
		.created_at = 1000001,
	};
	char want[1024], pid[16], *line;
	int64_t first, last;
	sqlite3 *db;

	flush();
	first = store_last_seq() + 1;
	snprintf(pid, sizeof(pid), "p-%lld", (long long) p->id);
	evrec_created(&r, 1000003, &child);
	evrec_id(&r, 5);
	evrec_id(&r, 300);
	evrec_id(&r, 1LL << 40);
	assert_int_equal(store_event_record(p->id, &r), 0);
	evrec_created(&r, 1000004, &mapped);
	assert_int_equal(store_event_record(p->id, &r), 0);
	evrec_unblocked(&r, 1000005, 11, "t-11.2", 3);
	evrec_id(&r, 12);
	evrec_id(&r, 1);
	evrec_id(&r, 1LL << 33);
	assert_int_equal(store_event_record(p->id, &r), 0);
	evrec_unblocked(&r, 1000006, 4, NULL, 0);
	assert_int_equal(store_event_record(p->id, &r), 0);
	flush();
	assert_int_equal(store_events_read(first - 1, store_last_seq(), 0, NULL, 64, keep, &k, &last), 4);
	snprintf(want, sizeof(want), "{\"seq\":%lld,\"type\":\"TASK_CREATED\",\"entity\":\"task\",\"entity_id\":\"t-12\","
		 "\"project_id\":\"%s\",\"time\":\"1970-01-01T00:00:01.000003Z\",\"payload\":{\"task\":{"
		 "\"id\":\"t-12\",\"project_id\":\"%s\",\"name\":\"m[4]\",\"title\":\"tab\\there \\\"q\\\" \\\\ caf\xc3\xa9\","
		 "\"kind\":\"approval\",\"priority\":\"critical\",\"status\":\"awaiting_approval\",\"released\":true,"
		 "\"held\":true,\"attempt\":3,\"depends_on\":[\"t-5\",\"t-300\",\"t-1099511627776\"],"
		 "\"map_parent\":\"t-11\",\"map_index\":4,\"created_at\":\"1970-01-01T00:00:01.000001Z\","
		 "\"status_changed_at\":\"1970-01-01T00:00:02.000002Z\"}}}", (long long) first, pid, pid);
	assert_string_equal(k.lines[0], want);
	snprintf(want, sizeof(want), "{\"seq\":%lld,\"type\":\"TASK_CREATED\",\"entity\":\"task\",\"entity_id\":\"t-11\","
		 "\"project_id\":\"%s\",\"time\":\"1970-01-01T00:00:01.000004Z\",\"payload\":{\"task\":{"
		 "\"id\":\"t-11\",\"project_id\":\"%s\",\"name\":null,\"title\":null,\"kind\":\"command\","
		 "\"priority\":\"low\",\"status\":\"waiting\",\"released\":false,\"held\":false,\"attempt\":0,"
		 "\"depends_on\":[],\"map_over\":\"t-300\",\"created_at\":\"1970-01-01T00:00:01.000001Z\","
		 "\"status_changed_at\":null}}}", (long long) first + 1, pid, pid);
	assert_string_equal(k.lines[1], want);
	snprintf(want, sizeof(want), "{\"seq\":%lld,\"type\":\"TASKS_UNBLOCKED\",\"entity\":\"task\",\"entity_id\":\"t-11\","
		 "\"project_id\":\"%s\",\"time\":\"1970-01-01T00:00:01.000005Z\",\"payload\":{\"completed_task_id\":\"t-11\","
		 "\"project_id\":\"%s\",\"unblocked_task_ids\":[\"t-12\",\"t-1\",\"t-8589934592\"],\"sandbox_id\":\"t-11.2\"}}",
		 (long long) first + 2, pid, pid);
	assert_string_equal(k.lines[2], want);
	snprintf(want, sizeof(want), "{\"seq\":%lld,\"type\":\"TASKS_UNBLOCKED\",\"entity\":\"task\",\"entity_id\":\"t-4\","
		 "\"project_id\":\"%s\",\"time\":\"1970-01-01T00:00:01.000006Z\",\"payload\":{\"completed_task_id\":\"t-4\","
		 "\"project_id\":\"%s\",\"unblocked_task_ids\":[],\"sandbox_id\":null}}", (long long) first + 3, pid, pid);
	assert_string_equal(k.lines[3], want);
	for (size_t i = 0; i < k.n; i++)
		free(k.lines[i]);
	k.n = 0;

	/* written by hand: with flags 7 it is read, with 8 (no such flag) refused */
	db = peek();
	for (int flags = 7; flags <= 8; flags++) {
		line = sqlite3_mprintf("INSERT INTO event_chunks (last_seq, first_seq, project_id, events) "
				       "VALUES (%lld, %lld, %lld, X'05010101026102620101%02x00000001010101')",
				       (long long) last + flags - 6, (long long) last + flags - 6, (long long) p->id, flags);
		assert_int_equal(sqlite3_exec(db, line, NULL, NULL, NULL), SQLITE_OK);
		sqlite3_free(line);
	}
	unpeek(db);
	assert_int_equal(store_events_read(last, last + 1, 0, NULL, 64, keep, &k, &last), 1);
	assert_non_null(strstr(k.lines[0], "\"name\":\"a\",\"title\":\"b\",\"kind\":\"approval\",\"priority\":\"\","
			       "\"status\":\"\",\"released\":true,\"held\":true,\"attempt\":1,\"depends_on\":[\"t-1\"]"));
	free(k.lines[0]);
	k.n = 0;
	assert_int_equal(store_events_read(last, last + 1, 0, NULL, 64, keep, &k, &last), -EIO);
	assert_int_equal(k.n, 0);
	assert_non_null(strstr(last_error(), "damaged"));
	free(r.buf);
}

/* A definition's fields, as text, to compare two reads of it. */
static char *def_text(const struct task_def *d)
{
	return xasprintf("%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%lld|%lld|%lld|%lld|%lld", d->name ?: "(null)",
			 d->title ?: "(null)", d->command ?: "(null)", d->env ?: "(null)", d->cwd ?: "(null)",
			 d->executor_options ?: "(null)", d->result ?: "(null)", d->error_message ?: "(null)",
			 d->token ?: "(null)", d->report ?: "(null)", d->item ?: "(null)", d->sandbox_id ?: "(null)",
			 d->sandbox_executor ?: "(null)", d->sandbox_handle ?: "(null)", (long long) d->at[AT_CREATED],
			 (long long) d->at[AT_UPDATED], (long long) d->at[AT_STARTED], (long long) d->at[AT_FINISHED],
			 (long long) d->at[AT_STATUS_CHANGED]);
}

/* The definitions a dispatch round reads in one pass: of tasks that never
 * had a row of task_state without looking for one, of a range with one that
 * has (held, so saved) with it; either way each the same, field for field,
 * as its own read (task_def(), which always looks) gives. */
static void definitions_read_in_one_pass_are_those_read_one_by_one(void **state)
{
	struct project *p = mkproject("defs", false, 5);
	json_object *list = json_object_new_array();
	struct task **made = NULL, *t[40];
	char *scanned[40];

	for (int i = 0; i < 40; i++) {
		json_object *a = json_object_new_object();
		char buf[64];

		snprintf(buf, sizeof(buf), "n%d", i);
		json_object_object_add(a, "name", json_object_new_string(buf));
		snprintf(buf, sizeof(buf), "title \"%d\"\t", i);
		json_object_object_add(a, "title", json_object_new_string(buf));
		snprintf(buf, sizeof(buf), "[\"echo\",\"%d\"]", i);
		json_object_object_add(a, "command", json_tokener_parse(buf));
		snprintf(buf, sizeof(buf), "{\"K\":\"v%d\"}", i);
		json_object_object_add(a, "env", json_tokener_parse(buf));
		json_object_array_add(list, a);
	}
	assert_int_equal(task_create_batch(p, list, true, &made), 0);
	json_object_put(list);
	free(made);
	flush();
	assert_int_equal(task_hold(T(p, "n25"), true), 0);
	flush();
	unit_reopen();
	p = project_find("defs");
	assert_non_null(p);
	for (int i = 0; i < 40; i++) {
		char name[16];

		snprintf(name, sizeof(name), "n%d", i);
		t[i] = T(p, name);
		task_def_drop(t[i]);    /* (found by its name: its row was read) */
		assert_null(task_def_held(t[i]));
		assert_int_equal(t[i]->stated, i == 25);
	}
	task_defs_prefetch(t, 20);              /* none stated */
	task_defs_prefetch(t + 20, 20);         /* n25 among them */
	for (int i = 0; i < 40; i++) {
		assert_non_null(task_def_held(t[i]));   /* read by the pass */
		scanned[i] = def_text(task_def_held(t[i]));
		task_def_drop(t[i]);
	}
	for (int i = 0; i < 40; i++) {
		char *own = def_text(task_def(t[i]));

		assert_string_equal(scanned[i], own);
		free(own);
		free(scanned[i]);
	}
	assert_string_equal(task_def(t[7])->title, "title \"7\"\t");
	assert_string_equal(task_def(t[7])->env, "{\"K\":\"v7\"}");
	assert_true(T(p, "n25")->held);
}

static int count_in_order(int64_t seq, const char *line, void *userdata)
{
	int64_t *next = userdata;

	assert_int_equal(seq, *next);
	*next = seq + 1;
	return 0;
}

/* 70,000 events of one project fill many chunks (512 events at most); read
 * in pages of 37 from where the last page stopped, mid-chunk or not, and
 * then only from a second project, each comes once, in order. */
static void events_of_many_chunks_read_in_pages_each_once(void **state)
{
	struct project *p = mkproject("chunky", false, 5), *q;
	int64_t first, next, last, after, end;
	size_t n = 0;
	char *spec = malloc(70000 * 8);
	size_t len = 0;
	sqlite3 *db = peek();

	for (int i = 0; i < 70000; i++)
		len += (size_t) sprintf(spec + len, "%st%d", i ? " " : "", i);
	flush();
	first = store_last_seq() + 1;
	mktasks(p, spec);
	q = mkproject("other", false, 5);
	mktasks(q, "x y");
	flush();
	free(spec);
	end = store_last_seq();
	assert_true(unit_scalar(db, "SELECT count(*) FROM event_chunks") >= 70000 / 512);
	for (next = first, after = first - 1; after < end; after = last) {
		int k = store_events_read(after, end, p->id, NULL, 37, count_in_order, &next, &last);

		assert_true(k >= 0 && k <= 37);
		n += (size_t) k;
		assert_true(last > after);
	}
	assert_int_equal(n, 70000);             /* p's TASK_CREATED, each once, in order */
	next = end - 2;                         /* PROJECT_CREATED of q, then its two tasks */
	assert_int_equal(store_events_read(first, end, q->id, NULL, 100, count_in_order, &next, &last), 3);
	assert_int_equal(last, end);
	/* a filter that passes two events in 70,000 reads past a hundred chunks */
	{
		json_object *types = json_tokener_parse("[\"PROJECT_CREATED\"]");
		struct seen made = { 0 };

		assert_int_equal(store_events_read(0, end, 0, types, 100, collect, &made, &last), 2);
		assert_int_equal(made.seqs[1], end - 2);
		assert_int_equal(last, end);
		json_object_put(types);
	}
	unpeek(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(a_new_database_is_migrated_to_the_latest_schema_once, unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(a_database_from_a_newer_dagd_is_refused_with_a_clear_message, unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(changes_of_one_turn_share_one_commit_and_are_invisible_before_it, unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(a_database_of_an_older_schema_is_migrated_with_its_data, unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(a_database_of_schema_10_keeps_its_tasks_ids_and_events, unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(the_event_log_reads_in_order_with_filters_and_from_any_seq, unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(events_of_many_chunks_read_in_pages_each_once, unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(compact_event_records_read_back_as_their_json, unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(task_creation_and_unblocking_records_read_back_as_their_json, unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(definitions_read_in_one_pass_are_those_read_one_by_one, unit_fixture_setup, unit_fixture_teardown),
	};

	return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
