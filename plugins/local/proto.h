/*
 * proto.h - what the local executor and its helper say to each other.
 *
 * One stream socket, STATE_DIR/local/helper.sock.  A message is a 32-bit
 * length (host order) and that many bytes: a type letter, then fields, each
 * ended by a NUL.  Numbers are decimal text.
 *
 *   executor -> helper
 *     S id log_path cwd uid gid argc argv... envp...   start a task
 *     T memory pids cpu id log_path cwd uid gid argc argv... envp...
 *                                                     start a task with limits (each
 *                                                     "" or 0: none): bytes, processes,
 *                                                     CPU usec a PROTO_CPU_PERIOD_USEC
 *     K id grace_usec                                 SIGTERM now, SIGKILL after the grace
 *     G id                                            forget it (SIGKILL first if it runs)
 *     A id                                            watch it again (after a restart)
 *     Z id 1|0                                        pause it (freeze), or let it go on
 *     L                                               list every task held
 *   helper -> executor
 *     H version mode limits                           hello, on every connection: its
 *                                                     PROTO_VERSION, "cgroup" or "session",
 *                                                     and how it sets limits: "cgroup2" or
 *                                                     "cgroup1" and the controllers it has
 *                                                     ("cgroup1 memory pids cpu"), or ""
 *     P id pid                                        it runs (answers S and A)
 *     X id code signal reason message                 it ended (to the watcher; answers A)
 *     N id                                            no such task (answers A)
 *     E id pid                                        one task held (answers L; pid 0: ended)
 *     D                                               end of the list
 *
 * The helper keeps an ended task's exit until G: a daemon that dies before
 * its commit finds the exit again.
 *
 * A helper outlives its daemon, so an upgraded executor may meet an older
 * helper: one that says no hello (version 1) knows neither H nor Z, and the
 * executor then refuses to pause rather than pretend to; one before version
 * 3 knows no T, and the executor refuses a task with limits rather than run
 * it without them.
 */
#ifndef DAGD_LOCAL_PROTO_H
#define DAGD_LOCAL_PROTO_H

#include <stdint.h>
#include <string.h>

/* a message may carry a whole command line and environment */
#define PROTO_MAX_MESSAGE (8u * 1024 * 1024)
#define PROTO_SOCKET "helper.sock"
#define PROTO_HELPER "local-helper"
#define PROTO_VERSION "3"
/* the period of cpu_max's quota */
#define PROTO_CPU_PERIOD_USEC 100000u

/* Splits the fields of a message body (after its type letter) into f, at
 * most max; the number found, or -1 if the body does not end with a NUL. */
static inline int proto_fields(const char *body, size_t len, const char **f, int max) {
	int n = 0;

	if (len > 0 && body[len - 1] != '\0')
		return -1;
	for (size_t i = 0; i < len && n < max; ) {
		f[n++] = body + i;
		i += strlen(body + i) + 1;
	}
	return n;
}

#endif
