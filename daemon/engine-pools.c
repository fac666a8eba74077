/*
 * engine-pools.c - named pools: each has a size, and a task naming pools
 * with weights ("pools": {"gpu": 1}) is dispatched only when every one of
 * them has room for its weight, on top of the global, project and executor
 * limits.  A pool's use is the sum of the weights of its active tasks,
 * counted as they become active and leave it (count_active), so at load it
 * is recounted from the running tasks and never drifts.
 *
 * No starvation: dispatch takes tasks best first.  When the best task does
 * not fit a pool, that pool is reserved for it for the rest of the round: no
 * task behind it is dispatched into the pool, so the pool drains until the
 * big task fits.  Only a better task (higher priority, more dependents, or
 * older) goes before it.
 */
#include <stdio.h>
#include <string.h>

#include "closest.h"
#include "dagd.h"

struct pool *pools;

struct pool *pool_find(const char *name)
{
	for (struct pool *p = pools; name && p; p = p->next)
		if (strcmp(p->name, name) == 0)
			return p;
	return NULL;
}

/* At load, in the store's order: a pool as the store read it. */
int pool_loaded(const struct pool_row *r)
{
	struct pool *p = calloc(1, sizeof(*p)), **tail = &pools;

	if (!p)
		abort();
	p->name = xstrdup(r->name);
	p->size = r->size;
	p->created_at = r->created_at;
	p->updated_at = r->updated_at;
	while (*tail)
		tail = &(*tail)->next;
	*tail = p;
	return 0;
}

void pools_free(void)
{
	while (pools) {
		struct pool *p = pools;

		pools = p->next;
		idset_free(&p->tasks);
		free(p->name);
		free(p);
	}
}

/* t names p, with that weight: p knows it (what names it is walked by
 * what asks, not every task). */
void pool_use_add(struct task *t, struct pool *p, unsigned weight)
{
	struct task_ext *x = task_ext(t);

	x->pools = xrealloc(x->pools, (x->n_pools + 1) * sizeof(*x->pools));
	x->pools[x->n_pools++] = (struct pool_use) { p, weight };
	idset_add(&p->tasks, t->id);
}

/* t's weight in p (it names p). */
static unsigned weight_in(const struct task *t, const struct pool *p)
{
	for (size_t k = 0; k < ext_of(t)->n_pools; k++)
		if (ext_of(t)->pools[k].pool == p)
			return ext_of(t)->pools[k].weight;
	return 0;
}

static const char **pool_names(void)
{
	size_t n = 0;
	const char **names;

	for (struct pool *p = pools; p; p = p->next)
		n++;
	names = calloc(n + 1, sizeof(*names));
	if (!names)
		abort();
	n = 0;
	for (struct pool *p = pools; p; p = p->next)
		names[n++] = p->name;
	return names;
}

int pools_check_args(json_object *args)
{
	json_object *o;
	int r = arg_object(args, "pools", &o);

	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	json_object_object_foreach(o, name, w) {
		struct pool *p = pool_find(name);

		if (!p) {
			_cleanup_free_ const char **names = pool_names();
			const char *best = closest_name(name, names);

			if (best)
				return errorf(-EINVAL, "pools: no pool '%.*s'; did you mean '%s'?",
					      utf8_prefix(name, 64), name, best);
			return errorf(-EINVAL, "pools: no pool '%.*s' (dagctl pool set NAME SIZE makes one)",
				      utf8_prefix(name, 64), name);
		}
		if (!json_object_is_type(w, json_type_int) || json_object_get_int64(w) < 1 ||
		    json_object_get_int64(w) > 1000000)
			return errorf(-EINVAL, "pools: the weight in pool '%s' must be a positive integer", name);
		if (json_object_get_int64(w) > p->size)
			return errorf(-EINVAL, "pools: a weight of %lld in pool '%s' can never fit: its size is %u",
				      (long long) json_object_get_int64(w), name, p->size);
	}
	return 0;
}

void pools_count(struct task *t, int delta)
{
	for (size_t i = 0; i < ext_of(t)->n_pools; i++)
		ext_of(t)->pools[i].pool->used += (unsigned) delta * ext_of(t)->pools[i].weight;
}

void pools_round(void)
{
	for (struct pool *p = pools; p; p = p->next)
		p->reserved = false;
}

bool pools_fit(const struct task *t)
{
	for (size_t i = 0; i < ext_of(t)->n_pools; i++) {
		const struct pool *p = ext_of(t)->pools[i].pool;

		if (p->reserved || p->used + ext_of(t)->pools[i].weight > p->size)
			return false;
	}
	return true;
}

