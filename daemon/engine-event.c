/*
 * engine-event.c - the events the engine records: event_emit() for those
 * built as json-c values (rare ones), and payload_open()/payload_emit()
 * for those a task makes by the thousand, written straight into text.
 * They go into the turn's transaction, and out to followers once it is
 * committed.
 */
#include <stdio.h>

#include "dagd.h"
#include "jw.h"

void event_emit(const char *type, const char *entity, const char *entity_id, int64_t project_id,
		json_object *payload)
{
	(void) store_event_append(type, entity, entity_id, project_id, payload ? json_text(payload) : NULL, NULL);
	json_object_put(payload);
}

/* The events a task makes by the thousand (its status changes, its
 * sandboxes) have their payloads written straight into text, in one
 * buffer kept from one to the next: payload_open() starts one, with the
 * task's id and project's, and payload_emit() records it. */
static struct jw pl;

struct jw *payload_open(const struct task *t)
{
	char id[24];

	pl.len = 0;
	pl.comma = false;
	jw_open(&pl, '{');
	if (t) {
		jw_key(&pl, "task_id");
		jw_str(&pl, task_id_string(t->id, id));
		format_id(id, "p-", t->project->id);
		jw_key(&pl, "project_id");
		jw_str(&pl, id);
	}
	return &pl;
}

void payload_emit(const char *type, const char *entity, const char *entity_id, int64_t project_id)
{
	jw_close(&pl, '}');
	(void) store_event_append(type, entity, entity_id, project_id, pl.buf, NULL);
}

void task_payload_emit(const struct task *t, const char *type)
{
	char id[24];

	payload_emit(type, "task", task_id_string(t->id, id), t->project->id);
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
