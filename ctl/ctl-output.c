/*
 * ctl-output.c - what dagctl prints for people: typed lookups in a reply
 * that never trust its shape, "key: value" blocks, lists of ids, and
 * aligned tables.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

#include "dagctl.h"

/* The member key of o if it has that type, else NULL. */
json_object *ctl_get(json_object *o, const char *key, json_type type) {
	json_object *v;

	if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, type))
		return NULL;
	return v;
}

int ctl_bad_reply(const char *format, ...) {
	va_list ap;

	fputs("dagctl: unexpected reply from dagd: ", stderr);
	va_start(ap, format);
	vfprintf(stderr, format, ap);
	va_end(ap);
	fputc('\n', stderr);
	return -EBADMSG;
}

/* Like ctl_get(), but a missing member is reported as a bad reply. */
json_object *ctl_expect(json_object *o, const char *key, json_type type) {
	json_object *v = ctl_get(o, key, type);

	if (!v)
		ctl_bad_reply("no %s \"%s\"", json_type_to_name(type), key);
	return v;
}

/* A string member, or "-" for display. */
const char *ctl_str(json_object *o, const char *key) {
	json_object *v = ctl_get(o, key, json_type_string);

	return v ? json_object_get_string(v) : "-";
}

int ctl_print_json(json_object *o, int flags) {
	puts(json_object_to_json_string_ext(o, flags));
	return 0;
}

/* A value as a person reads it: strings bare, null "-", numbers short,
 * anything else as compact JSON. */
void ctl_put_value(FILE *f, json_object *v) {
	switch (json_object_get_type(v)) {
	case json_type_null:
		fputc('-', f);
		break;
	case json_type_string:
		fputs(json_object_get_string(v), f);
		break;
	case json_type_double:
		fprintf(f, "%.15g", json_object_get_double(v));
		break;
	case json_type_array:
		if (json_object_array_length(v) == 0) {
			fputs("[]", f);
			break;
		}
		_fallthrough_;
	case json_type_object:
		if (json_object_is_type(v, json_type_object) && json_object_object_length(v) == 0) {
			fputs("{}", f);
			break;
		}
		_fallthrough_;
	default:
		fputs(json_object_to_json_string_ext(v, CTL_JSON_LINE | JSON_C_TO_STRING_SPACED), f);
	}
}

/* Task counts by status, the non-zero ones: "ready=1 running=2", or "-". */
static void put_counts(FILE *f, json_object *counts) {
	bool any = false;

	json_object_object_foreach(counts, k, n)
		if (json_object_get_int64(n) != 0) {
			fprintf(f, "%s%s=%" PRId64, any ? " " : "", k, json_object_get_int64(n));
			any = true;
		}
	if (!any)
		fputc('-', f);
}

static bool ends_with(const char *s, const char *tail) {
	size_t n = strlen(s), k = strlen(tail);

	return n >= k && strcmp(s + n - k, tail) == 0;
}

/* For people, after the value: a time as how long ago (or how soon), a
 * number of seconds as a duration. */
static void put_relative(const char *key, json_object *v) {
	char buf[32];
	double t, now;

	if ((ends_with(key, "_at") || strcmp(key, "not_before") == 0) &&
	    json_object_is_type(v, json_type_string) &&
	    ctl_parse_time(json_object_get_string(v), &t) >= 0 && ctl_now(&now) >= 0) {
		if (t <= now)
			printf(" (%s ago)", ctl_duration(now - t, buf));
		else
			printf(" (in %s)", ctl_duration(t - now + 0.999, buf));
	} else if ((strcmp(key, "timeout") == 0 || strcmp(key, "retry_backoff") == 0 ||
		    ends_with(key, "_seconds")) &&
		   (json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)) &&
		   json_object_get_double(v) >= 60)
		printf(" (%s)", ctl_duration(json_object_get_double(v), buf));
}

/* "retry in 12s" while a ready task waits out the backoff of a retry (its
 * not_before is after now), else NULL. */
