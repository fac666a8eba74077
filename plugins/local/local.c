/*
 * local.c - the `local` executor: each task runs as its own session and
 * process group on this host, started by one helper process per daemon
 * instance (helper/helper.c, installed beside local.so as local-helper).
 *
 * The executor never forks a task itself.  It speaks proto.h to the helper
 * over STATE_DIR/local/helper.sock, starting the helper (with posix_spawn,
 * handing it the bound socket) when none answers.  Nothing blocks the loop
 * but list(), which waits, bounded, for the helper's answer before the
 * daemon answers anyone.
 *
 * The handle of a sandbox is its sandbox id: the helper knows its tasks by
 * it, so a sandbox whose start was never committed is still found by list().
 * The helper holds every exit until forget(), i.e. until the daemon has the
 * exit on disk.  If the helper dies, its tasks die with it (their
 * parent-death signal) and their sandboxes end as lost.
 *
 * A task's resource limits (memory_max, pids_max, cpu_max: limits.c) go to
 * the helper with the task; one the helper cannot set is refused here.
 */
#include "local.h"


/* whom a root daemon runs tasks as, unless told otherwise ("user") */
#define DEFAULT_USER "nobody"

/* how long list() waits for the helper */
#define LIST_TIMEOUT_MS 5000

/* ---- the executor ---- */

extern DAGD_EXECUTOR_EXPORT const struct dagd_executor dagd_executor;

/* The helper is installed beside local.so: the host says where that file is
 * (it loads a private copy, which dladdr() would name); an older host loads
 * the file itself. */
static int helper_find(const struct dagd_host *host, char **ret) {
	const char *file = NULL, *slash;
	Dl_info info;
	char *path;

	if (host->size >= offsetof(struct dagd_host, plugin_path) + sizeof(host->plugin_path))
		file = host->plugin_path;
	if (!file && dladdr((const void *) &dagd_executor, &info))
		file = info.dli_fname;
	if (!file)
		return -ENOENT;
	slash = strrchr(file, '/');
	path = strdupf("%.*s" PROTO_HELPER, slash ? (int) (slash - file + 1) : 0, file);
	if (!path)
		return -ENOMEM;
	if (access(path, X_OK) < 0) {
		int r = -errno;
		free(path);
		return r;
	}
	*ret = path;
	return 0;
}

/* The user a task runs as: a name or a number.  Only root can run tasks as
 * another user, or a helper of its own that holds CAP_SETUID (the system
 * units'): then every task runs as the executor's user, since operators are
 * not the host's root, and an operator's task.add must not make them so. */
static int user_resolve(const struct local *l, const char *user, uid_t *ret_uid, gid_t *ret_gid,
			char **ret_error) {
	struct passwd *pw;
	char *end;
	unsigned long n;

	errno = 0;
	pw = getpwnam(user);
	if (!pw) {
		n = strtoul(user, &end, 10);
		if (*user && !*end && (pw = getpwuid((uid_t) n)) == NULL) {
			*ret_uid = (uid_t) n;
			*ret_gid = (gid_t) n;
			return 0;
		}
	}
	if (!pw)
		return errorf(ret_error, -ESRCH, "option 'user': no user '%s'", user);
	if (l && l->helper_socket) {
		if (l->user && strcmp(user, l->user) != 0 && pw->pw_uid != l->uid)
			return errorf(ret_error, -EPERM, "option 'user': tasks of this daemon run as '%s' (its local "
				      "executor's user) and not as '%s'", l->user, user);
	} else if (geteuid() != 0 && pw->pw_uid != geteuid())
		return errorf(ret_error, -EPERM, "option 'user': dagd runs as uid %u and cannot run tasks as '%s'",
			      (unsigned) geteuid(), user);
	*ret_uid = pw->pw_uid;
	*ret_gid = pw->pw_gid;
	return 0;
}

static const char *const executor_keys[] = { "user", "max_concurrency", "helper_socket", "memory_max", "pids_max",
					      "cpu_max", NULL };
static const char *const task_keys[] = { "user", "memory_max", "pids_max", "cpu_max", NULL };

