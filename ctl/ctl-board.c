/*
 * ctl-board.c - board: a project as a Kanban board, in lanes (waiting, ready,
 * running, validating, done, failed) of cards, under a header with the mode
 * and the counts; once, or live (--watch) in the terminal's alternate screen,
 * redrawn from the project's events once per burst, with keys to toggle
 * autonomous mode, start processing and quit.  The lanes fit the width: six
 * side by side, else three or two or one a row; a lane with more cards than
 * room says "+N more".
 */
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <termios.h>

#include "dagctl.h"

#define GAP 2                   /* columns between lanes */
#define LANE_MIN 15             /* the narrowest lane worth drawing */
#define QUIET_USEC 20000        /* a burst of events is over after this long without one */
#define BURST_USEC 100000       /* ... or this long after its first: draw at most this often */
#define TICK_USEC 1000000       /* the times on the cards age */

struct lane {
	const char *name, *title, *sgr;
	const char *statuses[4];
	bool recent_first;      /* the last to arrive on top, else in the order of ids */
};

static const struct lane lanes[] = {
	{ "waiting", "WAITING", "1;37", { "waiting" }, false },
	{ "ready", "READY", "1;36", { "ready" }, false },
	{ "running", "RUNNING", "1;33", { "spawning", "running" }, false },
	{ "validating", "VALIDATING", "1;35", { "pending_validation", "validating" }, false },
	{ "done", "DONE", "1;32", { "completed" }, true },
	{ "failed", "FAILED", "1;31", { "failed", "upstream_failed", "cancelled" }, true },
};
#define NLANES ((int) ELEMENTSOF(lanes))

/* What a card says of a status its lane holds with others. */
static const char *const status_notes[][2] = {
	{ "spawning", "spawning" }, { "pending_validation", "pending" },
	{ "upstream_failed", "upstream" }, { "cancelled", "cancelled" },
};

struct board {
	struct view v;
	int width, height;      /* height 0: as many lines as it takes */
	bool colour, watch;
	const struct glyphs *g;
	double now;
	json_object **lane[NLANES];     /* the tasks of each lane, borrowed */
	size_t count[NLANES];
	char note[256];         /* --watch: the last key's outcome, or what went wrong */
	bool note_bad, lost;
};

static int lane_of(const char *status) {
	for (int i = 0; i < NLANES; i++)
		for (const char *const *s = lanes[i].statuses; *s; s++)
			if (strcmp(*s, status) == 0)
				return i;
	return -1;
}

static double task_time(json_object *t) {
	double secs = 0;

	(void) ctl_parse_time(ctl_str(t, "status_changed_at"), &secs);
	return secs;
}

static int recent_first(const void *a, const void *b) {
	json_object *x = *(json_object *const *) a, *y = *(json_object *const *) b;
	double tx = task_time(x), ty = task_time(y);
	int64_t nx = task_number(x), ny = task_number(y);

	return tx != ty ? (tx < ty) - (tx > ty) : (nx < ny) - (nx > ny);
}

static void lanes_free(struct board *b) {
	for (int i = 0; i < NLANES; i++) {
		free(TAKE_PTR(b->lane[i]));
		b->count[i] = 0;
	}
}

/* Sorts the view's tasks into the lanes. */
static int lanes_fill(struct board *b) {
	_cleanup_(freep) json_object **ts = NULL;
	size_t n;

	lanes_free(b);
	ts = view_sorted(&b->v, &n);
	if (!ts && n > 0)
		return -ENOMEM;
	for (int i = 0; i < NLANES; i++) {
		b->lane[i] = calloc(n + 1, sizeof *b->lane[i]);
		if (!b->lane[i])
			return -ENOMEM;
	}
	for (size_t k = 0; k < n; k++) {
		int i = lane_of(ctl_str(ts[k], "status"));

		if (i >= 0)
			b->lane[i][b->count[i]++] = ts[k];
	}
	for (int i = 0; i < NLANES; i++)
		if (lanes[i].recent_first)
			qsort(b->lane[i], b->count[i], sizeof *b->lane[i], recent_first);
	return 0;
}

static size_t lane_count(const struct board *b, const char *name) {
	for (int i = 0; i < NLANES; i++)
		if (strcmp(lanes[i].name, name) == 0)
			return b->count[i];
	return 0;
}

static bool autonomous(const struct board *b) {
	return json_object_get_boolean(ctl_get(b->v.p, "autonomous_execution_enabled", json_type_boolean));
}

