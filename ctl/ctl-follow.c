/*
 * ctl-follow.c - following a stream (the events, a task's output) that
 * outlives one connection: the signals that end it cleanly, and, when the
 * daemon goes away, a word on stderr, reconnection with a growing pause, and
 * the stream opened again from where it was (a seq, an offset), so that
 * nothing is missed and nothing is seen twice.
 */
#include <string.h>

#include "dagctl.h"

#define PAUSE_MIN_USEC 50000
#define PAUSE_MAX_USEC 1000000

static volatile sig_atomic_t caught;
static sigset_t waitmask;

static void on_signal(int sig) {
	caught = sig;
}

/* Catches sigs (a list ending with 0): they are blocked but while dagctl waits
 * for the daemon, and a wait they interrupt ends with -EINTR; ctl_caught()
 * then tells which came.  Nothing is ever cut in half by one. */
void ctl_catch_signals(struct ctl *c, const int *sigs) {
	struct sigaction sa = { .sa_handler = on_signal };
	sigset_t block;

	sigemptyset(&block);
	for (const int *s = sigs; *s; s++)
		sigaddset(&block, *s);
	sigprocmask(SIG_BLOCK, &block, &waitmask);
	for (const int *s = sigs; *s; s++) {
		sigdelset(&waitmask, *s);
		sigaction(*s, &sa, NULL);
	}
	c->waitmask = &waitmask;
}

/* The last signal caught, and forgets it; 0 if none. */
int ctl_caught(void) {
	int sig = caught;

	caught = 0;
	return sig;
}

/* Connects again and opens the stream once, quietly; what open() returned. */
int ctl_reopen(struct ctl *c, int (*open)(struct ctl *c, void *userdata), void *userdata) {
	bool quiet = c->quiet;
	int r;

	ctl_disconnect(c);
	c->quiet = true;
	c->err[0] = '\0';
	r = ctl_connect(c);
	if (r >= 0)
		r = open(c, userdata);
	c->quiet = quiet;
	if (r < 0 && ctl_lost(r))
		ctl_disconnect(c);
	return r;
}

/* The pause before the next attempt to reconnect, after one of `pause` usec
 * (0: the first). */
int64_t ctl_backoff(int64_t pause) {
	return pause <= 0 ? PAUSE_MIN_USEC : pause * 2 > PAUSE_MAX_USEC ? PAUSE_MAX_USEC : pause * 2;
}

/* After the daemon went away: says so, and tries again, pausing longer each
 * time, until the stream is open again (0), or something else fails. */
static int reconnect(struct ctl *c, int (*open)(struct ctl *c, void *userdata), void *userdata) {
	int64_t pause = ctl_backoff(0);
	int r;

	fprintf(stderr, "dagctl: lost dagd: %s; reconnecting\n", c->err);
	for (;;) {
		r = ctl_pause(c, -1, pause);
		if (r < 0)
			return r;
		r = ctl_reopen(c, open, userdata);
		if (r >= 0 || !ctl_lost(r))
			break;
		pause = ctl_backoff(pause);
	}
	if (r >= 0)
		fprintf(stderr, "dagctl: reconnected to dagd at '%s'\n", c->socket_path);
	else if (r != -EINTR && r != -ETIME && c->err[0])
		fprintf(stderr, "dagctl: %s\n", c->err);
	return r;
}

/* Opens a stream with open(), then hands each line that comes to line(),
 * across reconnections, until one of them returns non-zero: that is the
 * result.  open() must resume the stream where line() left it.  A failure of
 * the first open() is final; -EINTR means a caught signal came. */
int ctl_follow(struct ctl *c, int (*open)(struct ctl *c, void *userdata),
	       int (*line)(struct ctl *c, json_object *line, void *userdata), void *userdata) {
	int r;

	r = open(c, userdata);
	if (r != 0)
		return r;
	for (;;) {
		_cleanup_(json_object_putp) json_object *o = NULL;
		bool quiet = c->quiet;

		c->quiet = true;
		c->err[0] = '\0';
		r = ctl_read(c, &o);
		c->quiet = quiet;
		if (r >= 0)
			r = line(c, o, userdata);
		else if (ctl_lost(r))
			r = reconnect(c, open, userdata);
		else if (r != -EINTR && r != -ETIME && c->err[0])
			fprintf(stderr, "dagctl: %s\n", c->err);
		if (r != 0)
			return r;
	}
}
