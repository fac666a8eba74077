/*
 * http.c - HTTP on libcurl's multi interface driven by the host's sd-event
 * loop: to the Docker engine over its Unix socket (http_submit()), or to any
 * URL (http_submit_url(), which the daytona executor uses too).
 *
 * libcurl says which sockets to watch (CURLMOPT_SOCKETFUNCTION: one sd-event
 * io source each) and when it wants to be called back (CURLMOPT_TIMERFUNCTION:
 * one sd-event time source).  Those sources call curl_multi_socket_action(),
 * then every finished transfer is handed to its done() callback.  So nothing
 * here ever waits, except http_get_sync(), which init() alone uses.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include <curl/curl.h>

#include "common.h"

/* A buffered response larger than this is refused. */
#define BODY_MAX (16u << 20)
/* How long connecting to the engine's socket may take. */
#define CONNECT_TIMEOUT_MS 10000L

struct watch {
	struct http *h;
	sd_event_source *source;
	struct watch *prev, *next;
};

struct http {
	sd_event *event;
	CURLM *multi;
	sd_event_source *timer;
	struct watch *watches;
	struct http_request *requests;
};

struct http_request {
	struct http *h;
	CURL *easy;
	struct curl_slist *headers;
	char *engine;
	char *body;
	size_t len, cap;
	long status;
	bool headers_seen;
	bool too_big;
	CURLcode result;
	long os_errno;                  /* why connecting failed, if it did */
	const struct http_calls *calls;
	void *userdata;
	struct http_request *prev, *next;
	char errbuf[CURL_ERROR_SIZE];
};


/* ---- buffers ---- */

static bool buffer_append(struct http_request *req, const void *data, size_t size) {
	if (size > BODY_MAX - req->len) {
		req->too_big = true;
		return false;
	}
	if (req->len + size + 1 > req->cap) {
		size_t cap = req->cap ? req->cap : 1024;
		char *p;

		while (cap < req->len + size + 1)
			cap *= 2;
		p = realloc(req->body, cap);
		if (!p)
			return false;
		req->body = p;
		req->cap = cap;
	}
	memcpy(req->body + req->len, data, size);
	req->len += size;
	req->body[req->len] = '\0';
	return true;
}

static size_t on_write(char *data, size_t size, size_t n, void *userdata) {
	struct http_request *req = userdata;

	size *= n;
	if (req->calls && req->calls->data && req->status < 300)
		return req->calls->data(req, data, size, req->userdata) < 0 ? 0 : size;
	return buffer_append(req, data, size) ? size : 0;
}

static size_t on_header(char *line, size_t size, size_t n, void *userdata) {
	struct http_request *req = userdata;
	long status = 0;

	size *= n;
	if (!((size == 2 && line[0] == '\r' && line[1] == '\n') || (size == 1 && line[0] == '\n')))
		return size;
	/* the end of one response's headers; 1xx ones are followed by another */
	(void) curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200)
		return size;
	req->status = status;
	if (!req->headers_seen) {
		req->headers_seen = true;
		if (req->calls && req->calls->headers)
			req->calls->headers(req, status, req->userdata);
	}
	return size;
}

/* ---- requests ---- */

/* Why an exchange failed, in a person's words: the system's reason when
 * connecting to the socket failed, else libcurl's. */
static const char *failure(const struct http_request *req) {
	if (req->too_big)
		return "the answer is too large";
	if (req->result == CURLE_COULDNT_CONNECT && req->os_errno > 0)
		return strerror((int) req->os_errno);
	return req->errbuf[0] ? req->errbuf : curl_easy_strerror(req->result);
}

static void request_free(struct http_request *req) {
	if (!req)
		return;
	if (req->easy) {
		if (req->h)
			(void) curl_multi_remove_handle(req->h->multi, req->easy);
		curl_easy_cleanup(req->easy);
	}
	curl_slist_free_all(req->headers);
	free(req->engine);
	free(req->body);
	free(req);
}

/* Sets what a request and http_get_sync() have in common. */
static int easy_setup(CURL *easy, struct http_request *req, const char *engine, const char *url,
		      long timeout_ms) {
	if (curl_easy_setopt(easy, CURLOPT_URL, url) != CURLE_OK ||
	    (engine && curl_easy_setopt(easy, CURLOPT_UNIX_SOCKET_PATH, engine) != CURLE_OK) ||
	    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS) != CURLE_OK ||
	    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout_ms) != CURLE_OK ||
	    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_write) != CURLE_OK ||
	    curl_easy_setopt(easy, CURLOPT_WRITEDATA, req) != CURLE_OK ||
	    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK ||
	    curl_easy_setopt(easy, CURLOPT_HEADERDATA, req) != CURLE_OK ||
	    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, req->errbuf) != CURLE_OK)
		return -ENOMEM;
	return 0;
}

