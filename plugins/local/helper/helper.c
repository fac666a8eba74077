/*
 * helper.c - local-helper, the one process that runs every local task of a
 * daemon instance.
 *
 * The local executor starts it once, handing it a listening socket as fd 3
 * (STATE_DIR/local/helper.sock), and speaks proto.h over it.  The helper is
 * the parent and child subreaper of every task: it starts each one directly
 * (vfork and one exec), in a session and process group of its own, with the
 * task's output on a pipe that it copies into the attempt's log, made only
 * when the first byte comes.  It reaps the task, kills what the task left in
 * its group, and holds the exit until the executor says the exit is on disk
 * (G).  It outlives the daemon: the next daemon connects and lists what it
 * holds.  It exits once nothing is held and nobody is connected.
 *
 * A task gets SIGKILL as its parent-death signal: if the helper dies, its
 * tasks do too, so none runs on behind a "lost" verdict.
 *
 * Where the helper's own cgroup (v2) is delegated to it (a unit with
 * Delegate=yes), each task gets a cgroup of its own beneath it: the end of a
 * task, a cancel's SIGKILL and a forget() kill the whole cgroup
 * (cgroup.kill), so nothing the task started survives, not even what left
 * its session.  Without one, the task's process group (and, after a cancel,
 * its session) is all there is to kill.  A task's resource limits (memory,
 * processes, CPU) are set in cgroups too, v2 or v1 (cgroup.c).
 *
 * Its socket's path is its argument.  Once that path names something else,
 * or nothing (the state directory was removed), nobody can reach the helper
 * again: it kills its tasks and exits.
 */
#include "helper.h"

int epfd = -1;
static struct src listen_src = { K_LISTEN }, signal_src = { K_SIGNAL };
static int listen_fd = 3;
int signal_fd = -1;
static struct conn *conns;
struct task *tasks;
static bool served;
pid_t self;
static const char *socket_path;
static ino_t socket_ino;


void *xmalloc(size_t n) {
	void *p = malloc(n ? n : 1);

	if (!p)
		abort();
	return p;
}

char *xstrdup(const char *s) {
	char *p = strdup(s);

	if (!p)
		abort();
	return p;
}

uint64_t now_usec(void) {
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

/* ---- messages out ---- */

static void conn_flush(struct conn *c) {
	while (c->out_off < c->out_len) {
		ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			/* the peer is gone: what it sent before it went is still
			 * read and done (conn_read() ends the connection) */
			c->out_off = c->out_len = 0;
			break;
		}
		c->out_off += (size_t) n;
	}
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	/* the epoll set is told only when that changes: not once a message */
	if (c->want_out != (c->out_len > 0)) {
		struct epoll_event ev = { .events = EPOLLIN | (c->out_len ? EPOLLOUT : 0), .data.ptr = c };

		c->want_out = c->out_len > 0;
		(void) epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
	}
}

/* Queues a message of the given type and NULL-ended fields. */
void send_msg(struct conn *c, char type, ...) {
	size_t len = 1;
	uint32_t len32;
	va_list ap;
	const char *f;

	if (!c || c->dead)
		return;
	va_start(ap, type);
	while ((f = va_arg(ap, const char *)))
		len += strlen(f) + 1;
	va_end(ap);
	if (c->out_len + 4 + len > c->out_cap) {
		c->out_cap = (c->out_len + 4 + len) * 2;
		c->out = realloc(c->out, c->out_cap);
		if (!c->out)
			abort();
	}
	len32 = (uint32_t) len;
	memcpy(c->out + c->out_len, &len32, 4);
	c->out_len += 4;
	c->out[c->out_len++] = type;
	va_start(ap, type);
	while ((f = va_arg(ap, const char *))) {
		size_t n = strlen(f) + 1;
		memcpy(c->out + c->out_len, f, n);
		c->out_len += n;
	}
	va_end(ap);
	conn_flush(c);
}

void send_exit(struct conn *c, const struct task *t) {
	char code[16], sig[16], message[256];
	const char *reason;

	snprintf(code, sizeof(code), "%d", t->code);
	snprintf(sig, sizeof(sig), "%d", t->sig);
	limits_exit(t, &reason, message, sizeof(message));
	send_msg(c, 'X', t->id, code, sig, reason, message, NULL);
}

