/*
 * engine-spec.c - what a sandbox runs: its argv, its environment and its
 * executor's options, with the templates of the task's command and env put
 * in, as a spawn (or an adoption) hands them to the plugin.
 */
#include <stdio.h>
#include <string.h>

#include "dagd.h"
#include "template.h"

/* (argv and the environment are one block each: str_block()) */
void spec_free(char **argv, char **envp, char *opts)
{
	free(argv);
	free(envp);
	free(opts);
}

/* A template's value put in (*owned, to free), or (render false: a sandbox
 * found again; or no template in it) the text as it is. */
static const char *arg_text(const struct task *t, const char *s, bool shell, bool render, int *r, char **owned)
{
	*owned = NULL;
	if (render && *r >= 0 && template_any(s) && (*r = inputs_render(t, s, shell, owned)) >= 0)
		return *owned;
	return s;
}

/* An object of JSON text; NULL for none or an empty one ("{}", as most
 * tasks' env and options are), which costs no parse. */
static json_object *empty_or_parse(const char *text)
{
	return !text || strcmp(text, "{}") == 0 ? NULL : json_parse(text);
}

/* A variable of the environment to be: "name=value", or name alone when
 * value is NULL (made whole already; or an argument); owned is freed once
 * it is copied. */
struct var {
	const char *name, *value;
	char *owned;
};

/* argv or the environment in one block (a spawn makes a dozen variables):
 * the pointers, then the strings they point to. */
static char **str_block(struct var *v, size_t n)
{
	size_t size = (n + 1) * sizeof(char *);
	char **block, *s;

	for (size_t i = 0; i < n; i++)
		size += strlen(v[i].name) + (v[i].value ? strlen(v[i].value) + 1 : 0) + 1;
	block = xrealloc(NULL, size);
	s = (char *) (block + n + 1);
	for (size_t i = 0; i < n; i++) {
		block[i] = s;
		s = stpcpy(s, v[i].name);
		if (v[i].value)
			s = stpcpy(stpcpy(s, "="), v[i].value);
		s++;
		free(v[i].owned);
	}
	block[n] = NULL;
	return block;
}

/* What a sandbox of t runs: argv, the environment, the merged options (NULL
 * when they are the project's text as it is), with the templates of the
 * command and env put in (render); < 0 when one names what is not there
 * (the spec is built all the same, that one as it is). */
#define VARS_HERE 32
int spec_build(struct task *t, struct sandbox *sb, struct dagd_spawn *spec, const char *inputs_path,
		      bool render, char ***ret_argv, char ***ret_envp, char **ret_opts)
{
	const struct task_def *d = task_def(t);
	json_object *cmd = sb->validator ? json_object_new_string(ext_of(t)->validation_command) : json_parse(d->command);
	json_object *env = empty_or_parse(d->env), *opts = NULL, *topts = empty_or_parse(d->executor_options);
	char idbuf[24], pid[24], att[24], *fin[8], *owned;
	struct var vhere[VARS_HERE], *v, *args;
	size_t n = 0, n_fin, n_args, n_env = (size_t) (env ? json_object_object_length(env) : 0) + 18;
	/* the daemon's own, which nothing changes while it runs */
	static const char *path, *home;
	static bool looked;
	int r = 0;

	if (!looked) {
		path = getenv("PATH");
		home = getenv("HOME");
		looked = true;
	}

	memset(spec, 0, sizeof(*spec));
	args = vhere;
	if (json_object_is_type(cmd, json_type_array)) {
		size_t len = json_object_array_length(cmd);

		if (len > VARS_HERE)
			args = xrealloc(NULL, len * sizeof(*args));
		/* up to one that is not a string, where argv always ended */
		for (n_args = 0; n_args < len; n_args++) {
			const char *a = arg_text(t, json_object_get_string(json_object_array_get_idx(cmd, n_args)),
						 false, render, &r, &owned);

			if (!a)
				break;
			args[n_args] = (struct var) { a, NULL, owned };
		}
	} else {
		args[0] = (struct var) { "/bin/sh", NULL, NULL };
		args[1] = (struct var) { "-c", NULL, NULL };
		args[2].name = arg_text(t, json_object_get_string(cmd), true, render, &r, &owned);
		args[2].value = NULL;
		args[2].owned = owned;
		n_args = args[2].name ? 3 : 2;
	}
	*ret_argv = str_block(args, n_args);
	if (args != vhere)
		free(args);
	v = n_env <= VARS_HERE ? vhere : xrealloc(NULL, n_env * sizeof(*v));
	if (!json_object_object_get_ex(env, "PATH", NULL))
		v[n++] = (struct var) { "PATH", path ? path : "/usr/local/bin:/usr/bin:/bin", NULL };
	if (home && !json_object_object_get_ex(env, "HOME", NULL))
		v[n++] = (struct var) { "HOME", home, NULL };
	if (env) {
		json_object_object_foreach(env, k, val) {
			const char *text = arg_text(t, json_object_get_string(val), false, render, &r, &owned);

			v[n++] = (struct var) { k, text, owned };
		}
	}
	if (inputs_path)
		v[n++] = (struct var) { "DAGD_INPUTS", inputs_path, NULL };
	if (d->item)
		v[n++] = (struct var) { "DAGD_ITEM", d->item, NULL };
	format_id(pid, "p-", t->project->id);
	format_id(att, "", t->attempt);
	v[n++] = (struct var) { "DAGD_TASK_ID", task_id_string(t->id, idbuf), NULL };
	v[n++] = (struct var) { "DAGD_PROJECT_ID", pid, NULL };
	v[n++] = (struct var) { "DAGD_SANDBOX_ID", sb->id, NULL };
	v[n++] = (struct var) { "DAGD_ATTEMPT", att, NULL };
	v[n++] = (struct var) { "DAGD_SOCKET", D.socket_path, NULL };
	v[n++] = (struct var) { "DAGD_TASK_TOKEN", d->token ? d->token : "", NULL };
	n_fin = finally_env(t, fin);    /* DAGD_DAG_*: a finally task's, made whole */
	for (size_t i = 0; i < n_fin; i++)
		v[n++] = (struct var) { fin[i], NULL, fin[i] };
	*ret_envp = str_block(v, n);
	if (v != vhere)
		free(v);

	/* the project's options, with the task's over them (most tasks have
	 * none of their own: the project's text as it is) */
	*ret_opts = NULL;
	if (!topts && t->project->executor_options)
		spec->options_json = t->project->executor_options;
	else {
		opts = json_parse(t->project->executor_options);
		if (!json_object_is_type(opts, json_type_object)) {
			json_object_put(opts);
			opts = json_object_new_object();
		}
		if (topts) {
			json_object_object_foreach(topts, k2, v2)
				json_object_object_add(opts, k2, json_object_get(v2));
		}
		spec->options_json = *ret_opts = xstrdup(json_text(opts));
	}

	spec->sandbox_id = sb->id;
	spec->attempt = t->attempt;
	spec->argv = (const char *const *) *ret_argv;
	spec->cwd = d->cwd;
	spec->log_path = sb->log_path;
	spec->timeout_usec = ext_of(t)->timeout_usec;
	spec->inputs_path = inputs_path;
	spec->envp = (const char *const *) *ret_envp;
	json_object_put(cmd);
	json_object_put(env);
	json_object_put(opts);
	json_object_put(topts);
	return r;
}
