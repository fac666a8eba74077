/*
 * test-names.c - a project's name index (daemon/names.c): task ids past
 * what the index holds refused.
 */
#include <stdio.h>
#include <string.h>

#include "unit.h"

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
	assert_ptr_equal(tasks[t->id], t);
	assert_string_equal(task_name(t), name);
	return t;
}

/* The index keeps ids in 32 bits: an id past TASK_ID_MAX is never given,
 * by a batch or by a fan-out. */
static void task_ids_past_the_largest_are_refused(void **state)
{
	struct project *p = mkproject("ids", true, 5);
	json_object *items = json_tokener_parse("[1,2]"), *reply = NULL;
	int64_t next;

	assert_int_equal(add(p, "[{\"name\":\"a\",\"title\":\"a\",\"command\":\"true\"},"
			     "{\"name\":\"m\",\"title\":\"m\",\"command\":\"true\",\"depends_on\":[\"a\"],"
			     "\"map_over\":\"a\"}]"), 0);
	next = next_task_id;
	next_task_id = TASK_ID_MAX;
	assert_int_equal(add(p, "[{\"name\":\"b\",\"title\":\"b\",\"command\":\"true\"},"
			     "{\"name\":\"c\",\"title\":\"c\",\"command\":\"true\"}]"), -EOVERFLOW);
	assert_non_null(strstr(last_error(), "no task ids are left"));
	next_task_id = (int64_t) TASK_ID_MAX + 1;
	assert_int_equal(add_named(p, "b"), -EOVERFLOW);
	assert_int_equal(next_task_id, (int64_t) TASK_ID_MAX + 1);
	assert_null(names_get(&p->names, "b"));

	next_task_id = TASK_ID_MAX;
	flush();
	assert_int_equal(task_report(named(p, "a"), true, items, NULL, &reply), 0);
	json_object_put(reply);
	json_object_put(items);
	assert_string_equal(S(p, "m"), "failed");
	assert_non_null(strstr(task_def(named(p, "m"))->error_message, "no task ids are left"));
	assert_int_equal(next_task_id, TASK_ID_MAX);

	next_task_id = next;
	assert_int_equal(add_named(p, "b"), 0);
	named(p, "b");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(task_ids_past_the_largest_are_refused, unit_fixture_setup, unit_fixture_teardown),
	};

	return cmocka_run_group_tests_name("names", tests, NULL, NULL);
}
