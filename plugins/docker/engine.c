/*
 * engine.c - requests to the Docker engine: the Engine API's paths, under
 * its pinned version, over the engine's Unix socket, on the shared HTTP
 * client (common/http.c).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "docker.h"

int http_submit(struct http *h, const char *engine, const char *method, const char *body,
		long timeout_ms, const struct http_calls *calls, void *userdata,
		struct http_request **ret, const char *path_format, ...) {
	_cleanup_free_ char *path = NULL, *url = NULL;
	va_list ap;
	int r;

	va_start(ap, path_format);
	r = vasprintf(&path, path_format, ap);
	va_end(ap);
	if (r < 0) {
		path = NULL;
		return -ENOMEM;
	}
	if (asprintf(&url, "http://docker/v" DOCKER_API_VERSION "%s", path) < 0) {
		url = NULL;
		return -ENOMEM;
	}
	return http_submit_url(h, engine, url, NULL, method, body, timeout_ms, calls, userdata, ret);
}

int http_get_sync(const char *engine, const char *path, long timeout_ms, long *ret_status,
		  char **ret_body, char **ret_error) {
	_cleanup_free_ char *url = NULL;

	if (asprintf(&url, "http://docker%s", path) < 0) {
		url = NULL;
		return errorf(ret_error, -ENOMEM, "Out of memory");
	}
	return http_get_sync_url(engine, url, "the Docker engine", timeout_ms, ret_status, ret_body,
				 ret_error);
}
