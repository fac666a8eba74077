/*
 * cgroup.c - local-helper's cgroups: the delegated one it finds (v2), each
 * task's own beneath it, and a task's resource limits (memory_max, pids_max,
 * cpu_max) with whether it was killed for want of memory.
 *
 * Where the helper's cgroup (v2) is delegated to it, each task gets a cgroup
 * of its own beneath it (BASE/SANDBOX): the end of a task, a cancel's SIGKILL
 * and a forget() kill the whole cgroup (cgroup.kill), and a pause freezes it.
 *
 * Limits, one of two ways, chosen once at start:
 *
 * cgroup v2, in BASE: a cgroup that holds processes cannot hand controllers
 * to its children, so the helper first moves itself into a leaf of its own
 * (BASE/.helper), then enables memory, pids and cpu (those BASE has) in
 * BASE/cgroup.subtree_control.  Each task's cgroup then gets memory.max and
 * memory.swap.max 0, pids.max, cpu.max; its memory.events counts the
 * processes killed for want of memory.
 *
 * cgroup v1, where each controller has a hierarchy of its own that the helper
 * may write (root): a task with limits gets a cgroup in each hierarchy it
 * needs, beneath the helper's own there, named dagd-PID-SANDBOX (PID the
 * helper's: helpers of other daemons may share that cgroup), which its vfork
 * child enters before its exec.  memory.limit_in_bytes and
 * memory.memsw.limit_in_bytes (no swap on top), pids.max,
 * cpu.cfs_quota_us a cpu.cfs_period_us; memory.oom_control counts the
 * kills.  v1 has no cgroup.kill: what is left in them is killed by pid.
 *
 * Neither: a task that asks for a limit is not started (the executor
 * refuses it first, from what the helper's hello says).
 */
#include "helper.h"

static char *cg_base;                   /* the delegated cgroup, or NULL */
static char **cg_doomed;                /* cgroups to remove once empty */
size_t n_doomed;

/* limits */
static const char *const controllers[LIM_MAX] = { "memory", "pids", "cpu" };
static const char *const options[LIM_MAX] = { "memory_max", "pids_max", "cpu_max" };

static enum { BY_NONE, BY_V2, BY_V1 } by;
static bool have[LIM_MAX];
static char *v1_dir[LIM_MAX];           /* the helper's own cgroup in each v1 hierarchy */

/* ---- the delegated cgroup, a task's own ---- */

/* Finds the helper's cgroup in the v2 hierarchy, and keeps it if it was
 * delegated (systemd marks such a cgroup with the xattr trusted.delegate or
 * user.delegate) and can be written. */
static void delegated_find(void) {
	char line[4096], mnt[4096] = "", path[4096] = "", val[8];
	FILE *f;

	f = fopen("/proc/self/cgroup", "re");
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "0::", 3) == 0)
			snprintf(path, sizeof(path), "%s", line + 3);
	if (f)
		fclose(f);
	path[strcspn(path, "\n")] = 0;
	f = fopen("/proc/self/mountinfo", "re");
	while (f && fgets(line, sizeof(line), f)) {
		char point[4096], *dash = strstr(line, " - cgroup2 ");

		if (dash && sscanf(line, "%*s %*s %*s %*s %4095s", point) == 1)
			snprintf(mnt, sizeof(mnt), "%s", point);
	}
	if (f)
		fclose(f);
	if (!*mnt || !*path || strcmp(path, "/") == 0)
		return;
	char *base = xmalloc(strlen(mnt) + strlen(path) + 1);
	strcpy(base, mnt);
	strcat(base, path);
	if ((getxattr(base, "trusted.delegate", val, sizeof(val)) > 0 ||
	     getxattr(base, "user.delegate", val, sizeof(val)) > 0) && val[0] == '1' &&
	    access(base, W_OK) == 0)
		cg_base = base;
	else
		free(base);
}

/* SIGKILL to every process of the cgroup dir. */
void cgroup_kill(const char *dir) {
	char path[4200];
	int fd;

	snprintf(path, sizeof(path), "%s/cgroup.kill", dir);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		(void) !write(fd, "1", 1);
		close(fd);
	}
}

/* How the helper contains tasks: "cgroup" (a delegated cgroup each) or
 * "session" (a session and process group each). */
const char *cgroup_mode(void) {
	return cg_base ? "cgroup" : "session";
}

/* Removes a cgroup of the task (dir, malloc'd, taken), now or once its last
 * process is gone. */
void cgroup_remove(char *dir) {
	if (rmdir(dir) == 0 || errno == ENOENT) {
		free(dir);
		return;
	}
	cg_doomed = realloc(cg_doomed, (n_doomed + 1) * sizeof(*cg_doomed));
	if (!cg_doomed)
		abort();
	cg_doomed[n_doomed++] = dir;
}