/* t, the best task left, does not fit: the pools without room for it are
 * kept for it this round. */
void pools_reserve(const struct task *t)
{
	for (size_t i = 0; i < ext_of(t)->n_pools; i++) {
		struct pool *p = ext_of(t)->pools[i].pool;

		if (p->used + ext_of(t)->pools[i].weight > p->size)
			p->reserved = true;
	}
}

static json_object *pool_to_json(const struct pool *p)
{
	json_object *o = json_object_new_object();
	unsigned named = 0, waiting = 0;

	for (int64_t id = 0; (id = idset_next(&p->tasks, id)) > 0;) {
		const struct task *t = task_at(id);

		if (!status_is_finished(t->status)) {
			named++;
			waiting += t->queued;
		}
	}
	json_object_object_add(o, "name", json_object_new_string(p->name));
	json_object_object_add(o, "size", json_object_new_int((int) p->size));
	json_object_object_add(o, "used", json_object_new_int((int) p->used));
	json_object_object_add(o, "tasks", json_object_new_int((int) named));
	json_object_object_add(o, "queued", json_object_new_int((int) waiting));
	json_object_object_add(o, "created_at", json_time(p->created_at));
	json_object_object_add(o, "updated_at", json_time(p->updated_at));
	return o;
}

json_object *pools_to_json(void)
{
	json_object *a = json_object_new_array();

	for (struct pool *p = pools; p; p = p->next)
		json_object_array_add(a, pool_to_json(p));
	return a;
}

/* The largest weight an unfinished task puts in p, and one such task. */
static unsigned largest_weight(const struct pool *p, const struct task **ret)
{
	unsigned max = 0;

	for (int64_t id = 0; (id = idset_next(&p->tasks, id)) > 0;) {
		const struct task *t = task_at(id);
		unsigned w = weight_in(t, p);

		if (!status_is_finished(t->status) && w > max) {
			max = w;
			*ret = t;
		}
	}
	return max;
}

static void pool_event(const char *type, const struct pool *p, unsigned old_size)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "name", json_object_new_string(p->name));
	json_object_object_add(o, "size", json_object_new_int((int) p->size));
	if (old_size)
		json_object_object_add(o, "old_size", json_object_new_int((int) old_size));
	event_emit(type, "pool", p->name, 0, o);
}

/* pool.set: a new pool, or a new size for one.  A size below what an
 * unfinished task needs of it is refused. */
int pool_set(const char *name, int64_t size, json_object **ret)
{
	struct pool *p = pool_find(name);
	const struct task *t = NULL;
	unsigned old = 0, need;
	char id[24];

	if (!valid_name(name, 64))
		return errorf(-EINVAL, "pool name '%.*s' must be 1-64 of A-Z a-z 0-9 . _ -", utf8_prefix(name, 64), name);
	if (p && (need = largest_weight(p, &t)) > size)
		return errorf(-EINVAL, "pool '%s' cannot shrink to %lld: task %s needs %u of it", name,
			      (long long) size, task_id_string(t->id, id), need);
	if (!p) {
		struct pool **tail = &pools;

		p = calloc(1, sizeof(*p));
		if (!p)
			abort();
		p->name = xstrdup(name);
		p->created_at = now_usec();
		while (*tail && strcmp((*tail)->name, name) < 0)
			tail = &(*tail)->next;
		p->next = *tail;
		*tail = p;
	} else
		old = p->size;
	if (old != size) {
		p->size = (unsigned) size;
		p->updated_at = now_usec();
		(void) store_pool_save(p);
		pool_event("POOL_SET", p, old);
		dispatch_dirty = true;
	}
	*ret = pool_to_json(p);
	return 0;
}

/* pool.delete: refused while any task, finished or not, names the pool
 * (its definition would name a pool that is gone); remove or clean those
 * tasks first. */
int pool_delete(const char *name)
{
	struct pool *p = pool_find(name);
	int64_t first;
	char id[24];

	if (!p)
		return errorf(-ENOENT, "no pool '%.*s'", utf8_prefix(name, 64), name);
	if ((first = idset_next(&p->tasks, 0)) > 0) {
		const struct task *t = task_at(first);

		return errorf(-EBUSY, "pool '%s' is named by task %s (%s); remove the tasks that name it "
			      "first", name, task_id_string(t->id, id), status_to_string(t->status));
	}
	(void) store_pool_delete(name);
	pool_event("POOL_DELETED", p, 0);
	for (struct pool **pp = &pools; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	free(p->name);
	free(p);
	return 0;
}
