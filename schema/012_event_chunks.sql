-- 012_event_chunks.sql - events are written by the thousand (about seven a
-- task), and a row each cost more than the rest of a task's writes; now the
-- events appended one after another for one project share a row: a chunk,
-- the seqs first_seq..last_seq without a gap.  Its events are records one
-- after the other, each
--
--     type TAB entity TAB entity_id TAB time TAB length TAB payload
--
-- (time in microseconds, length the payload's in bytes, both in decimal).
-- A read finds the chunks by last_seq (the rowid), or by project and
-- last_seq.  Each event of the old table becomes a chunk of its own.

CREATE TABLE event_chunks (
	last_seq INTEGER PRIMARY KEY,
	first_seq INTEGER NOT NULL,
	project_id INTEGER,             -- all its events'; NULL: of no project
	events BLOB NOT NULL
);
INSERT INTO event_chunks (last_seq, first_seq, project_id, events)
	SELECT seq, seq, project_id, CAST(type || char(9) || entity || char(9) || entity_id || char(9) ||
		time || char(9) || length(CAST(payload AS BLOB)) || char(9) || payload AS BLOB)
	FROM events ORDER BY seq;
DROP TABLE events;
CREATE INDEX ix_event_chunks_project ON event_chunks (project_id, last_seq);
