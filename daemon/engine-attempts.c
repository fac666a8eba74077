/*
 * engine-attempts.c - retries that know why.  A failed attempt is retried or
 * not by rules, and the one that decided is named in TASK_FAILED:
 *
 *   max_lost_retries    a sandbox the executor lost (exit reason "lost" or
 *                       "error", or one gone while dagd was down) has a
 *                       budget of its own (default 3) that does not use up
 *                       max_retries;
 *   no_retry_on_exit    an exit code in this list is never retried;
 *   retry_on_exit       only an exit code in this list is retried (a signal,
 *                       a timeout or a reported failure has no code: not
 *                       retried);
 *   max_retries         how many times a failure is retried;
 *   max_retry_duration  no retry once this long has passed since the first
 *                       attempt started.
 *
 * Also the task.add arguments of the rules, pools and approval tasks, and the
 * task_attempts row that keeps them and what must survive a restart.
 */
#include <stdio.h>
#include <string.h>

#include "dagd.h"
#include "jw.h"

static const char *const kinds[] = { "command", "approval", NULL };

bool attempts_is_approval(json_object *args)
{
	const char *k = NULL;

	return arg_string(args, "kind", &k) == 0 && strcmp(k, "approval") == 0;
}

static int check_codes(json_object *args, const char *key)
{
	json_object *a;
	int r = arg_array(args, key, &a);

	if (r < 0)
		return r;
	if (json_object_array_length(a) == 0)
		return errorf(-EINVAL, "argument '%s' must be a non-empty array of exit codes (0-255)", key);
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		json_object *v = json_object_array_get_idx(a, i);

		if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0 ||
		    json_object_get_int64(v) > 255)
			return errorf(-EINVAL, "argument '%s' must be an array of exit codes (integers 0-255); "
				      "'%s' is not one", key, json_text(v));
	}
	return 0;
}

/* The arguments of the rules, pools and kind, as task.add takes them (the
 * rest is check_task_args()'s). */
int attempts_check_args(json_object *args)
{
	const char *s;
	uint64_t u;
	int64_t i;
	int r, on, off;

	r = arg_string(args, "kind", &s);
	if (r < 0 && r != -ENOENT)
		return r;
	if (r == 0) {
		bool known = false;

		for (size_t k = 0; kinds[k]; k++)
			known = known || strcmp(kinds[k], s) == 0;
		if (!known)
			return errorf(-EINVAL, "kind '%.*s' must be command or approval", utf8_prefix(s, 64), s);
	}
	on = check_codes(args, "retry_on_exit");
	if (on < 0 && on != -ENOENT)
		return on;
	off = check_codes(args, "no_retry_on_exit");
	if (off < 0 && off != -ENOENT)
		return off;
	if (on == 0 && off == 0)
		return errorf(-EINVAL, "give at most one of 'retry_on_exit' and 'no_retry_on_exit'");
	if ((r = arg_int(args, "max_lost_retries", 0, 1000, &i)) < 0 && r != -ENOENT)
		return r;
	if ((r = arg_seconds(args, "max_retry_duration", &u)) < 0 && r != -ENOENT)
		return r;
	r = arg_string(args, "on_timeout", &s);
	if (r < 0 && r != -ENOENT)
		return r;
	if (r == 0 && strcmp(s, "approve") != 0 && strcmp(s, "reject") != 0)
		return errorf(-EINVAL, "on_timeout '%.*s' must be approve or reject", utf8_prefix(s, 64), s);
	if (attempts_is_approval(args)) {
		static const char *const refused[] = {
			"command", "validation_command", "pools", "retry_on_exit", "no_retry_on_exit",
			"max_lost_retries", "max_retry_duration", "executor", "executor_options", "cwd", "env", NULL
		};

		for (size_t k = 0; refused[k]; k++)
			if (json_object_object_get_ex(args, refused[k], NULL))
				return errorf(-EINVAL, "argument '%s' is not for an approval task (kind approval runs "
					      "no sandbox)", refused[k]);
	} else if (r == 0)
		return errorf(-EINVAL, "argument 'on_timeout' is for approval tasks (kind approval) only");
	return pools_check_args(args);
}

