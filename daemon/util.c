/*
 * util.c - small helpers: time, randomness, memory, directories, logging and
 * the last error's message.
 *
 * Logging goes to the journal, with structured fields, when dagd runs under
 * systemd (its stderr is the stream JOURNAL_STREAM names) or when asked to
 * (--log-target journal); otherwise to stderr, one line per message, with
 * its time in front, unless JOURNAL_STREAM is set: the journal stamps the
 * lines of a service's stderr itself, and "<N>" in front gives it the
 * priority.  A message about a task or a sandbox names it ("task t-3 ...",
 * "sandbox t-3.1 ..."), and the journal entry then carries DAGD_TASK=,
 * DAGD_SANDBOX= and DAGD_PROJECT= (looked up from the task), so that
 * `journalctl DAGD_TASK=t-3` finds everything said about it; log_task() gives
 * the fields explicitly.
 */
#include <ctype.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define SD_JOURNAL_SUPPRESS_LOCATION       /* log_emit() would be all it says */
#include <systemd/sd-journal.h>

#include "dagd.h"

static char error_buf[1024];

void closep(int *fd)
{
	if (*fd >= 0)
		(void) close(*fd);
	*fd = -EBADF;
}

static int64_t clock_usec(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The time of the loop's iteration: when it last woke up, which sd-event
 * keeps (no clock read; a task's changes of one iteration share it), or
 * the clock's own outside the loop. */
int64_t now_usec(void)
{
	uint64_t u;

	if (D.event && sd_event_now(D.event, CLOCK_REALTIME, &u) >= 0)
		return (int64_t) u;
	return clock_usec(CLOCK_REALTIME);
}

/* RFC 3339, UTC, milliseconds. */
/* Digits of v, n of them (leading zeros), at p. */
static void digits(char *p, uint64_t v, int n)
{
	while (n-- > 0) {
		p[n] = (char) ('0' + v % 10);
		v /= 10;
	}
}

/* prefix then v in decimal, as snprintf("%s%lld") would write it, at a
 * fraction of its cost (ids and numbers are written by the thousand). */
size_t format_id(char *buf, const char *prefix, int64_t v)
{
	uint64_t u = v < 0 ? -(uint64_t) v : (uint64_t) v;
	char tmp[20], *d = tmp + sizeof(tmp);
	size_t n = 0;

	while (prefix[n]) {             /* a prefix is a few bytes ("t-") */
		buf[n] = prefix[n];
		n++;
	}
	if (v < 0)
		buf[n++] = '-';
	do
		*--d = (char) ('0' + u % 10);
	while ((u /= 10) > 0);
	memcpy(buf + n, d, (size_t) (tmp + sizeof(tmp) - d));
	n += (size_t) (tmp + sizeof(tmp) - d);
	buf[n] = '\0';
	return n;
}

/* The date of a day counted from 1970-01-01 (days >= 0): H. Hinnant's
 * civil_from_days, without gmtime_r()'s time zone lock (four times a task
 * of a listing). */
static void civil(int64_t days, struct tm *tm)
{
	int64_t z = days + 719468, era = z / 146097, doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
	int64_t m = mp < 10 ? mp + 3 : mp - 9;

	tm->tm_mday = (int) (doy - (153 * mp + 2) / 5 + 1);
	tm->tm_mon = (int) m - 1;
	tm->tm_year = (int) (yoe + era * 400 + (m <= 2)) - 1900;
}

char *format_time(int64_t usec, char buf[static 32])
{
	time_t sec = usec / 1000000;
	struct tm tm;

	if (usec >= 0 && sec < 253402300800) {          /* up to 9999-12-31 */
		civil(sec / 86400, &tm);
		tm.tm_hour = (int) (sec % 86400 / 3600);
		tm.tm_min = (int) (sec % 3600 / 60);
		tm.tm_sec = (int) (sec % 60);
	} else
		gmtime_r(&sec, &tm);
	if (tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999) {
		size_t n = strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm);

		snprintf(buf + n, 32 - n, ".%06dZ", (int) (usec % 1000000));
		return buf;
	}
	/* YYYY-MM-DDTHH:MM:SS.uuuuuuZ */
	digits(buf, (uint64_t) tm.tm_year + 1900, 4);
	buf[4] = '-';
	digits(buf + 5, (uint64_t) tm.tm_mon + 1, 2);
	buf[7] = '-';
	digits(buf + 8, (uint64_t) tm.tm_mday, 2);
	buf[10] = 'T';
	digits(buf + 11, (uint64_t) tm.tm_hour, 2);
	buf[13] = ':';
	digits(buf + 14, (uint64_t) tm.tm_min, 2);
	buf[16] = ':';
	digits(buf + 17, (uint64_t) tm.tm_sec, 2);
	buf[19] = '.';
	digits(buf + 20, (uint64_t) (usec % 1000000), 6);
	buf[26] = 'Z';
	buf[27] = '\0';
	return buf;
}

/* Random bytes as hex.  They are cut from a pool filled by getrandom() a
 * page at a time: a token a claim, and a system call every 128 of them. */
int random_hex(char *buf, size_t n_bytes)
{
	static const char hex[] = "0123456789abcdef";
	static unsigned char pool[4096];
	static size_t at, end;
	unsigned char *raw;
	ssize_t n;

	if (n_bytes > 64)
		return -EINVAL;
	if (end - at < n_bytes) {
		n = getrandom(pool, sizeof(pool), 0);
		if (n < (ssize_t) n_bytes)
			return n < 0 ? -errno : -EIO;
		at = 0;
		end = (size_t) n;
	}
	raw = pool + at;
	for (size_t i = 0; i < n_bytes; i++) {
		buf[2 * i] = hex[raw[i] >> 4];
		buf[2 * i + 1] = hex[raw[i] & 15];
	}
	explicit_bzero(raw, n_bytes);   /* a token given out is not kept here */
	at += n_bytes;
	buf[2 * n_bytes] = 0;
	return 0;
}

int mkdir_p(const char *path, mode_t mode)
{
	char *p = xstrdup(path);

	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(p, mode) < 0 && errno != EEXIST) {
			int r = -errno;
			free(p);
			return r;
		}
		*s = '/';
	}
	free(p);
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static void oom(void)
{
	static const char msg[] = "dagd: out of memory\n";

	(void) !write(STDERR_FILENO, msg, sizeof(msg) - 1);
	abort();
}

