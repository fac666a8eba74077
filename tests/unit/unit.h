/*
 * unit.h - what the daemon's unit tests share: a daemon in the test's own
 * process, on a real SQLite file in a temporary directory, with an
 * in-process executor ("fake") that starts a sandbox at once and ends it
 * only when the test says.
 */
#ifndef UNIT_H
#define UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "dagd.h"

void unit_setup(void);                 /* a fresh state dir, database and loop */
void unit_teardown(void);
int unit_fixture_setup(void **state);       /* the two, as cmocka fixtures */
int unit_fixture_teardown(void **state);
void unit_reopen(void);                /* close and load everything again */
const char *unit_dir(void);
/* The daemon's store closed, and opened again on the database `name` of
 * schema `version` (its first migrations, then sql): migrated and loaded. */
void unit_open_schema(const char *name, int version, const char *sql);
int64_t unit_scalar(sqlite3 *db, const char *sql);  /* the first column of the first row */

struct project *mkproject(const char *name, bool autonomous, unsigned max_concurrency);
/* tasks: "name:dep,dep name2: ..." -- each a task running /bin/true */
void mktasks(struct project *p, const char *spec);
struct task *T(struct project *p, const char *name);
const char *S(struct project *p, const char *name);   /* its status */
void flush(void);
unsigned fake_running(void);
/* end the fake sandbox of a task with an exit code */
void fake_exit(struct task *t, int code);

#endif
