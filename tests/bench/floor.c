/*
 * floor.c - the one-exec floor: what running N commands costs with nothing
 * but the kernel, to compare a task runner against.
 *
 *   floor N INFLIGHT [PROGRAM]
 *
 * Starts PROGRAM (default /bin/true) N times with posix_spawn, at most
 * INFLIGHT at once (1: one after another, as a chain), each watched through
 * a pidfd in one epoll set, and prints "N S" (commands, seconds) on stdout.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now(void) {
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int start(int ep, char *prog, posix_spawn_file_actions_t *fa) {
	char *argv[] = { prog, NULL };
	struct epoll_event ev = { .events = EPOLLIN };
	pid_t pid;
	int fd;

	if (posix_spawn(&pid, prog, fa, NULL, argv, environ) != 0)
		return -1;
	fd = (int) syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0)
		return -1;
	ev.data.u64 = ((uint64_t) (uint32_t) pid << 32) | (uint32_t) fd;
	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

int main(int argc, char **argv) {
	long n, inflight, started = 0, done = 0;
	char *prog = argc > 3 ? argv[3] : "/bin/true";
	posix_spawn_file_actions_t fa;
	double t0;
	int ep;

	if (argc < 3 || (n = atol(argv[1])) < 1 || (inflight = atol(argv[2])) < 1) {
		fprintf(stderr, "usage: floor N INFLIGHT [PROGRAM]\n");
		return 2;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	t0 = now();
	while (started < n && started < inflight)
		if (start(ep, prog, &fa) < 0 || !++started)
			return perror("start"), 1;
	while (done < n) {
		struct epoll_event evs[16];
		int k = epoll_wait(ep, evs, 16, -1);

		if (k < 0 && errno == EINTR)
			continue;
		for (int i = 0; i < k; i++) {
			pid_t pid = (pid_t) (evs[i].data.u64 >> 32);
			int fd = (int) (evs[i].data.u64 & 0xffffffff);

			waitpid(pid, NULL, 0);
			close(fd);
			done++;
			if (started < n) {
				if (start(ep, prog, &fa) < 0)
					return perror("start"), 1;
				started++;
			}
		}
	}
	printf("%ld %.6f\n", n, now() - t0);
	return 0;
}
