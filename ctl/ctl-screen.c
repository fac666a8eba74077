/*
 * ctl-screen.c - text for people at a terminal, as board and graph draw it:
 * a growing buffer of lines, text cut to a number of columns (UTF-8 counted by
 * characters, control characters never let through), colour only on a
 * terminal and never with NO_COLOR, the terminal's size, the drawing
 * characters of the locale, and times: now (or $DAGCTL_NOW, which freezes it),
 * RFC 3339 parsing, and short durations ("45s", "3m05s", "2h04m", "3d02h").
 */
#include <langinfo.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "dagctl.h"

static bool grow(struct sbuf *b, size_t more) {
	size_t n;
	char *s;

	if (b->len + more + 1 <= b->size)
		return true;
	n = b->size ? b->size : 1024;
	while (n < b->len + more + 1)
		n *= 2;
	s = realloc(b->s, n);
	if (!s)
		return false;
	b->s = s;
	b->size = n;
	return true;
}

void sbuf_put(struct sbuf *b, const char *s, size_t len) {
	if (!grow(b, len))
		return;
	memcpy(b->s + b->len, s, len);
	b->len += len;
	b->s[b->len] = '\0';
}

void sbuf_printf(struct sbuf *b, const char *format, ...) {
	va_list ap;
	int n;

	va_start(ap, format);
	n = vsnprintf(NULL, 0, format, ap);
	va_end(ap);
	if (n < 0 || !grow(b, (size_t) n))
		return;
	va_start(ap, format);
	vsnprintf(b->s + b->len, (size_t) n + 1, format, ap);
	va_end(ap);
	b->len += (size_t) n;
}

/* The length of the UTF-8 character at s (at least 1), and whether it is one
 * a terminal may be given: no control character, no broken sequence. */
static size_t char_len(const unsigned char *s, bool *ret_ok) {
	size_t n = *s < 0x80 ? 1 : (*s & 0xe0) == 0xc0 ? 2 : (*s & 0xf0) == 0xe0 ? 3 :
		   (*s & 0xf8) == 0xf0 ? 4 : 0;

	*ret_ok = n > 0 && *s >= 0x20 && *s != 0x7f && !(*s == 0xc2 && s[1] >= 0x80 && s[1] < 0xa0);
	if (n == 0)
		return 1;
	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80) {
			*ret_ok = false;
			return i;
		}
	return n;
}

/* The columns s takes: one a character. */
int text_width(const char *s) {
	int w = 0;

	for (const unsigned char *p = (const unsigned char *) s; *p; w++) {
		bool ok;

		p += char_len(p, &ok);
	}
	return w;
}

/* Appends s in at most width columns, cut with an ellipsis if it is longer,
 * padded with spaces to width if pad; returns the columns used.  A control
 * character or a broken sequence becomes '?'. */
int sbuf_text(struct sbuf *b, const char *s, int width, bool pad, const struct glyphs *g) {
	int w = 0, total = text_width(s), room = total > width ? width - 1 : width;
	const unsigned char *p = (const unsigned char *) s;

	if (width <= 0)
		return 0;
	while (*p && w < room) {
		bool ok;
		size_t n = char_len(p, &ok);

		if (ok)
			sbuf_put(b, (const char *) p, n);
		else
			sbuf_put(b, "?", 1);
		p += n;
		w++;
	}
	if (total > width) {
		sbuf_put(b, g->ellipsis, strlen(g->ellipsis));
		w++;
	}
	for (; pad && w < width; w++)
		sbuf_put(b, " ", 1);
	return w;
}

/* Starts an SGR style ("1;32"), or resets with NULL; nothing without colour. */
void sbuf_style(struct sbuf *b, bool colour, const char *sgr) {
	if (colour)
		sbuf_printf(b, "\033[%sm", sgr ?: "0");
}

/* Ends a line: its trailing spaces dropped, then, on a screen being redrawn
 * (clear), the rest of the terminal's line erased. */