int http_submit_url(struct http *h, const char *unix_socket, const char *url, const char *const *headers,
		    const char *method, const char *body, long timeout_ms, const struct http_calls *calls,
		    void *userdata, struct http_request **ret) {
	struct http_request *req = calloc(1, sizeof(*req));

	if (!req)
		return -ENOMEM;
	req->calls = calls;
	req->userdata = userdata;
	req->engine = strdup(unix_socket ? unix_socket : url);
	req->easy = curl_easy_init();
	if (!req->engine || !req->easy)
		goto oom;
	if (easy_setup(req->easy, req, unix_socket, url, timeout_ms) < 0 ||
	    curl_easy_setopt(req->easy, CURLOPT_PRIVATE, req) != CURLE_OK)
		goto oom;
	for (size_t i = 0; headers && headers[i]; i++) {
		struct curl_slist *l = curl_slist_append(req->headers, headers[i]);

		if (!l)
			goto oom;
		req->headers = l;
	}
	if (strcmp(method, "POST") == 0) {
		/* no "Expect: 100-continue" round trip */
		struct curl_slist *l = curl_slist_append(req->headers, "Expect:");

		bool typed = false;

		for (size_t i = 0; headers && headers[i]; i++)
			typed = typed || strncasecmp(headers[i], "Content-Type:", 13) == 0;
		if (l && body && !typed)
			l = curl_slist_append(req->headers = l, "Content-Type: application/json");
		if (!l)
			goto oom;
		req->headers = l;
		if (curl_easy_setopt(req->easy, CURLOPT_COPYPOSTFIELDS, body ? body : "") != CURLE_OK)
			goto oom;
	} else if (strcmp(method, "GET") != 0 &&
		   curl_easy_setopt(req->easy, CURLOPT_CUSTOMREQUEST, method) != CURLE_OK)
		goto oom;
	if (req->headers && curl_easy_setopt(req->easy, CURLOPT_HTTPHEADER, req->headers) != CURLE_OK)
		goto oom;

	if (curl_multi_add_handle(h->multi, req->easy) != CURLM_OK)
		goto oom;
	req->h = h;
	LIST_LINK(h->requests, req);
	if (ret)
		*ret = req;
	return 0;

oom:
	request_free(req);
	return -ENOMEM;
}

void http_cancel(struct http_request *req) {
	/* (a request in its own done() has no h: it is freed right after) */
	if (!req || !req->h)
		return;
	LIST_UNLINK(req->h->requests, req);
	request_free(req);
}

long http_status(const struct http_request *req) {
	return req->status;
}

const char *http_body(const struct http_request *req) {
	return req->body ? req->body : "";
}

const char *http_engine(const struct http_request *req) {
	return req->engine;
}

const char *http_failure(const struct http_request *req) {
	return req->result == CURLE_OK && !req->too_big ? NULL : failure(req);
}

bool http_ok(const struct http_request *req) {
	return req->result == CURLE_OK && ((req->status >= 200 && req->status < 300) || req->status == 304);
}

char *http_error(const struct http_request *req) {
	_cleanup_json_ json_object *o = NULL;
	json_object *m;
	char *s;

	if (req->result != CURLE_OK) {
		if (asprintf(&s, "cannot talk to the Docker engine at '%s': %s", req->engine, failure(req)) < 0)
			return NULL;
		return s;
	}
	o = req->body ? json_tokener_parse(req->body) : NULL;
	if (o && json_object_object_get_ex(o, "message", &m) && json_object_is_type(m, json_type_string))
		return strdup(json_object_get_string(m));
	if (asprintf(&s, "the Docker engine answered HTTP %ld", req->status) < 0)
		return NULL;
	return s;
}

/* ---- the loop ---- */

/* Hands every finished transfer to its done() and frees it. */
static void collect(struct http *h) {
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(h->multi, &left))) {
		struct http_request *req = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		(void) curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **) &req);
		if (!req)
			continue;
		req->result = m->data.result;
		(void) curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &req->status);
		(void) curl_easy_getinfo(req->easy, CURLINFO_OS_ERRNO, &req->os_errno);
		(void) curl_multi_remove_handle(h->multi, req->easy);
		LIST_UNLINK(h->requests, req);
		req->h = NULL;
		if (req->calls && req->calls->done)
			req->calls->done(req, req->userdata);
		request_free(req);
	}
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
	struct http *h = ((struct watch *) userdata)->h;
	int flags = 0, running;

	if (revents & EPOLLIN)
		flags |= CURL_CSELECT_IN;
	if (revents & EPOLLOUT)
		flags |= CURL_CSELECT_OUT;
	if (revents & (EPOLLERR | EPOLLHUP))
		flags |= CURL_CSELECT_ERR;
	/* the watch may be gone after this */
	(void) curl_multi_socket_action(h->multi, fd, flags, &running);
	collect(h);
	return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
	struct http *h = userdata;
	int running;

	(void) curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	collect(h);
	return 0;
}

