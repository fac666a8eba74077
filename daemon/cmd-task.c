/*
 * cmd-task.c - task.add, add_batch, get, list, depend, undepend, start,
 * cancel, retry, unblocked and logs.  task.complete has a file of its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dagd.h"
#include "jw.h"

/* task.add's, and (without "project") each of task.add_batch's tasks' */
const char *const task_add_args[] = {
	"project", "title", "command", "name", "depends_on", "env", "cwd", "executor",
	"executor_options", "priority", "timeout", "max_retries", "retry_backoff",
	"validation_command", "kind", "retry_on_exit", "no_retry_on_exit", "max_lost_retries",
	"max_retry_duration", "pools", "on_timeout", "trigger", "finally", "map_over", "map_concurrency", NULL
};
static const char *const add_batch_args[] = { "project", "tasks", "create_project", "objects", NULL };
static const char *const task_id_args[] = { "task_id", NULL };
#define LIST_CHUNK 512

static const char *const list_args[] = { "project", "status", "names", "after", "limit", NULL };
static const char *const depend_args[] = { "task_id", "on", NULL };
static const char *const retry_args[] = { "task_id", "downstream", "dry_run", NULL };
static const char *const unblocked_args[] = { "project", "limit", "after", NULL };
static const char *const logs_args[] = {
	"task_id", "attempt", "max_bytes", "offset", "follow", "validation", NULL
};

static int task_reply(struct req *r, struct task *t)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "task", task_to_json(t));
	return reply_ok(r, o);
}

static int cmd_task_add(struct req *r)
{
	_cleanup_free_ struct task **made = NULL;
	struct project *p;
	json_object *list;
	int k = req_project(r, "project", &p);

	if (k < 0)
		return reply_errno(r, k);
	list = json_object_new_array();
	json_object_array_add(list, json_object_get(r->args));
	k = task_create_batch(p, list, false, &made);
	json_object_put(list);
	if (k < 0)
		return reply_errno(r, k);
	return task_reply(r, made[0]);
}

/* What a batch's reply says of each task: its id, name and status, written
 * flat; with "objects", each whole object as task.get gives it, their
 * definitions read a chunk at a time. */
static json_object *batch_tasks_json(struct task **made, size_t n, bool objects)
{
	struct jw w = { 0 };

	jw_open(&w, '[');
	for (size_t i = 0; i < n; i += LIST_CHUNK) {
		size_t m = n - i < LIST_CHUNK ? n - i : LIST_CHUNK;

		if (objects)
			task_defs_prefetch(made + i, m);
		for (size_t j = i; j < i + m; j++) {
			char id[24];

			if (objects) {
				task_write_json(&w, made[j]);
				continue;
			}
			jw_open(&w, '{');
			jw_key(&w, "id");
			jw_str(&w, task_id_string(made[j]->id, id));
			jw_key(&w, "name");
			jw_str(&w, task_name(made[j]));
			jw_key(&w, "status");
			jw_str(&w, status_to_string(made[j]->status));
			jw_close(&w, '}');
		}
		if (objects)
			engine_defs_release();
	}
	jw_close(&w, ']');
	return jw_value(&w);
}

