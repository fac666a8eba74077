/*
 * test-trigger.c - the trigger rules' parser and evaluator (daemon/trigger.c):
 * the named rules, expressions with their precedence, and many malformed
 * inputs each refused with a message saying where; then the engine judging
 * tasks by them (engine-trigger.c), across a reload from the database.
 */
#include <stdio.h>
#include <string.h>

#include "unit.h"
#include "trigger.h"

/* Each operand's dependency's state, by name: "a=S b=F c=K d=C" (succeeded,
 * failed, skipped, cancelled; a name not listed: not finished). */
static const char *states;

static unsigned lookup(size_t i, void *userdata)
{
	const struct trigger *tr = userdata;
	const char *name = tr->names[i], *p = states;
	size_t n = strlen(name);

	while ((p = strstr(p, name))) {
		if ((p == states || p[-1] == ' ') && p[n] == '=') {
			switch (p[n + 1]) {
			case 'S': return TS_SUCCEEDED | TS_DONE;
			case 'F': return TS_FAILED | TS_DONE;
			case 'K': return TS_SKIPPED | TS_DONE;
			case 'C': return TS_CANCELLED | TS_DONE;
			}
		}
		p += n;
	}
	return 0;
}

static bool eval(const char *expr, const char *with)
{
	struct trigger *tr = NULL;
	bool v;

	assert_int_equal(trigger_parse(expr, &tr), 0);
	assert_int_equal(tr->kind, TRIGGER_EXPR);
	states = with;
	v = trigger_eval(tr, lookup, tr);
	trigger_free(tr);
	return v;
}

static void named_rules_are_read_as_such(void **state)
{
	static const char *const names[] = {
		"all_succeeded", "all_done", "any_failed", "none_failed", "any_succeeded", "all_failed"
	};

	for (int k = 0; k < 6; k++) {
		struct trigger *tr = NULL;

		assert_int_equal(trigger_parse(names[k], &tr), 0);
		assert_int_equal(tr->kind, k);
		assert_string_equal(tr->text, names[k]);
		assert_string_equal(trigger_kind_name(k), names[k]);
		trigger_free(tr);
	}
}

static void expressions_evaluate_with_precedence_and_parentheses(void **state)
{
	assert_true(eval("build.succeeded", "build=S"));
	assert_false(eval("build.succeeded", "build=F"));
	assert_false(eval("build.succeeded", ""));              /* not finished */
	assert_true(eval("build.done", "build=C"));
	assert_true(eval("build.succeeded && (lint.failed || lint.skipped)", "build=S lint=K"));
	assert_false(eval("build.succeeded && (lint.failed || lint.skipped)", "build=S lint=S"));
	/* && binds tighter than || */
	assert_true(eval("a.failed || b.succeeded && c.succeeded", "a=F b=F c=F"));
	assert_false(eval("(a.failed || b.succeeded) && c.succeeded", "a=F b=F c=F"));
	assert_true(eval("!a.failed", "a=S"));
	assert_true(eval("!!a.failed", "a=F"));
	assert_true(eval("! ( a.cancelled )&&\tb.skipped", "a=S b=K"));
	/* names with dots, dashes and ids */
	assert_true(eval("my.step-1.succeeded && t-12.failed", "my.step-1=S t-12=F"));
}

static void operands_are_named_once(void **state)
{
	struct trigger *tr = NULL;

	assert_int_equal(trigger_parse("a.succeeded || a.failed || b.done", &tr), 0);
	assert_int_equal(tr->n_names, 2);
	assert_string_equal(tr->names[0], "a");
	assert_string_equal(tr->names[1], "b");
	trigger_free(tr);
}

static void refused(const char *text, const char *message_part)
{
	struct trigger *tr = NULL;

	if (trigger_parse(text, &tr) != -EINVAL)
		fail_msg("'%s' was not refused", text);
	assert_null(tr);
	if (!strstr(last_error(), message_part))
		fail_msg("'%s': message '%s' lacks '%s'", text, last_error(), message_part);
}

static void malformed_rules_are_refused_saying_where(void **state)
{
	char big[TRIGGER_MAX_LEN + 2], deep[256] = "", many[8192] = "";

	refused("", "empty");
	refused("all_succeded", "did you mean 'all_succeeded'");
	refused("any-failed", "did you mean 'any_failed'");
	refused("any_suceeded", "did you mean 'any_succeeded'");
	refused("whenever", "unknown rule 'whenever'");
	refused("a.", "unknown state");
	refused("a.ok", "at character 3");
	refused(".succeeded", "name is missing");
	refused("a.succeeded &&", "at the end");
	refused("a.succeeded & b.failed", "expected '&&' at character 13");
	refused("a.succeeded | b.failed", "expected '||'");
	refused("a.succeeded b.failed", "expected '&&', '||' or the end at character 13");
	refused("(a.succeeded", "expected ')'");
	refused("a.succeeded)", "unbalanced ')'");
	refused("()", "expected a dependency's NAME.state");
	refused("!", "at the end");
	refused("&& a.done", "at character 1");
	refused("a.done || || b.done", "at character 11");
	refused("a.done;", "character 7 (';')");
	refused("a.done\n", "character 7");
	refused("a b.done", "expected NAME.succeeded");
	refused("é.done", "at character 1");
	refused("a.SUCCEEDED", "unknown state");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	refused(big, "longer than");
	for (int i = 0; i < TRIGGER_MAX_DEPTH + 1; i++)
		strcat(deep, "(");
	strcat(deep, "a.done");
	refused(deep, "nested too deeply");
	memset(deep, '!', 40);
	strcpy(deep + 40, "a.done");
	refused(deep, "nested too deeply");
	for (int i = 0; i <= TRIGGER_MAX_OPERANDS; i++) {
		char op[32];

		snprintf(op, sizeof(op), "%sn%d.done", i ? "||" : "", i);
		strcat(many, op);
	}
	refused(many, "too many");
	/* a name longer than a task name can be */
	memset(big, 'x', 200);
	strcpy(big + 200, ".done");
	refused(big, "name too long");
}

