/*
 * helper.c - local-helper, the one process that runs every local task of a
 * daemon instance.
 *
 * The local executor starts it once, handing it a listening socket as fd 3
 * (STATE_DIR/local/helper.sock), and speaks proto.h over it.  The helper is
 * the parent and child subreaper of every task: it starts each one directly
 * (vfork and one exec), in a session and process group of its own, with the
 * task's output on a pipe that it copies into the attempt's log, made only
 * when the first byte comes.  It reaps the task, kills what the task left in
 * its group, and holds the exit until the executor says the exit is on disk
 * (G).  It outlives the daemon: the next daemon connects and lists what it
 * holds.  It exits once nothing is held and nobody is connected.
 *
 * A task gets SIGKILL as its parent-death signal: if the helper dies, its
 * tasks do too, so none runs on behind a "lost" verdict.
 *
 * Where the helper's own cgroup (v2) is delegated to it (a unit with
 * Delegate=yes), each task gets a cgroup of its own beneath it: the end of a
 * task, a cancel's SIGKILL and a forget() kill the whole cgroup
 * (cgroup.kill), so nothing the task started survives, not even what left
 * its session.  Without one, the task's process group (and, after a cancel,
 * its session) is all there is to kill.
 *
 * Its socket's path is its argument.  Once that path names something else,
 * or nothing (the state directory was removed), nobody can reach the helper
 * again: it kills its tasks and exits.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "../proto.h"

enum kind { K_LISTEN, K_SIGNAL, K_CONN, K_PIPE };

struct src {
	enum kind kind;
};

struct conn {
	struct src src;
	int fd;
	char *in, *out;
	size_t in_len, in_cap, out_len, out_off, out_cap;
	bool dead;
	struct conn *next;
};

struct task {
	struct src src;                 /* K_PIPE: its output */
	char *id, *log_path;
	pid_t pid;                      /* leader, session and group */
	int out_fd, log_fd;
	bool ended, forgotten, log_failed, cancelled;
	char *cgroup;                   /* its own cgroup's directory, or NULL */
	int code, sig;
	uint64_t kill_at;               /* CLOCK_MONOTONIC usec; 0: none */
	struct conn *watcher;
	struct task *next;
};

static int epfd = -1;
static struct src listen_src = { K_LISTEN }, signal_src = { K_SIGNAL };
static int listen_fd = 3, signal_fd = -1;
static struct conn *conns;
static struct task *tasks;
static bool served;
static pid_t self;
static const char *socket_path;
static char *cg_base;                   /* the delegated cgroup, or NULL */
static char **cg_doomed;                /* cgroups to remove once empty */
static size_t n_doomed;
static ino_t socket_ino;

/* how often the helper checks that its socket is still there */
#define SOCKET_CHECK_USEC (10u * 1000000u)

static void *xmalloc(size_t n) {
	void *p = malloc(n ? n : 1);

	if (!p)
		abort();
	return p;
}

static char *xstrdup(const char *s) {
	char *p = strdup(s);

	if (!p)
		abort();
	return p;
}

