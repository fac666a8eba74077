/*
 * server.c - the Unix socket server: clients, their lines, replies held until
 * their batch is on disk, and the end-of-turn flush.  What clients follow
 * (events, logs) is in server-follow.c; the listening socket in
 * server-socket.c; a database that cannot be written in server-retry.c.
 *
 * Handlers never touch a socket.  A reply is queued on its client as
 * "pending"; the flush, which runs once nothing else is ready in the loop,
 * commits the batch and only then lets pending replies out.  If the commit
 * fails, every pending reply that says what the batch changed becomes an
 * `unavailable` error; replies that changed nothing (reads) go out as they
 * are.  Then the flush backs off: for a second nothing but a client's write
 * tries the database again, and the failure is logged once a minute at most
 * (server-retry.c).
 *
 * Nothing below calls up to ask for the flush.  The server arms it for what
 * it does itself (a client's line, a reply, a follower); after whatever else
 * the loop ran (a plugin's report, a timer of the engine's) a post source
 * looks (turn_changed()): a write the store began, a task the engine may
 * dispatch, a sandbox that ended.
 */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dagd.h"

static int listen_fd = -EBADF;
static sd_event_source *flush_source, *watch_source, *spawned_source;
struct client *clients;
static unsigned n_clients;
static uint64_t turn = 1;               /* flushes so far, and one: a client's read_turn 0 is never */
/* A line this long (a batch of a thousand tasks and more) leaves the memory
 * of its parse and its reply free but held by malloc, megabytes of them:
 * the turn that read it gives them back to the system at its end, or soon
 * after (memory_give_back()). */
#define TRIM_LINE (64 * 1024)
static bool trim;
static int64_t committed_seq;
static uint64_t seen_reads;             /* store_reads() likewise */
static uint64_t seen_writes;            /* store_writes() when the flush last looked */

static void client_update(struct client *c);

unsigned server_clients(void)
{
	return n_clients;
}

int64_t server_committed_seq(void)
{
	return committed_seq;
}

