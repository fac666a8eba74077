/*
 * steps.c - the steps of a daytona sandbox's life, each a request whose
 * answer makes the next: the create; polls of the sandbox until it has
 * started; the session; the inputs file's upload; the command's exec; polls
 * of the command (now and then of the sandbox too, and of the output so far)
 * until it has an exit code; then its output, and its result file.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "daytona.h"

/* While a command runs, its sandbox's state is asked every this many polls,
 * and its output as many polls later. */
#define STATE_EVERY 5
#define LOGS_AT 2
/* The largest result kept. */
#define RESULT_MAX (1u << 20)

static void check_state(struct dt_sandbox *x, json_object *sandbox);

static void on_sandbox(struct dt_sandbox *x, struct http_request *req) {
	_cleanup_json_ json_object *o = NULL;

	if (http_status(req) == 404) {
		sandbox_end(x, -1, "lost", strdupf("sandbox %s is gone", x->id));
		return;
	}
	if (!http_ok(req) || !(o = json_tokener_parse(http_body(req)))) {
		sandbox_fail(x, "lost", "cannot get the sandbox's state", req);
		return;
	}
	check_state(x, o);
}

static void get_sandbox(struct dt_sandbox *x) {
	send_request(x, "GET", strdupf("%s/sandbox/%s", x->d->set.api_url, x->id), NULL, true, on_sandbox);
}

int on_start_poll(sd_event_source *s, uint64_t usec, void *userdata) {
	struct dt_sandbox *x = userdata;

	x->timer = sd_event_source_disable_unref(x->timer);
	get_sandbox(x);
	return 0;
}

static void poll_command(struct dt_sandbox *x);

static int on_command_poll(sd_event_source *s, uint64_t usec, void *userdata) {
	struct dt_sandbox *x = userdata;

	x->timer = sd_event_source_disable_unref(x->timer);
	poll_command(x);
	return 0;
}

/* The command's whole output so far, of which the log lacks the end. */
void output_new(struct dt_sandbox *x, const char *body) {
	size_t n = strlen(body);

	if (n <= x->log_sent)
		return;
	x->d->host->sandbox_output(x->sb, body + x->log_sent, n - x->log_sent);
	x->log_sent = n;
}

static void on_run_logs(struct dt_sandbox *x, struct http_request *req) {
	if (http_ok(req))
		output_new(x, http_body(req));
	poll_command(x);
}

static int on_run_poll(sd_event_source *s, uint64_t usec, void *userdata) {
	struct dt_sandbox *x = userdata;
	unsigned n = ++x->polls % STATE_EVERY;

	x->timer = sd_event_source_disable_unref(x->timer);
	/* every few polls, and while adopting, the sandbox itself; as often,
	 * the output so far */
	if (!x->cmd_id || n == 0)
		get_sandbox(x);
	else if (n == LOGS_AT)
		send_request(x, "GET", strdupf("%s/process/session/%s/command/%s/logs", x->toolbox, x->session,
					       x->cmd_id), NULL, true, on_run_logs);
	else
		poll_command(x);
	return 0;
}

static void write_result(struct dt_sandbox *x, const char *body) {
	_cleanup_json_ json_object *o = json_tokener_parse(body);
	_cleanup_free_ char *path = NULL, *tmp = NULL;
	size_t n;
	int fd;

	if (!o) {
		x->d->host->log(x->sb, LOG_WARNING, "the result file %s holds no JSON; ignored", x->result_file);
		return;
	}
	if (!x->log_path)
		return;
	n = strlen(x->log_path);
	if (n > 4 && strcmp(x->log_path + n - 4, ".log") == 0)
		n -= 4;
	path = strdupf("%.*s.result.json", (int) n, x->log_path);
	tmp = path ? strdupf("%s.tmp", path) : NULL;
	if (!tmp)
		return;
	fd = open_in_log_dir(tmp, O_WRONLY | O_TRUNC);
	if (fd >= 0) {
		const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
		bool ok = write(fd, s, strlen(s)) == (ssize_t) strlen(s);

		ok = close(fd) == 0 && ok;
		if (ok && rename(tmp, path) == 0) {
			x->d->host->log(x->sb, LOG_INFO, "result: %s", s);
			return;
		}
		(void) unlink(tmp);
	}
	x->d->host->log(x->sb, LOG_WARNING, "cannot write the result to %s: %m", path);
}

