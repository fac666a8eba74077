/*
 * fuzz-line.c - libFuzzer target for what a client sends: each input is cut
 * into lines and handed to the command parser of a daemon running in this
 * process on a real database, exactly as the socket server does; then the
 * turn ends (dispatch, commit, replies).  Nothing a client sends may crash
 * it, leak, or trip a sanitizer.
 *
 *   make fuzz && build/fuzz/fuzz-line -max_total_time=60 tests/fuzz/corpus
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
	char db[64];
	int sv[2];

	if (!mkdtemp(dir))
		abort();
	D.state_dir = dir;
	D.socket_path = (char *) "/nonexistent";
	D.global_limit = 4;
	if (sd_event_new(&D.event) < 0)
		abort();
	snprintf(db, sizeof(db), "%s/dagd.db", dir);
	if (store_open(db) < 0 || engine_load() < 0)
		abort();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
		abort();
	client = server_client_new(sv[0]);
	peer = sv[1];
	atexit(cleanup);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), sink[65536];
	size_t start = 0;

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
	while (read(peer, sink, sizeof(sink)) > 0)
		;
	free(buf);
	return 0;
}
