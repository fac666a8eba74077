/*
 * event-record.h - the compact records of the events a task makes by the
 * thousand (event-record.c): made by the engine, kept by the store, turned
 * into JSON only for a reader.
 */
#ifndef DAGD_EVENT_RECORD_H
#define DAGD_EVENT_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* a record being made; its bytes are buf[0..len) */
struct evrec {
	char *buf;
	size_t len, cap;
};

void evrec_status(struct evrec *r, int64_t time, int64_t task_id, unsigned attempt,
		  const char *old_status, const char *new_status);
void evrec_spawned(struct evrec *r, int64_t time, int64_t task_id, unsigned attempt,
		   const char *sandbox_id, const char *executor);
/* code < 0: it did not exit (null); signal 0: none (null) */
void evrec_exited(struct evrec *r, int64_t time, const char *sandbox_id, int code, int signal,
		  const char *reason);
/* result: JSON text, or NULL */
void evrec_completed(struct evrec *r, int64_t time, int64_t task_id, unsigned attempt, const char *result);

/* A task's creation: what a board draws it with (TASK_CREATED's summary).
 * evrec_created() is followed by evrec_id() for each of its n_deps. */
struct evrec_task {
	int64_t id, map_over, map_parent, created_at, status_changed_at;
	unsigned attempt, map_index;
	const char *name, *title, *priority, *status;
	bool approval, released, held;
	size_t n_deps;
};
void evrec_created(struct evrec *r, int64_t time, const struct evrec_task *t);
/* The tasks a completion made ready (TASKS_UNBLOCKED): followed by
 * evrec_id() for each of the n.  sandbox_id: the completed attempt's, or
 * NULL. */
void evrec_unblocked(struct evrec *r, int64_t time, int64_t task_id, const char *sandbox_id, size_t n);
/* a task id of the list a record's last field counts */
void evrec_id(struct evrec *r, int64_t task_id);

/* An event as a reader sees it: text records point into their chunk, a
 * compact record's entity id and payload into the decoder's own buffers
 * (valid until the next decode; the payload built only when asked for). */
struct event_view {
	const char *type, *entity, *entity_id, *payload;
	size_t type_len, entity_len, entity_id_len, payload_len;
	int64_t time;
};

/* A record begins with its kind, a byte below 0x20 (a text record begins
 * with its type's name). */
static inline bool evrec_is_compact(char first)
{
	return (unsigned char) first < 0x20;
}

/* The compact record at *p, of the chunk of project_id (0: none), and *p
 * past it; false if it is damaged.  Its payload is NULL until
 * evrec_payload() builds it (before the next decode). */
bool evrec_decode(const char **p, const char *end, int64_t project_id, struct event_view *v);
void evrec_payload(struct event_view *v);

#endif
