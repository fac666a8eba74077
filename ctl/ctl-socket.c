/*
 * ctl-socket.c - where dagctl finds dagd, and what it says when nothing
 * answers there.
 *
 * Like systemctl: --socket PATH, else --system or --user if given, else
 * $DAGD_SOCKET; else root uses the system daemon, and anyone else their own
 * daemon if its socket is there, else the system daemon.  When the connection
 * fails, the hint is worded for the case: which paths were tried, whether the
 * socket unit may be disabled, whether the user lacks the group.
 */
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "dagctl.h"

#define SYSTEM_SOCKET "/run/dagd/dagd.sock"

/* The system daemon's socket.  DAGCTL_TEST_SYSTEM_SOCKET replaces it for
 * dagctl's own tests only: they cannot own the real path. */
static const char *system_socket(void) {
	const char *e = getenv("DAGCTL_TEST_SYSTEM_SOCKET");

	return e && *e ? e : SYSTEM_SOCKET;
}

/* This user's daemon's socket: $XDG_RUNTIME_DIR/dagd.sock. */
static const char *user_socket(void) {
	static char buf[PATH_MAX];
	const char *e = getenv("XDG_RUNTIME_DIR");

	if (e && *e)
		snprintf(buf, sizeof buf, "%s/dagd.sock", e);
	else
		snprintf(buf, sizeof buf, "/run/user/%u/dagd.sock", (unsigned) getuid());
	return buf;
}

static bool is_socket(const char *path) {
	struct stat st;

	return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

void ctl_socket_resolve(struct ctl *c, const char *arg, enum ctl_scope scope) {
	const char *e = getenv("DAGD_SOCKET");

	c->user_tried = NULL;
	if (arg) {
		c->socket_path = arg;
		c->socket_from = CTL_SOCKET_OPTION;
	} else if (scope == CTL_SCOPE_USER) {
		c->socket_path = user_socket();
		c->socket_from = CTL_SOCKET_USER;
	} else if (scope == CTL_SCOPE_SYSTEM) {
		c->socket_path = system_socket();
		c->socket_from = CTL_SOCKET_SYSTEM;
	} else if (e && *e) {
		c->socket_path = e;
		c->socket_from = CTL_SOCKET_ENV;
	} else if (geteuid() == 0) {
		c->socket_path = system_socket();
		c->socket_from = CTL_SOCKET_SYSTEM;
	} else if (is_socket(user_socket())) {
		c->socket_path = user_socket();
		c->socket_from = CTL_SOCKET_USER;
	} else {
		c->user_tried = user_socket();
		c->socket_path = system_socket();
		c->socket_from = CTL_SOCKET_SYSTEM;
	}
}

/* The second line of a failed connection's message: what to do about it. */
const char *ctl_socket_hint(const struct ctl *c, int r, char *buf, size_t size) {
	const char *path = c->socket_path;

	switch (c->socket_from) {
	case CTL_SOCKET_OPTION:
	case CTL_SOCKET_ENV:
		if (r == -EACCES)
			snprintf(buf, size, "You may not use it: only its owner, or the members of its group, may.");
		else
			snprintf(buf, size, "Is dagd running there?  Start one with 'dagd --socket %s'%s.", path,
				 c->socket_from == CTL_SOCKET_ENV ? ", or unset DAGD_SOCKET to use the default daemon"
								  : "");
		break;
	case CTL_SOCKET_USER:
		if (r == -EACCES)
			snprintf(buf, size, "Only its owner may use a user's dagd.");
		else
			snprintf(buf, size, "Is your dagd.socket enabled?  'systemctl --user enable --now dagd.socket'\n"
				 "starts your own dagd; --system uses the system's (%s).", system_socket());
		break;
	case CTL_SOCKET_SYSTEM:
		if (r == -EACCES)
			snprintf(buf, size, "Only root, dagd's user and the members of its group may use it: are you in\n"
				 "group dagd?  ('sudo usermod -aG dagd %s', then log in again.)",
				 getenv("USER") && *getenv("USER") ? getenv("USER") : "$USER");
		else if (c->user_tried)
			snprintf(buf, size, "Tried your own dagd at '%s' (not there), then the system's.\n"
				 "Is dagd.socket enabled?  'systemctl enable --now dagd.socket' for the system's,\n"
				 "'systemctl --user enable --now dagd.socket' for your own, or name a socket\n"
				 "with --socket PATH or DAGD_SOCKET.", c->user_tried);
		else
			snprintf(buf, size, "Is dagd.socket enabled?  'systemctl enable --now dagd.socket' starts it; or\n"
				 "name another socket with --socket PATH or DAGD_SOCKET%s.",
				 geteuid() == 0 ? "" : ", or use your own with --user");
		break;
	}
	return buf;
}
