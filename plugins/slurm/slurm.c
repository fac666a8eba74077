/*
 * slurm.c - the `slurm` executor: each task attempt is a batch job of a
 * Slurm cluster, driven through Slurm's command-line tools, which the loop
 * runs as child processes (common/child.c: a time limit each, a few at once):
 *
 *   submit   sbatch --parsable --no-requeue --export=NONE, the job named
 *            "dagd-<instance hash>-<sandbox id>" (and its comment naming the
 *            sandbox and the instance), its wrapper script in the spool
 *            directory (spool.c); the job id is the handle.  A submit that
 *            timed out, or could not reach slurmctld, is looked up by its
 *            name in the next squeue that answers before it is sent again,
 *            so that an attempt never runs twice.
 *   poll     every poll_interval: the job's output file copied into the
 *            attempt's log as it grows, its exit file looked for; and one
 *            squeue for every job of this user, kept if named for this
 *            instance: the cross-check of jobs that left no exit file.
 *   end      the exit file decides.  A job that exited non-zero or was
 *            killed is looked up with `scontrol show job` while Slurm knows
 *            it, for the reason (its time limit, out of memory, cancelled
 *            outside dagd).  A job Slurm shows ended, or no longer shows, in
 *            two polls in a row with no exit file ends as Slurm says, or as
 *            "lost" once Slurm has forgotten it: never a hang.
 *   cancel   scancel --signal=TERM --full, then scancel after the grace.
 *   forget   after the host's commit: the job's spool files removed, the job
 *            cancelled first unless it is known to have ended.
 *
 * Jobs named for this instance that no sandbox owns and that still run are
 * cancelled (orphans) in each poll.  list() reports the instance's jobs that
 * squeue shows (running, or ended with their spool files still there) and
 * the exit files of the spool.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "slurm.h"


/* ---- jobs ---- */

void job_free(struct sl_job *x) {
	if (!x)
		return;
	if (x->s)
		LIST_UNLINK(x->s->jobs, x);
	child_kill(x->child);
	sd_event_source_disable_unref(x->kill_timer);
	if (x->out_fd >= 0)
		close(x->out_fd);
	free(x->sandbox_id);
	free(x->name);
	free(x->job_id);
	free(x->log_path);
	free(x->out_path);
	free(x->exit_path);
	free(x->result_path);
	strv_free(x->argv);
	free(x);
}

struct sl_job *job_new(struct slurm *s, struct dagd_sandbox *sb, const struct dagd_spawn *spec) {
	const char *id = spec && spec->sandbox_id ? spec->sandbox_id : s->host->sandbox_id ? s->host->sandbox_id(sb) : NULL;
	struct sl_job *x;

	if (!id)
		return NULL;
	x = calloc(1, sizeof(*x));
	if (!x)
		return NULL;
	x->s = s;
	x->sb = sb;
	x->out_fd = -EBADF;
	x->sandbox_id = strdup(id);
	x->name = strdupf("%s%s", s->prefix, id);
	x->log_path = spec && spec->log_path ? strdup(spec->log_path) : NULL;
	if (x->name) {
		x->out_path = spool_path(s->spool, x->name, ".out");
		x->exit_path = spool_path(s->spool, x->name, ".exit");
		x->result_path = spool_path(s->spool, x->name, ".result.json");
	}
	x->s = NULL;            /* not linked yet */
	if (!x->sandbox_id || !x->name || (spec && spec->log_path && !x->log_path) || !x->out_path ||
	    !x->exit_path || !x->result_path) {
		job_free(x);
		return NULL;
	}
	x->s = s;
	LIST_LINK(s->jobs, x);
	return x;
}

struct sl_job *job_by_name(struct slurm *s, const char *name) {
	for (struct sl_job *x = s->jobs; x; x = x->next)
		if (strcmp(x->name, name) == 0)
			return x;
	return NULL;
}

static struct sl_job *job_by_id(struct slurm *s, const char *id) {
	for (struct sl_job *x = s->jobs; x; x = x->next)
		if (x->job_id && strcmp(x->job_id, id) == 0)
			return x;
	return NULL;
}

