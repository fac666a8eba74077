/*
 * local.c - the `local` executor: each task runs as its own process group on
 * this host, under a small supervisor process that outlives the daemon.
 *
 * spawn() starts the supervisor, a small program (supervise/supervise.c)
 * run with posix_spawn().  The supervisor leaves the daemon's session
 * (setsid), ignores the signals a cancel sends to the task, forks the task as
 * the leader of a new process group, waits for it and records how it ended in
 * STATE_DIR/local/<sandbox>.exit ("exited N", "killed S" or "dumped S",
 * written to a temporary file and renamed), then exits.  The daemon watches
 * the supervisor through a pidfd, which works the same for its own children
 * and for supervisors adopted after a restart.
 *
 * The handle is "<supervisor pid>:<task pgid>:<supervisor start time>"; the
 * start time (field 22 of /proc/<pid>/stat) tells the real supervisor from a
 * process that got its pid later.
 *
 * posix_spawn() copies nothing of the daemon's address space: starting a task
 * costs the same however many tasks the daemon holds.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "common/common.h"

#define _cleanup_close_ _cleanup_(closep)
#define MIN(a, b) ((a) < (b) ? (a) : (b))

/* The supervisor program, beside local.so. */
#define SUPERVISOR "local-supervise"
/* How late the SIGKILL after the grace period may come. */
#define KILL_ACCURACY_USEC 10000

static inline void closep(int *fd) {
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}

struct local_sandbox;

struct local {
	const struct dagd_host *host;
	char *dir;                              /* absolute STATE_DIR/local */
	char *supervisor;                       /* the program's path */
	struct local_sandbox *sandboxes;        /* all we watch, to free at shutdown */
};

struct local_sandbox {
	struct local *local;
	struct dagd_sandbox *sb;
	struct local_sandbox *prev, *next;
	pid_t pid;                              /* the supervisor */
	pid_t pgid;                             /* the task's process group */
	unsigned long long start_time;          /* the supervisor's, clock ticks after boot */
	int pidfd;                              /* the supervisor's; -EBADF once it is gone */
	sd_event_source *exit_source;           /* the pidfd, or a defer source for a recorded exit */
	sd_event_source *kill_source;           /* SIGKILL when the grace period is over */
	char *exit_path;
	char *tmp_path;
	bool cancelled;
};

struct proc_stat {
	char state;
	pid_t pgrp;
	pid_t session;
	unsigned long long start_time;
};

static int sys_pidfd_open(pid_t pid) {
	return (int) syscall(SYS_pidfd_open, pid, 0);
}

/* Whether the process behind pidfd has exited (never blocks). */
static bool pidfd_exited(int pidfd) {
	struct pollfd p = { .fd = pidfd, .events = POLLIN };

	return poll(&p, 1, 0) > 0;
}

/* Makes sure fd is not 0, 1 or 2, so that dup2() onto those never clobbers it. */
static int fd_move_above_stdio(int fd) {
	int copy;

	if (fd < 0 || fd > 2)
		return fd;
	copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (copy < 0)
		copy = -errno;
	close(fd);
	return copy;
}

/* mkdir -p of path itself. */
static int mkdir_p(const char *path, mode_t mode) {
	_cleanup_free_ char *p = strdup(path);
	char *s;

	if (!p)
		return -ENOMEM;
	for (s = p + 1; ; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return -errno;
		*s = c;
		if (c == '\0')
			break;
	}
	return 0;
}

/* mkdir -p of the directory holding file. */
static int mkdir_parents(const char *file, mode_t mode) {
	_cleanup_free_ char *p = strdup(file);
	char *slash;

	if (!p)
		return -ENOMEM;
	slash = strrchr(p, '/');
	if (!slash || slash == p)
		return 0;
	*slash = '\0';
	return mkdir_p(p, mode);
}

static int proc_stat_read(pid_t pid, struct proc_stat *ret) {
	char path[64], buf[1024];
	_cleanup_close_ int fd = -EBADF;
	struct proc_stat st;
	ssize_t n;
	char *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	/* the command name in field 2 may hold spaces and parentheses */
	p = strrchr(buf, ')');
	if (!p)
		return -EIO;
	/* fields 3 to 6, then 15 skipped, then 22 */
	if (sscanf(p + 1, " %c %*d %d %d %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu",
		   &st.state, &st.pgrp, &st.session, &st.start_time) != 4)
		return -EIO;
	*ret = st;
	return 0;
}

