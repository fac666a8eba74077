/*
 * executor.c - the slurm executor's entry points (executor.h, version 2):
 * init and shutdown, spawn, cancel, adopt, and list, forget and
 * check_options, over the job life of slurm.c.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "slurm.h"

/* How long list() may wait for squeue. */
#define LIST_TIMEOUT_USEC (30 * 1000000ULL)

static void slurm_shutdown(void *state) {
	struct slurm *s = state;

	if (!s)
		return;
	while (s->jobs)
		job_free(s->jobs);
	/* what runs (a submit too) is killed; list() finds its job by name */
	child_kill(s->squeue);
	child_runner_free(s->tools);
	while (s->ended) {
		struct ended *e = s->ended;

		s->ended = e->next;
		free(e->sandbox_id);
		free(e);
	}
	sd_event_source_disable_unref(s->poll_timer);
	slurm_settings_done(&s->set);
	free(s->spool);
	free(s);
}

static int slurm_init(const struct dagd_host *host, const char *options_json, void **ret_state, char **ret_error) {
	char hash[13], hostname[256] = "", *key;
	struct slurm *s;
	int r;

	r = host_check(host, true, ret_error);
	if (r < 0)
		return r;
	s = calloc(1, sizeof(*s));
	if (!s)
		return errorf(ret_error, -ENOMEM, "Out of memory");
	s->host = host;
	r = slurm_settings_parse(options_json, &s->set, ret_error);
	if (r < 0) {
		free(s);
		return r;
	}
	/* the host too: another host's daemon may keep its state in the same directory */
	if (gethostname(hostname, sizeof(hostname) - 1) < 0)
		snprintf(hostname, sizeof(hostname), "localhost");
	key = strdupf("%s:%s", hostname, host->instance);
	if (!key) {
		free(s);
		return errorf(ret_error, -ENOMEM, "Out of memory");
	}
	instance_hash(key, hash);
	free(key);
	snprintf(s->prefix, sizeof(s->prefix), JOB_PREFIX "%s-", hash);
	s->spool = s->set.spool_dir ? strdup(s->set.spool_dir) : strdupf("%s/" SPOOL_SUBDIR, host->state_dir);
	if (!s->spool) {
		r = errorf(ret_error, -ENOMEM, "Out of memory");
		goto fail;
	}
	r = mkdir_p(s->spool, 0755);
	if (r < 0) {
		r = errorf(ret_error, r, "cannot make the spool directory %s: %m", s->spool);
		goto fail;
	}
	r = child_runner_new(host->event, s->set.max_tools, &s->tools);
	/* the first poll from the loop: every sandbox is adopted by then */
	if (r >= 0)
		r = sd_event_add_time_relative(host->event, &s->poll_timer, CLOCK_MONOTONIC, 0, 10000, on_poll, s);
	if (r < 0) {
		r = errorf(ret_error, r, "cannot set up the event sources: %m");
		goto fail;
	}
	*ret_state = s;
	return 0;

fail:
	slurm_shutdown(s);
	return r;
}

static int slurm_spawn(void *state, struct dagd_sandbox *sb, const struct dagd_spawn *spec, void **ret_data,
		       char **ret_error) {
	struct slurm *s = state;
	_cleanup_free_ char *sh = NULL, *inputs = NULL;
	struct job_def def = {};
	struct sl_job *x;
	int r;

	if (!spec || !spec->sandbox_id || !spec->argv || !spec->argv[0])
		return errorf(ret_error, -EINVAL, "nothing to run");
	if (strpbrk(spec->sandbox_id, "/ \n"))
		return errorf(ret_error, -EINVAL, "invalid sandbox id '%s'", spec->sandbox_id);
	x = job_new(s, sb, spec);
	if (!x)
		return errorf(ret_error, -ENOMEM, "Out of memory");
	/* the inputs file (ABI 4) goes to the spool, which the nodes share */
	if (s->host->abi_version >= 4 && spec->inputs_path && !(inputs = spool_path(s->spool, x->name, ".inputs.json"))) {
		r = errorf(ret_error, -ENOMEM, "Out of memory");
		goto fail;
	}
	r = job_def_build(&(struct job_site) { .set = &s->set, .spool = s->spool, .instance = s->host->instance,
					       .name = x->name, .inputs = inputs }, spec, &def, ret_error);
	if (r < 0)
		goto fail;
	/* what an earlier start of this sandbox left (it never ran: the host says so) */
	spool_remove(s->spool, x->name);
	if (inputs && (r = inputs_copy(spec->inputs_path, inputs)) < 0) {
		r = errorf(ret_error, r, "cannot copy the inputs file to %s: %m", inputs);
		goto fail;
	}
	sh = spool_path(s->spool, x->name, ".sh");
	r = sh ? write_file_atomic(sh, def.script, 0644) : -ENOMEM;
	if (r < 0) {
		r = errorf(ret_error, r, "cannot write the job's script %s: %m", sh ? sh : "");
		goto fail;
	}
	x->argv = TAKE_PTR(def.argv);
	job_def_done(&def);
	job_submit(x);
	*ret_data = x;
	return 0;

fail:
	job_def_done(&def);
	job_free(x);
	return r;
}

static int slurm_cancel(void *state, struct dagd_sandbox *sb, void *data, uint64_t grace_usec) {
	struct sl_job *x = data;

	if (!x)
		return -EINVAL;
	if (x->cancel)
		return 0;
	x->cancel = true;
	/* no id yet: cancelled once it is known */
	if (!x->job_id)
		return 0;
	if (grace_usec == 0) {
		scancel(x->s, x->job_id, NULL);
		return 0;
	}
	scancel(x->s, x->job_id, "TERM");
	return sd_event_add_time_relative(x->s->host->event, &x->kill_timer, CLOCK_MONOTONIC, grace_usec, 10000,
					  on_kill_timer, x);
}

