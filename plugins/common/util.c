/*
 * util.c - small helpers the executors share: error messages for the host,
 * URL and shell quoting, reading options.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "common.h"

/* The daemon gives a sandbox this PATH when it has none itself. */
#define HOST_DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

char *strdupf(const char *format, ...) {
	va_list ap;
	char *s;

	va_start(ap, format);
	if (vasprintf(&s, format, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

int errorf(char **ret_error, int r, const char *format, ...) {
	va_list ap;
	char *m;

	if (!ret_error)
		return r;
	errno = -r;
	va_start(ap, format);
	if (vasprintf(&m, format, ap) < 0)
		m = NULL;
	va_end(ap);
	*ret_error = m;
	return r;
}

char *url_escape(const char *s) {
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	char *out = malloc(3 * n + 1), *p = out;

	if (!out)
		return NULL;
	for (; *s; s++) {
		unsigned char c = (unsigned char) *s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '.' || c == '_' || c == '~' || c == '-')
			*p++ = (char) c;
		else {
			*p++ = '%';
			*p++ = hex[c >> 4];
			*p++ = hex[c & 15];
		}
	}
	*p = '\0';
	return out;
}

char *shell_quote(const char *s) {
	size_t n = 2;
	char *out, *p;

	for (const char *c = s; *c; c++)
		n += *c == '\'' ? 4 : 1;
	out = malloc(n + 1);
	if (!out)
		return NULL;
	p = out;
	*p++ = '\'';
	for (; *s; s++) {
		if (*s == '\'') {
			memcpy(p, "'\\''", 4);
			p += 4;
		} else
			*p++ = *s;
	}
	*p++ = '\'';
	*p = '\0';
	return out;
}

int type_error(char **ret_error, const char *key, const char *want) {
	return errorf(ret_error, -EINVAL, "option '%s' must be %s", key, want);
}

/* o, parsed: a JSON object whose keys are all known. */
int parse_object(const char *json, const char *const *known, json_object **ret, char **ret_error) {
	_cleanup_json_ json_object *o = json_tokener_parse(json ? json : "{}");

	if (!o || !json_object_is_type(o, json_type_object))
		return errorf(ret_error, -EINVAL, "the options are not a JSON object");
	json_object_object_foreach(o, key, val) {
		_cleanup_free_ char *list = NULL;
		size_t i, len = 0;

		for (i = 0; known[i] && strcmp(known[i], key) != 0; i++)
			;
		if (known[i])
			continue;
		for (i = 0; known[i]; i++)
			len += strlen(known[i]) + 2;
		list = calloc(1, len + 1);
		for (i = 0; list && known[i]; i++)
			strcat(strcat(list, i ? ", " : ""), known[i]);
		return errorf(ret_error, -EINVAL, "unknown option '%s' (known: %s)", key, list ? list : "?");
	}
	*ret = TAKE_PTR(o);
	return 0;
}

/* o's key as a string, or NULL if absent. */
int get_string(json_object *o, const char *key, const char **ret, char **ret_error) {
	json_object *v;

	*ret = NULL;
	if (!json_object_object_get_ex(o, key, &v) || !v)
		return 0;
	if (!json_object_is_type(v, json_type_string) || json_object_get_string_len(v) == 0)
		return type_error(ret_error, key, "a non-empty string");
	*ret = json_object_get_string(v);
	return 0;
}

/* A number from 0 to max, or absent. */
int get_number(json_object *o, const char *key, double max, double *ret, char **ret_error) {
	json_object *v;
	double n;

	if (!json_object_object_get_ex(o, key, &v) || !v)
		return 0;
	n = json_object_get_double(v);
	if ((!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double)) ||
	    n < 0 || n > max)
		return errorf(ret_error, -EINVAL, "option '%s' must be a number from 0 to %g", key, max);
	*ret = n;
	return 0;
}

/* The host an executor's init() was given: of an ABI it knows, with the
 * event loop, the log, the sandbox callbacks and the instance (and the
 * state directory, for those that keep files). */
int host_check(const struct dagd_host *host, bool state_dir, char **ret_error) {
	if (!host || host->abi_version < 1 ||
	    host->size < offsetof(struct dagd_host, sandbox_exited) + sizeof(host->sandbox_exited))
		return errorf(ret_error, -EINVAL, "unsupported host interface");
	if (!host->event || !host->log || !host->sandbox_started || !host->sandbox_output ||
	    !host->sandbox_exited || !host->instance || (state_dir && (!host->state_dir || !*host->state_dir)))
		return errorf(ret_error, -EINVAL, "the host left out the event loop, its instance, %sa callback",
			      state_dir ? "its state directory or " : "or ");
	return 0;
}

/* Bytes: a number (not below 0), or a string of digits and a unit (none, b,
 * k, m, g, as kb or kib too). */
int parse_size(json_object *v, int64_t *ret) {
	static const struct {
		const char *suffix;
		unsigned shift;
	} units[] = {
		{ "", 0 }, { "b", 0 },
		{ "k", 10 }, { "kb", 10 }, { "kib", 10 },
		{ "m", 20 }, { "mb", 20 }, { "mib", 20 },
		{ "g", 30 }, { "gb", 30 }, { "gib", 30 },
	};
	const char *s;
	char *end;
	unsigned long long n;

	if (json_object_is_type(v, json_type_int)) {
		int64_t i = json_object_get_int64(v);

		if (i < 0)
			return -ERANGE;
		*ret = i;
		return 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return -EINVAL;
	s = json_object_get_string(v);
	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno)
		return -ERANGE;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcasecmp(end, units[i].suffix) != 0)
			continue;
		if (n > (unsigned long long) INT64_MAX >> units[i].shift)
			return -ERANGE;
		*ret = (int64_t) (n << units[i].shift);
		return 0;
	}
	return -EINVAL;
}