void cgroup_reap(void) {
	size_t k = 0;

	for (size_t i = 0; i < n_doomed; i++)
		if (rmdir(cg_doomed[i]) == 0 || errno == ENOENT)
			free(cg_doomed[i]);
		else
			cg_doomed[k++] = cg_doomed[i];
	n_doomed = k;
}

/* Makes the task's own cgroup beneath the delegated one, and adds the fd of
 * its cgroup.procs, for the child to enter, to procs.  Without it (none
 * delegated, or it cannot be made), the task goes without. */
void cgroup_make(struct task *t, int *procs, size_t *n_procs) {
	char path[4200];

	if (!cg_base)
		return;
	snprintf(path, sizeof(path), "%s/%s", cg_base, t->id);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return;
	t->cgroup = xstrdup(path);
	snprintf(path, sizeof(path), "%s/cgroup.procs", t->cgroup);
	if ((procs[*n_procs] = open(path, O_WRONLY | O_CLOEXEC)) >= 0)
		(*n_procs)++;
}

/* ---- files of a cgroup ---- */

/* Writes value into dir/name: 0, or -errno. */
static int cg_write(const char *dir, const char *name, const char *value) {
	char path[4200];
	size_t len = strlen(value);
	ssize_t n;
	int fd, r = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, value, len);
	if (n != (ssize_t) len)
		r = n < 0 ? -errno : -EIO;
	close(fd);
	return r;
}

/* Reads dir/name into buf (NUL-terminated): 0, or -errno. */
static int cg_read(const char *dir, const char *name, char *buf, size_t size) {
	char path[4200];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	return 0;
}

/* The number after "KEY " at the start of a line of dir/name (memory.events,
 * memory.oom_control); 0 if there is none. */
