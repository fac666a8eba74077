/*
 * unit.c - the harness of the daemon's unit tests (see unit.h).
 */
#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"

struct daemon D;
static char dir[64];

struct fake {
	struct dagd_sandbox *sb;
	struct fake *next;
};
static struct fake *fakes;

static int fake_init(const struct dagd_host *h, const char *o, void **ret, char **err)
{
	return 0;
}

static void fake_shutdown(void *state)
{
}

static int fake_spawn(void *state, struct dagd_sandbox *sb, const struct dagd_spawn *spec,
		      void **ret_data, char **err)
{
	struct fake *f = calloc(1, sizeof(*f));

	f->sb = sb;
	f->next = fakes;
	fakes = f;
	*ret_data = f;
	sandbox_started((struct sandbox *) sb, spec->sandbox_id);
	return 0;
}

static int fake_cancel(void *state, struct dagd_sandbox *sb, void *data, uint64_t grace)
{
	struct dagd_exit e = { .code = -1, .signal = 15 };

	for (struct fake **p = &fakes; *p; p = &(*p)->next)
		if (*p == data) {
			*p = (*p)->next;
			break;
		}
	free(data);
	sandbox_exited((struct sandbox *) sb, &e);
	return 0;
}

static int fake_adopt(void *state, struct dagd_sandbox *sb, const struct dagd_spawn *spec,
		      const char *handle, void **ret_data, char **err)
{
	*err = strdup("the fake executor adopts nothing");
	return -ESRCH;
}

static const struct dagd_executor fake_vt = {
	.abi_version = DAGD_EXECUTOR_ABI_VERSION,
	.size = sizeof(struct dagd_executor),
	.name = "local",
	.description = "in-process fake",
	.init = fake_init,
	.shutdown = fake_shutdown,
	.spawn = fake_spawn,
	.cancel = fake_cancel,
	.adopt = fake_adopt,
};
static struct executor fake_ex;

unsigned fake_running(void)
{
	unsigned n = 0;

	for (struct fake *f = fakes; f; f = f->next)
		n++;
	return n;
}

void fake_exit(struct task *t, int code)
{
	struct dagd_exit e = { .code = code };

	assert_non_null(task_sb(t));
	for (struct fake **p = &fakes; *p; p = &(*p)->next)
		if ((struct sandbox *) (*p)->sb == task_sb(t)) {
			struct fake *f = *p;
			*p = f->next;
			free(f);
			break;
		}
	sandbox_exited(task_sb(t), &e);
}

const char *unit_dir(void)
{
	return dir;
}

void unit_setup(void)
{
	char db[128];

	strcpy(dir, "/tmp/dagd-unit.XXXXXX");
	assert_non_null(mkdtemp(dir));
	D.state_dir = dir;
	D.socket_path = (char *) "/nonexistent";
	D.global_limit = 64;
	assert_int_equal(sd_event_new(&D.event), 0);
	snprintf(db, sizeof(db), "%s/dagd.db", dir);
	assert_int_equal(store_open(db), 0);
	fake_ex = (struct executor) { .name = (char *) "local", .path = (char *) "(in-process)", .vt = &fake_vt };
	executors = &fake_ex;
	assert_int_equal(engine_load(), 0);
}

extern const char *const schema_migrations[];

void unit_open_schema(const char *name, int version, const char *sql)
{
	char path[128], *v;
	sqlite3 *db;

	store_close();
	engine_free();
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	for (int i = 0; i < version; i++)
		assert_int_equal(sqlite3_exec(db, schema_migrations[i], NULL, NULL, NULL), SQLITE_OK);
	v = sqlite3_mprintf("PRAGMA user_version = %d", version);
	assert_int_equal(sqlite3_exec(db, v, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_free(v);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_open(path), 0);
	assert_int_equal(engine_load(), 0);
}

int64_t unit_scalar(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	int64_t v;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

void unit_reopen(void)
{
	char db[128];

	flush();
	server_close();         /* as the daemon stops: what waits for a commit is committed */
	engine_free();
	store_close();
	snprintf(db, sizeof(db), "%s/dagd.db", dir);
	assert_int_equal(store_open(db), 0);
	assert_int_equal(engine_load(), 0);
}

static int rm(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(p);
}

void unit_teardown(void)
{
	D.global_limit = 0;     /* what ends now starts nothing new */
	flush();
	while (fakes) {
		struct fake *f = fakes;
		fakes = f->next;
		free(f);
	}
	for (struct sandbox *sb = sandbox_list(), *next; sb; sb = next) {
		next = sb->next;
		struct dagd_exit e = { .code = 0 };
		sandbox_exited(sb, &e);
	}
	flush();
	engine_free();
	store_close();
	executors = NULL;
	D.event = sd_event_unref(D.event);
	nftw(dir, rm, 16, FTW_DEPTH | FTW_PHYS);
}

int unit_fixture_setup(void **state)
{
	unit_setup();
	return 0;
}

int unit_fixture_teardown(void **state)
{
	unit_teardown();
	return 0;
}

void flush(void)
{
	server_flush();
}

struct project *mkproject(const char *name, bool autonomous, unsigned max_concurrency)
{
	json_object *a = json_object_new_object();
	struct project *p = NULL;

	json_object_object_add(a, "name", json_object_new_string(name));
	json_object_object_add(a, "autonomous", json_object_new_boolean(autonomous));
	json_object_object_add(a, "max_concurrency", json_object_new_int((int) max_concurrency));
	assert_int_equal(project_create(a, &p), 0);
	json_object_put(a);
	return p;
}

void mktasks(struct project *p, const char *spec)
{
	json_object *list = json_object_new_array();
	struct task **made = NULL;
	char *copy = strdup(spec), *save = NULL;

	for (char *tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		json_object *t = json_object_new_object(), *deps = json_object_new_array();
		char *colon = strchr(tok, ':'), *s2 = NULL;

		if (colon) {
			*colon = 0;
			for (char *d = strtok_r(colon + 1, ",", &s2); d; d = strtok_r(NULL, ",", &s2))
				json_object_array_add(deps, json_object_new_string(d));
		}
		json_object_object_add(t, "name", json_object_new_string(tok));
		json_object_object_add(t, "title", json_object_new_string(tok));
		json_object_object_add(t, "command", json_object_new_string("true"));
		json_object_object_add(t, "depends_on", deps);
		json_object_array_add(list, t);
	}
	assert_int_equal(task_create_batch(p, list, true, &made), 0);
	free(made);
	json_object_put(list);
	free(copy);
}

struct task *T(struct project *p, const char *name)
{
	struct task *t = names_get(&p->names, name);

	if (!t)
		fail_msg("no task %s", name);
	return t;
}

const char *S(struct project *p, const char *name)
{
	return status_to_string(T(p, name)->status);
}
