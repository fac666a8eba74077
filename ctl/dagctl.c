/*
 * dagctl.c - dagctl's entry point: the global options, the table of
 * commands, the help drawn from it, and the parsing that turns a command's
 * options and operands into the args of its request.
 */
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "dagctl.h"

static const struct ctl_cmd ctl_cmd_help;

static const struct ctl_cmd *const cmds[] = {
	&ctl_cmd_project_create,
	&ctl_cmd_project_list,
	&ctl_cmd_project_show,
	&ctl_cmd_project_set,
	&ctl_cmd_project_delete,
	&ctl_cmd_project_clean,
	&ctl_cmd_autonomous,
	&ctl_cmd_start,
	&ctl_cmd_task_add,
	&ctl_cmd_task_list,
	&ctl_cmd_task_show,
	&ctl_cmd_task_cancel,
	&ctl_cmd_task_retry,
	&ctl_cmd_task_pause,
	&ctl_cmd_task_resume,
	&ctl_cmd_task_hold,
	&ctl_cmd_task_release,
	&ctl_cmd_task_edit,
	&ctl_cmd_task_remove,
	&ctl_cmd_task_start,
	&ctl_cmd_task_depend,
	&ctl_cmd_task_undepend,
	&ctl_cmd_task_logs,
	&ctl_cmd_apply,
	&ctl_cmd_unblocked,
	&ctl_cmd_complete,
	&ctl_cmd_approve,
	&ctl_cmd_reject,
	&ctl_cmd_pool_set,
	&ctl_cmd_pool_list,
	&ctl_cmd_pool_delete,
	&ctl_cmd_board,
	&ctl_cmd_graph,
	&ctl_cmd_web,
	&ctl_cmd_wait,
	&ctl_cmd_logs,
	&ctl_cmd_events,
	&ctl_cmd_status,
	&ctl_cmd_executors,
	&ctl_cmd_executors_reload,
	&ctl_cmd_help,
};

/* The options every command takes, after its own. */
static const struct ctl_opt common_opts[] = {
	{ "json", NULL, ARG_TRUE, NULL, 0, "print the JSON result instead (a refusal: JSON on stderr)" },
	{ "quiet", NULL, ARG_TRUE, NULL, 0, "print nothing on stdout: the exit status says it" },
	{ "help", NULL, ARG_TRUE, NULL, 0, "show this help" },
	{}
};

/* The short options, the same for every command that has the long one. */
static const struct {
	const char *name;
	char letter;
} letters[] = {
	{ "project", 'p' },
	{ "follow", 'f' },
	{ "last", 'n' },
};

static char opt_letter(const struct ctl_opt *o) {
	for (size_t i = 0; i < ELEMENTSOF(letters); i++)
		if (strcmp(letters[i].name, o->name) == 0)
			return letters[i].letter;
	return 0;
}

enum { OPT_JSON = 0x100, OPT_HELP, OPT_VERSION, OPT_SYSTEM, OPT_USER, OPT_CMD = 0x200 };

/* -q: stdout goes nowhere; what goes wrong is still said on stderr. */
static int quiet(void) {
	int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (dup2(fd, STDOUT_FILENO) < 0) {
		close(fd);
		return -errno;
	}
	close(fd);
	return 0;
}

static const char global_usage[] =
	"usage: dagctl [--socket PATH | --system | --user] [--json] [-q] COMMAND [ARG...]\n";

static void list_cmds(FILE *f, const char *family) {
	size_t flen = family ? strlen(family) : 0, w = 0;

	for (size_t i = 0; i < ELEMENTSOF(cmds); i++)
		if (strlen(cmds[i]->name) > w)
			w = strlen(cmds[i]->name);
	for (size_t i = 0; i < ELEMENTSOF(cmds); i++) {
		const char *n = cmds[i]->name;

		if (family && (strncmp(n, family, flen) != 0 || (n[flen] != '\0' && n[flen] != ' ')))
			continue;
		fprintf(f, "  %-*s  %s\n", (int) w, n, cmds[i]->summary);
	}
}

