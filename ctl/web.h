/*
 * web.h - what the files of `dagctl web` share: the server's state, one
 * HTTP request as the handlers see it, and the prototypes of web.c (the
 * command), web-http.c (checks, routing, answers), web-api.c (the JSON API),
 * web-sse.c (the event and log streams) and web-mhd.c (libmicrohttpd,
 * loaded at run time).  Only those files include it.
 *
 * libmicrohttpd runs one thread per connection; a handler may block.  Every
 * handler that needs dagd opens its own connection to it (a struct ctl of its
 * own), as the user who runs dagctl web, and closes it when done.
 */
#pragma once

#include <microhttpd.h>

#include "dagctl.h"

/* libmicrohttpd's functions, loaded by web_mhd_load() (web-mhd.c): the calls
 * below go through this table. */
struct web_mhd {
	typeof(MHD_start_daemon) *start_daemon;
	typeof(MHD_stop_daemon) *stop_daemon;
	typeof(MHD_lookup_connection_value) *lookup_connection_value;
	typeof(MHD_create_response_from_buffer) *create_response_from_buffer;
	typeof(MHD_create_response_from_callback) *create_response_from_callback;
	typeof(MHD_add_response_header) *add_response_header;
	typeof(MHD_queue_response) *queue_response;
	typeof(MHD_destroy_response) *destroy_response;
};
extern struct web_mhd web_mhd;
#define MHD_start_daemon web_mhd.start_daemon
#define MHD_stop_daemon web_mhd.stop_daemon
#define MHD_lookup_connection_value web_mhd.lookup_connection_value
#define MHD_create_response_from_buffer web_mhd.create_response_from_buffer
#define MHD_create_response_from_callback web_mhd.create_response_from_callback
#define MHD_add_response_header web_mhd.add_response_header
#define MHD_queue_response web_mhd.queue_response
#define MHD_destroy_response web_mhd.destroy_response

#define WEB_COOKIE "dagctl_web"
#define WEB_TOKEN_LEN 64        /* hex digits of the page's secret */
#define WEB_BODY_MAX (1024 * 1024)

struct web {
	const char *socket_path;        /* dagd's */
	char token[WEB_TOKEN_LEN + 1];  /* the page's secret */
	volatile sig_atomic_t stopping; /* streams end at their next wake-up */
};

/* One request, as the router hands it to a handler. */
struct web_req {
	struct web *w;
	struct MHD_Connection *conn;
	const char *method, *url;
	const char *path[8];            /* the url's segments after "/api/v1/" */
	char *path_buf;
	size_t npath;
	json_object *body;              /* a POST's or PATCH's JSON body, or NULL */
};

/* One file of the page, compiled in (the generated web-assets.c). */
struct web_asset {
	const char *path, *type;
	const unsigned char *data;
	size_t len;
};
extern const struct web_asset web_assets[];

/* web-mhd.c */
int web_mhd_load(char *err, size_t err_size);

/* web-http.c */
enum MHD_Result web_handle(void *cls, struct MHD_Connection *conn, const char *url,
			   const char *method, const char *version, const char *upload_data,
			   size_t *upload_data_size, void **con_cls);
void web_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
		   enum MHD_RequestTerminationCode toe);
void web_headers(struct MHD_Response *resp);
enum MHD_Result web_send(struct web_req *q, unsigned status, struct MHD_Response *resp);
enum MHD_Result web_json(struct web_req *q, unsigned status, json_object *o);
enum MHD_Result web_error(struct web_req *q, unsigned status, const char *code,
			  const char *format, ...) __attribute__((format(printf, 4, 5)));
void web_scrub(json_object *o);

/* web-api.c */
int web_call(struct web *w, const char *cmd, json_object *args, json_object **ret_result,
	     json_object **ret_error);
enum MHD_Result web_api(struct web_req *q);
enum MHD_Result web_task_complete(struct web_req *q, const char *sandbox_id);

/* web-sse.c */
enum MHD_Result web_events(struct web_req *q);
enum MHD_Result web_log_stream(struct web_req *q, const char *task_id);