int get_bool(json_object *o, const char *key, bool *ret, char **ret_error) {
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !v)
		return 0;
	if (!json_object_is_type(v, json_type_boolean))
		return type_error(ret_error, key, "true or false");
	*ret = json_object_get_boolean(v);
	return 0;
}

/* An object whose values are all strings, or NULL if absent. */
int get_string_map(json_object *o, const char *key, json_object **ret, char **ret_error) {
	json_object *v;

	*ret = NULL;
	if (!json_object_object_get_ex(o, key, &v) || !v)
		return 0;
	if (!json_object_is_type(v, json_type_object))
		return type_error(ret_error, key, "an object of strings");
	json_object_object_foreach(v, k, x) {
		if (!json_object_is_type(x, json_type_string))
			return errorf(ret_error, -EINVAL, "option '%s': the value of '%s' must be a string", key, k);
		if (!*k)
			return errorf(ret_error, -EINVAL, "option '%s': empty name", key);
	}
	*ret = v;
	return 0;
}

/* Whether "KEY=VALUE" is the PATH or HOME the daemon passes on from its own
 * environment: meaningless in an image, which has its own. */
bool host_default(const char *kv) {
	const char *v;

	if (strncmp(kv, "PATH=", 5) == 0) {
		v = getenv("PATH");
		return strcmp(kv + 5, v ? v : HOST_DEFAULT_PATH) == 0;
	}
	if (strncmp(kv, "HOME=", 5) == 0) {
		v = getenv("HOME");
		return v && strcmp(kv + 5, v) == 0;
	}
	return false;
}

/* mkdir -p: each directory of path that is missing is made with mode. */
int mkdir_p(const char *path, mode_t mode) {
	_cleanup_free_ char *p = strdup(path);

	if (!p)
		return -ENOMEM;
	for (char *c = p + 1; ; c++) {
		if (*c != '/' && *c != '\0')
			continue;
		char was = *c;
		*c = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return -errno;
		*c = was;
		if (!was)
			return 0;
	}
}

/* Opens (O_CREAT) a file in an attempt's log directory, which the host makes
 * only when something is written there: made here too if it is missing. */
int open_in_log_dir(const char *path, int flags) {
	int fd = open(path, flags | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);

	if (fd < 0 && errno == ENOENT) {
		_cleanup_free_ char *dir = strdup(path);
		char *slash = dir ? strrchr(dir, '/') : NULL;

		if (!slash || slash == dir)
			return -ENOENT;
		*slash = 0;
		(void) mkdir_p(dir, 0750);
		fd = open(path, flags | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
	}
	return fd < 0 ? -errno : fd;
}
