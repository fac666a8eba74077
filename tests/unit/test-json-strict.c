/*
 * test-json-strict.c - what the daemon reads as JSON: RFC 8259 and nothing
 * more (each refusal saying where), and the UTF-8 helpers that keep what it
 * writes valid.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

static void refused(const char *text, const char *why)
{
	json_object *o = NULL;

	if (json_parse_strict(text, strlen(text), &o) != -EINVAL) {
		print_error("accepted: %s\n", text);
		fail();
	}
	assert_null(o);
	if (!strstr(last_error(), why)) {
		print_error("%s: '%s' does not say '%s'\n", text, last_error(), why);
		fail();
	}
}

static json_object *accepted(const char *text)
{
	json_object *o = NULL;

	if (json_parse_strict(text, strlen(text), &o) < 0) {
		print_error("refused: %s: %s\n", text, last_error());
		fail();
	}
	return o;
}

static void what_rfc_8259_allows_is_read_as_written(void **state)
{
	static const char *const ok[] = {
		"{}", "[]", "0", "-0", "1.5", "-1e-3", "2E+8", "true", "false", "null", "\"\"",
		" \t\r{ \"a\" : [ 1 , 2 ] , \"b\" : { } } ", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
		"\"\\u00e9\\ud83d\\ude00\"", "\"caf\xc3\xa9 \xf0\x9f\x98\x80 \xef\xbf\xbd\"",
		"9223372036854775807", "-9223372036854775808", "1e308", "[[[[[[[[[[1]]]]]]]]]]",
		"{\"a\":1,\"A\":2,\"a \":3}",
	};
	json_object *o;

	for (size_t i = 0; i < ELEMENTSOF(ok); i++)
		json_object_put(accepted(ok[i]));
	o = accepted("{\"k\":\"a\\u00e9\\ud83d\\ude00\",\"n\":-9223372036854775808}");
	assert_string_equal(json_object_get_string(json_object_object_get(o, "k")), "a\xc3\xa9\xf0\x9f\x98\x80");
	assert_true(json_object_get_int64(json_object_object_get(o, "n")) == INT64_MIN);
	json_object_put(o);
}

static void what_it_does_not_is_refused_saying_why(void **state)
{
	static const char *const bad[][2] = {
		{ "{'a':1}", "key must be a string" },
		{ "{\"a\":1,}", "key must be a string" },
		{ "[1,]", "not a JSON value" },
		{ "{\"a\":1 /* c */}", "expected ','" },
		{ "[1] // c", "trailing data" },
		{ "01", "leading zeros" },
		{ "-", "needs a digit" },
		{ ".5", "not a JSON value" },
		{ "1.", "decimal point" },
		{ "1e", "exponent" },
		{ "+1", "not a JSON value" },
		{ "NaN", "not a JSON value" },
		{ "Infinity", "not a JSON value" },
		{ "1e400", "out of range" },
		{ "9223372036854775808", "64 bits" },
		{ "-9223372036854775809", "64 bits" },
		{ "123456789012345678901234567890", "64 bits" },
		{ "\"a\tb\"", "control character" },
		{ "\"a\nb\"", "control character" },
		{ "\"\\x41\"", "unknown escape" },
		{ "\"\\u12\"", "four hex digits" },
		{ "\"\\u0000\"", "\\u0000" },
		{ "\"\\ud800\"", "unpaired surrogate" },
		{ "\"\\ud800\\u0041\"", "unpaired surrogate" },
		{ "\"\\udc00\"", "unpaired surrogate" },
		{ "\"\xff\"", "UTF-8" },
		{ "\"\xc0\xaf\"", "UTF-8" },
		{ "\"\xe0\x80\xaf\"", "UTF-8" },
		{ "\"\xed\xa0\x80\"", "UTF-8" },
		{ "\"\xf4\x90\x80\x80\"", "UTF-8" },
		{ "\"\xe2\x82\"", "UTF-8" },
		{ "\"abc", "unterminated" },
		{ "tru", "not a JSON value" },
		{ "{\"a\":1,\"a\":2}", "same key twice" },
		{ "{\"x\":{\"a\":1,\"\\u0061\":2}}", "same key twice" },
		{ "", "end of input" },
		{ "{\"a\" 1}", "expected ':'" },
	};

	for (size_t i = 0; i < ELEMENTSOF(bad); i++)
		refused(bad[i][0], bad[i][1]);
}

static void nesting_is_bounded(void **state)
{
	char deep[2 * (JSON_DEPTH + 1) + 1];

	memset(deep, '[', JSON_DEPTH);
	memset(deep + JSON_DEPTH, ']', JSON_DEPTH);
	deep[2 * JSON_DEPTH] = 0;
	json_object_put(accepted(deep));
	memset(deep, '[', JSON_DEPTH + 1);
	memset(deep + JSON_DEPTH + 1, ']', JSON_DEPTH + 1);
	deep[2 * JSON_DEPTH + 2] = 0;
	refused(deep, "nested too deeply");
}

