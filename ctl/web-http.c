/*
 * web-http.c - every request of `dagctl web` comes here first: its body is
 * gathered, the page's secret is checked (from the cookie, or from the URL
 * once, which then sets the cookie), a state-changing request must come from
 * the page's own origin, and it is routed to a file of the page, the JSON
 * API, a stream, or the sandboxes' task-complete.  Every answer carries the
 * same strict headers (Content-Security-Policy and friends).
 */
#include <stdarg.h>
#include <string.h>
#include <strings.h>

#include "web.h"

#define CSP "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " \
	    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

/* What is kept of a connection's request between the calls of web_handle(). */
struct conn_state {
	char *body;
	size_t len;
	bool too_big;
};

void web_headers(struct MHD_Response *resp) {
	MHD_add_response_header(resp, "Content-Security-Policy", CSP);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(resp, "Cross-Origin-Opener-Policy", "same-origin");
	MHD_add_response_header(resp, "Cross-Origin-Resource-Policy", "same-origin");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
}

enum MHD_Result web_send(struct web_req *q, unsigned status, struct MHD_Response *resp) {
	enum MHD_Result ret;

	if (!resp)
		return MHD_NO;
	web_headers(resp);
	ret = MHD_queue_response(q->conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result send_text(struct web_req *q, unsigned status, const char *type,
				 const char *text) {
	struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(text), (void *) text,
								     MHD_RESPMEM_MUST_COPY);

	if (resp)
		MHD_add_response_header(resp, "Content-Type", type);
	return web_send(q, status, resp);
}

/* Drops every member named "token", at any depth: nothing of a task's token
 * reaches the page. */
void web_scrub(json_object *o) {
	if (json_object_is_type(o, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(o); i++)
			web_scrub(json_object_array_get_idx(o, i));
	} else if (json_object_is_type(o, json_type_object)) {
		json_object_object_del(o, "token");
		json_object_object_foreach(o, k, v) {
			(void) k;
			web_scrub(v);
		}
	}
}

enum MHD_Result web_json(struct web_req *q, unsigned status, json_object *o) {
	const char *s;

	web_scrub(o);
	s = json_object_to_json_string_ext(o, CTL_JSON_LINE);
	return send_text(q, status, "application/json", s);
}

enum MHD_Result web_error(struct web_req *q, unsigned status, const char *code,
			  const char *format, ...) {
	_cleanup_(json_object_putp) json_object *o = json_object_new_object(), *e = json_object_new_object();
	char msg[512];
	va_list ap;

	va_start(ap, format);
	vsnprintf(msg, sizeof msg, format, ap);
	va_end(ap);
	if (!o || !e)
		return MHD_NO;
	json_object_object_add(e, "code", json_object_new_string(code));
	json_object_object_add(e, "message", json_object_new_string(msg));
	json_object_object_add(o, "error", json_object_get(e));
	return web_json(q, status, o);
}

static bool secret_equal(const char *a, const char *b) {
	size_t n = strlen(b);
	unsigned char d = 0;

	if (!a || strlen(a) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		d |= (unsigned char) (a[i] ^ b[i]);
	return d == 0;
}

static const char *header(struct web_req *q, const char *name) {
	return MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, name);
}

/* Whether a request that changes something comes from the page itself: its
 * Origin, when a browser sent one, is the server's own. */
static bool same_origin(struct web_req *q) {
	const char *origin = header(q, "Origin"), *host = header(q, "Host"),
		*site = header(q, "Sec-Fetch-Site");

	if (site && strcmp(site, "same-origin") != 0 && strcmp(site, "none") != 0)
		return false;
	if (!origin)
		return true;
	if (!host || strncmp(origin, "http://", 7) != 0)
		return false;
	return strcmp(origin + 7, host) == 0;
}

static bool changes_state(const char *method) {
	return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0;
}

/* The first visit, with ?token=: the secret goes into a cookie and the URL
 * loses it. */
static enum MHD_Result set_cookie(struct web_req *q) {
	struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *) "", MHD_RESPMEM_PERSISTENT);
	char cookie[WEB_TOKEN_LEN + 128];

	if (!resp)
		return MHD_NO;
	snprintf(cookie, sizeof cookie, WEB_COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict", q->w->token);
	MHD_add_response_header(resp, "Set-Cookie", cookie);
	MHD_add_response_header(resp, "Location", "/");
	return web_send(q, MHD_HTTP_SEE_OTHER, resp);
}

