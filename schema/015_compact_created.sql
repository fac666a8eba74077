-- 015_compact_created.sql - TASK_CREATED joins the compact records of 013:
-- a task's creation is kept as a few bytes of what a board draws it with
-- (kind 5, daemon/event-record.c gives its fields), its JSON built only for
-- a reader, the same text as before.  Nothing is rewritten: this version
-- only keeps a dagd that cannot read them from opening the database.
SELECT 1;