static int local_check_options(void *state, const char *options_json, char **ret_error) {
	_cleanup_json_ json_object *o = NULL;
	struct local_limits lim = {};
	const char *user;
	uid_t uid;
	gid_t gid;
	int r;

	r = parse_object(options_json, task_keys, &o, ret_error);
	if (r < 0)
		return r;
	r = limits_parse(o, &lim, ret_error);
	if (r < 0)
		return r;
	r = get_string(o, "user", &user, ret_error);
	if (r < 0)
		return r;
	return user ? user_resolve(state, user, &uid, &gid, ret_error) : 0;
}

static int local_init(const struct dagd_host *host, const char *options_json,
		      void **ret_state, char **ret_error) {
	_cleanup_json_ json_object *o = NULL;
	struct local *l;
	const char *user, *helper_socket;
	int r;

	r = host_check(host, true, ret_error);
	if (r < 0)
		return r;
	r = parse_object(options_json, executor_keys, &o, ret_error);
	if (r < 0)
		return r;
	r = get_string(o, "user", &user, ret_error);
	if (r < 0)
		return r;
	r = get_string(o, "helper_socket", &helper_socket, ret_error);
	if (r < 0)
		return r;
	if (helper_socket && helper_socket[0] != '/')
		return errorf(ret_error, -EINVAL, "option 'helper_socket': '%s' is not an absolute path", helper_socket);
	if (helper_socket && !user)
		return errorf(ret_error, -EINVAL, "option 'helper_socket' needs the option 'user': whom the helper "
			      "runs tasks as");

	l = calloc(1, sizeof(*l));
	if (!l)
		return errorf(ret_error, -ENOMEM, "Out of memory");
	r = limits_parse(o, &l->limits, ret_error);
	if (r < 0) {
		free(l);
		return r;
	}
	l->host = host;
	l->fd = -EBADF;
	if (helper_socket && !(l->helper_socket = strdup(helper_socket))) {
		free(l);
		return errorf(ret_error, -ENOMEM, "Out of memory");
	}
	/* a task must not be able to do what the daemon does: as root, tasks
	 * run as an unprivileged user unless the operator names another */
	if (!user && geteuid() == 0)
		user = DEFAULT_USER;
	if (user && (r = user_resolve(l, user, &l->uid, &l->gid, ret_error)) < 0)
		goto fail;
	if (user && !(l->user = strdup(user))) {
		r = errorf(ret_error, -ENOMEM, "Out of memory");
		goto fail;
	}
	if (host->state_dir[0] == '/')
		l->dir = strdupf("%s/local", host->state_dir);
	else {
		_cleanup_free_ char *cwd = getcwd(NULL, 0);
		l->dir = cwd ? strdupf("%s/%s/local", cwd, host->state_dir) : NULL;
	}
	if (!l->dir) {
		r = errorf(ret_error, -ENOMEM, "Cannot make the path of the helper's directory: %m");
		goto fail;
	}
	if (mkdir_p(l->dir, 0700) < 0) {
		r = errorf(ret_error, -errno, "Cannot create '%s': %m", l->dir);
		goto fail;
	}
	r = helper_find(host, &l->helper);
	if (r < 0) {
		r = errorf(ret_error, r, "Cannot find the program '" PROTO_HELPER "' beside local.so: %s", strerror(-r));
		goto fail;
	}
	*ret_state = l;
	return 0;
fail:
	free(l->helper_socket);
	free(l->user);
	free(l->dir);
	free(l);
	return r;
}

static void local_shutdown(void *state) {
	struct local *l = state;

	if (!l)
		return;
	/* what is queued for the helper goes out before we let go */
	if (l->fd >= 0 && l->out_len > 0) {
		(void) fcntl(l->fd, F_SETFL, 0);
		(void) !write(l->fd, l->out, l->out_len);
	}
	disconnect(l);
	l->child = sd_event_source_disable_unref(l->child);
	while (l->sandboxes)
		sandbox_free(l->sandboxes);
	free(l->in);
	free(l->out);
	free(l->helper);
	free(l->helper_socket);
	free(l->user);
	free(l->dir);
	free(l);
}