static void on_result(struct dt_sandbox *x, struct http_request *req) {
	if (http_ok(req)) {
		if (strlen(http_body(req)) <= RESULT_MAX)
			write_result(x, http_body(req));
		else
			x->d->host->log(x->sb, LOG_WARNING, "the result file %s is too large; ignored", x->result_file);
	} else if (http_status(req) != 404) {
		_cleanup_free_ char *m = api_error(req);

		x->d->host->log(x->sb, LOG_WARNING, "cannot fetch the result file: %s", m ? m : "?");
	}
	sandbox_end(x, x->code, NULL, NULL);
}

static void on_logs(struct dt_sandbox *x, struct http_request *req) {
	_cleanup_free_ char *path = NULL;

	if (http_ok(req))
		output_new(x, http_body(req));
	else {
		_cleanup_free_ char *m = api_error(req);

		x->d->host->log(x->sb, LOG_WARNING, "cannot fetch the command's output: %s", m ? m : "?");
	}
	if (!x->result_file) {
		sandbox_end(x, x->code, NULL, NULL);
		return;
	}
	path = url_escape(x->result_file);
	x->step = STEP_RESULT;
	send_request(x, "GET", path ? strdupf("%s/files/download?path=%s", x->toolbox, path) : NULL, NULL, true,
		     on_result);
}

/* The command exited with code: its output, then its result. */
static void command_exited(struct dt_sandbox *x, int code) {
	x->code = code;
	x->step = STEP_LOGS;
	send_request(x, "GET", strdupf("%s/process/session/%s/command/%s/logs", x->toolbox, x->session, x->cmd_id),
		     NULL, true, on_logs);
}

/* A command's state, from GET .../command/{cmdId} or a session's list. */
static void check_command(struct dt_sandbox *x, json_object *cmd) {
	json_object *v;

	if (json_object_object_get_ex(cmd, "exitCode", &v) && v) {
		command_exited(x, json_object_get_int(v));
		return;
	}
	x->step = STEP_RUN;
	if (x->cancel)
		sandbox_end(x, -1, "cancelled", NULL);
	else
		later(x, x->d->set.poll_usec, on_run_poll);
}

void on_command(struct dt_sandbox *x, struct http_request *req) {
	_cleanup_json_ json_object *o = NULL;

	if (!http_ok(req) || !(o = json_tokener_parse(http_body(req)))) {
		/* the toolbox failed: what became of the sandbox? */
		x->d->host->log(x->sb, LOG_DEBUG, "the command's state: HTTP %ld; asking for the sandbox's",
				http_status(req));
		if (http_status(req) == 404 || ++x->poll_failures >= MAX_FAILURES)
			sandbox_fail(x, "lost", "cannot get the command's state", req);
		else
			get_sandbox(x);
		return;
	}
	x->poll_failures = 0;
	check_command(x, o);
}

static void poll_command(struct dt_sandbox *x) {
	send_request(x, "GET", strdupf("%s/process/session/%s/command/%s", x->toolbox, x->session, x->cmd_id),
		     NULL, true, on_command);
}

static void on_exec(struct dt_sandbox *x, struct http_request *req) {
	_cleanup_json_ json_object *o = NULL;
	json_object *v;

	if (!http_ok(req)) {
		sandbox_fail(x, "error", "cannot run the command in the sandbox", req);
		return;
	}
	o = json_tokener_parse(http_body(req));
	if (!o || !json_object_object_get_ex(o, "cmdId", &v) || !json_object_is_type(v, json_type_string)) {
		sandbox_end(x, -1, "error", strdup("the toolbox took the command but gave no cmdId"));
		return;
	}
	x->cmd_id = strdup(json_object_get_string(v));
	if (!x->cmd_id) {
		sandbox_end(x, -1, "error", strdup("out of memory"));
		return;
	}
	x->d->host->log(x->sb, LOG_DEBUG, "command %s runs in sandbox %s", x->cmd_id, x->id);
	check_command(x, o);
}

