/*
 * executor.h - the dagd executor plugin ABI.
 *
 * This is the one public header of dagd.  An executor plugin is a shared
 * object in the plugin directory that exports one symbol, DAGD_EXECUTOR_SYMBOL,
 * a `const struct dagd_executor`.  Its first field is the ABI version and the
 * second its size, so the host can refuse a plugin built for another ABI before
 * it touches anything else.  New members are only ever added at the end of
 * these structures; a plugin built against an older, smaller struct keeps
 * working.
 *
 * The host hands the plugin a `struct dagd_host`: the daemon's sd-event loop,
 * logging, and the calls a plugin makes to report that a sandbox started,
 * produced output, or exited.  A plugin never blocks the loop, links nothing of
 * the daemon, and never calls back into the host from another thread.
 *
 * Errors cross the boundary as a negative errno plus, optionally, a message
 * the plugin allocates with malloc() and the host frees with free().
 *
 * Life of a sandbox:
 *
 *   spawn()   ->  host->sandbox_started(sb, handle)    (once, maybe inside spawn)
 *             ->  host->sandbox_output(sb, ...)        (any number of times)
 *             ->  host->sandbox_exited(sb, &exit)      (exactly once)
 *
 *             ->  forget(sandbox_id, handle)           (version 2: after the commit)
 *
 * After sandbox_exited() returns, the plugin frees what it kept for the
 * sandbox and never names `sb` again; the host never calls cancel() for it.
 * The handle given to sandbox_started() is stored in the database.  When the
 * daemon restarts, or reloads its plugins, it calls adopt() with that handle
 * so the plugin can find the sandbox again; the life then goes on from
 * "started".
 *
 * Version 2: exactly once across crashes.  The host's database and the
 * executor's sandboxes are two places; the daemon may die between writing one
 * and the other.  So the host never relies on a handle it may not have
 * committed yet, and the executor never forgets an exit the host may not have
 * committed yet:
 *
 *   - list() reports every sandbox the executor still has for this daemon
 *     instance, by the sandbox id the host gave spawn(): running ones, and
 *     ended ones whose exit it still holds.  The host calls it at start and
 *     after a reload, before any adopt(), and matches the answer to the
 *     attempts it has claimed: a claimed attempt whose sandbox is listed is
 *     adopted (never started twice), one that is not listed and has no handle
 *     is started again (it never ran), and a listed sandbox that no attempt
 *     owns is given to forget().
 *   - An executor keeps what records an exit (an exit record, a stopped
 *     container, a remote sandbox) until the host calls forget(): the exit is
 *     then on disk.  If the daemon dies before that, list() shows the sandbox
 *     again, adopt() reports its exit again, and the host judges it once.
 *   - forget() of a sandbox that still runs stops it the hard way first.
 *
 * A version-1 plugin (without these members) keeps loading; for it the host
 * relies on stored handles alone, as before.
 *
 * Version 3 adds pause(): an operator may stop a running sandbox's processes
 * and let them go on later (task.pause, task.resume).  Without it, or when it
 * answers -EOPNOTSUPP, the host refuses to pause that executor's tasks.  And
 * status(): a few words on how the executor works now, for the operator.
 *
 * Version 4 adds inputs_path at the end of struct dagd_spawn: the results of
 * a task's dependencies, which a plugin makes available in its sandbox (see
 * there).  Nothing else changed: a version-3 plugin loads and runs as before
 * (the host writes no inputs file for it: its sandboxes get no DAGD_INPUTS;
 * templates are put in all the same).
 */
#ifndef DAGD_EXECUTOR_H
#define DAGD_EXECUTOR_H

#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DAGD_EXECUTOR_ABI_VERSION 4
#define DAGD_EXECUTOR_SYMBOL "dagd_executor"

/* Mark the one symbol a plugin exports, so that it can build with
 * -fvisibility=hidden and show nothing else:
 *   DAGD_EXECUTOR_EXPORT const struct dagd_executor dagd_executor = { ... }; */
