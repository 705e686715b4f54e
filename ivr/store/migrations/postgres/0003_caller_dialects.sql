-- Each caller's remembered dialect (by number): every node of a cluster greets a returning caller alike.
CREATE TABLE caller_dialects (
    caller     TEXT PRIMARY KEY,
    dialect    TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX caller_dialects_by_update ON caller_dialects (updated_at);
