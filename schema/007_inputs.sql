-- 007_inputs.sql - fan-out: a task that maps over a dependency's result (the
-- dependency's id, and how many of its children may run at once), whether it
-- was expanded and into how many children; a child's mapped task, the index
-- of its item, and the item itself (JSON text).  The children of a mapped
-- task are created in the same commit as the completion that expands it.

ALTER TABLE tasks ADD COLUMN map_over INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN map_concurrency INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN expanded BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE tasks ADD COLUMN map_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN map_parent INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN map_index INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN item TEXT;