#define DAGD_EXECUTOR_EXPORT __attribute__((visibility("default")))

/* A sandbox as the host knows it.  Opaque to plugins. */
struct dagd_sandbox;

/* What to run.  Valid only for the duration of the spawn() or adopt() call:
 * copy what you keep. */
struct dagd_spawn {
	const char *sandbox_id;         /* host-assigned, unique: "<task>.<attempt>" */
	const char *task_id;            /* "t-12" */
	const char *project_id;         /* "p-1" */
	unsigned attempt;               /* 1, 2, ... */
	const char *const *argv;        /* NULL-terminated; a shell string arrives as sh -c */
	const char *const *envp;        /* NULL-terminated "KEY=VALUE": the task's env and DAGD_* */
	const char *cwd;                /* NULL: the plugin's default */
	const char *log_path;           /* the attempt's log file "…/N.log"; output is appended
					 * there.  A sandbox that cannot report on the socket
					 * may have its result (JSON) left at "…/N.result.json":
					 * on exit 0 the host takes it as the task's result */
	const char *options_json;       /* executor options: the project's, overlaid by the task's */
	uint64_t timeout_usec;          /* 0: none; the host enforces it, this is information */
	/* version 4 (read it only when host->abi_version >= 4): NULL, or the
	 * file beside the log ("…/N.inputs.json") holding what the task's
	 * dependencies reported, {"<name or id>": <result or null>, ...}.  envp
	 * has DAGD_INPUTS set to this path, which a sandbox on this host can
	 * read; a plugin whose sandbox sees other files makes this one
	 * available inside (read-only) and sets DAGD_INPUTS to where it is. */
	const char *inputs_path;
};

/* How a sandbox ended. */
struct dagd_exit {
	int code;                       /* exit status, or -1 if it did not exit normally */
	int signal;                     /* terminating signal, or 0 */
	const char *reason;             /* NULL, or one word: "oom", "lost", "error", "cancelled" */
	const char *message;            /* NULL, or what a person needs to know */
	/* version 3: the sandbox left its result beside its log, as
	 * "<attempt>.result.json" (for sandboxes that cannot reach the socket);
	 * the host reads that file only then.  From a plugin of an older
	 * version (whose struct ends before this) the host always looks. */
	int result_left;
};

/* The host's side, given to init().  Valid until shutdown() returns. */
struct dagd_host {
	uint32_t abi_version;
	uint32_t size;
	sd_event *event;                /* the daemon's loop; add sources to it, never run it */
	const char *state_dir;          /* the daemon's state directory */
	const char *socket_path;        /* where a sandbox reports (DAGD_SOCKET) */
	const char *instance;           /* names this daemon, e.g. to label sandboxes */

	/* priority is a syslog LOG_* level; sb may be NULL */
	void (*log)(struct dagd_sandbox *sb, int priority, const char *format, ...)
		__attribute__((format(printf, 3, 4)));

	/* handle: the plugin's own name for the sandbox (a pid, a container id),
	 * what adopt() receives after a restart; NUL-terminated, at most 1 KiB */
	void (*sandbox_started)(struct dagd_sandbox *sb, const char *handle);
	/* appended to the attempt's log file */
	void (*sandbox_output)(struct dagd_sandbox *sb, const void *data, size_t size);
	void (*sandbox_exited)(struct dagd_sandbox *sb, const struct dagd_exit *exit);
	const char *(*sandbox_id)(const struct dagd_sandbox *sb);

	/* ---- added later: a plugin checks `size` before using these, e.g.
	 * host->size >= offsetof(struct dagd_host, plugin_path) + sizeof(char *) ---- */

	/* The plugin's file as installed, e.g. ".../plugins/local.so".  The
	 * host loads a private copy of that file (so that rewriting it cannot
	 * touch running code), so dladdr() names "/proc/self/fd/N": find what
	 * is installed beside the plugin from this path instead. */
	const char *plugin_path;
};

