/*
 * main.c - dagd: options, start-up, the event loop, shutdown.
 *
 * Start-up is ordered so that READY=1 means what it says: the state
 * directory and the database (opened and migrated), the loop, the plugins,
 * the state loaded, the socket listened on (taken from systemd when socket
 * activated), the running sandboxes adopted; only then READY=1.
 */
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "dagd.h"

struct daemon D;
static uint64_t arg_exit_idle_usec;

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: dagd [OPTION]...\n"
		"Run the dagd daemon: a dependency graph of tasks, run in sandboxes by executor plugins.\n"
		"\n"
		"  -s, --socket PATH          listen on PATH (default: $XDG_RUNTIME_DIR/dagd.sock,\n"
		"                             or /run/dagd/dagd.sock as root; under systemd the\n"
		"                             socket passed by socket activation)\n"
		"  -d, --state-dir DIR        keep the database and logs in DIR (default:\n"
		"                             $STATE_DIRECTORY under systemd, else\n"
		"                             $XDG_STATE_HOME/dagd, or /var/lib/dagd as root)\n"
		"  -p, --plugin-dir DIR       load executor plugins from DIR (default: %s)\n"
		"  -j, --max-concurrency N    run at most N sandboxes at once (default: 64)\n"
		"      --kill-grace SECONDS   between SIGTERM and SIGKILL on cancel (default: 5)\n"
		"  -o, --executor-options NAME=JSON\n"
		"                             options for one executor, e.g. local='{\"max_concurrency\":4}'\n"
		"      --exit-idle-after SECONDS\n"
		"                             exit once nothing has run, nothing has been due and no\n"
		"                             client has been connected for SECONDS (with socket\n"
		"                             activation, the next connection starts dagd again)\n"
		"      --log-target auto|journal|stderr\n"
		"                             where messages go (default auto: the journal, with\n"
		"                             structured fields, when stderr is connected to it)\n"
		"  -h, --help                 show this help\n"
		"      --version              show the version\n"
		"\n"
		"Signals: SIGTERM stops dagd (sandboxes go on and are adopted at the next start);\n"
		"SIGHUP reloads the plugins.  Under systemd, dagd takes its socket by socket\n"
		"activation and speaks the notify protocol (READY, STATUS, WATCHDOG, STOPPING).\n"
		"Talk to it with dagctl(1).\n",
		DAGD_PLUGINDIR);
}

static char *default_path(const char *env, const char *fallback_home, const char *leaf, const char *root)
{
	const char *base = getenv(env), *home = getenv("HOME");

	if (geteuid() == 0)
		return xstrdup(root);
	if (base && *base)
		return xasprintf("%s/%s", base, leaf);
	if (fallback_home && home)
		return xasprintf("%s/%s/%s", home, fallback_home, leaf);
	return xasprintf("/run/user/%u/%s", (unsigned) geteuid(), leaf);
}

/* The path of the socket systemd passes, if any (what sandboxes are told to
 * report on); the environment is left for server_listen() to take. */
static char *activated_socket_path(void)
{
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa);
	char path[sizeof(sa.sun_path) + 1] = "";

	if (sd_listen_fds(false) < 1)
		return NULL;
	if (getsockname(SD_LISTEN_FDS_START, (struct sockaddr *) &sa, &len) < 0 ||
	    sa.sun_family != AF_UNIX || len <= offsetof(struct sockaddr_un, sun_path) ||
	    sa.sun_path[0] != '/')
		return NULL;
	memcpy(path, sa.sun_path, len - offsetof(struct sockaddr_un, sun_path));
	return xstrdup(path);
}

/* Run from its build tree (BUILD/dagd beside BUILD/plugins/local.so), dagd
 * takes the plugins built with it, not the installed ones (an installed dagd
 * has no plugins/ beside it). */
