/*
 * child.c - short-lived helper programs (a cluster's command-line tools) run
 * from the host's sd-event loop: each with posix_spawn(), watched through a
 * pidfd, its stdout and stderr read as they come, killed when it overruns its
 * time limit, and at most `max_running` of one runner at a time (the rest
 * wait in order).  The children inherit the daemon's environment and never
 * its descriptors; stdin is /dev/null.  child_run_sync() is the blocking
 * form, for the calls that may block (init, list).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

extern char **environ;

/* What a child may write to stdout or stderr; the rest is dropped. */
#define CHILD_OUTPUT_MAX (8u << 20)

struct child_runner {
	sd_event *event;
	unsigned max_running, running;
	struct child *queue, *queue_tail;       /* waiting to start, in order */
	struct child *active;                   /* started */
};

struct buffer {
	char *data;
	size_t len, cap;
};

struct child {
	struct child_runner *runner;
	struct child *prev, *next;              /* in active; next only in the queue */
	char **argv;
	uint64_t timeout_usec;
	child_done_fn done;
	void *userdata;
	pid_t pid;
	int pidfd;
	int fds[2];                             /* stdout, stderr */
	sd_event_source *pid_source, *io_source[2], *timer;
	struct buffer out[2];
	bool timed_out, queued;
};

static int sys_pidfd_open(pid_t pid) {
	return (int) syscall(SYS_pidfd_open, pid, 0);
}

static void strv_free(char **v) {
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static char **strv_copy(const char *const *v) {
	size_t n = 0;
	char **c;

	while (v[n])
		n++;
	c = calloc(n + 1, sizeof(*c));
	for (size_t i = 0; c && i < n; i++)
		if (!(c[i] = strdup(v[i]))) {
			strv_free(c);
			return NULL;
		}
	return c;
}

/* Reads what is there of fd into b (never blocks); 0 at EOF, 1 if more may come. */
static int buffer_read(struct buffer *b, int fd) {
	for (;;) {
		char tmp[16384];
		ssize_t n = read(fd, tmp, sizeof(tmp));

		if (n == 0)
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? 1 : -errno;
		if (b->len + (size_t) n + 1 > b->cap && b->len + (size_t) n < CHILD_OUTPUT_MAX) {
			size_t cap = (b->len + (size_t) n + 1) * 2;
			char *p = realloc(b->data, cap);

			if (!p)
				return -ENOMEM;
			b->data = p;
			b->cap = cap;
		}
		if (b->len + (size_t) n + 1 <= b->cap) {
			memcpy(b->data + b->len, tmp, (size_t) n);
			b->len += (size_t) n;
			b->data[b->len] = '\0';
		}
	}
}

static void child_release(struct child *c) {
	for (int i = 0; i < 2; i++) {
		c->io_source[i] = sd_event_source_disable_unref(c->io_source[i]);
		if (c->fds[i] >= 0)
			close(c->fds[i]);
		c->fds[i] = -EBADF;
		free(c->out[i].data);
		c->out[i] = (struct buffer) {};
	}
	c->pid_source = sd_event_source_disable_unref(c->pid_source);
	c->timer = sd_event_source_disable_unref(c->timer);
	if (c->pidfd >= 0)
		close(c->pidfd);
	c->pidfd = -EBADF;
	strv_free(c->argv);
	c->argv = NULL;
}

static void runner_start_next(struct child_runner *r);

/* Out of the runner; its slot goes to the next in the queue. */
static void child_unlink(struct child *c) {
	struct child_runner *r = c->runner;

	if (c->queued) {
		struct child **p = &r->queue;

		r->queue_tail = NULL;
		while (*p && *p != c) {
			r->queue_tail = *p;
			p = &(*p)->next;
		}
		if (*p)
			*p = c->next;
		while (r->queue_tail && r->queue_tail->next)
			r->queue_tail = r->queue_tail->next;
		if (!r->queue)
			r->queue_tail = NULL;
		c->queued = false;
		return;
	}
	LIST_UNLINK(r->active, c);
	r->running--;
}

static void child_finish(struct child *c, int r, int status) {
	struct child_runner *runner = c->runner;
	struct child_result res = {
		.error = r,
		.status = status,
		.out = c->out[0].data ? c->out[0].data : "",
		.err = c->out[1].data ? c->out[1].data : "",
	};

	child_unlink(c);
	c->done(c, &res, c->userdata);
	child_release(c);
	free(c);
	runner_start_next(runner);
}

static int on_child_exit(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
	struct child *c = userdata;
	int status = 0;
	pid_t p;

	do
		p = waitpid(c->pid, &status, WNOHANG);
	while (p < 0 && errno == EINTR);
	if (p == 0)
		return 0;               /* not yet, after all */
	/* the child is gone: whatever it wrote is in the pipes */
	for (int i = 0; i < 2; i++)
		if (c->fds[i] >= 0)
			(void) buffer_read(&c->out[i], c->fds[i]);
	child_finish(c, c->timed_out ? -ETIME : p < 0 ? -errno : 0, status);
	return 0;
}

static int on_child_output(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
	struct child *c = userdata;
	int i = s == c->io_source[0] ? 0 : 1;

	if (buffer_read(&c->out[i], fd) <= 0) {
		c->io_source[i] = sd_event_source_disable_unref(c->io_source[i]);
		close(c->fds[i]);
		c->fds[i] = -EBADF;
	}
	return 0;
}

static int on_child_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
	struct child *c = userdata;

	c->timed_out = true;
	(void) kill(c->pid, SIGKILL);
	return 0;
}