static void depth_at_the_bound_is_accepted(void **state)
{
	char deep[256] = "";
	struct trigger *tr = NULL;

	for (int i = 0; i < TRIGGER_MAX_DEPTH; i++)
		strcat(deep, "(");
	strcat(deep, "a.done");
	for (int i = 0; i < TRIGGER_MAX_DEPTH; i++)
		strcat(deep, ")");
	assert_int_equal(trigger_parse(deep, &tr), 0);
	trigger_free(tr);
}

/* A batch from JSON text. */
static void batch(struct project *p, const char *json)
{
	json_object *list = json_tokener_parse(json);
	struct task **made = NULL;

	assert_non_null(list);
	assert_int_equal(task_create_batch(p, list, true, &made), 0);
	free(made);
	json_object_put(list);
}

static void the_engine_judges_rules_and_keeps_them_across_a_reload(void **state)
{
	struct project *p = mkproject("rules", true, 5);

	batch(p, "[{\"name\":\"a\",\"title\":\"a\",\"command\":\"true\"},"
		 "{\"name\":\"b\",\"title\":\"b\",\"command\":\"true\"},"
		 "{\"name\":\"onfail\",\"title\":\"f\",\"command\":\"true\",\"depends_on\":[\"a\"],\"trigger\":\"any_failed\"},"
		 "{\"name\":\"after\",\"title\":\"x\",\"command\":\"true\",\"depends_on\":[\"onfail\"]},"
		 "{\"name\":\"expr\",\"title\":\"e\",\"command\":\"true\",\"depends_on\":[\"a\",\"b\"],"
		 "\"trigger\":\"a.succeeded && !b.succeeded\"},"
		 "{\"name\":\"fin\",\"title\":\"z\",\"command\":\"true\",\"finally\":true}]");
	assert_string_equal(S(p, "fin"), "waiting");
	assert_int_equal(task_n_deps(T(p, "fin")), 5);
	flush();
	fake_exit(T(p, "a"), 0);
	/* a completed: onfail cannot hold any more, and after follows it */
	assert_string_equal(S(p, "onfail"), "skipped");
	assert_string_equal(S(p, "after"), "skipped");
	assert_string_equal(S(p, "expr"), "waiting");
	fake_exit(T(p, "b"), 3);
	assert_string_equal(S(p, "b"), "failed");
	assert_int_equal(task_verdict(T(p, "expr")), ST_READY);      /* (dispatched already) */
	assert_true(T(p, "expr")->status != ST_WAITING && T(p, "expr")->status != ST_SKIPPED);
	assert_string_equal(S(p, "fin"), "waiting");
	unit_reopen();
	p = project_find("rules");
	assert_string_equal(S(p, "onfail"), "skipped");
	assert_string_equal(S(p, "after"), "skipped");
	assert_non_null(ext_of(T(p, "expr"))->trigger);
	assert_string_equal(ext_of(T(p, "expr"))->trigger->text, "a.succeeded && !b.succeeded");
	assert_true(T(p, "fin")->finally);
	assert_int_equal(ext_of(T(p, "fin"))->trigger->kind, TRIGGER_ALL_DONE);
	assert_null(ext_of(T(p, "a"))->trigger);
	assert_int_equal(p->counts[ST_SKIPPED], 2);
	flush();
	fake_exit(T(p, "expr"), 0);
	assert_string_equal(S(p, "fin"), "ready");
	/* the failed one again: what its failure decided is judged again */
	assert_int_equal(task_retry(T(p, "b")), 0);
	assert_string_equal(S(p, "fin"), "waiting");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(named_rules_are_read_as_such),
		cmocka_unit_test(expressions_evaluate_with_precedence_and_parentheses),
		cmocka_unit_test(operands_are_named_once),
		cmocka_unit_test(malformed_rules_are_refused_saying_where),
		cmocka_unit_test(depth_at_the_bound_is_accepted),
		cmocka_unit_test_setup_teardown(the_engine_judges_rules_and_keeps_them_across_a_reload,
						unit_fixture_setup, unit_fixture_teardown),
	};

	return cmocka_run_group_tests_name("trigger", tests, NULL, NULL);
}
