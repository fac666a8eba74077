/* example.c - a minimal dagd executor to start from: each task a child process of dagd in its
 * own process group, output appended to the attempt's log, watched through a pidfd.  The handle
 * is the pid: a plugin reload finds the child again; after a restart of dagd it is lost.
 *   cc -shared -fPIC -o example.so example.c $(pkg-config --cflags --libs dagd)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <dagd/executor.h>

struct child {
	struct dagd_sandbox *sb;
	pid_t pid;
	int pidfd;                      /* readable once the child ended */
	sd_event_source *io, *kill_timer;
	struct child *next;             /* in children, for shutdown() */
};

static const struct dagd_host *host;
static struct child *children;

static void child_free(struct child *c) {
	struct child **p = &children;

	while (*p != c)
		p = &(*p)->next;
	*p = c->next;
	sd_event_source_disable_unref(c->io);
	sd_event_source_disable_unref(c->kill_timer);
	close(c->pidfd);
	free(c);
}

/* The pidfd is readable: the child ended.  Reap it, say how. */
static int on_child_exit(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
	struct child *c = userdata;
	siginfo_t si = { 0 };

	if (waitid(P_PIDFD, c->pidfd, &si, WEXITED | WNOHANG) == 0 && si.si_pid == 0)
		return 0;               /* not yet */
	host->sandbox_exited(c->sb, &(struct dagd_exit) {
		.code = si.si_code == CLD_EXITED ? si.si_status : -1,
		.signal = si.si_code == CLD_EXITED ? 0 : si.si_status,
		.reason = si.si_pid ? NULL : "lost" });       /* lost: waitid() failed */
	child_free(c);                  /* and c->sb is never named again */
	return 0;
}

static int on_kill(sd_event_source *s, uint64_t usec, void *userdata) {
	return kill(-((struct child *) userdata)->pid, SIGKILL), 0;
}

/* Watch pid, which must be a child of this process (ECHILD if not). */
static int watch(struct dagd_sandbox *sb, pid_t pid, void **ret_data) {
	struct child *c = calloc(1, sizeof(*c));
	siginfo_t si = { 0 };
	int r;

	if (!c)
		return -ENOMEM;
	*c = (struct child) { .sb = sb, .pid = pid, .next = children };
	children = c;
	c->pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
	if (c->pidfd < 0 || waitid(P_PIDFD, c->pidfd, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
		r = -errno;
	else
		r = sd_event_add_io(host->event, &c->io, c->pidfd, EPOLLIN, on_child_exit, c);
	if (r < 0)
		return child_free(c), r;
	*ret_data = c;
	return 0;
}

static int ex_init(const struct dagd_host *h, const char *options_json, void **ret_state, char **ret_error) {
	host = h;                       /* it uses nothing a version-1 host lacks */
	*ret_state = NULL;
	return 0;
}

static void ex_shutdown(void *state) {
	while (children)                /* the processes go on, for adopt() */
		child_free(children);
}

static int ex_spawn(void *state, struct dagd_sandbox *sb, const struct dagd_spawn *spec, void **ret, char **err) {
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	char buf[4096];
	pid_t pid;
	int r;

	snprintf(buf, sizeof(buf), "%s", spec->log_path);       /* make STATE_DIR/logs/t-N/ */
	for (char *p = buf; (p = strchr(p + 1, '/')); *p = '/')
		*p = '\0', mkdir(buf, 0750);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, spec->log_path, O_WRONLY | O_CREAT | O_APPEND, 0640);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	if (spec->cwd)
		posix_spawn_file_actions_addchdir_np(&fa, spec->cwd);
	sigemptyset(&none);             /* dagd blocks and ignores signals: the task must not */
	sigfillset(&all);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
	r = -posix_spawnp(&pid, spec->argv[0], &fa, &attr, (char **) spec->argv, (char **) spec->envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (r >= 0 && (r = watch(sb, pid, ret)) < 0) {
		kill(-pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	if (r < 0)
		return r;               /* nothing runs, and nothing will be reported */
	snprintf(buf, sizeof(buf), "%d", (int) pid);
	host->sandbox_started(sb, buf);
	return 0;
}

static int ex_cancel(void *state, struct dagd_sandbox *sb, void *data, uint64_t grace_usec) {
	struct child *c = data;

	if (grace_usec == 0 || c->kill_timer || kill(-c->pid, SIGTERM) < 0)     /* again: at once */
		return kill(-c->pid, SIGKILL) < 0 ? -errno : 0;
	return sd_event_add_time_relative(host->event, &c->kill_timer, CLOCK_MONOTONIC, grace_usec, 0, on_kill, c);
}

static int ex_adopt(void *state, struct dagd_sandbox *sb, const struct dagd_spawn *spec, const char *handle,
		    void **ret, char **err) {
	pid_t pid = (pid_t) atoi(handle);

	return pid > 0 ? watch(sb, pid, ret) : -EINVAL;         /* no child of dagd's: gone, lost */
}

DAGD_EXECUTOR_EXPORT const struct dagd_executor dagd_executor = {
	.abi_version = DAGD_EXECUTOR_ABI_VERSION, .size = sizeof(struct dagd_executor),
	.name = "example", .description = "each task a child process of dagd (an example to start from)",
	.init = ex_init, .shutdown = ex_shutdown, .spawn = ex_spawn, .cancel = ex_cancel, .adopt = ex_adopt,
};
