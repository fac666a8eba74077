-- 009_events_seq.sql - an event's seq is its rowid, one more than the last:
-- events are never deleted but all at once (a wipe, which starts them
-- again from 1 as it did), so no seq is given twice without AUTOINCREMENT's
-- table of last ids, which cost each event a lookup and a write.

CREATE TABLE events_new (
	seq INTEGER PRIMARY KEY,
	type TEXT NOT NULL,
	entity TEXT NOT NULL,
	entity_id TEXT NOT NULL,
	project_id INTEGER,
	time INTEGER NOT NULL,
	payload TEXT NOT NULL
);
INSERT INTO events_new SELECT seq, type, entity, entity_id, project_id, time, payload FROM events;
DROP TABLE events;
ALTER TABLE events_new RENAME TO events;
CREATE INDEX ix_events_project ON events (project_id, seq);
DELETE FROM sqlite_sequence WHERE name = 'events';
