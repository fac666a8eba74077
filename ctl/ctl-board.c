/*
 * ctl-board.c - board: a project as a Kanban board (drawn by
 * ctl-board-draw.c), once, or live (--watch) in the terminal's alternate
 * screen, redrawn from the project's events once per burst and each second
 * (the times on the cards age), with keys to toggle autonomous mode, start
 * processing and quit.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <termios.h>

#include "dagctl.h"

#define QUIET_USEC 20000        /* a burst of events is over after this long without one */
#define BURST_USEC 100000       /* ... or this long after its first: draw at most this often */
#define TICK_USEC 1000000       /* the times on the cards age */

static int write_all(int fd, const char *p, size_t n) {
	while (n > 0) {
		ssize_t k = write(fd, p, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		p += k;
		n -= (size_t) k;
	}
	return 0;
}

static void size_of(struct board *b, json_object *args) {
	int rows = 0, cols = 0, w, h;

	ctl_size_option(args, "width", &w);
	ctl_size_option(args, "height", &h);
	if (ctl_term_size(STDOUT_FILENO, &rows, &cols) < 0) {
		const char *e = getenv("COLUMNS");

		cols = e && atoi(e) > 0 ? atoi(e) : 80;
		rows = 0;
	} else if (!b->watch)
		rows--;         /* the prompt's line */
	b->width = w ? w : cols;
	b->height = h ? h : rows;
}

/* --- watching ------------------------------------------------------------ */

/* The terminal as it was, and stderr while the board has the screen. */
static struct termios saved_tio;
static bool have_tio, on_screen;
static int saved_stderr = -EBADF, held_stderr = -EBADF;

/* Takes the screen: the alternate one, no cursor, keys one by one without
 * echo; what would go to stderr meanwhile is held until it is given back. */
static void screen_enter(void) {
	static const char enter[] = "\033[?1049h\033[?25l\033[H\033[2J";

	if (tcgetattr(STDIN_FILENO, &saved_tio) == 0) {
		struct termios t = saved_tio;

		t.c_lflag &= ~(ICANON | ECHO);
		t.c_cc[VMIN] = 1;
		t.c_cc[VTIME] = 0;
		have_tio = tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
	}
	fflush(stderr);
	held_stderr = memfd_create("dagctl-stderr", MFD_CLOEXEC);
	if (held_stderr >= 0) {
		saved_stderr = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
		if (saved_stderr < 0 || dup2(held_stderr, STDERR_FILENO) < 0) {
			if (saved_stderr >= 0)
				close(TAKE_FD(saved_stderr));
			close(TAKE_FD(held_stderr));
		}
	}
	(void) write_all(STDOUT_FILENO, enter, sizeof enter - 1);
	on_screen = true;
}

/* Gives the terminal back as it was, then what was held of stderr. */
static void screen_leave(void) {
	static const char leave[] = "\033[0m\033[?25h\033[?1049l";
	char buf[4096];
	ssize_t n;

	if (!on_screen)
		return;
	on_screen = false;
	(void) write_all(STDOUT_FILENO, leave, sizeof leave - 1);
	if (have_tio)
		(void) tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
	have_tio = false;
	if (saved_stderr >= 0) {
		fflush(stderr);
		dup2(saved_stderr, STDERR_FILENO);
		close(TAKE_FD(saved_stderr));
		lseek(held_stderr, 0, SEEK_SET);
		while ((n = read(held_stderr, buf, sizeof buf)) > 0)
			(void) write_all(STDERR_FILENO, buf, (size_t) n);
		close(TAKE_FD(held_stderr));
	}
}

static void note(struct board *b, bool bad, const char *format, ...) __attribute__((format(printf, 3, 4)));
static void note(struct board *b, bool bad, const char *format, ...) {
	va_list ap;

	va_start(ap, format);
	vsnprintf(b->note, sizeof b->note, format, ap);
	va_end(ap);
	b->note_bad = bad;
}

/* The last line: the keys, and what happened last. */
static void draw_status(struct board *b, struct sbuf *o, int rows) {
	static const char keys[] = "a autonomous on/off  s start processing  q quit";

	sbuf_printf(o, "\033[%d;1H", rows);
	if (b->note[0]) {
		sbuf_style(o, b->colour, b->note_bad ? "1;31" : "1");
		sbuf_text(o, b->note, b->width - 1, false, b->g);
		sbuf_style(o, b->colour, NULL);
		if (text_width(b->note) + 4 + (int) strlen(keys) < b->width - 1) {
			sbuf_printf(o, "%*s", b->width - 1 - text_width(b->note) - (int) strlen(keys), "");
			sbuf_style(o, b->colour, "2");
			sbuf_text(o, keys, (int) strlen(keys), false, b->g);
			sbuf_style(o, b->colour, NULL);
		}
	} else {
		sbuf_style(o, b->colour, "2");
		sbuf_text(o, keys, b->width - 1, false, b->g);
		sbuf_style(o, b->colour, NULL);
	}
	sbuf_printf(o, "\033[K");
}

static int redraw(struct board *b) {
	_cleanup_(sbuf_freep) struct sbuf o = {};
	int rows, cols, r;

	if (ctl_term_size(STDOUT_FILENO, &rows, &cols) >= 0) {
		b->width = cols;
		b->height = rows;
	}
	sbuf_printf(&o, "\033[H");
	r = board_draw(b, &o);
	if (r < 0)
		return r;
	/* what does not fit is cut: the status line keeps its place */
	for (size_t i = 0, lines = 0; i < o.len; i++)
		if (o.s[i] == '\n' && ++lines == (size_t) b->height - 1) {
			o.len = i + 1;
			break;
		}
	sbuf_printf(&o, "\033[J");
	draw_status(b, &o, b->height);
	return write_all(STDOUT_FILENO, o.s, o.len);
}

/* A request from a key: its result, or NULL with the reason noted. */
static json_object *key_call(struct ctl *c, struct board *b, const char *cmd, json_object *args) {
	_cleanup_(json_object_putp) json_object *reply = NULL;
	json_object *e;
	int r;

	if (b->lost) {
		note(b, true, "not connected to dagd");
		return NULL;
	}
	c->quiet = true;
	r = ctl_request(c, cmd, args, &reply);
	c->quiet = false;
	if (r < 0) {
		if (r != -EINTR)
			note(b, true, "%s", c->err);
		return NULL;
	}
	if (json_object_get_boolean(ctl_get(reply, "ok", json_type_boolean)))
		return json_object_get(ctl_get(reply, "result", json_type_object));
	e = ctl_get(reply, "error", json_type_object);
	note(b, true, "%s: %s", ctl_str(e, "code"), ctl_str(e, "message"));
	return NULL;
}

static void key(struct ctl *c, struct board *b, char k) {
	_cleanup_(json_object_putp) json_object *args = json_object_new_object(), *result = NULL;
	json_object *ids;

	if (!args)
		return;
	json_object_object_add(args, "project", json_object_new_string(b->v.project));
	if (k == 'a') {
		bool on = !board_autonomous(b);

		json_object_object_add(args, "enabled", json_object_new_boolean(on));
		result = key_call(c, b, "project.set_autonomous", args);
		if (result)
			note(b, false, "autonomous mode %s", on ? "on" : "off");
	} else if (k == 's') {
		result = key_call(c, b, "project.start", args);
		ids = ctl_get(result, "released", json_type_array);
		if (ids && json_object_array_length(ids) > 0)
			note(b, false, "released %zu ready task%s", json_object_array_length(ids),
			     json_object_array_length(ids) == 1 ? "" : "s");
		else if (result)
			note(b, false, "no ready task to release");
	}
}

/* Reads the keys typed; true if one said to quit. */
static bool read_keys(struct ctl *c, struct board *b, bool *ret_eof) {
	char buf[64];
	ssize_t n = read(STDIN_FILENO, buf, sizeof buf);

	if (n <= 0) {
		*ret_eof = n == 0 || (errno != EINTR && errno != EAGAIN);
		return false;
	}
	for (ssize_t i = 0; i < n; i++)
		switch (buf[i]) {
		case 'q':
		case 'Q':
			return true;
		case 'a':
		case 'A':
			key(c, b, 'a');
			break;
		case 's':
		case 'S':
			key(c, b, 's');
			break;
		default:
			break;
		}
	return false;
}

static void lose(struct ctl *c, struct board *b, int64_t *retry_at, int64_t *pause) {
	b->lost = true;
	note(b, true, "lost dagd: %s; reconnecting", c->err);
	ctl_disconnect(c);
	*pause = ctl_backoff(0);
	*retry_at = ctl_monotonic() + *pause;
}

static int watch(struct ctl *c, struct board *b) {
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGWINCH, SIGTSTP, 0 };
	int64_t burst = 0, last = 0, drawn = 0, retry_at = 0, pause = 0;
	bool keys = isatty(STDIN_FILENO), dirty = true, quit = false;
	int r = 0;

	ctl_catch_signals(c, sigs);
	r = view_open(c, &b->v);
	if (r < 0)
		return r;
	screen_enter();
	while (!quit) {
		struct pollfd p[2] = { { .fd = -1, .events = POLLIN }, { .fd = -1, .events = POLLIN } };
		int64_t now = ctl_monotonic(), wake = drawn + TICK_USEC;
		struct timespec ts;

		/* take what the daemon sent */
		while (!b->lost) {
			_cleanup_(json_object_putp) json_object *line = NULL;

			c->quiet = true;
			r = ctl_read_ready(c, &line);
			c->quiet = false;
			if (r == 0)
				break;
			if (r < 0 && ctl_lost(r)) {
				lose(c, b, &retry_at, &pause);
				dirty = true;
				burst = 0;
				break;
			}
			if (r < 0)
				goto out;
			if (view_apply(&b->v, line)) {
				last = ctl_monotonic();
				if (!burst)
					burst = last;
			}
		}
		if (b->v.deleted) {
			fprintf(stderr, "dagctl: project %s was deleted\n", b->v.project);
			r = -ECANCELED;
			goto out;
		}

		now = ctl_monotonic();
		if (b->lost && now >= retry_at) {
			r = ctl_reopen(c, view_open, &b->v);
			if (r >= 0) {
				b->lost = false;
				note(b, false, "reconnected to dagd");
				dirty = true;
				continue;
			}
			if (r != -EINTR && !ctl_lost(r))
				goto out;
			pause = ctl_backoff(pause);
			retry_at = now + pause;
		}
		if (dirty || (burst && (now - last >= QUIET_USEC || now - burst >= BURST_USEC)) ||
		    now >= drawn + TICK_USEC) {
			r = redraw(b);
			if (r < 0)
				goto out;
			drawn = now;
			dirty = false;
			burst = 0;
			wake = now + TICK_USEC;
		}
		if (burst && last + QUIET_USEC < wake)
			wake = last + QUIET_USEC;
		if (burst && burst + BURST_USEC < wake)
			wake = burst + BURST_USEC;
		if (b->lost && retry_at < wake)
			wake = retry_at;

		if (keys)
			p[0].fd = STDIN_FILENO;
		if (!b->lost)
			p[1].fd = c->fd;
		now = ctl_monotonic();
		ts = wake > now ? (struct timespec) { (wake - now) / 1000000, (wake - now) % 1000000 * 1000 }
				: (struct timespec) {};
		if (ppoll(p, 2, &ts, c->waitmask) < 0) {
			if (errno != EINTR) {
				r = -errno;
				goto out;
			}
		} else if (p[0].revents) {
			bool eof = false;

			quit = read_keys(c, b, &eof);
			if (eof)
				keys = false;
			dirty = true;
		}
		/* (signals come in only while waiting: in ppoll(), or in a key's request) */
		switch (ctl_caught()) {
		case 0:
			break;
		case SIGWINCH:
			dirty = true;
			break;
		case SIGTSTP:
			screen_leave();
			kill(getpid(), SIGSTOP);
			screen_enter();
			dirty = true;
			break;
		default:
			quit = true;
		}
	}
	r = 0;
out:
	screen_leave();
	return r;
}