static void handle(struct conn *c, const char *msg, size_t len) {
	const char **f;
	struct task *t;
	char pid[16];
	int n;

	if (len < 1)
		return;
	f = xmalloc(sizeof(*f) * (len + 1));
	n = proto_fields(msg + 1, len - 1, f, (int) len);
	if (n < 0)
		goto out;
	switch (msg[0]) {
	case 'S':
		task_spawn(c, f, n, NULL);
		break;
	case 'T': {
		struct limits lim;

		if (n >= 3 + 7 && limits_parse(f, &lim) >= 0)
			task_spawn(c, f + 3, n - 3, &lim);
		else if (n >= 4)
			send_msg(c, 'X', f[3], "-1", "0", "error", "the local helper got limits it cannot read", NULL);
		break;
	}
	case 'K':
		if (n >= 2 && (t = task_find(f[0])) && !t->ended) {
			uint64_t grace = strtoull(f[1], NULL, 10);

			t->cancelled = true;
			task_freeze(t, false);          /* a paused task must hear the SIGTERM */
			if (grace == 0)
				task_kill_hard(t);
			else {
				(void) kill(-t->pid, SIGTERM);
				(void) kill(-t->pid, SIGCONT);
				if (!t->kill_at || t->kill_at > now_usec() + grace)
					t->kill_at = now_usec() + grace;
			}
		}
		break;
	case 'Z':
		if (n >= 2 && (t = task_find(f[0])) && !t->ended)
			task_freeze(t, strcmp(f[1], "1") == 0);
		break;
	case 'G':
		if (n >= 1 && (t = task_find(f[0]))) {
			t->forgotten = true;
			if (!t->ended)
				task_kill_hard(t);
		}
		break;
	case 'A':
		if (n >= 1) {
			if (!(t = task_find(f[0])))
				send_msg(c, 'N', f[0], NULL);
			else {
				t->watcher = c;
				snprintf(pid, sizeof(pid), "%d", (int) t->pid);
				if (t->ended)
					send_exit(c, t);
				else
					send_msg(c, 'P', t->id, pid, NULL);
			}
		}
		break;
	case 'L':
		for (t = tasks; t; t = t->next)
			if (!t->forgotten) {
				snprintf(pid, sizeof(pid), "%d", t->ended ? 0 : (int) t->pid);
				send_msg(c, 'E', t->id, pid, NULL);
			}
		send_msg(c, 'D', NULL);
		break;
	}
out:
	free(f);
}

/* ---- connections ---- */

static void conn_read(struct conn *c) {
	for (;;) {
		ssize_t n;

		if (c->in_cap - c->in_len < 65536) {
			c->in_cap = c->in_cap * 2 + 65536;
			c->in = realloc(c->in, c->in_cap);
			if (!c->in)
				abort();
		}
		size_t room = c->in_cap - c->in_len;

		n = read(c->fd, c->in + c->in_len, room);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			c->dead = true;
			break;
		}
		c->in_len += (size_t) n;
		/* a short read took all there was: what comes later wakes us */
		if ((size_t) n < room)
			break;
	}
	size_t off = 0;
	while (c->in_len - off >= 4) {
		uint32_t len;

		memcpy(&len, c->in + off, 4);
		if (len > PROTO_MAX_MESSAGE) {
			c->dead = true;
			break;
		}
		if (c->in_len - off - 4 < len)
			break;
		handle(c, c->in + off + 4, len);
		off += 4 + len;
	}
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
}

static void conn_free(struct conn *c) {
	for (struct conn **p = &conns; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	for (struct task *t = tasks; t; t = t->next)
		if (t->watcher == c)
			t->watcher = NULL;
	(void) epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->in);
	free(c->out);
	free(c);
}

static void on_accept(void) {
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	struct conn *c;

	if (fd < 0)
		return;
	/* only the daemon's own user (or root) may drive the helper */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
	    (cred.uid != 0 && cred.uid != getuid())) {
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		abort();
	c->src.kind = K_CONN;
	c->fd = fd;
	c->next = conns;
	conns = c;
	served = true;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
	(void) epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
	send_msg(c, 'H', PROTO_VERSION, cgroup_mode(), limits_mode(), NULL);
}