static void watch_free(struct http *h, struct watch *w) {
	LIST_UNLINK(h->watches, w);
	sd_event_source_disable_unref(w->source);
	free(w);
}

/* CURLMOPT_SOCKETFUNCTION: watch fd for what libcurl waits for. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
	struct http *h = userp;
	struct watch *w = socketp;
	uint32_t events = 0;

	if (what == CURL_POLL_REMOVE) {
		if (w) {
			(void) curl_multi_assign(h->multi, fd, NULL);
			watch_free(h, w);
		}
		return 0;
	}
	if (what & CURL_POLL_IN)
		events |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		events |= EPOLLOUT;
	if (w)
		return sd_event_source_set_io_events(w->source, events) < 0 ? -1 : 0;

	w = calloc(1, sizeof(*w));
	if (!w)
		return -1;
	w->h = h;
	if (sd_event_add_io(h->event, &w->source, fd, events, on_io, w) < 0) {
		free(w);
		return -1;
	}
	LIST_LINK(h->watches, w);
	(void) curl_multi_assign(h->multi, fd, w);
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: call libcurl back in timeout_ms (-1: never). */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp) {
	struct http *h = userp;
	uint64_t now;

	if (timeout_ms < 0)
		return sd_event_source_set_enabled(h->timer, SD_EVENT_OFF) < 0 ? -1 : 0;
	if (sd_event_now(h->event, CLOCK_MONOTONIC, &now) < 0 ||
	    sd_event_source_set_time(h->timer, now + (uint64_t) timeout_ms * 1000) < 0 ||
	    sd_event_source_set_enabled(h->timer, SD_EVENT_ONESHOT) < 0)
		return -1;
	return 0;
}

int http_new(sd_event *event, struct http **ret) {
	struct http *h;
	int r;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -EIO;
	h = calloc(1, sizeof(*h));
	if (!h) {
		curl_global_cleanup();
		return -ENOMEM;
	}
	h->event = sd_event_ref(event);
	h->multi = curl_multi_init();
	if (!h->multi) {
		http_free(h);
		return -ENOMEM;
	}
	r = sd_event_add_time(event, &h->timer, CLOCK_MONOTONIC, 0, 1000, on_timer, h);
	if (r < 0) {
		http_free(h);
		return r;
	}
	(void) sd_event_source_set_enabled(h->timer, SD_EVENT_OFF);
	if (curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket) != CURLM_OK ||
	    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h) != CURLM_OK ||
	    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK ||
	    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h) != CURLM_OK) {
		http_free(h);
		return -EIO;
	}
	*ret = h;
	return 0;
}

struct http *http_free(struct http *h) {
	if (!h)
		return NULL;
	while (h->requests)
		http_cancel(h->requests);
	if (h->multi)
		(void) curl_multi_cleanup(h->multi);
	while (h->watches)
		watch_free(h, h->watches);
	sd_event_source_disable_unref(h->timer);
	sd_event_unref(h->event);
	free(h);
	curl_global_cleanup();
	return NULL;
}

int http_get_sync_url(const char *unix_socket, const char *url, const char *what, long timeout_ms,
		      long *ret_status, char **ret_body, char **ret_error) {
	struct http_request req = {};
	CURL *easy;
	CURLcode c;
	int r;

	easy = curl_easy_init();
	if (!easy)
		return errorf(ret_error, -ENOMEM, "Out of memory");
	req.easy = easy;
	req.engine = (char *) (unix_socket ? unix_socket : url);
	r = easy_setup(easy, &req, unix_socket, url, timeout_ms);
	c = r < 0 ? CURLE_OUT_OF_MEMORY : curl_easy_perform(easy);
	req.result = c;
	(void) curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &req.status);
	(void) curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &req.os_errno);
	curl_easy_cleanup(easy);
	if (c != CURLE_OK) {
		free(req.body);
		return errorf(ret_error, c == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT :
				         c == CURLE_OUT_OF_MEMORY ? -ENOMEM : -ECONNREFUSED,
			      "cannot reach %s at '%s': %s", what, req.engine, failure(&req));
	}
	*ret_status = req.status;
	*ret_body = req.body ? req.body : strdup("");
	return *ret_body ? 0 : errorf(ret_error, -ENOMEM, "Out of memory");
}
