/*
 * engine-sandbox.c - sandboxes as the plugins report them: started, output,
 * exited, judged; timeouts, results left beside the log, and the exits a
 * commit made durable handed back to their executors.
 */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/random.h>
#include <unistd.h>

#include "dagd.h"

struct task *sandbox_task(const struct sandbox *sb)
{
	struct task *t = task_at(sb->task_id);

	return t && task_sb(t) == sb ? t : NULL;
}

int on_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct sandbox *sb = userdata;

	sb->timer = sd_event_source_unref(sb->timer);
	if (sb->exited)
		return 0;
	log_info("sandbox %s timed out; stopping it", sb->id);
	sb->timed_out = true;
	sandbox_cancel(sb);
	return 0;
}

void sandbox_started(struct sandbox *sb, const char *handle)
{
	struct task *t = sandbox_task(sb);

	if (sb->started || sb->exited)
		return;
	sb->started = true;
	set_str(&sb->handle, handle);
	if (!t)
		return;
	set_str(&task_def(t)->sandbox_handle, handle);
	if (ext_of(t)->timeout_usec > 0 && !sb->timer)
		(void) sd_event_add_time_relative(D.event, &sb->timer, CLOCK_MONOTONIC, ext_of(t)->timeout_usec,
						  10 * USEC_PER_MSEC, on_timeout, sb);
	if (t->status == ST_SPAWNING)
		set_status(t, ST_RUNNING);
	else
		task_save(t);
	event_spawned(t, sb);
}

void sandbox_output(struct sandbox *sb, const void *data, size_t size)
{
	if (sb->log_fd < 0)
		sb->log_fd = log_open(sb->log_path, O_WRONLY | O_APPEND);
	if (sb->log_fd >= 0)
		(void) !write(sb->log_fd, data, size);
}

/* A plugin whose sandboxes cannot reach the socket leaves an attempt's
 * result beside its log, as "<attempt>.result.json" (see executor.h): on a
 * clean exit it becomes the task's result, unless one was reported. */
static void result_from_file(struct task *t, const struct sandbox *sb)
{
	_cleanup_free_ char *path = NULL, *buf = NULL;
	_cleanup_close_ int fd = -EBADF;
	json_object *v;
	ssize_t n;

	if (task_def(t)->result || sb->validator)
		return;
	path = xasprintf("%.*s.result.json", (int) (strlen(sb->log_path) - strlen(".log")), sb->log_path);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return;
	buf = xrealloc(NULL, 256 * 1024 + 1);
	n = read(fd, buf, 256 * 1024 + 1);
	if (n < 0 || n > 256 * 1024) {
		log_warning("task t-%lld: ignoring %s: unreadable or over 256 KiB", (long long) t->id, path);
		return;
	}
	buf[n] = 0;
	v = json_parse(buf);
	if (!v && strcmp(buf, "null") != 0) {
		log_warning("task t-%lld: ignoring %s: not JSON", (long long) t->id, path);
		return;
	}
	set_str(&task_def(t)->result, json_text(v));
	json_object_put(v);
}

struct exit_info {
	int code, signal;
	char *reason, *message;
	bool result_left;
};

/* Judge a task by how its sandbox ended.  Kept apart from sandbox_exited()
 * so that a batch that could not be committed can be judged again. */
static void sandbox_judge(struct sandbox *sb, const struct exit_info *e)
{
	struct task *t = sandbox_task(sb);
	char *msg;

	event_exited(t, sb, e->code, e->signal, sb->timed_out ? "timeout" : sb->cancelled ? "cancelled" :
		     e->reason ? e->reason : e->code == 0 ? "exited" : "failed");
	if (!t)
		return;
	task_sb_set(t, NULL);
	if (!status_is_active(t->status)) {
		queue_sync(t);
		return;
	}
	if (sb->timed_out)
		msg = xasprintf("timed out after %.3g s", (double) ext_of(t)->timeout_usec / 1e6);
	else if (e->code == 0) {
		if (e->result_left)
			result_from_file(t, sb);
		task_succeeded(t, sb->id, NULL);
		return;
	} else if (e->signal)
		msg = xasprintf("%s%s killed by signal %d (%s)%s%s", sb->validator ? "validation: " : "",
				e->reason && !strcmp(e->reason, "oom") ? "out of memory:" : "",
				e->signal, strsignal(e->signal), e->message ? ": " : "",
				e->message ? e->message : "");
	else if (e->code > 0)
		msg = xasprintf("%sexited with code %d%s%s", sb->validator ? "validation failed: " : "",
				e->code, e->message ? ": " : "", e->message ? e->message : "");
	else
		msg = xasprintf("sandbox failed%s%s", e->message ? ": " : "", e->message ? e->message : "");
	{
		struct fail_how how = {
			.exit_code = !sb->timed_out && !e->signal ? e->code : -1,
			.lost = !sb->timed_out && e->reason &&
				(strcmp(e->reason, "lost") == 0 || strcmp(e->reason, "error") == 0),
		};
		task_failed_how(t, msg, &how);
	}
	free(msg);
}