static void sandbox_free(struct local_sandbox *x) {
	if (!x)
		return;
	if (x->local)
		LIST_UNLINK(x->local->sandboxes, x);
	sd_event_source_disable_unref(x->exit_source);
	sd_event_source_disable_unref(x->kill_source);
	if (x->pidfd >= 0)
		close(x->pidfd);
	free(x->exit_path);
	free(x->tmp_path);
	free(x);
}

static void sandbox_link(struct local *l, struct local_sandbox *x) {
	x->local = l;
	LIST_LINK(l->sandboxes, x);
}

static struct local_sandbox *sandbox_new(struct dagd_sandbox *sb) {
	struct local_sandbox *x = calloc(1, sizeof(*x));

	if (!x)
		return NULL;
	x->sb = sb;
	x->pidfd = -EBADF;
	return x;
}

static const char *sandbox_id_of(struct local *l, struct dagd_sandbox *sb, const struct dagd_spawn *spec) {
	if (spec && spec->sandbox_id)
		return spec->sandbox_id;
	if (l->host->size >= sizeof(struct dagd_host) && l->host->sandbox_id)
		return l->host->sandbox_id(sb);
	return NULL;
}

/* STATE_DIR/local/<id>.exit and its temporary twin. */
static int exit_paths(struct local *l, const char *id, struct local_sandbox *x, char **ret_error) {
	if (!id || !*id || id[0] == '.' || strchr(id, '/') || strlen(id) > NAME_MAX - 16)
		return errorf(ret_error, -EINVAL, "Invalid sandbox id '%s'", id ? id : "(null)");
	if (asprintf(&x->exit_path, "%s/%s.exit", l->dir, id) < 0) {
		x->exit_path = NULL;
		return errorf(ret_error, -ENOMEM, "Out of memory");
	}
	if (asprintf(&x->tmp_path, "%s/%s.exit.tmp", l->dir, id) < 0) {
		x->tmp_path = NULL;
		return errorf(ret_error, -ENOMEM, "Out of memory");
	}
	return 0;
}

/* Signals the task's process group: 1 if sent, 0 if there was nothing to
 * signal.  Only while the task (alive or a zombie) is still in the
 * supervisor's session: it cannot leave it (a group leader cannot setsid()),
 * so this never hits a group that merely got the same number. */
static int group_kill(struct local_sandbox *x, int sig) {
	struct proc_stat st;

	if (proc_stat_read(x->pgid, &st) < 0 || st.session != x->pid)
		return 0;
	if (kill(-x->pgid, sig) < 0)
		return errno == ESRCH ? 0 : -errno;
	return 1;
}

