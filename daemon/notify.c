/*
 * notify.c - what dagd tells its service manager, and leaving when idle.
 *
 * Under systemd (Type=notify) dagd sends READY=1 once its database is open
 * and migrated and its socket is listened on, a STATUS= line with the counts
 * of tasks whenever they change (checked at the end of each turn of the
 * loop, sent only when the line differs), STOPPING=1 when it leaves, and
 * watchdog pings from the event loop itself (sd_event_set_watchdog), so a
 * loop that is stuck stops pinging and gets restarted.
 *
 * With --exit-idle-after, dagd exits 0 once nothing has run, nothing has been
 * due and no client has been connected for that long; socket activation
 * starts it again on the next connection.  Every turn of work marks the time;
 * one timer looks at the clock when the quiet time may be up and, if work
 * came meanwhile, sets itself for the new deadline: no polling faster than
 * the idle time, and nothing done per turn but reading the loop's clock.
 *
 * DAGD_TEST_HANG_SIGNAL (test-only): when set at start to a signal (USR1,
 * SIGUSR2, a number), that signal makes the event loop hang for good, so
 * tests can watch the watchdog kill and restart dagd.  Without the variable
 * the signal keeps its default meaning and nothing can make dagd hang.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "dagd.h"

static bool notify_enabled;             /* NOTIFY_SOCKET is set */
static char last_status[256];
static uint64_t idle_usec;              /* 0: never exit when idle */
static uint64_t last_activity;          /* CLOCK_MONOTONIC, usec */
static bool leaving;

static uint64_t loop_now(void)
{
	uint64_t t = 0;

	if (D.event)
		(void) sd_event_now(D.event, CLOCK_MONOTONIC, &t);
	return t;
}

static void send_status(const char *status)
{
	if (!notify_enabled || strcmp(status, last_status) == 0)
		return;
	snprintf(last_status, sizeof(last_status), "%s", status);
	(void) sd_notifyf(false, "STATUS=%s", status);
}

/* The end of a turn: the status line, and the clock of the idle exit. */
void notify_turn(void)
{
	unsigned counts[_ST_MAX], active;
	char buf[sizeof(last_status)];

	last_activity = loop_now();
	if (!notify_enabled || leaving)
		return;
	engine_counts(counts, &active);
	snprintf(buf, sizeof(buf), "%u running, %u ready, %u waiting; %u completed, %u failed",
		 active, counts[ST_READY], counts[ST_WAITING], counts[ST_COMPLETED],
		 counts[ST_FAILED] + counts[ST_UPSTREAM_FAILED]);
	send_status(buf);
}

void notify_ready(void)
{
	(void) sd_notify(false, "READY=1");
}

void notify_stopping(const char *why)
{
	leaving = true;
	if (!notify_enabled)
		return;
	(void) sd_notifyf(false, "STOPPING=1\nSTATUS=%s", why);
}

static int on_idle_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	uint64_t now = loop_now();

	if (now < last_activity + idle_usec) {
		/* work came since the timer was set: wait out the new quiet time */
	} else if (server_clients() > 0 || !engine_idle()) {
		last_activity = now;
	} else {
		log_info("idle for %.0f s (no client, nothing running or due); exiting",
			 (double) idle_usec / USEC_PER_SEC);
		notify_stopping("idle; exiting until the next connection");
		return sd_event_exit(D.event, 0);
	}
	(void) sd_event_source_set_time(s, last_activity + idle_usec);
	return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

static int on_hang_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	log_warning("received %s with DAGD_TEST_HANG_SIGNAL set: hanging on purpose (test only)",
		    strsignal((int) si->ssi_signo));
	for (;;)
		(void) sleep(3600);
	return 0;
}

/* A signal by name (USR1, SIGUSR1) or number; one dagd does not use itself. */
static int parse_signal(const char *s)
{
	char *end;
	long n;

	if (strncmp(s, "SIG", 3) == 0)
		s += 3;
	n = strtol(s, &end, 10);
	if (*s == 0 || *end != 0) {
		n = -1;
		for (int i = 1; i < SIGRTMIN; i++) {
			const char *name = sigabbrev_np(i);

			if (name && strcmp(name, s) == 0)
				n = i;
		}
	}
	if (n <= 0 || n >= SIGRTMIN || n == SIGTERM || n == SIGINT || n == SIGHUP || n == SIGKILL ||
	    n == SIGSTOP || n == SIGCHLD || n == SIGPIPE || n == SIGABRT || n == SIGSEGV)
		return -EINVAL;
	return (int) n;
}

/* Once the loop exists, before anything is loaded. */
int notify_setup(uint64_t exit_idle_usec)
{
	const char *hang = getenv("DAGD_TEST_HANG_SIGNAL");
	uint64_t wd = 0;
	int r;

	notify_enabled = getenv("NOTIFY_SOCKET") != NULL;
	r = sd_event_set_watchdog(D.event, true);
	if (r < 0)
		log_error_errno(r, "cannot set up the watchdog: %m");
	else if (r > 0 && sd_watchdog_enabled(false, &wd) > 0)
		log_info("watchdog on (%.1f s): the event loop pings it", (double) wd / USEC_PER_SEC);

	idle_usec = exit_idle_usec;
	if (idle_usec > 0) {
		last_activity = loop_now();
		r = sd_event_add_time(D.event, NULL, CLOCK_MONOTONIC, last_activity + idle_usec,
				      idle_usec / 20 < USEC_PER_SEC ? idle_usec / 20 : USEC_PER_SEC,
				      on_idle_timer, NULL);
		if (r < 0)
			return log_error_errno(r, "cannot add the idle timer: %m");
	}

	if (hang && *hang) {
		sigset_t mask;
		int sig = parse_signal(hang);

		if (sig < 0)
			return log_error_errno(-EINVAL, "DAGD_TEST_HANG_SIGNAL='%s' is not a signal dagd may use",
					       hang);
		sigemptyset(&mask);
		sigaddset(&mask, sig);
		sigprocmask(SIG_BLOCK, &mask, NULL);
		r = sd_event_add_signal(D.event, NULL, sig, on_hang_signal, NULL);
		if (r < 0)
			return log_error_errno(r, "cannot watch signal %d: %m", sig);
		log_warning("DAGD_TEST_HANG_SIGNAL is set: SIG%s will make dagd hang (test only)",
			    sigabbrev_np(sig));
	}
	return 0;
}