static void exec_command(struct dt_sandbox *x) {
	_cleanup_json_ json_object *o = json_object_new_object();

	json_object_object_add(o, "command", json_object_new_string(x->command));
	json_object_object_add(o, "runAsync", json_object_new_boolean(true));
	x->step = STEP_EXEC;
	send_request(x, "POST", strdupf("%s/process/session/%s/exec", x->toolbox, x->session),
		     json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), false, on_exec);
}

static void on_uploaded(struct dt_sandbox *x, struct http_request *req) {
	free(x->content_type);
	x->content_type = NULL;
	if (!http_ok(req)) {
		sandbox_fail(x, "error", "cannot upload the inputs file", req);
		return;
	}
	exec_command(x);
}

/* The inputs file (DAGD_INPUTS) into the sandbox, through the toolbox's
 * file API (multipart/form-data), before the command runs. */
static void upload_inputs(struct dt_sandbox *x) {
	static const char boundary[] = "dagd-inputs-8f3a1c7e5b2d4960";
	_cleanup_free_ char *path = url_escape(DAYTONA_INPUTS_FILE), *body = NULL;

	free(x->content_type);
	x->content_type = strdupf("Content-Type: multipart/form-data; boundary=%s", boundary);
	body = strdupf("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"dagd-inputs.json\"\r\n"
		       "Content-Type: application/json\r\n\r\n%s\r\n--%s--\r\n", boundary, x->inputs, boundary);
	if (!x->content_type || !path || !body) {
		sandbox_end(x, -1, "error", strdup("out of memory"));
		return;
	}
	x->step = STEP_SESSION;
	send_request(x, "POST", strdupf("%s/files/upload?path=%s", x->toolbox, path), body, true, on_uploaded);
}

static void on_session_created(struct dt_sandbox *x, struct http_request *req) {
	/* 409: made before a restart */
	if (!http_ok(req) && http_status(req) != 409) {
		sandbox_fail(x, "error", "cannot open a session in the sandbox", req);
		return;
	}
	if (!x->command) {
		sandbox_end(x, -1, "lost", strdup("the command was never started, and is not known any more"));
		return;
	}
	if (x->inputs)
		upload_inputs(x);
	else
		exec_command(x);
}

static void create_session(struct dt_sandbox *x) {
	_cleanup_json_ json_object *o = json_object_new_object();

	json_object_object_add(o, "sessionId", json_object_new_string(x->session));
	x->step = STEP_SESSION;
	send_request(x, "POST", strdupf("%s/process/session", x->toolbox),
		     json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), true, on_session_created);
}

/* After adopt: the session's command, if it has one. */
static void on_session(struct dt_sandbox *x, struct http_request *req) {
	_cleanup_json_ json_object *o = NULL;
	json_object *cmds, *last, *v;
	size_t n;

	if (http_status(req) == 404) {
		create_session(x);
		return;
	}
	if (!http_ok(req) || !(o = json_tokener_parse(http_body(req)))) {
		sandbox_fail(x, "lost", "cannot find the session again", req);
		return;
	}
	if (!json_object_object_get_ex(o, "commands", &cmds) || !json_object_is_type(cmds, json_type_array) ||
	    (n = json_object_array_length(cmds)) == 0) {
		on_session_created(x, req);
		return;
	}
	last = json_object_array_get_idx(cmds, n - 1);
	if (!json_object_object_get_ex(last, "id", &v) || !(x->cmd_id = strdup(json_object_get_string(v)))) {
		sandbox_end(x, -1, "lost", strdup("the session's command has no id"));
		return;
	}
	x->d->host->log(x->sb, LOG_INFO, "found command %s of sandbox %s again", x->cmd_id, x->id);
	check_command(x, last);
}

