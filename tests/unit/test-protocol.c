/*
 * test-protocol.c - the request line parser and the reply shapes: every
 * malformed request gets a bad_request with its id echoed, and nothing
 * changes.
 */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "unit.h"

static int peer = -1;
static struct client *client;

static int setup(void **state)
{
	int sv[2];

	unit_setup();
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	client = server_client_new(sv[0]);
	assert_non_null(client);
	peer = sv[1];
	return 0;
}

static int teardown(void **state)
{
	close(peer);
	server_close();
	unit_teardown();
	return 0;
}

/* Send one line as `operator` or not, and return the reply. */
static json_object *ask_as(bool operator, const char *line)
{
	char buf[65536];
	ssize_t n;

	cmd_line(client, operator, line, strlen(line));
	flush();
	n = read(peer, buf, sizeof(buf) - 1);
	assert_true(n > 0);
	buf[n] = 0;
	assert_non_null(strchr(buf, '\n'));
	return json_tokener_parse(buf);
}

static json_object *ask(const char *line)
{
	return ask_as(true, line);
}

static void assert_error(json_object *reply, const char *code, const char *needle)
{
	json_object *e = json_object_object_get(reply, "error");

	assert_false(json_object_get_boolean(json_object_object_get(reply, "ok")));
	assert_string_equal(json_object_get_string(json_object_object_get(e, "code")), code);
	if (needle && !strstr(json_object_get_string(json_object_object_get(e, "message")), needle))
		fail_msg("message '%s' lacks '%s'", json_object_get_string(json_object_object_get(e, "message")), needle);
	json_object_put(reply);
}

static void malformed_lines_get_bad_request_and_the_connection_goes_on(void **state)
{
	json_object *r;

	assert_error(ask("{\"cmd\": "), "bad_request", "malformed JSON");
	assert_error(ask("{\"cmd\":\"daemon.status\"} trailing"), "bad_request", "trailing");
	assert_error(ask("[1,2,3]"), "bad_request", "JSON object");
	assert_error(ask("\"just a string\""), "bad_request", "JSON object");
	assert_error(ask("{\"id\":1}"), "bad_request", "\"cmd\"");
	assert_error(ask("{\"id\":1,\"cmd\":42}"), "bad_request", "\"cmd\"");
	assert_error(ask("{\"id\":1,\"cmd\":\"no.such\"}"), "bad_request", "unknown command 'no.such'");
	assert_error(ask("{\"id\":1,\"cmd\":\"project.list\",\"args\":[1]}"), "bad_request", "\"args\"");
	r = ask("{\"id\":2,\"cmd\":\"project.list\"}");
	assert_true(json_object_get_boolean(json_object_object_get(r, "ok")));
	json_object_put(r);
}

static void nesting_too_deep_is_refused_not_followed(void **state)
{
	char line[1024] = "{\"cmd\":\"project.list\",\"args\":{\"x\":";
	size_t n = strlen(line);

	for (int i = 0; i < 200; i++)
		line[n++] = '[';
	line[n] = 0;
	assert_error(ask(line), "bad_request", "malformed JSON");
}

static void the_request_id_is_echoed_whatever_its_type(void **state)
{
	const char *ids[] = { "7", "\"abc\"", "{\"k\":[1,2]}", "null", "1.5" };

	for (size_t i = 0; i < ELEMENTSOF(ids); i++) {
		char line[256];
		json_object *r, *want = json_tokener_parse(ids[i]);

		snprintf(line, sizeof(line), "{\"id\":%s,\"cmd\":\"no.such\"}", ids[i]);
		r = ask(line);
		assert_true(json_object_equal(json_object_object_get(r, "id"), want));
		json_object_put(want);
		json_object_put(r);
	}
}

static void wrong_types_and_missing_arguments_name_the_argument(void **state)
{
	assert_error(ask("{\"cmd\":\"project.create\",\"args\":{\"name\":5}}"), "bad_request", "'name' must be a string");
	assert_error(ask("{\"cmd\":\"project.create\",\"args\":{}}"), "bad_request", "missing argument 'name'");
	assert_error(ask("{\"cmd\":\"project.create\",\"args\":{\"name\":\"x y\"}}"), "bad_request", "must be 1-64");
	assert_error(ask("{\"cmd\":\"project.create\",\"args\":{\"name\":\"ok\",\"max_concurrency\":0}}"),
		     "bad_request", "max_concurrency");
	assert_error(ask("{\"cmd\":\"project.create\",\"args\":{\"name\":\"ok\",\"autonomous\":\"yes\"}}"),
		     "bad_request", "'autonomous' must be true or false");
	assert_int_equal(n_projects, 0);        /* nothing was made */
	assert_error(ask("{\"cmd\":\"project.create\",\"args\":{\"name\":\"p-3\"}}"), "bad_request", "looks like");
	assert_error(ask("{\"cmd\":\"task.get\",\"args\":{\"task_id\":\"t-9\"}}"), "not_found", "no task 't-9'");
	assert_error(ask("{\"cmd\":\"task.get\",\"args\":{\"task_id\":true}}"), "bad_request", "'task_id'");
	assert_error(ask("{\"cmd\":\"project.get\",\"args\":{\"project\":\"nope\"}}"), "not_found", "no project 'nope'");
}

