-- Call records, journey events, surveys and the emergency dispatch log (SQLite).
-- Times are fixed-width ISO-8601 UTC text, so text order is time order; lists and maps are JSON text.
CREATE TABLE calls (
    call_id         TEXT PRIMARY KEY,
    node_id         TEXT NOT NULL DEFAULT '',
    in_progress     INTEGER NOT NULL DEFAULT 1,
    caller          TEXT NOT NULL,
    dialed          TEXT NOT NULL,
    started_at      TEXT NOT NULL,
    flow_id         TEXT NOT NULL DEFAULT '',
    flow_version    TEXT NOT NULL DEFAULT '',
    answered_at     TEXT,
    ended_at        TEXT,
    dialect         TEXT NOT NULL DEFAULT '',
    transcript      TEXT NOT NULL DEFAULT '',
    intent          TEXT NOT NULL DEFAULT '',
    confidence      REAL,
    path            TEXT NOT NULL DEFAULT '[]',
    queue           TEXT NOT NULL DEFAULT '',
    wait_s          REAL,
    agent_id        TEXT NOT NULL DEFAULT '',
    outcome         TEXT,
    survey_score    INTEGER CHECK (survey_score BETWEEN 0 AND 10),
    breakpoint_node TEXT NOT NULL DEFAULT '',
    variables       TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX calls_by_start ON calls (started_at, call_id);
CREATE INDEX calls_running ON calls (node_id) WHERE in_progress = 1;

CREATE TABLE journey_events (
    call_id    TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    at         TEXT NOT NULL,
    node       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    data       TEXT NOT NULL DEFAULT '{}',
    breakpoint INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (call_id, seq)
);
CREATE INDEX journey_breakpoints ON journey_events (node) WHERE breakpoint = 1;

CREATE TABLE surveys (
    call_id TEXT PRIMARY KEY,
    score   INTEGER NOT NULL CHECK (score BETWEEN 0 AND 10),
    at      TEXT NOT NULL
);

CREATE TABLE dispatch_log (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    at               TEXT NOT NULL,
    queue            TEXT NOT NULL,
    from_regions     TEXT NOT NULL DEFAULT '[]',
    agents_requested INTEGER NOT NULL,
    agents_moved     INTEGER NOT NULL,
    reason           TEXT NOT NULL DEFAULT '',
    requested_by     TEXT NOT NULL DEFAULT '',
    accepted         INTEGER NOT NULL,
    detail           TEXT NOT NULL DEFAULT ''
);
