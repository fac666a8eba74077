/*
 * web-api.c - the JSON API of `dagctl web` under /api/v1/: each route is one
 * or a few protocol commands sent to dagd on a connection of its own, and
 * the daemon's error codes become HTTP statuses.  The spec's two routes are
 * here with its shapes: PATCH projects/P/autonomous-execution answers the
 * project, and POST sandboxes/S/task-complete is task.complete with the
 * attempt's token, for sandboxes that reach HTTP but not the socket.
 */
#include <inttypes.h>
#include <string.h>

#include "web.h"

/* One command on a connection of its own.  0 and *ret_result; -EREMOTEIO and
 * *ret_error (the daemon's error object) if it refused; else the transport's
 * error (ctl_lost() tells a daemon that is away). */
int web_call(struct web *w, const char *cmd, json_object *args, json_object **ret_result,
	     json_object **ret_error) {
	_cleanup_(json_object_putp) json_object *reply = NULL;
	struct ctl c = { .socket_path = w->socket_path, .fd = -EBADF, .next_id = 1, .quiet = true };
	json_object *ok, *v;
	int r;

	r = ctl_request(&c, cmd, args, &reply);
	ctl_disconnect(&c);
	free(c.buf);
	if (r < 0)
		return r;
	ok = ctl_get(reply, "ok", json_type_boolean);
	if (ok && json_object_get_boolean(ok) && (v = ctl_get(reply, "result", json_type_object))) {
		*ret_result = json_object_get(v);
		return 0;
	}
	v = ctl_get(reply, "error", json_type_object);
	if (!ok || !v)
		return -EBADMSG;
	if (ret_error)
		*ret_error = json_object_get(v);
	return -EREMOTEIO;
}

static unsigned code_status(const char *code) {
	static const struct { const char *code; unsigned status; } map[] = {
		{ "bad_request", 400 }, { "permission_denied", 403 }, { "not_found", 404 },
		{ "conflict", 409 }, { "invalid_state", 409 }, { "unsupported", 501 }, { "unavailable", 503 },
	};

	for (size_t i = 0; i < ELEMENTSOF(map); i++)
		if (strcmp(map[i].code, code) == 0)
			return map[i].status;
	return 500;
}

/* The answer for a failed web_call(). */
static enum MHD_Result call_failed(struct web_req *q, int r, json_object *error) {
	if (r == -EREMOTEIO && error) {
		_cleanup_(json_object_putp) json_object *o = json_object_new_object();

		if (!o)
			return MHD_NO;
		json_object_object_add(o, "error", json_object_get(error));
		return web_json(q, code_status(ctl_str(error, "code")), o);
	}
	if (ctl_lost(r))
		return web_error(q, 503, "daemon_unavailable", "dagd is not reachable at '%s'",
				 q->w->socket_path);
	return web_error(q, 502, "bad_gateway", "dagd's answer made no sense (%s)", strerror(-r));
}

/* Calls cmd and answers its result (or only its member `member`). */
static enum MHD_Result forward(struct web_req *q, const char *cmd, json_object *args,
			       const char *member) {
	_cleanup_(json_object_putp) json_object *result = NULL, *error = NULL;
	json_object *v;
	int r;

	r = web_call(q->w, cmd, args, &result, &error);
	if (r < 0)
		return call_failed(q, r, error);
	if (member && (v = ctl_get(result, member, json_type_object)))
		return web_json(q, 200, v);
	return web_json(q, 200, result);
}

static json_object *args1(const char *key, const char *value) {
	json_object *o = json_object_new_object();

	if (o)
		json_object_object_add(o, key, json_object_new_string(value));
	return o;
}

static const char *query(struct web_req *q, const char *key) {
	return MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, key);
}

/* Adds the query parameter key, a whole number, to args. */
static int query_int(struct web_req *q, json_object *args, const char *key) {
	const char *s = query(q, key);
	char *end;
	long long n;

	if (!s)
		return 0;
	errno = 0;
	n = strtoll(s, &end, 10);
	if (errno || end == s || *end || n < 0)
		return -EINVAL;
	json_object_object_add(args, key, json_object_new_int64(n));
	return 0;
}

/* Copies the body's member key into args, if it has the type. */
static bool take(struct web_req *q, json_object *args, const char *key, const char *as,
		 json_type type) {
	json_object *v;

	if (!q->body || !json_object_object_get_ex(q->body, key, &v) || !json_object_is_type(v, type))
		return false;
	json_object_object_add(args, as, json_object_get(v));
	return true;
}

