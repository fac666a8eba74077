/*
 * test-names.c - a project's name index (daemon/names.c): names of any
 * length found and kept taken across a restart with only their hashes in
 * memory; names that all share one hash told apart by lookups, duplicate
 * refusal, removal, growth, trigger rules and task.list; task ids past what
 * the index holds refused.
 */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "unit.h"
#include "store-private.h"

static int add(struct project *p, const char *json)
{
	json_object *list = json_tokener_parse(json);
	struct task **made = NULL;
	int r;

	assert_non_null(list);
	r = task_create_batch(p, list, true, &made);
	free(made);
	json_object_put(list);
	return r;
}

static int add_named(struct project *p, const char *name)
{
	char json[512];

	snprintf(json, sizeof(json), "[{\"name\":\"%s\",\"title\":\"x\",\"command\":\"true\"}]", name);
	return add(p, json);
}

/* The task of p named name, found by the index, and nothing else. */
static struct task *named(struct project *p, const char *name)
{
	struct task *t = names_get(&p->names, name);

	assert_non_null(t);
	assert_ptr_equal(t->project, p);
	assert_ptr_equal(task_at(t->id), t);
	assert_string_equal(task_name(t), name);
	return t;
}

static size_t named_in(const struct project *p)
{
	size_t n = 0;

	for (size_t i = 0; i < n_tasks; i++)
		n += task_at(i) && task_at(i)->project == p && task_at(i)->name_hash;
	return n;
}

/* Names of 1 to 255 bytes (255: a row's, more than task.add allows) are
 * found after a restart that kept none of them, only their hashes; a
 * lookup that misses reads no definition; a name taken stays taken. */
static void names_of_any_length_are_found_after_a_restart_and_stay_taken(void **state)
{
	struct project *p = mkproject("lengths", false, 1);
	char n40[41], n128[129], n255[256], sql[512];
	const char *names[] = { "a", "fifteen-chars-x", "sixteen-chars-xy", n40, n128, n255 };
	char spec[512];
	size_t held;

	memset(n40, 'f', 40), n40[40] = 0;
	memset(n128, 'h', 128), n128[128] = 0;
	memset(n255, 'z', 255), n255[255] = 0;
	snprintf(spec, sizeof(spec), "a fifteen-chars-x sixteen-chars-xy %s %s long", n40, n128);
	mktasks(p, spec);
	flush();
	snprintf(sql, sizeof(sql), "UPDATE tasks SET name = '%s' WHERE id = %lld", n255,
		 (long long) named(p, "long")->id);
	assert_int_equal(sqlite3_exec(store_sqlite(), sql, NULL, NULL, NULL), SQLITE_OK);
	unit_reopen();
	p = project_find("lengths");
	for (size_t i = 0; i < n_tasks; i++)
		if (task_at(i))
			assert_null(task_def_held(task_at(i)));     /* the names stayed in the rows */
	held = engine_defs_held();
	assert_null(names_get(&p->names, "absent"));
	assert_null(names_get(&p->names, "long"));
	assert_int_equal(engine_defs_held(), held);
	for (size_t i = 0; i < ELEMENTSOF(names); i++) {
		struct task *t = named(p, names[i]);

		assert_int_equal(strlen(task_name(t)), strlen(names[i]));
		assert_int_equal(t->name_hash, names_hash(names[i]));
		if (i + 1 < ELEMENTSOF(names)) {
			assert_int_equal(add_named(p, names[i]), -EEXIST);
			assert_non_null(strstr(last_error(), "exists already"));
		}
	}
	mktasks(p, "later:sixteen-chars-xy");
	assert_ptr_equal(task_deps(named(p, "later"))[0], named(p, "sixteen-chars-xy"));
	assert_int_equal(p->names.n, named_in(p));
}

static uint32_t same_hash(const char *name)
{
	return 42;
}

static int same_hash_setup(void **state)
{
	names_hash_for_test = same_hash;
	unit_setup();
	return 0;
}

static int same_hash_teardown(void **state)
{
	unit_teardown();
	names_hash_for_test = NULL;
	return 0;
}

static void all_found(struct project *p, const bool *gone, size_t n)
{
	char name[24];

	for (size_t i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "n%zu", i);
		if (gone && gone[i])
			assert_null(names_get(&p->names, name));
		else
			named(p, name);
	}
	assert_null(names_get(&p->names, "absent"));
	assert_int_equal(p->names.n, named_in(p));
}

