/*
 * host.h - the executors' host (plugin.c, plugin-copy.c): loading plugins and what they report.
 * Included by dagd.h, after the model: include dagd.h.
 */
#ifndef DAGD_HOST_H
#define DAGD_HOST_H

/* --- plugin.c ------------------------------------------------------------ */

struct executor {
	char *name;
	char *path;                     /* the file, what messages name */
	int fd;                         /* its private copy (plugin-copy.c), what is loaded */
	void *dl;
	struct dagd_host host;          /* what init() was given */
	const struct dagd_executor *vt;
	void *state;
	char *error;                    /* why it is not loaded */
	unsigned limit;                 /* 0: none */
	unsigned active;
	bool list_failed;               /* it can list its sandboxes, but could not */
	struct executor *next;
};

extern struct executor *executors;

int plugins_load(const char *dir);
void plugins_unload(void);
int plugins_reload(void);
struct executor *executor_find(const char *name);
/* What an executor's list() reported: one sandbox it still has. */
struct listed {
	struct executor *ex;
	char *sandbox_id;
	char *handle;
	bool owned;
	struct listed *next;
};
int executor_list(struct executor *ex, struct listed **ret);
bool executor_can_list(const struct executor *ex);
void listed_free(struct listed *l);
void executor_forget(struct executor *ex, const char *sandbox_id, const char *handle);
int executor_check_options(struct executor *ex, const char *options_json, char **ret_error);
int executor_pause(struct executor *ex, struct dagd_sandbox *sb, void *data, bool paused);
const char *executor_status(struct executor *ex);
bool executor_full(const struct executor *ex);

/* --- plugin-copy.c ------------------------------------------------------- */

/* A sealed private copy of the plugin file at path, checked to be a whole
 * ELF shared object: its fd, to be loaded by the name plugin_copy_name()
 * gives it.  errorf() naming path on failure. */
int plugin_copy(const char *path, int *ret_fd);
void plugin_copy_name(int fd, char *buf, size_t size);

#endif
