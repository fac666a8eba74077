/*
 * spool.c - the spool directory the compute nodes share with dagd.  A job
 * named NAME ("dagd-<instance hash>-<sandbox id>") has there:
 *
 *   NAME.sh           its wrapper script, what sbatch submits
 *   NAME.out          its output (stdout and stderr), copied into the
 *                     attempt's log as it grows
 *   NAME.exit         how its command ended: "exited N" or "killed S", then
 *                     "job ID"; written to NAME.exit.tmp and renamed
 *   NAME.result.json  what the task wrote to $DAGD_RESULT_FILE
 *   NAME.inputs.json  a copy of the attempt's inputs file ($DAGD_INPUTS)
 *
 * They stay until the host forgets the sandbox (after it committed the exit).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "slurm.h"

/* The largest result kept (the host reads at most 256 KiB). */
#define RESULT_MAX (256u * 1024)

void instance_hash(const char *key, char ret[13]) {
	uint64_t h = 0xcbf29ce484222325ULL;        /* FNV-1a */

	for (const unsigned char *p = (const unsigned char *) key; *p; p++)
		h = (h ^ *p) * 0x100000001b3ULL;
	snprintf(ret, 13, "%012llx", (unsigned long long) (h & 0xffffffffffffULL));
}

char *spool_path(const char *spool, const char *name, const char *suffix) {
	return strdupf("%s/%s%s", spool, name, suffix);
}

int write_file_atomic(const char *path, const char *text, mode_t mode) {
	_cleanup_free_ char *tmp = strdupf("%s.tmp", path);
	size_t n = strlen(text);
	int fd, r = 0;

	if (!tmp)
		return -ENOMEM;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, mode);
	if (fd < 0)
		return -errno;
	if (write(fd, text, n) != (ssize_t) n)
		r = errno ? -errno : -EIO;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		(void) unlink(tmp);
	return r;
}

int exit_file_read(const char *path, struct job_exit *ret) {
	char buf[256], word[16];
	struct job_exit e = { .code = -1 };
	ssize_t n;
	int fd, v;
	const char *job;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	if (sscanf(buf, "%15s %d", word, &v) != 2)
		return -EBADMSG;
	if (strcmp(word, "exited") == 0 && v >= 0 && v < 256)
		e.code = v;
	else if (strcmp(word, "killed") == 0 && v > 0 && v < 65)
		e.signal = v;
	else
		return -EBADMSG;
	job = strstr(buf, "\njob ");
	if (job)
		sscanf(job + 5, "%31[0-9_]", e.job_id);
	*ret = e;
	return 0;
}

int spool_list_exits(const char *spool, const char *prefix,
		     void (*found)(void *ctx, const char *sandbox_id, const char *job_id), void *ctx) {
	DIR *d = opendir(spool);
	struct dirent *de;
	size_t plen = strlen(prefix);

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		_cleanup_free_ char *path = NULL, *id = NULL;
		struct job_exit e;

		if (n <= plen + 5 || strncmp(de->d_name, prefix, plen) != 0 ||
		    strcmp(de->d_name + n - 5, ".exit") != 0)
			continue;
		id = strndup(de->d_name + plen, n - plen - 5);
		path = spool_path(spool, de->d_name, "");
		if (!id || !path) {
			closedir(d);
			return -ENOMEM;
		}
		if (exit_file_read(path, &e) < 0)
			continue;
		found(ctx, id, e.job_id);
	}
	closedir(d);
	return 0;
}

void spool_remove(const char *spool, const char *name) {
	static const char *const suffixes[] = { ".sh", ".sh.tmp", ".out", ".exit", ".exit.tmp", ".result.json",
						".inputs.json", ".inputs.json.tmp", NULL };

	for (size_t i = 0; suffixes[i]; i++) {
		_cleanup_free_ char *p = spool_path(spool, name, suffixes[i]);

		if (p)
			(void) unlink(p);
	}
}

/* The host's inputs file copied to `to` in the spool, readable on the nodes. */
int inputs_copy(const char *from, const char *to) {
	_cleanup_free_ char *buf = NULL;
	struct stat st;
	ssize_t n;
	int fd = open(from, O_RDONLY | O_CLOEXEC | O_NOCTTY), r = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !(buf = malloc((size_t) st.st_size + 1)))
		r = -ENOMEM;
	else if ((n = read(fd, buf, (size_t) st.st_size)) != st.st_size)
		r = n < 0 ? -errno : -EIO;
	close(fd);
	if (r < 0)
		return r;
	buf[st.st_size] = '\0';
	return write_file_atomic(to, buf, 0644);
}

int result_copy(const char *from, const char *log_path, char **ret_error) {
	_cleanup_free_ char *buf = NULL, *to = NULL;
	_cleanup_json_ json_object *o = NULL;
	size_t n = log_path ? strlen(log_path) : 0;
	ssize_t k;
	int fd, r;

	fd = open(from, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return errno == ENOENT ? 0 : errorf(ret_error, -errno, "cannot open %s: %m", from);
	buf = malloc(RESULT_MAX + 2);
	k = buf ? read(fd, buf, RESULT_MAX + 1) : -1;
	close(fd);
	if (k < 0)
		return errorf(ret_error, -EIO, "cannot read %s", from);
	if ((size_t) k > RESULT_MAX)
		return errorf(ret_error, -EFBIG, "the result file %s is over 256 KiB; ignored", from);
	buf[k] = '\0';
	o = json_tokener_parse(buf);
	if (!o && strcmp(buf, "null") != 0 && strspn(buf, " \t\r\n") != (size_t) k)
		return errorf(ret_error, -EBADMSG, "the result file holds no JSON; ignored");
	if (!o)
		return 0;
	if (n > 4 && strcmp(log_path + n - 4, ".log") == 0)
		n -= 4;
	to = n ? strdupf("%.*s.result.json", (int) n, log_path) : NULL;
	if (!to)
		return errorf(ret_error, -ENOMEM, "Out of memory");
	r = write_file_atomic(to, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), 0640);
	if (r == -ENOENT) {
		/* a job that printed nothing: its log's directory is not there yet */
		_cleanup_free_ char *dir = strdup(to);
		char *slash = dir ? strrchr(dir, '/') : NULL;

		if (slash && slash != dir) {
			*slash = '\0';
			(void) mkdir_p(dir, 0750);
		}
		r = write_file_atomic(to, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), 0640);
	}
	if (r < 0)
		return errorf(ret_error, r, "cannot write %s: %m", to);
	return 1;
}