int main(int argc, char **argv) {
	sigset_t mask;
	struct epoll_event ev;

	self = getpid();
	cgroup_setup();
	/* nothing of the daemon's but the socket: a task must not inherit it */
	(void) close_range(4, ~0u, 0);
	dev_null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (dev_null >= 0 && dev_null < 3) {
		int fd = fcntl(dev_null, F_DUPFD_CLOEXEC, 3);

		close(dev_null);
		dev_null = fd;
	}
	(void) prctl(PR_SET_CHILD_SUBREAPER, 1);
	(void) signal(SIGPIPE, SIG_IGN);
	(void) signal(SIGHUP, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	(void) sigprocmask(SIG_BLOCK, &mask, NULL);
	signal_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (signal_fd < 0 || epfd < 0 || fcntl(listen_fd, F_SETFD, FD_CLOEXEC) < 0 ||
	    fcntl(listen_fd, F_SETFL, O_NONBLOCK) < 0) {
		fprintf(stderr, "%s: cannot start: %m (it needs its socket as fd 3)\n", argc > 0 ? argv[0] : PROTO_HELPER);
		return 1;
	}
	if (argc > 1) {
		struct stat st;

		socket_path = argv[1];
		if (stat(socket_path, &st) == 0)
			socket_ino = st.st_ino;
	}
	ev = (struct epoll_event) { .events = EPOLLIN, .data.ptr = &listen_src };
	(void) epoll_ctl(epfd, EPOLL_CTL_ADD, listen_fd, &ev);
	ev = (struct epoll_event) { .events = EPOLLIN, .data.ptr = &signal_src };
	(void) epoll_ctl(epfd, EPOLL_CTL_ADD, signal_fd, &ev);

	uint64_t next_check = now_usec() + SOCKET_CHECK_USEC, idle_since = 0;

	for (;;) {
		struct epoll_event evs[64];
		uint64_t next = next_check, now = now_usec();
		int timeout = -1, n;

		for (struct task *t = tasks; t; t = t->next)
			if (t->kill_at && (!next || t->kill_at < next))
				next = t->kill_at;
		if (next)
			timeout = next <= now ? 0 : (int) ((next - now + 999) / 1000);
		if (n_doomed && (timeout < 0 || timeout > 100))
			timeout = 100;
		n = epoll_wait(epfd, evs, 64, timeout);
		for (int i = 0; i < n; i++) {
			struct src *s = evs[i].data.ptr;

			if (s->kind == K_LISTEN)
				on_accept();
			else if (s->kind == K_SIGNAL)
				reap();
			else if (s->kind == K_PIPE) {
				struct task *t = (struct task *) s;
				/* (closed already when its end was reaped above) */
				if (t->out_fd >= 0 && !task_drain(t)) {
					pipe_close(t);
					/* the end of its output is most often the end of
					 * the task: reaped in this wake, not the next */
					reap();
				}
			} else {
				struct conn *c = (struct conn *) s;
				if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
					conn_read(c);
				if (!c->dead && (evs[i].events & EPOLLOUT))
					conn_flush(c);
			}
		}
		/* kills and frees only now: no event above names a freed one */
		now = now_usec();
		for (struct task *t = tasks; t; t = t->next)
			if (t->kill_at && t->kill_at <= now && !t->ended) {
				t->kill_at = 0;
				task_kill_hard(t);
			}
		for (struct task *t = tasks, *next_t; t; t = next_t) {
			next_t = t->next;
			if (t->forgotten && t->ended)
				task_free(t);
		}
		cgroup_reap();
		for (struct conn *c = conns, *next_c; c; c = next_c) {
			next_c = c->next;
			if (c->dead)
				conn_free(c);
		}
		/* done: once the cgroups of the last tasks are gone too, or
		 * given up on (what is left in them keeps them) */
		if (served && !conns && !tasks) {
			if (!idle_since)
				idle_since = now;
			if (!n_doomed || now - idle_since >= DOOMED_WAIT_USEC)
				return 0;
		} else
			idle_since = 0;
		if (now >= next_check) {
			struct stat st;

			next_check = now + SOCKET_CHECK_USEC;
			if (socket_ino && (stat(socket_path, &st) < 0 || st.st_ino != socket_ino)) {
				for (struct task *t = tasks; t; t = t->next)
					if (!t->ended)
						task_kill_hard(t);
				return 0;
			}
		}
	}
}
