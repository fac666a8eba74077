/*
 * local-harness.h - what the local executor's tests share: a tiny host of
 * their own for the plugin, and the helpers that drive it.
 *
 * The host here is what the daemon is to a plugin: an sd-event loop it runs
 * until the callback a test waits for arrives (or a timeout), and a struct
 * dagd_host whose callbacks record into the sandbox.  The plugin starts its
 * helper (local-helper) in the test's state directory; teardown kills it.
 * The plugin is the built local.so, dlopen()ed from the directory in argv[1],
 * $DAGD_TEST_PLUGIN_DIR, or the build tree.  Each test gets its own
 * directory, state and loop.
 */
#ifndef LOCAL_HARNESS_H
#define LOCAL_HARNESS_H

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "executor.h"

#define SEC 1000000ULL
#define MSEC 1000ULL

/* The host owns struct dagd_sandbox; this one records what the plugin reported. */
struct dagd_sandbox {
	char id[64];
	char log[PATH_MAX];
	int started;
	char handle[1024];
	int exited;
	int code;
	int signal;
	char reason[32];
	char message[512];
	size_t output;
};

/* short enough that every path made from them fits in PATH_MAX */
#define DIR_MAX (PATH_MAX / 4)

struct env {
	char dir[DIR_MAX];
	char state_dir[DIR_MAX];
	sd_event *event;
	struct dagd_host host;
	void *state;
};

extern const struct dagd_executor *X;   /* the plugin under test */
extern char broken_dir[DIR_MAX];        /* the broken plugins of the loader tests */
extern struct env E;                    /* this test's directory, loop, host and plugin state */

/* Loads the plugin (argv[1], $DAGD_TEST_PLUGIN_DIR or the build tree), finds
 * the broken plugins, and blocks signals as the daemon would; what main()
 * calls before it runs the tests.  0, or -1 said on stderr. */
int harness_init(int argc, char **argv);

/* ---- the host ---- */

/* init() of the plugin with this test's host (as root, the user "root"). */
void plugin_start(void);
/* The daemon goes away: the plugin forgets everything, the sandboxes run on. */
void plugin_stop(void);
/* The fixtures of each test: a fresh directory, loop and plugin state; and
 * their end, the helper of this test's state directory killed. */
int setup(void **unused);
int teardown(void **unused);
/* The pid of the helper of this test's state directory; 0 if none runs. */
pid_t helper_pid(void);

/* ---- helpers ---- */

/* CLOCK_MONOTONIC, in microseconds. */
uint64_t now_usec(void);
/* Runs the loop until done(arg) or the timeout; whether done. */
bool run_until(bool (*done)(const void *), const void *arg, uint64_t timeout_usec);
/* Runs the loop for so long. */
void run_for(uint64_t usec);
/* A file's first 64 KiB, NUL-terminated, to free(); NULL if it cannot be read. */
char *file_read(const char *path);
/* Runs the loop until the sandbox's log holds text; fails after 10 s. */
void wait_for_log(const struct dagd_sandbox *sb, const char *text);
/* The sandbox's log is exactly expected. */
void assert_log_equal(const struct dagd_sandbox *sb, const char *expected);
/* The sandbox's log holds text. */
void assert_log_contains(const struct dagd_sandbox *sb, const char *text);
/* Runs the loop until the sandbox's exit is reported, once; fails after 15 s. */
void wait_exit(struct dagd_sandbox *sb);
/* A process (arg: a pid_t) that is gone or a zombie; for run_until(). */
bool proc_gone(const void *arg);

/* What /proc/<pid>/stat says of a process. */
struct stat_fields {
	char state;
	int ppid, pgrp, session;
	unsigned long long start_time;
};

/* Reads /proc/<pid>/stat. */
void proc_stat_fields(pid_t pid, struct stat_fields *ret);
/* The hex mask of a "SigIgn:"-like line of /proc/<pid>/status. */
unsigned long long proc_status_mask(pid_t pid, const char *key);
/* The open descriptors of pid, in order, as "0 1 2" (a static buffer). */
const char *proc_fds(pid_t pid);

/* A new sandbox of that id, its log logs/<id>.log in the test's directory. */
void sb_new(struct dagd_sandbox *sb, const char *id);
/* The spawn request of a sandbox (default environment if envp is NULL, no options). */
struct dagd_spawn spec_of(const struct dagd_sandbox *sb, const char *const *argv,
			  const char *const *envp, const char *cwd);
/* X->spawn() of spec_of(); what it returns. */
int spawn(struct dagd_sandbox *sb, const char *const *argv, const char *const *envp,
	  const char *cwd, void **ret_data, char **ret_error);
/* Spawns, checks that it started, and returns the plugin's data. */
void *spawn_ok(struct dagd_sandbox *sb, const char *const *argv, const char *const *envp, const char *cwd);
/* Adopts the sandbox of that handle, checks that it was taken, and returns the plugin's data. */
void *adopt_ok(struct dagd_sandbox *sb, const char *handle);
/* Makes an empty file of the test's directory. */
void touch(const char *name);
/* The number a task wrote into a file of the test's directory. */
pid_t read_pid(const char *name);
/* What list() reports, as "id id " (a static buffer). */
const char *list_ids(void);

#endif
