/*
 * server-retry.c - a database that cannot be written (a full disk, a
 * read-only file system): the turn whose commit failed is rolled back and
 * the engine reloads what is on disk; then for a second nothing but a
 * client's write tries the database again (server_flush() asks
 * server_retry_waiting()), and the failure is said in the log once a minute
 * at most, and in daemon.status, until a commit goes through.
 */
#include <stdio.h>
#include <string.h>

#include "dagd.h"

#define RETRY_USEC USEC_PER_SEC                 /* after a failed commit */
#define REPEAT_LOG_USEC (60 * USEC_PER_SEC)     /* say a failure again at most this often */

static sd_event_source *retry_source;

static struct {
	int64_t since;                  /* usec; 0: it can be written */
	uint64_t turns;                 /* turns refused since */
	int64_t logged_at;
	char error[256];
} down;

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
	retry_source = sd_event_source_unref(retry_source);
	server_kick();
	return 0;
}

void server_retry_refused(void)
{
	int64_t now = now_usec();
	bool say;

	down.turns++;
	say = !down.since || now - down.logged_at >= (int64_t) REPEAT_LOG_USEC;
	if (!down.since) {
		down.since = now;
		snprintf(down.error, sizeof(down.error), "%s", last_error());
		utf8_trim(down.error);
		log_error("cannot commit to the database: %s; this turn's changes are rolled back, "
			  "and writing is tried again every second", down.error);
	} else if (say)
		log_error("still cannot commit to the database: %s (%llu turns refused since %llu s ago)",
			  last_error(), (unsigned long long) down.turns,
			  (unsigned long long) ((now - down.since) / (int64_t) USEC_PER_SEC));
	if (say)
		down.logged_at = now;
	store_rollback();
	if (engine_load() < 0 && say)
		log_error("cannot reload state from the database: %s", last_error());
	if (!retry_source)
		(void) sd_event_add_time_relative(D.event, &retry_source, CLOCK_MONOTONIC, RETRY_USEC,
						  100 * USEC_PER_MSEC, on_retry, NULL);
}

void server_retry_committed(void)
{
	if (!down.since)
		return;
	log_info("the database can be written again, after %llu refused turns",
		 (unsigned long long) down.turns);
	memset(&down, 0, sizeof(down));
	retry_source = sd_event_source_disable_unref(retry_source);
}

bool server_retry_waiting(void)
{
	return retry_source;
}

void server_retry_status(json_object *o)
{
	json_object *d = json_object_new_object();

	json_object_object_add(d, "writable", json_object_new_boolean(!down.since));
	json_object_object_add(d, "error", down.since ? json_object_new_string(down.error) : NULL);
	json_object_object_add(d, "failing_since", json_time(down.since));
	json_object_object_add(d, "refused_turns", json_object_new_int64((int64_t) down.turns));
	json_object_object_add(o, "database", d);
}

void server_retry_stop(void)
{
	retry_source = sd_event_source_disable_unref(retry_source);
}
