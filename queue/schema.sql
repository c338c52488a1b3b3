-- Sentinel queue schema. Each "-- version N" section is one migration; Open applies the
-- sections above PRAGMA user_version in order, each in its own transaction, and then sets
-- user_version to N. Statements must be idempotent (IF NOT EXISTS), and a released section
-- must never change: add a new one instead.

-- version 1
CREATE TABLE IF NOT EXISTS streams (
    stream   TEXT PRIMARY KEY NOT NULL,
    last_seq INTEGER NOT NULL CHECK (last_seq >= 0)
);

CREATE TABLE IF NOT EXISTS outbox (
    n            INTEGER PRIMARY KEY,            -- insertion order
    id           TEXT NOT NULL UNIQUE,           -- UUID v4
    stream       TEXT NOT NULL REFERENCES streams (stream),
    seq          INTEGER NOT NULL CHECK (seq > 0),
    topic        TEXT NOT NULL,
    payload      BLOB NOT NULL,
    created_at   INTEGER NOT NULL,               -- Unix milliseconds
    delivered_at INTEGER,                        -- Unix milliseconds, NULL while pending
    attempts     INTEGER NOT NULL DEFAULT 0,     -- publishes so far
    UNIQUE (stream, seq)
);

CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (n) WHERE delivered_at IS NULL;