/* "build (p-1)        Autonomous: ON · 3 running", the mode on the right. */
static void draw_title(struct board *b, struct sbuf *o) {
	const char *name = ctl_str(b->v.p, "name");
	char mode[64], id[64];
	int w = b->width, wmode, wname = text_width(name), wid, used, room;

	if (b->v.deleted)
		snprintf(mode, sizeof mode, "deleted");
	else if (autonomous(b))
		snprintf(mode, sizeof mode, "Autonomous: ON %s %zu running", b->g->dot,
			 lane_count(b, "running"));
	else
		snprintf(mode, sizeof mode, "Start Processing %s %zu ready", b->g->dot,
			 lane_count(b, "ready"));
	snprintf(id, sizeof id, " (%s)", ctl_str(b->v.p, "id"));
	wmode = text_width(mode);
	wid = text_width(id);
	if (wname + wid + GAP + wmode > w)
		wid = 0;
	if (wname + GAP + wmode > w)    /* the name gives way to the mode, down to 8 columns */
		wname = w - GAP - wmode > 8 ? w - GAP - wmode : wname < 8 ? wname : 8;
	sbuf_style(o, b->colour, "1");
	used = sbuf_text(o, name, wname < w ? wname : w, false, b->g);
	sbuf_style(o, b->colour, NULL);
	used += sbuf_text(o, id, wid, false, b->g);
	room = w - used - GAP;
	if (room > 0) {
		sbuf_printf(o, "%*s", GAP + room - (wmode < room ? wmode : room), "");
		sbuf_style(o, b->colour, b->v.deleted ? "1;31" : autonomous(b) ? "1;32" : "1;33");
		sbuf_text(o, mode, room, false, b->g);
		sbuf_style(o, b->colour, NULL);
	}
	sbuf_end_line(o, b->watch);
}

/* "waiting 2 · ready 1 · ... · failed 0  (11 tasks)", shorter if need be. */
static void draw_counts(struct board *b, struct sbuf *o) {
	static const char *const shorter[NLANES] = { "wait", "ready", "run", "val", "done", "fail" };
	_cleanup_(sbuf_freep) struct sbuf line = {};
	size_t total = 0;

	for (int i = 0; i < NLANES; i++)
		total += b->count[i];
	/* in full; short words; short words without the total */
	for (int form = 0; form < 3; form++) {
		line.len = 0;
		for (int i = 0; i < NLANES; i++) {
			if (i > 0 && form)
				sbuf_put(&line, " ", 1);
			else if (i > 0)
				sbuf_printf(&line, " %s ", b->g->dot);
			sbuf_printf(&line, "%s %zu", form ? shorter[i] : lanes[i].name, b->count[i]);
		}
		if (form < 2)
			sbuf_printf(&line, "  (%zu task%s)", total, total == 1 ? "" : "s");
		if (text_width(line.s) <= b->width)
			break;
	}
	sbuf_text(o, line.s, b->width, false, b->g);
	sbuf_end_line(o, b->watch);
}

/* One line of a lane, exactly w columns: a first part in style sgr, then the rest. */
static void draw_cell(struct board *b, struct sbuf *o, int w, const char *sgr, const char *first,
		      const char *rest) {
	int used;

	sbuf_style(o, b->colour && sgr, sgr);
	used = sbuf_text(o, first, w, false, b->g);
	sbuf_style(o, b->colour && sgr, NULL);
	if (rest && used < w)
		used += sbuf_text(o, rest, w - used, false, b->g);
	sbuf_printf(o, "%*s", w - used, "");
}

static const char *status_note(const char *status) {
	for (size_t i = 0; i < ELEMENTSOF(status_notes); i++)
		if (strcmp(status_notes[i][0], status) == 0)
			return status_notes[i][1];
	return NULL;
}

/* Line `line` of lane i, w columns wide, `shown` cards drawn of its count. */
static void draw_lane_line(struct board *b, struct sbuf *o, int i, int line, int w, size_t shown) {
	char buf[160], age[32];
	size_t card = (size_t) (line - 2) / 2;
	json_object *t;

	if (line == 0) {
		snprintf(buf, sizeof buf, "%s %zu", lanes[i].title, b->count[i]);
		draw_cell(b, o, w, lanes[i].sgr, buf, NULL);
		return;
	}
	if (line == 1) {
		sbuf_style(o, b->colour, "2");
		for (int k = 0; k < w; k++)
			sbuf_put(o, b->g->rule, strlen(b->g->rule));
		sbuf_style(o, b->colour, NULL);
		return;
	}
	if (card >= shown) {
		if (card == shown && (line - 2) % 2 == 0 && shown < b->count[i]) {
			snprintf(buf, sizeof buf, "+%zu more", b->count[i] - shown);
			draw_cell(b, o, w, "2", buf, NULL);
		} else
			sbuf_printf(o, "%*s", w, "");
		return;
	}
	t = b->lane[i][card];
	if ((line - 2) % 2 == 0) {
		snprintf(buf, sizeof buf, " %s", ctl_str(t, "title"));
		draw_cell(b, o, w, "1", ctl_str(t, "id"), buf);
	} else {
		const char *note = status_note(ctl_str(t, "status"));

		int n = snprintf(buf, sizeof buf, "  #%lld %s %s",
				 (long long) json_object_get_int64(ctl_get(t, "attempt", json_type_int)),
				 b->g->dot, ctl_duration(b->now - task_time(t), age));

		if (note && n > 0 && (size_t) n < sizeof buf)
			snprintf(buf + n, sizeof buf - (size_t) n, " %s %s", b->g->dot, note);
		draw_cell(b, o, w, "2", buf, NULL);
	}
}

