/*
 * server.c - the Unix socket server: clients, their lines, replies held until
 * their batch is on disk, event followers, and the end-of-turn flush.
 *
 * Handlers never touch a socket.  A reply is queued on its client as
 * "pending"; the flush, which runs once nothing else is ready in the loop,
 * commits the batch and only then lets pending replies out.  If the commit
 * fails, every pending reply of the batch becomes an `unavailable` error.
 * Followers of the event log are fed from the database as their sockets
 * drain, so a slow reader costs a bounded buffer and misses nothing.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/inotify.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "dagd.h"

#define OUT_HIGH (1024 * 1024)          /* stop reading a client above this */
#define OUT_FEED (256 * 1024)           /* feed followers below this */
#define OUT_MAX (64 * 1024 * 1024)      /* drop a client above this */

struct sub {
	char *id;                       /* the request's id, as JSON text */
	int64_t cursor;                 /* last seq looked at */
	int64_t project_id;
	json_object *types;
	struct sub *next;
};

/* A follower of an attempt's log. */
struct logsub {
	char *id;
	int64_t task_id;
	unsigned attempt;
	int fd;
	off_t offset;                   /* sent up to here */
	bool ended;                     /* its sandbox is gone: send the rest, then end */
	sd_event_source *watch;
	struct logsub *next;
};

struct pend {
	char *id;                       /* JSON text */
	char *line;
};

struct client {
	int fd;
	sd_event_source *io;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	bool operator;
	bool closing;                   /* close once the output is out */
	bool paused;                    /* read this turn already: wait for the flush */
	bool eof;                       /* it will send no more */
	char *in;
	size_t in_len, in_cap;
	char *out;
	size_t out_len, out_off, out_cap;
	struct pend *pend;
	size_t n_pend, pend_bytes;
	struct sub *subs;
	struct logsub *logsubs;
	struct client *next;
};

static int listen_fd = -EBADF;
static sd_event_source *listen_source, *flush_source, *retry_source, *spawned_source;
static struct client *clients;
static unsigned n_clients;
static int64_t committed_seq;

static void client_update(struct client *c);

unsigned server_clients(void)
{
	return n_clients;
}

int64_t server_committed_seq(void)
{
	return committed_seq;
}

static void logsub_free(struct logsub *l)
{
	sd_event_source_disable_unref(l->watch);
	closep(&l->fd);
	free(l->id);
	free(l);
}

