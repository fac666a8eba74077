-- 015_compact_created.sql - TASK_CREATED and TASKS_UNBLOCKED join the
-- compact records of 013: a task's creation is kept as a few bytes of what a
-- board draws it with, a completion's unblocked tasks as their ids (kinds 5
-- and 6; daemon/event-record.c gives their fields), their JSON built only
-- for a reader, the same text as before.  Nothing is rewritten: this
-- version only keeps a dagd that cannot read them from opening the database.
SELECT 1;
