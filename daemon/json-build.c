/*
 * json-build.c - json-c's tree of a text json-strict.c has checked, made
 * directly when the text is plain (strings without an escape, integers of
 * up to 18 digits, true, false, null, and arrays and objects of them), as
 * a batch's tasks are: json-c's tokener reads a character at a time through
 * its state machine, at twice the cost.  A text with anything else (an
 * escape, a fraction, an exponent, a long key) is left to the tokener.
 *
 * The text is known to be valid JSON (json-strict.c scanned it): what is
 * looked at here is only which of its forms each value takes.
 */
#include <stdlib.h>
#include <string.h>

#include "dagd.h"

#define KEY_MAX 256

struct build {
	const char *p, *end;
};

static void ws(struct build *b)
{
	while (b->p < b->end && (*b->p == ' ' || *b->p == '\t' || *b->p == '\n' || *b->p == '\r'))
		b->p++;
}

/* The string at b->p (its opening quote): its content and length, b->p
 * past it; NULL if it has an escape. */
static const char *string(struct build *b, size_t *ret_len)
{
	const char *s = b->p + 1, *q = s;

	while (q < b->end && *q != '"') {
		if (*q == '\\')
			return NULL;
		q++;
	}
	if (q == b->end)
		return NULL;
	*ret_len = (size_t) (q - s);
	b->p = q + 1;
	return s;
}

static bool number(struct build *b, json_object **ret)
{
	const char *s = b->p;
	int64_t v = 0;
	bool neg = *s == '-';
	size_t digits = 0;

	if (neg)
		s++;
	for (; s < b->end && *s >= '0' && *s <= '9'; s++, digits++)
		if (digits < 18)
			v = v * 10 + (*s - '0');
	if (digits == 0 || digits > 18 || (s < b->end && (*s == '.' || *s == 'e' || *s == 'E')))
		return false;
	b->p = s;
	*ret = json_object_new_int64(neg ? -v : v);
	return true;
}

static bool word(struct build *b, const char *w, size_t n)
{
	if ((size_t) (b->end - b->p) < n || memcmp(b->p, w, n) != 0)
		return false;
	b->p += n;
	return true;
}

static bool value(struct build *b, json_object **ret);

static bool container(struct build *b, bool object, json_object **ret)
{
	json_object *c = object ? json_object_new_object() : json_object_new_array();
	char key[KEY_MAX + 1];

	b->p++;
	ws(b);
	if (b->p < b->end && *b->p == (object ? '}' : ']')) {
		b->p++;
		*ret = c;
		return true;
	}
	for (;;) {
		json_object *v;

		if (object) {
			size_t n;
			const char *k = string(b, &n);

			if (!k || n > KEY_MAX)
				break;
			memcpy(key, k, n);
			key[n] = '\0';
			ws(b);
			b->p++;         /* ':' */
			ws(b);
		}
		if (!value(b, &v))
			break;
		if (object)
			json_object_object_add(c, key, v);
		else
			json_object_array_add(c, v);
		ws(b);
		if (b->p < b->end && *b->p == ',') {
			b->p++;
			ws(b);
			continue;
		}
		b->p++;         /* '}' or ']' */
		*ret = c;
		return true;
	}
	json_object_put(c);
	return false;
}

static bool value(struct build *b, json_object **ret)
{
	size_t n;
	const char *s;

	if (b->p >= b->end)
		return false;
	switch (*b->p) {
	case '"':
		if (!(s = string(b, &n)))
			return false;
		*ret = json_object_new_string_len(s, (int) n);
		return true;
	case '{':
	case '[':
		return container(b, *b->p == '{', ret);
	case 't':
	case 'f': {
		bool v = *b->p == 't';

		if (!word(b, v ? "true" : "false", v ? 4 : 5))
			return false;
		*ret = json_object_new_boolean(v);
		return true;
	}
	case 'n':
		*ret = NULL;
		return word(b, "null", 4);
	default:
		return number(b, ret);
	}
}

bool json_build_plain(const char *text, size_t len, json_object **ret)
{
	struct build b = { text, text + len };
	json_object *o;

	ws(&b);
	if (!value(&b, &o))
		return false;
	ws(&b);
	if (b.p != b.end) {
		json_object_put(o);
		return false;
	}
	*ret = o;
	return true;
}