static int local_spawn(void *state, struct dagd_sandbox *sb, const struct dagd_spawn *spec,
		       void **ret_data, char **ret_error) {
	struct local *l = state;
	_cleanup_json_ json_object *o = NULL;
	_cleanup_free_ const char **f = NULL;
	const char *user;
	char uid[16] = "", gid[16] = "", argc[24], lim_fields[3][24];
	size_t n = 0, na = 0, ne = 0;
	struct local_sandbox *x;
	struct local_limits lim = l->limits;
	uid_t u = l->uid;
	gid_t g = l->gid;
	bool limited;
	int r;

	if (!spec || !spec->sandbox_id || !spec->argv || !spec->argv[0] || !spec->argv[0][0])
		return errorf(ret_error, -EINVAL, "Nothing to run: the command is empty");
	if (!spec->log_path || !*spec->log_path)
		return errorf(ret_error, -EINVAL, "No log file given");
	if (!*spec->sandbox_id || spec->sandbox_id[0] == '.' || strchr(spec->sandbox_id, '/'))
		return errorf(ret_error, -EINVAL, "Not a sandbox id: '%s'", spec->sandbox_id);
	r = parse_object(spec->options_json, executor_keys, &o, ret_error);
	if (r < 0)
		return r;
	r = get_string(o, "user", &user, ret_error);
	if (r < 0)
		return r;
	if (user && (r = user_resolve(l, user, &u, &g, ret_error)) < 0)
		return r;
	r = limits_parse(o, &lim, ret_error);
	if (r < 0)
		return r;
	limited = limits_any(&lim);
	if (user || l->user) {
		snprintf(uid, sizeof(uid), "%u", (unsigned) u);
		snprintf(gid, sizeof(gid), "%u", (unsigned) g);
	}
	r = helper_connect(l, true);
	if (r < 0)
		return errorf(ret_error, r, "Cannot reach the local helper: %s", strerror(-r));
	/* never run without a limit it asks for */
	if (limited && (r = limits_check(l, &lim, ret_error)) < 0)
		return r;

	while (spec->argv[na])
		na++;
	while (spec->envp && spec->envp[ne])
		ne++;
	f = calloc(9 + na + ne, sizeof(*f));
	if (!f)
		return errorf(ret_error, -ENOMEM, "Out of memory");
	snprintf(argc, sizeof(argc), "%zu", na);
	if (limited) {
		limits_fields(&lim, lim_fields);
		for (size_t i = 0; i < 3; i++)
			f[n++] = lim_fields[i];
	}
	f[n++] = spec->sandbox_id;
	f[n++] = spec->log_path;
	f[n++] = spec->cwd ? spec->cwd : "";
	f[n++] = uid;
	f[n++] = gid;
	f[n++] = argc;
	for (size_t i = 0; i < na; i++)
		f[n++] = spec->argv[i];
	for (size_t i = 0; i < ne; i++)
		f[n++] = spec->envp[i];
	x = sandbox_add(l, sb, spec->sandbox_id);
	if (!x)
		return errorf(ret_error, -ENOMEM, "Out of memory");
	r = send_fields(l, limited ? 'T' : 'S', f, n);
	if (r < 0) {
		sandbox_free(x);
		return errorf(ret_error, r, "Cannot hand the task to the local helper: %s", strerror(-r));
	}
	*ret_data = x;
	l->host->sandbox_started(sb, spec->sandbox_id);
	return 0;
}

/* How tasks are contained and limited, as the helper said in its hello. */
static const char *local_status(void *state) {
	struct local *l = state;
	const char *how;

	if (helper_connect(l, false) < 0 || l->fd < 0)
		return "no helper runs yet (it starts with the first task)";
	if (strcmp(l->mode, "cgroup") == 0)
		how = "each task in a cgroup of its own (delegated): cancel kills all it started";
	else if (strcmp(l->mode, "session") == 0)
		how = "each task in a session and process group of its own (no delegated cgroup)";
	else
		return "the helper runs (an older one: it does not say how it contains tasks)";
	snprintf(l->status, sizeof(l->status), "%s; %s", how, limits_status(l));
	return l->status;
}

/* The helper freezes the task's cgroup, or stops its process group; an
 * older helper, which cannot, is not asked. */
