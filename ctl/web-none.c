/*
 * web-none.c - web, in a dagctl built without libmicrohttpd (the static one
 * copied into container images): it says so.
 */
#include "dagctl.h"

static int web_none_exec(struct ctl *c, const struct ctl_cmd *cmd, json_object *args,
			 int argc, char **argv) {
	return ctl_fail(c, -EOPNOTSUPP, "this dagctl was built without the web board");
}

const struct ctl_cmd ctl_cmd_web = {
	.name = "web",
	.usage = "",
	.summary = "Serve the board in a web browser (not in this build)",
	.min_args = 0, .max_args = -1,
	.exec = web_none_exec,
};
