-- 013_compact_events.sql - the events a task makes by the thousand
-- (TASK_STATUS_CHANGED, SANDBOX_SPAWNED, SANDBOX_EXITED, TASK_COMPLETED)
-- are kept in event_chunks as compact records, a few bytes of what changed,
-- beside the text records of 012; their JSON is built only for a reader.
-- A compact record begins with its kind, a byte below 0x20 (a text record
-- begins with its type's name); daemon/event-record.c gives its fields.
-- Nothing is rewritten: this version only keeps a dagd that cannot read
-- them from opening the database.
SELECT 1;