char *xstrdup(const char *s)
{
	char *p;

	if (!s)
		return NULL;
	p = strdup(s);
	if (!p)
		oom();
	return p;
}

/* the n bytes at s, and a NUL */
char *xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);

	if (!p)
		oom();
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		oom();
	return p;
}

/* A buffer that may grow big (a client's: a batch's line, its reply):
 * from the heap up to BUF_MAPPED, past it a mapping of its own, so that
 * freeing it gives its memory back at once, not to the heap, where it
 * would wait for a trim.  *p holds len bytes in *cap; on return it has
 * room for want. */
#define BUF_MAPPED (4 * 1024 * 1024)

void buf_reserve(char **p, size_t *cap, size_t len, size_t want)
{
	size_t n = *cap ? *cap : 4096;
	void *q;

	if (want <= *cap)
		return;
	while (n < want)
		n *= 2;
	if (n <= BUF_MAPPED) {
		*p = xrealloc(*p, n);
		*cap = n;
		return;
	}
	if (*cap > BUF_MAPPED)
		q = mremap(*p, *cap, n, MREMAP_MAYMOVE);
	else if ((q = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)) != MAP_FAILED) {
		if (len > 0)
			memcpy(q, *p, len);
		free(*p);
	}
	if (q == MAP_FAILED)
		oom();
	*p = q;
	*cap = n;
}

/* The buffer gone; NULL, and *cap 0. */
void *buf_free(char *p, size_t *cap)
{
	if (*cap > BUF_MAPPED)
		(void) munmap(p, *cap);
	else
		free(p);
	*cap = 0;
	return NULL;
}

/* Whether it is a mapping of its own, to be let go once empty. */
bool buf_mapped(size_t cap)
{
	return cap > BUF_MAPPED;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		oom();
	va_end(ap);
	return s;
}

static enum log_target log_target = LOG_TARGET_AUTO;
static bool log_journal_checked, log_journal;

int log_set_target(const char *name)
{
	if (strcmp(name, "auto") == 0)
		log_target = LOG_TARGET_AUTO;
	else if (strcmp(name, "journal") == 0)
		log_target = LOG_TARGET_JOURNAL;
	else if (strcmp(name, "stderr") == 0)
		log_target = LOG_TARGET_STDERR;
	else
		return -EINVAL;
	log_journal_checked = false;
	return 0;
}

