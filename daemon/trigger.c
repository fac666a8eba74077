/*
 * trigger.c - trigger rules parsed and evaluated (trigger.h).
 *
 * An expression is read by recursive descent into a postfix program:
 *
 *   expr    := and ( '||' and )*
 *   and     := unary ( '&&' unary )*
 *   unary   := '!' unary | '(' expr ')' | operand
 *   operand := NAME '.' ( succeeded | failed | skipped | cancelled | done )
 *
 * NAME is a dependency's name or id ([A-Za-z0-9._-], up to the last '.').
 * Spaces and tabs may separate tokens.  Length, depth and the number of
 * operands are bounded; anything else is refused, saying at which character.
 */
#include <string.h>

#include "closest.h"
#include "dagd.h"
#include "trigger.h"

static const char *const kind_names[_TRIGGER_KIND_MAX] = {
	[TRIGGER_ALL_SUCCEEDED] = "all_succeeded",
	[TRIGGER_ALL_DONE] = "all_done",
	[TRIGGER_ANY_FAILED] = "any_failed",
	[TRIGGER_NONE_FAILED] = "none_failed",
	[TRIGGER_ANY_SUCCEEDED] = "any_succeeded",
	[TRIGGER_ALL_FAILED] = "all_failed",
	[TRIGGER_EXPR] = NULL,
};

static const struct {
	const char *name;
	unsigned bit;
} state_names[] = {
	{ "succeeded", TS_SUCCEEDED },
	{ "failed", TS_FAILED },
	{ "skipped", TS_SKIPPED },
	{ "cancelled", TS_CANCELLED },
	{ "done", TS_DONE },
};

const char *trigger_kind_name(enum trigger_kind k)
{
	return k >= 0 && k < _TRIGGER_KIND_MAX ? kind_names[k] : NULL;
}

void trigger_free(struct trigger *tr)
{
	if (!tr)
		return;
	for (size_t i = 0; i < tr->n_names; i++)
		free(tr->names[i]);
	free(tr->names);
	free(tr->ops);
	free(tr->text);
	free(tr);
}

struct parser {
	const char *s;
	size_t pos;
	unsigned depth;
	struct trigger *tr;
};

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
	       c == '_' || c == '-';
}

static void skip_space(struct parser *p)
{
	while (p->s[p->pos] == ' ' || p->s[p->pos] == '\t')
		p->pos++;
}

/* errorf(-EINVAL) about the character at p->pos (1-based in the message). */
static int fail(struct parser *p, const char *what)
{
	char c = p->s[p->pos];

	if (!c)
		return errorf(-EINVAL, "trigger: %s at the end of the expression (character %zu)", what,
			      p->pos + 1);
	if (c > ' ' && c < 0x7f)
		return errorf(-EINVAL, "trigger: %s at character %zu ('%c')", what, p->pos + 1, c);
	return errorf(-EINVAL, "trigger: %s at character %zu", what, p->pos + 1);
}

static int emit(struct parser *p, unsigned char code, unsigned char state, unsigned short name)
{
	struct trigger *tr = p->tr;

	/* every operand but the first brings one operator at most; '!' is bounded by depth */
	if (tr->n_ops >= 4 * TRIGGER_MAX_OPERANDS)
		return fail(p, "expression too long");
	tr->ops = xrealloc(tr->ops, (tr->n_ops + 1) * sizeof(*tr->ops));
	tr->ops[tr->n_ops++] = (struct trigger_op) { code, state, name };
	return 0;
}

static int operand(struct parser *p)
{
	struct trigger *tr = p->tr;
	size_t start = p->pos, end, dot, i;
	unsigned bit = 0;
	int r;

	while (name_char(p->s[p->pos]))
		p->pos++;
	end = p->pos;
	if (end == start) {
		p->pos = start;
		return fail(p, "expected a dependency's NAME.state, '!' or '('");
	}
	for (dot = end; dot > start && p->s[dot - 1] != '.'; dot--)
		;
	if (dot == start) {
		p->pos = start;
		return fail(p, "expected NAME.succeeded, .failed, .skipped, .cancelled or .done");
	}
	if (dot - 1 == start) {
		p->pos = start;
		return fail(p, "a dependency's name is missing before '.'");
	}
	for (i = 0; i < ELEMENTSOF(state_names); i++)
		if (strlen(state_names[i].name) == end - dot && memcmp(state_names[i].name, p->s + dot, end - dot) == 0)
			bit = state_names[i].bit;
	if (!bit) {
		p->pos = dot;
		return fail(p, "unknown state (succeeded, failed, skipped, cancelled or done)");
	}
	if (dot - 1 - start > 128) {
		p->pos = start;
		return fail(p, "name too long");
	}
	for (i = 0; i < tr->n_names; i++)
		if (strlen(tr->names[i]) == dot - 1 - start && memcmp(tr->names[i], p->s + start, dot - 1 - start) == 0)
			break;
	if (i == tr->n_names) {
		if (tr->n_names >= TRIGGER_MAX_OPERANDS) {
			p->pos = start;
			return fail(p, "too many dependencies named");
		}
		tr->names = xrealloc(tr->names, (tr->n_names + 1) * sizeof(*tr->names));
		tr->names[tr->n_names++] = strndup(p->s + start, dot - 1 - start);
		if (!tr->names[i])
			abort();
	}
	r = emit(p, TOP_OPERAND, (unsigned char) bit, (unsigned short) i);
	skip_space(p);
	return r;
}

