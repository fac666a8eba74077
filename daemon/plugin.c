/*
 * plugin.c - the executor plugin host: the loader and the interface handed to
 * plugins.
 *
 * Every *.so in the plugin directory is loaded in name order, each from a
 * private copy of its file (plugin-copy.c), so that a file rewritten in place
 * cannot touch running code.  A plugin that cannot be loaded stays listed
 * with the reason, naming its file, so that `dagctl executors` tells the
 * operator what went wrong.  Two files that name one executor do not shadow
 * each other by their order: the incumbent stays (see incumbent()) and the
 * other is refused, naming both.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "dagd.h"

struct executor *executors;

_printf_(3, 4) static void host_log(struct dagd_sandbox *s, int priority, const char *fmt, ...)
{
	struct sandbox *sb = (struct sandbox *) s;
	char buf[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (sb)
		log_msg(priority, "sandbox %s: %s", sb->id, buf);
	else
		log_msg(priority, "%s", buf);
}

static void host_started(struct dagd_sandbox *s, const char *handle)
{
	sandbox_started((struct sandbox *) s, handle ? handle : "");
}

static void host_output(struct dagd_sandbox *s, const void *data, size_t size)
{
	sandbox_output((struct sandbox *) s, data, size);
}

static void host_exited(struct dagd_sandbox *s, const struct dagd_exit *e)
{
	struct sandbox *sb = (struct sandbox *) s;
	struct dagd_exit x = { .code = e->code, .signal = e->signal, .reason = e->reason, .message = e->message };

	/* result_left is only in a version-3 plugin's struct */
	x.result_left = sb->ex && sb->ex->vt && sb->ex->vt->abi_version >= 3 ? e->result_left : 1;
	sandbox_exited(sb, &x);
}

static const char *host_sandbox_id(const struct dagd_sandbox *s)
{
	return ((const struct sandbox *) s)->id;
}

static struct dagd_host host_iface = {
	.abi_version = DAGD_EXECUTOR_ABI_VERSION,
	.size = sizeof(struct dagd_host),
	.log = host_log,
	.sandbox_started = host_started,
	.sandbox_output = host_output,
	.sandbox_exited = host_exited,
	.sandbox_id = host_sandbox_id,
};

struct executor *executor_find(const char *name)
{
	for (struct executor *ex = executors; name && ex; ex = ex->next)
		if (ex->vt && strcmp(ex->name, name) == 0)
			return ex;
	return NULL;
}

/* A version-2 member, if the plugin's struct has it and sets it. */
#define VT_HAS(vt, m) ((vt)->abi_version >= 2 && \
		       (vt)->size >= offsetof(struct dagd_executor, m) + sizeof((vt)->m) && (vt)->m)

static void list_found(void *ctx, const char *sandbox_id, const char *handle)
{
	struct listed **list = ctx;
	struct listed *l;

	if (!sandbox_id || !*sandbox_id)
		return;
	l = calloc(1, sizeof(*l));
	if (!l)
		abort();
	l->sandbox_id = xstrdup(sandbox_id);
	l->handle = xstrdup(handle ? handle : "");
	l->next = *list;
	*list = l;
}

int executor_list(struct executor *ex, struct listed **ret)
{
	struct listed *list = NULL;
	char *err = NULL;
	int r;

	if (!ex->vt || !VT_HAS(ex->vt, list))
		return -EOPNOTSUPP;
	r = ex->vt->list(ex->state, list_found, &list, &err);
	if (r < 0) {
		log_warning("executor '%s' cannot list its sandboxes: %s", ex->name, err ? err : strerror(-r));
		free(err);
		listed_free(list);
		return r;
	}
	for (struct listed *l = list; l; l = l->next)
		l->ex = ex;
	*ret = list;
	return 0;
}

void listed_free(struct listed *l)
{
	struct listed *next;

	for (; l; l = next) {
		next = l->next;
		free(l->sandbox_id);
		free(l->handle);
		free(l);
	}
}

bool executor_can_list(const struct executor *ex)
{
	return ex && ex->vt && VT_HAS(ex->vt, list);
}

void executor_forget(struct executor *ex, const char *sandbox_id, const char *handle)
{
	if (ex && ex->vt && VT_HAS(ex->vt, forget))
		ex->vt->forget(ex->state, sandbox_id, handle ? handle : "");
}

int executor_check_options(struct executor *ex, const char *options_json, char **ret_error)
{
	if (!ex || !ex->vt || !VT_HAS(ex->vt, check_options))
		return 0;
	return ex->vt->check_options(ex->state, options_json, ret_error);
}

/* What the executor says of how it works now, or NULL. */
const char *executor_status(struct executor *ex)
{
	if (!ex || !ex->vt || !VT_HAS(ex->vt, status))
		return NULL;
	return ex->vt->status(ex->state);
}

