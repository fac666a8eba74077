/*
 * logs.c - an attempt's output as it lies on disk: where its log is, and
 * its bytes cut into lines for a reply.  Below both the commands (task.logs)
 * and the socket loop's log followers (server-follow.c), which read it
 * alike.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dagd.h"

static json_object *line_string(const char *s, size_t n)
{
	_cleanup_free_ char *u = NULL;
	size_t len;

	if (utf8_valid(s, n))
		return json_object_new_string_len(s, (int) n);
	u = utf8_sanitize(s, n, &len);
	return json_object_new_string_len(u, (int) len);
}

/* The lines of fd's bytes [from, to), as UTF-8 (bytes that are not shown
 * as U+FFFD).  With hold_partial a last line with no newline yet is left
 * out, unless nothing but it is there and it is piece bytes or longer: then
 * that much of it is given, cut between characters, and *ret_partial set.
 * *ret_end is where the next read should start. */
json_object *log_lines(int fd, off_t from, off_t to, bool hold_partial, size_t piece, off_t *ret_end,
		       bool *ret_partial)
{
	json_object *lines = json_object_new_array();
	_cleanup_free_ char *buf = NULL;
	ssize_t n = 0;
	char *s, *e;

	*ret_end = from;
	*ret_partial = false;
	if (to <= from)
		return lines;
	buf = xrealloc(NULL, (size_t) (to - from));
	n = pread(fd, buf, (size_t) (to - from), from);
	if (n <= 0)
		return lines;
	for (s = buf; s < buf + n; s = e + 1) {
		e = memchr(s, '\n', (size_t) (buf + n - s));
		if (!e && hold_partial) {
			size_t k = (size_t) (buf + n - s), cut = k;

			if (s != buf || k < piece)
				break;
			/* a piece of a long line, ending between two characters */
			cut = utf8_complete(s, k);
			json_object_array_add(lines, line_string(s, cut));
			*ret_end = from + (off_t) cut;
			*ret_partial = true;
			break;
		}
		if (!e)
			e = buf + n;
		json_object_array_add(lines, line_string(s, (size_t) (e - s)));
		*ret_end = from + (e - buf) + (e < buf + n);
	}
	return lines;
}

/* An attempt's log, or (validation) its validator's: where the sandbox
 * writes its output (see sandbox_new()), STATE/logs/t-ID/ATTEMPT[.validate].log,
 * written into p (room for LOG_PATH_MAX() bytes) without printf: one a task. */
void log_path_put(char *p, int64_t task_id, unsigned attempt, bool validation)
{
	size_t len = strlen(D.state_dir), n;

	memcpy(p, D.state_dir, len);
	n = len + format_id(p + len, "/logs/t-", task_id);
	n += format_id(p + n, "/", attempt);
	strcpy(p + n, validation ? ".validate.log" : ".log");
}

/* The same, in an allocation of its own. */
char *log_path(int64_t task_id, unsigned attempt, bool validation)
{
	char *p = xrealloc(NULL, LOG_PATH_MAX());

	log_path_put(p, task_id, attempt, validation);
	return p;
}
