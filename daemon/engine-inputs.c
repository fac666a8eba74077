/*
 * engine-inputs.c - outputs that flow to dependents: what a task's
 * dependencies reported as their result, written beside the attempt's log
 * as "<attempt>.inputs.json" (DAGD_INPUTS) and put into the templates of its
 * command and env when it is dispatched; and the failure of an attempt that
 * cannot start for good (no retry).
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dagd.h"
#include "template.h"

/* {"<name or id>": <result or null>, ...}: what t's dependencies reported. */
static json_object *task_inputs(const struct task *t)
{
	json_object *o = json_object_new_object();
	char id[24];

	for (size_t i = 0; i < task_n_deps(t); i++) {
		const struct task *d = task_deps(t)[i];

		if (ext_of(t)->expanded && ext_of(d)->map_parent == t->id)
			continue;       /* its own children are not inputs */
		json_object_object_add(o, task_name(d) ? task_name(d) : task_id_string(d->id, id), json_parse(task_def(d)->result));
	}
	return o;
}

static json_object *task_item(const struct task *t)
{
	return task_def(t)->item ? json_parse(task_def(t)->item) : NULL;
}

int inputs_render(const struct task *t, const char *s, bool shell, char **ret)
{
	json_object *inputs, *item;
	int r;

	if (!template_any(s)) {
		*ret = xstrdup(s);
		return 0;
	}
	inputs = task_inputs(t);
	item = task_item(t);
	r = template_render(s, inputs, item, shell, ret);
	json_object_put(inputs);
	json_object_put(item);
	return r;
}

static bool any_result(const struct task *t)
{
	for (size_t i = 0; i < task_n_deps(t); i++) {
		const struct task *d = task_deps(t)[i];

		if (!(ext_of(t)->expanded && ext_of(d)->map_parent == t->id) && task_def(d)->result && strcmp(task_def(d)->result, "null") != 0)
			return true;
	}
	return false;
}

/* The inputs file of a task with dependencies whose executor knows of it
 * (write: make it; else only name it, if it is there, for a sandbox found
 * again).  A file that cannot
 * be written fails the attempt as a template would. */
int inputs_prepare(struct task *t, struct sandbox *sb, bool write_it, char **ret_path)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -EBADF;
	json_object *o;
	const char *text;
	size_t len;
	ssize_t n;

	*ret_path = NULL;
	/* the file is part of executor ABI 4: an older plugin's sandboxes are
	 * as they were (no DAGD_INPUTS), and cost nothing more */
	if (task_n_deps(t) == 0 || sb->validator || !sb->ex || !sb->ex->vt || sb->ex->vt->abi_version < 4)
		return 0;
	/* nothing reported, nothing to pass: a chain of commands that leave no
	 * result pays no file a link */
	if (write_it && !any_result(t))
		return 0;
	path = xasprintf("%.*s.inputs.json", (int) (strlen(sb->log_path) - strlen(".log")), sb->log_path);
	if (!write_it) {
		if (access(path, F_OK) == 0)
			*ret_path = TAKE_PTR(path);
		return 0;
	}
	fd = log_open(path, O_WRONLY | O_TRUNC);
	if (fd < 0)
		return errorf(fd, "cannot write the inputs file %s: %s", path, strerror(-fd));
	/* readable by whoever a container runs as, once bound into it; the
	 * directory (0750) keeps it from the host's other users */
	(void) fchmod(fd, 0644);
	o = task_inputs(t);
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	len = strlen(text);
	n = write(fd, text, len);
	json_object_put(o);
	if (n < 0 || (size_t) n != len)
		return errorf(-EIO, "cannot write the inputs file %s: %s", path, n < 0 ? strerror(errno) : "short write");
	*ret_path = TAKE_PTR(path);
	return 0;
}

/* The attempt cannot be made (a template names what is not there, a mapped
 * dependency's result is not an array): failed at once, whatever retries it
 * has left, for running it again would change nothing. */
void task_fail_final(struct task *t, const char *reason, const char *message)
{
	json_object *o;

	set_str(&task_def(t)->error_message, message);
	set_status(t, ST_FAILED);
	o = task_payload(t);
	json_object_object_add(o, "error_message", json_object_new_string(message));
	json_object_object_add(o, "will_retry", json_object_new_boolean(false));
	json_object_object_add(o, "retry_at", NULL);
	json_object_object_add(o, "reason", json_object_new_string(reason));
	task_event(t, "TASK_FAILED", o);
	propagate_failure(t);
}
