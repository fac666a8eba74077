/*
 * conn.c - the local executor's connection to its helper: starting the
 * helper when none answers, the messages of proto.h both ways, and what
 * happens to the sandboxes when the helper goes away.
 */
#include "local.h"

void sandbox_free(struct local_sandbox *x) {
	if (!x)
		return;
	if (x->local)
		LIST_UNLINK(x->local->sandboxes, x);
	free(x->id);
	free(x);
}

static struct local_sandbox *sandbox_find(struct local *l, const char *id) {
	for (struct local_sandbox *x = l->sandboxes; x; x = x->next)
		if (strcmp(x->id, id) == 0)
			return x;
	return NULL;
}

struct local_sandbox *sandbox_add(struct local *l, struct dagd_sandbox *sb, const char *id) {
	struct local_sandbox *x = calloc(1, sizeof(*x));

	if (!x || !(x->id = strdup(id))) {
		free(x);
		return NULL;
	}
	x->sb = sb;
	x->local = l;
	LIST_LINK(l->sandboxes, x);
	return x;
}

/* Reports the end of x to the host and forgets it. */
static void sandbox_end(struct local_sandbox *x, int code, int sig, const char *reason, const char *message) {
	const struct dagd_host *host = x->local->host;
	struct dagd_exit e = {
		.code = code,
		.signal = sig,
		.reason = reason && *reason ? reason : NULL,
		.message = message && *message ? message : NULL,
	};
	struct dagd_sandbox *sb = x->sb;

	sandbox_free(x);
	host->sandbox_exited(sb, &e);
}

/* ---- the connection ---- */

int flush_out(struct local *l) {
	while (l->out_len > 0) {
		ssize_t n = write(l->fd, l->out, l->out_len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0)
			return -errno;
		memmove(l->out, l->out + n, l->out_len - (size_t) n);
		l->out_len -= (size_t) n;
	}
	return sd_event_source_set_io_events(l->io, EPOLLIN | (l->out_len ? EPOLLOUT : 0));
}

/* Queues a message: a type letter and fields (count given), then sends what
 * it can without blocking. */
int send_fields(struct local *l, char type, const char *const *f, size_t n) {
	size_t len = 1;
	uint32_t len32;

	if (l->fd < 0)
		return -ENOTCONN;
	for (size_t i = 0; i < n; i++)
		len += strlen(f[i]) + 1;
	if (len > PROTO_MAX_MESSAGE)
		return -E2BIG;
	if (l->out_len + 4 + len > l->out_cap) {
		size_t cap = (l->out_len + 4 + len) * 2;
		char *p = realloc(l->out, cap);
		if (!p)
			return -ENOMEM;
		l->out = p;
		l->out_cap = cap;
	}
	len32 = (uint32_t) len;
	memcpy(l->out + l->out_len, &len32, 4);
	l->out_len += 4;
	l->out[l->out_len++] = type;
	for (size_t i = 0; i < n; i++) {
		size_t k = strlen(f[i]) + 1;
		memcpy(l->out + l->out_len, f[i], k);
		l->out_len += k;
	}
	return flush_out(l);
}

static void handle(struct local *l, const char *msg, size_t len) {
	const char *f[8] = { NULL };
	struct local_sandbox *x;
	int n;

	if (len < 1 || (n = proto_fields(msg + 1, len - 1, f, 8)) < 0)
		return;
	switch (msg[0]) {
	case 'P':
		if (n >= 2 && (x = sandbox_find(l, f[0])))
			x->pid = (pid_t) atoi(f[1]);
		break;
	case 'X':
		if (n >= 5 && (x = sandbox_find(l, f[0])))
			sandbox_end(x, atoi(f[1]), atoi(f[2]), f[3], f[4]);
		break;
	case 'N':
		if (n >= 1 && (x = sandbox_find(l, f[0])))
			sandbox_end(x, -1, 0, "lost", "the local helper has no such task: it was lost while dagd was down");
		break;
	case 'E':
		if (n >= 2 && l->listing && l->found)
			l->found(l->found_ctx, f[0], f[0]);
		break;
	case 'D':
		l->listing = false;
		break;
	case 'H':
		if (n >= 2) {
			l->helper_version = atoi(f[0]);
			snprintf(l->mode, sizeof(l->mode), "%s", f[1]);
			snprintf(l->limits_by, sizeof(l->limits_by), "%s", n >= 3 ? f[2] : "");
		}
		break;
	}
}

