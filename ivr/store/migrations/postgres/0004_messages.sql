-- Voice messages callers leave (the flow's `message` node): the audio is a WAV file under the
-- configured messages directory; the row keeps where it is, how long, what the recognizer heard and
-- the follow-up task it created. Retention deletes old rows and their files with the call records.
CREATE TABLE messages (
    id           BIGSERIAL PRIMARY KEY,
    call_id      TEXT NOT NULL,
    caller       TEXT NOT NULL,
    queue        TEXT NOT NULL DEFAULT '',
    dialect      TEXT NOT NULL DEFAULT '',
    created_at   TIMESTAMPTZ NOT NULL,
    path         TEXT NOT NULL,
    duration_s   DOUBLE PRECISION NOT NULL,
    ended_by     TEXT NOT NULL,
    transcript   TEXT NOT NULL DEFAULT '',
    confidence   DOUBLE PRECISION,
    follow_up    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX messages_by_created ON messages (created_at, id);
