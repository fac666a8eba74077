/*
 * server-socket.c - the listening socket: taken from systemd or bound, and
 * accepted from.
 *
 * Past the limit on open files (or out of memory for a socket), accepting
 * stops for a moment, and the pending connections wait in the socket's
 * backlog, instead of spinning on a level-triggered watch that EMFILE never
 * clears; it is said in the log once a minute at most, and in daemon.status.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "dagd.h"

#define ACCEPT_PAUSE_USEC (250 * USEC_PER_MSEC) /* after running out of fds */
#define REPEAT_LOG_USEC (60 * USEC_PER_SEC)     /* say it again at most this often */

static sd_event_source *listen_source, *accept_source;

/* running out of file descriptors */
static struct {
	uint64_t pauses, pauses_logged;
	int64_t last_at, logged_at;
	char error[128];
} fd_out;

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

/* The socket systemd passed, or one bound at D.socket_path. */
int server_socket_open(void)
{
	char **names = NULL;
	int n, fd;

	n = sd_listen_fds_with_names(true, &names);
	if (n < 0)
		return log_error_errno(n, "cannot take sockets from systemd: %m");
	if (n > 1)
		log_warning("systemd passed %d sockets; using the first", n);
	if (n >= 1) {
		fd = SD_LISTEN_FDS_START;
		(void) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		log_info("listening on the socket passed by systemd (%s)", names && names[0] ? names[0] : "unnamed");
		for (int i = 0; i < n; i++)
			free(names[i]);
	} else {
		fd = bind_socket(D.socket_path);
		if (fd >= 0)
			log_info("listening on %s", D.socket_path);
	}
	free(names);
	return fd;
}

static int on_accept_resume(sd_event_source *s, uint64_t usec, void *userdata)
{
	(void) sd_event_source_set_enabled(listen_source, SD_EVENT_ON);
	return 0;
}

/* Out of file descriptors (or memory): the connection stays in the backlog,
 * where a level-triggered watch would see it again at once.  Stop watching
 * for a moment instead, and say so once in a while. */
static void accept_pause(int err)
{
	int64_t now = now_usec();
	uint64_t when;

	fd_out.pauses++;
	fd_out.last_at = now;
	snprintf(fd_out.error, sizeof(fd_out.error), "%s", strerror(err));
	if (!fd_out.logged_at || now - fd_out.logged_at >= (int64_t) REPEAT_LOG_USEC) {
		log_warning("cannot accept connections: %s (%u clients); pausing for %llu ms each time "
			    "(%llu times since this was last said)", fd_out.error, server_clients(),
			    (unsigned long long) (ACCEPT_PAUSE_USEC / USEC_PER_MSEC),
			    (unsigned long long) (fd_out.pauses - fd_out.pauses_logged));
		fd_out.logged_at = now;
		fd_out.pauses_logged = fd_out.pauses;
	}
	/* the timer was made at start: arming it needs no new descriptor */
	if (sd_event_now(D.event, CLOCK_MONOTONIC, &when) < 0 ||
	    sd_event_source_set_time(accept_source, when + ACCEPT_PAUSE_USEC) < 0 ||
	    sd_event_source_set_enabled(accept_source, SD_EVENT_ONESHOT) < 0)
		return;
	(void) sd_event_source_set_enabled(listen_source, SD_EVENT_OFF);
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (cfd < 0) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
			accept_pause(errno);
		else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			log_warning("accept: %m");
		return 0;
	}
	(void) server_client_new(cfd);
	return 0;
}

int server_accept_start(int fd)
{
	int r;

	r = sd_event_add_io(D.event, &listen_source, fd, EPOLLIN, on_accept, NULL);
	if (r < 0)
		return log_error_errno(r, "cannot watch the socket: %m");
	r = sd_event_add_time(D.event, &accept_source, CLOCK_MONOTONIC, UINT64_MAX, 10 * USEC_PER_MSEC,
			      on_accept_resume, NULL);
	if (r < 0)
		return log_error_errno(r, "cannot add the accept timer: %m");
	(void) sd_event_source_set_enabled(accept_source, SD_EVENT_OFF);
	return 0;
}

void server_accept_stop(void)
{
	listen_source = sd_event_source_disable_unref(listen_source);
	accept_source = sd_event_source_disable_unref(accept_source);
}

void server_accept_status(json_object *o)
{
	json_object *a = json_object_new_object();
	int on = SD_EVENT_ON;

	(void) sd_event_source_get_enabled(listen_source, &on);
	json_object_object_add(a, "paused", json_object_new_boolean(on == SD_EVENT_OFF));
	json_object_object_add(a, "pauses", json_object_new_int64((int64_t) fd_out.pauses));
	json_object_object_add(a, "last_error", fd_out.pauses ? json_object_new_string(fd_out.error) : NULL);
	json_object_object_add(a, "last_error_at", json_time(fd_out.last_at));
	json_object_object_add(o, "accept", a);
}