static int cmd_task_add_batch(struct req *r)
{
	_cleanup_free_ struct task **made = NULL;
	struct batch_src src = { .text = r->tasks_text, .spans = r->tasks, .n = r->n_tasks };
	struct batch *b = NULL;
	struct project *p;
	json_object *list, *create = NULL, *o;
	const char *name;
	bool objects = false;
	int k;

	k = arg_required(arg_array(r->args, "tasks", &list), "tasks");
	if (k >= 0)
		k = arg_object(r->args, "create_project", &create);
	if (k >= 0 || k == -ENOENT)
		k = arg_bool(r->args, "objects", &objects);
	if (k < 0 && k != -ENOENT)
		return reply_errno(r, k);
	k = arg_required(arg_string(r->args, "project", &name), "project");
	if (k < 0)
		return reply_errno(r, k);
	if (create && args_check(create, project_create_args, "create_project") < 0)
		return reply_error(r, "bad_request", "%s", last_error());
	if (!src.spans)
		src.list = list;        /* not left as text (json_parse_strict_lazy()) */
	p = project_find(name);
	if (!p && !create)
		return reply_error(r, "not_found", "no project '%s'", name);
	if (!p) {
		/* all or nothing: the batch checked before the project exists */
		const char *ex = "local";

		(void) arg_string(create, "executor", &ex);
		k = batch_check(NULL, ex, &src, true, task_add_args + 1, &b);
		if (k >= 0) {
			json_object *pargs = json_object_new_object();

			json_object_object_foreach(create, key, val)
				json_object_object_add(pargs, key, json_object_get(val));
			json_object_object_add(pargs, "name", json_object_new_string(name));
			k = project_create(pargs, &p);
			json_object_put(pargs);
		}
	} else
		k = batch_check(p, NULL, &src, true, task_add_args + 1, &b);
	if (k >= 0)
		k = batch_create(b, p, &made);
	batch_free(b);
	if (k < 0)
		return reply_errno(r, k);
	o = json_object_new_object();
	json_object_object_add(o, "tasks", batch_tasks_json(made, batch_size(&src), objects));
	json_object_object_add(o, "project", project_to_json(p));
	return reply_ok(r, o);
}

static int cmd_task_get(struct req *r)
{
	struct task *t;
	int k = req_task(r, &t);

	return k < 0 ? reply_errno(r, k) : task_reply(r, t);
}

/* What a listing walks: the project's tasks (or every task) by id, or
 * those of some names, put in id order (what `dagctl apply` compares its
 * file with, at the cost of the file, not of the project).  A name's task
 * is found by its hash, in memory, and its name compared only when its
 * page is written: a page reads the definitions it lists, in one pass, and
 * no more, whatever the number of names. */
struct named {
	struct task *t;         /* its name's hash is that of name */
	const char *name;
};
struct listing {
	struct project *p;
	const bool *want;
	struct named *named;    /* by names: the tasks that may be theirs, wanted, in id order */
	size_t n_named, at;
	size_t read;            /* of them, those whose definitions were asked for */
	bool by_name;
};

static int by_id(const void *a, const void *b)
{
	int64_t x = ((const struct named *) a)->t->id, y = ((const struct named *) b)->t->id;

	return x < y ? -1 : x > y;
}

static int listing_names(struct listing *l, json_object *names, int64_t after)
{
	size_t n = json_object_array_length(names), cap = n ? n : 1;

	l->by_name = true;
	l->named = xrealloc(NULL, cap * sizeof(*l->named));
	for (size_t i = 0; i < n; i++) {
		json_object *v = json_object_array_get_idx(names, i);
		const char *s;
		struct task *t;

		if (!json_object_is_type(v, json_type_string))
			return errorf(-EINVAL, "argument 'names' must be an array of task names");
		s = json_object_get_string(v);
		for (size_t pos = 0; (t = names_each(&l->p->names, names_hash(s), &pos));) {
			if (t->id <= after || !l->want[t->status])
				continue;
			if (l->n_named == cap)
				l->named = xrealloc(l->named, (cap *= 2) * sizeof(*l->named));
			l->named[l->n_named++] = (struct named) { t, s };
		}
	}
	qsort(l->named, l->n_named, sizeof(*l->named), by_id);
	return 0;
}

/* The next task by names: one whose name is one of them (a name given
 * twice is listed once); the definitions of those to come read a chunk at
 * a time, as a page of every task's are. */
static struct task *listing_next(struct listing *l, int64_t after)
{
	if (!l->by_name)
		return task_next(l->p, l->want, after);
	while (l->at < l->n_named) {
		struct named *c = &l->named[l->at++];
		const char *s;

		if (l->at > l->read) {
			struct task *chunk[LIST_CHUNK];
			size_t m = 0;

			for (; m < LIST_CHUNK && l->read < l->n_named; l->read++)
				chunk[m++] = l->named[l->read].t;
			task_defs_prefetch(chunk, m);
		}
		if (c->t->id > after && (s = task_name(c->t)) && strcmp(s, c->name) == 0)
			return c->t;
	}
	return NULL;
}