void attempts_from_args(struct task *t, json_object *args)
{
	struct task_ext *x;
	json_object *a, *o;
	const char *s = NULL;
	uint64_t u;
	int64_t i;

	t->approval = attempts_is_approval(args);
	for (int k = 0; k < 2; k++)
		if (arg_array(args, k ? "no_retry_on_exit" : "retry_on_exit", &a) == 0) {
			x = task_ext(t);
			x->exit_rule = k ? EXIT_RULE_NO_RETRY_ON : EXIT_RULE_RETRY_ON;
			for (size_t n = 0; n < json_object_array_length(a); n++) {
				int c = json_object_get_int(json_object_array_get_idx(a, n));
				x->exit_codes[c / 64] |= 1ULL << (c % 64);
			}
		}
	if (arg_int(args, "max_lost_retries", 0, 1000, &i) == 0 && (unsigned) i != ext_of(t)->max_lost_retries)
		task_ext(t)->max_lost_retries = (unsigned) i;
	if (arg_seconds(args, "max_retry_duration", &u) == 0 && u > 0)
		task_ext(t)->max_retry_duration_usec = u;
	if (arg_object(args, "pools", &o) == 0) {
		x = task_ext(t);
		json_object_object_foreach(o, name, w)
			pool_use_add(t, pool_find(name), (unsigned) json_object_get_int(w));
	}
	if (arg_string(args, "on_timeout", &s) == 0 && strcmp(s, "approve") == 0)
		task_ext(t)->approve_on_timeout = true;
}

/* Does the task need a task_attempts row? Not if it uses none of this. */
bool attempts_row_wanted(const struct task *t)
{
	return t->approval || ext_of(t)->exit_rule != EXIT_RULE_NONE || ext_of(t)->max_lost_retries != 3 ||
	       ext_of(t)->max_retry_duration_usec > 0 || ext_of(t)->n_pools > 0 || ext_of(t)->lost_tries > 0 ||
	       ext_of(t)->first_started_at > 0;
}

static void codes_write(struct jw *w, const struct task *t, int rule)
{
	if (ext_of(t)->exit_rule != rule) {
		jw_raw(w, NULL);
		return;
	}
	jw_open(w, '[');
	for (int c = 0; c < 256; c++)
		if (ext_of(t)->exit_codes[c / 64] & (1ULL << (c % 64)))
			jw_int(w, c);
	jw_close(w, ']');
}

/* The task's retry rules, pools and approval, in its JSON (task_write_json). */
void attempts_write_json(struct jw *w, const struct task *t)
{
	jw_key(w, "kind");
	jw_str(w, t->approval ? "approval" : "command");
	jw_key(w, "retry_on_exit");
	codes_write(w, t, EXIT_RULE_RETRY_ON);
	jw_key(w, "no_retry_on_exit");
	codes_write(w, t, EXIT_RULE_NO_RETRY_ON);
	jw_key(w, "max_lost_retries");
	jw_int(w, ext_of(t)->max_lost_retries);
	jw_key(w, "lost_retries");
	jw_int(w, ext_of(t)->lost_tries);
	jw_key(w, "max_retry_duration");
	if (ext_of(t)->max_retry_duration_usec)
		jw_double(w, (double) ext_of(t)->max_retry_duration_usec / 1e6);
	else
		jw_raw(w, NULL);
	jw_key(w, "first_started_at");
	jw_time(w, ext_of(t)->first_started_at);
	jw_key(w, "pools");
	jw_open(w, '{');
	for (size_t i = 0; i < ext_of(t)->n_pools; i++) {
		jw_key(w, ext_of(t)->pools[i].pool->name);
		jw_int(w, ext_of(t)->pools[i].weight);
	}
	jw_close(w, '}');
	if (t->approval) {
		jw_key(w, "on_timeout");
		jw_str(w, ext_of(t)->approve_on_timeout ? "approve" : "reject");
		jw_key(w, "approval_deadline");
		jw_time(w, ext_of(t)->approval_deadline);
	}
}

/* A new attempt was claimed: the first since the last task.retry starts
 * max_retry_duration's clock. */
void attempts_claimed(struct task *t)
{
	if (ext_of(t)->first_started_at == 0 && ext_of(t)->max_retry_duration_usec > 0) {
		task_ext(t)->first_started_at = task_time(t, AT_STARTED);
		(void) store_attempts_save(t);
	}
}

/* task.retry and task.rerun: the budgets start again. */
void attempts_reset(struct task *t)
{
	if (ext_of(t)->lost_tries == 0 && ext_of(t)->first_started_at == 0)
		return;
	task_ext(t)->lost_tries = 0;        /* one is not 0: it has an extension */
	task_ext(t)->first_started_at = 0;
	(void) store_attempts_save(t);
}

