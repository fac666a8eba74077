/*
 * frames.c - the reader of the Engine's multiplexed output stream.
 *
 * Without a TTY, the logs (and attach) endpoints send a container's stdout
 * and stderr interleaved as frames: an 8-byte header (the stream: 0 stdin,
 * 1 stdout, 2 stderr, 3 the engine's own errors; three zero bytes; the
 * payload's length, 32-bit big endian), then the payload.  The pieces libcurl
 * hands over are cut anywhere, headers included, so the reader keeps its
 * place between calls.
 */
#include <errno.h>
#include <string.h>

#include "docker.h"

int frame_feed(struct frame_reader *fr, const void *data, size_t size, frame_output_fn out, void *userdata) {
	const uint8_t *p = data;

	while (size > 0) {
		size_t n;

		if (fr->left > 0) {
			n = size < fr->left ? size : fr->left;
			out(userdata, fr->stream, p, n);
			fr->left -= (uint32_t) n;
			p += n;
			size -= n;
			continue;
		}

		n = sizeof(fr->header) - fr->header_len;
		if (n > size)
			n = size;
		memcpy(fr->header + fr->header_len, p, n);
		fr->header_len += n;
		p += n;
		size -= n;
		if (fr->header_len < sizeof(fr->header))
			break;

		if (fr->header[0] > 3 || fr->header[1] || fr->header[2] || fr->header[3])
			return -EBADMSG;
		fr->stream = fr->header[0];
		fr->left = (uint32_t) fr->header[4] << 24 | (uint32_t) fr->header[5] << 16 |
			   (uint32_t) fr->header[6] << 8 | (uint32_t) fr->header[7];
		fr->header_len = 0;
	}
	return 0;
}