/* The board of a project: the seq to follow from, then the project and its
 * tasks; what the events after that seq change comes by the stream. */
static enum MHD_Result board(struct web_req *q, const char *project) {
	_cleanup_(json_object_putp) json_object *status = NULL, *p = NULL, *tasks = NULL,
		*error = NULL, *args = args1("project", project), *o = json_object_new_object();
	int r;

	if (!args || !o)
		return MHD_NO;
	r = web_call(q->w, "daemon.status", NULL, &status, &error);
	if (r >= 0)
		r = web_call(q->w, "project.get", args, &p, &error);
	if (r >= 0)
		r = web_call(q->w, "task.list", args, &tasks, &error);
	if (r < 0)
		return call_failed(q, r, error);
	json_object_object_add(o, "last_seq", json_object_get(ctl_get(status, "last_event_seq", json_type_int)));
	json_object_object_add(o, "project", json_object_get(ctl_get(p, "project", json_type_object)));
	json_object_object_add(o, "tasks", json_object_get(ctl_get(tasks, "tasks", json_type_array)));
	return web_json(q, 200, o);
}

static enum MHD_Result project_route(struct web_req *q, bool get) {
	_cleanup_(json_object_putp) json_object *args = args1("project", q->path[1]);
	const char *what = q->npath == 3 ? q->path[2] : NULL;

	if (!args)
		return MHD_NO;
	if (get && !what)
		return forward(q, "project.get", args, NULL);
	if (get && strcmp(what, "board") == 0)
		return board(q, q->path[1]);
	if (get && strcmp(what, "tasks") == 0)
		return forward(q, "task.list", args, NULL);
	if (get)
		return web_error(q, 404, "not_found", "no such route");

	if (strcmp(what ?: "", "autonomous-execution") == 0 || strcmp(what ?: "", "autonomous") == 0) {
		if (!take(q, args, "enabled", "enabled", json_type_boolean))
			return web_error(q, 400, "bad_request", "the body needs \"enabled\": true or false");
		/* the spec's route answers the project itself */
		return forward(q, "project.set_autonomous", args,
			       strcmp(what, "autonomous-execution") == 0 ? "project" : NULL);
	}
	if (strcmp(what ?: "", "start") == 0)
		return forward(q, "project.start", args, NULL);
	if (strcmp(what ?: "", "settings") == 0) {
		bool any = take(q, args, "max_concurrency", "max_concurrency", json_type_int);

		any |= take(q, args, "autonomous_execution_enabled", "autonomous", json_type_boolean);
		if (!any)
			return web_error(q, 400, "bad_request", "nothing to change");
		return forward(q, "project.update", args, NULL);
	}
	return web_error(q, 404, "not_found", "no such route");
}

static enum MHD_Result task_route(struct web_req *q, bool get) {
	static const char *const actions[][2] = {
		{ "start", "task.start" }, { "cancel", "task.cancel" }, { "retry", "task.retry" },
	};
	_cleanup_(json_object_putp) json_object *args = args1("task_id", q->path[1]);
	const char *what = q->npath == 3 ? q->path[2] : NULL;

	if (!args)
		return MHD_NO;
	if (get && !what)
		return forward(q, "task.get", args, NULL);
	if (get && strcmp(what, "logs") == 0) {
		if (query_int(q, args, "attempt") < 0 || query_int(q, args, "offset") < 0)
			return web_error(q, 400, "bad_request", "attempt and offset are whole numbers");
		return forward(q, "task.logs", args, NULL);
	}
	if (get && strcmp(what, "log-stream") == 0)
		return web_log_stream(q, q->path[1]);
	/* an approval task's decision: {"result"} or {"message"} */
	if (!get && strcmp(what ?: "", "approve") == 0) {
		json_object *v;

		if (q->body && json_object_object_get_ex(q->body, "result", &v))
			json_object_object_add(args, "result", json_object_get(v));
		return forward(q, "task.approve", args, NULL);
	}
	if (!get && strcmp(what ?: "", "reject") == 0) {
		(void) take(q, args, "message", "message", json_type_string);
		return forward(q, "task.reject", args, NULL);
	}
	for (size_t i = 0; !get && what && i < ELEMENTSOF(actions); i++)
		if (strcmp(what, actions[i][0]) == 0)
			return forward(q, actions[i][1], args, NULL);
	return web_error(q, 404, "not_found", "no such route");
}

