/*
 * local-harness.c - the host the local executor's tests drive the plugin
 * with, and their helpers (see local-harness.h).
 */
#include <ftw.h>
#include <syslog.h>

#include "local-harness.h"

#ifndef DAGD_TEST_BUILD
#define DAGD_TEST_BUILD "build"
#endif

const struct dagd_executor *X;
static char plugin_path[PATH_MAX];
char broken_dir[DIR_MAX];
struct env E;

static const char *const default_env[] = { "PATH=/usr/local/bin:/usr/bin:/bin", NULL };

/* ---- the host ---- */

static void host_log(struct dagd_sandbox *sb, int priority, const char *format, ...)
	__attribute__((format(printf, 3, 4)));

static void host_log(struct dagd_sandbox *sb, int priority, const char *format, ...) {
	va_list ap;

	if (priority > LOG_NOTICE && !getenv("DAGD_TEST_VERBOSE"))
		return;
	fprintf(stderr, "# plugin [%s]: ", sb ? sb->id : "-");
	va_start(ap, format);
	vfprintf(stderr, format, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void host_sandbox_started(struct dagd_sandbox *sb, const char *handle) {
	sb->started++;
	snprintf(sb->handle, sizeof(sb->handle), "%s", handle);
}

static void host_sandbox_output(struct dagd_sandbox *sb, const void *data, size_t size) {
	sb->output += size;
}

static void host_sandbox_exited(struct dagd_sandbox *sb, const struct dagd_exit *exit) {
	sb->exited++;
	sb->code = exit->code;
	sb->signal = exit->signal;
	snprintf(sb->reason, sizeof(sb->reason), "%s", exit->reason ? exit->reason : "");
	snprintf(sb->message, sizeof(sb->message), "%s", exit->message ? exit->message : "");
}

static const char *host_sandbox_id(const struct dagd_sandbox *sb) {
	return sb->id;
}

void plugin_start(void) {
	char *error = NULL;
	int r;

	/* as root, tasks would run as nobody: these write into the test's
	 * own directory (test_tasks_of_a_root_host_run_as_nobody tests that) */
	r = X->init(&E.host, geteuid() == 0 ? "{\"user\": \"root\"}" : "{}", &E.state, &error);
	if (r < 0)
		fail_msg("init: %s (%s)", strerror(-r), error ? error : "no message");
	assert_null(error);
}

/* The daemon goes away: the plugin forgets everything, the sandboxes run on. */
void plugin_stop(void) {
	X->shutdown(E.state);
	E.state = NULL;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
	(void) remove(path);
	return 0;
}

int setup(void **unused) {
	char tmpl[DIR_MAX], real[PATH_MAX];
	const char *tmp = getenv("TMPDIR");

	snprintf(tmpl, sizeof(tmpl), "%.*s/test-local.XXXXXX", DIR_MAX - 64, tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(tmpl));
	assert_non_null(realpath(tmpl, real));
	assert_true(strlen(real) < DIR_MAX - 64);
	snprintf(E.dir, sizeof(E.dir), "%.*s", DIR_MAX - 64, real);
	snprintf(E.state_dir, sizeof(E.state_dir), "%.*s/state", DIR_MAX - 64, E.dir);
	assert_int_equal(sd_event_new(&E.event), 0);
	E.host = (struct dagd_host) {
		.abi_version = DAGD_EXECUTOR_ABI_VERSION,
		.size = sizeof(struct dagd_host),
		.event = E.event,
		.state_dir = E.state_dir,
		.socket_path = "/nonexistent/dagd.sock",
		.instance = "test",
		.log = host_log,
		.sandbox_started = host_sandbox_started,
		.sandbox_output = host_sandbox_output,
		.sandbox_exited = host_sandbox_exited,
		.sandbox_id = host_sandbox_id,
	};
	plugin_start();
	return 0;
}

/* The pid of the helper of this test's state directory (its argument is
 * its socket's path); 0 if none runs. */
pid_t helper_pid(void) {
	char want[PATH_MAX], path[64], cmd[PATH_MAX + 64];
	struct dirent *de;
	pid_t found = 0;
	DIR *d;

	snprintf(want, sizeof(want), "local-helper%c%s/local/helper.sock", 0, E.state_dir);
	d = opendir("/proc");
	assert_non_null(d);
	while (!found && (de = readdir(d))) {
		size_t want_len = strlen("local-helper") + 1 + strlen(want + strlen("local-helper") + 1);
		ssize_t n;
		int fd;

		if (atoi(de->d_name) <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/cmdline", atoi(de->d_name));
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, cmd, sizeof(cmd));
		close(fd);
		if (n == (ssize_t) want_len + 1 && memcmp(cmd, want, want_len) == 0)
			found = atoi(de->d_name);
	}
	closedir(d);
	return found;
}

int teardown(void **unused) {
	pid_t helper;

	if (E.state)
		plugin_stop();
	helper = helper_pid();
	if (helper > 0) {
		kill(helper, SIGKILL);
		/* it is this process's child when this process started it */
		(void) waitpid(helper, NULL, 0);
	}
	E.event = sd_event_unref(E.event);
	nftw(E.dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	memset(&E, 0, sizeof(E));
	return 0;
}

/* ---- helpers ---- */

uint64_t now_usec(void) {
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * SEC + (uint64_t) ts.tv_nsec / 1000;
}

/* Runs the loop until done(arg) or the timeout; whether done. */
bool run_until(bool (*done)(const void *), const void *arg, uint64_t timeout_usec) {
	uint64_t deadline = now_usec() + timeout_usec;

	while (!done(arg)) {
		uint64_t t = now_usec();
		if (t >= deadline)
			return false;
		assert_true(sd_event_run(E.event, deadline - t < 20 * MSEC ? deadline - t : 20 * MSEC) >= 0);
	}
	return true;
}

static bool never(const void *arg) {
	return false;
}

void run_for(uint64_t usec) {
	run_until(never, NULL, usec);
}

static bool has_exited(const void *arg) {
	return ((const struct dagd_sandbox *) arg)->exited > 0;
}

char *file_read(const char *path) {
	FILE *f = fopen(path, "re");
	char *data = NULL;
	size_t size = 0;

	if (!f)
		return NULL;
	data = calloc(1, 65536);
	assert_non_null(data);
	size = fread(data, 1, 65535, f);
	data[size] = '\0';
	fclose(f);
	return data;
}

struct needle {
	const char *path;
	const char *text;
};

static bool file_contains(const void *arg) {
	const struct needle *n = arg;
	char *data = file_read(n->path);
	bool found = data && strstr(data, n->text);

	free(data);
	return found;
}

void wait_for_log(const struct dagd_sandbox *sb, const char *text) {
	struct needle n = { sb->log, text };

	if (!run_until(file_contains, &n, 10 * SEC))
		fail_msg("'%s' never appeared in %s", text, sb->log);
}

void assert_log_equal(const struct dagd_sandbox *sb, const char *expected) {
	char *data = file_read(sb->log);

	assert_non_null(data);
	assert_string_equal(data, expected);
	free(data);
}

void assert_log_contains(const struct dagd_sandbox *sb, const char *text) {
	char *data = file_read(sb->log);

	assert_non_null(data);
	if (!strstr(data, text))
		fail_msg("log %s has no '%s': %s", sb->log, text, data);
	free(data);
}

void wait_exit(struct dagd_sandbox *sb) {
	if (!run_until(has_exited, sb, 15 * SEC))
		fail_msg("sandbox %s never reported its exit", sb->id);
	assert_int_equal(sb->exited, 1);
}

/* A process that is gone or a zombie (whoever its parent, it will not run again). */
bool proc_gone(const void *arg) {
	pid_t pid = *(const pid_t *) arg;
	char path[64], buf[512], *p;
	FILE *f;
	bool gone;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
	f = fopen(path, "re");
	if (!f)
		return true;
	gone = !fgets(buf, sizeof(buf), f) || !(p = strrchr(buf, ')')) || p[2] == 'Z' || p[2] == 'X';
	fclose(f);
	return gone;
}

void proc_stat_fields(pid_t pid, struct stat_fields *ret) {
	char path[64], buf[1024], *p;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
	f = fopen(path, "re");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	p = strrchr(buf, ')');
	assert_non_null(p);
	assert_int_equal(sscanf(p + 1, " %c %d %d %d %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu",
				&ret->state, &ret->ppid, &ret->pgrp, &ret->session, &ret->start_time), 5);
}

/* The hex mask of a "SigIgn:"-like line of /proc/<pid>/status. */
unsigned long long proc_status_mask(pid_t pid, const char *key) {
	char path[64], line[256];
	unsigned long long mask = 0;
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
	f = fopen(path, "re");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, strlen(key)) == 0 && sscanf(line + strlen(key), " %llx", &mask) == 1)
			found = true;
	fclose(f);
	assert_true(found);
	return mask;
}

/* The open descriptors of pid, in order, as "0 1 2". */
const char *proc_fds(pid_t pid) {
	static char list[256];
	char path[64];
	bool seen[64] = { false };
	struct dirent *de;
	size_t len = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int) pid);
	d = opendir(path);
	assert_non_null(d);
	while ((de = readdir(d)))
		if (de->d_name[0] != '.') {
			int fd = atoi(de->d_name);
			assert_true(fd >= 0 && fd < 64);
			seen[fd] = true;
		}
	closedir(d);
	list[0] = '\0';
	for (int fd = 0; fd < 64; fd++)
		if (seen[fd])
			len += (size_t) snprintf(list + len, sizeof(list) - len, "%s%d", len ? " " : "", fd);
	return list;
}

