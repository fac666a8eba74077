/*
 * cmd.h - the commands (cmd*.c): a line's command, its arguments, its reply.
 * Included by dagd.h, after the model: include dagd.h.
 */
#ifndef DAGD_CMD_H
#define DAGD_CMD_H

/* --- cmd.c --------------------------------------------------------------- */

struct req {
	struct client *client;
	json_object *id;                /* borrowed */
	json_object *args;              /* borrowed; an empty object if none */
	bool operator;
	uint64_t writes;                /* store_writes() when it came */
	/* a long line's args.tasks, left as text (json_parse_strict_lazy()):
	 * in args an empty array, here where each task is */
	const char *tasks_text;
	const struct json_span *tasks;
	size_t n_tasks;
};

struct cmd_entry {
	const char *name;
	int (*exec)(struct req *r);
	unsigned flags;
	const char *const *args;        /* the arguments it takes, NULL-terminated */
};
#define CMD_ANYONE 1u                   /* not only operators */

void cmd_line(struct client *c, bool operator, const char *line, size_t len);
int reply_ok(struct req *r, json_object *result);              /* takes result */
int reply_ok_text(struct req *r, const char *result);        /* JSON text */
int reply_error(struct req *r, const char *code, const char *fmt, ...) _printf_(3, 4);
int reply_errno(struct req *r, int err);
int req_project(struct req *r, const char *key, struct project **ret);
int req_task(struct req *r, struct task **ret);
extern const char *const task_add_args[], *const project_create_args[];

/* cmd-*.c */
extern const struct cmd_entry cmd_project_create_entry, cmd_project_list_entry,
	cmd_project_get_entry, cmd_project_update_entry, cmd_project_delete_entry,
	cmd_project_set_autonomous_entry, cmd_project_start_entry;
extern const struct cmd_entry cmd_task_add_entry, cmd_task_add_batch_entry, cmd_task_get_entry,
	cmd_task_list_entry, cmd_task_depend_entry, cmd_task_undepend_entry, cmd_task_start_entry,
	cmd_task_cancel_entry, cmd_task_retry_entry, cmd_task_unblocked_entry,
	cmd_task_logs_entry;
extern const struct cmd_entry cmd_task_complete_entry;
extern const struct cmd_entry cmd_task_pause_entry, cmd_task_resume_entry;
extern const struct cmd_entry cmd_task_hold_entry, cmd_task_release_entry, cmd_task_edit_entry,
	cmd_task_remove_entry, cmd_project_clean_entry;
extern const struct cmd_entry cmd_events_subscribe_entry;
extern const struct cmd_entry cmd_task_approve_entry, cmd_task_reject_entry, cmd_pool_set_entry,
	cmd_pool_list_entry, cmd_pool_delete_entry;
extern const struct cmd_entry cmd_executor_list_entry, cmd_executor_reload_entry,
	cmd_daemon_status_entry;

#endif