static void global_help(FILE *f) {
	fputs(global_usage, f);
	fputs("\nDrive dagd, the daemon that runs a dependency graph of tasks, over its Unix socket.\n"
	      "\nCommands:\n", f);
	list_cmds(f, NULL);
	fputs("\nGlobal options (before COMMAND):\n"
	      "  --socket PATH  the daemon's socket; default $DAGD_SOCKET, else as root the\n"
	      "                 system's (/run/dagd/dagd.sock), else your own daemon's\n"
	      "                 ($XDG_RUNTIME_DIR/dagd.sock) if it is there, else the system's\n"
	      "  --system       the system's daemon, even if you have your own\n"
	      "  --user         your own daemon ($XDG_RUNTIME_DIR/dagd.sock), even as root\n"
	      "  --json         print the daemon's JSON result instead of tables and lines;\n"
	      "                 a refusal is then a JSON object on stderr: {\"error\": {\"code\",\n"
	      "                 \"message\"}}\n"
	      "  -q, --quiet    print nothing on stdout (errors still go to stderr)\n"
	      "  -h, --help     show this help; 'dagctl COMMAND --help' or 'dagctl help COMMAND'\n"
	      "                 explain one command\n"
	      "  --version      print dagctl's version\n"
	      "\nExit status: 0 done; 1 the daemon refused (\"dagctl: CODE: MESSAGE\"), or what\n"
	      "wait or logs --follow waited for did not complete, or apply found differences\n"
	      "(without --update); 2 a usage error, or the daemon cannot be reached; 3 wait\n"
	      "timed out; 4 wait's task or project is not there.\n"
	      "\nExample:\n"
	      "  dagctl project create demo\n"
	      "  dagctl task add demo --title 'Say hello' -- echo hello\n"
	      "  dagctl start demo && dagctl task list demo\n", f);
}

static void opt_help(FILE *f, const struct ctl_opt *o) {
	char left[64];

	char letter[8] = "";

	if (opt_letter(o) || strcmp(o->name, "help") == 0)
		snprintf(letter, sizeof letter, "-%c, ", opt_letter(o) ?: 'h');
	if (strcmp(o->name, "quiet") == 0)
		snprintf(letter, sizeof letter, "-q, ");
	snprintf(left, sizeof left, "%s--%s%s%s", letter, o->name, o->arg ? " " : "", o->arg ?: "");
	fprintf(f, "  %-26s %s\n", left, o->help);
}

static void cmd_help(const struct ctl_cmd *cmd, FILE *f) {
	fprintf(f, "usage: dagctl %s%s%s\n\n%s.\n", cmd->name, *cmd->usage ? " " : "", cmd->usage,
		cmd->summary);
	if (cmd->details)
		fprintf(f, "\n%s", cmd->details);
	fputs("\nOptions:\n", f);
	for (const struct ctl_opt *o = cmd->opts; o && o->name; o++)
		opt_help(f, o);
	for (const struct ctl_opt *o = common_opts; o->name; o++)
		opt_help(f, o);
	if (cmd->example)
		fprintf(f, "\nExample:\n%s", cmd->example);
}