struct reaped {
	struct sandbox *sb;
	struct exit_info e;
};
static struct reaped *reaped_list;
static size_t n_reaped, reaped_cap;

/* The logs whose sandbox ended since the end of a turn last looked
 * (engine_take_ended()): what their followers wait for. */
static struct log_end *ended;
static size_t n_ended, ended_cap;

/* Those two lists keep their room from turn to turn up to this many
 * entries (a turn's exits: 64 at the default concurrency).  Made again
 * each turn, they were a kilobyte and more: a size for which glibc's
 * malloc first consolidates its fast bins. */
#define LIST_KEPT 1024

/* After a batch that could not be committed was reloaded: the exits it held
 * are judged again. */
void sandbox_rejudge(void)
{
	for (size_t i = 0; i < n_reaped; i++) {
		struct task *t = task_at(reaped_list[i].sb->task_id);

		if (t && task_def(t)->sandbox_id && strcmp(task_def(t)->sandbox_id, reaped_list[i].sb->id) == 0 &&
		    status_is_active(t->status)) {
			task_sb_set(t, reaped_list[i].sb);
			sandbox_judge(reaped_list[i].sb, &reaped_list[i].e);
		}
	}
}

void sandbox_exited(struct sandbox *sb, const struct dagd_exit *e)
{
	struct reaped *r;

	if (sb->exited)
		return;
	sb->exited = true;
	sb->timer = sd_event_source_unref(sb->timer);
	closep(&sb->log_fd);
	sandbox_unlink(sb);
	if (n_reaped == reaped_cap) {
		reaped_cap = reaped_cap ? 2 * reaped_cap : 16;
		reaped_list = xrealloc(reaped_list, reaped_cap * sizeof(*reaped_list));
	}
	r = &reaped_list[n_reaped++];
	r->sb = sb;
	r->e.code = e->code;
	r->e.signal = e->signal;
	r->e.reason = xstrdup(e->reason);
	r->e.message = xstrdup(e->message);
	r->e.result_left = e->result_left;
	log_debug("sandbox %s exited: code %d signal %d", sb->id, e->code, e->signal);
	sandbox_judge(sb, &r->e);
	crash_point("exited");
	if (n_ended == ended_cap) {
		ended_cap = ended_cap ? 2 * ended_cap : 16;
		ended = xrealloc(ended, ended_cap * sizeof(*ended));
	}
	ended[n_ended++] = (struct log_end) { sb->task_id, sb->attempt, sb->validator };
}

/* What the open batch holds that must not wait for a later commit: exits
 * judged (they are forgotten only once committed), or a status change
 * other than a spawn's start (a spawn that failed: its failure, and what
 * follows from it, are read at once). */
bool engine_exits_pending(void)
{
	return n_reaped > 0 || status_changed_since_commit;
}

struct sandbox *sandbox_list(void)
{
	return sandboxes;
}

/* What the end of a turn has to look at (the server's flush, which checks
 * after whatever the loop ran): a task that may be dispatched (if the caller
 * dispatches this turn), a sandbox that ended.  What was written is the
 * store's to say (store_writes()). */
bool engine_changed(bool dispatching)
{
	return (dispatching && dispatch_dirty) || n_ended > 0;
}

/* The logs ended since the last call: the engine's list, as it is until
 * the next sandbox ends. */
const struct log_end *engine_take_ended(size_t *ret_n)
{
	if (n_ended == 0 && ended_cap > LIST_KEPT) {
		free(ended);
		ended = NULL;
		ended_cap = 0;
	}
	*ret_n = n_ended;
	n_ended = 0;
	return ended;
}

/* The engine's end (or a reload): the lists' room, if nothing waits in it. */
void engine_lists_free(void)
{
	free(ended);
	ended = NULL;
	n_ended = ended_cap = 0;
	if (n_reaped == 0) {
		free(reaped_list);
		reaped_list = NULL;
		reaped_cap = 0;
	}
}

/* The batch is on disk: what exited in it is done with, and its executor may
 * forget it. */
void engine_committed(void)
{
	if (n_reaped > 0)
		crash_point("committed");
	for (size_t i = 0; i < n_reaped; i++) {
		struct sandbox *sb = reaped_list[i].sb;

		executor_forget(executor_find(sb->executor), sb->id, sb->handle);
		free(reaped_list[i].e.reason);
		free(reaped_list[i].e.message);
		sandbox_free(reaped_list[i].sb);
	}
	n_reaped = 0;
	if (reaped_cap > LIST_KEPT) {
		free(reaped_list);
		reaped_list = NULL;
		reaped_cap = 0;
	}
	status_changed_since_commit = false;
	engine_reservations_committed();
	engine_defs_release();
}