/* Every name shares one hash: one run of the table holds them all, so
 * each lookup compares names, each removal moves back what follows, and
 * each growth keeps the order the probes need. */
static void names_that_share_one_hash_are_told_apart(void **state)
{
	struct project *p = mkproject("same", false, 1), *q = mkproject("other", false, 1);
	char spec[1024], name[24];
	bool gone[100] = { false };
	size_t len = 0;

	for (size_t i = 0; i < 100; i++)
		len += (size_t) snprintf(spec + len, sizeof(spec) - len, "%sn%zu", i ? " " : "", i);
	mktasks(p, spec);
	mktasks(q, "n0 n1 n2 x");
	assert_int_equal(named(p, "n0")->name_hash, named(p, "n99")->name_hash);
	all_found(p, NULL, 100);
	assert_null(names_get(&p->names, "x"));
	assert_ptr_not_equal(named(q, "n1"), named(p, "n1"));
	assert_int_equal(add_named(p, "n57"), -EEXIST);
	mktasks(p, "d:n63");
	assert_ptr_equal(task_deps(named(p, "d"))[0], named(p, "n63"));

	/* removed from the middle of the run: what follows still found */
	for (size_t i = 10; i < 40; i += 3) {
		snprintf(name, sizeof(name), "n%zu", i);
		assert_int_equal(task_remove(named(p, name)), 0);
		gone[i] = true;
		all_found(p, gone, 100);
	}
	assert_int_equal(add_named(p, "n13"), 0);
	gone[13] = false;
	all_found(p, gone, 100);
	assert_int_equal(add_named(p, "n13"), -EEXIST);

	/* grown past 256 slots, and another project's tasks deleted */
	len = 0;
	for (size_t i = 100; i < 200; i++)
		len += (size_t) snprintf(spec + len, sizeof(spec) - len, "%sm%zu", i > 100 ? " " : "", i);
	mktasks(p, spec);
	assert_true(p->names.cap > 256);
	assert_int_equal(project_delete(q), 0);
	all_found(p, gone, 100);
	named(p, "m150");

	unit_reopen();
	p = project_find("same");
	all_found(p, gone, 100);
	named(p, "m199");
	assert_int_equal(add_named(p, "n99"), -EEXIST);
	assert_int_equal(add_named(p, "m100"), -EEXIST);
	assert_int_equal(add_named(p, "n10"), 0);
}

/* A rule over dependencies whose names share a hash reads each by its own
 * name: bad.failed is bad's, not ok's. */
static void a_trigger_tells_apart_dependencies_whose_names_share_a_hash(void **state)
{
	struct project *p = mkproject("rule", true, 5);

	assert_int_equal(add(p, "[{\"name\":\"ok\",\"title\":\"o\",\"command\":\"true\"},"
			     "{\"name\":\"bad\",\"title\":\"b\",\"command\":\"true\"},"
			     "{\"name\":\"t\",\"title\":\"t\",\"command\":\"true\",\"depends_on\":[\"ok\",\"bad\"],"
			     "\"trigger\":\"bad.failed && ok.succeeded\"}]"), 0);
	assert_int_equal(add(p, "[{\"name\":\"u\",\"title\":\"u\",\"command\":\"true\",\"depends_on\":[\"ok\"],"
			     "\"trigger\":\"bad.failed\"}]"), -EINVAL);
	assert_non_null(strstr(last_error(), "'bad' is not one of the task's dependencies"));
	flush();
	fake_exit(named(p, "ok"), 0);
	fake_exit(named(p, "bad"), 1);
	assert_string_equal(S(p, "t"), "ready");
}

/* task.list by names (as `dagctl apply` asks) through a client of the
 * server's, a page at a time: each named task once, in id order, and a
 * next page said only when a task follows, though every task of the
 * project shares their hash. */
