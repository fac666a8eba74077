/*
 * helper.h - local-helper's own header: its connections, its tasks, and
 * what helper.c (the loop, the messages) and helper-task.c (starting,
 * reaping, killing tasks, their logs and cgroups) share.
 */
#ifndef DAGD_LOCAL_HELPER_H
#define DAGD_LOCAL_HELPER_H

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
#include <linux/capability.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
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
	bool want_out;                  /* EPOLLOUT asked for */
	struct conn *next;
};

struct task {
	struct src src;                 /* K_PIPE: its output */
	char *id, *log_path;
	pid_t pid;                      /* leader, session and group */
	int out_fd, log_fd;
	bool ended, forgotten, log_failed, cancelled;
	bool stopped;                   /* paused by SIGSTOP (no freezer) */
	char *cgroup;                   /* its own cgroup's directory, or NULL */
	int code, sig;
	uint64_t kill_at;               /* CLOCK_MONOTONIC usec; 0: none */
	struct conn *watcher;
	struct task *next;
};

/* how often the helper checks that its socket is still there */
#define SOCKET_CHECK_USEC (10u * 1000000u)

/* helper.c */
extern int epfd, signal_fd;
extern struct task *tasks;
extern pid_t self;
void *xmalloc(size_t n);
char *xstrdup(const char *s);
uint64_t now_usec(void);
void send_msg(struct conn *c, char type, ...);
void send_exit(struct conn *c, const struct task *t);

/* helper-task.c */
extern size_t n_doomed;
extern int dev_null;
void cgroup_setup(void);
void cgroup_reap(void);
struct task *task_find(const char *id);
void task_free(struct task *t);
bool task_drain(struct task *t);
void pipe_close(struct task *t);
void task_kill_hard(struct task *t);
void reap(void);
void task_spawn(struct conn *c, const char **f, int n);
void task_freeze(struct task *t, bool frozen);
const char *cgroup_mode(void);

#endif
