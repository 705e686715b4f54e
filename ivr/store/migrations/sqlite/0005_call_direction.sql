-- Which way a call went: `inbound` (a caller dialled the hotline) or `outbound` (a campaign attempt or
-- an event-triggered call from /api/outbound/calls that was answered). Older rows were all inbound.
-- The hotline's summary counts inbound calls; /api/calls can list either.
ALTER TABLE calls ADD COLUMN direction TEXT NOT NULL DEFAULT 'inbound';
CREATE INDEX calls_by_direction ON calls (direction, started_at);