static void sandbox_ready(struct dt_sandbox *x) {
	if (x->cmd_id) {
		later(x, x->d->set.poll_usec, on_run_poll);
		return;
	}
	if (x->adopted) {
		x->step = STEP_SESSION;
		send_request(x, "GET", strdupf("%s/process/session/%s", x->toolbox, x->session), NULL, true,
			     on_session);
		return;
	}
	create_session(x);
}

static void check_state(struct dt_sandbox *x, json_object *sandbox) {
	const char *state = get_str(sandbox, "state"), *reason = get_str(sandbox, "errorReason");
	const char *proxy = get_str(sandbox, "toolboxProxyUrl");

	if (x->cancel) {
		sandbox_end(x, -1, "cancelled", NULL);
		return;
	}
	if (!state)
		state = "unknown";
	if (strcmp(state, "error") == 0 || strcmp(state, "build_failed") == 0) {
		bool running = x->step >= STEP_SESSION;

		sandbox_end(x, -1, running ? "lost" : "error",
			    strdupf("sandbox %s %s: %s", x->id,
				    strcmp(state, "build_failed") == 0 ? "failed to build" :
				    running ? "failed while the command ran" : "failed to start",
				    reason ? reason : "no reason given"));
		return;
	}
	if (strcmp(state, "started") == 0) {
		if (!x->toolbox) {
			size_t n = proxy ? strlen(proxy) : 0;

			if (n == 0) {
				sandbox_end(x, -1, "error", strdupf("sandbox %s has no toolboxProxyUrl", x->id));
				return;
			}
			x->toolbox = strdupf("%.*s/%s", (int) (proxy[n - 1] == '/' ? n - 1 : n), proxy, x->id);
			if (!x->toolbox) {
				sandbox_end(x, -1, "error", strdup("out of memory"));
				return;
			}
		}
		/* running: on to the command, later if its state was not to be had */
		if (x->step >= STEP_RUN && x->cmd_id && x->poll_failures == 0)
			poll_command(x);
		else if (x->step >= STEP_RUN && x->cmd_id)
			later(x, backoff_usec(x->d, x->poll_failures), on_command_poll);
		else
			sandbox_ready(x);
		return;
	}
	if (x->step >= STEP_SESSION || strcmp(state, "destroyed") == 0 || strcmp(state, "destroying") == 0 ||
	    strcmp(state, "archived") == 0) {
		sandbox_end(x, -1, "lost", strdupf("sandbox %s is %s%s%s", x->id, state, reason ? ": " : "",
						    reason ? reason : ""));
		return;
	}
	if (now_usec(x->d) > x->deadline) {
		sandbox_end(x, -1, "error", strdupf("sandbox %s did not start within %llu s (it is %s)", x->id,
						     (unsigned long long) (x->d->set.start_timeout_usec / 1000000),
						     state));
		return;
	}
	x->step = STEP_START;
	later(x, x->d->set.poll_usec, on_start_poll);
}

void on_created(struct dt_sandbox *x, struct http_request *req) {
	_cleanup_json_ json_object *o = NULL;
	const char *id;

	if (!http_ok(req)) {
		sandbox_fail(x, "error", "cannot create the sandbox", req);
		return;
	}
	o = json_tokener_parse(http_body(req));
	id = get_str(o, "id");
	if (!id || !*id || strlen(id) > 512 || strpbrk(id, "/?#% ")) {
		sandbox_end(x, -1, "error", strdup("Daytona created a sandbox but did not say its id"));
		return;
	}
	x->id = strdup(id);
	if (!x->id) {
		sandbox_end(x, -1, "error", strdup("out of memory"));
		return;
	}
	x->d->host->sandbox_started(x->sb, x->id);
	x->d->host->log(x->sb, LOG_DEBUG, "created sandbox %s", x->id);
	check_state(x, o);
}