/* -EOPNOTSUPP if the executor cannot pause its sandboxes. */
int executor_pause(struct executor *ex, struct dagd_sandbox *sb, void *data, bool paused)
{
	if (!ex || !ex->vt || !VT_HAS(ex->vt, pause))
		return -EOPNOTSUPP;
	return ex->vt->pause(ex->state, sb, data, paused);
}

bool executor_full(const struct executor *ex)
{
	return ex->limit > 0 && ex->active >= ex->limit;
}

/* Load the private copy of ex's file and check what it exports; nothing of
 * the plugin runs yet. */
static int plugin_open(struct executor *ex, const struct dagd_executor **ret_vt)
{
	const struct dagd_executor *vt;
	char name[64];
	int r;

	r = plugin_copy(ex->path, &ex->fd);
	if (r < 0)
		return r;
	plugin_copy_name(ex->fd, name, sizeof(name));
	ex->dl = dlopen(name, RTLD_NOW | RTLD_LOCAL);
	if (!ex->dl)
		return errorf(-ENOEXEC, "%s: cannot load: %s", ex->path, dlerror());
	vt = dlsym(ex->dl, DAGD_EXECUTOR_SYMBOL);
	if (!vt)
		return errorf(-ENOEXEC, "%s: no symbol '%s': %s", ex->path, DAGD_EXECUTOR_SYMBOL, dlerror());
	if (vt->abi_version < 1 || vt->abi_version > DAGD_EXECUTOR_ABI_VERSION)
		return errorf(-EPROTO, "%s: built for executor ABI version %u, this dagd speaks versions 1 to %u",
			    ex->path, vt->abi_version, DAGD_EXECUTOR_ABI_VERSION);
	if (vt->size < DAGD_EXECUTOR_V1_SIZE)
		return errorf(-EPROTO, "%s: its struct dagd_executor is %u bytes, version %u needs %zu",
			    ex->path, vt->size, vt->abi_version, DAGD_EXECUTOR_V1_SIZE);
	if (!vt->name || !*vt->name || strspn(vt->name, "abcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(vt->name))
		return errorf(-EINVAL, "%s: executor name is missing or not of [a-z0-9_-]", ex->path);
	if (!vt->init || !vt->shutdown || !vt->spawn || !vt->cancel || !vt->adopt)
		return errorf(-EINVAL, "%s: executor '%s' lacks one of init, shutdown, spawn, cancel, adopt",
			    ex->path, vt->name);
	free(ex->name);
	ex->name = xstrdup(vt->name);
	*ret_vt = vt;
	return 0;
}

/* Start a plugin plugin_open() accepted. */
static int plugin_start(struct executor *ex, const struct dagd_executor *vt)
{
	json_object *opts = NULL, *v;
	char *err = NULL;
	int r;

	if (D.executor_options)
		json_object_object_get_ex(D.executor_options, vt->name, &opts);
	ex->limit = vt->max_concurrency;
	if (opts && json_object_object_get_ex(opts, "max_concurrency", &v) && json_object_is_type(v, json_type_int))
		ex->limit = (unsigned) json_object_get_int(v);
	ex->host = host_iface;
	/* the host's struct is the same for both versions: say the plugin's */
	ex->host.abi_version = vt->abi_version;
	ex->host.plugin_path = ex->path;
	r = vt->init(&ex->host, opts ? json_text(opts) : "{}", &ex->state, &err);
	if (r < 0) {
		r = errorf(r, "%s: executor '%s' failed to start: %s", ex->path, vt->name,
			 err ? err : strerror(-r));
		free(err);
		return r;
	}
	ex->vt = vt;
	return 0;
}

/* Unload ex's code and close its private copy. */
static void plugin_close(struct executor *ex)
{
	char name[64];
	void *again;

	if (ex->dl) {
		dlclose(ex->dl);
		ex->dl = NULL;
		/* An object that cannot be unloaded (marked nodelete, or C++
		 * with unique symbols) stays mapped under its name: keep that fd
		 * number, so that no later copy is given the name and taken
		 * for it. */
		plugin_copy_name(ex->fd, name, sizeof(name));
		again = dlopen(name, RTLD_LAZY | RTLD_NOLOAD);
		if (again) {
			dlclose(again);
			log_debug("%s stays mapped after its unload; its copy is kept", ex->path);
			ex->fd = -EBADF;
		}
	}
	closep(&ex->fd);
}

/* Which of the candidates cand[0..n) (in file name order) that name the same
 * executor is loaded: the one loaded from the same file before this reload,
 * else the one whose file is named for the executor ("docker.so" for
 * "docker"), else the first. */
static size_t incumbent(struct executor **cand, size_t n, char **prev)
{
	const char *base;
	size_t len;

	for (char **p = prev; p && *p; p += 2)
		if (strcmp(p[0], cand[0]->name) == 0)
			for (size_t i = 0; i < n; i++)
				if (strcmp(p[1], cand[i]->path) == 0)
					return i;
	len = strlen(cand[0]->name);
	for (size_t i = 0; i < n; i++) {
		base = strrchr(cand[i]->path, '/');
		base = base ? base + 1 : cand[i]->path;
		if (strncmp(base, cand[i]->name, len) == 0 && strcmp(base + len, ".so") == 0)
			return i;
	}
	return 0;
}

/* Refuse every plugin that names an executor another one names too, but for
 * the incumbent; the message names both files. */
static void refuse_duplicates(struct executor **exs, const struct dagd_executor **vts, size_t n, char **prev)
{
	_cleanup_free_ struct executor **cand = calloc(n ? n : 1, sizeof(*cand));
	size_t k, keep;

	if (!cand)
		abort();
	for (size_t i = 0; i < n; i++) {
		if (!vts[i])
			continue;
		k = 0;
		for (size_t j = i; j < n; j++)
			if (vts[j] && strcmp(exs[j]->name, exs[i]->name) == 0)
				cand[k++] = exs[j];
		if (k < 2)
			continue;
		keep = incumbent(cand, k, prev);
		for (size_t j = i; j < n; j++) {
			if (!vts[j] || exs[j] == cand[keep] || strcmp(exs[j]->name, cand[keep]->name) != 0)
				continue;
			errorf(-EEXIST, "%s: refused: %s names executor '%s' too, and keeps it",
			       exs[j]->path, cand[keep]->path, exs[j]->name);
			exs[j]->error = xstrdup(last_error());
			vts[j] = NULL;
		}
	}
}

static int name_cmp(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int is_plugin(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return n > 3 && d->d_name[0] != '.' && strcmp(d->d_name + n - 3, ".so") == 0;
}

/* Load every plugin of dir; prev is what was loaded before a reload, as
 * { name, path, ..., NULL }, to keep an executor where it was. */
static int plugins_load_keeping(const char *dir, char **prev)
{
	_cleanup_free_ const struct dagd_executor **vts = NULL;
	_cleanup_free_ struct executor **exs = NULL;
	struct dirent **list;
	struct executor **tail = &executors;
	int n, loaded = 0;

	host_iface.event = D.event;
	host_iface.state_dir = D.state_dir;
	host_iface.socket_path = D.socket_path;
	host_iface.instance = D.instance;
	if (!dir)
		return log_error_errno(-ENOENT, "no plugin directory: no executor is loaded");
	n = scandir(dir, &list, is_plugin, name_cmp);
	if (n < 0)
		return log_error_errno(-errno, "cannot read plugin directory '%s': %m", dir);
	exs = calloc(n ? n : 1, sizeof(*exs));
	vts = calloc(n ? n : 1, sizeof(*vts));
	if (!exs || !vts)
		abort();
	for (int i = 0; i < n; i++) {
		struct executor *ex = calloc(1, sizeof(*ex));

		if (!ex)
			abort();
		ex->fd = -EBADF;
		ex->path = xasprintf("%s/%s", dir, list[i]->d_name);
		ex->name = xstrdup(list[i]->d_name);
		ex->name[strlen(ex->name) - 3] = 0;
		if (plugin_open(ex, &vts[i]) < 0)
			ex->error = xstrdup(last_error());
		exs[i] = ex;
		*tail = ex;
		tail = &ex->next;
		free(list[i]);
	}
	free(list);
	refuse_duplicates(exs, vts, n, prev);
	for (int i = 0; i < n; i++) {
		struct executor *ex = exs[i];

		if (vts[i] && plugin_start(ex, vts[i]) < 0)
			ex->error = xstrdup(last_error());
		if (ex->error) {
			log_error("%s", ex->error);
			plugin_close(ex);
		} else {
			log_info("executor '%s' loaded from %s", ex->name, ex->path);
			loaded++;
		}
	}
	return loaded;
}

int plugins_load(const char *dir)
{
	return plugins_load_keeping(dir, NULL);
}

void plugins_unload(void)
{
	struct executor *next;

	for (struct executor *ex = executors; ex; ex = next) {
		next = ex->next;
		if (ex->vt)
			ex->vt->shutdown(ex->state);
		plugin_close(ex);
		free(ex->name);
		free(ex->path);
		free(ex->error);
		free(ex);
	}
	executors = NULL;
}

/* Unload every plugin and load the directory again; live sandboxes are
 * handed to the new instances by their handles.  An executor stays loaded
 * from the file it was loaded from, even if another file now names it too. */
int plugins_reload(void)
{
	char **prev;
	size_t n = 0;
	int r;

	for (struct executor *ex = executors; ex; ex = ex->next)
		n++;
	prev = calloc(2 * n + 1, sizeof(*prev));
	if (!prev)
		abort();
	n = 0;
	for (struct executor *ex = executors; ex; ex = ex->next)
		if (ex->vt) {
			prev[n++] = xstrdup(ex->name);
			prev[n++] = xstrdup(ex->path);
		}
	plugins_unload();
	r = plugins_load_keeping(D.plugin_dir, prev);
	for (char **p = prev; *p; p++)
		free(*p);
	free(prev);
	engine_readopt();
	return r;
}