static char *build_tree_plugins(void)
{
	char exe[PATH_MAX], *slash;
	_cleanup_free_ char *probe = NULL;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n <= 0)
		return NULL;
	exe[n] = 0;
	slash = strrchr(exe, '/');
	if (!slash)
		return NULL;
	*slash = 0;
	probe = xasprintf("%s/plugins/local.so", exe);
	return access(probe, F_OK) == 0 ? xasprintf("%s/plugins", exe) : NULL;
}

static int parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "state-dir", required_argument, NULL, 'd' },
		{ "plugin-dir", required_argument, NULL, 'p' },
		{ "max-concurrency", required_argument, NULL, 'j' },
		{ "kill-grace", required_argument, NULL, 'g' },
		{ "executor-options", required_argument, NULL, 'o' },
		{ "exit-idle-after", required_argument, NULL, 'I' },
		{ "log-target", required_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{}
	};
	int c;

	D.global_limit = 64;
	D.kill_grace_usec = 5 * USEC_PER_SEC;
	D.executor_options = json_object_new_object();
	while ((c = getopt_long(argc, argv, "s:d:p:j:o:h", opts, NULL)) >= 0) {
		char *end, *eq;
		double d;
		long n;
		json_object *v;

		switch (c) {
		case 's':
			free(D.socket_path);
			D.socket_path = xstrdup(optarg);
			break;
		case 'd':
			free(D.state_dir);
			D.state_dir = xstrdup(optarg);
			break;
		case 'p':
			free(D.plugin_dir);
			D.plugin_dir = xstrdup(optarg);
			break;
		case 'j':
			n = strtol(optarg, &end, 10);
			if (*end || n < 1 || n > 100000) {
				fprintf(stderr, "dagd: --max-concurrency wants a number from 1 to 100000, not '%s'\n", optarg);
				return -EINVAL;
			}
			D.global_limit = (unsigned) n;
			break;
		case 'g':
			d = strtod(optarg, &end);
			if (*end || d < 0 || d > 3600) {
				fprintf(stderr, "dagd: --kill-grace wants seconds from 0 to 3600, not '%s'\n", optarg);
				return -EINVAL;
			}
			D.kill_grace_usec = (uint64_t) (d * 1e6);
			break;
		case 'o':
			eq = strchr(optarg, '=');
			v = NULL;
			if (eq && json_parse_strict(eq + 1, strlen(eq + 1), &v) < 0) {
				fprintf(stderr, "dagd: --executor-options '%s': %s\n", optarg, last_error());
				return -EINVAL;
			}
			if (!v || !json_object_is_type(v, json_type_object)) {
				json_object_put(v);
				fprintf(stderr, "dagd: --executor-options wants NAME={json object}, not '%s'\n", optarg);
				return -EINVAL;
			}
			*eq = 0;
			json_object_object_add(D.executor_options, optarg, v);
			break;
		case 'I':
			d = strtod(optarg, &end);
			if (*end || !(d > 0) || d > 31536000) {
				fprintf(stderr, "dagd: --exit-idle-after wants seconds, more than 0, not '%s'\n", optarg);
				return -EINVAL;
			}
			arg_exit_idle_usec = (uint64_t) (d * 1e6);
			break;
		case 'L':
			if (log_set_target(optarg) < 0) {
				fprintf(stderr, "dagd: --log-target wants auto, journal or stderr, not '%s'\n", optarg);
				return -EINVAL;
			}
			break;
		case 'h':
			usage(stdout);
			exit(EXIT_SUCCESS);
		case 'V':
			printf("dagd %s\n", DAGD_VERSION);
			exit(EXIT_SUCCESS);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "dagd: unexpected argument '%s'; see dagd --help\n", argv[optind]);
		return -EINVAL;
	}
	if (!D.socket_path)
		D.socket_path = activated_socket_path();
	if (!D.socket_path)
		D.socket_path = default_path("XDG_RUNTIME_DIR", NULL, "dagd.sock", "/run/dagd/dagd.sock");
	if (!D.state_dir && getenv("STATE_DIRECTORY") && *getenv("STATE_DIRECTORY")) {
		/* systemd's StateDirectory= (the first, if several) */
		D.state_dir = xstrdup(getenv("STATE_DIRECTORY"));
		D.state_dir[strcspn(D.state_dir, ":")] = 0;
	}
	if (!D.state_dir)
		D.state_dir = default_path("XDG_STATE_HOME", ".local/state", "dagd", "/var/lib/dagd");
	if (!D.plugin_dir && getenv("DAGD_PLUGIN_DIR"))
		D.plugin_dir = xstrdup(getenv("DAGD_PLUGIN_DIR"));
	if (!D.plugin_dir)
		D.plugin_dir = build_tree_plugins();
	if (!D.plugin_dir)
		D.plugin_dir = xstrdup(DAGD_PLUGINDIR);
	return 0;
}

