/*
 * server.h - the socket loop (server.c, server-follow.c, server-socket.c).
 * Included by dagd.h, after the model: include dagd.h.
 */
#ifndef DAGD_SERVER_H
#define DAGD_SERVER_H

/* --- server.c, server-follow.c, server-socket.c --------------------------- */

#define OUT_HIGH (1024 * 1024)          /* stop reading a client above this */
#define OUT_FEED (256 * 1024)           /* feed followers below this */
#define OUT_MAX (64 * 1024 * 1024)      /* drop a client above this */

struct pend {
	char *line;                     /* ending with the id the request gave, then "}\n" */
	size_t len, id_len;
	bool durable;                   /* says what the batch changed: only once committed */
};

struct sub;
struct logsub;

struct client {
	int fd;
	sd_event_source *io;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	bool operator;
	bool closing;                   /* close once the output is out */
	uint64_t read_turn;             /* the turn it was last read in */
	bool paused;                    /* read again before the flush: it waits for it */
	bool eof;                       /* it will send no more */
	char *in;
	size_t in_len, in_cap;
	char *out;
	size_t out_len, out_off, out_cap;
	struct pend *pend;
	size_t n_pend, pend_bytes;
	struct sub *subs;               /* server-follow.c's */
	struct logsub *logsubs;
	struct client *next;
};

extern struct client *clients;

int server_listen(void);
void server_close(void);
void server_kick(void);                 /* run the end-of-turn flush (the server's own, and main's) */
void server_flush(void);
struct client *server_client_new(int fd);
unsigned server_clients(void);
int64_t server_committed_seq(void);
void server_status(json_object *o);     /* add the server's part of daemon.status */
/* durable: the reply says what this turn wrote, so goes out only once committed */
void server_reply(struct client *c, json_object *id, const char *head, const char *body, size_t n,
		  bool durable);
void client_out(struct client *c, const char *s, size_t n);
size_t client_unsent(const struct client *c);

int server_subscribe(struct client *c, json_object *id, int64_t since, int64_t project_id,
		     json_object *types);
int server_follow_log(struct client *c, json_object *id, int64_t task_id, unsigned attempt,
		      bool validation, int fd, off_t offset);
void follow_ended(void);                /* the logs the engine says ended */
bool follow_behind(const struct client *c);
void follow_feed(struct client *c);
void follow_free(struct client *c);
int server_socket_open(void);
int server_accept_start(int fd);
void server_accept_stop(void);
void server_accept_status(json_object *o);
/* server-retry.c: a database that cannot be written */
void server_retry_refused(void);        /* a commit failed: roll back, reload, retry in a second */
void server_retry_committed(void);
bool server_retry_waiting(void);
void server_retry_status(json_object *o);
void server_retry_stop(void);

#endif
