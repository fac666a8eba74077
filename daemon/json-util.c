/*
 * json-util.c - reading typed arguments out of a request, and small json-c
 * helpers.  A wrong type is a bad_request with the argument's name.
 */
#include <math.h>
#include <string.h>

#include "closest.h"
#include "dagd.h"

static int get(json_object *args, const char *key, json_object **ret)
{
	json_object *v;

	if (!args || !json_object_object_get_ex(args, key, &v) || !v)
		return -ENOENT;
	*ret = v;
	return 0;
}

int arg_required(int r, const char *key)
{
	if (r == -ENOENT)
		return errorf(-EINVAL, "missing argument '%s'", key);
	return r;
}

int arg_string(json_object *args, const char *key, const char **ret)
{
	json_object *v;

	if (get(args, key, &v) < 0)
		return -ENOENT;
	if (!json_object_is_type(v, json_type_string))
		return errorf(-EINVAL, "argument '%s' must be a string", key);
	*ret = json_object_get_string(v);
	return 0;
}

int arg_bool(json_object *args, const char *key, bool *ret)
{
	json_object *v;

	if (get(args, key, &v) < 0)
		return -ENOENT;
	if (!json_object_is_type(v, json_type_boolean))
		return errorf(-EINVAL, "argument '%s' must be true or false", key);
	*ret = json_object_get_boolean(v);
	return 0;
}

int arg_int(json_object *args, const char *key, int64_t min, int64_t max, int64_t *ret)
{
	json_object *v;
	int64_t i;

	if (get(args, key, &v) < 0)
		return -ENOENT;
	if (!json_object_is_type(v, json_type_int))
		return errorf(-EINVAL, "argument '%s' must be an integer", key);
	errno = 0;
	i = json_object_get_int64(v);
	if (errno != 0 || i < min || i > max)
		return errorf(-EINVAL, "argument '%s' must be between %lld and %lld", key,
			    (long long) min, (long long) max);
	*ret = i;
	return 0;
}

/* A duration in seconds, fractions allowed, at most a year. */
int arg_seconds(json_object *args, const char *key, uint64_t *ret_usec)
{
	json_object *v;
	double d;

	if (get(args, key, &v) < 0)
		return -ENOENT;
	if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
		return errorf(-EINVAL, "argument '%s' must be a number of seconds", key);
	d = json_object_get_double(v);
	if (!isfinite(d) || d < 0 || d > 366.0 * 86400)
		return errorf(-EINVAL, "argument '%s' must be between 0 and 31622400 seconds", key);
	*ret_usec = (uint64_t) llround(d * 1e6);
	return 0;
}

int arg_object(json_object *args, const char *key, json_object **ret)
{
	json_object *v;

	if (get(args, key, &v) < 0)
		return -ENOENT;
	if (!json_object_is_type(v, json_type_object))
		return errorf(-EINVAL, "argument '%s' must be an object", key);
	*ret = v;
	return 0;
}

int arg_array(json_object *args, const char *key, json_object **ret)
{
	json_object *v;

	if (get(args, key, &v) < 0)
		return -ENOENT;
	if (!json_object_is_type(v, json_type_array))
		return errorf(-EINVAL, "argument '%s' must be an array", key);
	*ret = v;
	return 0;
}

json_object *json_time(int64_t usec)
{
	char buf[32];

	if (usec <= 0)
		return NULL;
	return json_object_new_string(format_time(usec, buf));
}

json_object *json_parse(const char *text)
{
	static json_tokener *tok;       /* one, reset for each text: a new one is a 4 KiB allocation */
	enum json_tokener_error e;
	json_object *o;

	if (!text)
		return NULL;
	if (text[0] == '"') {
		/* a string with nothing to unescape (a task's command, read
		 * at each start): what the parser would make of it, without
		 * its cost (a locale switched at every parse) */
		size_t n = strcspn(text + 1, "\"\\\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e"
				   "\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f");

		if (text[1 + n] == '"' && text[2 + n] == '\0')
			return json_object_new_string_len(text + 1, (int) n);
	}
	if (!tok && !(tok = json_tokener_new()))
		abort();
	json_tokener_reset(tok);
	o = json_tokener_parse_ex(tok, text, -1);
	e = json_tokener_get_error(tok);
	if (e != json_tokener_success) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

const char *json_text(json_object *o)
{
	return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

/* Keyset pagination's arguments: "after", the id ("t-7", "p-2") a page
 * starts after (its kind given by prefix), and "limit", at most how many a
 * page holds (0 when not given: all of them). */
int arg_page(json_object *args, char prefix, int64_t *ret_after, size_t *ret_limit)
{
	const char *s;
	char *end;
	int64_t limit = 0;
	long long n;
	int r;

	*ret_after = 0;
	r = arg_string(args, "after", &s);
	if (r == 0) {
		errno = 0;
		n = s[0] == prefix && s[1] == '-' && s[2] >= '0' && s[2] <= '9' ? strtoll(s + 2, &end, 10) : -1;
		if (n < 0 || errno != 0 || *end)
			return errorf(-EINVAL, "argument 'after' must be an id like '%c-7'", prefix);
		*ret_after = n;
	} else if (r != -ENOENT)
		return r;
	r = arg_int(args, "limit", 1, 100000, &limit);
	if (r < 0 && r != -ENOENT)
		return r;
	*ret_limit = (size_t) limit;
	return 0;
}

int args_check(json_object *o, const char *const *known, const char *what)
{
	json_object_object_foreach(o, key, val) {
		const char *best = NULL;
		size_t i;

		(void) val;
		for (i = 0; known && known[i] && strcmp(known[i], key) != 0; i++)
			;
		if (known && known[i])
			continue;
		best = closest_name(key, known);
		if (best)
			return errorf(-EINVAL, "%s: unknown argument '%.*s'; did you mean '%s'?", what,
				      utf8_prefix(key, 64), key, best);
		return errorf(-EINVAL, "%s: unknown argument '%.*s'", what, utf8_prefix(key, 64), key);
	}
	return 0;
}