void sb_new(struct dagd_sandbox *sb, const char *id) {
	memset(sb, 0, sizeof(*sb));
	snprintf(sb->id, sizeof(sb->id), "%s", id);
	snprintf(sb->log, sizeof(sb->log), "%s/logs/%s.log", E.dir, id);
}

struct dagd_spawn spec_of(const struct dagd_sandbox *sb, const char *const *argv,
			  const char *const *envp, const char *cwd) {
	return (struct dagd_spawn) {
		.sandbox_id = sb->id,
		.task_id = "t-1",
		.project_id = "p-1",
		.attempt = 1,
		.argv = argv,
		.envp = envp ? envp : default_env,
		.cwd = cwd,
		.log_path = sb->log,
		.options_json = "{}",
	};
}

int spawn(struct dagd_sandbox *sb, const char *const *argv, const char *const *envp,
	  const char *cwd, void **ret_data, char **ret_error) {
	struct dagd_spawn spec = spec_of(sb, argv, envp, cwd);

	return X->spawn(E.state, sb, &spec, ret_data, ret_error);
}

/* Spawns, checks that it started, and returns the plugin's data. */
void *spawn_ok(struct dagd_sandbox *sb, const char *const *argv, const char *const *envp, const char *cwd) {
	char *error = NULL;
	void *data = NULL;
	int r;

	r = spawn(sb, argv, envp, cwd, &data, &error);
	if (r < 0)
		fail_msg("spawn: %s (%s)", strerror(-r), error ? error : "no message");
	assert_null(error);
	assert_int_equal(sb->started, 1);
	assert_true(sb->handle[0] != '\0');
	assert_int_equal(sb->exited, 0);
	return data;
}