static int board_exec(struct ctl *c, const struct ctl_cmd *cmd, json_object *args,
		      int argc, char **argv) {
	_cleanup_(sbuf_freep) struct sbuf o = {};
	struct board b = { .v = VIEW_INIT, .g = ctl_glyphs() };
	int r;

	b.watch = json_object_get_boolean(ctl_get(args, "watch", json_type_boolean));
	size_of(&b, args);
	b.colour = ctl_colour(STDOUT_FILENO);
	b.v.project = strdup(argv[0]);
	if (!b.v.project)
		return -ENOMEM;
	if (b.watch && (c->json || !isatty(STDOUT_FILENO)))
		r = ctl_usage_error(cmd, c->json ? "--watch draws; it has no --json"
					 : "--watch needs a terminal on standard output");
	else if (b.watch)
		r = watch(c, &b);
	else {
		r = view_load(c, &b.v);
		if (r >= 0 && c->json)
			r = board_show_json(&b);
		else if (r >= 0) {
			r = board_draw(&b, &o);
			if (r >= 0)
				fputs(o.s ?: "", stdout);
		}
	}
	board_lanes_free(&b);
	view_done(&b.v);
	return r;
}

static const struct ctl_opt board_opts[] = {
	{ "watch", NULL, ARG_TRUE, "watch", 0, "stay, redrawn as tasks move; keys a, s and q" },
	{ "width", "N", ARG_INT, "width", 10, "draw N columns wide (default: the terminal's, else 80)" },
	{ "height", "N", ARG_INT, "height", 5,
	  "draw at most N lines (default: the terminal's; no limit if not a terminal)" },
	{}
};

