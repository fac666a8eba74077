/*
 * cmd.c - the command table, the parsing of a request line, and the reply
 * helpers.  Adding a command is adding a cmd_*_entry and a row here.
 */
#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "dagd.h"
#include "jw.h"

static const struct cmd_entry *const cmd_table[] = {
	&cmd_project_create_entry,
	&cmd_project_list_entry,
	&cmd_project_get_entry,
	&cmd_project_update_entry,
	&cmd_project_delete_entry,
	&cmd_project_set_autonomous_entry,
	&cmd_project_start_entry,
	&cmd_project_clean_entry,
	&cmd_task_add_entry,
	&cmd_task_add_batch_entry,
	&cmd_task_get_entry,
	&cmd_task_list_entry,
	&cmd_task_depend_entry,
	&cmd_task_undepend_entry,
	&cmd_task_start_entry,
	&cmd_task_complete_entry,
	&cmd_task_cancel_entry,
	&cmd_task_retry_entry,
	&cmd_task_pause_entry,
	&cmd_task_resume_entry,
	&cmd_task_hold_entry,
	&cmd_task_release_entry,
	&cmd_task_edit_entry,
	&cmd_task_remove_entry,
	&cmd_task_unblocked_entry,
	&cmd_task_logs_entry,
	&cmd_task_approve_entry,
	&cmd_task_reject_entry,
	&cmd_pool_set_entry,
	&cmd_pool_list_entry,
	&cmd_pool_delete_entry,
	&cmd_events_subscribe_entry,
	&cmd_executor_list_entry,
	&cmd_executor_reload_entry,
	&cmd_daemon_status_entry,
};

int reply_ok(struct req *r, json_object *result)
{
	reply_ok_text(r, result ? json_text(result) : "{}");
	json_object_put(result);
	return 0;
}

/* The same, for a result that is JSON text already. */
int reply_ok_text(struct req *r, const char *result)
{
	result = result ? result : "null";
	server_reply(r->client, r->id, "\"ok\":true,\"result\":", result, strlen(result),
		     store_writes() != r->writes);
	return 0;
}

int reply_error(struct req *r, const char *code, const char *fmt, ...)
{
	struct jw w = { 0 };
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	utf8_trim(msg);                 /* a message cut short mid-character */
	jw_key(&w, "ok");
	jw_bool(&w, false);
	jw_key(&w, "error");
	jw_open(&w, '{');
	jw_key(&w, "code");
	jw_str(&w, code);
	jw_key(&w, "message");
	jw_str(&w, msg);
	jw_close(&w, '}');
	server_reply(r->client, r->id, "", w.buf, w.len, store_writes() != r->writes);
	free(w.buf);
	return 0;
}

/* Turn a negative errno and the last error's message into a reply. */
int reply_errno(struct req *r, int err)
{
	const char *code;

	switch (err) {
	case -EINVAL:
		code = "bad_request";
		break;
	case -ENOENT:
		code = "not_found";
		break;
	case -EEXIST:
		code = "conflict";
		break;
	case -EBUSY:
		code = "invalid_state";
		break;
	case -EOPNOTSUPP:
		code = "unsupported";
		break;
	case -EPERM:
	case -EACCES:
		code = "permission_denied";
		break;
	case -EIO:
	case -ENOSPC:
	case -EROFS:
		code = "unavailable";
		break;
	default:
		code = "internal";
	}
	return reply_error(r, code, "%s", last_error());
}

int req_project(struct req *r, const char *key, struct project **ret)
{
	const char *s;
	int k = arg_required(arg_string(r->args, key, &s), key);

	if (k < 0)
		return k;
	*ret = project_find(s);
	if (!*ret)
		return errorf(-ENOENT, "no project '%s'", s);
	return 0;
}

int req_task(struct req *r, struct task **ret)
{
	const char *s;
	int k = arg_required(arg_string(r->args, "task_id", &s), "task_id");

	if (k < 0)
		return k;
	*ret = task_find(s);
	if (!*ret)
		return errorf(-ENOENT, "no task '%s'", s);
	return 0;
}

#define BIG_LINE (256 * 1024)

void cmd_line(struct client *c, bool operator, const char *line, size_t len)
{
	struct req r = { .client = c, .operator = operator, .writes = store_writes() };
	json_object *req = NULL, *v, *empty = NULL;
	struct json_span *spans = NULL;
	const char *name;
	int k;

	/* a long line's tasks (a batch's) are read one at a time */
	if (len > BIG_LINE) {
		k = json_parse_strict_lazy(line, len, "tasks", &req, &spans, &r.n_tasks);
		r.tasks_text = line;
		r.tasks = spans;
	} else
		k = json_parse_strict(line, len, &req);
	if (k < 0) {
		reply_error(&r, "bad_request", "%s", last_error());
		goto out;
	}
	if (!json_object_is_type(req, json_type_object)) {
		reply_error(&r, "bad_request", "a request must be a JSON object");
		goto out;
	}
	if (json_object_object_get_ex(req, "id", &v))
		r.id = v;
	if (!json_object_object_get_ex(req, "cmd", &v) || !json_object_is_type(v, json_type_string)) {
		reply_error(&r, "bad_request", "a request needs \"cmd\", a string");
		goto out;
	}
	name = json_object_get_string(v);
	if (json_object_object_get_ex(req, "args", &v) && v) {
		if (!json_object_is_type(v, json_type_object)) {
			reply_error(&r, "bad_request", "\"args\" must be an object");
			goto out;
		}
		r.args = v;
	} else
		r.args = empty = json_object_new_object();

	for (size_t i = 0; i < ELEMENTSOF(cmd_table); i++) {
		const struct cmd_entry *e = cmd_table[i];

		if (strcmp(e->name, name) != 0)
			continue;
		if (!operator && !(e->flags & CMD_ANYONE))
			reply_error(&r, "permission_denied", "'%s' is for operators only", name);
		else if (args_check(r.args, e->args, e->name) < 0)
			reply_error(&r, "bad_request", "%s", last_error());
		else
			e->exec(&r);
		goto out;
	}
	reply_error(&r, "bad_request", "unknown command '%.*s'", utf8_prefix(name, 64), name);
out:
	json_object_put(empty);
	json_object_put(req);
	free(spans);
	/* the tree of a long line (a big batch) is gone: its memory goes back
	 * to the system, not kept in the heap for a line that may never come */
	if (len > BIG_LINE)
		(void) malloc_trim(0);
}