/* Appends what the job's output file has beyond what the log got. */
static void output_copy(struct sl_job *x, bool all) {
	static char buf[65536];
	size_t done = 0;

	if (x->out_fd < 0) {
		x->out_fd = open(x->out_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (x->out_fd < 0)
			return;
	}
	while (all || done < OUTPUT_CHUNK) {
		ssize_t n = pread(x->out_fd, buf, sizeof(buf), x->out_sent);

		if (n <= 0)
			break;
		x->s->host->sandbox_output(x->sb, buf, (size_t) n);
		x->out_sent += n;
		done += (size_t) n;
	}
}

/* Tells the host how the job ended (message malloc'd, taken) and forgets it. */
static void job_end(struct sl_job *x, int code, int signal, const char *reason, char *message) {
	struct slurm *s = x->s;
	struct dagd_exit e = {
		.code = code,
		.signal = signal,
		.reason = x->cancel ? "cancelled" : reason,
		.message = message,
	};
	_cleanup_free_ char *err = NULL;
	struct ended *en = calloc(1, sizeof(*en));

	output_copy(x, true);
	if (code == 0 && x->log_path) {
		int r = result_copy(x->result_path, x->log_path, &err);

		if (r < 0)
			s->host->log(x->sb, LOG_WARNING, "%s", err ? err : "cannot copy the result");
		e.result_left = r > 0;
	}
	if (en && (en->sandbox_id = strdup(x->sandbox_id))) {
		en->next = s->ended;
		s->ended = en;
	} else
		free(en);
	LIST_UNLINK(s->jobs, x);
	x->s = NULL;
	s->host->sandbox_exited(x->sb, &e);
	free(message);
	job_free(x);
}

/* ---- running the tools ---- */

static char *first_line(const char *s) {
	while (*s == ' ' || *s == '\n')
		s++;
	return strndup(s, strcspn(s, "\n"));
}

static void tool_failed(struct slurm *s, struct dagd_sandbox *sb, const char *what,
			const struct child_result *res) {
	_cleanup_free_ char *line = first_line(res->err);

	if (res->error == -ETIME)
		s->host->log(sb, LOG_WARNING, "slurm: %s did not finish within %llu s", what,
			     (unsigned long long) (s->set.tool_timeout_usec / 1000000));
	else if (res->error < 0)
		s->host->log(sb, LOG_WARNING, "slurm: cannot run %s: %s", what, strerror(-res->error));
	else
		s->host->log(sb, LOG_WARNING, "slurm: %s failed: %s", what, line && *line ? line : "no message");
}

static void on_scancel(struct child *c, const struct child_result *res, void *userdata) {
	struct slurm *s = userdata;

	if (res->error < 0 || res->status != 0)
		tool_failed(s, NULL, "scancel", res);
}

/* scancel [--signal=SIG --full] id; not tied to any job's life. */
void scancel(struct slurm *s, const char *id, const char *signal) {
	_cleanup_free_ char *sig = signal ? strdupf("--signal=%s", signal) : NULL;
	const char *argv[] = { s->set.scancel, "--full", id, NULL, NULL };
	int r;

	if (signal) {
		argv[1] = sig;
		argv[2] = "--full";
		argv[3] = id;
	}
	r = (!signal || sig) ? child_run(s->tools, argv, s->set.tool_timeout_usec, on_scancel, s, NULL) : -ENOMEM;
	if (r < 0)
		s->host->log(NULL, LOG_WARNING, "slurm: cannot cancel job %s: %s", id, strerror(-r));
}

int on_kill_timer(sd_event_source *es, uint64_t usec, void *userdata) {
	struct sl_job *x = userdata;

	x->kill_timer = sd_event_source_disable_unref(x->kill_timer);
	if (x->job_id)
		scancel(x->s, x->job_id, NULL);
	return 0;
}

/* ---- the end of a job, cross-checked with scontrol ---- */

static void on_scontrol(struct child *c, const struct child_result *res, void *userdata) {
	struct sl_job *x = userdata;
	struct job_exit e;
	struct scontrol_job j;
	bool known = res->error >= 0 && res->status == 0 && scontrol_parse(res->out, &j) >= 0;
	bool gone = res->error >= 0 && res->status != 0 && strstr(res->err, "Invalid job id");

	x->child = NULL;
	x->step = STEP_RUN;
	if (exit_file_read(x->exit_path, &e) >= 0) {
		const char *reason = NULL;
		char *msg = NULL;

		/* Slurm has not settled the job's state yet: asked again in the next polls */
		if (known && !state_is_final(j.state) && ++x->checks < MAX_CHECKS)
			return;
		if (known && state_is_final(j.state) && strncmp(j.state, "COMPLETED", 9) != 0 &&
		    strncmp(j.state, "FAILED", 6) != 0) {
			reason = state_reason(j.state);
			msg = strdupf("Slurm job %s is %s%s%s%s", x->job_id, j.state,
				      strcmp(reason, "cancelled") == 0 && !x->cancel ? " (cancelled outside dagd)" : "",
				      *j.reason && strcmp(j.reason, "None") ? ": " : "",
				      *j.reason && strcmp(j.reason, "None") ? j.reason : "");
		}
		job_end(x, e.code, e.signal, reason, msg);
		return;
	}
	if (known && state_is_final(j.state)) {
		job_end(x, -1, j.exit_signal, state_reason(j.state),
			strdupf("Slurm job %s ended %s (exit code %d:%d%s%s) and recorded no exit%s", x->job_id,
				j.state, j.exit_code, j.exit_signal, *j.reason && strcmp(j.reason, "None") ? ", " : "",
				*j.reason && strcmp(j.reason, "None") ? j.reason : "",
				strncmp(j.state, "CANCELLED", 9) == 0 && !x->cancel ? ": cancelled outside dagd" : ""));
		return;
	}
	if (gone) {
		job_end(x, -1, 0, "lost", strdupf("Slurm job %s is gone and recorded no exit in %s", x->job_id,
						   x->exit_path));
		return;
	}
	/* still running after all, or scontrol failed: polled again */
	if (!known)
		tool_failed(x->s, x->sb, "scontrol show job", res);
	x->final_polls = 0;
}

/* Asks scontrol about the job, then ends it (see on_scontrol()). */
static void job_check(struct sl_job *x) {
	const char *argv[] = { x->s->set.scontrol, "show", "job", "-o", x->job_id, NULL };
	int r;

	x->step = STEP_CHECK;
	r = child_run(x->s->tools, argv, x->s->set.tool_timeout_usec, on_scontrol, x, &x->child);
	if (r < 0) {
		x->step = STEP_RUN;
		x->s->host->log(x->sb, LOG_WARNING, "slurm: cannot run scontrol: %s", strerror(-r));
	}
}

/* In each poll: the output so far, and the exit file. */
static void job_poll(struct sl_job *x) {
	struct job_exit e;

	output_copy(x, false);
	if (exit_file_read(x->exit_path, &e) < 0)
		return;
	if (e.code == 0 && !x->cancel) {
		job_end(x, 0, 0, NULL, NULL);
		return;
	}
	job_check(x);
}

/* ---- submitting ---- */

void job_running(struct sl_job *x, const char *id) {
	x->job_id = strdup(id);
	if (!x->job_id) {
		job_end(x, -1, 0, "error", strdup("out of memory"));
		return;
	}
	x->step = STEP_RUN;
	x->gen = x->s->gen;
	x->s->host->sandbox_started(x->sb, x->job_id);
	x->s->host->log(x->sb, LOG_DEBUG, "Slurm job %s", x->job_id);
	if (x->cancel)
		scancel(x->s, x->job_id, NULL);
}

/* Whether sbatch failed for want of the controller, not for the job's sake. */
static bool transient(const char *err) {
	return strstr(err, "Unable to contact slurm controller") || strstr(err, "Socket timed out") ||
		strstr(err, "Zero Bytes were transmitted") || strstr(err, "Connection refused");
}

static void on_submitted(struct child *c, const struct child_result *res, void *userdata) {
	struct sl_job *x = userdata;
	_cleanup_free_ char *id = NULL, *err = NULL;

	x->child = NULL;
	/* it may have gone through: the next squeue that answers says, and the
	 * job is sent again only if it shows none of that name */
	if ((res->error == -ETIME || (res->error >= 0 && res->status != 0 && transient(res->err))) &&
	    ++x->submits < MAX_SUBMITS) {
		x->s->host->log(x->sb, LOG_WARNING, "slurm: sbatch %s; looking for job %s",
				res->error == -ETIME ? "timed out" : "could not reach slurmctld", x->name);
		x->step = STEP_LOOKUP;
		x->gen = x->s->gen;
		return;
	}
	if (res->error < 0 || res->status != 0) {
		err = first_line(res->err);
		job_end(x, -1, 0, "error", res->error < 0 ? strdupf("cannot run sbatch: %s", strerror(-res->error)) :
			strdupf("sbatch failed: %s", err && *err ? err : "no message"));
		return;
	}
	id = first_line(res->out);
	if (id)
		id[strcspn(id, "; ")] = '\0';
	if (!id || !*id || strspn(id, "0123456789_") != strlen(id)) {
		job_end(x, -1, 0, "error", strdupf("sbatch said no job id: %s", res->out));
		return;
	}
	job_running(x, id);
}

void job_submit(struct sl_job *x) {
	int r;

	x->step = STEP_SUBMIT;
	r = child_run(x->s->tools, (const char *const *) x->argv, x->s->set.tool_timeout_usec, on_submitted, x,
		      &x->child);
	if (r < 0)
		job_end(x, -1, 0, "error", strdupf("cannot run sbatch: %s", strerror(-r)));
}

/* ---- the poll ---- */

static bool owned(struct slurm *s, const char *name) {
	return job_by_name(s, name) != NULL;
}

static void on_squeue(struct child *c, const struct child_result *res, void *userdata) {
	struct slurm *s = userdata;
	struct squeue_job *jobs = NULL;
	unsigned gen = s->gen;
	size_t n = 0;
	struct sl_job *x, *next;

	s->squeue = NULL;
	if (res->error < 0 || res->status != 0 || squeue_parse(res->out, s->prefix, &jobs, &n) < 0) {
		if (s->squeue_failures++ == 0)
			tool_failed(s, NULL, "squeue", res);
		return;
	}
	if (s->squeue_failures > 0)
		s->host->log(NULL, LOG_INFO, "slurm: squeue answers again after %u failures", s->squeue_failures);
	s->squeue_failures = 0;
	for (x = s->jobs; x; x = next) {
		const struct squeue_job *j = NULL;

		next = x->next;
		for (size_t i = 0; i < n && !j; i++)
			if ((x->job_id && strcmp(jobs[i].id, x->job_id) == 0) ||
			    (x->step == STEP_LOOKUP && strcmp(jobs[i].name, x->name) == 0))
				j = &jobs[i];
		if (x->step == STEP_LOOKUP && gen > x->gen) {
			if (j) {
				x->s->host->log(x->sb, LOG_INFO, "found job %s of the timed-out submit", j->id);
				job_running(x, j->id);
			} else if (x->cancel)
				job_end(x, -1, 0, "cancelled", NULL);
			else
				job_submit(x);
			continue;
		}
		if (x->step != STEP_RUN || gen <= x->gen)
			continue;
		if (j && !state_is_final(j->state)) {
			x->final_polls = 0;
			continue;
		}
		/* ended or gone, and no exit file in this poll yet */
		if (++x->final_polls >= POLLS_BEFORE_LOST)
			job_check(x);
	}
	/* orphans: running, named for this instance, owned by no sandbox */
	for (size_t i = 0; i < n; i++)
		if (!state_is_final(jobs[i].state) && !owned(s, jobs[i].name) && !job_by_id(s, jobs[i].id) &&
		    strcmp(jobs[i].state, "COMPLETING") != 0) {
			s->host->log(NULL, LOG_NOTICE, "slurm: cancelling job %s (%s, %s): no sandbox of this "
				     "daemon owns it", jobs[i].id, jobs[i].name, jobs[i].state);
			scancel(s, jobs[i].id, NULL);
		}
	squeue_jobs_free(jobs, n);
}

int on_poll(sd_event_source *es, uint64_t usec, void *userdata) {
	struct slurm *s = userdata;
	const char *argv[] = { s->set.squeue, "--me", "--noheader", "--states=all", "--format=" SQUEUE_FORMAT,
			       NULL };
	struct sl_job *x, *next;
	uint64_t now = 0;
	int r;

	for (x = s->jobs; x; x = next) {
		next = x->next;
		if (x->step == STEP_RUN)
			job_poll(x);
	}
	(void) sd_event_now(s->host->event, CLOCK_MONOTONIC, &now);
	if (!s->squeue && (s->jobs || now >= s->last_squeue + IDLE_SWEEP_USEC || s->last_squeue == 0)) {
		r = child_run(s->tools, argv, s->set.tool_timeout_usec, on_squeue, s, &s->squeue);
		if (r < 0)
			s->host->log(NULL, LOG_WARNING, "slurm: cannot run squeue: %s", strerror(-r));
		else {
			s->gen++;
			s->last_squeue = now;
		}
	}
	poll_arm(s);
	return 0;
}

void poll_arm(struct slurm *s) {
	if (sd_event_source_set_time_relative(s->poll_timer, s->set.poll_usec) < 0 ||
	    sd_event_source_set_enabled(s->poll_timer, SD_EVENT_ONESHOT) < 0)
		s->host->log(NULL, LOG_ERR, "slurm: cannot arm the poll timer: jobs are not watched");
}
