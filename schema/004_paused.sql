-- 004_paused.sql - a running task whose processes an operator stopped
-- (task.pause) until task.resume: they stay stopped across a restart of dagd,
-- so the flag must too.

ALTER TABLE tasks ADD COLUMN paused BOOLEAN NOT NULL DEFAULT FALSE;