static int on_term(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	log_info("received %s; stopping", strsignal((int) si->ssi_signo));
	notify_stopping("stopping");
	return sd_event_exit(D.event, 0);
}

static int on_hup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	log_info("received SIGHUP; reloading plugins");
	(void) plugins_reload();
	return 0;
}

int main(int argc, char **argv)
{
	sigset_t mask;
	char *db, *instance;
	int r;

	if (parse_args(argc, argv) < 0)
		return 2;
	D.started_at = now_usec();
	/* a page of a thousand tasks is a megabyte of reply, built and freed
	 * each time: from the heap, not a fresh mapping faulted in page by page,
	 * and the heap not shrunk after each (a long line's handling gives it
	 * back: cmd_line()) */
	(void) mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
	(void) mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
	umask(0027);
	r = mkdir_p(D.state_dir, 0750);
	if (r < 0) {
		log_error_errno(r, "cannot create state directory '%s': %m", D.state_dir);
		return 1;
	}
	db = xasprintf("%s/dagd.db", D.state_dir);
	r = store_open(db);
	if (r < 0) {
		log_error("%s", last_error());
		return 1;
	}
	free(db);
	instance = xasprintf("%s", D.state_dir);
	D.instance = instance;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* not the thread's default loop: that one asks gettid() every turn */
	r = sd_event_new(&D.event);
	if (r < 0) {
		log_error_errno(r, "cannot create the event loop: %m");
		return 1;
	}
	(void) sd_event_add_signal(D.event, NULL, SIGTERM, on_term, NULL);
	(void) sd_event_add_signal(D.event, NULL, SIGINT, on_term, NULL);
	(void) sd_event_add_signal(D.event, NULL, SIGHUP, on_hup, NULL);
	if (notify_setup(arg_exit_idle_usec) < 0)
		return 1;

	if (plugins_load(D.plugin_dir) <= 0)
		log_warning("no executor plugin loaded from '%s'; tasks cannot run", D.plugin_dir);
	r = engine_load();
	if (r < 0) {
		log_error("cannot load state: %s", last_error());
		return 1;
	}
	r = server_listen();
	if (r < 0)
		return 1;
	(void) engine_adopt_all();
	server_kick();
	notify_ready();
	log_info("dagd %s ready; state in %s", DAGD_VERSION, D.state_dir);
	if (arg_exit_idle_usec > 0 && D.socket_owned)
		log_warning("--exit-idle-after without socket activation: nothing will start dagd again");

	r = sd_event_loop(D.event);

	server_close();
	plugins_unload();
	for (struct sandbox *sb = sandbox_list(), *next; sb; sb = next) {
		next = sb->next;
		sandbox_free(sb);
	}
	engine_committed();
	engine_free();
	store_close();
	sd_event_unref(D.event);
	json_object_put(D.executor_options);
	free(instance);
	free(D.socket_path);
	free(D.state_dir);
	free(D.plugin_dir);
	return r < 0 ? 1 : 0;
}