static void client_free(struct client *c)
{
	struct sub *next;
	struct logsub *lnext;

	for (struct client **p = &clients; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	n_clients--;
	server_kick();                  /* a turn ends: the idle clock starts now */
	sd_event_source_disable_unref(c->io);
	closep(&c->fd);
	for (size_t i = 0; i < c->n_pend; i++) {
		free(c->pend[i].id);
		free(c->pend[i].line);
	}
	for (struct sub *s = c->subs; s; s = next) {
		next = s->next;
		free(s->id);
		json_object_put(s->types);
		free(s);
	}
	for (struct logsub *l = c->logsubs; l; l = lnext) {
		lnext = l->next;
		logsub_free(l);
	}
	free(c->pend);
	free(c->in);
	free(c->out);
	free(c);
}

static void out_append(struct client *c, const char *s, size_t n)
{
	if (c->out_off > 0 && c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (c->out_len + n > c->out_cap) {
		if (c->out_off > 0) {
			memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
			c->out_len -= c->out_off;
			c->out_off = 0;
		}
		while (c->out_len + n > c->out_cap)
			c->out_cap = c->out_cap ? 2 * c->out_cap : 4096;
		c->out = xrealloc(c->out, c->out_cap);
	}
	memcpy(c->out + c->out_len, s, n);
	c->out_len += n;
}

void server_reply(struct client *c, json_object *id, json_object *reply)
{
	struct pend *p;

	json_object_object_add(reply, "id", json_object_get(id));
	c->pend = xrealloc(c->pend, (c->n_pend + 1) * sizeof(*c->pend));
	p = &c->pend[c->n_pend++];
	p->id = xstrdup(id ? json_text(id) : "null");
	p->line = xasprintf("%s\n", json_text(reply));
	c->pend_bytes += strlen(p->line);
	json_object_put(reply);
	server_kick();
}

int server_subscribe(struct client *c, json_object *id, int64_t since, int64_t project_id,
		     json_object *types)
{
	struct sub *s = calloc(1, sizeof(*s));

	if (!s)
		abort();
	s->id = xstrdup(id ? json_text(id) : "null");
	s->cursor = since >= 0 ? since : committed_seq;
	s->project_id = project_id;
	s->types = json_object_get(types);
	s->next = c->subs;
	c->subs = s;
	server_kick();
	return 0;
}

static int on_log_change(sd_event_source *s, const struct inotify_event *ev, void *userdata)
{
	server_kick();
	return 0;
}

int server_follow_log(struct client *c, json_object *id, int64_t task_id, unsigned attempt, int fd,
		      off_t offset)
{
	struct logsub *l = calloc(1, sizeof(*l));
	int r;

	if (!l)
		abort();
	l->id = xstrdup(id ? json_text(id) : "null");
	l->task_id = task_id;
	l->attempt = attempt;
	l->fd = fd;
	l->offset = offset;
	r = sd_event_add_inotify_fd(D.event, &l->watch, fd, IN_MODIFY | IN_CLOSE_WRITE, on_log_change, l);
	if (r < 0)
		log_warning("cannot watch the log of t-%lld: %s", (long long) task_id, strerror(-r));
	l->next = c->logsubs;
	c->logsubs = l;
	server_kick();
	return 0;
}

void server_log_ended(int64_t task_id, unsigned attempt)
{
	for (struct client *c = clients; c; c = c->next)
		for (struct logsub *l = c->logsubs; l; l = l->next)
			if (l->task_id == task_id && l->attempt == attempt)
				l->ended = true;
	server_kick();
}

static off_t log_size(const struct logsub *l)
{
	struct stat st;

	return fstat(l->fd, &st) < 0 ? l->offset : st.st_size;
}

/* --- reading --------------------------------------------------------------- */

/* What the client has yet to read of us: above OUT_HIGH we stop reading it. */
static size_t client_backlog(const struct client *c)
{
	return c->out_len - c->out_off + c->pend_bytes;
}

/* Does a follower of the client have events it has not been sent yet? */
static bool client_behind(const struct client *c)
{
	for (struct sub *s = c->subs; s; s = s->next)
		if (s->cursor < committed_seq)
			return true;
	for (struct logsub *l = c->logsubs; l; l = l->next)
		if (l->ended || log_size(l) > l->offset)
			return true;
	return false;
}

static void client_lines(struct client *c)
{
	size_t start = 0;
	char *nl;

	while (!c->closing && client_backlog(c) <= OUT_HIGH &&
	       (nl = memchr(c->in + start, '\n', c->in_len - start))) {
		size_t len = (size_t) (nl - (c->in + start));

		if (len > MAX_LINE)
			break;
		*nl = 0;
		if (len > 0 && c->in[start + len - 1] == '\r')
			c->in[start + len - 1] = 0, len--;
		if (len > 0)
			cmd_line(c, c->operator, c->in + start, len);
		start += (size_t) (nl - (c->in + start)) + 1;
	}
	memmove(c->in, c->in + start, c->in_len - start);
	c->in_len -= start;
	if (!c->closing && (c->in_len > MAX_LINE ||
			    (client_backlog(c) <= OUT_HIGH && memchr(c->in, '\n', c->in_len)))) {
		json_object *e = json_object_new_object(), *r = json_object_new_object();

		json_object_object_add(e, "code", json_object_new_string("bad_request"));
		json_object_object_add(e, "message", json_object_new_string(
			"line longer than 1048576 bytes; closing the connection"));
		json_object_object_add(r, "ok", json_object_new_boolean(false));
		json_object_object_add(r, "error", e);
		server_reply(c, NULL, r);
		c->closing = true;
		c->in_len = 0;
	}
}

/* One read a turn (on_client pauses the client until the flush), so that a
 * client that never stops sending can neither keep the turn from ending nor
 * the others from being read.  Returns 1 at the end of its input. */
static int client_read(struct client *c)
{
	ssize_t n;

	if (c->closing || c->eof || client_backlog(c) > OUT_HIGH)
		return 0;
	if (c->in_cap - c->in_len < 65536) {
		c->in_cap = c->in_cap ? 2 * c->in_cap : 65536;
		c->in = xrealloc(c->in, c->in_cap);
	}
	n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len - 1);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	if (n == 0) {
		c->eof = true;
		return 1;
	}
	c->in_len += (size_t) n;
	client_lines(c);
	return 0;
}

static int client_write(struct client *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		c->out_off += (size_t) n;
	}
	return 0;
}

