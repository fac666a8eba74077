/*
 * template.c - the templates of a task's command and env: {{inputs.NAME}},
 * {{inputs.NAME.path.to.field}}, {{item}} and {{item.field}}, checked when a
 * task is added and put in when it is dispatched.  Library-like: it logs
 * nothing and says what is wrong with errorf().
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "dagd.h"
#include "template.h"

bool template_any(const char *s)
{
	return s && strstr(s, "{{");
}

static bool name_start(char c)
{
	return isalpha((unsigned char) c) || c == '_';
}

/* One template: [open, close) is its inside, trimmed; end is past "}}". */
struct tpl {
	const char *expr;
	size_t len;
	const char *end;
};

/* The template at s ("{{" there): 1 and *ret; 0: not a template (copy the
 * "{{" as it is); < 0: unterminated. */
static int tpl_at(const char *s, struct tpl *ret)
{
	const char *p = s + 2, *close;

	while (*p == ' ' || *p == '\t')
		p++;
	if (!name_start(*p))
		return 0;
	close = strstr(p, "}}");
	if (!close)
		return errorf(-EINVAL, "template '%.*s' is not closed with '}}'", utf8_prefix(s, 40), s);
	ret->expr = p;
	ret->len = (size_t) (close - p);
	while (ret->len > 0 && (p[ret->len - 1] == ' ' || p[ret->len - 1] == '\t'))
		ret->len--;
	ret->end = close + 2;
	return 1;
}

/* The root of a template, and where its path starts (after the dot). */
static int tpl_parse(const struct tpl *t, bool item_allowed, bool *ret_item, const char **ret_path,
		     size_t *ret_path_len)
{
	size_t n = 0;

	while (n < t->len && (isalnum((unsigned char) t->expr[n]) || t->expr[n] == '_'))
		n++;
	if (n == 6 && strncmp(t->expr, "inputs", 6) == 0) {
		if (n == t->len || t->expr[n] != '.' || n + 1 == t->len)
			return errorf(-EINVAL, "template '{{%.*s}}' names no dependency: write {{inputs.NAME}}",
				      (int) t->len, t->expr);
		*ret_item = false;
	} else if (n == 4 && strncmp(t->expr, "item", 4) == 0) {
		if (!item_allowed)
			return errorf(-EINVAL, "template '{{%.*s}}': {{item}} is only for a task with 'map_over'",
				      (int) t->len, t->expr);
		if (n < t->len && (t->expr[n] != '.' || n + 1 == t->len))
			return errorf(-EINVAL, "template '{{%.*s}}' is malformed: write {{item}} or {{item.field}}",
				      (int) t->len, t->expr);
		*ret_item = true;
	} else
		return errorf(-EINVAL, "template '{{%.*s}}': unknown root '%.*s' (templates are {{inputs.NAME...}} and {{item...}})",
			      (int) t->len, t->expr, (int) n, t->expr);
	*ret_path = n < t->len ? t->expr + n + 1 : t->expr + n;
	*ret_path_len = n < t->len ? t->len - n - 1 : 0;
	for (size_t i = 0; i < *ret_path_len; i++) {
		char c = (*ret_path)[i];

		if (c == ' ' || c == '\t' || c == '{' || c == '}' ||
		    (c == '.' && (i == 0 || i + 1 == *ret_path_len || (*ret_path)[i + 1] == '.')))
			return errorf(-EINVAL, "template '{{%.*s}}' is malformed: an empty field or a space in its path",
				      (int) t->len, t->expr);
	}
	return 0;
}

int template_check(const char *s, bool item_allowed)
{
	const char *p = s;

	while (p && (p = strstr(p, "{{"))) {
		struct tpl t;
		bool item;
		const char *path;
		size_t plen;
		int r = tpl_at(p, &t);

		if (r < 0)
			return r;
		if (r == 0) {
			p += 2;
			continue;
		}
		r = tpl_parse(&t, item_allowed, &item, &path, &plen);
		if (r < 0)
			return r;
		p = t.end;
	}
	return 0;
}