/* posix_spawn() of argv with stdin /dev/null, stdout and stderr to pipes. */
static int spawn_piped(char *const *argv, pid_t *ret_pid, int ret_fds[2]) {
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	int out[2] = { -EBADF, -EBADF }, err[2] = { -EBADF, -EBADF };
	sigset_t none, dfl;
	int r;

	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
		r = -errno;
		goto fail;
	}
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	sigaddset(&dfl, SIGTERM);
	sigaddset(&dfl, SIGINT);
	sigaddset(&dfl, SIGHUP);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	(void) posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	(void) posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
	(void) posix_spawn_file_actions_adddup2(&fa, err[1], STDERR_FILENO);
	(void) posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	(void) posix_spawnattr_setsigmask(&at, &none);
	(void) posix_spawnattr_setsigdefault(&at, &dfl);
	r = -posix_spawnp(ret_pid, argv[0], &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (r < 0)
		goto fail;
	close(out[1]);
	close(err[1]);
	ret_fds[0] = out[0];
	ret_fds[1] = err[0];
	return 0;

fail:
	for (int i = 0; i < 2; i++) {
		if (out[i] >= 0)
			close(out[i]);
		if (err[i] >= 0)
			close(err[i]);
	}
	return r;
}

static int child_start(struct child *c) {
	sd_event *e = c->runner->event;
	int r;

	r = spawn_piped(c->argv, &c->pid, c->fds);
	if (r < 0)
		return r;
	c->pidfd = sys_pidfd_open(c->pid);
	if (c->pidfd < 0) {
		r = -errno;
		(void) kill(c->pid, SIGKILL);
		(void) waitpid(c->pid, NULL, 0);
		return r;
	}
	for (int i = 0; i < 2; i++) {
		(void) fcntl(c->fds[i], F_SETFL, O_NONBLOCK);
		r = sd_event_add_io(e, &c->io_source[i], c->fds[i], EPOLLIN, on_child_output, c);
		if (r < 0)
			goto fail;
	}
	r = sd_event_add_io(e, &c->pid_source, c->pidfd, EPOLLIN, on_child_exit, c);
	if (r >= 0 && c->timeout_usec > 0)
		r = sd_event_add_time_relative(e, &c->timer, CLOCK_MONOTONIC, c->timeout_usec, 10000,
					       on_child_timeout, c);
	if (r < 0)
		goto fail;
	return 0;

fail:
	(void) kill(c->pid, SIGKILL);
	(void) waitpid(c->pid, NULL, 0);
	return r;
}

static int on_start_failed(sd_event_source *s, void *userdata) {
	struct child *c = userdata;

	c->timer = sd_event_source_disable_unref(c->timer);
	child_finish(c, c->pid, 0);
	return 0;
}

