-- 002_status_changed_at.sql - when a task entered its status, apart from
-- updated_at (which every change moves): what "time in state" is counted from.

ALTER TABLE tasks ADD COLUMN status_changed_at INTEGER NOT NULL DEFAULT 0;
UPDATE tasks SET status_changed_at = updated_at;