/* Reads the supervisor's record into *ret (code, signal, a message in msg). */
static int exit_read(struct local_sandbox *x, struct dagd_exit *ret, char *msg, size_t msg_size) {
	_cleanup_close_ int fd = -EBADF;
	char buf[64], kind[16];
	ssize_t n;
	int value;

	fd = open(x->exit_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	if (sscanf(buf, "%15s %d", kind, &value) != 2)
		return -EBADMSG;

	/* the host words the plain cases itself; only what it cannot know is said */
	if (strcmp(kind, "exited") == 0)
		*ret = (struct dagd_exit) { .code = value };
	else if (strcmp(kind, "killed") == 0 || strcmp(kind, "dumped") == 0) {
		*ret = (struct dagd_exit) { .code = -1, .signal = value };
		if (kind[0] == 'd') {
			snprintf(msg, msg_size, "core dumped");
			ret->message = msg;
		}
	} else
		return -EBADMSG;
	return 0;
}

/* The supervisor has exited: report how the task ended, forget the sandbox. */
static void sandbox_finish(struct local_sandbox *x) {
	const struct dagd_host *host = x->local->host;
	struct dagd_exit e;
	char msg[256];
	int r;

	r = exit_read(x, &e, msg, sizeof(msg));
	if (r < 0) {
		/* nobody could report what is left of the task any more */
		bool killed = group_kill(x, SIGKILL) > 0;

		snprintf(msg, sizeof(msg),
			 "the supervisor (pid %d) ended without recording the task's exit (%s)%s",
			 (int) x->pid, strerror(-r),
			 killed ? "; the rest of the task's process group was killed" : "");
		e = (struct dagd_exit) { .code = -1, .reason = "lost", .message = msg };
		host->log(x->sb, LOG_WARNING, "%s", msg);
	} else if (x->cancelled)
		e.reason = "cancelled";

	/* out of our list first: the host may shut us down from its callback */
	if (x->prev)
		x->prev->next = x->next;
	else if (x->local->sandboxes == x)
		x->local->sandboxes = x->next;
	if (x->next)
		x->next->prev = x->prev;
	x->prev = x->next = NULL;
	x->local = NULL;

	host->sandbox_exited(x->sb, &e);

	/* removed only now, so that a crash before the host took note leaves it to adopt() */
	(void) unlink(x->exit_path);
	(void) unlink(x->tmp_path);
	sandbox_free(x);
}

static int on_supervisor_exit(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
	struct local_sandbox *x = userdata;
	siginfo_t si = { .si_pid = 0 };

	/* reap it if it is our child; P_PIDFD cannot hit another process that got its pid */
	if (waitid(P_PIDFD, (id_t) fd, &si, WEXITED | WNOHANG) < 0 && errno != ECHILD)
		x->local->host->log(x->sb, LOG_DEBUG, "waitid() on supervisor %d: %m", (int) x->pid);
	sandbox_finish(x);
	return 0;
}

static int on_recorded_exit(sd_event_source *s, void *userdata) {
	sandbox_finish(userdata);
	return 0;
}

static int on_grace_over(sd_event_source *s, uint64_t usec, void *userdata) {
	struct local_sandbox *x = userdata;
	int r;

	x->kill_source = sd_event_source_disable_unref(x->kill_source);
	if (x->pidfd < 0 || pidfd_exited(x->pidfd))
		return 0;
	x->local->host->log(x->sb, LOG_NOTICE, "process group %d still runs after its grace period, sending SIGKILL",
			    (int) x->pgid);
	r = group_kill(x, SIGKILL);
	if (r < 0)
		x->local->host->log(x->sb, LOG_ERR, "Cannot kill process group %d: %s", (int) x->pgid, strerror(-r));
	return 0;
}

/* Watches the supervisor behind x->pidfd. */
static int sandbox_watch(struct local *l, struct local_sandbox *x) {
	return sd_event_add_io(l->host->event, &x->exit_source, x->pidfd, EPOLLIN, on_supervisor_exit, x);
}

/* Starts the supervisor with posix_spawn(): the daemon's address space is
 * not copied, so this costs the same however many tasks the daemon holds. */
static int supervisor_spawn(struct local *l, const struct dagd_spawn *spec, const struct local_sandbox *x,
			    int null_fd, int log_fd, int pipe_fd, pid_t *ret_pid) {
	static const char *const no_env[] = { NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t all;
	size_t n = 0;
	const char **argv;
	int r;

	while (spec->argv[n])
		n++;
	argv = calloc(n + 6, sizeof(*argv));
	if (!argv)
		return -ENOMEM;
	argv[0] = SUPERVISOR;
	argv[1] = x->exit_path;
	argv[2] = x->tmp_path;
	argv[3] = spec->cwd ? spec->cwd : "";
	argv[4] = "--";
	memcpy(argv + 5, spec->argv, n * sizeof(*argv));

	sigfillset(&all);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	(void) posix_spawn_file_actions_adddup2(&fa, null_fd, STDIN_FILENO);
	(void) posix_spawn_file_actions_adddup2(&fa, log_fd, STDOUT_FILENO);
	(void) posix_spawn_file_actions_adddup2(&fa, log_fd, STDERR_FILENO);
	(void) posix_spawn_file_actions_adddup2(&fa, pipe_fd, 3);
	(void) posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	(void) posix_spawnattr_setsigmask(&at, &all);
	(void) posix_spawnattr_setsigdefault(&at, &all);
	r = posix_spawn(ret_pid, l->supervisor, &fa, &at, (char *const *) argv,
			(char *const *) (spec->envp ? spec->envp : no_env));
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	free(argv);
	return -r;
}

/* Undoes a spawn that cannot be watched: kill it all, reap the supervisor. */
static void spawn_abandon(pid_t pid, pid_t pgid, const struct local_sandbox *x) {
	if (pgid > 1)
		(void) kill(-pgid, SIGKILL);
	(void) kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	(void) unlink(x->exit_path);
	(void) unlink(x->tmp_path);
}

extern DAGD_EXECUTOR_EXPORT const struct dagd_executor dagd_executor;

/* The supervisor is installed in the directory local.so was loaded from. */
static int supervisor_find(char **ret) {
	Dl_info info;
	const char *slash;
	char *path;

	if (!dladdr((const void *) &dagd_executor, &info) || !info.dli_fname)
		return -ENOENT;
	slash = strrchr(info.dli_fname, '/');
	if (asprintf(&path, "%.*s" SUPERVISOR, slash ? (int) (slash - info.dli_fname + 1) : 0,
		     info.dli_fname) < 0)
		return -ENOMEM;
	if (access(path, X_OK) < 0) {
		int r = -errno;
		free(path);
		return r;
	}
	*ret = path;
	return 0;
}

static int local_init(const struct dagd_host *host, const char *options_json,
		      void **ret_state, char **ret_error) {
	_cleanup_free_ struct local *l = NULL;
	_cleanup_free_ char *cwd = NULL;
	int r;

	if (!host || host->abi_version < 1 ||
	    host->size < offsetof(struct dagd_host, sandbox_exited) + sizeof(host->sandbox_exited))
		return errorf(ret_error, -EINVAL, "local: unsupported host interface");
	if (!host->event || !host->state_dir || !*host->state_dir || !host->log ||
	    !host->sandbox_started || !host->sandbox_exited)
		return errorf(ret_error, -EINVAL, "local: the host left out the event loop, state directory or a callback");

	l = calloc(1, sizeof(*l));
	if (!l)
		return errorf(ret_error, -ENOMEM, "Out of memory");
	l->host = host;

	/* absolute, for the supervisor works from / */
	if (host->state_dir[0] == '/')
		r = asprintf(&l->dir, "%s/local", host->state_dir);
	else {
		cwd = getcwd(NULL, 0);
		if (!cwd)
			return errorf(ret_error, -errno, "Cannot get the current directory: %m");
		r = asprintf(&l->dir, "%s/%s/local", cwd, host->state_dir);
	}
	if (r < 0) {
		l->dir = NULL;
		return errorf(ret_error, -ENOMEM, "Out of memory");
	}
	r = mkdir_p(l->dir, 0700);
	if (r < 0) {
		r = errorf(ret_error, r, "Cannot create '%s': %m", l->dir);
		free(l->dir);
		return r;
	}
	r = supervisor_find(&l->supervisor);
	if (r < 0) {
		r = errorf(ret_error, r, "Cannot find the program '" SUPERVISOR "' beside local.so: %m");
		free(l->dir);
		return r;
	}

	*ret_state = TAKE_PTR(l);
	return 0;
}

static void local_shutdown(void *state) {
	struct local *l = state;

	if (!l)
		return;
	while (l->sandboxes)
		sandbox_free(l->sandboxes);
	free(l->supervisor);
	free(l->dir);
	free(l);
}

static int local_spawn(void *state, struct dagd_sandbox *sb, const struct dagd_spawn *spec,
		       void **ret_data, char **ret_error) {
	struct local *l = state;
	struct local_sandbox *x = NULL;
	_cleanup_close_ int log_fd = -EBADF, null_fd = -EBADF, pipe_r = -EBADF, pipe_w = -EBADF;
	struct proc_stat st;
	char handle[128];
	int p[2], v;
	ssize_t n;
	pid_t pid;
	int r;

	if (!spec || !spec->argv || !spec->argv[0] || !spec->argv[0][0])
		return errorf(ret_error, -EINVAL, "Nothing to run: the command is empty");
	if (!spec->log_path || !*spec->log_path)
		return errorf(ret_error, -EINVAL, "No log file given");

	x = sandbox_new(sb);
	if (!x)
		return errorf(ret_error, -ENOMEM, "Out of memory");
	r = exit_paths(l, sandbox_id_of(l, sb, spec), x, ret_error);
	if (r < 0)
		goto fail;

	r = mkdir_parents(spec->log_path, 0750);
	if (r < 0) {
		r = errorf(ret_error, r, "Cannot create the directory of log file '%s': %m", spec->log_path);
		goto fail;
	}
	log_fd = open(spec->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
	if (log_fd < 0) {
		r = errorf(ret_error, -errno, "Cannot open log file '%s': %m", spec->log_path);
		goto fail;
	}
	null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (null_fd < 0) {
		r = errorf(ret_error, -errno, "Cannot open /dev/null: %m");
		goto fail;
	}
	if (pipe2(p, O_CLOEXEC) < 0) {
		r = errorf(ret_error, -errno, "Cannot create a pipe: %m");
		goto fail;
	}
	pipe_r = p[0];
	pipe_w = p[1];
	log_fd = fd_move_above_stdio(log_fd);
	null_fd = fd_move_above_stdio(null_fd);
	pipe_w = fd_move_above_stdio(pipe_w);
	if (log_fd < 0 || null_fd < 0 || pipe_w < 0) {
		r = errorf(ret_error, -EMFILE, "Cannot move file descriptors: %m");
		goto fail;
	}
	/* a record left by an earlier sandbox of the same id would be taken for this one's */
	(void) unlink(x->exit_path);
	(void) unlink(x->tmp_path);

	pid = 0;
	r = supervisor_spawn(l, spec, x, null_fd, log_fd, pipe_w, &pid);
	if (r < 0) {
		r = errorf(ret_error, r, "Cannot start the supervisor '%s': %m", l->supervisor);
		goto fail;
	}

	closep(&pipe_w);
	pipe_w = -EBADF;
	/* blocks only until the supervisor has forked the task */
	do
		n = read(pipe_r, &v, sizeof(v));
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t) sizeof(v) || v <= 1) {
		r = n == (ssize_t) sizeof(v) && v < 0 ? v : -EIO;
		spawn_abandon(pid, 0, x);
		r = errorf(ret_error, r, "The supervisor could not start the task: %m");
		goto fail;
	}
	x->pid = pid;
	x->pgid = (pid_t) v;

	r = proc_stat_read(pid, &st);
	if (r < 0) {
		spawn_abandon(pid, x->pgid, x);
		r = errorf(ret_error, r, "Cannot read /proc/%d/stat: %m", (int) pid);
		goto fail;
	}
	x->start_time = st.start_time;
	x->pidfd = sys_pidfd_open(pid);
	if (x->pidfd < 0) {
		r = -errno;
		spawn_abandon(pid, x->pgid, x);
		r = errorf(ret_error, r, "pidfd_open(%d) failed: %m", (int) pid);
		goto fail;
	}
	r = sandbox_watch(l, x);
	if (r < 0) {
		spawn_abandon(pid, x->pgid, x);
		r = errorf(ret_error, r, "Cannot watch the supervisor: %m");
		goto fail;
	}
	sandbox_link(l, x);

	snprintf(handle, sizeof(handle), "%d:%d:%llu", (int) x->pid, (int) x->pgid, x->start_time);
	l->host->log(sb, LOG_DEBUG, "started process group %d under supervisor %d", (int) x->pgid, (int) x->pid);
	*ret_data = x;
	l->host->sandbox_started(sb, handle);
	return 0;

fail:
	sandbox_free(x);
	return r;
}

static int local_cancel(void *state, struct dagd_sandbox *sb, void *data, uint64_t grace_usec) {
	struct local *l = state;
	struct local_sandbox *x = data;
	int r;

	if (!x)
		return -EINVAL;
	/* gone already: its exit is on the way */
	if (x->pidfd < 0 || pidfd_exited(x->pidfd))
		return 0;
	x->cancelled = true;
	if (grace_usec == 0)
		return MIN(group_kill(x, SIGKILL), 0);
	r = group_kill(x, SIGTERM);
	if (r <= 0)
		return r;
	if (x->kill_source)
		return 0;
	r = sd_event_add_time_relative(l->host->event, &x->kill_source, CLOCK_MONOTONIC, grace_usec,
				       KILL_ACCURACY_USEC, on_grace_over, x);
	if (r < 0) {
		l->host->log(sb, LOG_WARNING, "Cannot arm the grace period timer (%s), killing at once", strerror(-r));
		return MIN(group_kill(x, SIGKILL), 0);
	}
	return 0;
}

static int handle_parse(const char *handle, pid_t *ret_pid, pid_t *ret_pgid, unsigned long long *ret_start) {
	long pid, pgid;
	unsigned long long start;
	char *end;

	if (!handle || strspn(handle, "0123456789:") != strlen(handle))
		return -EINVAL;
	errno = 0;
	pid = strtol(handle, &end, 10);
	if (errno || end == handle || *end != ':')
		return -EINVAL;
	handle = end + 1;
	pgid = strtol(handle, &end, 10);
	if (errno || end == handle || *end != ':')
		return -EINVAL;
	handle = end + 1;
	start = strtoull(handle, &end, 10);
	if (end == handle)
		return -EINVAL;
	if (errno || *end != '\0')
		return -EINVAL;
	/* never let kill(-pgid) reach everything, our own group, or the supervisor */
	if (pid <= 1 || pid > INT_MAX || pgid <= 1 || pgid > INT_MAX || pgid == pid || pgid == getpgrp())
		return -EINVAL;
	*ret_pid = (pid_t) pid;
	*ret_pgid = (pid_t) pgid;
	*ret_start = start;
	return 0;
}

static int local_adopt(void *state, struct dagd_sandbox *sb, const struct dagd_spawn *spec,
		       const char *handle, void **ret_data, char **ret_error) {
	struct local *l = state;
	struct local_sandbox *x = NULL;
	struct proc_stat st;
	int r;

	x = sandbox_new(sb);
	if (!x)
		return errorf(ret_error, -ENOMEM, "Out of memory");
	r = handle_parse(handle, &x->pid, &x->pgid, &x->start_time);
	if (r < 0) {
		r = errorf(ret_error, r, "Invalid handle '%s': expected <pid>:<pgid>:<start time>",
			   handle ? handle : "(null)");
		goto fail;
	}
	r = exit_paths(l, sandbox_id_of(l, sb, spec), x, ret_error);
	if (r < 0)
		goto fail;

	/* open first, then check: a matching start time means the pidfd is the supervisor's */
	x->pidfd = sys_pidfd_open(x->pid);
	if (x->pidfd < 0 && errno != ESRCH) {
		r = errorf(ret_error, -errno, "pidfd_open(%d) failed: %m", (int) x->pid);
		goto fail;
	}
	if (x->pidfd >= 0 && (proc_stat_read(x->pid, &st) < 0 || st.start_time != x->start_time)) {
		close(x->pidfd);
		x->pidfd = -EBADF;
	}

	if (x->pidfd >= 0)
		r = sandbox_watch(l, x);
	else if (access(x->exit_path, F_OK) == 0)
		/* finished while nobody watched: report from the loop, not from inside adopt() */
		r = sd_event_add_defer(l->host->event, &x->exit_source, on_recorded_exit, x);
	else {
		r = errorf(ret_error, -ESRCH, "The supervisor (pid %d) is gone and left no exit status in '%s'",
			   (int) x->pid, x->exit_path);
		goto fail;
	}
	if (r < 0) {
		r = errorf(ret_error, r, "Cannot watch the sandbox: %m");
		goto fail;
	}
	sandbox_link(l, x);
	*ret_data = x;
	return 0;

fail:
	sandbox_free(x);
	return r;
}

DAGD_EXECUTOR_EXPORT const struct dagd_executor dagd_executor = {
	.abi_version = DAGD_EXECUTOR_ABI_VERSION,
	.size = sizeof(struct dagd_executor),
	.name = "local",
	.description = "runs each task as a process group on this host, under a supervisor that outlives daemon restarts",
	.max_concurrency = 0,
	.init = local_init,
	.shutdown = local_shutdown,
	.spawn = local_spawn,
	.cancel = local_cancel,
	.adopt = local_adopt,
};
