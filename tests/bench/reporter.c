/*
 * reporter.c - the clients of the task.complete benchmark: CLIENTS
 * processes, each with its own connection, report the tasks of PAIRS (a
 * task id and its token a line, dealt out in turn) with task.complete, one
 * at a time (each waits for its reply before it sends the next) or
 * pipelined (all sent, the replies read as they come).
 *
 *   reporter SOCKET PAIRS CLIENTS [pipelined]
 *
 * Prints one line of JSON: the reports a second from the go to the last
 * reply, the replies not ok, the clients' CPU a report, and (one at a time)
 * the median and 99th percentile of the round trips, in seconds.  In C, so
 * that what is measured is the server: a client costs a write and a read
 * a report.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LINE 256

struct result {
	unsigned long n, bad;
	double cpu;
};

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double) t.tv_sec + (double) t.tv_nsec * 1e-9;
}

static void die(const char *what)
{
	perror(what);
	exit(2);
}

static void write_all(int fd, const void *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			die("write");
		p = (const char *) p + w;
		n -= (size_t) w;
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *) a, y = *(const double *) b;

	return x < y ? -1 : x > y;
}

/* The replies in buf (len bytes): whole lines counted, not-ok ones in
 * *bad; the part of a line left is moved to the front. */
static size_t replies(char *buf, size_t *len, unsigned long *bad)
{
	size_t done = 0, start = 0;
	char *nl;

	while ((nl = memchr(buf + start, '\n', *len - start))) {
		if (!memmem(buf + start, (size_t) (nl - buf) - start, "\"ok\":true", 9))
			(*bad)++;
		start = (size_t) (nl - buf) + 1;
		done++;
	}
	memmove(buf, buf + start, *len - start);
	*len -= start;
	return done;
}

/* One client: lines[0..n) reported; its round trips (one at a time) to lat. */
static void client(const char *path, char **lines, size_t n, int pipelined, int ready, int go, int out)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct result res = { .n = n };
	struct rusage ru;
	double *lat = calloc(n ? n : 1, sizeof(*lat));
	size_t cap = 1 << 16, len = 0, got = 0, sent = 0;
	char *buf = malloc(cap), c;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (!lat || !buf || fd < 0)
		die("client");
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *) &a, sizeof(a)) < 0)
		die("connect");
	write_all(ready, "r", 1);
	if (read(go, &c, 1) != 1)
		die("go");
	if (!pipelined) {
		for (size_t i = 0; i < n; i++) {
			double t0 = now();

			write_all(fd, lines[i], strlen(lines[i]));
			while (replies(buf, &len, &res.bad) == 0) {
				ssize_t r = read(fd, buf + len, cap - len);

				if (r <= 0)
					die("read");
				len += (size_t) r;
			}
			lat[i] = now() - t0;
		}
	} else {
		size_t off = 0;

		while (got < n) {
			struct pollfd p = { fd, (short) (POLLIN | (sent < n ? POLLOUT : 0)), 0 };

			if (poll(&p, 1, -1) < 0)
				die("poll");
			if ((p.revents & POLLOUT) && sent < n) {
				ssize_t w = send(fd, lines[sent] + off, strlen(lines[sent]) - off, MSG_DONTWAIT);

				if (w > 0 && (off += (size_t) w) == strlen(lines[sent]))
					sent++, off = 0;
			}
			if (p.revents & (POLLIN | POLLHUP)) {
				ssize_t r = read(fd, buf + len, cap - len);

				if (r <= 0)
					die("read");
				len += (size_t) r;
				got += replies(buf, &len, &res.bad);
			}
		}
	}
	getrusage(RUSAGE_SELF, &ru);
	res.cpu = (double) (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
		  (double) (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
	write_all(out, &res, sizeof(res));
	write_all(out, lat, (pipelined ? 0 : n) * sizeof(*lat));
	_exit(0);
}

int main(int argc, char **argv)
{
	size_t n = 0, cap = 1024;
	char **lines, id[64], token[128];
	int clients, pipelined, ready[2], go[2];
	FILE *f;

	if (argc < 4 || argc > 5 || (clients = atoi(argv[3])) < 1) {
		fprintf(stderr, "usage: reporter SOCKET PAIRS CLIENTS [pipelined]\n");
		return 2;
	}
	pipelined = argc == 5 && strcmp(argv[4], "pipelined") == 0;
	f = fopen(argv[2], "r");
	lines = malloc(cap * sizeof(*lines));
	if (!f || !lines)
		die(argv[2]);
	while (fscanf(f, "%63s %127s", id, token) == 2) {
		if (n == cap && !(lines = realloc(lines, (cap *= 2) * sizeof(*lines))))
			die("realloc");
		if (asprintf(&lines[n++], "{\"cmd\":\"task.complete\",\"args\":{\"task_id\":\"%s\",\"token\":\"%s\"}}\n",
			     id, token) < 0)
			die("asprintf");
	}
	fclose(f);

	int outs[clients];
	pid_t kids[clients];

	if (pipe(ready) < 0 || pipe(go) < 0)
		die("pipe");
	for (int k = 0; k < clients; k++) {
		size_t m = 0;
		char **mine = malloc((n / (size_t) clients + 1) * sizeof(*mine));
		int o[2];

		if (!mine || pipe(o) < 0)
			die("client");
		for (size_t i = (size_t) k; i < n; i += (size_t) clients)
			mine[m++] = lines[i];
		kids[k] = fork();
		if (kids[k] < 0)
			die("fork");
		if (kids[k] == 0) {
			close(o[0]);
			client(argv[1], mine, m, pipelined, ready[1], go[0], o[1]);
		}
		free(mine);
		close(o[1]);
		outs[k] = o[0];
	}
	for (int k = 0; k < clients; k++) {
		char c;

		if (read(ready[0], &c, 1) != 1)
			die("ready");
	}

	double t0 = now(), cpu = 0, *lat = malloc((n ? n : 1) * sizeof(*lat)), seconds;
	unsigned long bad = 0, total = 0;
	size_t nlat = 0;
	int failed = 0;

	if (!lat)
		die("malloc");
	for (int k = 0; k < clients; k++)
		write_all(go[1], "g", 1);
	for (int k = 0; k < clients; k++) {
		struct result r;
		size_t want;
		int status;

		if (read(outs[k], &r, sizeof(r)) != (ssize_t) sizeof(r)) {
			failed++;
			continue;
		}
		want = pipelined ? 0 : r.n * sizeof(*lat);
		for (size_t have = 0; have < want;) {
			ssize_t x = read(outs[k], (char *) (lat + nlat) + have, want - have);

			if (x <= 0)
				die("read");
			have += (size_t) x;
		}
		nlat += pipelined ? 0 : r.n;
		bad += r.bad;
		total += r.n;
		cpu += r.cpu;
		if (waitpid(kids[k], &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
			failed++;
	}
	seconds = now() - t0;
	if (failed) {
		fprintf(stderr, "reporter: %d of %d clients failed\n", failed, clients);
		return 1;
	}
	qsort(lat, nlat, sizeof(*lat), cmp_double);
	printf("{\"rate\":%.1f,\"bad\":%lu,\"client_cpu\":%.9f", (double) total / seconds, bad,
	       total ? cpu / (double) total : 0.0);
	if (nlat)
		printf(",\"median\":%.9f,\"p99\":%.9f", lat[nlat / 2], lat[(nlat * 99) / 100 < nlat ? (nlat * 99) / 100 : nlat - 1]);
	else
		printf(",\"median\":null,\"p99\":null");
	printf("}\n");
	return 0;
}