/* Is stderr the journal's stream (what systemd hands a service)? */
static bool stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

static bool use_journal(void)
{
	if (!log_journal_checked) {
		log_journal = log_target == LOG_TARGET_JOURNAL ||
			      (log_target == LOG_TARGET_AUTO && stderr_is_journal());
		log_journal_checked = true;
	}
	return log_journal;
}

/* The task and sandbox a message is about, from the way it names them. */
static void log_subject(const char *msg, int64_t *ret_task, char sandbox[static 48])
{
	const char *p;

	sandbox[0] = 0;
	*ret_task = 0;
	if ((p = strstr(msg, "sandbox t-")) && isdigit((unsigned char) p[10])) {
		size_t n = 0;

		p += 8;
		while (n < 47 && (isalnum((unsigned char) p[n]) || p[n] == '-' || p[n] == '.'))
			n++;
		while (n > 0 && p[n - 1] == '.')
			n--;
		memcpy(sandbox, p, n);
		sandbox[n] = 0;
		*ret_task = strtoll(p + 2, NULL, 10);
	} else if ((p = strstr(msg, "task t-")) && isdigit((unsigned char) p[7]))
		*ret_task = strtoll(p + 7, NULL, 10);
}

/* Now as "2026-03-01T12:00:00.123Z", for a line on stderr. */
static const char *log_time(char buf[static 40])
{
	struct timespec ts;
	struct tm tm;

	if (clock_gettime(CLOCK_REALTIME, &ts) < 0 || !gmtime_r(&ts.tv_sec, &tm) ||
	    strftime(buf, 40, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		return "-";
	snprintf(buf + strlen(buf), 40 - strlen(buf), ".%03ldZ", ts.tv_nsec / 1000000);
	return buf;
}

static void log_emit(int priority, int64_t task_id, const char *sandbox, const char *msg)
{
	static const char *const prefix[] = { "<0>", "<1>", "<2>", "<3>", "<4>", "<5>", "<6>", "<7>" };

	if (use_journal()) {
		char *fields[6];
		struct iovec iov[6];
		size_t n = 0;
		int r;

		fields[n++] = xasprintf("MESSAGE=%s", msg);
		fields[n++] = xasprintf("PRIORITY=%d", priority & 7);
		fields[n++] = xstrdup("SYSLOG_IDENTIFIER=dagd");
		if (task_id > 0) {
			fields[n++] = xasprintf("DAGD_TASK=t-%lld", (long long) task_id);
			if ((size_t) task_id < n_tasks && task_at(task_id) && task_at(task_id)->project)
				fields[n++] = xasprintf("DAGD_PROJECT=p-%lld",
							(long long) task_at(task_id)->project->id);
		}
		if (sandbox && *sandbox)
			fields[n++] = xasprintf("DAGD_SANDBOX=%s", sandbox);
		for (size_t i = 0; i < n; i++)
			iov[i] = (struct iovec) { .iov_base = fields[i], .iov_len = strlen(fields[i]) };
		r = sd_journal_sendv(iov, (int) n);
		for (size_t i = 0; i < n; i++)
			free(fields[i]);
		if (r >= 0)
			return;
		/* no journal to talk to: say it on stderr after all */
	}
	/* the journal stamps its lines itself, and reads the priority from <N> */
	if (getenv("JOURNAL_STREAM"))
		fprintf(stderr, "%sdagd: %s\n", prefix[priority & 7], msg);
	else {
		char when[40];

		fprintf(stderr, "%s dagd: %s\n", log_time(when), msg);
	}
}

_printf_(4, 0) static void log_va(int priority, int64_t task_id, const char *sandbox, const char *fmt, va_list ap)
{
	static int debug = -1;  /* DAGD_DEBUG set: read once, not at each message */
	char buf[4096], found[48];
	int64_t found_task;

	if (debug < 0)
		debug = getenv("DAGD_DEBUG") != NULL;
	if (priority > LOG_INFO && !debug)
		return;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (task_id <= 0 && !sandbox) {
		log_subject(buf, &found_task, found);
		task_id = found_task;
		sandbox = found;
	}
	log_emit(priority, task_id, sandbox, buf);
}

void log_msg(int priority, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_va(priority, 0, NULL, fmt, ap);
	va_end(ap);
}

void log_task(int priority, int64_t task_id, const char *sandbox_id, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_va(priority, task_id, sandbox_id ? sandbox_id : "", fmt, ap);
	va_end(ap);
}

int log_errno(int priority, int r, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	errno = r < 0 ? -r : r;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_msg(priority, "%s", buf);
	return r < 0 ? r : -r;
}

/* Formatted aside first: the arguments may be last_error() itself. */
int errorf(int r, const char *fmt, ...)
{
	char buf[sizeof(error_buf)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	utf8_trim(buf);
	memcpy(error_buf, buf, sizeof(buf));
	return r;
}

const char *last_error(void)
{
	return error_buf;
}

/* Opens (creating it) an attempt's log file, and its directory on first use:
 * a task that prints nothing leaves nothing on disk. */
int log_open(const char *path, int flags)
{
	int fd = open(path, flags | O_CREAT | O_CLOEXEC, 0640);

	if (fd < 0 && errno == ENOENT) {
		_cleanup_free_ char *dir = xstrdup(path);
		char *slash = strrchr(dir, '/');

		if (slash && slash != dir) {
			*slash = 0;
			(void) mkdir_p(dir, 0750);
		}
		fd = open(path, flags | O_CREAT | O_CLOEXEC, 0640);
	}
	return fd < 0 ? -errno : fd;
}

/* Test-only: DAGD_TEST_CRASH_AT=POINT[:N] makes dagd kill itself (SIGKILL,
 * as a power cut would) the Nth time (default 1) it passes POINT, to put a
 * crash exactly inside a window between a write and its commit.  Points:
 * "spawned" (a sandbox started, its start not yet committed), "exited" (an
 * exit judged, not yet committed), "committed" (an exit committed, its
 * executor not yet told to forget it), "paused" (an executor told to
 * pause or resume a sandbox, the flag not yet committed) and "expanded" (a
 * mapped task's children made, not yet committed). */
void crash_point(const char *point)
{
	static const char *at;
	static long left = -1;
	const char *colon;

	if (left == 0)
		return;
	if (left < 0) {
		at = getenv("DAGD_TEST_CRASH_AT");
		left = 0;
		if (!at || !*at)
			return;
		colon = strchr(at, ':');
		left = colon ? strtol(colon + 1, NULL, 10) : 1;
		if (left <= 0)
			left = 1;
	}
	colon = strchr(at, ':');
	if (strncmp(at, point, colon ? (size_t) (colon - at) : strlen(at)) != 0 ||
	    strlen(point) != (colon ? (size_t) (colon - at) : strlen(at)))
		return;
	if (--left == 0) {
		log_warning("DAGD_TEST_CRASH_AT=%s: killing myself here (test only)", at);
		(void) raise(SIGKILL);
	}
}

/* --- memory given back ------------------------------------------------------ */

/* What malloc holds free goes back to the system (malloc_trim(): 150 us
 * and more with a large heap), at most a tenth of the time: after a trim
 * that took d, the next waits 10 d (a timer gives back what came
 * meanwhile).  A batch of 10,000 tasks is given back after each; a client
 * sending big lines in a loop costs a tenth more. */
static int64_t give_back_due;           /* CLOCK_MONOTONIC, usec */
static sd_event_source *give_back_source;

static void give_back(void)
{
	int64_t t0 = clock_usec(CLOCK_MONOTONIC), t1;

	(void) malloc_trim(0);
	t1 = clock_usec(CLOCK_MONOTONIC);
	give_back_due = t1 + 10 * (t1 - t0);
}

static int on_give_back(sd_event_source *s, uint64_t usec, void *userdata)
{
	give_back_source = sd_event_source_disable_unref(give_back_source);
	give_back();
	return 0;
}

void memory_give_back(void)
{
	int64_t now = clock_usec(CLOCK_MONOTONIC);

	if (now >= give_back_due)
		give_back();
	else if (!give_back_source && D.event)
		(void) sd_event_add_time_relative(D.event, &give_back_source, CLOCK_MONOTONIC,
						  (uint64_t) (give_back_due - now), USEC_PER_MSEC, on_give_back, NULL);
}

void memory_give_back_stop(void)
{
	give_back_source = sd_event_source_disable_unref(give_back_source);
}
