-- The dispatch log records every change of cross-region dispatch: ops starting or ending one (accepted
-- or refused), the ACD expiring one, night hours starting and ending. A dispatch lends the agents of
-- helper sites to a region's queues until a time; the old per-queue agent counts are folded into detail.
ALTER TABLE dispatch_log ADD COLUMN action TEXT NOT NULL DEFAULT 'start';
ALTER TABLE dispatch_log ADD COLUMN dispatch_id TEXT NOT NULL DEFAULT '';
ALTER TABLE dispatch_log ADD COLUMN region TEXT NOT NULL DEFAULT '';
ALTER TABLE dispatch_log ADD COLUMN queues TEXT NOT NULL DEFAULT '[]';
ALTER TABLE dispatch_log ADD COLUMN helper_sites TEXT NOT NULL DEFAULT '[]';
ALTER TABLE dispatch_log ADD COLUMN until_at TEXT;
UPDATE dispatch_log SET
    queues = json_array(queue),
    helper_sites = from_regions,
    detail = detail || CASE WHEN detail = '' THEN '' ELSE '; ' END
        || agents_moved || ' of ' || agents_requested || ' agents moved';
ALTER TABLE dispatch_log DROP COLUMN queue;
ALTER TABLE dispatch_log DROP COLUMN from_regions;
ALTER TABLE dispatch_log DROP COLUMN agents_requested;
ALTER TABLE dispatch_log DROP COLUMN agents_moved;
CREATE INDEX dispatch_log_by_dispatch ON dispatch_log (dispatch_id);
