/*
 * helper-task.c - local-helper's tasks: starting one (vfork and one exec, in
 * a session and, where delegated, a cgroup of its own: cgroup.c), copying
 * its output into its log, reaping it, and killing it and what it left
 * behind.
 */
#include "helper.h"

int dev_null = -1;                      /* every task's stdin: fd 3 or above, O_CLOEXEC (dup2 hands it on) */

/* Stops (or lets go on) every process of the task: the cgroup's freezer,
 * which nothing in it can notice or escape, or else SIGSTOP and SIGCONT to
 * its process group. */
void task_freeze(struct task *t, bool frozen) {
	if (t->cgroup) {
		char path[4200];
		int fd;

		snprintf(path, sizeof(path), "%s/cgroup.freeze", t->cgroup);
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd >= 0) {
			bool ok = write(fd, frozen ? "1" : "0", 1) == 1;

			close(fd);
			if (ok)
				return;
		}
	}
	if (frozen || t->stopped)
		(void) kill(-t->pid, frozen ? SIGSTOP : SIGCONT);
	t->stopped = frozen;
}

/* ---- tasks ---- */

struct task *task_find(const char *id) {
	for (struct task *t = tasks; t; t = t->next)
		if (!t->forgotten && strcmp(t->id, id) == 0)
			return t;
	return NULL;
}

void task_free(struct task *t) {
	for (struct task **p = &tasks; *p; p = &(*p)->next)
		if (*p == t) {
			*p = t->next;
			break;
		}
	if (t->out_fd >= 0)
		close(t->out_fd);
	if (t->log_fd >= 0)
		close(t->log_fd);
	if (t->cgroup)
		cgroup_remove(t->cgroup);
	limits_remove(t);
	free(t->id);
	free(t->log_path);
	free(t);
}

