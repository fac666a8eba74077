-- 008_lean_index.sql - a task's project is what its rows are found by (a
-- project's deletion); its status is never looked up in the database (the
-- daemon holds the statuses), so the index leaves it out: a status change
-- rewrites the row, not an index entry as well.

DROP INDEX ix_tasks_project;
CREATE INDEX ix_tasks_project ON tasks (project_id);
