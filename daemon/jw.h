/*
 * jw.h - a JSON writer: an object or array written straight into text, for
 * the replies that carry many objects (a page of tasks), where building a
 * json-c tree of each, then printing and freeing it, costs ten times more.
 * The text is what json_text() would print for the same values.
 */
#ifndef DAGD_JW_H
#define DAGD_JW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <json-c/json.h>

struct jw {
	char *buf;
	size_t len, cap;
	bool comma;             /* a value precedes in the open object or array */
};

void jw_open(struct jw *w, char c);            /* '{' or '[' */
void jw_close(struct jw *w, char c);           /* '}' or ']' */
void jw_key_any(struct jw *w, const char *key); /* in an object: "key":, escaped as needed */
void jw_str(struct jw *w, const char *s);      /* NULL: null */
void jw_raw(struct jw *w, const char *json);   /* JSON text as it is; NULL: null */
void jw_int(struct jw *w, int64_t v);
void jw_bool(struct jw *w, bool v);
void jw_double(struct jw *w, double v);
void jw_time(struct jw *w, int64_t usec);      /* ISO 8601, or null when <= 0 */

void jw_grow(struct jw *w, size_t n);          /* room for n more bytes and a NUL */

/* "key": of n bytes that need no escape, in one check of room and a few
 * moves, the comma with it */
static inline void jw_key_plain(struct jw *w, const char *key, size_t n)
{
	char *p;

	if (w->len + n + 5 > w->cap)
		jw_grow(w, n + 4);
	p = w->buf + w->len;
	if (w->comma)
		*p++ = ',';
	*p++ = '"';
	memcpy(p, key, n);
	p += n;
	*p++ = '"';
	*p++ = ':';
	*p = '\0';
	w->len = (size_t) (p - w->buf);
	w->comma = false;
}

/* In an object: "key":.  A key known when compiled (the daemon's own,
 * forty a task of a listing; none needs an escape) is written as it is;
 * any other goes through jw_key_any(). */
static inline void jw_key(struct jw *w, const char *key)
{
	if (__builtin_constant_p(__builtin_strlen(key)))
		jw_key_plain(w, key, __builtin_strlen(key));
	else
		jw_key_any(w, key);
}

/* The text, taken: w is empty again. */
char *jw_take(struct jw *w);
/* A json-c value that prints as w's text (taken), to put in a reply. */
json_object *jw_value(struct jw *w);

#endif
