-- 005_trigger.sql - when a task runs relative to its dependencies: its
-- trigger rule (NULL: all_succeeded, the default) as given, and whether it is
-- a batch's finally task.  The status `skipped` needs no change: statuses are
-- stored by name.

ALTER TABLE tasks ADD COLUMN trigger_rule TEXT;
ALTER TABLE tasks ADD COLUMN is_finally BOOLEAN NOT NULL DEFAULT FALSE;
