/*
 * web.c - web: serve the board of dagd in a browser.  Takes the address to
 * listen on (loopback by default, or a Unix socket), makes the page's secret,
 * starts libmicrohttpd on the socket it bound itself, prints the URL that
 * carries the secret, and runs until SIGINT or SIGTERM.  What a request gets
 * is decided in web-http.c.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <spawn.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "web.h"

#define LISTEN_DEFAULT "127.0.0.1:8080"

extern char **environ;

/* Binds and listens on "unix:PATH" or "HOST:PORT" ("[V6]:PORT"); the URL
 * of its root goes into url. */
static int listen_on(const char *spec, char *url, size_t url_size) {
	_cleanup_(closep) int fd = -EBADF;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	char host[256], serv[16];
	const char *colon;
	int one = 1, r;

	if (strncmp(spec, "unix:", 5) == 0) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		mode_t old;

		if (strlen(spec + 5) == 0 || strlen(spec + 5) >= sizeof sa.sun_path)
			return -EINVAL;
		strcpy(sa.sun_path, spec + 5);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		(void) unlink(sa.sun_path);
		old = umask(0177);      /* only its owner may connect */
		r = bind(fd, (struct sockaddr *) &sa, sizeof sa);
		umask(old);
		if (r < 0 || listen(fd, 64) < 0)
			return -errno;
		snprintf(url, url_size, "http://localhost/");
		return TAKE_FD(fd);
	}

	colon = strrchr(spec, ':');
	if (!colon || colon == spec || !colon[1] || (size_t) (colon - spec) >= sizeof host)
		return -EINVAL;
	if (spec[0] == '[' && colon[-1] == ']')
		snprintf(host, sizeof host, "%.*s", (int) (colon - spec - 2), spec + 1);
	else
		snprintf(host, sizeof host, "%.*s", (int) (colon - spec), spec);
	r = getaddrinfo(host, colon + 1, &hints, &ai);
	if (r != 0)
		return -EADDRNOTAVAIL;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		freeaddrinfo(ai);
		return r;
	}
	(void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	r = bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ? -errno : 0;
	freeaddrinfo(ai);
	if (r < 0)
		return r;
	if (listen(fd, 64) < 0 || getsockname(fd, (struct sockaddr *) &ss, &sl) < 0)
		return -errno;
	if (getnameinfo((struct sockaddr *) &ss, sl, host, sizeof host, serv, sizeof serv,
			NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		return -EINVAL;
	snprintf(url, url_size, ss.ss_family == AF_INET6 ? "http://[%s]:%s/" : "http://%s:%s/",
		 host, serv);
	return TAKE_FD(fd);
}

static int make_token(char token[static WEB_TOKEN_LEN + 1]) {
	unsigned char raw[WEB_TOKEN_LEN / 2];

	if (getrandom(raw, sizeof raw, 0) != (ssize_t) sizeof raw)
		return -errno;
	for (size_t i = 0; i < sizeof raw; i++)
		sprintf(token + 2 * i, "%02x", raw[i]);
	return 0;
}

static void open_browser(const char *url) {
	char *argv[] = { (char *) "xdg-open", (char *) url, NULL };
	pid_t pid;

	signal(SIGCHLD, SIG_IGN);       /* nothing to wait for: the child is reaped by itself */
	if (posix_spawnp(&pid, "xdg-open", NULL, NULL, argv, environ) != 0)
		fprintf(stderr, "dagctl web: cannot start xdg-open; open the URL yourself\n");
}

static int web_exec(struct ctl *c, const struct ctl_cmd *cmd, json_object *args,
		    int argc, char **argv) {
	json_object *v;
	const char *listen_spec = LISTEN_DEFAULT;
	struct web w = { .socket_path = c->socket_path };
	struct MHD_Daemon *d;
	char url[320];
	sigset_t mask;
	int fd, sig = 0, r;

	if (json_object_object_get_ex(args, "listen", &v))
		listen_spec = json_object_get_string(v);
	r = web_mhd_load(c->err, sizeof c->err);
	if (r < 0)
		return ctl_fail(c, r, "%s", c->err);
	r = make_token(w.token);
	if (r < 0)
		return ctl_fail(c, r, "cannot make a secret: %s", strerror(-r));
	fd = listen_on(listen_spec, url, sizeof url);
	if (fd == -EINVAL || fd == -EADDRNOTAVAIL)
		return ctl_usage_error(cmd, "--listen: '%s' is not HOST:PORT or unix:PATH", listen_spec);
	if (fd < 0)
		return ctl_fail(c, fd, "cannot listen on '%s': %s", listen_spec, strerror(-fd));

	/* the signals are taken by sigwait() below, and by no thread of the server */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);

	d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
			     MHD_USE_ERROR_LOG, 0, NULL, NULL, web_handle, &w,
			     MHD_OPTION_LISTEN_SOCKET, (MHD_socket) fd,
			     MHD_OPTION_NOTIFY_COMPLETED, web_completed, &w,
			     MHD_OPTION_CONNECTION_LIMIT, (unsigned) 512,
			     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) 120,
			     MHD_OPTION_END);
	if (!d) {
		close(fd);
		return ctl_fail(c, -EIO, "cannot start the HTTP server on '%s'", listen_spec);
	}
	/* the URL with its secret is the way in: once visited, a cookie keeps it */
	printf("dagctl web: %s?token=%s%s%s\n", url, w.token,
	       strncmp(listen_spec, "unix:", 5) == 0 ? " on " : "",
	       strncmp(listen_spec, "unix:", 5) == 0 ? listen_spec : "");
	fflush(stdout);
	if (json_object_object_get_ex(args, "open", NULL)) {
		char full[400];

		snprintf(full, sizeof full, "%s?token=%s", url, w.token);
		open_browser(full);
	}

	while (sig != SIGINT && sig != SIGTERM)
		if (sigwait(&mask, &sig) != 0)
			break;
	w.stopping = 1;
	MHD_stop_daemon(d);
	close(fd);
	if (strncmp(listen_spec, "unix:", 5) == 0)
		(void) unlink(listen_spec + 5);
	return 0;
}

static const struct ctl_opt web_opts[] = {
	{ "listen", "ADDR", ARG_STRING, "listen", 0,
	  "HOST:PORT or unix:PATH to serve on (default " LISTEN_DEFAULT ")" },
	{ "open", NULL, ARG_TRUE, "open", 0, "open the page with xdg-open" },
	{}
};

const struct ctl_cmd ctl_cmd_web = {
	.name = "web",
	.usage = "[--listen ADDR] [--open]",
	.summary = "Serve the board in a web browser",
	.details = "Serves a live board of dagd's projects: lanes of cards, the autonomous toggle\n"
		   "and Start Processing, a project's settings, a task with its log, and a graph\n"
		   "of the DAG; and a JSON API under /api/v1/.  It talks to dagd as the user who\n"
		   "runs it.  It listens on loopback unless told otherwise; every request needs\n"
		   "the secret of the URL it prints at start (the page keeps it in a cookie).\n"
		   "POST /api/v1/sandboxes/SANDBOX/task-complete takes a sandbox's report with\n"
		   "its task's token (Authorization: Bearer) instead.  ^C stops it.\n",
	.example = "  dagctl web --open\n"
		   "  dagctl web --listen unix:/run/user/1000/dagd-web.sock\n",
	.opts = web_opts,
	.min_args = 0, .max_args = 0,
	.exec = web_exec,
};