/* Reads what the helper sent and handles every whole message. */
int read_in(struct local *l) {
	size_t off = 0;
	int r = 0;

	for (;;) {
		ssize_t n;

		if (l->in_cap - l->in_len < 4096) {
			size_t cap = l->in_cap * 2 + 65536;
			char *p = realloc(l->in, cap);
			if (!p)
				return -ENOMEM;
			l->in = p;
			l->in_cap = cap;
		}
		size_t room = l->in_cap - l->in_len;

		n = read(l->fd, l->in + l->in_len, room);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			r = n < 0 ? -errno : -ECONNRESET;
			break;
		}
		l->in_len += (size_t) n;
		/* a short read took all there was: what comes later wakes us */
		if ((size_t) n < room)
			break;
	}
	while (l->in_len - off >= 4) {
		uint32_t len;

		memcpy(&len, l->in + off, 4);
		if (len > PROTO_MAX_MESSAGE)
			return -EBADMSG;
		if (l->in_len - off - 4 < len)
			break;
		handle(l, l->in + off + 4, len);
		off += 4 + len;
		if (l->fd < 0)
			return 0;
	}
	memmove(l->in, l->in + off, l->in_len - off);
	l->in_len -= off;
	return r;
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
	struct local *l = userdata;
	int r = 0;

	if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
		r = read_in(l);
	if (r >= 0 && l->fd >= 0 && (revents & EPOLLOUT))
		r = flush_out(l);
	if (r < 0 && l->fd >= 0)
		helper_lost(l, strerror(-r));
	return 0;
}

void disconnect(struct local *l) {
	l->io = sd_event_source_disable_unref(l->io);
	closep(&l->fd);
	l->fd = -EBADF;
	l->in_len = l->out_len = 0;
	l->listing = false;
}

/* The helper went away: its tasks died with it (their parent-death signal);
 * what they left in their groups is killed here.  Every sandbox ends lost. */
void helper_lost(struct local *l, const char *why) {
	_cleanup_free_ char *m = strdupf("the local helper went away (%s); the task was killed", why);

	l->host->log(NULL, LOG_ERR, "local: the helper went away (%s); its tasks end as lost", why);
	disconnect(l);
	while (l->sandboxes) {
		struct local_sandbox *x = l->sandboxes;

		if (x->pid > 0)
			(void) kill(-x->pid, SIGKILL);
		sandbox_end(x, -1, 0, "lost", m);
	}
}

/* The helper we started ended: reap it. */
static int on_helper_exit(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
	struct local *l = userdata;
	pid_t pid = l->child_pid;
	int status = 0;

	l->child = sd_event_source_disable_unref(l->child);
	l->child_pid = 0;
	if (waitpid(pid, &status, WNOHANG) == pid && status != 0)
		l->host->log(NULL, LOG_WARNING, "local: the helper ended (%s %d)",
			     WIFEXITED(status) ? "exit status" : "signal",
			     WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	return 0;
}

/* Starts the helper on a fresh socket at path. */
static int helper_start(struct local *l, const char *path) {
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -EBADF;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, def;
	char *argv[] = { (char *) PROTO_HELPER, (char *) path, NULL };
	char *envp[] = { NULL };
	pid_t pid;
	int pidfd, r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	(void) unlink(path);
	if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(fd, 16) < 0)
		return -errno;
	sigemptyset(&none);
	sigfillset(&def);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	/* nothing of the daemon's: not even its stderr, which a reader would
	 * see open long after the daemon is gone */
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, fd, 3);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &def);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	r = posix_spawn(&pid, l->helper, &fa, &attr, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (r != 0)
		return -r;
	/* our child: reap it when it ends (after a restart it is not ours) */
	l->child = sd_event_source_disable_unref(l->child);
	l->child_pid = pid;
	pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0 || sd_event_add_io(l->host->event, &l->child, pidfd, EPOLLIN, on_helper_exit, l) < 0) {
		l->host->log(NULL, LOG_WARNING, "local: cannot watch the helper (pid %d)", (int) pid);
		closep(&pidfd);
	} else
		(void) sd_event_source_set_io_fd_own(l->child, true);
	return 0;
}

/* A new connection's first message is the helper's hello (nothing else can
 * come before we ask): wait for it, briefly, so that what the helper can do
 * is known before anything is asked of it.  An older helper says none. */
static void hello_wait(struct local *l) {
	struct pollfd p = { .fd = l->fd, .events = POLLIN };

	l->helper_version = 0;
	l->mode[0] = '\0';
	l->limits_by[0] = '\0';
	if (poll(&p, 1, HELLO_TIMEOUT_MS) == 1 && read_in(l) < 0)
		helper_lost(l, "it hung up at once");
}

/* Connects to the helper, starting one if none answers and `start`; without
 * it, -ESRCH when none runs. */
int helper_connect(struct local *l, bool start) {
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_free_ char *path = NULL;
	int r;

	if (l->fd >= 0)
		return 0;
	path = l->helper_socket ? strdup(l->helper_socket) : strdupf("%s/" PROTO_SOCKET, l->dir);
	if (!path)
		return -ENOMEM;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	for (int tries = 0; ; tries++) {
		_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0)
			return -errno;
		if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0) {
			(void) fcntl(fd, F_SETFL, O_NONBLOCK);
			r = sd_event_add_io(l->host->event, &l->io, fd, EPOLLIN, on_io, l);
			if (r < 0)
				return r;
			l->fd = fd;
			fd = -EBADF;
			hello_wait(l);
			return 0;
		}
		r = -errno;
		if (tries > 0 || (r != -ENOENT && r != -ECONNREFUSED))
			return r;
		if (!start)
			return -ESRCH;
		r = helper_start(l, path);
		if (r < 0)
			return r;
	}
}

