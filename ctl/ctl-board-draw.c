/*
 * ctl-board-draw.c - what board shows and how: the project's tasks sorted
 * into lanes (waiting, ready, running, validating, done, failed) of cards
 * (a task awaiting approval is in ready, its card saying "APPROVE?"; a
 * mapped task's children in a lane are one card, "resize[] x12"),
 * under a header with the mode and the counts, drawn to fit a width (six
 * lanes side by side, else three or two or one a row; a lane with more cards
 * than room says "+N more"), or given as JSON.  Watching it live is
 * ctl-board.c's.
 */
#include <string.h>

#include "dagctl.h"

#define GAP 2                   /* columns between lanes */
#define LANE_MIN 15             /* the narrowest lane worth drawing */

struct lane {
	const char *name, *title, *sgr;
	const char *statuses[4];
	bool recent_first;      /* the last to arrive on top, else in the order of ids */
};

static const struct lane lanes[] = {
	{ "waiting", "WAITING", "1;37", { "waiting" }, false },
	{ "ready", "READY", "1;36", { "ready", "awaiting_approval" }, false },
	{ "running", "RUNNING", "1;33", { "spawning", "running" }, false },
	{ "validating", "VALIDATING", "1;35", { "pending_validation", "validating" }, false },
	{ "done", "DONE", "1;32", { "completed", "skipped" }, true },
	{ "failed", "FAILED", "1;31", { "failed", "upstream_failed", "cancelled" }, true },
};
_Static_assert(ELEMENTSOF(lanes) == BOARD_LANES, "a lane for each of BOARD_LANES");
#define NLANES BOARD_LANES