static int cmd_task_list(struct req *r)
{
	struct project *p = NULL;
	json_object *st = NULL, *names = NULL;
	struct jw w = { 0 };
	bool want[_ST_MAX], more = false;
	struct listing l = { 0 };
	const char *s;
	int64_t after, last = 0;
	size_t limit, n = 0;
	int k;

	k = arg_page(r->args, 't', &after, &limit);
	if (k < 0)
		return reply_errno(r, k);
	if (json_object_object_get_ex(r->args, "project", NULL)) {
		k = req_project(r, "project", &p);
		if (k < 0)
			return reply_errno(r, k);
	}
	for (int i = 0; i < _ST_MAX; i++)
		want[i] = true;
	if (json_object_object_get_ex(r->args, "status", &st) && st) {
		json_object *list = st;
		bool single = json_object_is_type(st, json_type_string);

		if (!single && !json_object_is_type(st, json_type_array))
			return reply_error(r, "bad_request", "argument 'status' must be a status or an array of them");
		for (int i = 0; i < _ST_MAX; i++)
			want[i] = false;
		for (size_t i = 0; i < (single ? 1 : json_object_array_length(list)); i++) {
			json_object *v = single ? st : json_object_array_get_idx(list, i);
			enum status x;

			s = json_object_get_string(v);
			x = json_object_is_type(v, json_type_string) ? status_from_string(s) : _ST_INVALID;
			if (x == _ST_INVALID)
				return reply_error(r, "bad_request", "unknown status '%s'", s ? s : "");
			want[x] = true;
		}
	}
	l.p = p;
	l.want = want;
	if (json_object_object_get_ex(r->args, "names", &names)) {
		if (!p)
			return reply_error(r, "bad_request", "argument 'names' needs 'project'");
		if (!json_object_is_type(names, json_type_array))
			return reply_error(r, "bad_request", "argument 'names' must be an array of task names");
		k = listing_names(&l, names, after);
		if (k < 0) {
			free(l.named);
			return reply_errno(r, k);
		}
	}
	/* by id, from after on: a page, then whether another task follows */
	jw_open(&w, '{');
	jw_key(&w, "tasks");
	jw_open(&w, '[');
	for (struct task *t = listing_next(&l, after); t;) {
		struct task *chunk[LIST_CHUNK];
		size_t m = 0;

		/* a chunk at a time: its definitions read together, and let go
		 * if too many are held (a listing of every task) */
		for (; t && m < LIST_CHUNK && !(limit && n + m == limit); t = listing_next(&l, t->id))
			chunk[m++] = t;
		task_defs_prefetch(chunk, m);
		for (size_t i = 0; i < m; i++)
			task_write_json(&w, chunk[i]);
		n += m;
		if (m)
			last = chunk[m - 1]->id;
		engine_defs_release();
		if (t && limit && n == limit) {
			more = true;
			break;
		}
	}
	free(l.named);
	jw_close(&w, ']');
	if (more) {
		char id[24];

		jw_key(&w, "next");
		jw_str(&w, task_id_string(last, id));
	}
	jw_close(&w, '}');
	k = reply_ok_text(r, w.buf);
	free(w.buf);
	return k;
}

static int depend(struct req *r, bool add)
{
	struct task *t;
	json_object *on, *list;
	int k = req_task(r, &t);

	if (k < 0)
		return reply_errno(r, k);
	if (!json_object_object_get_ex(r->args, "on", &on) || !on)
		return reply_error(r, "bad_request", "missing argument 'on'");
	if (json_object_is_type(on, json_type_array))
		list = json_object_get(on);
	else {
		list = json_object_new_array();
		json_object_array_add(list, json_object_get(on));
	}
	k = task_depend(t, list, add);
	json_object_put(list);
	return k < 0 ? reply_errno(r, k) : task_reply(r, t);
}

static int cmd_task_depend(struct req *r)
{
	return depend(r, true);
}

static int cmd_task_undepend(struct req *r)
{
	return depend(r, false);
}

static int task_op(struct req *r, int (*op)(struct task *))
{
	struct task *t;
	int k = req_task(r, &t);

	if (k >= 0)
		k = op(t);
	return k < 0 ? reply_errno(r, k) : task_reply(r, t);
}

