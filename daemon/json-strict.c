/*
 * json-strict.c - what the daemon reads as JSON: RFC 8259 and nothing more,
 * and the UTF-8 it writes.
 *
 * json-c, even in its strict mode, lets through things a client should be
 * told about: duplicate keys (the last one wins), integers out of range
 * (clamped), "\u0000" (which cuts a C string short).  So a request line is
 * first scanned here: the grammar of RFC 8259, strings of valid UTF-8 with
 * no control characters and no NUL, escapes with paired surrogates,
 * integers that fit in 64 bits, finite numbers, at most JSON_DEPTH levels;
 * then json-c parses it in strict mode, and an object that came out with
 * fewer members than the text had held a duplicate key.
 *
 * A long line's args.tasks (a batch of a hundred thousand tasks) can be
 * left as text (json_parse_strict_lazy()): checked with the rest of the
 * line, its elements' places kept, each parsed when asked for, so that the
 * line never becomes one tree of a hundred megabytes.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "dagd.h"
#include "utf8.h"

enum { ROLE_NONE, ROLE_ARGS, ROLE_LAZY };

struct scan {
	const unsigned char *start, *p, *end;
	size_t members;                 /* object members seen */
	unsigned depth;
	/* json_parse_strict_lazy(): the array at args.<lazy_key> */
	const char *lazy_key;
	int role;                       /* of the container about to be scanned */
	const unsigned char *lazy_start, *lazy_end;
	size_t lazy_members;            /* object members within it */
	bool lazy_twice;                /* the key twice: no array is left as text */
	struct json_span *spans;
	size_t n_spans, spans_cap;
};

static int scan_fail(const struct scan *s, const char *what)
{
	return errorf(-EINVAL, "malformed JSON at byte %zu: %s", (size_t) (s->p - s->start), what);
}

bool utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *) s;

	for (size_t i = 0, k; i < n; i += k) {
		uint64_t w;

		/* ASCII, most of what is written, eight bytes at a time */
		if (n - i >= 8 && (memcpy(&w, p + i, 8), !(w & 0x8080808080808080ULL))) {
			k = 8;
			continue;
		}
		if (!(k = utf8_char(p + i, n - i)))
			return false;
	}
	return true;
}

char *utf8_sanitize(const char *s, size_t n, size_t *ret_len)
{
	const unsigned char *p = (const unsigned char *) s;
	char *out = xrealloc(NULL, 3 * n + 1), *o = out;

	for (size_t i = 0, k; i < n; i += k) {
		k = utf8_char(p + i, n - i);
		if (k) {
			memcpy(o, p + i, k);
			o += k;
		} else {
			memcpy(o, "\xef\xbf\xbd", 3);       /* U+FFFD */
			o += 3;
			k = 1;
		}
	}
	*o = 0;
	*ret_len = (size_t) (o - out);
	return out;
}

char *utf8_valid_line(char *s, size_t *len)
{
	char *u;

	if (utf8_valid(s, *len))
		return s;
	/* (what a plugin said, say, stored as it came) */
	u = utf8_sanitize(s, *len, len);
	free(s);
	return u;
}

void utf8_trim(char *s)
{
	size_t n = strlen(s), i = n;

	/* back to the start of the last sequence, if it is cut short */
	while (i > 0 && n - i < 4 && ((unsigned char) s[i - 1] & 0xc0) == 0x80)
		i--;
	if (i > 0 && (unsigned char) s[i - 1] >= 0xc0 && !utf8_char((unsigned char *) s + i - 1, n - i + 1))
		s[i - 1] = 0;
}

int utf8_prefix(const char *s, size_t max)
{
	size_t n = strnlen(s, max);

	while (n > 0 && s[n] && ((unsigned char) s[n] & 0xc0) == 0x80)
		n--;
	return (int) n;
}

