/*
 * jw.c - a JSON writer (see jw.h).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dagd.h"
#include "jw.h"

void jw_grow(struct jw *w, size_t n)
{
	size_t cap = w->cap ? w->cap : 256;

	while (w->len + n + 1 > cap)
		cap *= 2;
	w->buf = xrealloc(w->buf, cap);
	w->cap = cap;
}

static inline void put(struct jw *w, const char *s, size_t n)
{
	if (w->len + n + 1 > w->cap)
		jw_grow(w, n);
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = '\0';
}

/* Before a value (or a key): the comma, if one precedes it. */
static void sep(struct jw *w)
{
	if (w->comma)
		put(w, ",", 1);
	w->comma = true;
}

void jw_open(struct jw *w, char c)
{
	sep(w);
	put(w, &c, 1);
	w->comma = false;
}

void jw_close(struct jw *w, char c)
{
	put(w, &c, 1);
	w->comma = true;
}

/* how many bytes of s need no escape */
static size_t plain(const char *s)
{
	const unsigned char *u = (const unsigned char *) s;
	size_t n = 0;

	while (u[n] >= 0x20 && u[n] != '"' && u[n] != '\\')
		n++;
	return n;
}

static void quoted(struct jw *w, const char *s)
{
	const char *run = s;
	size_t n = plain(s);

	/* most strings need no escape: one copy, quotes and all */
	if (!s[n]) {
		if (w->len + n + 3 > w->cap)
			jw_grow(w, n + 2);
		w->buf[w->len] = '"';
		memcpy(w->buf + w->len + 1, s, n);
		w->buf[w->len + n + 1] = '"';
		w->len += n + 2;
		w->buf[w->len] = '\0';
		return;
	}
	put(w, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char) *s;
		char esc[8];

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		put(w, run, (size_t) (s - run));
		run = s + 1;
		switch (c) {
		case '"': put(w, "\\\"", 2); break;
		case '\\': put(w, "\\\\", 2); break;
		case '\n': put(w, "\\n", 2); break;
		case '\r': put(w, "\\r", 2); break;
		case '\t': put(w, "\\t", 2); break;
		case '\b': put(w, "\\b", 2); break;
		case '\f': put(w, "\\f", 2); break;
		default:
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			put(w, esc, 6);
		}
	}
	put(w, run, (size_t) (s - run));
	put(w, "\"", 1);
}

/* A key not known when compiled (a pool's name, an input's): one check
 * of room and one copy, comma, quotes and colon with it, unless it needs
 * escapes. */
void jw_key_any(struct jw *w, const char *key)
{
	size_t n = plain(key);

	if (key[n]) {
		sep(w);
		quoted(w, key);
		put(w, ":", 1);
		w->comma = false;
	} else
		jw_key_plain(w, key, n);
}

void jw_str(struct jw *w, const char *s)
{
	sep(w);
	if (s)
		quoted(w, s);
	else
		put(w, "null", 4);
}

void jw_raw(struct jw *w, const char *json)
{
	sep(w);
	if (json)
		put(w, json, strlen(json));
	else
		put(w, "null", 4);
}

void jw_int(struct jw *w, int64_t v)
{
	char buf[24];

	sep(w);
	put(w, buf, format_id(buf, "", v));
}

void jw_bool(struct jw *w, bool v)
{
	sep(w);
	put(w, v ? "true" : "false", v ? 4 : 5);
}

void jw_double(struct jw *w, double v)
{
	char buf[40];
	int n;

	/* a whole number (a timeout of 30 s, a backoff of 1) as "%.17g" would
	 * print it, without printf's cost */
	if (v > -1e15 && v < 1e15 && v == (double) (int64_t) v && !(v == 0 && signbit(v))) {
		n = (int) format_id(buf, "", (int64_t) v);
		memcpy(buf + n, ".0", 2);
		sep(w);
		put(w, buf, (size_t) n + 2);
		return;
	}
	n = snprintf(buf, sizeof(buf) - 2, "%.17g", v);

	/* as json-c prints a double: a whole number keeps its ".0" */
	if (n > 0 && !strpbrk(buf, ".eEni"))
		n += snprintf(buf + n, 3, ".0");
	sep(w);
	put(w, buf, (size_t) n);
}

void jw_time(struct jw *w, int64_t usec)
{
	char buf[34];
	size_t n;

	if (usec <= 0) {
		jw_raw(w, NULL);
		return;
	}
	buf[0] = '"';
	format_time(usec, buf + 1);
	n = strlen(buf);
	buf[n] = '"';
	sep(w);
	put(w, buf, n + 1);
}

char *jw_take(struct jw *w)
{
	char *s = w->buf ? w->buf : xstrdup("");

	*w = (struct jw) { 0 };
	return s;
}

json_object *jw_value(struct jw *w)
{
	json_object *o = json_object_new_object();

	json_object_set_serializer(o, json_object_userdata_to_json_string, jw_take(w), json_object_free_userdata);
	return o;
}