static enum MHD_Result send_asset(struct web_req *q, const char *path) {
	if (strcmp(path, "/") == 0)
		path = "/index.html";
	for (const struct web_asset *a = web_assets; a->path; a++)
		if (strcmp(a->path, path + 1) == 0) {
			struct MHD_Response *resp = MHD_create_response_from_buffer(
				a->len, (void *) a->data, MHD_RESPMEM_PERSISTENT);

			if (resp)
				MHD_add_response_header(resp, "Content-Type", a->type);
			return web_send(q, MHD_HTTP_OK, resp);
		}
	return web_error(q, MHD_HTTP_NOT_FOUND, "not_found", "no such page: %s", path);
}

/* Splits what follows "/api/v1/" into q->path. */
static int split_path(struct web_req *q, const char *rest) {
	char *s, *save = NULL;

	q->path_buf = strdup(rest);
	if (!q->path_buf)
		return -ENOMEM;
	for (s = strtok_r(q->path_buf, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
		if (q->npath == ELEMENTSOF(q->path))
			return -E2BIG;
		q->path[q->npath++] = s;
	}
	return 0;
}

static enum MHD_Result route(struct web_req *q) {
	const char *tok;
	bool api = strncmp(q->url, "/api/v1/", 8) == 0;

	if (api && split_path(q, q->url + 8) < 0)
		return web_error(q, MHD_HTTP_NOT_FOUND, "not_found", "no such route");

	/* a sandbox's report carries its task's token, not the page's secret */
	if (api && q->npath == 3 && strcmp(q->path[0], "sandboxes") == 0 &&
	    strcmp(q->path[2], "task-complete") == 0) {
		if (strcmp(q->method, "POST") != 0)
			return web_error(q, MHD_HTTP_METHOD_NOT_ALLOWED, "bad_request", "use POST");
		if (!same_origin(q))
			return web_error(q, MHD_HTTP_FORBIDDEN, "forbidden", "cross-origin request");
		return web_task_complete(q, q->path[1]);
	}

	tok = MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, "token");
	if (tok && secret_equal(tok, q->w->token) && !api && strcmp(q->method, "GET") == 0)
		return set_cookie(q);
	if (!secret_equal(MHD_lookup_connection_value(q->conn, MHD_COOKIE_KIND, WEB_COOKIE), q->w->token))
		return api ? web_error(q, MHD_HTTP_UNAUTHORIZED, "unauthorized",
				       "this needs the secret of the URL dagctl web printed")
			   : send_text(q, MHD_HTTP_UNAUTHORIZED, "text/plain; charset=utf-8",
				       "401: open the URL that `dagctl web` printed (it carries the secret).\n");
	if (changes_state(q->method) && !same_origin(q))
		return web_error(q, MHD_HTTP_FORBIDDEN, "forbidden", "cross-origin request");

	if (api)
		return web_api(q);
	if (strcmp(q->method, "GET") != 0 && strcmp(q->method, "HEAD") != 0)
		return web_error(q, MHD_HTTP_METHOD_NOT_ALLOWED, "bad_request", "use GET");
	return send_asset(q, q->url);
}

enum MHD_Result web_handle(void *cls, struct MHD_Connection *conn, const char *url,
			   const char *method, const char *version, const char *upload_data,
			   size_t *upload_data_size, void **con_cls) {
	struct conn_state *st = *con_cls;
	struct web_req q = { .w = cls, .conn = conn, .method = method, .url = url };
	enum MHD_Result ret;

	if (!st) {
		st = calloc(1, sizeof *st);
		if (!st)
			return MHD_NO;
		*con_cls = st;
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;

		if (st->len + n > WEB_BODY_MAX)
			st->too_big = true;
		else {
			char *b = realloc(st->body, st->len + n + 1);

			if (!b)
				return MHD_NO;
			memcpy(b + st->len, upload_data, n);
			st->body = b;
			st->len += n;
			st->body[st->len] = '\0';
		}
		*upload_data_size = 0;
		return MHD_YES;
	}

	if (st->too_big)
		return web_error(&q, MHD_HTTP_CONTENT_TOO_LARGE, "bad_request", "the body is over 1 MiB");
	if (st->len > 0 && (ctl_parse_json(st->body, st->len, &q.body) < 0 ||
			    !json_object_is_type(q.body, json_type_object))) {
		json_object_put(TAKE_PTR(q.body));
		return web_error(&q, MHD_HTTP_BAD_REQUEST, "bad_request", "the body is not a JSON object");
	}
	ret = route(&q);
	json_object_put(q.body);
	free(q.path_buf);
	return ret;
}

void web_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
		   enum MHD_RequestTerminationCode toe) {
	struct conn_state *st = *con_cls;

	if (st) {
		free(st->body);
		free(st);
		*con_cls = NULL;
	}
}