static int cmd_task_start(struct req *r)
{
	return task_op(r, task_start);
}

static int cmd_task_cancel(struct req *r)
{
	return task_op(r, task_cancel);
}

/* task.retry: of a failed or cancelled task, or a rerun of a completed one;
 * with downstream, of what depends on it too; dry_run changes nothing. */
static int cmd_task_retry(struct req *r)
{
	struct task *t;
	json_object *ids = NULL, *o;
	bool downstream = false, dry_run = false;
	int k = req_task(r, &t);

	if (k >= 0 && (k = arg_bool(r->args, "downstream", &downstream)) == -ENOENT)
		k = 0;
	if (k >= 0 && (k = arg_bool(r->args, "dry_run", &dry_run)) == -ENOENT)
		k = 0;
	if (k >= 0)
		k = task_rerun(t, downstream, dry_run, &ids);
	if (k < 0)
		return reply_errno(r, k);
	o = json_object_new_object();
	json_object_object_add(o, "task", task_to_json(t));
	json_object_object_add(o, "rerun", ids);
	json_object_object_add(o, "dry_run", json_object_new_boolean(dry_run));
	return reply_ok(r, o);
}

/* A page's end as task.unblocked gives it in "next": the dispatch key of
 * its last task, "PRIORITY.DEPENDENTS.ID" (the task may run before the next
 * page is asked for, and the key still says where that page starts). */
static int arg_cursor(json_object *args, struct unblocked_cursor *ret, bool *ret_given)
{
	unsigned long long v[3];
	const char *s;
	int r = arg_string(args, "after", &s);

	*ret_given = false;
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	for (int i = 0; i < 3; i++) {
		char *end;

		errno = 0;
		v[i] = *s >= '0' && *s <= '9' ? strtoull(s, &end, 10) : ULLONG_MAX;
		if (v[i] > UINT32_MAX || errno || *end != (i < 2 ? '.' : '\0'))
			return errorf(-EINVAL, "argument 'after' must be the 'next' of a page before, like '2.0.17'");
		s = end + 1;
	}
	if (v[0] >= _PRIO_MAX || v[2] == 0)
		return errorf(-EINVAL, "argument 'after' must be the 'next' of a page before, like '2.0.17'");
	*ret = (struct unblocked_cursor) { .priority = (enum priority) v[0], .n_rdeps = (uint32_t) v[1],
					   .id = (uint32_t) v[2] };
	*ret_given = true;
	return 0;
}

static int cmd_task_unblocked(struct req *r)
{
	struct unblocked_cursor after, next = { 0 };
	struct project *p = NULL;
	bool given, more;
	json_object *o;
	int64_t limit = 50;
	char cursor[48];
	int k;

	if (json_object_object_get_ex(r->args, "project", NULL) && (k = req_project(r, "project", &p)) < 0)
		return reply_errno(r, k);
	k = arg_int(r->args, "limit", 1, 100000, &limit);
	if (k < 0 && k != -ENOENT)
		return reply_errno(r, k);
	k = arg_cursor(r->args, &after, &given);
	if (k < 0)
		return reply_errno(r, k);
	o = json_object_new_object();
	json_object_object_add(o, "tasks", tasks_unblocked(p, (size_t) limit, given ? &after : NULL, &next, &more));
	if (more) {
		snprintf(cursor, sizeof(cursor), "%d.%u.%u", (int) next.priority, next.n_rdeps, next.id);
		json_object_object_add(o, "next", json_object_new_string(cursor));
	}
	return reply_ok(r, o);
}

/* task.logs: the end of an attempt's output (validation: of its validator's);
 * with follow, then the rest of it as it comes, until that sandbox is over. */