static void a_nul_byte_in_the_text_is_refused(void **state)
{
	json_object *o = NULL;

	assert_int_equal(json_parse_strict("\"a\0b\"", 5, &o), -EINVAL);
	assert_int_equal(json_parse_strict("{}\0", 3, &o), -EINVAL);
	assert_null(o);
}

/* A request's args.tasks left as text: the tree has an empty array there,
 * each task's place is given, and a duplicate key is refused wherever it
 * is, in a task or around the array. */
static void a_batch_can_be_left_as_text(void **state)
{
	const char *line = "{\"cmd\":\"task.add_batch\",\"args\":{\"project\":\"p\",\"tasks\":"
			   "[ {\"name\":\"a\",\"depends_on\":[\"b\"]} ,{\"name\":\"b\"},7]},\"id\":{\"x\":1}}";
	struct json_span *spans = NULL;
	json_object *o = NULL, *t, *args;
	size_t n = 0;

	assert_int_equal(json_parse_strict_lazy(line, strlen(line), "tasks", &o, &spans, &n), 0);
	assert_int_equal(n, 3);
	args = json_object_object_get(o, "args");
	assert_string_equal(json_object_get_string(json_object_object_get(args, "project")), "p");
	assert_int_equal(json_object_array_length(json_object_object_get(args, "tasks")), 0);
	assert_int_equal(json_parse_strict(line + spans[0].off, spans[0].len, &t), 0);
	assert_string_equal(json_object_get_string(json_object_object_get(t, "name")), "a");
	json_object_put(t);
	assert_true(strncmp(line + spans[1].off, "{\"name\":\"b\"}", spans[1].len) == 0);
	assert_true(strncmp(line + spans[2].off, "7", spans[2].len) == 0);
	json_object_put(o);
	free(spans);

	/* no such array: the whole tree, no places */
	line = "{\"cmd\":\"x\",\"args\":{\"tasks\":\"no\"},\"tasks\":[1]}";
	assert_int_equal(json_parse_strict_lazy(line, strlen(line), "tasks", &o, &spans, &n), 0);
	assert_null(spans);
	assert_int_equal(n, 0);
	assert_string_equal(json_object_get_string(json_object_object_get(json_object_object_get(o, "args"), "tasks")), "no");
	json_object_put(o);

	/* the same key twice: in a task (as it is parsed), around the array, or the array itself */
	line = "{\"args\":{\"tasks\":[{\"a\":1,\"a\":2}]}}";
	assert_int_equal(json_parse_strict_lazy(line, strlen(line), "tasks", &o, &spans, &n), 0);
	assert_int_equal(json_parse_strict(line + spans[0].off, spans[0].len, &t), -EINVAL);
	assert_non_null(strstr(last_error(), "same key twice"));
	json_object_put(o);
	free(spans);
	for (size_t i = 0; i < 2; i++) {
		line = i ? "{\"args\":{\"tasks\":[{}],\"tasks\":[{}]}}" : "{\"args\":{\"p\":1,\"tasks\":[{\"b\":1}],\"p\":2}}";
		o = NULL;
		assert_int_equal(json_parse_strict_lazy(line, strlen(line), "tasks", &o, &spans, &n), -EINVAL);
		assert_null(o);
		assert_non_null(strstr(last_error(), "same key twice"));
	}
	/* and what is not JSON anywhere in the line, as json_parse_strict() says */
	line = "{\"args\":{\"tasks\":[{\"a\":01}]}}";
	assert_int_equal(json_parse_strict_lazy(line, strlen(line), "tasks", &o, &spans, &n), -EINVAL);
	assert_non_null(strstr(last_error(), "leading zeros"));
}

static void utf8_helpers_keep_output_valid(void **state)
{
	char msg[16];
	size_t n;
	char *s;

	s = utf8_sanitize("a\xff" "b\xe2\x82", 5, &n);
	assert_string_equal(s, "a\xef\xbf\xbd" "b\xef\xbf\xbd\xef\xbf\xbd");
	assert_int_equal(n, strlen(s));
	free(s);
	assert_true(utf8_valid("caf\xc3\xa9", 5));
	assert_false(utf8_valid("caf\xc3", 4));
	assert_int_equal(utf8_complete("caf\xc3", 4), 3);
	assert_int_equal(utf8_complete("caf\xc3\xa9", 5), 5);
	assert_int_equal(utf8_complete("\xf0\x9f\x98", 3), 0);
	assert_int_equal(utf8_prefix("\xc3\xa9\xc3\xa9", 3), 2);
	strcpy(msg, "ab\xe2\x82");
	utf8_trim(msg);
	assert_string_equal(msg, "ab");
	strcpy(msg, "ab\xe2\x82\xac");
	utf8_trim(msg);
	assert_string_equal(msg, "ab\xe2\x82\xac");

	/* a line: kept with its length, or made valid with the new one */
	s = strdup("{\"a\":\"caf\xc3\xa9\"}\n");
	n = strlen(s);
	assert_ptr_equal(utf8_valid_line(s, &n), s);
	assert_int_equal(n, strlen(s));
	free(s);
	s = strdup("{\"a\":\"\xff\"}\n");
	n = strlen(s);
	s = utf8_valid_line(s, &n);
	assert_string_equal(s, "{\"a\":\"\xef\xbf\xbd\"}\n");
	assert_int_equal(n, strlen(s));
	free(s);
}