static void a_listing_by_names_lists_each_once_though_all_share_a_hash(void **state)
{
	struct project *p = mkproject("list", false, 1);
	static const char *const pages[][2] = {
		{ "", "[\"n2\",\"n7\"] t-8" }, { ",\"after\":\"t-8\"", "[\"n11\"] -" },
	};
	char spec[256], line[512], buf[65536], got[256];
	struct client *c;
	size_t len = 0;
	int sv[2];

	for (size_t i = 0; i < 20; i++)
		len += (size_t) snprintf(spec + len, sizeof(spec) - len, "%sn%zu", i ? " " : "", i);
	mktasks(p, spec);
	flush();
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	c = server_client_new(sv[0]);

	for (size_t k = 0; k < ELEMENTSOF(pages); k++) {
		json_object *reply, *list, *next;
		ssize_t n;

		snprintf(line, sizeof(line), "{\"cmd\":\"task.list\",\"args\":{\"project\":\"list\",\"limit\":2%s,"
			 "\"names\":[\"n11\",\"n2\",\"absent\",\"n7\",\"n2\"]}}", pages[k][0]);
		cmd_line(c, true, line, strlen(line));
		flush();
		n = read(sv[1], buf, sizeof(buf) - 1);
		assert_true(n > 0);
		buf[n] = 0;
		reply = json_tokener_parse(buf);
		list = json_object_object_get(json_object_object_get(reply, "result"), "tasks");
		next = json_object_object_get(json_object_object_get(reply, "result"), "next");
		len = (size_t) snprintf(got, sizeof(got), "[");
		for (size_t i = 0; i < json_object_array_length(list); i++)
			len += (size_t) snprintf(got + len, sizeof(got) - len, "%s\"%s\"", i ? "," : "",
						 json_object_get_string(json_object_object_get(json_object_array_get_idx(list, i), "name")));
		snprintf(got + len, sizeof(got) - len, "] %s", next ? json_object_get_string(next) : "-");
		assert_string_equal(got, pages[k][1]);
		json_object_put(reply);
	}
	close(sv[1]);
	server_close();
}

/* The index keeps ids in 32 bits: an id past TASK_ID_MAX is never given,
 * by a batch or by a fan-out. */
static void task_ids_past_the_largest_are_refused(void **state)
{
	struct project *p = mkproject("ids", true, 5);
	json_object *items = json_tokener_parse("[1,2]");
	char *reply = NULL;
	int64_t next;

	assert_int_equal(add(p, "[{\"name\":\"a\",\"title\":\"a\",\"command\":\"true\"},"
			     "{\"name\":\"m\",\"title\":\"m\",\"command\":\"true\",\"depends_on\":[\"a\"],"
			     "\"map_over\":\"a\"}]"), 0);
	next = next_task_id;
	next_task_id = TASK_ID_MAX;
	assert_int_equal(add(p, "[{\"name\":\"b\",\"title\":\"b\",\"command\":\"true\"},"
			     "{\"name\":\"c\",\"title\":\"c\",\"command\":\"true\"}]"), -EOVERFLOW);
	assert_non_null(strstr(last_error(), "task ids end at 4294967295"));
	next_task_id = (int64_t) TASK_ID_MAX + 1;
	assert_int_equal(add_named(p, "b"), -EOVERFLOW);
	assert_int_equal(next_task_id, (int64_t) TASK_ID_MAX + 1);
	assert_null(names_get(&p->names, "b"));

	next_task_id = TASK_ID_MAX;
	flush();
	assert_int_equal(task_report(named(p, "a"), true, items, NULL, &reply), 0);
	free(reply);
	json_object_put(items);
	assert_string_equal(S(p, "m"), "failed");
	assert_non_null(strstr(task_def(named(p, "m"))->error_message, "task ids end at 4294967295"));
	assert_int_equal(next_task_id, TASK_ID_MAX);

	next_task_id = next;
	assert_int_equal(add_named(p, "b"), 0);
	named(p, "b");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(names_of_any_length_are_found_after_a_restart_and_stay_taken, unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(names_that_share_one_hash_are_told_apart, same_hash_setup, same_hash_teardown),
		cmocka_unit_test_setup_teardown(a_trigger_tells_apart_dependencies_whose_names_share_a_hash, same_hash_setup, same_hash_teardown),
		cmocka_unit_test_setup_teardown(a_listing_by_names_lists_each_once_though_all_share_a_hash, same_hash_setup, same_hash_teardown),
		cmocka_unit_test_setup_teardown(task_ids_past_the_largest_are_refused, unit_fixture_setup, unit_fixture_teardown),
	};

	return cmocka_run_group_tests_name("names", tests, NULL, NULL);
}