size_t utf8_complete(const char *s, size_t n)
{
	size_t i = n;
	unsigned c;

	while (i > 0 && n - i < 4 && ((unsigned char) s[i - 1] & 0xc0) == 0x80)
		i--;
	if (i == 0)
		return n;
	c = (unsigned char) s[i - 1];
	if (c >= 0xc0 && (i - 1) + (c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2) > n)
		return i - 1;
	return n;
}

static void skip_ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static int hex4(struct scan *s, unsigned *ret)
{
	unsigned v = 0;

	if (s->end - s->p < 4)
		return scan_fail(s, "a \\u escape needs four hex digits");
	for (int i = 0; i < 4; i++, s->p++) {
		unsigned c = *s->p;

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return scan_fail(s, "a \\u escape needs four hex digits");
	}
	*ret = v;
	return 0;
}

static int scan_string(struct scan *s)
{
	s->p++;                         /* the opening quote */
	while (s->p < s->end) {
		unsigned c = *s->p, u, lo;
		size_t k;
		int r;

		if (c == '"') {
			s->p++;
			return 0;
		}
		if (c < 0x20)
			return scan_fail(s, "a control character in a string must be escaped");
		if (c >= 0x80) {
			k = utf8_char(s->p, (size_t) (s->end - s->p));
			if (!k)
				return scan_fail(s, "invalid UTF-8 in a string");
			s->p += k;
			continue;
		}
		s->p++;
		if (c != '\\')
			continue;
		if (s->p >= s->end)
			break;
		c = *s->p;
		if (strchr("\"\\/bfnrt", (int) c) && c) {
			s->p++;
			continue;
		}
		if (c != 'u')
			return scan_fail(s, "unknown escape in a string");
		s->p++;
		if ((r = hex4(s, &u)) < 0)
			return r;
		if (u == 0)
			return scan_fail(s, "\\u0000 is not allowed in a string");
		if (u >= 0xdc00 && u <= 0xdfff)
			return scan_fail(s, "an unpaired surrogate in a string");
		if (u >= 0xd800 && u <= 0xdbff) {
			if (s->end - s->p < 2 || s->p[0] != '\\' || s->p[1] != 'u')
				return scan_fail(s, "an unpaired surrogate in a string");
			s->p += 2;
			if ((r = hex4(s, &lo)) < 0)
				return r;
			if (lo < 0xdc00 || lo > 0xdfff)
				return scan_fail(s, "an unpaired surrogate in a string");
		}
	}
	return scan_fail(s, "unterminated string");
}

static int scan_number(struct scan *s)
{
	const unsigned char *b = s->p;
	bool integer = true, neg = false;
	uint64_t v = 0;
	char buf[512];

	if (*s->p == '-')
		s->p++, neg = true;
	if (s->p >= s->end || *s->p < '0' || *s->p > '9')
		return scan_fail(s, "a number needs a digit");
	if (*s->p == '0') {
		s->p++;
		if (s->p < s->end && *s->p >= '0' && *s->p <= '9')
			return scan_fail(s, "a number must not have leading zeros");
	} else
		while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
			unsigned d = *s->p - '0';

			if (v > (UINT64_MAX - d) / 10)
				v = UINT64_MAX;  /* out of range, whatever follows */
			else
				v = v * 10 + d;
			s->p++;
		}
	if (s->p < s->end && *s->p == '.') {
		integer = false;
		s->p++;
		if (s->p >= s->end || *s->p < '0' || *s->p > '9')
			return scan_fail(s, "a digit must follow the decimal point");
		while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
			s->p++;
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		integer = false;
		s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			s->p++;
		if (s->p >= s->end || *s->p < '0' || *s->p > '9')
			return scan_fail(s, "a digit must follow the exponent");
		while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
			s->p++;
	}
	if (integer) {
		if (v > (neg ? (uint64_t) INT64_MAX + 1 : (uint64_t) INT64_MAX)) {
			s->p = b;
			return scan_fail(s, "an integer out of the range of 64 bits");
		}
		return 0;
	}
	if ((size_t) (s->p - b) >= sizeof(buf)) {
		s->p = b;
		return scan_fail(s, "a number with too many digits");
	}
	memcpy(buf, b, (size_t) (s->p - b));
	buf[s->p - b] = 0;
	if (!isfinite(strtod(buf, NULL))) {
		s->p = b;
		return scan_fail(s, "a number out of range");
	}
	return 0;
}

