/*
 * fuzz-line.c - libFuzzer target for what a client sends: each input is cut
 * into lines and handed to the command parser of a daemon running in this
 * process, exactly as the socket server does; then the turn ends (dispatch,
 * commit, replies).  Every input starts from a clean state: an empty
 * in-memory database and an empty engine, freed again after it, so that
 * inputs do not slow each other down and a leak is a leak.  Nothing a client
 * sends may crash it, leak, or trip a sanitizer; everything it is sent back
 * must be valid UTF-8.
 *
 *   make fuzz && build/fuzz/fuzz-line -dict=tests/fuzz/dagd.dict tests/fuzz/corpus
 */
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dagd.h"

struct daemon D;
static struct client *client;
static int peer = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[] = "/tmp/dagd-fuzz.XXXXXX";

static int rm(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(p);
}

static void cleanup(void)
{
	store_close();
	nftw(dir, rm, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int sv[2];

	if (!mkdtemp(dir))
		abort();
	D.state_dir = dir;
	D.socket_path = (char *) "/nonexistent";
	D.global_limit = 4;
	if (sd_event_new(&D.event) < 0 || store_open(":memory:") < 0)
		abort();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
		abort();
	client = server_client_new(sv[0]);
	peer = sv[1];
	atexit(cleanup);
	return 0;
}

/* Read what the daemon sent; it must be valid UTF-8 (a character cut in
 * two by the read is kept for the next). */
static void drain(void)
{
	static char sink[(1 << 16) + 4];
	static size_t keep;
	ssize_t n;

	while ((n = read(peer, sink + keep, sizeof(sink) - 4)) > 0) {
		size_t total = keep + (size_t) n, whole = utf8_complete(sink, total);

		if (!utf8_valid(sink, whole))
			abort();
		keep = total - whole;
		memmove(sink, sink + whole, keep);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1);
	size_t start = 0;

	if (store_wipe() < 0)
		abort();
	engine_reset();
	memcpy(buf, data, size);
	buf[size] = 0;
	for (size_t i = 0; i <= size; i++) {
		if (i < size && buf[i] != '\n')
			continue;
		buf[i] = 0;
		if (i > start)
			cmd_line(client, true, buf + start, i - start);
		start = i + 1;
	}
	server_flush();
	drain();
	follow_free(client);
	engine_free();
	free(buf);
	return 0;
}
