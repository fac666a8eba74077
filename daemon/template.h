/*
 * template.h - {{inputs.NAME.field}} and {{item.field}} in a task's command
 * and env (template.c).
 */
#ifndef DAGD_TEMPLATE_H
#define DAGD_TEMPLATE_H

#include <stdbool.h>
#include <json-c/json.h>

/* Whether s holds anything that looks like a template at all ("{{"): most
 * commands do not, and are passed on untouched. */
bool template_any(const char *s);

/* The templates of s are well formed: each "{{" followed by a name is
 * closed by "}}", its root is inputs (with a name) or item (only if
 * item_allowed), and no field of its path is empty.  errorf(-EINVAL) saying
 * which one otherwise.  A "{{" not followed by a name ("{{.ID}}", as docker
 * --format takes) is left as it is. */
int template_check(const char *s, bool item_allowed);

/* s with its templates replaced: inputs.NAME by the value of the key NAME
 * of inputs (the longest key that fits: names may hold dots), item by item,
 * then each field of the path (a key of an object, an index of an array).
 * A string is put in as its text, anything else as JSON.  shell: s is a
 * shell command, and each value is quoted for where it stands (outside
 * quotes, in '...' or in "..."), so that no value reaches the shell
 * unquoted.  errorf(-ENOENT) naming what is missing. */
int template_render(const char *s, json_object *inputs, json_object *item, bool shell, char **ret);

#endif
