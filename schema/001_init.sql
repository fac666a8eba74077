-- 001_init.sql - projects, tasks, their dependencies and the event log.
-- Times are microseconds since the epoch (UTC); JSON is stored as text.

-- AUTOINCREMENT: an id is never given twice, even after its owner is deleted.
CREATE TABLE projects (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	name TEXT NOT NULL UNIQUE,
	autonomous_execution_enabled BOOLEAN NOT NULL DEFAULT FALSE,
	max_concurrency INTEGER NOT NULL DEFAULT 5 CHECK (max_concurrency >= 1),
	executor TEXT NOT NULL DEFAULT 'local',
	executor_options TEXT NOT NULL DEFAULT '{}',
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);

CREATE INDEX ix_projects_autonomous_execution_enabled
	ON projects (autonomous_execution_enabled);

CREATE TABLE tasks (
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
	UNIQUE (project_id, name)
);

CREATE INDEX ix_tasks_project ON tasks (project_id, status);

CREATE TABLE deps (
	task_id INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
	depends_on INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
	PRIMARY KEY (task_id, depends_on)
) WITHOUT ROWID;

CREATE INDEX ix_deps_depends_on ON deps (depends_on);

CREATE TABLE events (
	seq INTEGER PRIMARY KEY AUTOINCREMENT,
	type TEXT NOT NULL,
	entity TEXT NOT NULL,
	entity_id TEXT NOT NULL,
	project_id INTEGER,
	time INTEGER NOT NULL,
	payload TEXT NOT NULL
);

CREATE INDEX ix_events_project ON events (project_id, seq);
