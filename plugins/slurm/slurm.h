/*
 * slurm.h - the slurm executor's own interfaces, grouped by the file that
 * holds them: the options and the batch job they define (options.c); the
 * spool directory shared with the compute nodes and what a job leaves there
 * (spool.c); what the tools say (tools.c).  slurm.c, the executor itself,
 * uses them all, and what plugins share (common/common.h: helper programs run
 * from the loop, option readers).
 */
#ifndef DAGD_SLURM_H
#define DAGD_SLURM_H

#include <sys/types.h>

#include "common/common.h"

/* What names a job of dagd: "dagd-<instance hash>-<sandbox id>" (see instance_hash()). */
#define JOB_PREFIX "dagd-"
/* The spool directory under the state directory, unless the options say. */
#define SPOOL_SUBDIR "slurm-spool"

/* --- options.c ----------------------------------------------------------- */

/* The executor's own options (--executor-options slurm='{...}'). */
struct slurm_settings {
	char *partition, *account, *qos;        /* defaults of the task options */
	char *spool_dir;                        /* NULL: under the state directory */
	char *sbatch, *squeue, *scontrol, *scancel;
	uint64_t poll_usec;                     /* between two polls of squeue */
	uint64_t tool_timeout_usec;             /* how long one tool may run */
	unsigned max_tools;                     /* tools running at once */
};

int slurm_settings_parse(const char *options_json, struct slurm_settings *ret, char **ret_error);
void slurm_settings_done(struct slurm_settings *s);
/* The task options (the project's, overlaid by the task's): 0 if each is
 * known and well typed, else < 0 and a message naming the option. */
int task_options_check(const char *options_json, char **ret_error);

/* One attempt's batch job: the wrapper script and the sbatch command line. */
struct job_def {
	char *script;                           /* the text of <spool>/<name>.sh */
	char **argv;                            /* sbatch ... <spool>/<name>.sh */
};

struct job_site {
	const struct slurm_settings *set;
	const char *spool;                      /* the spool directory */
	const char *instance;                   /* the daemon's */
	const char *name;                       /* the job's name, and its files' */
	const char *inputs;                     /* its inputs file in the spool (DAGD_INPUTS), or NULL */
};

int job_def_build(const struct job_site *site, const struct dagd_spawn *spec, struct job_def *ret,
		  char **ret_error);
void job_def_done(struct job_def *def);
void strv_free(char **v);

/* --- spool.c ------------------------------------------------------------- */

/* A short hash of "<host name>:<the daemon's instance>", which names its
 * jobs: 12 hex digits. */
void instance_hash(const char *key, char ret[13]);
/* "<spool>/<name><suffix>", malloc'd. */
char *spool_path(const char *spool, const char *name, const char *suffix);
/* Writes text to path atomically (a temporary file, renamed). */
int write_file_atomic(const char *path, const char *text, mode_t mode);

/* How a job's command ended, as its wrapper recorded it. */
struct job_exit {
	int code;                               /* -1 if killed */
	int signal;
	char job_id[32];                        /* "" if not recorded */
};

/* 0 and *ret if the exit file is there, -ENOENT if not. */
int exit_file_read(const char *path, struct job_exit *ret);
/* Calls found(sandbox_id, job_id) for each exit file of prefix in spool. */
int spool_list_exits(const char *spool, const char *prefix,
		     void (*found)(void *ctx, const char *sandbox_id, const char *job_id), void *ctx);
/* Removes every file of the job name from the spool. */
void spool_remove(const char *spool, const char *name);
/* Copies the result a job left (<spool>/<name>.result.json) beside the
 * attempt's log, as "<attempt>.result.json" (see executor.h). */
int result_copy(const char *from, const char *log_path, char **ret_error);
int inputs_copy(const char *from, const char *to);

/* --- tools.c ------------------------------------------------------------- */

