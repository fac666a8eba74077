/*
 * ctl-scan.c - JSON read without a tree, for what may be large: a DAG file
 * of a hundred thousand tasks, the reply that lists them.  A json-c tree
 * of such a text is a kilobyte an object, allocated, touched and freed;
 * here the text is walked in place.
 *
 * Only plain JSON passes: RFC 8259, strings of valid UTF-8 whose escapes are
 * the short ones (no \u), integers of at most 18 digits, no exponents, no
 * key twice in an object, at most SCAN_DEPTH levels.  Anything else is
 * -EINVAL, and the caller reads the text with json-c instead, which says
 * what it says of it: the two agree on everything that passes.
 */
#include <string.h>

#include "dagctl.h"
#include "../daemon/utf8.h"

#define SCAN_DEPTH 64
#define SCAN_KEYS 32            /* an object with more is json-c's to read */

static void ws(struct jscan *s) {
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

int jscan_string(struct jscan *s, const char **ret, size_t *ret_len, bool *ret_plain) {
	const unsigned char *p = (const unsigned char *) s->p, *end = (const unsigned char *) s->end, *b;
	bool plain = true;

	if (p >= end || *p != '"')
		return -EINVAL;
	b = ++p;
	for (;;) {
		size_t k;

		while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
			p++;
		if (p >= end)
			return -EINVAL;
		if (*p == '"')
			break;
		if (*p == '\\') {
			if (p + 1 >= end || !p[1] || !strchr("\"\\/bfnrt", p[1]))
				return -EINVAL;
			plain = false;
			p += 2;
			continue;
		}
		if (*p < 0x20 || !(k = utf8_char(p, (size_t) (end - p))))
			return -EINVAL;
		p += k;
	}
	if (ret) {
		*ret = (const char *) b;
		*ret_len = (size_t) (p - b);
	}
	if (ret_plain)
		*ret_plain = plain;
	s->p = (const char *) p + 1;
	return 0;
}

static bool digit(const struct jscan *s) {
	return s->p < s->end && *s->p >= '0' && *s->p <= '9';
}

static int scan_number(struct jscan *s) {
	size_t n = 0;

	if (s->p < s->end && *s->p == '-')
		s->p++;
	if (!digit(s))
		return -EINVAL;
	if (*s->p == '0')
		s->p++;
	else
		for (; digit(s); n++)
			s->p++;
	if (n > 18)
		return -EINVAL;
	if (s->p < s->end && *s->p == '.') {
		s->p++;
		if (!digit(s))
			return -EINVAL;
		for (n = 0; digit(s); n++)
			s->p++;
		if (n > 17)
			return -EINVAL;
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E'))
		return -EINVAL;
	return 0;
}

static int scan_word(struct jscan *s, const char *w) {
	size_t n = strlen(w);

	if ((size_t) (s->end - s->p) < n || memcmp(s->p, w, n) != 0)
		return -EINVAL;
	s->p += n;
	return 0;
}

int jscan_open(struct jscan *s, char c) {
	ws(s);
	if (s->p >= s->end || *s->p != c)
		return -EINVAL;
	s->p++;
	return 0;
}

int jscan_next(struct jscan *s, char close, bool *first, const char **ret_key, size_t *ret_len) {
	bool plain;
	int r;

	ws(s);
	if (s->p < s->end && *s->p == close && *first) {
		s->p++;
		return 0;
	}
	if (!*first) {
		if (s->p < s->end && *s->p == close) {
			s->p++;
			return 0;
		}
		if (s->p >= s->end || *s->p != ',')
			return -EINVAL;
		s->p++;
		ws(s);
	}
	*first = false;
	if (close == ']')
		return 1;
	r = jscan_string(s, ret_key, ret_len, &plain);
	if (r < 0 || !plain)
		return -EINVAL;
	ws(s);
	if (s->p >= s->end || *s->p != ':')
		return -EINVAL;
	s->p++;
	ws(s);
	return 1;
}

static int scan_container(struct jscan *s, char close) {
	struct { const char *key; size_t len; } keys[SCAN_KEYS];
	size_t n_keys = 0;
	bool first = true;
	int r;

	if (++s->depth > SCAN_DEPTH)
		return -EINVAL;
	s->p++;
	while ((r = jscan_next(s, close, &first, &keys[n_keys < SCAN_KEYS ? n_keys : 0].key,
			       &keys[n_keys < SCAN_KEYS ? n_keys : 0].len)) > 0) {
		if (close == '}') {
			if (n_keys == SCAN_KEYS)
				return -EINVAL;
			for (size_t i = 0; i < n_keys; i++)
				if (keys[i].len == keys[n_keys].len &&
				    memcmp(keys[i].key, keys[n_keys].key, keys[i].len) == 0)
					return -EINVAL;
			n_keys++;
		}
		r = jscan_value(s);
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	s->depth--;
	return 0;
}

int jscan_value(struct jscan *s) {
	ws(s);
	if (s->p >= s->end)
		return -EINVAL;
	switch (*s->p) {
	case '{':
		return scan_container(s, '}');
	case '[':
		return scan_container(s, ']');
	case '"':
		return jscan_string(s, NULL, NULL, NULL);
	case 't':
		return scan_word(s, "true");
	case 'f':
		return scan_word(s, "false");
	case 'n':
		return scan_word(s, "null");
	default:
		return scan_number(s);
	}
}

int jscan_end(struct jscan *s) {
	ws(s);
	return s->p == s->end ? 0 : -EINVAL;
}