static void client_update(struct client *c)
{
	uint32_t ev = 0;

	if (!c->paused) {
		if (!c->closing && !c->eof && client_backlog(c) <= OUT_HIGH)
			ev |= EPOLLIN;
		/* a follower that is behind waits for room to be fed more */
		if (client_behind(c))
			ev |= EPOLLOUT;
	}
	if (c->out_off < c->out_len)
		ev |= EPOLLOUT;
	(void) sd_event_source_set_io_events(c->io, ev);
}

/* Done with it: no more input to come or to act on, nothing left to send. */
static bool client_done(const struct client *c)
{
	if (c->n_pend > 0 || c->out_off < c->out_len)
		return false;
	return c->closing || (c->eof && !(c->in_len && memchr(c->in, '\n', c->in_len)));
}

static int on_client(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct client *c = userdata;
	int r = 0;

	if (revents & (EPOLLHUP | EPOLLERR)) {
		/* gone both ways: what it asked was done; the replies go nowhere */
		client_free(c);
		return 0;
	}
	/* once a turn: the flush lets it be read, and fed, again */
	c->paused = true;
	server_kick();
	if (revents & EPOLLOUT)
		r = client_write(c);
	if (r >= 0 && (revents & EPOLLIN))
		r = client_read(c);
	if (r < 0 || client_done(c)) {
		client_free(c);
		return 0;
	}
	client_update(c);
	return 0;
}

static bool peer_is_operator(int fd, const struct ucred *cred)
{
	gid_t groups[256];
	socklen_t len = sizeof(groups);

	if (cred->uid == 0 || cred->uid == geteuid() || cred->gid == getegid())
		return true;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
		return false;
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == getegid())
			return true;
	return false;
}

/* A client on a connected socket; the peer's credentials decide whether it
 * is an operator. */
struct client *server_client_new(int fd)
{
	struct client *c;
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		log_warning("SO_PEERCRED: %m");
		close(fd);
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		abort();
	c->fd = fd;
	c->uid = cred.uid;
	c->gid = cred.gid;
	c->pid = cred.pid;
	c->operator = peer_is_operator(fd, &cred);
	if (sd_event_add_io(D.event, &c->io, fd, EPOLLIN, on_client, c) < 0) {
		close(fd);
		free(c);
		return NULL;
	}
	c->next = clients;
	clients = c;
	n_clients++;
	return c;
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (cfd < 0) {
		if (errno != EAGAIN && errno != EINTR)
			log_warning("accept: %m");
		return 0;
	}
	(void) server_client_new(cfd);
	return 0;
}

/* --- the end of a turn ------------------------------------------------------- */

static int feed_line(int64_t seq, const char *line, void *userdata)
{
	void **a = userdata;
	struct client *c = a[0];
	struct sub *s = a[1];
	char *l = xasprintf("{\"id\":%s,\"event\":%s}\n", s->id, line);

	out_append(c, l, strlen(l));
	free(l);
	return c->out_len - c->out_off >= OUT_FEED ? -ENOBUFS : 0;
}

/* Send a log follower what was written since, and the end once its
 * sandbox is gone.  Returns false when it is done with. */