static int scan_word(struct scan *s, const char *w)
{
	size_t n = strlen(w);

	if ((size_t) (s->end - s->p) < n || memcmp(s->p, w, n) != 0)
		return scan_fail(s, "not a JSON value");
	s->p += n;
	return 0;
}

static int scan_value(struct scan *s);

static bool key_is(const unsigned char *k, const unsigned char *end, const char *name)
{
	size_t n = strlen(name);

	return (size_t) (end - k) == n + 2 && memcmp(k + 1, name, n) == 0;
}

/* What the value of key is to the lazy scan, in a container of role. */
static int role_of(struct scan *s, int role, const unsigned char *key, const unsigned char *key_end)
{
	if (!s->lazy_key)
		return ROLE_NONE;
	if (s->depth == 1 && key_is(key, key_end, "args"))
		return ROLE_ARGS;
	if (role == ROLE_ARGS && key_is(key, key_end, s->lazy_key) && s->p < s->end && *s->p == '[') {
		if (s->lazy_start)
			s->lazy_twice = true;
		return ROLE_LAZY;
	}
	return ROLE_NONE;
}

static int scan_container(struct scan *s, bool object)
{
	char close = object ? '}' : ']';
	int role = s->role;
	const unsigned char *start = s->p;
	size_t members_before = s->members;
	int r;

	s->role = ROLE_NONE;
	if (++s->depth > JSON_DEPTH)
		return scan_fail(s, "nested too deeply");
	s->p++;
	skip_ws(s);
	if (s->p < s->end && *s->p == close) {
		s->p++;
		s->depth--;
		goto done;
	}
	for (;;) {
		const unsigned char *at = s->p, *key_end;
		int next = ROLE_NONE;

		if (object) {
			if (s->p >= s->end || *s->p != '"')
				return scan_fail(s, "an object key must be a string");
			if ((r = scan_string(s)) < 0)
				return r;
			key_end = s->p;
			skip_ws(s);
			if (s->p >= s->end || *s->p != ':')
				return scan_fail(s, "expected ':' after an object key");
			s->p++;
			skip_ws(s);
			s->members++;
			next = role_of(s, role, at, key_end);
			at = s->p;
		}
		s->role = next;
		if ((r = scan_value(s)) < 0)
			return r;
		s->role = ROLE_NONE;
		if (role == ROLE_LAZY) {
			if (s->n_spans == s->spans_cap) {
				s->spans_cap = s->spans_cap ? 2 * s->spans_cap : 1024;
				s->spans = xrealloc(s->spans, s->spans_cap * sizeof(*s->spans));
			}
			s->spans[s->n_spans++] = (struct json_span) { (size_t) (at - s->start), (size_t) (s->p - at) };
		}
		skip_ws(s);
		if (s->p < s->end && *s->p == close) {
			s->p++;
			s->depth--;
			goto done;
		}
		if (s->p >= s->end || *s->p != ',')
			return scan_fail(s, object ? "expected ',' or '}'" : "expected ',' or ']'");
		s->p++;
		skip_ws(s);
	}
done:
	if (role == ROLE_LAZY && !s->lazy_start) {
		s->lazy_start = start;
		s->lazy_end = s->p;
		s->lazy_members = s->members - members_before;
	}
	return 0;
}

