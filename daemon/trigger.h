/*
 * trigger.h - a task's trigger rule: when it runs relative to its
 * dependencies.  A named rule (all_succeeded, all_done, any_failed,
 * none_failed) or an expression over named dependencies, after Argo's
 * `depends`: "build.succeeded && (lint.failed || lint.skipped)".
 *
 * trigger.c knows nothing of the engine: it parses a rule into a small
 * program and evaluates it with what the caller says of each operand.
 */
#ifndef DAGD_TRIGGER_H
#define DAGD_TRIGGER_H

#include <stdbool.h>
#include <stddef.h>

#define TRIGGER_MAX_LEN 4096            /* bytes of an expression */
#define TRIGGER_MAX_DEPTH 32            /* nested parentheses and '!' */
#define TRIGGER_MAX_OPERANDS 256

enum trigger_kind {
	TRIGGER_ALL_SUCCEEDED,          /* the default */
	TRIGGER_ALL_DONE,
	TRIGGER_ANY_FAILED,
	TRIGGER_NONE_FAILED,
	TRIGGER_ANY_SUCCEEDED,          /* over groups: a mapped dependency's items */
	TRIGGER_ALL_FAILED,
	TRIGGER_EXPR,
	_TRIGGER_KIND_MAX,
};

/* What an operand asks of its dependency, as bits of what holds of it. */
enum trigger_state {
	TS_SUCCEEDED = 1u << 0,         /* completed */
	TS_FAILED = 1u << 1,            /* failed or upstream_failed */
	TS_SKIPPED = 1u << 2,
	TS_CANCELLED = 1u << 3,
	TS_DONE = 1u << 4,              /* finished, whatever the outcome */
};

enum trigger_opcode { TOP_OPERAND, TOP_NOT, TOP_AND, TOP_OR };

struct trigger_op {
	unsigned char code;             /* enum trigger_opcode */
	unsigned char state;            /* TOP_OPERAND: one enum trigger_state bit */
	unsigned short name;            /* TOP_OPERAND: index into names */
};

struct trigger {
	enum trigger_kind kind;
	char *text;                     /* as given */
	struct trigger_op *ops;         /* TRIGGER_EXPR: postfix */
	size_t n_ops;
	char **names;                   /* TRIGGER_EXPR: the dependencies named, each once */
	size_t n_names;
};

/* Parses text into *ret.  A mistake is errorf(-EINVAL) saying what and at
 * which character (1-based). */
int trigger_parse(const char *text, struct trigger **ret);
void trigger_free(struct trigger *tr);
const char *trigger_kind_name(enum trigger_kind k);
static inline const char *trigger_text(const struct trigger *tr) { return tr->text; }

/* TRIGGER_EXPR: state(i, userdata) gives the trigger_state bits that hold of
 * names[i]'s dependency (0 if it has none). */
bool trigger_eval(const struct trigger *tr, unsigned (*state)(size_t i, void *userdata), void *userdata);

#endif