static bool feed_log(struct client *c, struct logsub *l)
{
	off_t size = log_size(l), end;
	json_object *o = json_object_new_object(), *log = json_object_new_object();
	bool done = false;
	char id[24], *line;

	if (size > l->offset + OUT_FEED)
		size = l->offset + OUT_FEED;
	json_object_object_add(log, "task_id", json_object_new_string(task_id_string(l->task_id, id)));
	json_object_object_add(log, "attempt", json_object_new_int((int) l->attempt));
	json_object_object_add(log, "lines", log_lines(l->fd, l->offset, size, !l->ended, &end));
	if (l->ended && end == log_size(l)) {
		struct task *t = task_find(id);

		json_object_object_add(log, "end", json_object_new_boolean(true));
		json_object_object_add(log, "status", json_object_new_string(
			t ? status_to_string(t->status) : "deleted"));
		done = true;
	}
	json_object_object_add(log, "offset", json_object_new_int64(end));
	if (done || end > l->offset) {
		json_object_object_add(o, "log", log);
		line = xasprintf("{\"id\":%s,%s\n", l->id, json_text(o) + 1);
		out_append(c, line, strlen(line));
		free(line);
	} else
		json_object_put(log);
	json_object_put(o);
	l->offset = end;
	return !done;
}

static void feed(struct client *c)
{
	for (struct logsub **p = &c->logsubs, *l; (l = *p);) {
		if (c->out_len - c->out_off >= OUT_FEED || feed_log(c, l)) {
			p = &l->next;
			continue;
		}
		*p = l->next;
		logsub_free(l);
	}
	for (struct sub *s = c->subs; s; s = s->next) {
		while (s->cursor < committed_seq && c->out_len - c->out_off < OUT_FEED) {
			void *a[2] = { c, s };
			int64_t last;

			(void) store_events_read(s->cursor, committed_seq, s->project_id, s->types, 256,
						 feed_line, a, &last);
			if (last == s->cursor)
				break;
			s->cursor = last;
		}
	}
}

static void replies_release(bool ok)
{
	for (struct client *c = clients; c; c = c->next) {
		for (size_t i = 0; i < c->n_pend; i++) {
			if (ok)
				out_append(c, c->pend[i].line, strlen(c->pend[i].line));
			else {
				char *l = xasprintf("{\"id\":%s,\"ok\":false,\"error\":{\"code\":\"unavailable\","
						    "\"message\":\"the database could not be written; "
						    "nothing was changed\"}}\n", c->pend[i].id);
				out_append(c, l, strlen(l));
				free(l);
			}
			free(c->pend[i].id);
			free(c->pend[i].line);
		}
		c->n_pend = 0;
		c->pend_bytes = 0;
	}
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
	retry_source = sd_event_source_unref(retry_source);
	server_kick();
	return 0;
}

static void batch_failed(void)
{
	log_error("cannot commit to the database: %s; rolling back this turn's changes", last_error());
	store_rollback();
	replies_release(false);
	if (engine_load() < 0)
		log_error("cannot reload state from the database: %s", last_error());
	if (!retry_source)
		(void) sd_event_add_time_relative(D.event, &retry_source, CLOCK_MONOTONIC, USEC_PER_SEC,
						  100 * USEC_PER_MSEC, on_retry, NULL);
}

static int on_spawned(sd_event_source *s, uint64_t usec, void *userdata)
{
	server_kick();
	return 0;
}

/* The end of a turn: dispatch, commit, spawn what was claimed, and let the
 * replies and events of the committed batch out.  What the spawns changed
 * (a start, its event) needs no commit of its own before anything else may
 * happen: an executor lists a sandbox whose start was not committed, and the
 * next daemon adopts it.  So it goes with the next turn's commit (an exit, a
 * request), or within SPAWN_COMMIT_USEC: one fsync a task, not two. */