enum MHD_Result web_api(struct web_req *q) {
	bool get = strcmp(q->method, "GET") == 0;
	const char *p0 = q->npath > 0 ? q->path[0] : "";

	if (!get && strcmp(q->method, "POST") != 0 && strcmp(q->method, "PATCH") != 0)
		return web_error(q, 405, "bad_request", "method %s not allowed", q->method);
	if (get && q->npath == 1 && strcmp(p0, "status") == 0)
		return forward(q, "daemon.status", NULL, NULL);
	if (get && q->npath == 1 && strcmp(p0, "projects") == 0)
		return forward(q, "project.list", NULL, NULL);
	if (get && q->npath == 1 && strcmp(p0, "events") == 0)
		return web_events(q);
	if (q->npath >= 2 && q->npath <= 3 && strcmp(p0, "projects") == 0)
		return project_route(q, get);
	if (q->npath >= 2 && q->npath <= 3 && strcmp(p0, "tasks") == 0)
		return task_route(q, get);
	return web_error(q, 404, "not_found", "no such route");
}

/* "t-N.A" (or "t-N.A.v", its validator): the task and the attempt. */
static int parse_sandbox(const char *sandbox_id, char task_id[static 32], unsigned *ret_attempt) {
	const char *dot = strchr(sandbox_id, '.');
	unsigned attempt;
	int n = 0;

	if (!dot || dot - sandbox_id >= 32 || strncmp(sandbox_id, "t-", 2) != 0)
		return -EINVAL;
	if (sscanf(dot + 1, "%u%n", &attempt, &n) != 1 || (dot[1 + n] && strcmp(dot + 1 + n, ".v") != 0))
		return -EINVAL;
	snprintf(task_id, 32, "%.*s", (int) (dot - sandbox_id), sandbox_id);
	*ret_attempt = attempt;
	return 0;
}

enum MHD_Result web_task_complete(struct web_req *q, const char *sandbox_id) {
	_cleanup_(json_object_putp) json_object *args = json_object_new_object(), *got = NULL,
		*result = NULL, *error = NULL;
	const char *auth = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "Authorization");
	json_object *task_id, *t;
	char sb_task[32];
	unsigned attempt;
	int r;

	if (!args)
		return MHD_NO;
	if (!auth || strncasecmp(auth, "Bearer ", 7) != 0 || !auth[7])
		return web_error(q, 401, "unauthorized", "a sandbox gives its task's token: "
				 "Authorization: Bearer $DAGD_TASK_TOKEN");
	if (!q->body || !json_object_object_get_ex(q->body, "task_id", &task_id) ||
	    !json_object_is_type(task_id, json_type_string))
		return web_error(q, 400, "bad_request", "the body needs \"task_id\"");
	if (parse_sandbox(sandbox_id, sb_task, &attempt) < 0 ||
	    strcmp(sb_task, json_object_get_string(task_id)) != 0)
		return web_error(q, 400, "bad_request", "sandbox %s is not one of task %s's",
				 sandbox_id, json_object_get_string(task_id));
	json_object_object_add(args, "task_id", json_object_get(task_id));
	r = web_call(q->w, "task.get", args, &got, &error);
	if (r < 0)
		return call_failed(q, r, error);
	t = ctl_get(got, "task", json_type_object);
	if (!t || json_object_get_int64(ctl_get(t, "attempt", json_type_int)) != (int64_t) attempt)
		return web_error(q, 403, "permission_denied",
				 "sandbox %s is not task %s's current attempt", sandbox_id,
				 json_object_get_string(task_id));

	if (json_object_object_get_ex(q->body, "success", NULL) &&
	    !take(q, args, "success", "success", json_type_boolean))
		return web_error(q, 400, "bad_request", "\"success\" is true or false");
	if (json_object_object_get_ex(q->body, "result", NULL))
		json_object_object_add(args, "result",
				       json_object_get(json_object_object_get(q->body, "result")));
	(void) take(q, args, "error_message", "error_message", json_type_string);
	json_object_object_add(args, "token", json_object_new_string(auth + 7));
	r = web_call(q->w, "task.complete", args, &result, &error);
	if (r < 0)
		return call_failed(q, r, error);
	return web_json(q, 200, result);
}
