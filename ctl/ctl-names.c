/*
 * ctl-names.c - task references: wherever dagctl takes a task it takes its
 * id (t-7), PROJECT/NAME, or a bare NAME with the command's project
 * (--project, or the project the command acts on).  Names are looked up in
 * dagctl, from the project's task.list, once per project per command.
 */
#include <string.h>

#include "dagctl.h"

/* Whether the n bytes at s are a task id: "t-" and digits. */
bool ctl_is_task_id_n(const char *s, size_t n) {
	if (n < 3 || memcmp(s, "t-", 2) != 0)
		return false;
	for (size_t i = 2; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

bool ctl_is_task_id(const char *s) {
	return ctl_is_task_id_n(s, strlen(s));
}

/* The tasks of a project, fetched once; cache maps project -> task array. */
static int project_tasks(struct ctl *c, json_object *cache, const char *project, json_object **ret) {
	_cleanup_(json_object_putp) json_object *args = json_object_new_object(), *result = NULL;
	json_object *tasks;
	int r;

	if (json_object_object_get_ex(cache, project, &tasks)) {
		*ret = tasks;
		return 0;
	}
	if (!args)
		return -ENOMEM;
	json_object_object_add(args, "project", json_object_new_string(project));
	r = ctl_call(c, "task.list", args, &result);
	if (r < 0)
		return r;
	tasks = ctl_expect(result, "tasks", json_type_array);
	if (!tasks)
		return -EBADMSG;
	json_object_object_add(cache, project, json_object_get(tasks));
	*ret = tasks;
	return 0;
}

/* The id of the task ref names: an id as it is, else a name looked up in its
 * project (PROJECT/NAME, or project).  -ENXIO, after saying so, if there is no
 * such task. */
static int task_ref(struct ctl *c, json_object *cache, const char *project, const char *ref,
		    const char **ret_id) {
	_cleanup_(freep) char *p = NULL;
	const char *slash = strchr(ref, '/'), *name = ref;
	json_object *tasks;
	int r;

	if (!slash && ctl_is_task_id(ref)) {
		*ret_id = ref;
		return 0;
	}
	if (slash) {
		p = strndup(ref, slash - ref);
		if (!p)
			return -ENOMEM;
		project = p;
		name = slash + 1;
	}
	if (!project || !*project) {
		fprintf(stderr, "dagctl: '%s' is not a task id; name its project: PROJECT/%s or --project PROJECT\n",
			ref, ref);
		return -EINVAL;
	}
	if (!*name) {
		fprintf(stderr, "dagctl: '%s' names no task after the '/'\n", ref);
		return -EINVAL;
	}
	r = project_tasks(c, cache, project, &tasks);
	if (r < 0)
		return r;
	for (size_t i = 0; i < json_object_array_length(tasks); i++) {
		json_object *t = json_object_array_get_idx(tasks, i);

		if (strcmp(ctl_str(t, "name"), name) == 0 || strcmp(ctl_str(t, "id"), name) == 0) {
			*ret_id = ctl_str(t, "id");
			return 0;
		}
	}
	ctl_error(c, "not_found", "no task named '%s' in project '%s'", name, project);
	return -ENXIO;
}

/* Replaces the task references of args (task_id; the arrays depends_on and
 * on) by task ids; names without a PROJECT/ are looked up in project, else
 * in the project of task_id if it was given as PROJECT/NAME. */
int ctl_resolve_tasks(struct ctl *c, json_object *args, const char *project) {
	static const char *const keys[] = { "task_id", "depends_on", "on" };
	_cleanup_(json_object_putp) json_object *cache = json_object_new_object();
	_cleanup_(freep) char *own = NULL;
	const char *ref = json_object_get_string(ctl_get(args, "task_id", json_type_string)), *slash;
	int r;

	if (!cache)
		return -ENOMEM;
	if (!project && ref && (slash = strchr(ref, '/'))) {
		own = strndup(ref, slash - ref);
		if (!own)
			return -ENOMEM;
		project = own;
	}
	for (size_t k = 0; k < ELEMENTSOF(keys); k++) {
		json_object *v = NULL;
		const char *id;

		if (!json_object_object_get_ex(args, keys[k], &v) || !v)
			continue;
		if (json_object_is_type(v, json_type_string)) {
			r = task_ref(c, cache, project, json_object_get_string(v), &id);
			if (r < 0)
				return r;
			if (id != json_object_get_string(v))
				json_object_object_add(args, keys[k], json_object_new_string(id));
			continue;
		}
		if (!json_object_is_type(v, json_type_array))
			continue;
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			json_object *e = json_object_array_get_idx(v, i);

			if (!json_object_is_type(e, json_type_string))
				continue;
			r = task_ref(c, cache, project, json_object_get_string(e), &id);
			if (r < 0)
				return r;
			if (id != json_object_get_string(e))
				json_object_array_put_idx(v, i, json_object_new_string(id));
		}
	}
	return 0;
}