/* A job as squeue shows it. */
struct squeue_job {
	char *id;
	char *name;
	char *state;                            /* "RUNNING", "COMPLETED", ... */
	char *reason;
};

/* The lines of `squeue -h -o %i|%j|%T|%r`, kept if the name has prefix. */
int squeue_parse(const char *out, const char *prefix, struct squeue_job **ret, size_t *ret_n);
void squeue_jobs_free(struct squeue_job *jobs, size_t n);
/* Whether a job in this state will not run any more. */
bool state_is_final(const char *state);

/* What `scontrol show job -o` says of a job. */
struct scontrol_job {
	char state[32];
	char reason[128];
	int exit_code, exit_signal;
};

int scontrol_parse(const char *out, struct scontrol_job *ret);
/* How a job that left no exit file ended: the reason word for the host and
 * a message, malloc'd. */
const char *state_reason(const char *state);

/* --- slurm.c ------------------------------------------------------------- */

/* The squeue format: id, name, state, reason. */
#define SQUEUE_FORMAT "%i|%j|%T|%r"
/* Polls in a row that must show a job ended (or gone) with no exit file. */
#define POLLS_BEFORE_LOST 2
/* How often a job that recorded its exit is asked about before Slurm settles its state. */
#define MAX_CHECKS 10
/* Submits of one attempt that may have gone through (timed out, or the
 * controller unreachable) before it fails. */
#define MAX_SUBMITS 5
/* Between two sweeps of orphans when the executor has no job. */
#define IDLE_SWEEP_USEC (60 * 1000000ULL)
/* The most output copied into a log per job and poll. */
#define OUTPUT_CHUNK (1u << 20)

enum step {
	STEP_SUBMIT,            /* sbatch running */
	STEP_LOOKUP,            /* sbatch timed out: is a job of that name there? */
	STEP_RUN,               /* a job id: polled */
	STEP_CHECK,             /* scontrol show job running */
};

struct sl_job {
	struct slurm *s;
	struct dagd_sandbox *sb;
	struct sl_job *prev, *next;
	char *sandbox_id, *name, *job_id, *log_path;
	char *out_path, *exit_path, *result_path;
	char **argv;                    /* sbatch's, to send again after a lookup */
	enum step step;
	struct child *child;            /* its sbatch or scontrol */
	sd_event_source *kill_timer;
	bool cancel;
	unsigned gen;                   /* squeues started after this one count */
	unsigned final_polls;           /* ended or gone, with no exit file */
	unsigned checks;                /* scontrol runs with an exit file there */
	unsigned submits;               /* sbatch runs that may have gone through */
	int out_fd;
	off_t out_sent;
};

/* A job that ended and is not forgotten yet: forget() needs no scancel. */
struct ended {
	struct ended *next;
	char *sandbox_id;
};

struct slurm {
	const struct dagd_host *host;
	struct slurm_settings set;
	char *spool;
	char prefix[32];                /* "dagd-<hash>-" */
	struct child_runner *tools;
	sd_event_source *poll_timer;
	struct child *squeue;
	unsigned gen;                   /* of the last squeue started */
	unsigned squeue_failures;
	uint64_t last_squeue;
	struct sl_job *jobs;
	struct ended *ended;
};


struct sl_job *job_new(struct slurm *s, struct dagd_sandbox *sb, const struct dagd_spawn *spec);
void job_free(struct sl_job *x);
struct sl_job *job_by_name(struct slurm *s, const char *name);
/* Runs sbatch; the job ends if it cannot. */
void job_submit(struct sl_job *x);
/* The job has this id: the host is told. */
void job_running(struct sl_job *x, const char *id);
/* scancel of job id: with --signal=SIG --full, or the hard way (signal NULL). */
void scancel(struct slurm *s, const char *id, const char *signal);
int on_kill_timer(sd_event_source *es, uint64_t usec, void *userdata);
int on_poll(sd_event_source *es, uint64_t usec, void *userdata);
void poll_arm(struct slurm *s);

#endif
