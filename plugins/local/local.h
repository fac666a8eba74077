/*
 * local.h - the local executor's own header: its state, its sandboxes, and
 * what local.c (the executor's calls), conn.c (the connection to the
 * helper) and limits.c (the options that limit a task's resources) share.
 */
#ifndef DAGD_LOCAL_H
#define DAGD_LOCAL_H

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "common/common.h"
#include "proto.h"
struct local_sandbox;

/* A task's resource limits; 0: none. */
struct local_limits {
	int64_t memory;                         /* bytes */
	int64_t pids;                           /* processes */
	int64_t cpu;                            /* CPU usec a PROTO_CPU_PERIOD_USEC */
};

struct local {
	const struct dagd_host *host;
	char *dir;                              /* absolute STATE_DIR/local */
	char *helper;                           /* the program's path */
	char *helper_socket;                    /* a helper someone else starts (the system
						 * units' dagd-helper.socket), or NULL: our own */
	char *user;                             /* run tasks as this user, or NULL */
	struct local_limits limits;             /* every task's, unless its options say */
	uid_t uid;
	gid_t gid;
	int fd;                                 /* to the helper; -EBADF: none */
	sd_event_source *io;
	sd_event_source *child;                 /* the helper's pidfd, when we started it */
	pid_t child_pid;
	char *in, *out;
	size_t in_len, in_cap, out_len, out_cap;
	int helper_version;                     /* its hello's; 1: it said none */
	char mode[16];                          /* its containment: "cgroup" or "session" */
	char limits_by[64];                     /* how it sets limits: "cgroup1 memory pids cpu", or "" */
	char status[256];                       /* what status() said last */
	/* list() in progress */
	bool listing;
	void (*found)(void *ctx, const char *sandbox_id, const char *handle);
	void *found_ctx;
	struct local_sandbox *sandboxes;
};

struct local_sandbox {
	struct local *local;
	struct dagd_sandbox *sb;
	char *id;
	pid_t pid;                              /* once the helper said; 0 before */
	struct local_sandbox *prev, *next;
};

/* how long a new connection waits for the helper's hello */
#define HELLO_TIMEOUT_MS 2000

static inline void closep(int *fd) {
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}
#define _cleanup_close_ _cleanup_(closep)

/* limits.c */
int limits_parse(json_object *o, struct local_limits *lim, char **ret_error);
bool limits_any(const struct local_limits *lim);
int limits_check(const struct local *l, const struct local_limits *lim, char **ret_error);
void limits_fields(const struct local_limits *lim, char ret[3][24]);
const char *limits_status(const struct local *l);

/* conn.c */
void sandbox_free(struct local_sandbox *x);
struct local_sandbox *sandbox_add(struct local *l, struct dagd_sandbox *sb, const char *id);
int flush_out(struct local *l);
int send_fields(struct local *l, char type, const char *const *f, size_t n);
int read_in(struct local *l);
void disconnect(struct local *l);
void helper_lost(struct local *l, const char *why);
int helper_connect(struct local *l, bool start);

#endif