static int expr(struct parser *p);

static int unary(struct parser *p)
{
	int r;

	skip_space(p);
	if (p->s[p->pos] != '!' && p->s[p->pos] != '(')
		return operand(p);
	if (++p->depth > TRIGGER_MAX_DEPTH)
		return fail(p, "nested too deeply");
	if (p->s[p->pos] == '!') {
		p->pos++;
		r = unary(p);
		if (r >= 0)
			r = emit(p, TOP_NOT, 0, 0);
	} else {
		p->pos++;
		r = expr(p);
		if (r >= 0 && p->s[p->pos] != ')')
			r = fail(p, "expected ')'");
		if (r >= 0) {
			p->pos++;
			skip_space(p);
		}
	}
	p->depth--;
	return r;
}

static int and_expr(struct parser *p)
{
	int r = unary(p);

	while (r >= 0 && p->s[p->pos] == '&') {
		if (p->s[p->pos + 1] != '&')
			return fail(p, "expected '&&'");
		p->pos += 2;
		r = unary(p);
		if (r >= 0)
			r = emit(p, TOP_AND, 0, 0);
	}
	return r;
}

static int expr(struct parser *p)
{
	int r = and_expr(p);

	while (r >= 0 && p->s[p->pos] == '|') {
		if (p->s[p->pos + 1] != '|')
			return fail(p, "expected '||'");
		p->pos += 2;
		r = and_expr(p);
		if (r >= 0)
			r = emit(p, TOP_OR, 0, 0);
	}
	return r;
}

/* Looks like a rule's name rather than an expression: a word alone. */
static bool bare_word(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_' || *s == '-'))
			return false;
	return true;
}

int trigger_parse(const char *text, struct trigger **ret)
{
	struct parser p = { .s = text };
	struct trigger *tr;
	size_t len = strlen(text);
	int r;

	if (len == 0)
		return errorf(-EINVAL, "trigger: empty; give all_succeeded, all_done, any_failed, none_failed, "
			      "any_succeeded, all_failed or an expression such as \"build.succeeded && !lint.failed\"");
	if (len > TRIGGER_MAX_LEN)
		return errorf(-EINVAL, "trigger: longer than %d bytes", TRIGGER_MAX_LEN);
	tr = calloc(1, sizeof(*tr));
	if (!tr)
		abort();
	tr->text = xstrdup(text);
	for (int k = 0; k < TRIGGER_EXPR; k++)
		if (strcmp(text, kind_names[k]) == 0) {
			tr->kind = k;
			*ret = tr;
			return 0;
		}
	if (bare_word(text)) {
		const char *close = closest_name(text, kind_names);

		trigger_free(tr);
		if (close)
			return errorf(-EINVAL, "trigger: unknown rule '%s'; did you mean '%s'?", text, close);
		return errorf(-EINVAL, "trigger: unknown rule '%.64s' (all_succeeded, all_done, any_failed, "
			      "none_failed, any_succeeded, all_failed, or an expression over NAME.succeeded|failed|skipped|cancelled|done)",
			      text);
	}
	tr->kind = TRIGGER_EXPR;
	p.tr = tr;
	r = expr(&p);
	if (r >= 0 && p.s[p.pos] == ')')
		r = fail(&p, "unbalanced ')'");
	if (r >= 0 && p.s[p.pos])
		r = fail(&p, "expected '&&', '||' or the end");
	if (r < 0) {
		trigger_free(tr);
		return r;
	}
	*ret = tr;
	return 0;
}

bool trigger_eval(const struct trigger *tr, unsigned (*state)(size_t i, void *userdata), void *userdata)
{
	bool stack[4 * TRIGGER_MAX_OPERANDS + 1];
	size_t n = 0;

	for (size_t i = 0; i < tr->n_ops; i++) {
		const struct trigger_op *op = &tr->ops[i];

		switch (op->code) {
		case TOP_OPERAND:
			stack[n++] = (state(op->name, userdata) & op->state) != 0;
			break;
		case TOP_NOT:
			stack[n - 1] = !stack[n - 1];
			break;
		case TOP_AND:
			n--;
			stack[n - 1] = stack[n - 1] && stack[n];
			break;
		case TOP_OR:
			n--;
			stack[n - 1] = stack[n - 1] || stack[n];
			break;
		}
	}
	return n == 1 && stack[0];
}