/* What a card says of a status its lane holds with others. */
static const char *const status_notes[][2] = {
	{ "spawning", "spawning" }, { "pending_validation", "pending" },
	{ "upstream_failed", "upstream" }, { "cancelled", "cancelled" }, { "skipped", "skipped" },
	{ "awaiting_approval", "APPROVE?" },
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

void board_lanes_free(struct board *b) {
	for (int i = 0; i < NLANES; i++) {
		free(TAKE_PTR(b->lane[i]));
		free(TAKE_PTR(b->card[i]));
		free(TAKE_PTR(b->many[i]));
		b->count[i] = b->cards[i] = 0;
	}
}

/* Where the task "t-N" (a mapped task) is among ts, which view_sorted()
 * gave in the order of their numbers; n if it is not there. */
static size_t task_at_number(json_object **ts, size_t n, const char *id) {
	int64_t want = strncmp(id, "t-", 2) == 0 ? strtoll(id + 2, NULL, 10) : 0;
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (task_number(ts[mid]) < want)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && task_number(ts[lo]) == want ? lo : n;
}

/* Sorts the view's tasks into the lanes. */
static int lanes_fill(struct board *b) {
	_cleanup_(freep) json_object **ts = NULL;
	_cleanup_(freep) size_t *card_of = NULL;       /* by a mapped task's place in ts: its card + 1 */
	size_t n;

	board_lanes_free(b);
	ts = view_sorted(&b->v, &n);
	card_of = calloc(n + 1, sizeof *card_of);
	if ((!ts && n > 0) || !card_of)
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
	for (int i = 0; i < NLANES; i++) {
		if (lanes[i].recent_first)
			qsort(b->lane[i], b->count[i], sizeof *b->lane[i], recent_first);
		b->card[i] = calloc(b->count[i] + 1, sizeof *b->card[i]);
		b->many[i] = calloc(b->count[i] + 1, sizeof *b->many[i]);
		if (!b->card[i] || !b->many[i])
			return -ENOMEM;
		/* a mapped task's children in a lane: one card, where the first
		 * of them is (they need not be side by side: the mapped task
		 * itself may end in the same millisecond as its last ones) */
		memset(card_of, 0, (n + 1) * sizeof *card_of);
		for (size_t k = 0; k < b->count[i]; k++) {
			json_object *t = b->lane[i][k];
			const char *parent = json_object_get_string(ctl_get(t, "map_parent", json_type_string));
			size_t at = parent ? task_at_number(ts, n, parent) : n;

			if (at < n && card_of[at]) {
				b->many[i][card_of[at] - 1]++;
				continue;
			}
			if (at < n)
				card_of[at] = b->cards[i] + 1;
			b->card[i][b->cards[i]] = t;
			b->many[i][b->cards[i]++] = 1;
		}
	}
	return 0;
}

static size_t lane_count(const struct board *b, const char *name) {
	for (int i = 0; i < NLANES; i++)
		if (strcmp(lanes[i].name, name) == 0)
			return b->count[i];
	return 0;
}

bool board_autonomous(const struct board *b) {
	return json_object_get_boolean(ctl_get(b->v.p, "autonomous_execution_enabled", json_type_boolean));
}

/* "build (p-1)        Autonomous: ON · 3 running", the mode on the right. */
static void draw_title(struct board *b, struct sbuf *o) {
	const char *name = ctl_str(b->v.p, "name");
	char mode[64], id[64];
	int w = b->width, wmode, wname = text_width(name), wid, used, room;

	if (b->v.deleted)
		snprintf(mode, sizeof mode, "deleted");
	else if (board_autonomous(b))
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
		sbuf_style(o, b->colour, b->v.deleted ? "1;31" : board_autonomous(b) ? "1;32" : "1;33");
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

/* A card's second line, w columns: "  #2 · 41s · pending"; or, while the
 * task waits out a retry's backoff, when that ends rather than since when
 * ("  #1 · retry in 12s", without the attempt in a lane too narrow for it). */
static void draw_card_status(struct board *b, struct sbuf *o, json_object *t, int w) {
	const char *note = status_note(ctl_str(t, "status"));
	long long attempt = json_object_get_int64(ctl_get(t, "attempt", json_type_int));
	char buf[160], when[48];
	int n;

	if (ctl_retry_text(t, b->now, when)) {
		snprintf(buf, sizeof buf, "  #%lld %s %s", attempt, b->g->dot, when);
		if (text_width(buf) > w)
			snprintf(buf, sizeof buf, "  %s", when);
	} else {
		n = snprintf(buf, sizeof buf, "  #%lld %s %s", attempt, b->g->dot,
			     ctl_duration(b->now - task_time(t), when));
		if (note && n > 0 && (size_t) n < sizeof buf)
			snprintf(buf + n, sizeof buf - (size_t) n, " %s %s", b->g->dot, note);
	}
	draw_cell(b, o, w, "2", buf, NULL);
}

/* Line `line` of lane i, w columns wide, `shown` cards drawn of its count. */
static void draw_lane_line(struct board *b, struct sbuf *o, int i, int line, int w, size_t shown) {
	char buf[160];
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
		if (card == shown && (line - 2) % 2 == 0 && shown < b->cards[i]) {
			size_t drawn = 0;

			for (size_t k = 0; k < shown; k++)
				drawn += b->many[i][k];
			snprintf(buf, sizeof buf, "+%zu more", b->count[i] - drawn);
			draw_cell(b, o, w, "2", buf, NULL);
		} else
			sbuf_printf(o, "%*s", w, "");
		return;
	}
	t = b->card[i][card];
	if ((line - 2) % 2 == 0 && b->many[i][card] > 1) {
		/* "resize[] x12": the mapped task's name, and how many of its items */
		const char *name = ctl_str(t, "name");

		snprintf(buf, sizeof buf, " %.*s[] x%zu", (int) strcspn(name, "["), name, b->many[i][card]);
		draw_cell(b, o, w, "1", ctl_str(t, "id"), buf);
	} else if ((line - 2) % 2 == 0) {
		snprintf(buf, sizeof buf, " %s", ctl_str(t, "title"));
		draw_cell(b, o, w, "1", ctl_str(t, "id"), buf);
	} else
		draw_card_status(b, o, t, w);
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
			shown[i] = b->cards[i];
			if (rows > 0 && (int) (2 + 2 * shown[i]) > rows) {
				int room = rows - 3;

				shown[i] = room > 0 ? (size_t) room / 2 : 0;
			}
			if ((int) (2 + 2 * shown[i] + (shown[i] < b->cards[i])) > lines)
				lines = (int) (2 + 2 * shown[i] + (shown[i] < b->cards[i]));
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
int board_draw(struct board *b, struct sbuf *o) {
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

/* The board as JSON: the project and its lanes with their tasks. */
int board_show_json(struct board *b) {
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