static int cmd_task_logs(struct req *r)
{
	struct task *t;
	_cleanup_close_ int fd = -EBADF;
	_cleanup_free_ char *path = NULL;
	int64_t attempt, max = 1024 * 1024, offset = -1;
	json_object *o, *lines;
	struct stat st = { .st_size = 0 };
	bool follow = false, validation = false, live, partial;
	off_t from, end;
	char id[24];
	int k;

	k = req_task(r, &t);
	if (k < 0)
		return reply_errno(r, k);
	attempt = t->attempt;
	k = arg_int(r->args, "attempt", 1, t->attempt ? t->attempt : 1, &attempt);
	if (k < 0 && k != -ENOENT)
		return reply_errno(r, k);
	k = arg_int(r->args, "max_bytes", 1, 64 * 1024 * 1024, &max);
	if (k < 0 && k != -ENOENT)
		return reply_errno(r, k);
	k = arg_int(r->args, "offset", 0, INT64_MAX, &offset);
	if (k < 0 && k != -ENOENT)
		return reply_errno(r, k);
	k = arg_bool(r->args, "follow", &follow);
	if (k < 0 && k != -ENOENT)
		return reply_errno(r, k);
	k = arg_bool(r->args, "validation", &validation);
	if (k < 0 && k != -ENOENT)
		return reply_errno(r, k);
	if (validation && !ext_of(t)->validation_command)
		return reply_error(r, "invalid_state", "task %s has no validation command",
				   task_id_string(t->id, id));

	/* its sandbox still runs: more may come */
	live = task_sb(t) && task_sb(t)->validator == validation && task_sb(t)->attempt == attempt && !task_sb(t)->exited;
	path = log_path(t->id, (unsigned) attempt, validation);
	fd = follow && live ? log_open(path, O_RDONLY) : open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		(void) fstat(fd, &st);
	from = offset >= 0 ? (off_t) offset : st.st_size > max ? st.st_size - max : 0;
	if (from > st.st_size)
		from = st.st_size;
	lines = log_lines(fd, from, st.st_size, follow && live, OUT_FEED, &end, &partial);
	if (offset < 0 && from > 0 && json_object_array_length(lines) > 0)
		json_object_array_del_idx(lines, 0, 1);    /* a cut line */
	o = json_object_new_object();
	json_object_object_add(o, "task_id", json_object_new_string(task_id_string(t->id, id)));
	json_object_object_add(o, "attempt", json_object_new_int((int) attempt));
	if (validation)
		json_object_object_add(o, "validation", json_object_new_boolean(true));
	json_object_object_add(o, "lines", lines);
	if (partial)
		json_object_object_add(o, "partial", json_object_new_boolean(true));
	json_object_object_add(o, "truncated", json_object_new_boolean(offset < 0 && from > 0));
	json_object_object_add(o, "offset", json_object_new_int64(end));
	if (follow) {
		json_object_object_add(o, "following", json_object_new_boolean(live && fd >= 0));
		if (!live || fd < 0) {
			json_object_object_add(o, "end", json_object_new_boolean(true));
			json_object_object_add(o, "status", json_object_new_string(status_to_string(t->status)));
		}
	}
	reply_ok(r, o);
	if (follow && live && fd >= 0)
		return server_follow_log(r->client, r->id, t->id, (unsigned) attempt, validation,
					 TAKE_FD(fd), end);
	return 0;
}

const struct cmd_entry cmd_task_add_entry = { "task.add", cmd_task_add, 0, task_add_args };
const struct cmd_entry cmd_task_add_batch_entry = { "task.add_batch", cmd_task_add_batch, 0, add_batch_args };
const struct cmd_entry cmd_task_get_entry = { "task.get", cmd_task_get, 0, task_id_args };
const struct cmd_entry cmd_task_list_entry = { "task.list", cmd_task_list, 0, list_args };
const struct cmd_entry cmd_task_depend_entry = { "task.depend", cmd_task_depend, 0, depend_args };
const struct cmd_entry cmd_task_undepend_entry = { "task.undepend", cmd_task_undepend, 0, depend_args };
const struct cmd_entry cmd_task_start_entry = { "task.start", cmd_task_start, 0, task_id_args };
const struct cmd_entry cmd_task_cancel_entry = { "task.cancel", cmd_task_cancel, 0, task_id_args };
const struct cmd_entry cmd_task_retry_entry = { "task.retry", cmd_task_retry, 0, retry_args };
const struct cmd_entry cmd_task_unblocked_entry = { "task.unblocked", cmd_task_unblocked, 0, unblocked_args };
const struct cmd_entry cmd_task_logs_entry = { "task.logs", cmd_task_logs, 0, logs_args };
