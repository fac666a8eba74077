/*
 * helper.h - local-helper's own header: its connections, its tasks, and
 * what helper.c (the loop, the messages), helper-task.c (starting,
 * reaping, killing tasks, their logs) and cgroup.c (a task's cgroups and
 * resource limits) share.
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

/* a task's resource limits, as the S message's fields say them; 0: none */
enum { LIM_MEMORY, LIM_PIDS, LIM_CPU, LIM_MAX };
struct limits {
	int64_t v[LIM_MAX];             /* bytes; processes; CPU usec a PROTO_CPU_PERIOD_USEC */
};

struct task {
	struct src src;                 /* K_PIPE: its output */
	char *id, *log_path;
	pid_t pid;                      /* leader, session and group */
	int out_fd, log_fd;
	bool ended, forgotten, log_failed, cancelled;
	bool stopped;                   /* paused by SIGSTOP (no freezer) */
	char *cgroup;                   /* its own cgroup's directory, or NULL */
	char *v1[LIM_MAX];              /* its cgroups in the v1 hierarchies (limits), or NULL */
	int64_t memory_max;             /* its memory limit, bytes; 0: none */
	bool oom;                       /* it failed, and something of it was killed for want of memory */
	int code, sig;
	uint64_t kill_at;               /* CLOCK_MONOTONIC usec; 0: none */
	struct conn *watcher;
	struct task *next;
};

/* how often the helper checks that its socket is still there */
#define SOCKET_CHECK_USEC (10u * 1000000u)
/* how long a helper with nothing left to do waits for its tasks' cgroups to
 * empty, to remove them, before it exits */
#define DOOMED_WAIT_USEC (2u * 1000000u)

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
extern int dev_null;
struct task *task_find(const char *id);
void task_free(struct task *t);
bool task_drain(struct task *t);
void pipe_close(struct task *t);
void task_kill_hard(struct task *t);
void reap(void);
void task_spawn(struct conn *c, const char **f, int n, const struct limits *lim);
void task_freeze(struct task *t, bool frozen);

/* cgroup.c */
/* the helper's own leaf beneath a delegated cgroup (never a sandbox id: none starts with '.') */
#define CG_LEAF ".helper"
extern size_t n_doomed;
void cgroup_setup(void);
const char *cgroup_mode(void);
void cgroup_make(struct task *t, int *procs, size_t *n_procs);
void cgroup_kill(const char *dir);
void cgroup_remove(char *dir);
void cgroup_reap(void);
const char *limits_mode(void);
int limits_parse(const char **f, struct limits *ret);
int limits_enter(struct task *t, const struct limits *lim, int *procs, size_t *n_procs, char *err, size_t errlen);
void limits_kill(struct task *t);
void limits_end(struct task *t);
void limits_remove(struct task *t);
void limits_exit(const struct task *t, const char **ret_reason, char *msg, size_t len);

#endif