/* Follow the fields of path (dot-separated) from v. */
static int walk(const struct tpl *t, json_object *v, const char *path, size_t len, json_object **ret)
{
	size_t i = 0;

	while (i < len) {
		size_t j = i;
		_cleanup_free_ char *key = NULL;

		while (j < len && path[j] != '.')
			j++;
		key = strndup(path + i, j - i);
		if (!key)
			abort();
		if (json_object_is_type(v, json_type_object)) {
			if (!json_object_object_get_ex(v, key, &v))
				return errorf(-ENOENT, "template '{{%.*s}}': no field '%s' in what it names",
					      (int) t->len, t->expr, key);
		} else if (json_object_is_type(v, json_type_array)) {
			char *end;
			long idx = strtol(key, &end, 10);

			if (*end || !isdigit((unsigned char) key[0]) || idx < 0 ||
			    (size_t) idx >= json_object_array_length(v))
				return errorf(-ENOENT, "template '{{%.*s}}': no index '%s' in an array of %zu",
					      (int) t->len, t->expr, key, json_object_array_length(v));
			v = json_object_array_get_idx(v, (size_t) idx);
		} else
			return errorf(-ENOENT, "template '{{%.*s}}': no field '%s' in a %s",
				      (int) t->len, t->expr, key, v ? json_type_to_name(json_object_get_type(v)) : "null");
		i = j + 1;
	}
	*ret = v;
	return 0;
}

static int lookup(const struct tpl *t, json_object *inputs, json_object *item, json_object **ret)
{
	const char *path, *best = NULL;
	size_t plen, best_len = 0;
	bool is_item;
	json_object *v = NULL;
	int r = tpl_parse(t, true, &is_item, &path, &plen);

	if (r < 0)
		return r;
	if (is_item)
		return walk(t, item, path, plen, ret);
	json_object_object_foreach(inputs, k, val) {
		size_t kl = strlen(k);

		if (kl <= plen && strncmp(path, k, kl) == 0 && (kl == plen || path[kl] == '.') && kl > best_len) {
			best = k;
			best_len = kl;
			v = val;
		}
	}
	if (!best) {
		size_t n = 0;

		while (n < plen && path[n] != '.')
			n++;
		return errorf(-ENOENT, "template '{{%.*s}}': no dependency named '%.*s'",
			      (int) t->len, t->expr, (int) n, path);
	}
	return walk(t, v, path + best_len + (best_len < plen), best_len < plen ? plen - best_len - 1 : 0, ret);
}

/* The value as text: a string as it is, anything else as JSON. */
static const char *value_text(json_object *v)
{
	if (json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	if (!v)
		return "null";
	return json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

enum quote { Q_NONE, Q_SINGLE, Q_DOUBLE };

static void put_quoted(FILE *f, const char *s, enum quote q)
{
	if (q == Q_NONE)
		fputc('\'', f);
	for (; *s; s++) {
		if (*s == '\'' && q != Q_DOUBLE)
			fputs("'\\''", f);
		else if (q == Q_DOUBLE && strchr("\\\"$`", *s)) {
			fputc('\\', f);
			fputc(*s, f);
		} else
			fputc(*s, f);
	}
	if (q == Q_NONE)
		fputc('\'', f);
}

/* The quoting state of the shell after the bytes [from, to), from state q. */
static enum quote shell_scan(const char *from, const char *to, enum quote q)
{
	for (const char *p = from; p < to; p++)
		switch (q) {
		case Q_NONE:
			if (*p == '\\' && p + 1 < to)
				p++;
			else if (*p == '\'')
				q = Q_SINGLE;
			else if (*p == '"')
				q = Q_DOUBLE;
			break;
		case Q_SINGLE:
			if (*p == '\'')
				q = Q_NONE;
			break;
		case Q_DOUBLE:
			if (*p == '\\' && p + 1 < to)
				p++;
			else if (*p == '"')
				q = Q_NONE;
			break;
		}
	return q;
}

int template_render(const char *s, json_object *inputs, json_object *item, bool shell, char **ret)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);
	const char *p = s, *from = s;
	enum quote q = Q_NONE;
	int r = 0;

	if (!f)
		abort();
	while ((p = strstr(p, "{{"))) {
		struct tpl t;
		json_object *v;

		r = tpl_at(p, &t);
		if (r < 0)
			break;
		if (r == 0) {
			p += 2;
			continue;
		}
		r = lookup(&t, inputs, item, &v);
		if (r < 0)
			break;
		fwrite(from, 1, (size_t) (p - from), f);
		if (shell) {
			q = shell_scan(from, p, q);
			put_quoted(f, value_text(v), q);
		} else
			fputs(value_text(v), f);
		p = from = t.end;
	}
	if (r >= 0)
		fputs(from, f);
	fclose(f);
	if (r < 0) {
		free(buf);
		return r;
	}
	*ret = buf;
	return 0;
}
