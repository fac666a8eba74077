/*
 * cmd-events.c - events.subscribe: read the event log from any number on,
 * once (follow: false) or then live.
 */
#include <string.h>

#include "dagd.h"

static const char *const subscribe_args[] = { "since", "project", "types", "follow", "limit", NULL };

static int collect(int64_t seq, const char *line, void *userdata)
{
	json_object_array_add(userdata, json_parse(line));
	return 0;
}

static int cmd_events_subscribe(struct req *r)
{
	struct project *p = NULL;
	json_object *types = NULL, *o, *list;
	int64_t since = -1, limit = 1000, last;
	bool follow = true;
	int k;

	k = arg_int(r->args, "since", 0, INT64_MAX, &since);
	if (k < 0 && k != -ENOENT)
		return reply_errno(r, k);
	if (json_object_object_get_ex(r->args, "project", NULL) && (k = req_project(r, "project", &p)) < 0)
		return reply_errno(r, k);
	k = arg_array(r->args, "types", &types);
	if (k < 0 && k != -ENOENT)
		return reply_errno(r, k);
	for (size_t i = 0; types && i < json_object_array_length(types); i++)
		if (!json_object_is_type(json_object_array_get_idx(types, i), json_type_string))
			return reply_error(r, "bad_request", "argument 'types' must be an array of strings");
	k = arg_bool(r->args, "follow", &follow);
	if (k < 0 && k != -ENOENT)
		return reply_errno(r, k);
	k = arg_int(r->args, "limit", 1, 100000, &limit);
	if (k < 0 && k != -ENOENT)
		return reply_errno(r, k);

	o = json_object_new_object();
	if (follow) {
		json_object_object_add(o, "subscribed", json_object_new_boolean(true));
		json_object_object_add(o, "last_seq", json_object_new_int64(server_committed_seq()));
		reply_ok(r, o);
		return server_subscribe(r->client, r->id, since, p ? p->id : 0, types);
	}
	list = json_object_new_array();
	k = store_events_read(since < 0 ? server_committed_seq() : since, server_committed_seq(),
			      p ? p->id : 0, types, (size_t) limit, collect, list, &last);
	if (k < 0) {
		json_object_put(list);
		json_object_put(o);
		return reply_errno(r, k);
	}
	json_object_object_add(o, "events", list);
	json_object_object_add(o, "last_seq", json_object_new_int64(server_committed_seq()));
	return reply_ok(r, o);
}

const struct cmd_entry cmd_events_subscribe_entry = { "events.subscribe", cmd_events_subscribe, 0, subscribe_args };
