/*
 * test-template.c - the templates of a task's command and env: what is
 * refused when a task is added, what each one becomes when it is dispatched,
 * and the quoting that keeps a value from ever reaching a shell unquoted.
 */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "unit.h"
#include "template.h"

static const char *INPUTS = "{\"a\": {\"x\": {\"y\": \"hi there\"}, \"n\": 3, \"l\": [10, 20]},"
			    " \"t-7\": null, \"v1.2\": {\"k\": \"dotted\"}, \"v1\": {\"2\": \"shorter\"},"
			    " \"s\": \"it's \\\"$(x)\\\" `y` \\\\ $HOME\"}";

static char *render(const char *s, const char *item, bool shell)
{
	json_object *in = json_tokener_parse(INPUTS), *it = item ? json_tokener_parse(item) : NULL;
	char *out = NULL;
	int r = template_render(s, in, it, shell, &out);

	json_object_put(in);
	json_object_put(it);
	if (r < 0) {
		print_error("render '%s': %s\n", s, last_error());
		fail();
	}
	return out;
}

static void renders(const char *s, const char *item, const char *want)
{
	char *out = render(s, item, false);

	if (strcmp(out, want) != 0) {
		print_error("'%s' became '%s', not '%s'\n", s, out, want);
		fail();
	}
	free(out);
}

static void missing(const char *s, const char *why)
{
	json_object *in = json_tokener_parse(INPUTS);
	char *out = NULL;

	if (template_render(s, in, NULL, false, &out) != -ENOENT) {
		print_error("'%s' rendered as '%s'\n", s, out ? out : "(null)");
		fail();
	}
	assert_null(out);
	if (!strstr(last_error(), why)) {
		print_error("'%s': '%s' does not say '%s'\n", s, last_error(), why);
		fail();
	}
	json_object_put(in);
}

static void refused(const char *s, bool item_allowed, const char *why)
{
	if (template_check(s, item_allowed) != -EINVAL) {
		print_error("accepted: '%s'\n", s);
		fail();
	}
	if (!strstr(last_error(), why)) {
		print_error("'%s': '%s' does not say '%s'\n", s, last_error(), why);
		fail();
	}
}

static void values_are_put_in_strings_as_text_the_rest_as_json(void **state)
{
	renders("{{inputs.a.x.y}}", NULL, "hi there");
	renders("n={{ inputs.a.n }};", NULL, "n=3;");
	renders("{{inputs.a.x}}", NULL, "{\"y\":\"hi there\"}");
	renders("{{inputs.a.l.1}}/{{inputs.a.l}}", NULL, "20/[10,20]");
	renders("{{inputs.t-7}}", NULL, "null");
	renders("{{item}} {{item.f}}", "{\"f\": \"a.png\"}", "{\"f\":\"a.png\"} a.png");
	renders("{{item}}", "\"plain\"", "plain");
	renders("no templates {{.ID}} {{ }} }}", NULL, "no templates {{.ID}} {{ }} }}");
}

static void the_longest_dependency_name_that_fits_wins(void **state)
{
	renders("{{inputs.v1.2.k}}", NULL, "dotted");
	renders("{{inputs.v1.2}}", NULL, "{\"k\":\"dotted\"}");
}

static void what_is_not_there_is_named(void **state)
{
	missing("{{inputs.zz}}", "no dependency named 'zz'");
	missing("{{inputs.a.nope}}", "no field 'nope'");
	missing("{{inputs.a.l.5}}", "no index '5'");
	missing("{{inputs.a.l.x}}", "no index 'x'");
	missing("{{inputs.a.n.deeper}}", "no field 'deeper'");
	missing("{{inputs.t-7.x}}", "no field 'x' in a null");
}

static void malformed_templates_are_refused(void **state)
{
	assert_int_equal(template_check("echo {{inputs.a.b}} {{item.c}} {{.ID}}", true), 0);
	refused("echo {{inputs.a", false, "not closed");
	refused("{{item", true, "not closed");
	refused("{{foo.bar}}", false, "unknown root 'foo'");
	refused("{{inputs}}", false, "names no dependency");
	refused("{{inputs.}}", false, "names no dependency");
	refused("{{inputs.a..b}}", false, "malformed");
	refused("{{inputs.a.b.}}", false, "malformed");
	refused("{{inputs.a b}}", false, "malformed");
	refused("{{item}}", false, "map_over");
	refused("{{itemx}}", true, "unknown root");
	refused("{{item.}}", true, "malformed");
}

/* What sh prints for `printf %s <rendered>`, compared with the value. */
static void shell_sees(const char *tmpl, const char *want)
{
	char *cmd = render(tmpl, NULL, true), buf[4096];
	FILE *f;
	size_t n;
	int status;

	f = popen(cmd, "r");
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	status = pclose(f);
	if (strcmp(buf, want) != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		print_error("sh -c \"%s\" printed '%s', not '%s'\n", cmd, buf, want);
		fail();
	}
	free(cmd);
}

static void a_shell_command_gets_each_value_quoted_for_where_it_stands(void **state)
{
	static const char value[] = "it's \"$(x)\" `y` \\ $HOME";

	shell_sees("printf %s {{inputs.s}}", value);
	shell_sees("printf %s '{{inputs.s}}'", value);
	shell_sees("printf %s \"{{inputs.s}}\"", value);
	shell_sees("printf %s x{{inputs.s}}y", "xit's \"$(x)\" `y` \\ $HOMEy");
	shell_sees("printf %s \"a'b\"{{inputs.a.x.y}}'c\"d'", "a'bhi therec\"d");
	shell_sees("printf %s \\'{{inputs.a.n}}", "'3");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(values_are_put_in_strings_as_text_the_rest_as_json),
		cmocka_unit_test(the_longest_dependency_name_that_fits_wins),
		cmocka_unit_test(what_is_not_there_is_named),
		cmocka_unit_test(malformed_templates_are_refused),
		cmocka_unit_test(a_shell_command_gets_each_value_quoted_for_where_it_stands),
	};

	return cmocka_run_group_tests_name("template", tests, NULL, NULL);
}
