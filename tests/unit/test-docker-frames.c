/*
 * test-docker-frames.c - the docker executor's reader of the Engine's
 * multiplexed output stream (plugins/docker/frames.c): frames whole, several
 * in one piece, cut anywhere (headers included), empty, large, and a stream
 * that is not multiplexed at all.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "docker.h"

/* What the reader put out: the payload bytes of each stream, concatenated. */
struct sink {
	char out[2][100000];
	size_t len[2];
	unsigned calls;
};

static void collect(void *userdata, unsigned stream, const void *data, size_t size) {
	struct sink *s = userdata;

	assert_in_range(stream, 1, 2);
	assert_true(s->len[stream - 1] + size <= sizeof(s->out[0]));
	memcpy(s->out[stream - 1] + s->len[stream - 1], data, size);
	s->len[stream - 1] += size;
	s->calls++;
}

/* Appends a frame of this stream and payload to buf at *len. */
static void frame(uint8_t *buf, size_t *len, uint8_t stream, const void *payload, uint32_t size) {
	uint8_t h[8] = { stream, 0, 0, 0, (uint8_t) (size >> 24), (uint8_t) (size >> 16),
			 (uint8_t) (size >> 8), (uint8_t) size };

	memcpy(buf + *len, h, sizeof(h));
	memcpy(buf + *len + sizeof(h), payload, size);
	*len += sizeof(h) + size;
}

static void assert_sink(const struct sink *s, const char *out, const char *err) {
	assert_int_equal(s->len[0], strlen(out));
	assert_memory_equal(s->out[0], out, s->len[0]);
	assert_int_equal(s->len[1], strlen(err));
	assert_memory_equal(s->out[1], err, s->len[1]);
}

static void one_frame_in_one_piece(void **state) {
	struct frame_reader fr = {};
	struct sink s = {};
	uint8_t buf[64];
	size_t len = 0;

	frame(buf, &len, 1, "hello\n", 6);
	assert_int_equal(frame_feed(&fr, buf, len, collect, &s), 0);
	assert_sink(&s, "hello\n", "");
	assert_int_equal(s.calls, 1);
}

static void several_frames_of_both_streams_in_one_piece(void **state) {
	struct frame_reader fr = {};
	struct sink s = {};
	uint8_t buf[128];
	size_t len = 0;

	frame(buf, &len, 1, "out 1\n", 6);
	frame(buf, &len, 2, "err 1\n", 6);
	frame(buf, &len, 1, "out 2\n", 6);
	assert_int_equal(frame_feed(&fr, buf, len, collect, &s), 0);
	assert_sink(&s, "out 1\nout 2\n", "err 1\n");
}

static void frames_cut_anywhere_come_out_whole(void **state) {
	uint8_t buf[256];
	size_t len = 0;

	frame(buf, &len, 1, "first line\n", 11);
	frame(buf, &len, 2, "oops\n", 5);
	frame(buf, &len, 1, "", 0);
	frame(buf, &len, 1, "last\n", 5);
	/* every way of cutting the stream in pieces of `step` bytes */
	for (size_t step = 1; step <= len; step++) {
		struct frame_reader fr = {};
		struct sink s = {};

		for (size_t off = 0; off < len; off += step)
			assert_int_equal(frame_feed(&fr, buf + off, off + step > len ? len - off : step, collect, &s), 0);
		assert_sink(&s, "first line\nlast\n", "oops\n");
		assert_int_equal(fr.header_len, 0);
		assert_int_equal(fr.left, 0);
	}
}

static void an_empty_piece_changes_nothing(void **state) {
	struct frame_reader fr = {};
	struct sink s = {};

	assert_int_equal(frame_feed(&fr, "", 0, collect, &s), 0);
	assert_int_equal(s.calls, 0);
	assert_int_equal(fr.header_len, 0);
}

static void a_large_frame_uses_all_four_length_bytes(void **state) {
	static uint8_t buf[70000 + 8];
	static char payload[70000 + 1];
	struct frame_reader fr = {};
	struct sink *s = calloc(1, sizeof(*s));
	size_t len = 0;

	assert_non_null(s);
	memset(payload, 'x', 70000);
	frame(buf, &len, 2, payload, 70000);
	assert_int_equal(buf[5], 0x01);
	assert_int_equal(frame_feed(&fr, buf, 5000, collect, s), 0);
	assert_int_equal(frame_feed(&fr, buf + 5000, len - 5000, collect, s), 0);
	assert_sink(s, "", payload);
	free(s);
}

static void a_stream_that_is_not_multiplexed_is_refused(void **state) {
	struct frame_reader fr = {};
	struct sink s = {};

	assert_int_equal(frame_feed(&fr, "hello, world\n", 13, collect, &s), -EBADMSG);
	assert_int_equal(s.calls, 0);
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(one_frame_in_one_piece),
		cmocka_unit_test(several_frames_of_both_streams_in_one_piece),
		cmocka_unit_test(frames_cut_anywhere_come_out_whole),
		cmocka_unit_test(an_empty_piece_changes_nothing),
		cmocka_unit_test(a_large_frame_uses_all_four_length_bytes),
		cmocka_unit_test(a_stream_that_is_not_multiplexed_is_refused),
	};

	return cmocka_run_group_tests_name("docker log frames", tests, NULL, NULL);
}
