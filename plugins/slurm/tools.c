/*
 * tools.c - what Slurm's tools say: the lines of squeue, the record of
 * `scontrol show job -o`, and what a job's final state means for the host.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "slurm.h"

void squeue_jobs_free(struct squeue_job *jobs, size_t n) {
	for (size_t i = 0; jobs && i < n; i++) {
		free(jobs[i].id);
		free(jobs[i].name);
		free(jobs[i].state);
		free(jobs[i].reason);
	}
	free(jobs);
}

int squeue_parse(const char *out, const char *prefix, struct squeue_job **ret, size_t *ret_n) {
	struct squeue_job *jobs = NULL;
	size_t n = 0, plen = strlen(prefix);

	for (const char *line = out; *line; ) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t) (end - line) : strlen(line);
		_cleanup_free_ char *copy = strndup(line, len);
		char *f[4] = {}, *s, *save = NULL;
		int k = 0;

		line += len + (end ? 1 : 0);
		if (!copy)
			goto oom;
		for (s = strtok_r(copy, "|", &save); s && k < 4; s = strtok_r(NULL, "|", &save))
			f[k++] = s;
		if (k < 3 || strncmp(f[1], prefix, plen) != 0)
			continue;
		struct squeue_job *j = realloc(jobs, (n + 1) * sizeof(*jobs));
		if (!j)
			goto oom;
		jobs = j;
		jobs[n] = (struct squeue_job) {
			.id = strdup(f[0]),
			.name = strdup(f[1]),
			.state = strdup(f[2]),
			.reason = strdup(k > 3 ? f[3] : ""),
		};
		n++;
		if (!jobs[n - 1].id || !jobs[n - 1].name || !jobs[n - 1].state || !jobs[n - 1].reason)
			goto oom;
	}
	*ret = jobs;
	*ret_n = n;
	return 0;

oom:
	squeue_jobs_free(jobs, n);
	return -ENOMEM;
}

bool state_is_final(const char *state) {
	static const char *const final[] = {
		"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED",
		"BOOT_FAIL", "DEADLINE", "REVOKED", "SPECIAL_EXIT", NULL
	};

	for (size_t i = 0; final[i]; i++)
		if (strncmp(state, final[i], strlen(final[i])) == 0)
			return true;
	return false;
}

/* The value of "Key=" in a one-line record, up to the next space. */
static bool field(const char *rec, const char *key, char *buf, size_t size) {
	size_t klen = strlen(key);

	for (const char *p = rec; (p = strstr(p, key)); p += klen) {
		size_t n;

		if ((p != rec && p[-1] != ' ' && p[-1] != '\n') || p[klen] != '=')
			continue;
		p += klen + 1;
		n = strcspn(p, " \n");
		snprintf(buf, size, "%.*s", (int) n, p);
		return true;
	}
	return false;
}

int scontrol_parse(const char *out, struct scontrol_job *ret) {
	struct scontrol_job j = { .exit_code = -1 };
	char exit[32];

	if (!field(out, "JobState", j.state, sizeof(j.state)))
		return -EBADMSG;
	(void) field(out, "Reason", j.reason, sizeof(j.reason));
	if (field(out, "ExitCode", exit, sizeof(exit)) && sscanf(exit, "%d:%d", &j.exit_code, &j.exit_signal) != 2)
		j.exit_code = -1;
	*ret = j;
	return 0;
}

const char *state_reason(const char *state) {
	if (strncmp(state, "TIMEOUT", 7) == 0 || strncmp(state, "DEADLINE", 8) == 0)
		return "timeout";
	if (strncmp(state, "OUT_OF_MEMORY", 13) == 0)
		return "oom";
	if (strncmp(state, "CANCELLED", 9) == 0)
		return "cancelled";
	if (strncmp(state, "FAILED", 6) == 0)
		return "error";
	return "lost";
}
