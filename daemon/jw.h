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

#include <json-c/json.h>

struct jw {
	char *buf;
	size_t len, cap;
	bool comma;             /* a value precedes in the open object or array */
};

void jw_open(struct jw *w, char c);            /* '{' or '[' */
void jw_close(struct jw *w, char c);           /* '}' or ']' */
void jw_key(struct jw *w, const char *key);    /* in an object: "key": */
void jw_str(struct jw *w, const char *s);      /* NULL: null */
void jw_raw(struct jw *w, const char *json);   /* JSON text as it is; NULL: null */
void jw_int(struct jw *w, int64_t v);
void jw_bool(struct jw *w, bool v);
void jw_double(struct jw *w, double v);
void jw_time(struct jw *w, int64_t usec);      /* ISO 8601, or null when <= 0 */

/* The text, taken: w is empty again. */
char *jw_take(struct jw *w);
/* A json-c value that prints as w's text (taken), to put in a reply. */
json_object *jw_value(struct jw *w);

#endif