/* What a plugin exports.  `state` is the plugin's own, from init(); `data` is
 * what spawn() or adopt() returned for that sandbox. */
struct dagd_executor {
	uint32_t abi_version;           /* DAGD_EXECUTOR_ABI_VERSION */
	uint32_t size;                  /* sizeof(struct dagd_executor) */
	const char *name;               /* what projects and tasks name: [a-z0-9_-]+ */
	const char *description;
	unsigned max_concurrency;       /* default limit; 0: no limit of its own */

	/* options_json: the operator's options for this executor, "{}" if none */
	int (*init)(const struct dagd_host *host, const char *options_json,
		    void **ret_state, char **ret_error);
	/* stop watching and free everything; sandboxes keep running, to be adopted */
	void (*shutdown)(void *state);
	/* start creating the sandbox; 0 means sandbox_exited() will follow,
	 * < 0 means nothing was started and nothing will be reported.  Both
	 * sandbox_started() and sandbox_exited() may come inside spawn(), which
	 * must then return 0 */
	int (*spawn)(void *state, struct dagd_sandbox *sb, const struct dagd_spawn *spec,
		     void **ret_data, char **ret_error);
	/* stop the sandbox: SIGTERM or the like, the hard way after grace_usec */
	int (*cancel)(void *state, struct dagd_sandbox *sb, void *data, uint64_t grace_usec);
	/* find a sandbox again by its handle; 0: watching it (sandbox_exited() follows,
	 * maybe at once), < 0: it is gone, and the attempt fails as lost (retried
	 * as the task allows); the host asks nothing more of that sandbox */
	int (*adopt)(void *state, struct dagd_sandbox *sb, const struct dagd_spawn *spec,
		     const char *handle, void **ret_data, char **ret_error);

	/* ---- version 2; the host checks `size` before using any of these ---- */

	/* Report every sandbox of this daemon instance the executor has, running
	 * or ended and not yet forgotten: found(ctx, sandbox_id, handle) for each,
	 * before returning.  It may block, for a bounded time (it runs before the
	 * daemon answers anyone).  < 0: the executor cannot tell; the host then
	 * relies on stored handles and starts nothing again that has none. */
	int (*list)(void *state, void (*found)(void *ctx, const char *sandbox_id, const char *handle),
		    void *ctx, char **ret_error);
	/* The exit of this sandbox is on disk, or no attempt owns it: stop it if
	 * it still runs, and delete everything that records it.  Never blocks;
	 * failures are the plugin's to log and retry (or to sweep later). */
	void (*forget)(void *state, const char *sandbox_id, const char *handle);
	/* Check executor options before they are accepted (task.add,
	 * project.create/update): the project's options overlaid by the task's,
	 * a JSON object.  Unknown and ill-typed options are refused here; what
	 * is missing may still come from the task, so a required option is
	 * checked at spawn().  0: fine; < 0 and a message naming the option. */
	int (*check_options)(void *state, const char *options_json, char **ret_error);

	/* ---- version 3 ---- */

	/* Stop (paused 1) or let go on (paused 0) every process of a running
	 * sandbox, at once and without waiting: a stopped sandbox keeps its
	 * state, and a cancel still ends it.  NULL, or -EOPNOTSUPP: this executor
	 * cannot; the operator's task.pause is then refused. */
	int (*pause)(void *state, struct dagd_sandbox *sb, void *data, int paused);
	/* How the executor works now, in a few words for `dagctl executors`
	 * (e.g. how it contains tasks); the plugin's string, valid until the
	 * next call.  NULL: nothing to say. */
	const char *(*status)(void *state);
};

/* The size of a version-1 struct dagd_executor, which a version-2 host
 * still loads. */
#define DAGD_EXECUTOR_V1_SIZE offsetof(struct dagd_executor, list)

#ifdef __cplusplus
}
#endif

#endif