static long long cg_key(const char *dir, const char *name, const char *key) {
	char buf[4096];
	size_t len = strlen(key);

	if (cg_read(dir, name, buf, sizeof(buf)) < 0)
		return 0;
	for (char *l = buf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (strncmp(l, key, len) == 0 && l[len] == ' ')
			return strtoll(l + len + 1, NULL, 10);
	return 0;
}

/* Whether word is one of the items of list (separated by spaces, commas or
 * newlines). */
static bool has_word(const char *list, const char *word) {
	size_t len = strlen(word);

	for (const char *p = list; *p; ) {
		size_t n = strcspn(p, " ,\n");

		if (n == len && strncmp(p, word, n) == 0)
			return true;
		p += n + (p[n] != '\0');
	}
	return false;
}

/* ---- limits: setup ---- */

/* v2: into the leaf, then the controllers for the tasks' cgroups. */
static void v2_setup(void) {
	char leaf[4200], pid[16], buf[1024];

	if (!cg_base)
		return;
	snprintf(leaf, sizeof(leaf), "%s/" CG_LEAF, cg_base);
	snprintf(pid, sizeof(pid), "%d", (int) self);
	if ((mkdir(leaf, 0755) < 0 && errno != EEXIST) || cg_write(leaf, "cgroup.procs", pid) < 0 ||
	    cg_read(cg_base, "cgroup.controllers", buf, sizeof(buf)) < 0)
		return;
	for (int i = 0; i < LIM_MAX; i++) {
		char want[16];

		snprintf(want, sizeof(want), "+%s", controllers[i]);
		/* one at a time: one the parent withholds refuses the whole write */
		if (has_word(buf, controllers[i]) && cg_write(cg_base, "cgroup.subtree_control", want) == 0)
			have[i] = true;
	}
	if (have[LIM_MEMORY] || have[LIM_PIDS] || have[LIM_CPU])
		by = BY_V2;
}

/* v1: the helper's own cgroup in each controller's hierarchy, if it may
 * make cgroups there. */
static void v1_setup(void) {
	char line[8192], *path[LIM_MAX] = { NULL };
	FILE *f;

	/* "ID:CONTROLLERS:PATH" */
	f = fopen("/proc/self/cgroup", "re");
	while (f && fgets(line, sizeof(line), f)) {
		char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;

		if (!b)
			continue;
		*b++ = 0;
		b[strcspn(b, "\n")] = 0;
		for (int i = 0; i < LIM_MAX; i++)
			if (!path[i] && has_word(a + 1, controllers[i]))
				path[i] = xstrdup(b);
	}
	if (f)
		fclose(f);
	/* "ID PARENT MAJ:MIN ROOT POINT OPTIONS... - cgroup SOURCE SUPER_OPTIONS" */
	f = fopen("/proc/self/mountinfo", "re");
	while (f && fgets(line, sizeof(line), f)) {
		char root[4096], point[4096], type[32], super[1024], *dash = strstr(line, " - ");

		if (!dash || sscanf(dash + 3, "%31s %*s %1023s", type, super) != 2 || strcmp(type, "cgroup") != 0 ||
		    sscanf(line, "%*s %*s %*s %4095s %4095s", root, point) != 2)
			continue;
		for (int i = 0; i < LIM_MAX; i++) {
			const char *rel = path[i];
			size_t k = strlen(root);
			char *dir;

			if (v1_dir[i] || !rel || !has_word(super, controllers[i]))
				continue;
			/* the mount shows ROOT of the hierarchy, and PATH is in it */
			if (strcmp(root, "/") != 0) {
				if (strncmp(rel, root, k) != 0 || (rel[k] != '/' && rel[k] != '\0'))
					continue;
				rel += k;
			}
			dir = xmalloc(strlen(point) + strlen(rel) + 2);
			sprintf(dir, "%s%s", point, strcmp(rel, "/") == 0 ? "" : rel);
			if (access(dir, W_OK) == 0) {
				v1_dir[i] = dir;
				have[i] = true;
				by = BY_V1;
			} else
				free(dir);
		}
	}
	if (f)
		fclose(f);
	for (int i = 0; i < LIM_MAX; i++)
		free(path[i]);
}

/* The delegated cgroup, then the way to limit tasks: v2 if it gives any
 * controller, else v1. */
void cgroup_setup(void) {
	delegated_find();
	v2_setup();
	if (by == BY_NONE)
		v1_setup();
}

/* How limits are set, for the hello: "cgroup2" or "cgroup1" and the
 * controllers, e.g. "cgroup1 memory pids cpu"; "" if they cannot be. */
const char *limits_mode(void) {
	static char mode[64];

	if (by == BY_NONE)
		return "";
	snprintf(mode, sizeof(mode), "%s%s%s%s", by == BY_V2 ? "cgroup2" : "cgroup1",
		 have[LIM_MEMORY] ? " memory" : "", have[LIM_PIDS] ? " pids" : "", have[LIM_CPU] ? " cpu" : "");
	return mode;
}

/* ---- limits: a task's ---- */

/* The limits of a T message's first fields: -EINVAL if one is not a number
 * of its range ("" and "0": none). */
int limits_parse(const char **f, struct limits *ret) {
	struct limits lim = {};

	for (int i = 0; i < LIM_MAX; i++) {
		char *end;

		if (!*f[i])
			continue;
		errno = 0;
		lim.v[i] = strtoll(f[i], &end, 10);
		if (errno || *end || lim.v[i] < 0)
			return -EINVAL;
	}
	*ret = lim;
	return 0;
}

/* Writes limit i into the cgroup dir. */
static int limit_write(int i, const char *dir, int64_t v, const char **ret_file) {
	char val[32], quota[64];
	int r;

	snprintf(val, sizeof(val), "%lld", (long long) v);
	if (i == LIM_MEMORY && by == BY_V2) {
		*ret_file = "memory.max";
		if ((r = cg_write(dir, *ret_file, val)) < 0)
			return r;
		*ret_file = "memory.swap.max";
		r = cg_write(dir, *ret_file, "0");
		return r == -ENOENT ? 0 : r;            /* no swap accounting: no swap to limit */
	}
	if (i == LIM_MEMORY) {
		/* memsw never below the limit: unlimited first (a cgroup found
		 * again may have had a lower one), then the same */
		*ret_file = "memory.memsw.limit_in_bytes";
		if ((r = cg_write(dir, *ret_file, "-1")) < 0 && r != -ENOENT)
			return r;
		bool memsw = r == 0;
		*ret_file = "memory.limit_in_bytes";
		if ((r = cg_write(dir, *ret_file, val)) < 0)
			return r;
		*ret_file = "memory.memsw.limit_in_bytes";
		return memsw ? cg_write(dir, *ret_file, val) : 0;
	}
	if (i == LIM_PIDS) {
		*ret_file = "pids.max";
		return cg_write(dir, *ret_file, val);
	}
	if (by == BY_V2) {
		snprintf(quota, sizeof(quota), "%s %u", val, PROTO_CPU_PERIOD_USEC);
		*ret_file = "cpu.max";
		return cg_write(dir, *ret_file, quota);
	}
	snprintf(quota, sizeof(quota), "%u", PROTO_CPU_PERIOD_USEC);
	*ret_file = "cpu.cfs_period_us";
	if ((r = cg_write(dir, *ret_file, quota)) < 0)
		return r;
	*ret_file = "cpu.cfs_quota_us";
	return cg_write(dir, *ret_file, val);
}

/* Sets the task's limits: in its own cgroup (v2), or in v1 cgroups made for
 * it, whose cgroup.procs its child is to enter (their fds are added to
 * procs, of room LIM_MAX more).  0, or -errno with err said and nothing left
 * behind. */
int limits_enter(struct task *t, const struct limits *lim, int *procs, size_t *n_procs, char *err, size_t errlen) {
	size_t first = *n_procs;
	int r = 0;

	for (int i = 0; i < LIM_MAX; i++)
		if (lim->v[i] > 0 && !have[i]) {
			snprintf(err, errlen, "%s needs the cgroup %s controller, which the local helper cannot use here",
				 options[i], controllers[i]);
			return -EOPNOTSUPP;
		}
	for (int i = 0; i < LIM_MAX && r >= 0; i++) {
		const char *dir = t->cgroup, *file = "";
		char path[4200];

		if (lim->v[i] <= 0)
			continue;
		if (by == BY_V1) {
			snprintf(path, sizeof(path), "%s/dagd-%d-%s", v1_dir[i], (int) self, t->id);
			if (mkdir(path, 0755) < 0 && errno != EEXIST) {
				r = -errno;
				snprintf(err, errlen, "cannot set %s: cannot create the cgroup '%s': %s", options[i], path,
					 strerror(-r));
				break;
			}
			dir = t->v1[i] = xstrdup(path);
		} else if (!dir) {
			r = -ENOENT;
			snprintf(err, errlen, "cannot set %s: the task has no cgroup of its own", options[i]);
			break;
		}
		r = limit_write(i, dir, lim->v[i], &file);
		if (r < 0) {
			snprintf(err, errlen, "cannot set %s: cannot write '%s/%s': %s", options[i], dir, file, strerror(-r));
			break;
		}
		if (by == BY_V1) {
			snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
			procs[*n_procs] = open(path, O_WRONLY | O_CLOEXEC);
			if (procs[*n_procs] < 0) {
				r = -errno;
				snprintf(err, errlen, "cannot set %s: cannot open '%s': %s", options[i], path, strerror(-r));
				break;
			}
			(*n_procs)++;
		}
	}
	if (r < 0) {
		while (*n_procs > first)
			close(procs[--*n_procs]);
		limits_remove(t);
		return r;
	}
	t->memory_max = lim->v[LIM_MEMORY];
	return 0;
}

/* SIGKILL to every process in the task's v1 cgroups (v2's cgroup.kill does
 * it for its own). */
void limits_kill(struct task *t) {
	for (int i = 0; i < LIM_MAX; i++) {
		char buf[65536];

		if (!t->v1[i] || cg_read(t->v1[i], "cgroup.procs", buf, sizeof(buf)) < 0)
			continue;
		for (char *p = buf; *p; ) {
			pid_t pid = (pid_t) strtol(p, &p, 10);

			if (pid > 1 && pid != self)
				(void) kill(pid, SIGKILL);
			p += strspn(p, "\n");
			if (*p && (*p < '0' || *p > '9'))
				break;
		}
	}
}

/* Removes the task's v1 cgroups, now or once empty. */
void limits_remove(struct task *t) {
	for (int i = 0; i < LIM_MAX; i++)
		if (t->v1[i]) {
			cgroup_remove(t->v1[i]);
			t->v1[i] = NULL;
		}
}

/* At the task's end, before its cgroups go: whether something of it was
 * killed for want of memory (if it failed), then the same end for what it
 * left in its v1 cgroups as in its v2 one. */
void limits_end(struct task *t) {
	long long kills = 0;

	if (t->v1[LIM_MEMORY])
		kills = cg_key(t->v1[LIM_MEMORY], "memory.oom_control", "oom_kill");
	else if (t->cgroup && by == BY_V2 && have[LIM_MEMORY])
		kills = cg_key(t->cgroup, "memory.events", "oom_kill");
	t->oom = kills > 0 && (t->code != 0 || t->sig != 0);
	limits_kill(t);
	limits_remove(t);
}

/* The reason and message of the task's exit (X): "oom", "cancelled" or "". */
void limits_exit(const struct task *t, const char **ret_reason, char *msg, size_t len) {
	*msg = 0;
	*ret_reason = t->oom ? "oom" : t->cancelled ? "cancelled" : "";
	if (t->oom) {
		/* killed itself: the daemon says "out of memory: killed by signal 9" */
		int n = snprintf(msg, len, "%s", t->sig ? "" : "out of memory: a process of the task was killed");

		if (t->memory_max > 0 && n >= 0 && (size_t) n < len)
			snprintf(msg + n, len - (size_t) n, "%sover its memory limit of %lld bytes", n ? ", " : "",
				 (long long) t->memory_max);
	} else if (t->log_failed)
		snprintf(msg, len, "its output could not be written to the log");
}