void sbuf_end_line(struct sbuf *b, bool clear) {
	while (b->len > 0 && b->s[b->len - 1] == ' ')
		b->len--;
	if (b->s)
		b->s[b->len] = '\0';
	sbuf_printf(b, "%s\n", clear ? "\033[K" : "");
}

void sbuf_free(struct sbuf *b) {
	free(b->s);
	*b = (struct sbuf) {};
}

const struct glyphs *ctl_glyphs(void) {
	static const struct glyphs utf8 = { "\u00b7", "\u2026", "\u2500", "\u251c\u2500 ",
					    "\u2514\u2500 ", "\u2502  " },
		ascii = { "-", "~", "-", "|- ", "`- ", "|  " };
	static const struct glyphs *g;

	if (!g) {
		setlocale(LC_CTYPE, "");
		g = strcmp(nl_langinfo(CODESET), "UTF-8") == 0 ? &utf8 : &ascii;
	}
	return g;
}

/* Colour on fd: a terminal, and no NO_COLOR (https://no-color.org). */
bool ctl_colour(int fd) {
	const char *e = getenv("NO_COLOR");

	return isatty(fd) && !(e && *e);
}

int ctl_term_size(int fd, int *ret_rows, int *ret_cols) {
	struct winsize ws;

	if (ioctl(fd, TIOCGWINSZ, &ws) < 0 || ws.ws_col == 0 || ws.ws_row == 0)
		return -ENOTTY;
	*ret_rows = ws.ws_row;
	*ret_cols = ws.ws_col;
	return 0;
}

/* An RFC 3339 time ("2026-11-25T12:00:00.123Z", or with an offset such as
 * "+02:00" instead of the Z) as seconds since the epoch. */
int ctl_parse_time(const char *s, double *ret) {
	struct tm tm = {};
	double frac = 0;
	int n = 0;

	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
			 &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
		return -EINVAL;
	s += n;
	if (*s == '.') {
		char *end;

		frac = strtod(s, &end);
		s = end;
	}
	int oh = 0, om = 0, sign = 0;

	if (strcmp(s, "Z") != 0 && strcmp(s, "z") != 0) {
		if ((*s != '+' && *s != '-') || strlen(s) != 6 ||
		    sscanf(s + 1, "%2d:%2d%n", &oh, &om, &n) != 2 || n != 5 || oh > 23 || om > 59)
			return -EINVAL;
		sign = *s == '+' ? 1 : -1;
	}
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*ret = (double) timegm(&tm) + frac - sign * (oh * 3600 + om * 60);
	return 0;
}

/* Now, or the time $DAGCTL_NOW says, so that what is drawn can be compared. */
int ctl_now(double *ret) {
	const char *e = getenv("DAGCTL_NOW");
	struct timespec ts;

	if (e && *e) {
		if (ctl_parse_time(e, ret) < 0) {
			fprintf(stderr, "dagctl: DAGCTL_NOW is not an RFC 3339 UTC time: %s\n", e);
			return -EINVAL;
		}
		return 0;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	*ret = (double) ts.tv_sec + ts.tv_nsec / 1e9;
	return 0;
}

/* A duration in at most two units; below zero is "0s". */
const char *ctl_duration(double secs, char buf[static 32]) {
	long long s = secs > 0 && isfinite(secs) ? (long long) secs : 0;

	if (s < 60)
		snprintf(buf, 32, "%llds", s);
	else if (s < 3600)
		snprintf(buf, 32, "%lldm%02llds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, 32, "%lldh%02lldm", s / 3600, s % 3600 / 60);
	else
		snprintf(buf, 32, "%lldd%02lldh", s / 86400 > 9999 ? 9999 : s / 86400, s % 86400 / 3600);
	return buf;
}

/* A size option (--width, --height) of args, taken out of them: 0 if not given. */
void ctl_size_option(json_object *args, const char *key, int *ret) {
	json_object *v = ctl_get(args, key, json_type_int);

	*ret = v ? (int) (json_object_get_int64(v) > 10000 ? 10000 : json_object_get_int64(v)) : 0;
	json_object_object_del(args, key);
}
