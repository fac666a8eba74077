-- 014_task_state.sql - where a task stands (its status, attempt, flags,
-- times and last outcome) in a narrow table of its own, out of the wide row
-- of its definition: a task's two or three state changes rewrote all of the
-- tasks row's 45 columns each, command and environment too; now they
-- rewrite this row of 20.  A task has a row here once its state was first
-- saved after it was added (daemon/store-state.c); until then its row of
-- tasks holds what it was added with, its outcome columns null.  A task of
-- an older database that ever ran, or holds any outcome, gets its row now;
-- one that never did keeps its state in tasks, as a task just added does
-- (a million tasks waiting cost no second row).  No foreign
-- key: a row is made from its task's (INSERT ... SELECT FROM tasks), and a
-- trigger deletes it with its task (a project's deletion cascading too); a
-- foreign key would look the task up once more at each row made.

CREATE TABLE task_state (
	task_id INTEGER PRIMARY KEY,
	status TEXT NOT NULL,
	released BOOLEAN NOT NULL DEFAULT FALSE,
	attempt INTEGER NOT NULL DEFAULT 0,
	tries INTEGER NOT NULL DEFAULT 0,
	not_before INTEGER NOT NULL DEFAULT 0,
	held BOOLEAN NOT NULL DEFAULT FALSE,
	paused BOOLEAN NOT NULL DEFAULT FALSE,
	reserved INTEGER NOT NULL DEFAULT 0,
	updated_at INTEGER NOT NULL,
	started_at INTEGER NOT NULL DEFAULT 0,
	finished_at INTEGER NOT NULL DEFAULT 0,
	status_changed_at INTEGER NOT NULL DEFAULT 0,
	result TEXT,
	error_message TEXT,
	token TEXT,
	report TEXT,
	sandbox_id TEXT,
	sandbox_executor TEXT,
	sandbox_handle TEXT
);
INSERT INTO task_state
	SELECT id, status, released, attempt, tries, not_before, held, paused, reserved,
		updated_at, started_at, finished_at, status_changed_at,
		result, error_message, token, report, sandbox_id, sandbox_executor, sandbox_handle
	FROM tasks
	WHERE attempt > 0 OR result IS NOT NULL OR error_message IS NOT NULL OR token IS NOT NULL
		OR report IS NOT NULL OR sandbox_id IS NOT NULL OR sandbox_executor IS NOT NULL
		OR sandbox_handle IS NOT NULL
	ORDER BY id;
CREATE TRIGGER tr_task_state_delete AFTER DELETE ON tasks BEGIN
	DELETE FROM task_state WHERE task_id = OLD.id;
END;
