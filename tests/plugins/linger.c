/*
 * linger.c - an executor whose sandboxes start at once and never end by
 * themselves: each task stays running until a client reports it with
 * task.complete (or an operator cancels it).  What the benchmark of
 * task.complete drives.  A sandbox's task token, which a real sandbox finds
 * in its environment, is appended as "TASK_ID TOKEN" to STATE_DIR/linger.tokens,
 * where the client that reports for it reads it.  Built from the public
 * header only, like any out-of-tree plugin.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "executor.h"

#define TOKEN_VAR "DAGD_TASK_TOKEN="

struct linger_sandbox {
	struct dagd_sandbox *sb;
	sd_event_source *defer;
	struct linger_sandbox *prev, *next;
};

static const struct dagd_host *host;
static int tokens_fd = -EBADF;
static struct linger_sandbox *lingering;       /* every sandbox, to free at shutdown */

static struct linger_sandbox *linger_new(struct dagd_sandbox *sb)
{
	struct linger_sandbox *x = calloc(1, sizeof(*x));

	if (!x)
		return NULL;
	x->sb = sb;
	x->next = lingering;
	if (lingering)
		lingering->prev = x;
	lingering = x;
	return x;
}

static void linger_free(struct linger_sandbox *x)
{
	if (x->prev)
		x->prev->next = x->next;
	else
		lingering = x->next;
	if (x->next)
		x->next->prev = x->prev;
	sd_event_source_disable_unref(x->defer);
	free(x);
}

static int linger_init(const struct dagd_host *h, const char *options_json, void **ret_state, char **ret_error)
{
	char *path;
	int r;

	host = h;
	if (asprintf(&path, "%s/linger.tokens", h->state_dir) < 0)
		return -ENOMEM;
	tokens_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	free(path);
	if (tokens_fd < 0) {
		r = -errno;
		if (asprintf(ret_error, "cannot open linger.tokens: %s", strerror(-r)) < 0)
			*ret_error = NULL;
		return r;
	}
	*ret_state = NULL;
	return 0;
}

/* the sandboxes "go on" (a restart adopts them); only their records go */
static void linger_shutdown(void *state)
{
	while (lingering)
		linger_free(lingering);
	if (tokens_fd >= 0)
		close(tokens_fd);
	tokens_fd = -EBADF;
}

static int linger_spawn(void *state, struct dagd_sandbox *sb, const struct dagd_spawn *spec, void **ret_data,
		      char **ret_error)
{
	struct linger_sandbox *x;
	const char *token = "";
	char line[256];
	int n;

	for (const char *const *e = spec->envp; *e; e++)
		if (strncmp(*e, TOKEN_VAR, strlen(TOKEN_VAR)) == 0)
			token = *e + strlen(TOKEN_VAR);
	n = snprintf(line, sizeof(line), "%s %s\n", spec->task_id, token);
	if (n < 0 || (size_t) n >= sizeof(line) || write(tokens_fd, line, n) != n)
		return -EIO;
	x = linger_new(sb);
	if (!x)
		return -ENOMEM;
	host->sandbox_started(sb, spec->sandbox_id);
	*ret_data = x;
	return 0;
}

static int on_defer(sd_event_source *s, void *userdata)
{
	struct linger_sandbox *x = userdata;
	struct dagd_exit e = { .code = -1, .signal = 15 };
	struct dagd_sandbox *sb = x->sb;

	linger_free(x);
	host->sandbox_exited(sb, &e);
	return 0;
}

/* ends it from the loop, as if it died of SIGTERM */
static int linger_cancel(void *state, struct dagd_sandbox *sb, void *data, uint64_t grace_usec)
{
	struct linger_sandbox *x = data;

	if (x->defer)
		return 0;
	return sd_event_add_defer(host->event, &x->defer, on_defer, x);
}

/* a lingering sandbox outlives the daemon: after a restart it still runs */
static int linger_adopt(void *state, struct dagd_sandbox *sb, const struct dagd_spawn *spec, const char *handle,
		      void **ret_data, char **ret_error)
{
	struct linger_sandbox *x = linger_new(sb);

	if (!x)
		return -ENOMEM;
	*ret_data = x;
	return 0;
}

DAGD_EXECUTOR_EXPORT const struct dagd_executor dagd_executor = {
	.abi_version = DAGD_EXECUTOR_ABI_VERSION,
	.size = sizeof(struct dagd_executor),
	.name = "linger",
	.description = "runs nothing: every sandbox runs until its task is reported or cancelled",
	.init = linger_init,
	.shutdown = linger_shutdown,
	.spawn = linger_spawn,
	.cancel = linger_cancel,
	.adopt = linger_adopt,
};
