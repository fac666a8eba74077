/*
 * engine-event.c - the events the engine records: event_emit() for those
 * built as json-c values (rare ones), and task_created_event() and
 * event_*() for those a task makes by the thousand, kept as compact records
 * whose JSON only a reader builds (event-record.c).  They go into the turn's
 * transaction, and out to followers once it is committed.
 */
#include <stdio.h>

#include "dagd.h"
#include "event-record.h"

void event_emit(const char *type, const char *entity, const char *entity_id, int64_t project_id,
		json_object *payload)
{
	(void) store_event_append(type, entity, entity_id, project_id, payload ? json_text(payload) : NULL, NULL);
	json_object_put(payload);
}

json_object *task_payload(const struct task *t)
{
	json_object *o = json_object_new_object();
	char id[24];

	json_object_object_add(o, "task_id", json_object_new_string(task_id_string(t->id, id)));
	format_id(id, "p-", t->project->id);
	json_object_object_add(o, "project_id", json_object_new_string(id));
	json_object_object_add(o, "attempt", json_object_new_int((int) t->attempt));
	return o;
}

void task_event(const struct task *t, const char *type, json_object *payload)
{
	char id[24];

	event_emit(type, "task", task_id_string(t->id, id), t->project->id, payload);
}

/* --- the compact ones ------------------------------------------------------ */

static struct evrec rec;        /* kept from one to the next */

void event_status_changed(const struct task *t, enum status old, int64_t now)
{
	evrec_status(&rec, now, t->id, t->attempt, status_to_string(old), status_to_string(t->status));
	(void) store_event_record(t->project->id, &rec);
}

void event_spawned(const struct task *t, const struct sandbox *sb)
{
	evrec_spawned(&rec, now_usec(), t->id, sb->attempt, sb->id, task_def(t)->sandbox_executor);
	(void) store_event_record(t->project->id, &rec);
}

/* t: the sandbox's task, or NULL if it has none any more */
void event_exited(const struct task *t, const struct sandbox *sb, int code, int signal, const char *reason)
{
	evrec_exited(&rec, now_usec(), sb->id, code, signal, reason);
	(void) store_event_record(t ? t->project->id : 0, &rec);
}

/* TASK_CREATED: what a board draws the task with (its definition, result
 * and the rest are one task.get away).  Made by the thousand, so it is a
 * record too. */
void task_created_event(const struct task *t)
{
	struct evrec_task c = {
		.id = t->id,
		.attempt = t->attempt,
		.name = task_name(t),
		.title = task_def(t)->title,
		.priority = priority_to_string(t->priority),
		.status = status_to_string(t->status),
		.approval = t->approval,
		.released = t->released,
		.held = t->held,
		.map_over = ext_of(t)->map_over,
		.map_parent = ext_of(t)->map_parent,
		.map_index = ext_of(t)->map_parent ? ext_of(t)->map_index : 0,
		.created_at = task_time(t, AT_CREATED),
		.status_changed_at = task_time(t, AT_STATUS_CHANGED),
		.n_deps = task_n_deps(t),
	};
	struct task **deps = task_deps(t);

	evrec_created(&rec, now_usec(), &c);
	for (size_t i = 0; i < c.n_deps; i++)
		evrec_id(&rec, deps[i]->id);
	(void) store_event_record(t->project->id, &rec);
}

void event_unblocked(const struct task *t, struct task *const *unblocked, size_t n, const char *sandbox_id)
{
	evrec_unblocked(&rec, now_usec(), t->id, sandbox_id, n);
	for (size_t i = 0; i < n; i++)
		evrec_id(&rec, unblocked[i]->id);
	(void) store_event_record(t->project->id, &rec);
}

void event_completed(const struct task *t)
{
	evrec_completed(&rec, now_usec(), t->id, t->attempt, task_def(t)->result);
	(void) store_event_record(t->project->id, &rec);
}
