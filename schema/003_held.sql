-- 003_held.sql - a task an operator holds is never dispatched until released.

ALTER TABLE tasks ADD COLUMN held BOOLEAN NOT NULL DEFAULT FALSE;