/* The lanes, `per_row` side by side, each row of lanes in at most `rows`
 * lines (0: as many as it takes). */
static void draw_lanes(struct board *b, struct sbuf *o, int per_row, int rows) {
	int w = (b->width - GAP * (per_row - 1)) / per_row;

	for (int first = 0; first < NLANES; first += per_row) {
		size_t shown[NLANES] = {};
		int lines = 2;

		if (first > 0)
			sbuf_end_line(o, b->watch);
		for (int i = first; i < first + per_row; i++) {
			shown[i] = b->count[i];
			if (rows > 0 && (int) (2 + 2 * shown[i]) > rows) {
				int room = rows - 3;

				shown[i] = room > 0 ? (size_t) room / 2 : 0;
			}
			if ((int) (2 + 2 * shown[i] + (shown[i] < b->count[i])) > lines)
				lines = (int) (2 + 2 * shown[i] + (shown[i] < b->count[i]));
		}
		for (int line = 0; line < lines; line++) {
			for (int i = first; i < first + per_row; i++) {
				if (i > first)
					sbuf_printf(o, "%*s", GAP, "");
				draw_lane_line(b, o, i, line, w, shown[i]);
			}
			sbuf_end_line(o, b->watch);
		}
	}
}

/* The whole board into o; with a height, the lanes share what the header and
 * (watching) the status line leave. */
static int draw(struct board *b, struct sbuf *o) {
	int per_row = NLANES, rows = 0, r;

	r = lanes_fill(b);
	if (r < 0)
		return r;
	r = ctl_now(&b->now);
	if (r < 0)
		return r;
	while (per_row > 1 && per_row * LANE_MIN + (per_row - 1) * GAP > b->width)
		per_row = per_row == 6 ? 3 : per_row - 1;
	if (b->height > 0) {
		int nrows = NLANES / per_row, body = b->height - 3 - (b->watch ? 1 : 0);

		rows = (body - (nrows - 1)) / nrows;
		if (rows < 1)
			rows = 1;
	}
	draw_title(b, o);
	draw_counts(b, o);
	sbuf_end_line(o, b->watch);
	draw_lanes(b, o, per_row, rows);
	return 0;
}

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

static int show_json(struct board *b) {
	_cleanup_(json_object_putp) json_object *o = json_object_new_object();
	json_object *ls = json_object_new_array();
	int r;

	if (!o || !ls)
		return -ENOMEM;
	r = lanes_fill(b);
	if (r < 0)
		return r;
	json_object_object_add(o, "project", json_object_get(b->v.p));
	json_object_object_add(o, "lanes", ls);
	for (int i = 0; i < NLANES; i++) {
		json_object *l = json_object_new_object(), *ts = json_object_new_array();

		json_object_object_add(l, "name", json_object_new_string(lanes[i].name));
		for (size_t k = 0; k < b->count[i]; k++)
			json_object_array_add(ts, json_object_get(b->lane[i][k]));
		json_object_object_add(l, "tasks", ts);
		json_object_array_add(ls, l);
	}
	return ctl_print_json(o, CTL_JSON_PRETTY);
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
	r = draw(b, &o);
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
		bool on = !autonomous(b);

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
			r = show_json(&b);
		else if (r >= 0) {
			r = draw(&b, &o);
			if (r >= 0)
				fputs(o.s ?: "", stdout);
		}
	}
	lanes_free(&b);
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
	.details = "Lanes: waiting, ready, running (spawning, running), validating\n"
		   "(pending_validation, validating), done (completed), failed (failed,\n"
		   "upstream_failed, cancelled).  A card is a task: its id and title, then its\n"
		   "attempt and how long it has been in its status.  The header tells the mode:\n"
		   "\"Autonomous: ON\" and how many tasks run, or \"Start Processing\" and how many\n"
		   "are ready to be started.\n"
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