static int slurm_adopt(void *state, struct dagd_sandbox *sb, const struct dagd_spawn *spec, const char *handle,
		       void **ret_data, char **ret_error) {
	struct slurm *s = state;
	struct sl_job *x;
	struct stat st;

	if (!handle || !*handle || strlen(handle) > 31 || strspn(handle, "0123456789_") != strlen(handle))
		return errorf(ret_error, -EINVAL, "invalid handle '%s': expected a Slurm job id",
			      handle ? handle : "(null)");
	x = job_new(s, sb, spec);
	if (!x)
		return errorf(ret_error, -ENOMEM, "Out of memory");
	/* the log has what was copied before (the host writes nothing else there) */
	if (x->log_path && stat(x->log_path, &st) == 0)
		x->out_sent = st.st_size;
	x->sb = sb;
	job_running(x, handle);
	*ret_data = x;
	return 0;
}

struct listing {
	struct slurm *s;
	void (*found)(void *ctx, const char *sandbox_id, const char *handle);
	void *ctx;
	char **seen;
	size_t n_seen;
	int r;
};

static void list_one(void *userdata, const char *sandbox_id, const char *job_id) {
	struct listing *l = userdata;
	char **seen;

	for (size_t i = 0; i < l->n_seen; i++)
		if (strcmp(l->seen[i], sandbox_id) == 0)
			return;
	seen = realloc(l->seen, (l->n_seen + 1) * sizeof(*seen));
	if (!seen || !(seen[l->n_seen] = strdup(sandbox_id))) {
		if (seen)
			l->seen = seen;
		l->r = -ENOMEM;
		return;
	}
	l->seen = seen;
	l->n_seen++;
	l->found(l->ctx, sandbox_id, job_id);
}

static int slurm_list(void *state, void (*found)(void *ctx, const char *sandbox_id, const char *handle), void *ctx,
		      char **ret_error) {
	struct slurm *s = state;
	const char *argv[] = { s->set.squeue, "--me", "--noheader", "--states=all", "--format=" SQUEUE_FORMAT,
			       NULL };
	_cleanup_free_ char *out = NULL, *err = NULL;
	struct listing l = { .s = s, .found = found, .ctx = ctx };
	struct squeue_job *jobs = NULL;
	size_t n = 0, plen = strlen(s->prefix);
	int status, r;

	r = child_run_sync(argv, LIST_TIMEOUT_USEC, &status, &out, &err);
	if (r < 0)
		return errorf(ret_error, r, "cannot run squeue: %m");
	if (status != 0)
		return errorf(ret_error, -EIO, "squeue failed: %.*s", (int) strcspn(err, "\n"), err);
	r = squeue_parse(out, s->prefix, &jobs, &n);
	if (r < 0)
		return errorf(ret_error, r, "Out of memory");
	/* the jobs that run, and those that ended and are not forgotten */
	for (size_t i = 0; i < n && l.r >= 0; i++) {
		_cleanup_free_ char *sh = spool_path(s->spool, jobs[i].name, ".sh");
		struct stat st;

		if (!state_is_final(jobs[i].state) || (sh && stat(sh, &st) == 0))
			list_one(&l, jobs[i].name + plen, jobs[i].id);
	}
	squeue_jobs_free(jobs, n);
	/* the exits recorded, whether or not Slurm still knows the jobs */
	if (l.r >= 0)
		r = spool_list_exits(s->spool, s->prefix, list_one, &l);
	for (size_t i = 0; i < l.n_seen; i++)
		free(l.seen[i]);
	free(l.seen);
	if (l.r < 0 || r < 0)
		return errorf(ret_error, l.r < 0 ? l.r : r, "cannot list the spool directory %s: %m", s->spool);
	return 0;
}

static void slurm_forget(void *state, const char *sandbox_id, const char *handle) {
	struct slurm *s = state;
	_cleanup_free_ char *name = strdupf("%s%s", s->prefix, sandbox_id);
	bool ended = false;

	if (!name)
		return;
	for (struct ended **p = &s->ended; *p; p = &(*p)->next)
		if (strcmp((*p)->sandbox_id, sandbox_id) == 0) {
			struct ended *e = *p;

			*p = e->next;
			free(e->sandbox_id);
			free(e);
			ended = true;
			break;
		}
	/* a job that may still run is stopped first */
	if (!ended && !job_by_name(s, name) && handle && *handle && strspn(handle, "0123456789_") == strlen(handle))
		scancel(s, handle, NULL);
	spool_remove(s->spool, name);
}

static int slurm_check_options(void *state, const char *options_json, char **ret_error) {
	return task_options_check(options_json, ret_error);
}

DAGD_EXECUTOR_EXPORT const struct dagd_executor dagd_executor = {
	.abi_version = DAGD_EXECUTOR_ABI_VERSION,
	.size = sizeof(struct dagd_executor),
	.name = "slurm",
	.description = "runs each task as a batch job of a Slurm cluster, through sbatch, squeue, scontrol and scancel",
	.max_concurrency = 0,
	.init = slurm_init,
	.shutdown = slurm_shutdown,
	.spawn = slurm_spawn,
	.cancel = slurm_cancel,
	.adopt = slurm_adopt,
	.list = slurm_list,
	.forget = slurm_forget,
	.check_options = slurm_check_options,
};
