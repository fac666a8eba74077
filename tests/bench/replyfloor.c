/*
 * replyfloor.c - the durable-reply floor: what answering one line with one
 * line costs with nothing but the kernel, to compare task.complete against.
 *
 *   replyfloor SOCKET FILE
 *
 * Listens on the Unix socket SOCKET and works in turns as dagd does: it
 * waits for clients, reads each ready client once, writes a record for
 * every line read to FILE (in place, in a ring of RING bytes made at the
 * start, as SQLite rewrites its WAL from the start once a checkpoint has
 * emptied it: a sync that changes no file size), fdatasyncs it once for
 * the turn, then sends each
 * line its reply, a client's replies in one send (blocking).  No parsing, no database, no state: what is left is the
 * wake-ups, the socket calls and one flush a turn.  Runs until SIGTERM.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_CLIENTS 64
#define BUF (64 * 1024)
#define RING (4 * 1024 * 1024)          /* SQLite's WAL, a checkpoint's 1,000 pages */

static const char reply[] =
	"{\"ok\":true,\"result\":{\"status\":\"accepted\",\"task_id\":\"t-1\","
	"\"new_status\":\"succeeded\",\"unblocked_tasks\":[]},\"id\":null}\n";

struct client {
	int fd;
	unsigned owed;          /* lines read this turn, to answer */
};

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void) sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	static struct client clients[MAX_CLIENTS];
	static char buf[BUF], out[BUF], record[BUF];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct epoll_event ev = { .events = EPOLLIN };
	int lfd, ep, file;
	off_t at = 0;

	if (argc != 3 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "usage: replyfloor SOCKET FILE\n");
		return 2;
	}
	signal(SIGTERM, on_term);
	strcpy(sa.sun_path, argv[1]);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	file = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (lfd < 0 || file < 0 || ep < 0 || bind(lfd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ||
	    listen(lfd, 128) < 0)
		return perror("replyfloor"), 1;
	for (off_t o = 0; o < RING; o += BUF)
		if (pwrite(file, record, BUF, o) != BUF)
			return perror("replyfloor: the ring"), 1;
	if (fsync(file) < 0)
		return perror("replyfloor: the ring"), 1;
	ev.data.u32 = MAX_CLIENTS;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	for (int i = 0; i < MAX_CLIENTS; i++)
		clients[i].fd = -1;
	while (!stop) {
		struct epoll_event evs[MAX_CLIENTS + 1];
		size_t lines = 0;
		int k = epoll_wait(ep, evs, MAX_CLIENTS + 1, -1);

		if (k < 0 && errno == EINTR)
			continue;
		for (int i = 0; i < k; i++) {
			unsigned slot = evs[i].data.u32;
			struct client *c = &clients[slot];
			ssize_t n;

			if (slot == MAX_CLIENTS) {
				int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
				int j = 0;

				while (j < MAX_CLIENTS && clients[j].fd >= 0)
					j++;
				if (fd < 0 || j == MAX_CLIENTS) {
					if (fd >= 0)
						close(fd);
					continue;
				}
				clients[j] = (struct client) { .fd = fd };
				ev.data.u32 = (unsigned) j;
				epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
				continue;
			}
			n = read(c->fd, buf, sizeof(buf));
			if (n <= 0) {
				if (n == 0 || errno != EAGAIN) {
					close(c->fd);
					c->fd = -1;
				}
				continue;
			}
			for (ssize_t j = 0; j < n; j++)
				if (buf[j] == '\n')
					c->owed++;
			lines += c->owed;
		}
		if (lines == 0)
			continue;
		/* 64 bytes of record a line, then the turn's one flush */
		size_t size = 64 * (lines < BUF / 64 ? lines : BUF / 64);

		if (at + (off_t) size > RING)
			at = 0;
		if (pwrite(file, record, size, at) < 0 || fdatasync(file) < 0)
			return perror("replyfloor: the record"), 1;
		at += (off_t) size;
		/* a client's replies in one send, as dagd sends them */
		for (int i = 0; i < MAX_CLIENTS; i++) {
			struct client *c = &clients[i];

			while (c->owed > 0) {
				size_t len = 0;

				for (; c->owed > 0 && len + sizeof(reply) <= BUF; c->owed--) {
					memcpy(out + len, reply, sizeof(reply) - 1);
					len += sizeof(reply) - 1;
				}
				if (c->fd >= 0 && send(c->fd, out, len, MSG_NOSIGNAL) < 0)
					c->owed = 0;
			}
		}
	}
	unlink(argv[1]);
	return 0;
}