int ctl_usage_error(const struct ctl_cmd *cmd, const char *format, ...) {
	if (format) {
		va_list ap;

		fprintf(stderr, "dagctl%s%s: ", cmd ? " " : "", cmd ? cmd->name : "");
		va_start(ap, format);
		vfprintf(stderr, format, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
	fprintf(stderr, "Try 'dagctl %s%s--help'.\n", cmd ? cmd->name : "", cmd ? " " : "");
	return -EINVAL;
}

/* Appends s to the array `key` of args, creating it. */
static void append_string(json_object *args, const char *key, const char *s) {
	json_object *a = ctl_get(args, key, json_type_array);

	if (!a) {
		a = json_object_new_array();
		json_object_object_add(args, key, a);
	}
	json_object_array_add(a, json_object_new_string(s));
}

/* Sets args[o->key] from the option's argument. */
static int apply_opt(const struct ctl_cmd *cmd, const struct ctl_opt *o, const char *s,
		     json_object *args) {
	json_object *v = NULL;
	char *end;

	switch (o->type) {
	case ARG_STRING:
		v = json_object_new_string(s);
		break;
	case ARG_STRINGS:
		append_string(args, o->key, s);
		return 0;
	case ARG_INT: {
		long long n;

		errno = 0;
		n = strtoll(s, &end, 10);
		if (errno != 0 || end == s || *end || n < o->min)
			return ctl_usage_error(cmd, "--%s: '%s' is not a whole number >= %lld",
					       o->name, s, o->min);
		v = json_object_new_int64(n);
		break;
	}
	case ARG_SECONDS: {
		double d;

		errno = 0;
		d = strtod(s, &end);
		if (errno != 0 || end == s || *end || !isfinite(d) || d < 0)
			return ctl_usage_error(cmd, "--%s: '%s' is not a number of seconds", o->name, s);
		v = d == floor(d) && d < 1e15 ? json_object_new_int64((int64_t) d)
					      : json_object_new_double(d);
		break;
	}
	case ARG_OBJECT:
	case ARG_JSON:
		if (ctl_parse_json(s, strlen(s), &v) < 0)
			return ctl_usage_error(cmd, "--%s: not valid JSON: %s", o->name, s);
		if (o->type == ARG_OBJECT && !json_object_is_type(v, json_type_object)) {
			json_object_put(v);
			return ctl_usage_error(cmd, "--%s: not a JSON object: %s", o->name, s);
		}
		break;
	case ARG_ENV: {
		const char *eq = strchr(s, '=');
		json_object *env = ctl_get(args, o->key, json_type_object);
		_cleanup_(freep) char *k = NULL;

		if (!eq || eq == s)
			return ctl_usage_error(cmd, "--%s: '%s' is not KEY=VALUE", o->name, s);
		k = strndup(s, eq - s);
		if (!k)
			return -ENOMEM;
		if (!env) {
			env = json_object_new_object();
			json_object_object_add(args, o->key, env);
		}
		json_object_object_add(env, k, json_object_new_string(eq + 1));
		return 0;
	}
	case ARG_TRUE:
	case ARG_FALSE:
		v = json_object_new_boolean(o->type == ARG_TRUE);
		break;
	}
	json_object_object_add(args, o->key, v);
	return 0;
}

/* Parses a command's options, filling args; afterwards optind is the first operand. */
static int parse_opts(struct ctl *c, const struct ctl_cmd *cmd, int argc, char **argv,
		      json_object *args) {
	struct option lo[40];
	char shorts[64] = "hq";
	size_t n = 0, k = 2;
	int r;

	for (const struct ctl_opt *o = cmd->opts; o && o->name && n < ELEMENTSOF(lo) - 4; o++, n++) {
		lo[n] = (struct option) { o->name, o->arg ? required_argument : no_argument, NULL,
					  OPT_CMD + (int) n };
		if (opt_letter(o) && k + 3 < sizeof shorts) {
			shorts[k++] = opt_letter(o);
			if (o->arg)
				shorts[k++] = ':';
			shorts[k] = '\0';
		}
	}
	lo[n++] = (struct option) { "json", no_argument, NULL, OPT_JSON };
	lo[n++] = (struct option) { "help", no_argument, NULL, 'h' };
	lo[n++] = (struct option) { "quiet", no_argument, NULL, 'q' };
	lo[n] = (struct option) {};

	optind = 0;
	while ((r = getopt_long(argc, argv, shorts, lo, NULL)) >= 0) {
		const struct ctl_opt *o = NULL;

		if (r < OPT_JSON && r != 'h' && r != 'q' && r != '?')
			for (const struct ctl_opt *x = cmd->opts; x && x->name; x++)
				if (opt_letter(x) == r)
					o = x;
		if (o)
			r = OPT_CMD + (int) (o - cmd->opts);
		switch (r) {
		case 'h':
			cmd_help(cmd, stdout);
			exit(EXIT_SUCCESS);
		case OPT_JSON:
			c->json = true;
			break;
		case 'q':
			c->silent = true;
			break;
		case '?':
			return ctl_usage_error(cmd, NULL);
		default:
			r = apply_opt(cmd, &cmd->opts[r - OPT_CMD], optarg, args);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* The name of the option that sets key, for messages. */
static const char *key_option(const struct ctl_cmd *cmd, const char *key) {
	for (const struct ctl_opt *o = cmd->opts; o && o->name; o++)
		if (strcmp(o->key, key) == 0)
			return o->name;
	return key;
}

/* Task names in args become ids; the project they are looked up in is the
 * command's (-p as _project, which only says where to look, or its project). */
static int resolve_names(struct ctl *c, json_object *args) {
	json_object *project = ctl_get(args, "_project", json_type_string) ?:
			       ctl_get(args, "project", json_type_string);
	_cleanup_(freep) char *where = project ? strdup(json_object_get_string(project)) : NULL;

	if (project && !where)
		return -ENOMEM;
	json_object_object_del(args, "_project");
	return ctl_resolve_tasks(c, args, where);
}

static int run_cmd(struct ctl *c, const struct ctl_cmd *cmd, int argc, char **argv) {
	_cleanup_(json_object_putp) json_object *args = json_object_new_object();
	char prog[64], **words = argv;
	int end = argc, nargs, nkeys = cmd->keys[1] ? 2 : cmd->keys[0] ? 1 : 0, r;

	if (!args)
		return -ENOMEM;
	/* getopt prefixes its messages with argv[0] */
	snprintf(prog, sizeof prog, "dagctl %s", cmd->name);
	argv[0] = prog;

	if (cmd->dashdash)
		for (int i = 1; i < argc; i++)
			if (strcmp(argv[i], "--") == 0) {
				end = i;
				break;
			}
	r = parse_opts(c, cmd, end, argv, args);
	if (r < 0)
		return r;
	argv += optind;
	nargs = end - optind;

	if (nargs < cmd->min_args)
		return ctl_usage_error(cmd, "missing an operand: dagctl %s %s", cmd->name, cmd->usage);
	if (cmd->max_args >= 0 && nargs > cmd->max_args)
		return ctl_usage_error(cmd, "unexpected operand '%s'", argv[cmd->max_args]);
	for (int i = 0; i < nargs && i < nkeys; i++)
		if (i == nkeys - 1 && cmd->max_args < 0)
			for (int j = i; j < nargs; j++)
				append_string(args, cmd->keys[i], argv[j]);
		else if (json_object_object_get_ex(args, cmd->keys[i], NULL))
			/* "task list build -p test": which one? */
			return ctl_usage_error(cmd, "'%s' given twice: as an operand and with --%s", argv[i],
					       key_option(cmd, cmd->keys[i]));
		else
			json_object_object_add(args, cmd->keys[i], json_object_new_string(argv[i]));

	if (end < argc) {
		if (json_object_object_get_ex(args, cmd->dashdash, NULL))
			return ctl_usage_error(cmd, "give the command once: after '--' or with --%s",
					       key_option(cmd, cmd->dashdash));
		if (end + 1 == argc)
			return ctl_usage_error(cmd, "nothing after '--'");
		for (int i = end + 1; i < argc; i++)
			append_string(args, cmd->dashdash, words[i]);
	}
	for (size_t i = 0; i < ELEMENTSOF(cmd->required) && cmd->required[i]; i++)
		if (!json_object_object_get_ex(args, cmd->required[i], NULL))
			return ctl_usage_error(cmd, "missing --%s%s", key_option(cmd, cmd->required[i]),
					       cmd->dashdash && strcmp(cmd->required[i], cmd->dashdash) == 0
					       ? " or '-- COMMAND [ARG...]'" : "");

	if (c->silent && (r = quiet()) < 0)
		return r;

	r = resolve_names(c, args);
	if (r < 0)
		return r;

	if (cmd->exec)
		return cmd->exec(c, cmd, args, nargs, argv);
	return ctl_run(c, cmd->call, args, cmd->show);
}

/* How many of the words in argv name cmd: all of its words, or 0. */
static int cmd_words(const struct ctl_cmd *cmd, int argc, char **argv) {
	const char *n = cmd->name;
	int i = 0;

	for (; i < argc; i++) {
		size_t len = strcspn(n, " ");

		if (strlen(argv[i]) != len || strncmp(n, argv[i], len) != 0)
			return 0;
		n += len;
		if (!*n)
			return i + 1;
		n++;
	}
	return 0;
}

/* The command named by the first words of argv (the longest match), or NULL. */
static const struct ctl_cmd *find_cmd(int argc, char **argv, int *ret_words) {
	const struct ctl_cmd *best = NULL;
	int words = 0;

	for (size_t i = 0; i < ELEMENTSOF(cmds); i++) {
		int w = cmd_words(cmds[i], argc, argv);

		if (w > words) {
			best = cmds[i];
			words = w;
		}
	}
	*ret_words = words;
	return best;
}

static bool is_family(const char *word) {
	size_t len = strlen(word);

	for (size_t i = 0; i < ELEMENTSOF(cmds); i++)
		if (strncmp(cmds[i]->name, word, len) == 0 && cmds[i]->name[len] == ' ')
			return true;
	return false;
}

/* Finds and runs the command; argc/argv start at its first word. */
static int dispatch(struct ctl *c, int argc, char **argv) {
	const struct ctl_cmd *cmd;
	int words;

	cmd = find_cmd(argc, argv, &words);
	if (!cmd) {
		bool help = argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0);

		if (!is_family(argv[0])) {
			fprintf(stderr, "dagctl: unknown command '%s'\n", argv[0]);
			return ctl_usage_error(NULL, NULL);
		}
		if (argc > 1 && !help)
			fprintf(stderr, "dagctl: unknown command '%s %s'\n", argv[0], argv[1]);
		fprintf(help ? stdout : stderr, "usage: dagctl %s SUBCOMMAND ...\n\n", argv[0]);
		list_cmds(help ? stdout : stderr, argv[0]);
		return help ? 0 : -EINVAL;
	}
	return run_cmd(c, cmd, argc - words + 1, argv + words - 1);
}

static int help_exec(struct ctl *c, const struct ctl_cmd *cmd, json_object *args,
		     int argc, char **argv) {
	const struct ctl_cmd *target;
	int words;

	if (argc == 0) {
		global_help(stdout);
		return 0;
	}
	target = find_cmd(argc, argv, &words);
	if (target && words == argc) {
		cmd_help(target, stdout);
		return 0;
	}
	if (argc == 1 && is_family(argv[0])) {
		printf("usage: dagctl %s SUBCOMMAND ...\n\n", argv[0]);
		list_cmds(stdout, argv[0]);
		return 0;
	}
	return ctl_usage_error(cmd, "no command '%s%s'", argv[0], argc > 1 ? " ..." : "");
}

static const struct ctl_cmd ctl_cmd_help = {
	.name = "help",
	.usage = "[COMMAND]",
	.summary = "Explain dagctl, or one command",
	.example = "  dagctl help task add\n",
	.min_args = 0, .max_args = -1,
	.exec = help_exec,
};

int main(int argc, char **argv) {
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "system", no_argument, NULL, OPT_SYSTEM },
		{ "user", no_argument, NULL, OPT_USER },
		{}
	};
	struct ctl c = { .fd = -EBADF, .next_id = 1 };
	enum ctl_scope scope = CTL_SCOPE_ANY;
	const char *sock = NULL;
	int o, r;

	signal(SIGPIPE, SIG_IGN);
	argv[0] = (char *) "dagctl";
	while ((o = getopt_long(argc, argv, "+hqs:", opts, NULL)) >= 0)
		switch (o) {
		case 's':
			sock = optarg;
			break;
		case 'q':
			c.silent = true;
			break;
		case OPT_JSON:
			c.json = true;
			break;
		case 'h':
			global_help(stdout);
			return 0;
		case OPT_VERSION:
			puts("dagctl " DAGD_VERSION);
			return 0;
		case OPT_SYSTEM:
		case OPT_USER:
			if (scope != CTL_SCOPE_ANY && scope != (o == OPT_SYSTEM ? CTL_SCOPE_SYSTEM : CTL_SCOPE_USER)) {
				ctl_usage_error(NULL, "--system and --user exclude each other");
				return 2;
			}
			scope = o == OPT_SYSTEM ? CTL_SCOPE_SYSTEM : CTL_SCOPE_USER;
			break;
		default:
			ctl_usage_error(NULL, NULL);
			return 2;
		}
	if (optind >= argc) {
		fputs(global_usage, stderr);
		ctl_usage_error(NULL, NULL);
		return 2;
	}
	if (sock && scope != CTL_SCOPE_ANY) {
		ctl_usage_error(NULL, "--socket names the socket: no --%s with it",
				scope == CTL_SCOPE_SYSTEM ? "system" : "user");
		return 2;
	}
	ctl_socket_resolve(&c, sock, scope);

	r = dispatch(&c, argc - optind, argv + optind);
	ctl_disconnect(&c);
	free(c.buf);
	if (fflush(stdout) != 0 && r >= 0) {
		if (errno != EPIPE)
			fprintf(stderr, "dagctl: cannot write the output: %s\n", strerror(errno));
		return 2;
	}
	if (r == -ETIME)
		return 3;
	if (r == -ENODEV)
		return 4;
	return r >= 0 ? 0 : r == -EREMOTEIO || r == -EBADMSG || r == -ECANCELED || r == -ENXIO ? 1 : 2;
}