/* A random plain JSON text (with random spaces) into buf. */
static void random_plain(char *buf, size_t cap, size_t *len, unsigned depth, unsigned *seed)
{
	static const char *const words[] = { "true", "false", "null", "0", "-7", "123456789012345678",
					     "\"\"", "\"caf\xc3\xa9\"", "\"a b\"", "\"\xf0\x9f\x98\x80\"" };
	unsigned k = (unsigned) rand_r(seed) % (depth < 4 ? 12 : 10);

#define PUT(s) do { size_t n_ = strlen(s); if (*len + n_ < cap) { memcpy(buf + *len, s, n_); *len += n_; } } while (0)
	if (rand_r(seed) % 3 == 0)
		PUT(" \n");
	if (k < 10)
		PUT(words[k]);
	else {
		unsigned n = (unsigned) rand_r(seed) % 4;

		PUT(k == 10 ? "{" : "[");
		for (unsigned i = 0; i < n; i++) {
			char key[16];

			if (i)
				PUT(",");
			if (k == 10) {
				snprintf(key, sizeof(key), "\"k%u\" :", i);
				PUT(key);
			}
			random_plain(buf, cap, len, depth + 1, seed);
		}
		PUT(k == 10 ? "}" : "]");
	}
	if (rand_r(seed) % 3 == 0)
		PUT("\t");
#undef PUT
}

/* What json_build_plain() makes of a text, json-c's tokener makes too; a
 * text it does not take (an escape, a fraction, a long number) is left to
 * the tokener. */
static void plain_texts_are_built_as_the_tokener_reads_them(void **state)
{
	static const char *const left[] = {
		"\"a\\nb\"", "1.5", "1e3", "-1E-2", "9223372036854775807", "{\"a\\u00e9\":1}", "[1,\"\\\"\"]",
	};
	unsigned seed = 7;
	char buf[8192];

	for (size_t i = 0; i < ELEMENTSOF(left); i++) {
		json_object *o = NULL;

		assert_false(json_build_plain(left[i], strlen(left[i]), &o));
	}
	for (int i = 0; i < 3000; i++) {
		size_t len = 0;
		json_object *built = NULL, *read;

		random_plain(buf, sizeof(buf) - 1, &len, 0, &seed);
		buf[len] = '\0';
		read = json_tokener_parse(buf);
		if (!json_build_plain(buf, len, &built)) {
			print_error("not built: %s\n", buf);
			fail();
		}
		if (!json_object_equal(built, read) ||
		    strcmp(json_object_to_json_string(built), json_object_to_json_string(read)) != 0) {
			print_error("%s: built %s, read %s\n", buf, json_object_to_json_string(built),
				    json_object_to_json_string(read));
			fail();
		}
		json_object_put(built);
		json_object_put(read);
	}
}

/* json_parse() (stored texts, a sandbox's result file) takes a plain string
 * without the tokener: what it makes of any text is what the tokener
 * makes, or NULL where the tokener fails. */
static void a_stored_string_is_parsed_as_the_tokener_parses_it(void **state)
{
	static const char *const texts[] = {
		"\"true\"", "\"\"", "\"echo hi; exit 3\"", "\"caf\xc3\xa9\"", "\"\xff\xfe bytes\"",
		"\"a\\nb\"", "\"a\\\"b\"", "\"tab\there\"", "\"nl\nhere\"", "\"x\" ", " \"x\"",
		"\"x\"y", "\"x\"\"y\"", "\"unterminated", "\"", "\"\x7f\"", "[\"a\"]", "\"a\\u00e9\"",
	};

	for (size_t i = 0; i < ELEMENTSOF(texts); i++) {
		json_object *mine = json_parse(texts[i]);
		struct json_tokener *tok = json_tokener_new();
		json_object *theirs = json_tokener_parse_ex(tok, texts[i], -1);

		if (json_tokener_get_error(tok) != json_tokener_success) {
			json_object_put(theirs);
			theirs = NULL;
		}
		if (!json_object_equal(mine, theirs)) {
			print_error("%s: json_parse %s, tokener %s\n", texts[i], json_object_to_json_string(mine),
				    json_object_to_json_string(theirs));
			fail();
		}
		json_object_put(mine);
		json_object_put(theirs);
		json_tokener_free(tok);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(what_rfc_8259_allows_is_read_as_written),
		cmocka_unit_test(what_it_does_not_is_refused_saying_why),
		cmocka_unit_test(nesting_is_bounded),
		cmocka_unit_test(a_nul_byte_in_the_text_is_refused),
		cmocka_unit_test(utf8_helpers_keep_output_valid),
		cmocka_unit_test(a_batch_can_be_left_as_text),
		cmocka_unit_test(plain_texts_are_built_as_the_tokener_reads_them),
		cmocka_unit_test(a_stored_string_is_parsed_as_the_tokener_parses_it),
	};

	return cmocka_run_group_tests_name("json-strict", tests, NULL, NULL);
}