static void client_free(struct client *c)
{
	for (struct client **p = &clients; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	n_clients--;
	server_kick();                  /* a turn ends: the idle clock starts now */
	sd_event_source_disable_unref(c->io);
	closep(&c->fd);
	for (size_t i = 0; i < c->n_pend; i++)
		free(c->pend[i].line);
	follow_free(c);
	free(c->pend);
	c->in = buf_free(c->in, &c->in_cap);
	c->out = buf_free(c->out, &c->out_cap);
	free(c);
}

void client_out(struct client *c, const char *s, size_t n)
{
	if (c->out_off > 0 && c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (c->out_len + n > c->out_cap) {
		if (c->out_off > 0) {
			memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
			c->out_len -= c->out_off;
			c->out_off = 0;
		}
		buf_reserve(&c->out, &c->out_cap, c->out_len, c->out_len + n);
	}
	memcpy(c->out + c->out_len, s, n);
	c->out_len += n;
}

/* A reply to one of the client's lines: head then body (n bytes) are its
 * members but the last, as JSON text (head "\"ok\":true,\"result\":", body
 * the result: a page of a listing is copied once, here); the last is the
 * id the line gave, which a failed commit's answer repeats (it ends the
 * line). */
void server_reply(struct client *c, json_object *id, const char *head, const char *body, size_t n, bool durable)
{
	const char *idt = id ? json_text(id) : "null";
	size_t ni = strlen(idt), nh = strlen(head);
	char *line = xrealloc(NULL, nh + n + ni + 10);
	struct pend *p;

	line[0] = '{';
	memcpy(line + 1, head, nh);
	n += nh;
	memcpy(line + 1 + nh, body, n - nh);
	memcpy(line + 1 + n, ",\"id\":", 6);
	memcpy(line + 7 + n, idt, ni);
	memcpy(line + 7 + n + ni, "}\n", 3);
	c->pend = xrealloc(c->pend, (c->n_pend + 1) * sizeof(*c->pend));
	p = &c->pend[c->n_pend++];
	p->len = n + ni + 9;
	p->line = utf8_valid_line(line, &p->len);
	p->id_len = ni;
	p->durable = durable;
	c->pend_bytes += p->len;
	server_kick();
}

/* --- reading --------------------------------------------------------------- */

size_t client_unsent(const struct client *c)
{
	return c->out_len - c->out_off;
}

/* What the client has yet to read of us: above OUT_HIGH we stop reading it. */
static size_t client_backlog(const struct client *c)
{
	return c->out_len - c->out_off + c->pend_bytes;
}

static void client_lines(struct client *c)
{
	size_t start = 0, max = c->operator ? MAX_OPERATOR_LINE : MAX_LINE;
	char *nl;

	while (!c->closing && client_backlog(c) <= OUT_HIGH &&
	       (nl = memchr(c->in + start, '\n', c->in_len - start))) {
		size_t len = (size_t) (nl - (c->in + start));

		if (len > max)
			break;
		*nl = 0;
		if (len > 0 && c->in[start + len - 1] == '\r')
			c->in[start + len - 1] = 0, len--;
		if (len > 0)
			cmd_line(c, c->operator, c->in + start, len);
		trim |= len >= TRIM_LINE;
		start += (size_t) (nl - (c->in + start)) + 1;
	}
	memmove(c->in, c->in + start, c->in_len - start);
	c->in_len -= start;
	if (!c->closing && (c->in_len > max ||
			    (client_backlog(c) <= OUT_HIGH && memchr(c->in, '\n', c->in_len)))) {
		char body[160];
		int n = snprintf(body, sizeof(body), "\"ok\":false,\"error\":{\"code\":\"bad_request\",\"message\":"
				 "\"line longer than %zu bytes; closing the connection\"}", max);

		server_reply(c, NULL, "", body, (size_t) n, false);
		c->closing = true;
		c->in_len = 0;
	}
	if (c->in_len == 0 && buf_mapped(c->in_cap))
		c->in = buf_free(c->in, &c->in_cap);    /* a long line's room goes */
}

/* One read a turn (on_client pauses a client ready again until the flush), so that a
 * client that never stops sending can neither keep the turn from ending nor
 * the others from being read.  Returns 1 at the end of its input. */
static int client_read(struct client *c)
{
	ssize_t n;

	if (c->closing || c->eof || client_backlog(c) > OUT_HIGH)
		return 0;
	if (c->in_cap - c->in_len < 65536)
		buf_reserve(&c->in, &c->in_cap, c->in_len, c->in_cap ? 2 * c->in_cap : 65536);
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
	if (buf_mapped(c->out_cap)) {
		c->out = buf_free(c->out, &c->out_cap);  /* a long reply's room goes */
		c->out_off = c->out_len = 0;
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
		if (follow_behind(c))
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
	server_kick();
	/* once a turn: a client is read once, then waits for the flush to be
	 * read, and fed, again.  Its source stops reporting it (a pause) once
	 * it is ready again before the flush (it sends without waiting for
	 * replies) or is ready to be written to; one that sent its line and
	 * waits for the reply costs no epoll change. */
	if (c->read_turn == turn || (revents & EPOLLOUT))
		c->paused = true;
	if (revents & EPOLLOUT)
		r = client_write(c);
	if (r >= 0 && (revents & EPOLLIN) && c->read_turn != turn) {
		c->read_turn = turn;
		r = client_read(c);
	}
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

void server_status(json_object *o)
{
	server_accept_status(o);
	server_retry_status(o);
}

/* --- the end of a turn ------------------------------------------------------- */

/* Let the pending replies out: all of them once the batch is committed,
 * otherwise those that changed nothing, and an `unavailable` error for the
 * others. */
static void replies_release(bool committed)
{
	for (struct client *c = clients; c; c = c->next) {
		for (size_t i = 0; i < c->n_pend; i++) {
			struct pend *p = &c->pend[i];

			if (committed || !p->durable)
				client_out(c, p->line, p->len);
			else {
				/* the id ends the line, before its "}\n" */
				char *l = xasprintf("{\"id\":%.*s,\"ok\":false,\"error\":{\"code\":\"unavailable\","
						    "\"message\":\"the database could not be written; "
						    "nothing was changed\"}}\n", (int) p->id_len,
						    p->line + p->len - 2 - p->id_len);
				client_out(c, l, strlen(l));
				free(l);
			}
			free(p->line);
		}
		c->n_pend = 0;
		c->pend_bytes = 0;
	}
}

static bool durable_pending(void)
{
	for (struct client *c = clients; c; c = c->next)
		for (size_t i = 0; i < c->n_pend; i++)
			if (c->pend[i].durable)
				return true;
	return false;
}

/* The open batch holds nothing but what spawns changed (their starts and
 * events): it may wait for the next commit, or SPAWN_COMMIT_USEC. */
static bool spawn_hold;

static int on_spawned(sd_event_source *s, uint64_t usec, void *userdata)
{
	spawned_source = sd_event_source_disable_unref(spawned_source);
	server_kick();
	return 0;
}

/* What the engine and the store did that the flush has not seen: a write
 * begun since its commit (or a read: its transaction ends with the turn),
 * a task to dispatch (while a failed commit waits for
 * its retry, nothing is dispatched), a sandbox that ended. */
static bool turn_changed(void)
{
	return store_writes() != seen_writes || store_reads() != seen_reads || engine_changed(!server_retry_waiting());
}

/* The end of a turn: dispatch, commit, spawn what was claimed, and let the
 * replies and events of the committed batch out.  While a failed commit's
 * retry waits, only a client's write tries the database; the rest (what
 * the engine would claim or record) waits for the retry.
 *
 * What the spawns change (a start, its event) needs no commit of its own
 * before anything else may happen: an executor lists a sandbox whose start
 * was not committed, and the next daemon adopts it.  So it goes with the
 * next turn's commit (an exit, a claim, a request), or within
 * SPAWN_COMMIT_USEC: one fsync a task, not two.  Until then a turn that
 * brings nothing else to commit (no claim, exit or change a client waits
 * for) commits nothing, and its reads are answered. */
#define SPAWN_COMMIT_USEC (10 * USEC_PER_MSEC)

/* The WAL's checkpoint, when one is due, after the replies of the commit
 * that made it due are sent (store_checkpoint()): a reply waits for its
 * commit, not for the copy of the WAL into the database that follows. */
static void checkpoint(void)
{
	if (!store_checkpoint_due())
		return;
	for (struct client *c = clients; c; c = c->next)
		(void) client_write(c);         /* a failure is seen again below */
	store_checkpoint();
}

void server_flush(void)
{
	struct client *next;
	bool wrote;

	/* this is the turn's flush, whoever asked for it */
	turn++;
	if (flush_source)
		(void) sd_event_source_set_enabled(flush_source, SD_EVENT_OFF);
	follow_ended();
	do {
		if (server_retry_waiting() && !durable_pending()) {
			seen_writes = store_writes();   /* the retry commits them */
			seen_reads = store_reads();
			replies_release(false);
			break;
		}
		if (!server_retry_waiting())
			engine_dispatch();
		engine_save();
		seen_writes = store_writes();
		seen_reads = store_reads();
		if (spawn_hold && spawned_source && n_spawn == 0 && !engine_exits_pending() && !durable_pending()) {
			/* reads go out: events stay behind the last commit */
			replies_release(true);
			break;
		}
		spawn_hold = false;
		spawned_source = sd_event_source_disable_unref(spawned_source);
		wrote = store_in_transaction();
		if (store_commit() < 0) {
			server_retry_refused();
			replies_release(false);
			break;
		}
		if (wrote)
			server_retry_committed();
		engine_committed();
		replies_release(true);
		committed_seq = store_last_seq();
		checkpoint();
		if (engine_spawn_pending()) {
			spawn_hold = true;
			/* (an accuracy of 0 would be sd-event's default, 250 ms) */
			(void) sd_event_add_time_relative(D.event, &spawned_source, CLOCK_MONOTONIC,
							  SPAWN_COMMIT_USEC, USEC_PER_MSEC, on_spawned, NULL);
		}
	} while (0);
	for (struct client *c = clients; c; c = next) {
		next = c->next;
		c->paused = false;
		follow_feed(c);
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
	if (trim) {
		trim = false;
		memory_give_back();
	}
	notify_turn();
	/* what the spawns and the clients' lines did meanwhile is the next turn's */
	if (turn_changed())
		server_kick();
}

static int on_flush(sd_event_source *s, void *userdata)
{
	server_flush();
	return 0;
}

/* After any other source ran: the flush, if it changed anything. */
static int on_watch(sd_event_source *s, void *userdata)
{
	if (turn_changed())
		server_flush();
	return 0;
}

void server_kick(void)
{
	if (flush_source)
		(void) sd_event_source_set_enabled(flush_source, SD_EVENT_ONESHOT);
}

/* --- the listening socket -------------------------------------------------- */

int server_listen(void)
{
	int r;

	listen_fd = server_socket_open();
	if (listen_fd < 0)
		return listen_fd;
	r = server_accept_start(listen_fd);
	if (r < 0)
		return r;
	r = sd_event_add_defer(D.event, &flush_source, on_flush, NULL);
	if (r < 0)
		return log_error_errno(r, "cannot add the flush: %m");
	(void) sd_event_source_set_priority(flush_source, SD_EVENT_PRIORITY_IDLE);
	(void) sd_event_source_set_enabled(flush_source, SD_EVENT_ONESHOT);
	r = sd_event_add_post(D.event, &watch_source, on_watch, NULL);
	if (r < 0)
		return log_error_errno(r, "cannot add the flush's watch: %m");
	(void) sd_event_source_set_priority(watch_source, SD_EVENT_PRIORITY_IDLE);
	committed_seq = store_last_seq();
	return 0;
}

void server_close(void)
{
	/* the starts of the last spawns, if they still wait */
	if (spawn_hold && store_in_transaction())
		(void) store_commit();
	spawn_hold = false;
	spawned_source = sd_event_source_disable_unref(spawned_source);
	while (clients)
		client_free(clients);
	server_accept_stop();
	flush_source = sd_event_source_disable_unref(flush_source);
	watch_source = sd_event_source_disable_unref(watch_source);
	server_retry_stop();
	memory_give_back_stop();
	closep(&listen_fd);
	if (D.socket_owned)
		(void) unlink(D.socket_path);
}