static int scan_value(struct scan *s)
{
	if (s->p >= s->end)
		return scan_fail(s, "unexpected end of input");
	switch (*s->p) {
	case '{':
		return scan_container(s, true);
	case '[':
		return scan_container(s, false);
	case '"':
		return scan_string(s);
	case 't':
		return scan_word(s, "true");
	case 'f':
		return scan_word(s, "false");
	case 'n':
		return scan_word(s, "null");
	default:
		if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))
			return scan_number(s);
		return scan_fail(s, "not a JSON value");
	}
}

static size_t count_members(json_object *o)
{
	size_t n = 0;

	if (json_object_is_type(o, json_type_object)) {
		json_object_object_foreach(o, k, v) {
			(void) k;
			n += 1 + count_members(v);
		}
	} else if (json_object_is_type(o, json_type_array))
		for (size_t i = 0; i < json_object_array_length(o); i++)
			n += count_members(json_object_array_get_idx(o, i));
	return n;
}

/* json-c's tree of text, which scanned well with n_members object members.
 * One tokener serves every parse (a batch's tasks are parsed one by one). */
static int tree_of(const char *text, size_t len, size_t n_members, json_object **ret)
{
	static struct json_tokener *tok;
	json_object *o;

	if (json_build_plain(text, len, &o))
		goto built;
	if (!tok) {
		tok = json_tokener_new_ex(JSON_DEPTH + 1);
		if (!tok)
			return errorf(-ENOMEM, "out of memory");
		json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	}
	json_tokener_reset(tok);
	o = json_tokener_parse_ex(tok, text, (int) len);
	/* a bare number or word needs the end of input said */
	if (!o && json_tokener_get_error(tok) == json_tokener_continue)
		o = json_tokener_parse_ex(tok, "", 1);
	if (!o && json_tokener_get_error(tok) != json_tokener_success)
		return errorf(-EINVAL, "malformed JSON: %s", json_tokener_error_desc(json_tokener_get_error(tok)));
built:
	if (count_members(o) != n_members) {
		json_object_put(o);
		return errorf(-EINVAL, "malformed JSON: an object has the same key twice");
	}
	*ret = o;
	return 0;
}

static int scan_all(struct scan *s)
{
	int r;

	skip_ws(s);
	r = scan_value(s);
	if (r < 0)
		return r;
	skip_ws(s);
	if (s->p != s->end)
		return scan_fail(s, "trailing data after the value");
	return 0;
}

int json_parse_strict(const char *text, size_t len, json_object **ret)
{
	struct scan s = { .start = (const unsigned char *) text, .p = (const unsigned char *) text,
			  .end = (const unsigned char *) text + len };
	int r = scan_all(&s);

	return r < 0 ? r : tree_of(text, len, s.members, ret);
}

int json_parse_strict_lazy(const char *text, size_t len, const char *key, json_object **ret,
			   struct json_span **ret_spans, size_t *ret_n)
{
	struct scan s = { .start = (const unsigned char *) text, .p = (const unsigned char *) text,
			  .end = (const unsigned char *) text + len, .lazy_key = key };
	size_t head, tail;
	char *rest;
	int r = scan_all(&s);

	if (r < 0 || !s.lazy_start || s.lazy_twice) {
		free(s.spans);
		*ret_spans = NULL;
		*ret_n = 0;
		return r < 0 ? r : tree_of(text, len, s.members, ret);
	}
	/* the line with the array's place taken by [] */
	head = (size_t) (s.lazy_start - s.start);
	tail = len - (size_t) (s.lazy_end - s.start);
	rest = xrealloc(NULL, head + 2 + tail);
	memcpy(rest, text, head);
	memcpy(rest + head, "[]", 2);
	memcpy(rest + head + 2, s.lazy_end, tail);
	r = tree_of(rest, head + 2 + tail, s.members - s.lazy_members, ret);
	free(rest);
	if (r < 0) {
		free(s.spans);
		return r;
	}
	*ret_spans = s.spans;
	*ret_n = s.n_spans;
	return 0;
}
