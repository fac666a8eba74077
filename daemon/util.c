/*
 * util.c - small helpers: time, randomness, memory, directories, logging and
 * the last error's message.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "dagd.h"

static char error_buf[1024];

void closep(int *fd)
{
	if (*fd >= 0)
		(void) close(*fd);
	*fd = -EBADF;
}

int64_t now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* RFC 3339, UTC, milliseconds. */
char *format_time(int64_t usec, char buf[static 32])
{
	time_t sec = usec / 1000000;
	struct tm tm;

	gmtime_r(&sec, &tm);
	size_t n = strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm);

	snprintf(buf + n, 32 - n, ".%03dZ", (int) (usec % 1000000 / 1000));
	return buf;
}

int random_hex(char *buf, size_t n_bytes)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[64];

	if (n_bytes > sizeof(raw))
		return -EINVAL;
	if (getrandom(raw, n_bytes, 0) != (ssize_t) n_bytes)
		return -errno;
	for (size_t i = 0; i < n_bytes; i++) {
		buf[2 * i] = hex[raw[i] >> 4];
		buf[2 * i + 1] = hex[raw[i] & 15];
	}
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

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		oom();
	return p;
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

void log_msg(int priority, const char *fmt, ...)
{
	static const char *const prefix[] = { "<0>", "<1>", "<2>", "<3>", "<4>", "<5>", "<6>", "<7>" };
	va_list ap;

	if (priority > LOG_INFO && !getenv("DAGD_DEBUG"))
		return;
	va_start(ap, fmt);
	fprintf(stderr, "%sdagd: ", getenv("JOURNAL_STREAM") ? prefix[priority & 7] : "");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
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

int errorf(int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(error_buf, sizeof(error_buf), fmt, ap);
	va_end(ap);
	return r;
}

const char *last_error(void)
{
	return error_buf;
}
