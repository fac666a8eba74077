-- 011_names_in_memory.sql - a task's name is unique in its project by the
-- daemon's own index (it holds every name, and checks each before a row is
-- written); the database's UNIQUE (project_id, name) put each new task at a
-- random place in a B-tree that outgrew the cache, a cost that grew with
-- the table (the 10th block of 100,000 tasks took 1.5 times the 1st).
-- SQLite cannot drop a table's UNIQUE, so the table is made again without
-- it: same columns, same order, same last id given (AUTOINCREMENT's), its
-- dependency and attempt rows untouched (foreign keys are not enforced
-- while the schema migrates).

CREATE TABLE tasks_new (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
	name TEXT,
	title TEXT NOT NULL,
	command TEXT NOT NULL,
	env TEXT NOT NULL DEFAULT '{}',
	cwd TEXT,
	executor TEXT,
	executor_options TEXT NOT NULL DEFAULT '{}',
	priority INTEGER NOT NULL DEFAULT 2,
	timeout_usec INTEGER NOT NULL DEFAULT 0,
	max_retries INTEGER NOT NULL DEFAULT 0,
	backoff_usec INTEGER NOT NULL DEFAULT 1000000,
	validation_command TEXT,
	status TEXT NOT NULL,
	released BOOLEAN NOT NULL DEFAULT FALSE,
	attempt INTEGER NOT NULL DEFAULT 0,
	tries INTEGER NOT NULL DEFAULT 0,
	not_before INTEGER NOT NULL DEFAULT 0,
	result TEXT,
	error_message TEXT,
	sandbox_id TEXT,
	sandbox_executor TEXT,
	sandbox_handle TEXT,
	token TEXT,
	report TEXT,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	started_at INTEGER NOT NULL DEFAULT 0,
	finished_at INTEGER NOT NULL DEFAULT 0,
	status_changed_at INTEGER NOT NULL DEFAULT 0,
	held BOOLEAN NOT NULL DEFAULT FALSE,
	paused BOOLEAN NOT NULL DEFAULT FALSE,
	trigger_rule TEXT,
	is_finally BOOLEAN NOT NULL DEFAULT FALSE,
	map_over INTEGER NOT NULL DEFAULT 0,
	map_concurrency INTEGER NOT NULL DEFAULT 0,
	expanded BOOLEAN NOT NULL DEFAULT FALSE,
	map_count INTEGER NOT NULL DEFAULT 0,
	map_parent INTEGER NOT NULL DEFAULT 0,
	map_index INTEGER NOT NULL DEFAULT 0,
	item TEXT,
	reserved INTEGER NOT NULL DEFAULT 0
);
INSERT INTO tasks_new SELECT * FROM tasks;
INSERT OR REPLACE INTO sqlite_sequence (rowid, name, seq)
	SELECT (SELECT rowid FROM sqlite_sequence WHERE name = 'tasks_new'), 'tasks_new', seq
	FROM sqlite_sequence WHERE name = 'tasks';
DROP TABLE tasks;
ALTER TABLE tasks_new RENAME TO tasks;
CREATE INDEX ix_tasks_project ON tasks (project_id);