static int log_open(struct task *t) {
	if (t->log_fd >= 0 || t->log_failed)
		return t->log_fd;
	t->log_fd = open(t->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (t->log_fd < 0 && errno == ENOENT) {
		char *dir = xstrdup(t->log_path), *slash = strrchr(dir, '/');

		/* mkdir -p of the log's directory */
		if (slash && slash != dir) {
			*slash = 0;
			for (char *s = dir + 1; *s; s++)
				if (*s == '/') {
					*s = 0;
					(void) mkdir(dir, 0750);
					*s = '/';
				}
			(void) mkdir(dir, 0750);
		}
		free(dir);
		t->log_fd = open(t->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	}
	if (t->log_fd < 0)
		t->log_failed = true;
	return t->log_fd;
}

/* Copies what the pipe holds into the log; false at its end. */
bool task_drain(struct task *t) {
	char buf[65536];

	for (;;) {
		ssize_t n = read(t->out_fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return true;
		if (n <= 0)
			return false;
		if (log_open(t) >= 0)
			for (ssize_t off = 0; off < n; ) {
				ssize_t w = write(t->log_fd, buf + off, (size_t) (n - off));
				if (w < 0 && errno == EINTR)
					continue;
				if (w <= 0) {
					t->log_failed = true;
					break;
				}
				off += w;
			}
	}
}

void pipe_close(struct task *t) {
	if (t->out_fd < 0)
		return;
	(void) epoll_ctl(epfd, EPOLL_CTL_DEL, t->out_fd, NULL);
	close(t->out_fd);
	t->out_fd = -1;
}

/* SIGKILL to the task's group and to every process of its session. */
void task_kill_hard(struct task *t) {
	DIR *d;
	struct dirent *de;

	if (t->cgroup)
		cgroup_kill(t->cgroup);
	limits_kill(t);
	(void) kill(-t->pid, SIGKILL);
	d = opendir("/proc");
	if (!d)
		return;
	while ((de = readdir(d))) {
		char path[64], buf[512], *p;
		pid_t pid = (pid_t) atoi(de->d_name);
		int sid = 0, fd;
		ssize_t n;

		if (pid <= 1 || pid == self)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = 0;
		p = strrchr(buf, ')');
		if (p && sscanf(p + 1, " %*c %*d %*d %d", &sid) == 1 && sid == t->pid)
			(void) kill(pid, SIGKILL);
	}
	closedir(d);
}

static void task_ended(struct task *t, int status) {
	t->ended = true;
	t->kill_at = 0;
	t->code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	t->sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	/* what it left in its group goes with it; after a cancel, what it left
	 * anywhere in its session too */
	if (t->cancelled)
		task_kill_hard(t);
	else {
		(void) kill(-t->pid, SIGKILL);
		if (t->cgroup)
			cgroup_kill(t->cgroup);
	}
	if (t->out_fd >= 0) {
		(void) task_drain(t);
		pipe_close(t);
	}
	if (t->log_fd >= 0) {
		close(t->log_fd);
		t->log_fd = -1;
	}
	limits_end(t);
	if (t->cgroup) {
		cgroup_remove(t->cgroup);
		t->cgroup = NULL;
	}
	if (!t->forgotten)
		send_exit(t->watcher, t);
}

void reap(void) {
	struct signalfd_siginfo si;
	int status;
	pid_t pid;

	/* one read takes every pending SIGCHLD (they merge into one) */
	(void) !read(signal_fd, &si, sizeof(si));
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		for (struct task *t = tasks; t; t = t->next)
			if (t->pid == pid && !t->ended) {
				task_ended(t, status);
				break;
			}
}

/* The program argv[0] names, searched in the task's PATH: the helper's own
 * environment is not the task's. */
static char *resolve(const char *name, char *const *envp) {
	const char *path = "/usr/local/bin:/usr/bin:/bin";

	if (strchr(name, '/') || !*name)
		return xstrdup(name);
	for (char *const *e = envp; *e; e++)
		if (strncmp(*e, "PATH=", 5) == 0)
			path = *e + 5;
	while (*path) {
		size_t n = strcspn(path, ":");
		char *cand = xmalloc(n + strlen(name) + 3);

		snprintf(cand, n + strlen(name) + 3, "%.*s/%s", (int) n, n ? path : ".", name);
		if (access(cand, X_OK) == 0)
			return cand;
		free(cand);
		path += n + (path[n] == ':');
	}
	return xstrdup(name);
}

/* Writes "dagd: WHAT 'ARG': ERROR\n" with nothing but write(): it runs in a
 * vfork child. */
static void child_fail(int fd, const char *what, const char *arg, int err) {
	const char *e = strerror(err);

	(void) !write(fd, "dagd: ", 6);
	(void) !write(fd, what, strlen(what));
	(void) !write(fd, " '", 2);
	(void) !write(fd, arg, strlen(arg));
	(void) !write(fd, "': ", 3);
	(void) !write(fd, e, strlen(e));
	(void) !write(fd, "\n", 1);
}

/* A task that runs as another user cannot read the state directory, where
 * its inputs file is (DAGD_INPUTS, see executor.h): it gets a sealed copy in
 * memory instead, an fd it inherits, and DAGD_INPUTS names it
 * (/proc/self/fd/N, which any process that holds it may open).  -1: none, or
 * it cannot be copied (the task then finds the file unreadable). */
static int inputs_copy(char **envp, char **ret_env) {
	static const char key[] = "DAGD_INPUTS=";
	char buf[65536];
	ssize_t n;
	int in, fd;

	for (; *envp; envp++)
		if (strncmp(*envp, key, sizeof(key) - 1) == 0)
			break;
	if (!*envp)
		return -1;
	in = open(*envp + sizeof(key) - 1, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -1;
	fd = memfd_create("dagd-inputs", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	while (fd >= 0 && (n = read(in, buf, sizeof(buf))) > 0)
		if (write(fd, buf, (size_t) n) != n) {
			close(fd);
			fd = -1;
		}
	close(in);
	if (fd < 0)
		return -1;
	(void) fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
	*ret_env = xmalloc(sizeof(key) + 32);
	snprintf(*ret_env, sizeof(key) + 32, "%s/proc/self/fd/%d", key, fd);
	*envp = *ret_env;
	return fd;
}

static struct __user_cap_header_struct cap_header = { .version = _LINUX_CAPABILITY_VERSION_3 };
static struct __user_cap_data_struct cap_none[_LINUX_CAPABILITY_U32S_3];

/* vfork and exec, the child in a session of its own, output to `out`; kept
 * apart so that nothing of the caller's is live across the vfork. */
static __attribute__((noinline)) pid_t start_child(const char *exe, char **argv, char **envp, const char *cwd,
						   const char *user, uid_t uid, gid_t gid, int out, const int *procs,
						   size_t n_procs, int inputs) {
	sigset_t none;
	pid_t pid;

	sigemptyset(&none);
	pid = vfork();
	if (pid == 0) {
		int null;

		(void) sigprocmask(SIG_SETMASK, &none, NULL);
		(void) signal(SIGPIPE, SIG_DFL);
		(void) setsid();
		/* into its own cgroups before it can start anything */
		for (size_t i = 0; i < n_procs; i++)
			if (write(procs[i], "0", 1) != 1) {
				child_fail(out, "cannot enter the cgroup of", "the task", errno);
				_exit(126);
			}
		if (*user && (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0)) {
			child_fail(out, "cannot switch to user", user, errno);
			_exit(126);
		}
		/* none of the helper's capabilities (it may hold CAP_SETUID to
		 * switch users) reach the task, not even through the ambient set */
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) {
			child_fail(out, "cannot drop the capabilities of", "the task", errno);
			_exit(126);
		}
		if (syscall(SYS_capset, &cap_header, cap_none) < 0) {
			child_fail(out, "cannot drop the capabilities of", "the task", errno);
			_exit(126);
		}
		(void) prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != self)
			_exit(126);
		null = dev_null >= 0 ? dev_null : open("/dev/null", O_RDONLY);
		if (null < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
			_exit(126);
		if (null != dev_null && null > 2)
			close(null);
		if (inputs >= 0 && fcntl(inputs, F_SETFD, 0) < 0)
			_exit(126);
		if (*cwd && chdir(cwd) < 0) {
			child_fail(2, "cannot enter the directory", cwd, errno);
			_exit(127);
		}
		execve(exe, argv, envp);
		child_fail(2, "cannot run", argv[0], errno);
		_exit(errno == ENOENT ? 127 : 126);
	}
	return pid;
}

/* S (lim NULL) or T, its limits taken off: id log_path cwd uid gid argc
 * argv... envp... */
void task_spawn(struct conn *c, const char **f, int n, const struct limits *lim) {
	int argc, p[2], procs[1 + LIM_MAX], inputs = -1;
	size_t n_procs = 0;
	uid_t uid;
	gid_t gid;
	char **argv, **envp, *exe, *inputs_env = NULL, err[4400];
	struct task *t;
	pid_t pid;

	if (n < 7 || (argc = atoi(f[5])) < 1 || argc > n - 6)
		return;
	if (task_find(f[0])) {
		/* a repeated request (after a reconnect): it runs already */
		t = task_find(f[0]);
		t->watcher = c;
		if (t->ended)
			send_exit(c, t);
		return;
	}
	uid = (uid_t) strtoul(f[3], NULL, 10);
	gid = (gid_t) strtoul(f[4], NULL, 10);
	/* a helper that is not root but may switch users (CAP_SETUID, as the
	 * system units give it) never makes anyone root */
	if (*f[3] && (uid == 0 || gid == 0) && getuid() != 0) {
		send_msg(c, 'X', f[0], "-1", "0", "error", "the local helper does not run tasks as root", NULL);
		return;
	}
	argv = xmalloc(sizeof(*argv) * (size_t) (argc + 1));
	envp = xmalloc(sizeof(*envp) * (size_t) (n - 6 - argc + 1));
	for (int i = 0; i < argc; i++)
		argv[i] = (char *) f[6 + i];
	argv[argc] = NULL;
	for (int i = 6 + argc; i < n; i++)
		envp[i - 6 - argc] = (char *) f[i];
	envp[n - 6 - argc] = NULL;
	exe = resolve(argv[0], envp);

	t = calloc(1, sizeof(*t));
	if (!t || pipe2(p, O_CLOEXEC) < 0)
		abort();
	t->src.kind = K_PIPE;
	t->id = xstrdup(f[0]);
	t->log_path = xstrdup(f[1]);
	t->log_fd = -1;
	t->watcher = c;

	cgroup_make(t, procs, &n_procs);
	if (lim && limits_enter(t, lim, procs, &n_procs, err, sizeof(err)) < 0) {
		pid = -1;
		goto fail;
	}
	if (*f[3])
		inputs = inputs_copy(envp, &inputs_env);
	pid = start_child(exe, argv, envp, f[2], f[3], uid, gid, p[1], procs, n_procs, inputs);
	if (pid < 0)
		snprintf(err, sizeof(err), "cannot start the task: %s", strerror(errno));
	if (inputs >= 0)
		close(inputs);
	free(inputs_env);
fail:
	while (n_procs > 0)
		close(procs[--n_procs]);
	close(p[1]);
	free(exe);
	free(argv);
	free(envp);
	if (pid < 0) {
		close(p[0]);
		if (t->cgroup)
			cgroup_remove(t->cgroup);
		limits_remove(t);
		send_msg(c, 'X', f[0], "-1", "0", "error", err, NULL);
		free(t->id);
		free(t->log_path);
		free(t);
		return;
	}
	t->pid = pid;
	t->out_fd = p[0];
	(void) fcntl(t->out_fd, F_SETFL, O_NONBLOCK);
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = t };
	(void) epoll_ctl(epfd, EPOLL_CTL_ADD, t->out_fd, &ev);
	t->next = tasks;
	tasks = t;
	char pidbuf[16];
	snprintf(pidbuf, sizeof(pidbuf), "%d", (int) pid);
	send_msg(c, 'P', t->id, pidbuf, NULL);
}