static uint64_t now_usec(void) {
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

/* ---- messages out ---- */

static void conn_flush(struct conn *c) {
	while (c->out_off < c->out_len) {
		ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			c->dead = true;
			return;
		}
		c->out_off += (size_t) n;
	}
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	struct epoll_event ev = { .events = EPOLLIN | (c->out_len ? EPOLLOUT : 0), .data.ptr = c };
	(void) epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Queues a message of the given type and NULL-ended fields. */
static void send_msg(struct conn *c, char type, ...) {
	size_t len = 1;
	uint32_t len32;
	va_list ap;
	const char *f;

	if (!c || c->dead)
		return;
	va_start(ap, type);
	while ((f = va_arg(ap, const char *)))
		len += strlen(f) + 1;
	va_end(ap);
	if (c->out_len + 4 + len > c->out_cap) {
		c->out_cap = (c->out_len + 4 + len) * 2;
		c->out = realloc(c->out, c->out_cap);
		if (!c->out)
			abort();
	}
	len32 = (uint32_t) len;
	memcpy(c->out + c->out_len, &len32, 4);
	c->out_len += 4;
	c->out[c->out_len++] = type;
	va_start(ap, type);
	while ((f = va_arg(ap, const char *))) {
		size_t n = strlen(f) + 1;
		memcpy(c->out + c->out_len, f, n);
		c->out_len += n;
	}
	va_end(ap);
	conn_flush(c);
}

static void send_exit(struct conn *c, const struct task *t) {
	char code[16], sig[16];

	snprintf(code, sizeof(code), "%d", t->code);
	snprintf(sig, sizeof(sig), "%d", t->sig);
	send_msg(c, 'X', t->id, code, sig, t->cancelled ? "cancelled" : "", t->log_failed ? "its output could not be written to the log" : "",
		 NULL);
}

/* ---- cgroups ---- */

/* Finds the helper's cgroup in the v2 hierarchy, and keeps it if it was
 * delegated (systemd marks such a cgroup with the xattr trusted.delegate or
 * user.delegate) and can be written. */
static void cgroup_setup(void) {
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
static void cgroup_kill(const char *dir) {
	char path[4200];
	int fd;

	snprintf(path, sizeof(path), "%s/cgroup.kill", dir);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		(void) !write(fd, "1", 1);
		close(fd);
	}
}

/* Removes the task's cgroup, now or once its last process is gone. */
static void cgroup_remove(char *dir) {
	if (rmdir(dir) == 0 || errno == ENOENT) {
		free(dir);
		return;
	}
	cg_doomed = realloc(cg_doomed, (n_doomed + 1) * sizeof(*cg_doomed));
	if (!cg_doomed)
		abort();
	cg_doomed[n_doomed++] = dir;
}

static void cgroup_reap(void) {
	size_t k = 0;

	for (size_t i = 0; i < n_doomed; i++)
		if (rmdir(cg_doomed[i]) == 0 || errno == ENOENT)
			free(cg_doomed[i]);
		else
			cg_doomed[k++] = cg_doomed[i];
	n_doomed = k;
}

/* ---- tasks ---- */

static struct task *task_find(const char *id) {
	for (struct task *t = tasks; t; t = t->next)
		if (!t->forgotten && strcmp(t->id, id) == 0)
			return t;
	return NULL;
}

static void task_free(struct task *t) {
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
static bool task_drain(struct task *t) {
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

static void pipe_close(struct task *t) {
	if (t->out_fd < 0)
		return;
	(void) epoll_ctl(epfd, EPOLL_CTL_DEL, t->out_fd, NULL);
	close(t->out_fd);
	t->out_fd = -1;
}

/* SIGKILL to the task's group and to every process of its session. */
static void task_kill_hard(struct task *t) {
	DIR *d;
	struct dirent *de;

	if (t->cgroup)
		cgroup_kill(t->cgroup);
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
	if (t->cgroup) {
		cgroup_remove(t->cgroup);
		t->cgroup = NULL;
	}
	if (!t->forgotten)
		send_exit(t->watcher, t);
}

static void reap(void) {
	struct signalfd_siginfo si;
	int status;
	pid_t pid;

	while (read(signal_fd, &si, sizeof(si)) == (ssize_t) sizeof(si))
		;
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

/* vfork and exec, the child in a session of its own, output to `out`; kept
 * apart so that nothing of the caller's is live across the vfork. */
static __attribute__((noinline)) pid_t start_child(const char *exe, char **argv, char **envp, const char *cwd,
						   const char *user, uid_t uid, gid_t gid, int out, int cg_procs) {
	sigset_t none;
	pid_t pid;

	sigemptyset(&none);
	pid = vfork();
	if (pid == 0) {
		int null;

		(void) sigprocmask(SIG_SETMASK, &none, NULL);
		(void) signal(SIGPIPE, SIG_DFL);
		(void) setsid();
		/* into its own cgroup before it can start anything */
		if (cg_procs >= 0 && write(cg_procs, "0", 1) != 1) {
			child_fail(out, "cannot enter the cgroup of", "the task", errno);
			_exit(126);
		}
		if (*user && (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0)) {
			child_fail(out, "cannot switch to user", user, errno);
			_exit(126);
		}
		(void) prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != self)
			_exit(126);
		null = open("/dev/null", O_RDONLY);
		if (null < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
			_exit(126);
		if (null > 2)
			close(null);
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

static void task_spawn(struct conn *c, const char **f, int n) {
	int argc, p[2];
	uid_t uid;
	gid_t gid;
	char **argv, **envp, *exe;
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

	int cg_procs = -1;
	if (cg_base) {
		size_t len = strlen(cg_base) + strlen(t->id) + 2;

		t->cgroup = xmalloc(len);
		snprintf(t->cgroup, len, "%s/%s", cg_base, t->id);
		if (mkdir(t->cgroup, 0755) < 0 && errno != EEXIST) {
			free(t->cgroup);
			t->cgroup = NULL;
		} else {
			char *procs = xmalloc(len + 16);

			snprintf(procs, len + 16, "%s/cgroup.procs", t->cgroup);
			cg_procs = open(procs, O_WRONLY | O_CLOEXEC);
			free(procs);
		}
	}
	pid = start_child(exe, argv, envp, f[2], f[3], uid, gid, p[1], cg_procs);
	if (cg_procs >= 0)
		close(cg_procs);
	close(p[1]);
	free(exe);
	free(argv);
	free(envp);
	if (pid < 0) {
		char err[256];

		close(p[0]);
		if (t->cgroup)
			cgroup_remove(t->cgroup);
		snprintf(err, sizeof(err), "cannot start the task: %s", strerror(errno));
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

static void handle(struct conn *c, const char *msg, size_t len) {
	const char **f;
	struct task *t;
	char pid[16];
	int n;

	if (len < 1)
		return;
	f = xmalloc(sizeof(*f) * (len + 1));
	n = proto_fields(msg + 1, len - 1, f, (int) len);
	if (n < 0)
		goto out;
	switch (msg[0]) {
	case 'S':
		task_spawn(c, f, n);
		break;
	case 'K':
		if (n >= 2 && (t = task_find(f[0])) && !t->ended) {
			uint64_t grace = strtoull(f[1], NULL, 10);

			t->cancelled = true;
			if (grace == 0)
				task_kill_hard(t);
			else {
				(void) kill(-t->pid, SIGTERM);
				(void) kill(-t->pid, SIGCONT);
				if (!t->kill_at || t->kill_at > now_usec() + grace)
					t->kill_at = now_usec() + grace;
			}
		}
		break;
	case 'G':
		if (n >= 1 && (t = task_find(f[0]))) {
			t->forgotten = true;
			if (!t->ended)
				task_kill_hard(t);
		}
		break;
	case 'A':
		if (n >= 1) {
			if (!(t = task_find(f[0])))
				send_msg(c, 'N', f[0], NULL);
			else {
				t->watcher = c;
				snprintf(pid, sizeof(pid), "%d", (int) t->pid);
				if (t->ended)
					send_exit(c, t);
				else
					send_msg(c, 'P', t->id, pid, NULL);
			}
		}
		break;
	case 'L':
		for (t = tasks; t; t = t->next)
			if (!t->forgotten) {
				snprintf(pid, sizeof(pid), "%d", t->ended ? 0 : (int) t->pid);
				send_msg(c, 'E', t->id, pid, NULL);
			}
		send_msg(c, 'D', NULL);
		break;
	}
out:
	free(f);
}

/* ---- connections ---- */

static void conn_read(struct conn *c) {
	for (;;) {
		ssize_t n;

		if (c->in_cap - c->in_len < 65536) {
			c->in_cap = c->in_cap * 2 + 65536;
			c->in = realloc(c->in, c->in_cap);
			if (!c->in)
				abort();
		}
		n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			c->dead = true;
			break;
		}
		c->in_len += (size_t) n;
	}
	size_t off = 0;
	while (c->in_len - off >= 4) {
		uint32_t len;

		memcpy(&len, c->in + off, 4);
		if (len > PROTO_MAX_MESSAGE) {
			c->dead = true;
			break;
		}
		if (c->in_len - off - 4 < len)
			break;
		handle(c, c->in + off + 4, len);
		off += 4 + len;
	}
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
}

static void conn_free(struct conn *c) {
	for (struct conn **p = &conns; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	for (struct task *t = tasks; t; t = t->next)
		if (t->watcher == c)
			t->watcher = NULL;
	(void) epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->in);
	free(c->out);
	free(c);
}

static void on_accept(void) {
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	struct conn *c;

	if (fd < 0)
		return;
	/* only the daemon's own user (or root) may drive the helper */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
	    (cred.uid != 0 && cred.uid != getuid())) {
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		abort();
	c->src.kind = K_CONN;
	c->fd = fd;
	c->next = conns;
	conns = c;
	served = true;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
	(void) epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

int main(int argc, char **argv) {
	sigset_t mask;
	struct epoll_event ev;

	self = getpid();
	cgroup_setup();
	/* nothing of the daemon's but the socket: a task must not inherit it */
	(void) close_range(4, ~0u, 0);
	(void) prctl(PR_SET_CHILD_SUBREAPER, 1);
	(void) signal(SIGPIPE, SIG_IGN);
	(void) signal(SIGHUP, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	(void) sigprocmask(SIG_BLOCK, &mask, NULL);
	signal_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (signal_fd < 0 || epfd < 0 || fcntl(listen_fd, F_SETFD, FD_CLOEXEC) < 0 ||
	    fcntl(listen_fd, F_SETFL, O_NONBLOCK) < 0) {
		fprintf(stderr, "%s: cannot start: %m (it needs its socket as fd 3)\n", argc > 0 ? argv[0] : PROTO_HELPER);
		return 1;
	}
	if (argc > 1) {
		struct stat st;

		socket_path = argv[1];
		if (stat(socket_path, &st) == 0)
			socket_ino = st.st_ino;
	}
	ev = (struct epoll_event) { .events = EPOLLIN, .data.ptr = &listen_src };
	(void) epoll_ctl(epfd, EPOLL_CTL_ADD, listen_fd, &ev);
	ev = (struct epoll_event) { .events = EPOLLIN, .data.ptr = &signal_src };
	(void) epoll_ctl(epfd, EPOLL_CTL_ADD, signal_fd, &ev);

	uint64_t next_check = now_usec() + SOCKET_CHECK_USEC;

	for (;;) {
		struct epoll_event evs[64];
		uint64_t next = next_check, now = now_usec();
		int timeout = -1, n;

		for (struct task *t = tasks; t; t = t->next)
			if (t->kill_at && (!next || t->kill_at < next))
				next = t->kill_at;
		if (next)
			timeout = next <= now ? 0 : (int) ((next - now + 999) / 1000);
		if (n_doomed && (timeout < 0 || timeout > 100))
			timeout = 100;
		n = epoll_wait(epfd, evs, 64, timeout);
		for (int i = 0; i < n; i++) {
			struct src *s = evs[i].data.ptr;

			if (s->kind == K_LISTEN)
				on_accept();
			else if (s->kind == K_SIGNAL)
				reap();
			else if (s->kind == K_PIPE) {
				struct task *t = (struct task *) s;
				if (!task_drain(t))
					pipe_close(t);
			} else {
				struct conn *c = (struct conn *) s;
				if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
					conn_read(c);
				if (!c->dead && (evs[i].events & EPOLLOUT))
					conn_flush(c);
			}
		}
		/* kills and frees only now: no event above names a freed one */
		now = now_usec();
		for (struct task *t = tasks; t; t = t->next)
			if (t->kill_at && t->kill_at <= now && !t->ended) {
				t->kill_at = 0;
				task_kill_hard(t);
			}
		for (struct task *t = tasks, *next_t; t; t = next_t) {
			next_t = t->next;
			if (t->forgotten && t->ended)
				task_free(t);
		}
		cgroup_reap();
		for (struct conn *c = conns, *next_c; c; c = next_c) {
			next_c = c->next;
			if (c->dead)
				conn_free(c);
		}
		if (served && !conns && !tasks)
			return 0;
		if (now >= next_check) {
			struct stat st;

			next_check = now + SOCKET_CHECK_USEC;
			if (socket_ino && (stat(socket_path, &st) < 0 || st.st_ino != socket_ino)) {
				for (struct task *t = tasks; t; t = t->next)
					if (!t->ended)
						task_kill_hard(t);
				return 0;
			}
		}
	}
}
