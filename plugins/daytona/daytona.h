/*
 * daytona.h - the daytona executor's own interfaces: its options and the
 * sandbox they define (options.c).  daytona.c, the executor itself, uses
 * them and what plugins share (common/common.h: the HTTP client, helpers).
 */
#ifndef DAGD_DAYTONA_H
#define DAGD_DAYTONA_H

#include "common/common.h"

/* Where the API is when nobody says. */
#define DAYTONA_DEFAULT_API_URL "https://app.daytona.io/api"
/* The environment variable of the daemon holding the API key, by default. */
#define DAYTONA_DEFAULT_KEY_ENV "DAYTONA_API_KEY"
/* Where a task writes its result, unless its options say otherwise. */
#define DAYTONA_DEFAULT_RESULT_FILE "/tmp/dagd-result.json"

/* --- options.c ----------------------------------------------------------- */

/* The executor's own options (--executor-options daytona='{...}'). */
struct daytona_settings {
	char *api_url;                  /* without a trailing slash */
	char *api_key;                  /* never logged, never stored */
	char *target;                   /* the default region, or NULL */
	uint64_t poll_usec;             /* between two polls of a sandbox */
	uint64_t start_timeout_usec;    /* for a sandbox to reach "started" */
	uint64_t sweep_usec;            /* between sweeps of orphans; 0: the first only */
	bool inputs;                    /* the host gives spawn specs an inputs_path (ABI 4) */
};

/* Where a task's inputs file (DAGD_INPUTS) is uploaded in its sandbox. */
#define DAYTONA_INPUTS_FILE "/tmp/dagd-inputs.json"

int daytona_settings_parse(const char *options_json, struct daytona_settings *ret, char **ret_error);
void daytona_settings_done(struct daytona_settings *s);

/* One sandbox, from its spec and options. */
struct sandbox_def {
	json_object *create;            /* the body of POST /sandbox */
	char *command;                  /* the shell command run in the session */
	char *result_file;              /* DAGD_RESULT_FILE inside */
};

void sandbox_def_done(struct sandbox_def *def);
/* instance: the daemon's, for the labels; api_key: passed in only if the
 * task's options ask for it. */
int sandbox_def_build(const struct daytona_settings *set, const char *instance, const struct dagd_spawn *spec,
		      struct sandbox_def *ret, char **ret_error);

#endif