static void runner_start_next(struct child_runner *r) {
	while (r->queue && (r->max_running == 0 || r->running < r->max_running)) {
		struct child *c = r->queue;
		int k;

		r->queue = c->next;
		if (!r->queue)
			r->queue_tail = NULL;
		c->queued = false;
		c->next = NULL;
		LIST_LINK(r->active, c);
		r->running++;
		k = child_start(c);
		if (k < 0) {
			/* reported from the loop, never from inside child_run() */
			child_release(c);
			c->pid = k;
			if (sd_event_add_defer(r->event, &c->timer, on_start_failed, c) < 0) {
				child_unlink(c);
				free(c);        /* nothing can report it: only when out of memory */
			}
		}
	}
}

int child_runner_new(sd_event *event, unsigned max_running, struct child_runner **ret) {
	struct child_runner *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->event = event;
	r->max_running = max_running;
	*ret = r;
	return 0;
}

void child_kill(struct child *c) {
	if (!c)
		return;
	if (!c->queued && c->pid > 0) {
		(void) kill(c->pid, SIGKILL);
		while (waitpid(c->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	child_unlink(c);
	child_release(c);
	free(c);
}

struct child_runner *child_runner_free(struct child_runner *r) {
	if (!r)
		return NULL;
	while (r->queue)
		child_kill(r->queue);
	while (r->active)
		child_kill(r->active);
	free(r);
	return NULL;
}

int child_run(struct child_runner *r, const char *const *argv, uint64_t timeout_usec, child_done_fn done,
	      void *userdata, struct child **ret) {
	struct child *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->argv = strv_copy(argv);
	if (!c->argv) {
		free(c);
		return -ENOMEM;
	}
	c->runner = r;
	c->timeout_usec = timeout_usec;
	c->done = done;
	c->userdata = userdata;
	c->pidfd = c->fds[0] = c->fds[1] = -EBADF;
	c->queued = true;
	if (r->queue_tail)
		r->queue_tail->next = c;
	else
		r->queue = c;
	r->queue_tail = c;
	if (ret)
		*ret = c;
	runner_start_next(r);
	return 0;
}

static uint64_t mono_usec(void) {
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

int child_run_sync(const char *const *argv, uint64_t timeout_usec, int *ret_status, char **ret_out,
		   char **ret_err) {
	_cleanup_free_ char **copy = NULL;
	struct buffer out[2] = {};
	uint64_t deadline = mono_usec() + timeout_usec;
	int fds[2], status = 0, r;
	size_t n = 0;
	pid_t pid;

	while (argv[n])
		n++;
	copy = calloc(n + 1, sizeof(*copy));
	if (!copy)
		return -ENOMEM;
	memcpy(copy, argv, n * sizeof(*copy));
	r = spawn_piped(copy, &pid, fds);
	if (r < 0)
		return r;
	while (fds[0] >= 0 || fds[1] >= 0) {
		struct pollfd p[2] = { { .fd = fds[0], .events = POLLIN }, { .fd = fds[1], .events = POLLIN } };
		uint64_t now = mono_usec();

		if (now >= deadline) {
			r = -ETIME;
			break;
		}
		if (poll(p, 2, (int) ((deadline - now) / 1000) + 1) < 0 && errno != EINTR) {
			r = -errno;
			break;
		}
		for (int i = 0; i < 2; i++)
			if (fds[i] >= 0 && p[i].revents && buffer_read(&out[i], fds[i]) <= 0) {
				close(fds[i]);
				fds[i] = -1;
			}
	}
	for (int i = 0; i < 2; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (r < 0)
		(void) kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (r >= 0) {
		char *o = out[0].data ? out[0].data : strdup(""), *e = out[1].data ? out[1].data : strdup("");

		if (o && e) {
			*ret_status = status;
			*ret_out = o;
			*ret_err = e;
			return 0;
		}
		if (!out[0].data)
			free(o);
		if (!out[1].data)
			free(e);
		r = -ENOMEM;
	}
	free(out[0].data);
	free(out[1].data);
	return r;
}
