-- Which engine process holds (held) a call: the ACD node that took it. For one engine process it is the
-- node itself (node_id); for a node of workers (`ivr serve --workers`) node_id is the node's and holder
-- the worker's, so a worker started again, or the heir of a dead one, closes that worker's calls only.
ALTER TABLE calls ADD COLUMN holder TEXT NOT NULL DEFAULT '';
UPDATE calls SET holder = node_id;
CREATE INDEX calls_running_by_holder ON calls (holder) WHERE in_progress;