#define SPAWN_COMMIT_USEC (2 * USEC_PER_MSEC)
void server_flush(void)
{
	struct client *next;

	spawned_source = sd_event_source_disable_unref(spawned_source);
	engine_dispatch();
	if (store_commit() < 0)
		batch_failed();
	else {
		engine_committed();
		replies_release(true);
		committed_seq = store_last_seq();
		if (engine_spawn_pending())
			(void) sd_event_add_time_relative(D.event, &spawned_source, CLOCK_MONOTONIC,
							  SPAWN_COMMIT_USEC, 0, on_spawned, NULL);
	}
	for (struct client *c = clients; c; c = next) {
		next = c->next;
		c->paused = false;
		feed(c);
		if (client_write(c) < 0) {
			client_free(c);
			continue;
		}
		if (c->out_len - c->out_off > OUT_MAX) {
			log_warning("client pid %d reads too slowly; dropping it", (int) c->pid);
			client_free(c);
			continue;
		}
		/* lines left waiting while it had too much to read */
		if (c->in_len > 0 && client_backlog(c) <= OUT_HIGH && memchr(c->in, '\n', c->in_len))
			client_lines(c);
		if (client_done(c)) {
			client_free(c);
			continue;
		}
		client_update(c);
	}
	notify_turn();
}

static int on_flush(sd_event_source *s, void *userdata)
{
	server_flush();
	return 0;
}

void server_kick(void)
{
	if (flush_source)
		(void) sd_event_source_set_enabled(flush_source, SD_EVENT_ONESHOT);
}

/* --- the listening socket -------------------------------------------------- */

static int bind_socket(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -EBADF;
	char *dir, *slash;
	int r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return log_error_errno(-ENAMETOOLONG, "socket path '%s' is too long", path);
	strcpy(sa.sun_path, path);
	dir = xstrdup(path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		(void) mkdir_p(dir, 0755);
	}
	free(dir);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return log_error_errno(-errno, "socket: %m");
	if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
		int probe;

		if (errno != EADDRINUSE)
			return log_error_errno(-errno, "cannot bind '%s': %m", path);
		/* a socket file is there: is anyone answering on it? */
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		r = probe >= 0 ? connect(probe, (struct sockaddr *) &sa, sizeof(sa)) : -1;
		if (probe >= 0)
			close(probe);
		if (r == 0)
			return log_error_errno(-EADDRINUSE, "another dagd is listening on '%s'", path);
		(void) unlink(path);
		if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
			return log_error_errno(-errno, "cannot bind '%s': %m", path);
	}
	/* anyone may connect: a sandbox running as another user reports here;
	 * what a peer may do is decided by its credentials (see cmd.c) */
	(void) chmod(path, 0666);
	if (listen(fd, SOMAXCONN) < 0)
		return log_error_errno(-errno, "listen: %m");
	D.socket_owned = true;
	return TAKE_FD(fd);
}

int server_listen(void)
{
	char **names = NULL;
	int n, r;

	n = sd_listen_fds_with_names(true, &names);
	if (n < 0)
		return log_error_errno(n, "cannot take sockets from systemd: %m");
	if (n > 1)
		log_warning("systemd passed %d sockets; using the first", n);
	if (n >= 1) {
		listen_fd = SD_LISTEN_FDS_START;
		(void) fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK);
		log_info("listening on the socket passed by systemd (%s)", names && names[0] ? names[0] : "unnamed");
		for (int i = 0; i < n; i++)
			free(names[i]);
	} else {
		listen_fd = bind_socket(D.socket_path);
		if (listen_fd < 0)
			return listen_fd;
		log_info("listening on %s", D.socket_path);
	}
	free(names);
	r = sd_event_add_io(D.event, &listen_source, listen_fd, EPOLLIN, on_accept, NULL);
	if (r < 0)
		return log_error_errno(r, "cannot watch the socket: %m");
	r = sd_event_add_defer(D.event, &flush_source, on_flush, NULL);
	if (r < 0)
		return log_error_errno(r, "cannot add the flush: %m");
	(void) sd_event_source_set_priority(flush_source, SD_EVENT_PRIORITY_IDLE);
	(void) sd_event_source_set_enabled(flush_source, SD_EVENT_ONESHOT);
	committed_seq = store_last_seq();
	return 0;
}

void server_close(void)
{
	while (clients)
		client_free(clients);
	listen_source = sd_event_source_disable_unref(listen_source);
	flush_source = sd_event_source_disable_unref(flush_source);
	spawned_source = sd_event_source_disable_unref(spawned_source);
	retry_source = sd_event_source_disable_unref(retry_source);
	closep(&listen_fd);
	if (D.socket_owned)
		(void) unlink(D.socket_path);
}
