-- 016_state_record.sql - a task's row of task_state (014) keeps its status
-- as a column and all else of where it stands (flags, attempt, tries,
-- reserved, not_before, its four times, its last outcome) as one compact
-- record: a state change writes two values, not 20 columns, whose binding
-- and building was a third of what a task cost the daemon.  The record's
-- fields are given in daemon/store-state.c; dagd_state() (the daemon's own
-- SQL function) makes it from the columns of 014.  The status stays a
-- column, to be read by anyone with the sqlite3 shell.
DROP TRIGGER tr_task_state_delete;
CREATE TABLE task_state_016 (
	task_id INTEGER PRIMARY KEY,
	status TEXT NOT NULL,
	state BLOB NOT NULL
);
INSERT INTO task_state_016
	SELECT task_id, status, dagd_state(NULL, released, attempt, tries, not_before, held, paused,
		reserved, updated_at, started_at, finished_at, status_changed_at, result, error_message,
		token, report, sandbox_id, sandbox_executor, sandbox_handle)
	FROM task_state
	ORDER BY task_id;
DROP TABLE task_state;
ALTER TABLE task_state_016 RENAME TO task_state;
CREATE TRIGGER tr_task_state_delete AFTER DELETE ON tasks BEGIN
	DELETE FROM task_state WHERE task_id = OLD.id;
END;
