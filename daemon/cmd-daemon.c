/*
 * cmd-daemon.c - executor.list, executor.reload and daemon.status.
 */
#include <unistd.h>

#include "dagd.h"

static int executors_reply(struct req *r)
{
	json_object *o = json_object_new_object(), *a = json_object_new_array();

	for (struct executor *ex = executors; ex; ex = ex->next) {
		json_object *e = json_object_new_object();

		json_object_object_add(e, "name", json_object_new_string(ex->name));
		json_object_object_add(e, "path", json_object_new_string(ex->path));
		json_object_object_add(e, "description",
				       ex->vt && ex->vt->description ? json_object_new_string(ex->vt->description) : NULL);
		const char *status = executor_status(ex);

		json_object_object_add(e, "status", status ? json_object_new_string(status) : NULL);
		json_object_object_add(e, "limit", ex->limit ? json_object_new_int((int) ex->limit) : NULL);
		json_object_object_add(e, "active", json_object_new_int((int) ex->active));
		json_object_object_add(e, "error", ex->error ? json_object_new_string(ex->error) : NULL);
		json_object_array_add(a, e);
	}
	json_object_object_add(o, "executors", a);
	return reply_ok(r, o);
}

static int cmd_executor_list(struct req *r)
{
	return executors_reply(r);
}

static int cmd_executor_reload(struct req *r)
{
	(void) plugins_reload();
	return executors_reply(r);
}

static int cmd_daemon_status(struct req *r)
{
	json_object *o = json_object_new_object(), *c = json_object_new_object();
	unsigned counts[_ST_MAX], active, np = 0, nt = 0;

	engine_counts(counts, &active);
	for (int s = 0; s < _ST_MAX; s++) {
		json_object_object_add(c, status_to_string(s), json_object_new_int((int) counts[s]));
		nt += counts[s];
	}
	for (size_t i = 0; i < n_projects; i++)
		np += projects[i] != NULL;
	json_object_object_add(o, "version", json_object_new_string(DAGD_VERSION));
	json_object_object_add(o, "pid", json_object_new_int((int) getpid()));
	json_object_object_add(o, "started_at", json_time(D.started_at));
	json_object_object_add(o, "uptime", json_object_new_double((double) (now_usec() - D.started_at) / 1e6));
	json_object_object_add(o, "socket", json_object_new_string(D.socket_path));
	json_object_object_add(o, "state_dir", json_object_new_string(D.state_dir));
	json_object_object_add(o, "counts", c);
	json_object_object_add(o, "active", json_object_new_int((int) active));
	json_object_object_add(o, "global_limit", json_object_new_int((int) D.global_limit));
	json_object_object_add(o, "projects", json_object_new_int((int) np));
	json_object_object_add(o, "tasks", json_object_new_int((int) nt));
	json_object_object_add(o, "clients", json_object_new_int((int) server_clients()));
	json_object_object_add(o, "last_event_seq", json_object_new_int64(server_committed_seq()));
	{
		json_object *ex = json_object_new_object(), *each = json_object_new_array();
		int loaded = 0, failed = 0;

		/* each one's health: loaded (and how busy), or why not */
		for (struct executor *e = executors; e; e = e->next) {
			json_object *h = json_object_new_object();

			e->vt ? loaded++ : failed++;
			json_object_object_add(h, "name", json_object_new_string(e->name));
			json_object_object_add(h, "loaded", json_object_new_boolean(e->vt != NULL));
			json_object_object_add(h, "error", e->error ? json_object_new_string(e->error) : NULL);
			json_object_object_add(h, "active", json_object_new_int((int) e->active));
			json_object_object_add(h, "limit", e->limit ? json_object_new_int((int) e->limit) : NULL);
			json_object_array_add(each, h);
		}
		json_object_object_add(ex, "loaded", json_object_new_int(loaded));
		json_object_object_add(ex, "failed", json_object_new_int(failed));
		json_object_object_add(ex, "each", each);
		json_object_object_add(o, "executors", ex);
	}
	server_status(o);
	return reply_ok(r, o);
}

const struct cmd_entry cmd_executor_list_entry = { "executor.list", cmd_executor_list, 0, NULL };
const struct cmd_entry cmd_executor_reload_entry = { "executor.reload", cmd_executor_reload, 0, NULL };
const struct cmd_entry cmd_daemon_status_entry = { "daemon.status", cmd_daemon_status, 0, NULL };
