-- 006_attempts.sql - retries that know why, named pools and approval gates.
-- A task has a row in task_attempts only when it uses one of them (or a lost
-- sandbox was retried): what the rules are, and what must survive a restart
-- (the lost sandboxes retried, when the first attempt started, an approval's
-- deadline).  Pools are kept by name with their size; their use is counted
-- at load from the running tasks, never stored.

CREATE TABLE pools (
	name TEXT PRIMARY KEY,
	size INTEGER NOT NULL CHECK (size >= 1),
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);

CREATE TABLE task_attempts (
	task_id INTEGER PRIMARY KEY REFERENCES tasks (id) ON DELETE CASCADE,
	kind TEXT NOT NULL DEFAULT 'command',           -- 'command' or 'approval'
	exit_rule TEXT,                 -- NULL, 'retry_on_exit' or 'no_retry_on_exit'
	exit_codes TEXT,                -- JSON array of the codes
	max_lost_retries INTEGER NOT NULL DEFAULT 3,
	max_retry_duration_usec INTEGER NOT NULL DEFAULT 0,
	pools TEXT,                     -- JSON object: pool name -> weight
	on_timeout TEXT,                -- approval: 'approve' or 'reject'
	lost_tries INTEGER NOT NULL DEFAULT 0,
	first_started_at INTEGER NOT NULL DEFAULT 0,
	approval_deadline INTEGER NOT NULL DEFAULT 0
);
