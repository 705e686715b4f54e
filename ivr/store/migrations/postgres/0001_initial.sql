-- Call records, journey events, surveys and the emergency dispatch log (PostgreSQL).
CREATE TABLE calls (
    call_id         TEXT PRIMARY KEY,
    node_id         TEXT NOT NULL DEFAULT '',
    in_progress     BOOLEAN NOT NULL DEFAULT TRUE,
    caller          TEXT NOT NULL,
    dialed          TEXT NOT NULL,
    started_at      TIMESTAMPTZ NOT NULL,
    flow_id         TEXT NOT NULL DEFAULT '',
    flow_version    TEXT NOT NULL DEFAULT '',
    answered_at     TIMESTAMPTZ,
    ended_at        TIMESTAMPTZ,
    dialect         TEXT NOT NULL DEFAULT '',
    transcript      TEXT NOT NULL DEFAULT '',
    intent          TEXT NOT NULL DEFAULT '',
    confidence      DOUBLE PRECISION,
    path            JSONB NOT NULL DEFAULT '[]',
    queue           TEXT NOT NULL DEFAULT '',
    wait_s          DOUBLE PRECISION,
    agent_id        TEXT NOT NULL DEFAULT '',
    outcome         TEXT,
    survey_score    SMALLINT CHECK (survey_score BETWEEN 0 AND 10),
    breakpoint_node TEXT NOT NULL DEFAULT '',
    variables       JSONB NOT NULL DEFAULT '{}'
);
CREATE INDEX calls_by_start ON calls (started_at, call_id);
CREATE INDEX calls_running ON calls (node_id) WHERE in_progress;

CREATE TABLE journey_events (
    call_id    TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    at         TIMESTAMPTZ NOT NULL,
    node       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    data       JSONB NOT NULL DEFAULT '{}',
    breakpoint BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (call_id, seq)
);
CREATE INDEX journey_breakpoints ON journey_events (node) WHERE breakpoint;

CREATE TABLE surveys (
    call_id TEXT PRIMARY KEY,
    score   SMALLINT NOT NULL CHECK (score BETWEEN 0 AND 10),
    at      TIMESTAMPTZ NOT NULL
);

CREATE TABLE dispatch_log (
    id               BIGSERIAL PRIMARY KEY,
    at               TIMESTAMPTZ NOT NULL,
    queue            TEXT NOT NULL,
    from_regions     JSONB NOT NULL DEFAULT '[]',
    agents_requested INTEGER NOT NULL,
    agents_moved     INTEGER NOT NULL,
    reason           TEXT NOT NULL DEFAULT '',
    requested_by     TEXT NOT NULL DEFAULT '',
    accepted         BOOLEAN NOT NULL,
    detail           TEXT NOT NULL DEFAULT ''
);
