/*
 * supervise.c - the supervisor of a task of the `local` executor: a small
 * program of its own, so that starting one costs the daemon a posix_spawn()
 * (no copy of its address space, however many tasks it holds).
 *
 * Usage, by local.so only:
 *
 *   local-supervise EXIT_PATH TMP_PATH CWD -- ARGV...
 *
 * with /dev/null on 0, the attempt's log on 1 and 2, a pipe to the daemon on
 * 3, the task's environment as its own, in a session of its own and every
 * signal blocked.  It ignores what a cancel sends to the task, forks the task
 * as the leader of a new process group, writes the task's pid on the pipe,
 * waits for it, and records how it ended in EXIT_PATH ("exited N", "killed S"
 * or "dumped S", written to TMP_PATH and renamed).  CWD "" means none.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* What a task that could not be started exits with, as a shell would. */
#define EXIT_CANNOT_EXEC 127

struct child_args {
	char *const *argv;
	char *const *envp;
	const char *cwd;
	const char *exit_path;
	const char *tmp_path;
};

struct text {
	char data[1024];
	size_t len;
};

static void text_add(struct text *t, const char *s) {
	while (s && *s && t->len < sizeof(t->data) - 1)
		t->data[t->len++] = *s++;
	t->data[t->len] = '\0';
}

static void text_add_int(struct text *t, int v) {
	char digits[16];
	unsigned u = v < 0 ? -(unsigned) v : (unsigned) v;
	int i = (int) sizeof(digits) - 1;

	digits[i] = '\0';
	do
		digits[--i] = (char) ('0' + u % 10);
	while ((u /= 10) > 0);
	if (v < 0)
		digits[--i] = '-';
	text_add(t, digits + i);
}

static bool write_all(int fd, const void *data, size_t size) {
	const char *p = data;

	while (size > 0) {
		ssize_t n = write(fd, p, size);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		size -= (size_t) n;
	}
	return true;
}

/* Tells the log why the task could not start, and exits as a shell would. */
static _Noreturn void task_fail(const char *what, const char *name, int error) {
	struct text t = { .len = 0 };
	const char *desc = strerrordesc_np(error);

	text_add(&t, "dagd: cannot ");
	text_add(&t, what);
	text_add(&t, " '");
	text_add(&t, name);
	text_add(&t, "': ");
	text_add(&t, desc ? desc : "unknown error");
	text_add(&t, "\n");
	(void) write_all(STDERR_FILENO, t.data, t.len);
	_exit(EXIT_CANNOT_EXEC);
}

/* The task: its own process group, default signals, stdio set up by the
 * supervisor, nothing else open; exec with exactly the given environment. */
static _Noreturn void task_exec(const struct child_args *a) {
	struct sigaction sa = { .sa_handler = SIG_DFL };
	sigset_t none;

	(void) setpgid(0, 0);
	/* dispositions first, then the mask the supervisor blocked for us */
	for (int sig = 1; sig < _NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			(void) sigaction(sig, &sa, NULL);
	sigemptyset(&none);
	(void) sigprocmask(SIG_SETMASK, &none, NULL);
	(void) close_range(3, ~0U, 0);

	if (a->cwd && chdir(a->cwd) < 0)
		task_fail("change to directory", a->cwd, errno);

	/* execvpe() searches the PATH of environ: make it the task's */
	environ = (char **) a->envp;
	execvpe(a->argv[0], a->argv, a->envp);
	task_fail("execute", a->argv[0], errno);
}

/* Writes how the task ended, atomically.  No fsync: the file only has to
 * outlive the daemon, not the machine (a machine that goes down takes the
 * task with it). */
static bool exit_record(const struct child_args *a, const siginfo_t *si) {
	struct text t = { .len = 0 };
	bool ok;
	int fd;

	text_add(&t, si->si_code == CLD_EXITED ? "exited " :
		     si->si_code == CLD_DUMPED ? "dumped " : "killed ");
	text_add_int(&t, si->si_status);
	text_add(&t, "\n");

	fd = open(a->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0)
		return false;
	ok = write_all(fd, t.data, t.len);
	if (close(fd) < 0)
		ok = false;
	if (ok && rename(a->tmp_path, a->exit_path) < 0)
		ok = false;
	if (!ok)
		(void) unlink(a->tmp_path);
	return ok;
}

/* The supervisor itself. */
static _Noreturn void supervise(const struct child_args *a) {
	static const int ignored[] = { SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGPIPE };
	struct sigaction ign = { .sa_handler = SIG_IGN };
	sigset_t none;
	siginfo_t si;
	pid_t pid;
	int r;

	/* dispositions are the defaults (the spawn reset them) and every signal is
	 * blocked: the task starts with everything blocked too, so a SIGTERM that
	 * comes before it has dropped our SIG_IGN stays pending, not discarded */
	for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
		(void) sigaction(ignored[i], &ign, NULL);
	(void) close_range(4, ~0U, 0);

	pid = fork();
	if (pid == 0)
		task_exec(a);
	if (pid < 0) {
		r = -errno;
		(void) write_all(3, &r, sizeof(r));
		_exit(1);
	}
	sigemptyset(&none);
	(void) sigprocmask(SIG_SETMASK, &none, NULL);
	/* the task does this too; whoever is first, the group exists before the daemon learns its id */
	(void) setpgid(pid, pid);
	r = (int) pid;
	(void) write_all(3, &r, sizeof(r));
	(void) close(3);
	(void) dup2(STDIN_FILENO, STDOUT_FILENO);
	(void) dup2(STDIN_FILENO, STDERR_FILENO);
	(void) chdir("/");

	/* WNOWAIT: the task's pid, and so its group id, stays taken until the exit is recorded */
	for (;;) {
		memset(&si, 0, sizeof(si));
		if (waitid(P_PID, (id_t) pid, &si, WEXITED | WNOWAIT) == 0)
			break;
		if (errno != EINTR)
			_exit(2);
	}
	r = exit_record(a, &si) ? 0 : 3;
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	_exit(r);
}

int main(int argc, char **argv) {
	struct child_args a;

	if (argc < 6 || strcmp(argv[4], "--") != 0) {
		static const char usage[] = "local-supervise: run by the local executor of dagd only\n";
		(void) !write(STDERR_FILENO, usage, sizeof(usage) - 1);
		return 2;
	}
	a = (struct child_args) {
		.argv = argv + 5,
		.envp = environ,
		.cwd = argv[3][0] ? argv[3] : NULL,
		.exit_path = argv[1],
		.tmp_path = argv[2],
	};
	supervise(&a);
}