const struct ctl_cmd ctl_cmd_board = {
	.name = "board",
	.usage = "PROJECT [--watch] [--width N] [--height N]",
	.summary = "Show a project's tasks as a board of lanes, once or live",
	.details = "Lanes: waiting, ready (and awaiting_approval: \"APPROVE?\"), running (spawning,\n"
		   "running), validating\n"
		   "(pending_validation, validating), done (completed, skipped), failed (failed,\n"
		   "upstream_failed, cancelled).  A card is a task: its id and title, then its\n"
		   "attempt and how long it has been in its status, or, while it waits out the\n"
		   "backoff of a retry, how soon it is retried (\"retry in 12s\").  A mapped\n"
		   "task's children in a lane are one card (\"resize[] x12\").  The header\n"
		   "tells the mode: \"Autonomous: ON\" and how many tasks run, or \"Start\n"
		   "Processing\" and how many are ready to be started.\n"
		   "With --watch the board takes the terminal and is redrawn from the project's\n"
		   "events as they come; keys: a turns autonomous mode on or off, s starts\n"
		   "processing (releases the ready tasks), q or ^C quits.  If the daemon goes\n"
		   "away, the board says so and comes back when the daemon does.\n"
		   "Colour only on a terminal, and never with NO_COLOR set.  DAGCTL_NOW (an RFC\n"
		   "3339 time) stands for the clock, for output that does not change.\n",
	.example = "  dagctl board build --watch\n"
		   "  dagctl board build --width 100 | less\n",
	.opts = board_opts,
	.min_args = 1, .max_args = 1, .keys = { "project" },
	.exec = board_exec,
};
