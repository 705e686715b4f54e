-- Each caller's remembered dialect (by number), kept with the call records so retention purges both.
-- The same table `ivr.voice.SqliteDialectMemory` creates on its own when given a bare database.
CREATE TABLE IF NOT EXISTS caller_dialects (
    caller     TEXT PRIMARY KEY,
    dialect    TEXT NOT NULL,
    updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
