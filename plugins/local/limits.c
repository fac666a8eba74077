/*
 * limits.c - the local executor's options that limit a task's resources:
 *
 *   memory_max   bytes, or a string like "64m" (k, m, g), at least 1m; no
 *                swap on top of it.  A task killed for want of memory ends
 *                with the reason "oom".
 *   pids_max     most processes (and threads) at once, 1 or more
 *   cpu_max      how many CPUs' time, e.g. 0.5, from 0.01
 *
 * The executor's own (--executor-options local='{...}') are every task's,
 * unless the project's or the task's executor_options name another value.
 * The helper sets them in the task's cgroups (helper/limits.c), and says in
 * its hello whether it can and how: a task that asks for a limit the helper
 * cannot set is refused at its start, never run without it.
 */
#include <math.h>
#include <strings.h>

#include "local.h"

#define MEMORY_MIN (1ll << 20)
#define PIDS_MAX 4194304                /* the kernel's most */
#define CPUS_MIN 0.01                   /* a quota of 1 ms a period, the kernel's least */
#define CPUS_MAX 10000.0

static const char *const keys[] = { "memory_max", "pids_max", "cpu_max" };
static const char *const controllers[] = { "memory", "pids", "cpu" };

/* The limits that o names, over those *lim has (the others left as they
 * are). */
int limits_parse(json_object *o, struct local_limits *lim, char **ret_error) {
	struct local_limits l = *lim;
	json_object *v;

	if (json_object_object_get_ex(o, "memory_max", &v) && v &&
	    (parse_size(v, &l.memory) < 0 || l.memory < MEMORY_MIN))
		return type_error(ret_error, "memory_max", "a size in bytes, or like \"64m\" (k, m, g), of at least 1m");
	if (json_object_object_get_ex(o, "pids_max", &v) && v) {
		if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 1 ||
		    json_object_get_int64(v) > PIDS_MAX)
			return type_error(ret_error, "pids_max", "a whole number of processes from 1 to 4194304");
		l.pids = json_object_get_int64(v);
	}
	if (json_object_object_get_ex(o, "cpu_max", &v) && v) {
		double cpus = json_object_get_double(v);

		if ((!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double)) ||
		    !(cpus >= CPUS_MIN) || cpus > CPUS_MAX)
			return type_error(ret_error, "cpu_max", "a number of CPUs from 0.01 to 10000, e.g. 0.5");
		l.cpu = llround(cpus * PROTO_CPU_PERIOD_USEC);
	}
	*lim = l;
	return 0;
}

/* Whether the helper's hello ("cgroup1 memory pids cpu": how, then the
 * controllers) names the controller. */
static bool has_controller(const char *by, const char *name) {
	for (const char *p = by + strcspn(by, " "); *p; ) {
		size_t n;

		p += strspn(p, " ");
		n = strcspn(p, " ");
		if (n == strlen(name) && strncmp(p, name, n) == 0)
			return true;
		p += n;
	}
	return false;
}

bool limits_any(const struct local_limits *lim) {
	return lim->memory > 0 || lim->pids > 0 || lim->cpu > 0;
}

/* Whether the helper can set these limits, by its hello. */
int limits_check(const struct local *l, const struct local_limits *lim, char **ret_error) {
	const int64_t v[] = { lim->memory, lim->pids, lim->cpu };
	for (size_t i = 0; i < 3; i++) {
		if (v[i] <= 0)
			continue;
		if (l->helper_version < 3)
			return errorf(ret_error, -EOPNOTSUPP, "%s: the local helper that runs now is an older one, which "
				      "cannot limit a task; a new one starts once it has no task left", keys[i]);
		if (!has_controller(l->limits_by, controllers[i]))
			return errorf(ret_error, -EOPNOTSUPP, "%s needs the cgroup %s controller, which the local "
				      "helper cannot use here", keys[i], controllers[i]);
	}
	return 0;
}

/* The limits as the T message's first three fields. */
void limits_fields(const struct local_limits *lim, char ret[3][24]) {
	snprintf(ret[0], sizeof(ret[0]), "%lld", (long long) lim->memory);
	snprintf(ret[1], sizeof(ret[1]), "%lld", (long long) lim->pids);
	snprintf(ret[2], sizeof(ret[2]), "%lld", (long long) lim->cpu);
}

/* A few words on whether and how the helper limits tasks, for status(). */
const char *limits_status(const struct local *l) {
	static char s[160];
	const char *by = l->limits_by;
	size_t len;

	if (l->helper_version < 3)
		return "no limits (an older helper)";
	if (!*by)
		return "no limits (memory_max, pids_max, cpu_max): no cgroup controller the helper can use";
	len = (size_t) snprintf(s, sizeof(s), "limits by cgroup %s:", strncmp(by, "cgroup2", 7) == 0 ? "v2" : "v1");
	for (size_t i = 0; i < 3 && len < sizeof(s); i++)
		len += (size_t) snprintf(s + len, sizeof(s) - len, "%s %s%s", i ? "," : "",
					 has_controller(by, controllers[i]) ? "" : "not ", keys[i]);
	return s;
}
