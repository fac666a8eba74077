/*
 * fuzz-evrec.c - libFuzzer target for the compact event records
 * (daemon/event-record.c) as a chunk of the database holds them: each input
 * is read as a chunk, record after record, each decoded and its payload
 * built, until one is found damaged.  A damaged chunk must be refused, never
 * read past its end (a result is kept as the JSON text it was, so a payload
 * is JSON only if what the record holds was written by the daemon).  A
 * record the encoders wrote, its strings the input's bytes, is read back as
 * what they were given, its payload JSON.  The same input is read as a
 * task's state record (daemon/store-state.c): refused, or its strings lie
 * within it and hold no NUL.
 *
 *   make fuzz && build/fuzz/fuzz-evrec
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dagd.h"
#include "event-record.h"
#include "store-private.h"

struct daemon D;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a copy of just its size: a read past its end is caught */
	char *chunk = malloc(size ? size : 1);
	const char *p = chunk, *end = chunk + size;
	struct event_view v;
	struct evrec r = { 0 };
	struct state_record st;

	memcpy(chunk, data, size);
	if (store_state_decode(chunk, size, &st))
		for (int i = 0; i < STATE_OUTCOME; i++)
			if (st.outcome[i] && (st.outcome[i] < chunk || st.outcome[i] + st.outcome_len[i] > end ||
					      memchr(st.outcome[i], 0, st.outcome_len[i])))
				abort();
	while (p < end && evrec_is_compact(*p) && evrec_decode(&p, end, 7, &v)) {
		if (p > end || !v.type || !v.entity_id || strlen(v.entity_id) != v.entity_id_len)
			abort();
		evrec_payload(&v);
		if (!v.payload || strlen(v.payload) != v.payload_len)
			abort();
	}
	free(chunk);

	/* what is encoded decodes: a creation with the input's first bytes as
	 * its name (when they are text) */
	if (size > 0 && !memchr(data, 0, size) && utf8_valid((const char *) data, size)) {
		char *name = strndup((const char *) data, size);
		struct evrec_task t = { .id = 5, .name = name, .title = name, .priority = "low",
					.status = "ready", .n_deps = 1, .created_at = 1 };
		json_object *o = NULL, *task;
		const char *q;
		char dep[24];

		evrec_created(&r, 2, &t);
		evrec_id(&r, (int64_t) size);
		q = r.buf;
		if (!evrec_decode(&q, r.buf + r.len, 7, &v) || q != r.buf + r.len)
			abort();
		evrec_payload(&v);
		if (json_parse_strict(v.payload, v.payload_len, &o) < 0 ||
		    !json_object_object_get_ex(o, "task", &task) ||
		    strcmp(json_object_get_string(json_object_object_get(task, "name")), name) != 0 ||
		    (format_id(dep, "t-", (int64_t) size),
		     strcmp(json_object_get_string(json_object_array_get_idx(json_object_object_get(task, "depends_on"), 0)),
			    dep) != 0))
			abort();
		json_object_put(o);
		evrec_unblocked(&r, 3, 6, name, 2);
		evrec_id(&r, 9);
		evrec_id(&r, (int64_t) size);
		q = r.buf;
		if (!evrec_decode(&q, r.buf + r.len, 7, &v) || q != r.buf + r.len)
			abort();
		evrec_payload(&v);
		o = NULL;
		if (json_parse_strict(v.payload, v.payload_len, &o) < 0 ||
		    strcmp(json_object_get_string(json_object_object_get(o, "sandbox_id")), name) != 0 ||
		    json_object_array_length(json_object_object_get(o, "unblocked_task_ids")) != 2 ||
		    strcmp(json_object_get_string(json_object_array_get_idx(json_object_object_get(o, "unblocked_task_ids"), 1)),
			   dep) != 0)
			abort();
		json_object_put(o);
		free(name);
	}
	free(r.buf);
	return 0;
}
