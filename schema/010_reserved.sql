-- 010_reserved.sql - a ready task's next attempt, reserved ahead of a free
-- slot (engine-dispatch.c): the attempt number its sandbox will have
-- (t-ID.N), committed before that sandbox may start without a commit of its
-- own; 0 none.  A restart that finds a sandbox of that id adopts it.

ALTER TABLE tasks ADD COLUMN reserved INTEGER NOT NULL DEFAULT 0;