static bool code_listed(const struct task *t, int code)
{
	return code >= 0 && code < 256 && (ext_of(t)->exit_codes[code / 64] & (1ULL << (code % 64)));
}

static bool duration_spent(const struct task *t)
{
	return ext_of(t)->max_retry_duration_usec > 0 && ext_of(t)->first_started_at > 0 &&
	       now_usec() - ext_of(t)->first_started_at >= (int64_t) ext_of(t)->max_retry_duration_usec;
}

/* Is the failed attempt retried, and which rule said so? */
bool retry_decide(struct task *t, const struct fail_how *how, const char **ret_rule)
{
	int code = how ? how->exit_code : -1;

	if (how && how->lost) {
		if (duration_spent(t)) {
			*ret_rule = "max_retry_duration";
			return false;
		}
		*ret_rule = "max_lost_retries";
		if (ext_of(t)->lost_tries >= ext_of(t)->max_lost_retries)
			return false;
		task_ext(t)->lost_tries++;
		if (t->tries > 0)
			t->tries--;     /* not an attempt of max_retries' */
		(void) store_attempts_save(t);
		return true;
	}
	if (ext_of(t)->exit_rule == EXIT_RULE_NO_RETRY_ON && code_listed(t, code)) {
		*ret_rule = "no_retry_on_exit";
		return false;
	}
	if (ext_of(t)->exit_rule == EXIT_RULE_RETRY_ON && !code_listed(t, code)) {
		*ret_rule = "retry_on_exit";
		return false;
	}
	*ret_rule = "max_retries";
	if (t->tries > ext_of(t)->max_retries)
		return false;
	if (duration_spent(t)) {
		*ret_rule = "max_retry_duration";
		return false;
	}
	if (ext_of(t)->exit_rule == EXIT_RULE_RETRY_ON)
		*ret_rule = "retry_on_exit";
	return true;
}

/* At load: a task's task_attempts row, as the store read it. */
int attempts_row_loaded(const struct attempts_row *r)
{
	struct task *t = task_at(r->task_id);
	struct task_ext *x;

	if (!t)
		return 0;
	t->approval = r->approval;
	if (r->exit_rule == EXIT_RULE_NONE && r->max_lost_retries == task_ext_default.max_lost_retries &&
	    !r->max_retry_duration_usec && !r->n_pools && !r->approve_on_timeout && !r->lost_tries &&
	    !r->first_started_at && !r->approval_deadline)
		return 0;               /* an approval task with no more: no extension */
	x = task_ext(t);
	x->exit_rule = (int8_t) r->exit_rule;
	memcpy(x->exit_codes, r->exit_codes, sizeof(x->exit_codes));
	x->max_lost_retries = r->max_lost_retries;
	x->max_retry_duration_usec = r->max_retry_duration_usec;
	for (size_t i = 0; i < r->n_pools; i++) {
		struct pool *p = pool_find(r->pools[i].name);

		if (!p)
			return errorf(-EBADMSG, "database: task %lld names pool '%s', which does not exist",
				      (long long) r->task_id, r->pools[i].name);
		pool_use_add(t, p, r->pools[i].weight);
	}
	x->approve_on_timeout = r->approve_on_timeout;
	x->lost_tries = r->lost_tries;
	x->first_started_at = r->first_started_at;
	x->approval_deadline = r->approval_deadline;
	return 0;
}

/* At load: an approval's timer again, from its stored deadline. */
void attempts_loaded(struct task *t)
{
	if (t->status == ST_AWAITING_APPROVAL)
		approval_arm(t);
}

/* After set_status(): what an approval task's status change means. */
void attempts_status_changed(struct task *t, enum status old)
{
	if (old == ST_AWAITING_APPROVAL && t->status != ST_AWAITING_APPROVAL) {
		if (task_ext_held(t))
			task_ext(t)->approval_timer = sd_event_source_unref(task_ext(t)->approval_timer);
		if (ext_of(t)->approval_deadline) {
			task_ext(t)->approval_deadline = 0;
			(void) store_attempts_save(t);
		}
	}
	if (t->status == ST_AWAITING_APPROVAL && old != ST_AWAITING_APPROVAL)
		approval_enter(t);
}