void *adopt_ok(struct dagd_sandbox *sb, const char *handle) {
	static const char *const argv[] = { "true", NULL };
	struct dagd_spawn spec = spec_of(sb, argv, NULL, NULL);
	char *error = NULL;
	void *data = NULL;
	int r;

	r = X->adopt(E.state, sb, &spec, handle, &data, &error);
	if (r < 0)
		fail_msg("adopt: %s (%s)", strerror(-r), error ? error : "no message");
	assert_null(error);
	return data;
}

void touch(const char *name) {
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", E.dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	close(fd);
}

/* The number a task wrote into a file of the test's directory. */
pid_t read_pid(const char *name) {
	char path[PATH_MAX], *text;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/%s", E.dir, name);
	text = file_read(path);
	assert_non_null(text);
	pid = atoi(text);
	free(text);
	assert_true(pid > 1);
	return pid;
}

static void list_found(void *ctx, const char *sandbox_id, const char *handle) {
	char *seen = ctx;

	assert_string_equal(sandbox_id, handle);
	strcat(seen, sandbox_id);
	strcat(seen, " ");
}

/* What list() reports, as "id id ". */
const char *list_ids(void) {
	static char seen[1024];
	char *error = NULL;

	seen[0] = 0;
	if (X->list(E.state, list_found, seen, &error) < 0)
		fail_msg("list: %s", error ? error : "no message");
	return seen;
}

int harness_init(int argc, char **argv) {
	const char *dir = argc > 1 ? argv[1] : getenv("DAGD_TEST_PLUGIN_DIR");
	const char *broken = getenv("DAGD_TEST_BROKEN_DIR");
	sigset_t daemon_like;
	void *dl;

	if (!dir || !*dir)
		dir = DAGD_TEST_BUILD "/plugins";
	if (strlen(dir) > 3 && strcmp(dir + strlen(dir) - 3, ".so") == 0)
		snprintf(plugin_path, sizeof(plugin_path), "%s", dir);
	else
		snprintf(plugin_path, sizeof(plugin_path), "%s/local.so", dir);
	snprintf(broken_dir, sizeof(broken_dir), "%.*s", DIR_MAX - 64,
		 broken && *broken ? broken : DAGD_TEST_BUILD "/tests/plugins");

	dl = dlopen(plugin_path, RTLD_NOW | RTLD_LOCAL);
	if (!dl) {
		fprintf(stderr, "cannot load %s: %s\n", plugin_path, dlerror());
		return -1;
	}
	X = dlsym(dl, DAGD_EXECUTOR_SYMBOL);
	if (!X) {
		fprintf(stderr, "%s has no %s: %s\n", plugin_path, DAGD_EXECUTOR_SYMBOL, dlerror());
		return -1;
	}

	/* as a daemon with sd-event signal sources would: the tasks must not inherit it */
	sigemptyset(&daemon_like);
	sigaddset(&daemon_like, SIGTERM);
	sigaddset(&daemon_like, SIGCHLD);
	sigprocmask(SIG_BLOCK, &daemon_like, NULL);
	umask(022);

	return 0;
}
