/*
 * test-jw.c - the JSON writer's short cuts (jw.c, format_time()) write what
 * the long way did: a key in one copy, a whole number without printf, a
 * time without gmtime_r(), each held to the library's own answer.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "unit.h"
#include "jw.h"

/* Keys with nothing to escape go the short way, the others the long; both
 * come out as json-c writes them, commas in their places. */
static void keys_come_out_as_json_c_writes_them(void **state)
{
	static const char *const keys[] = { "id", "", "a\"b", "tab\there", "back\\slash", "caf\xc3\xa9", "\x01" };
	json_object *o = json_object_new_object();
	struct jw w = { 0 };

	jw_open(&w, '{');
	for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
		jw_key(&w, keys[i]);
		jw_int(&w, (int64_t) i);
		json_object_object_add(o, keys[i], json_object_new_int((int) i));
	}
	jw_key(&w, "nested");
	jw_open(&w, '{');
	jw_key(&w, "x");
	jw_bool(&w, true);
	jw_close(&w, '}');
	jw_close(&w, '}');
	json_object_object_add(o, "nested", json_tokener_parse("{\"x\":true}"));
	assert_string_equal(w.buf, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	assert_int_equal(w.len, strlen(w.buf));
	free(w.buf);
	json_object_put(o);
}

/* format_id() writes what snprintf("%s%lld") does, at the ends of int64_t
 * and at every power of ten, with and without a prefix */
static void ids_come_out_as_printf_writes_them(void **state)
{
	static const char *const prefixes[] = { "", "t-", "/logs/t-" };
	int64_t values[64];
	size_t n = 0;

	values[n++] = 0;
	values[n++] = INT64_MAX;
	values[n++] = INT64_MIN;
	for (int64_t p = 1; p <= INT64_MAX / 10; p *= 10) {
		values[n++] = p - 1;
		values[n++] = p;
		values[n++] = -p;
	}
	for (size_t k = 0; k < ELEMENTSOF(prefixes); k++)
		for (size_t i = 0; i < n; i++) {
			char got[48], want[48];
			size_t len = format_id(got, prefixes[k], values[i]);

			snprintf(want, sizeof(want), "%s%lld", prefixes[k], (long long) values[i]);
			assert_string_equal(got, want);
			assert_int_equal(len, strlen(want));
		}
}

/* whole numbers the short way, the rest by "%.17g": as before, ".0" kept */
static void doubles_come_out_as_printf_writes_them(void **state)
{
	static const double values[] = { 0, -0.0, 1, -1, 30, 2.5, 0.1, 1e-7, 999999999999999.0, 1e15, -1e15,
					 1e300, 123456789.000001, (double) (1LL << 52), -86400 };

	for (size_t i = 0; i < ELEMENTSOF(values); i++) {
		struct jw w = { 0 };
		char want[48];
		int n = snprintf(want, sizeof(want), "%.17g", values[i]);

		if (!strpbrk(want, ".eEni"))
			snprintf(want + n, sizeof(want) - (size_t) n, ".0");
		jw_double(&w, values[i]);
		assert_string_equal(w.buf, want);
		free(w.buf);
	}
}

static void expect_time(int64_t usec)
{
	char got[32], want[48];
	time_t sec = usec / 1000000;
	struct tm tm;

	gmtime_r(&sec, &tm);
	strftime(want, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(want + strlen(want), 16, ".%06dZ", (int) (usec % 1000000));
	format_time(usec, got);
	if (strcmp(got, want) != 0) {
		print_error("%lld: %s, gmtime_r says %s\n", (long long) usec, got, want);
		fail();
	}
}

/* Every day's first and last microsecond from 1970 to 2400 (leap years,
 * centuries, 2000 and 2100 among them), and a million random times up to
 * 9999, as gmtime_r() and strftime() write them. */
static void times_come_out_as_gmtime_writes_them(void **state)
{
	struct jw w = { 0 };

	for (int64_t day = 0; day < 157000; day++) {
		expect_time(day * 86400000000LL);
		expect_time(day * 86400000000LL + 86399999999LL);
	}
	srandom(7);
	for (int i = 0; i < 1000000; i++)
		expect_time((int64_t) (((uint64_t) random() << 31 | (uint64_t) random()) % 253402300800000000ULL));
	expect_time(253402300799999999LL);   /* 9999-12-31T23:59:59.999999Z */
	jw_time(&w, 951782400000001LL);
	assert_string_equal(w.buf, "\"2000-02-29T00:00:00.000001Z\"");
	jw_time(&w, 0);
	assert_string_equal(w.buf, "\"2000-02-29T00:00:00.000001Z\",null");
	free(w.buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(keys_come_out_as_json_c_writes_them),
		cmocka_unit_test(ids_come_out_as_printf_writes_them),
		cmocka_unit_test(doubles_come_out_as_printf_writes_them),
		cmocka_unit_test(times_come_out_as_gmtime_writes_them),
	};

	return cmocka_run_group_tests_name("jw", tests, NULL, NULL);
}