static int local_pause(void *state, struct dagd_sandbox *sb, void *data, int paused) {
	struct local *l = state;
	struct local_sandbox *x = data;
	const char *f[2];

	if (!x)
		return -ENOENT;
	if (l->fd < 0)
		return -ENOTCONN;
	if (l->helper_version < 2)
		return -EOPNOTSUPP;
	f[0] = x->id;
	f[1] = paused ? "1" : "0";
	return send_fields(l, 'Z', f, 2);
}

static int local_cancel(void *state, struct dagd_sandbox *sb, void *data, uint64_t grace_usec) {
	struct local *l = state;
	struct local_sandbox *x = data;
	char grace[32];
	const char *f[2];

	if (!x)
		return -ENOENT;
	snprintf(grace, sizeof(grace), "%llu", (unsigned long long) grace_usec);
	f[0] = x->id;
	f[1] = grace;
	return send_fields(l, 'K', f, 2);
}

static int local_adopt(void *state, struct dagd_sandbox *sb, const struct dagd_spawn *spec,
		       const char *handle, void **ret_data, char **ret_error) {
	struct local *l = state;
	struct local_sandbox *x;
	const char *id = spec && spec->sandbox_id ? spec->sandbox_id : handle;
	int r;

	if (!id || !*id)
		return errorf(ret_error, -EINVAL, "No sandbox id to adopt");
	r = helper_connect(l, true);
	if (r < 0)
		return errorf(ret_error, r, "Cannot reach the local helper: %s", strerror(-r));
	x = sandbox_add(l, sb, id);
	if (!x)
		return errorf(ret_error, -ENOMEM, "Out of memory");
	r = send_fields(l, 'A', &id, 1);
	if (r < 0) {
		sandbox_free(x);
		return errorf(ret_error, r, "Cannot reach the local helper: %s", strerror(-r));
	}
	*ret_data = x;
	return 0;
}

static int local_list(void *state, void (*found)(void *ctx, const char *sandbox_id, const char *handle),
		      void *ctx, char **ret_error) {
	struct local *l = state;
	int r;

	/* no helper runs: none holds anything */
	r = helper_connect(l, false);
	if (r == -ESRCH)
		return 0;
	if (r < 0)
		return errorf(ret_error, r, "Cannot reach the local helper: %s", strerror(-r));
	l->listing = true;
	l->found = found;
	l->found_ctx = ctx;
	r = send_fields(l, 'L', NULL, 0);
	while (r >= 0 && l->listing) {
		struct pollfd p = { .fd = l->fd, .events = POLLIN | (l->out_len ? POLLOUT : 0) };
		int k = poll(&p, 1, LIST_TIMEOUT_MS);

		if (k == 0)
			r = -ETIMEDOUT;
		else if (k < 0)
			r = errno == EINTR ? 0 : -errno;
		else {
			if (p.revents & POLLOUT)
				r = flush_out(l);
			if (r >= 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)))
				r = read_in(l);
		}
		if (r >= 0 && l->fd < 0)
			r = -ECONNRESET;
	}
	l->listing = false;
	l->found = NULL;
	if (r < 0) {
		if (l->fd >= 0)
			helper_lost(l, strerror(-r));
		return errorf(ret_error, r, "The local helper did not list its tasks: %s", strerror(-r));
	}
	return 0;
}

static void local_forget(void *state, const char *sandbox_id, const char *handle) {
	struct local *l = state;

	int r = helper_connect(l, false);

	if (r == -ESRCH)
		return;
	if (r < 0 || send_fields(l, 'G', &sandbox_id, 1) < 0)
		l->host->log(NULL, LOG_WARNING, "local: cannot tell the helper to forget %s", sandbox_id);
}

DAGD_EXECUTOR_EXPORT const struct dagd_executor dagd_executor = {
	.abi_version = DAGD_EXECUTOR_ABI_VERSION,
	.size = sizeof(struct dagd_executor),
	.name = "local",
	.description = "runs each task as a process session on this host, under a helper that outlives daemon restarts",
	.max_concurrency = 0,
	.init = local_init,
	.shutdown = local_shutdown,
	.spawn = local_spawn,
	.cancel = local_cancel,
	.adopt = local_adopt,
	.list = local_list,
	.forget = local_forget,
	.check_options = local_check_options,
	.pause = local_pause,
	.status = local_status,
};