const char *ctl_retry_text(json_object *task, double now, char buf[static 48]) {
	double t;
	char d[32];

	if (strcmp(ctl_str(task, "status"), "ready") != 0 ||
	    ctl_parse_time(json_object_get_string(ctl_get(task, "not_before", json_type_string)), &t) < 0 ||
	    t <= now)
		return NULL;
	snprintf(buf, 48, "retry in %s", ctl_duration(t - now + 0.999, d));
	return buf;
}

/* A task's status for people: "ready (retry in 12s)" while it waits out the
 * backoff of a retry, "ready (held)" while an operator holds it, "running
 * (paused)" while an operator has stopped it, else the status. */
const char *ctl_status_text(json_object *task, char buf[static 64]) {
	const char *status = ctl_str(task, "status"), *retry;
	double now;
	char r[48];

	if (strcmp(status, "running") == 0 && json_object_get_boolean(ctl_get(task, "paused", json_type_boolean)))
		return "running (paused)";
	if (json_object_get_boolean(ctl_get(task, "held", json_type_boolean))) {
		snprintf(buf, 64, "%s (held)", status);
		return buf;
	}
	if (ctl_now(&now) < 0 || !(retry = ctl_retry_text(task, now, r)))
		return status;
	snprintf(buf, 64, "%s (%s)", status, retry);
	return buf;
}

/* An object as aligned "key: value" lines; times also as how long ago. */
void ctl_print_kv(json_object *o) {
	int w = 0;

	json_object_object_foreach(o, key, val)
		if ((int) strlen(key) > w)
			w = (int) strlen(key);
	json_object_object_foreach(o, k, v) {
		printf("%s:%*s ", k, w - (int) strlen(k), "");
		char buf[64];

		if (strcmp(k, "counts") == 0 && json_object_is_type(v, json_type_object))
			put_counts(stdout, v);
		else if (strcmp(k, "status") == 0 && json_object_is_type(v, json_type_string))
			fputs(ctl_status_text(o, buf), stdout);
		else {
			ctl_put_value(stdout, v);
			put_relative(k, v);
		}
		putchar('\n');
	}
}

/* "label: id id ..." from an array, or "label: -". */
void ctl_print_ids(const char *label, json_object *ids) {
	size_t n = json_object_is_type(ids, json_type_array) ? json_object_array_length(ids) : 0;

	printf("%s:", label);
	for (size_t i = 0; i < n; i++) {
		putchar(' ');
		ctl_put_value(stdout, json_object_array_get_idx(ids, i));
	}
	puts(n ? "" : " -");
}

struct table {
	size_t ncols, ncells, size;
	char **cells;
};

/* A table with these column headers (ncols strings). */
struct table *table_new(size_t ncols, ...) {
	struct table *t = calloc(1, sizeof *t);
	va_list ap;

	if (!t)
		return NULL;
	t->ncols = ncols;
	va_start(ap, ncols);
	for (size_t i = 0; i < ncols; i++)
		table_add(t, "%s", va_arg(ap, const char *));
	va_end(ap);
	return t;
}

/* Adds the next cell, row by row. */
void table_add(struct table *t, const char *format, ...) {
	va_list ap;
	char *s;

	if (!t)
		return;
	if (t->ncells == t->size) {
		size_t n = t->size ? t->size * 2 : 64;
		char **c = realloc(t->cells, n * sizeof *c);

		if (!c)
			return;
		t->cells = c;
		t->size = n;
	}
	va_start(ap, format);
	if (vasprintf(&s, format, ap) < 0)
		s = NULL;
	va_end(ap);
	t->cells[t->ncells++] = s;
}

void table_print(struct table *t) {
	size_t w[32] = {};

	if (!t || t->ncols > ELEMENTSOF(w))
		return;
	for (size_t i = 0; i < t->ncells; i++)
		if (t->cells[i] && strlen(t->cells[i]) > w[i % t->ncols])
			w[i % t->ncols] = strlen(t->cells[i]);
	for (size_t i = 0; i < t->ncells; i++) {
		bool last = i % t->ncols == t->ncols - 1 || i == t->ncells - 1;
		const char *s = t->cells[i] ?: "?";

		if (last)
			puts(s);
		else
			printf("%-*s  ", (int) w[i % t->ncols], s);
	}
}

void table_free(struct table *t) {
	if (!t)
		return;
	for (size_t i = 0; i < t->ncells; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}