static void a_task_add_with_bad_fields_changes_nothing(void **state)
{
	mkproject("pp", false, 5);
	assert_error(ask("{\"cmd\":\"task.add\",\"args\":{\"project\":\"pp\",\"title\":\"t\",\"command\":[]}}"),
		     "bad_request", "'command'");
	assert_error(ask("{\"cmd\":\"task.add\",\"args\":{\"project\":\"pp\",\"title\":\"t\",\"command\":\"x\",\"priority\":\"urgent\"}}"),
		     "bad_request", "priority 'urgent'");
	assert_error(ask("{\"cmd\":\"task.add\",\"args\":{\"project\":\"pp\",\"title\":\"t\",\"command\":\"x\",\"env\":{\"A\":1}}}"),
		     "bad_request", "env 'A'");
	assert_error(ask("{\"cmd\":\"task.add\",\"args\":{\"project\":\"pp\",\"title\":\"t\",\"command\":\"x\",\"timeout\":-1}}"),
		     "bad_request", "'timeout'");
	assert_error(ask("{\"cmd\":\"task.add\",\"args\":{\"project\":\"pp\",\"title\":\"t\",\"command\":\"x\",\"depends_on\":[\"t-77\"]}}"),
		     "not_found", "t-77");
	assert_error(ask("{\"cmd\":\"task.add\",\"args\":{\"project\":\"pp\",\"title\":\"t\",\"command\":\"x\",\"executor\":\"nosuch\"}}"),
		     "bad_request", "no executor 'nosuch'");
	for (size_t i = 0; i < n_tasks; i++)    /* nothing was made, no id was given */
		assert_null(task_at(i));
	assert_int_equal(next_task_id, 1);
}

static void only_operators_may_do_more_than_report_with_a_token(void **state)
{
	assert_error(ask_as(false, "{\"cmd\":\"project.list\"}"), "permission_denied", "operators only");
	mkproject("pq", true, 5);
	mktasks(project_find("pq"), "a");
	flush();
	assert_error(ask_as(false, "{\"cmd\":\"task.complete\",\"args\":{\"task_id\":\"t-1\"}}"),
		     "permission_denied", "token");
	assert_error(ask_as(false, "{\"cmd\":\"task.complete\",\"args\":{\"task_id\":\"t-1\",\"token\":\"00\"}}"),
		     "permission_denied", "not the one");
	assert_string_equal(status_to_string(task_at(1)->status), "running");
}

static void pipelined_requests_are_answered_in_order(void **state)
{
	char buf[65536];
	size_t got = 0;
	ssize_t n;
	int lines = 0;

	for (int i = 0; i < 50; i++) {
		char line[128];

		snprintf(line, sizeof(line), "{\"id\":%d,\"cmd\":\"%s\"}", i, i % 2 ? "project.list" : "nope");
		cmd_line(client, true, line, strlen(line));
	}
	flush();
	while (lines < 50 && (n = read(peer, buf + got, sizeof(buf) - 1 - got)) > 0) {
		got += (size_t) n;
		buf[got] = 0;
		lines = 0;
		for (char *p = buf; (p = strchr(p, '\n')); p++)
			lines++;
	}
	assert_int_equal(lines, 50);
	for (int i = 0, k = 0; i < 50; i++) {
		char *nl = strchr(buf + k, '\n');
		json_object *r;

		*nl = 0;
		r = json_tokener_parse(buf + k);
		assert_int_equal(json_object_get_int(json_object_object_get(r, "id")), i);
		json_object_put(r);
		k = (int) (nl - buf) + 1;
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(malformed_lines_get_bad_request_and_the_connection_goes_on, setup, teardown),
		cmocka_unit_test_setup_teardown(nesting_too_deep_is_refused_not_followed, setup, teardown),
		cmocka_unit_test_setup_teardown(the_request_id_is_echoed_whatever_its_type, setup, teardown),
		cmocka_unit_test_setup_teardown(wrong_types_and_missing_arguments_name_the_argument, setup, teardown),
		cmocka_unit_test_setup_teardown(a_task_add_with_bad_fields_changes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(only_operators_may_do_more_than_report_with_a_token, setup, teardown),
		cmocka_unit_test_setup_teardown(pipelined_requests_are_answered_in_order, setup, teardown),
	};

	return cmocka_run_group_tests_name("protocol", tests, NULL, NULL);
}
