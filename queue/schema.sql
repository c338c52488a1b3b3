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

-- version 2
-- Footprint, capacity and loss accounting. The outbox is rebuilt without the unique index on
-- id (rows are found by n; ids are UUIDs v4) and with the topic stored once per stream
-- (outbox.topic is '' when it is the stream's topic); payloads may be compressed (enc: 0 raw,
-- 1 DEFLATE with the preset dictionary of compress.go); counters hold the accounted size and
-- the losses; delivered records are purged oldest delivery first.
ALTER TABLE streams ADD COLUMN topic TEXT NOT NULL DEFAULT '';
UPDATE streams SET topic = COALESCE((SELECT o.topic FROM outbox o WHERE o.stream = streams.stream ORDER BY o.n DESC LIMIT 1), '');

CREATE TABLE IF NOT EXISTS outbox_v2 (
    n            INTEGER PRIMARY KEY,            -- insertion order
    id           TEXT NOT NULL,                  -- UUID v4
    stream       TEXT NOT NULL REFERENCES streams (stream),
    seq          INTEGER NOT NULL CHECK (seq > 0),
    topic        TEXT NOT NULL DEFAULT '',       -- '' = streams.topic
    payload      BLOB NOT NULL,
    enc          INTEGER NOT NULL DEFAULT 0,     -- payload encoding
    created_at   INTEGER NOT NULL,               -- Unix milliseconds
    delivered_at INTEGER,                        -- Unix milliseconds, NULL while pending
    attempts     INTEGER NOT NULL DEFAULT 0,     -- publishes so far
    UNIQUE (stream, seq)
);
INSERT INTO outbox_v2 (n, id, stream, seq, topic, payload, enc, created_at, delivered_at, attempts)
    SELECT o.n, o.id, o.stream, o.seq,
           CASE WHEN o.topic = (SELECT s.topic FROM streams s WHERE s.stream = o.stream) THEN '' ELSE o.topic END,
           o.payload, 0, o.created_at, o.delivered_at, o.attempts
    FROM outbox o ORDER BY o.n;
DROP TABLE outbox;
ALTER TABLE outbox_v2 RENAME TO outbox;
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (n) WHERE delivered_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_delivered ON outbox (delivered_at) WHERE delivered_at IS NOT NULL;

CREATE TABLE IF NOT EXISTS counters (
    name  TEXT PRIMARY KEY NOT NULL,
    value INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- rows and bytes: what the outbox holds (bytes: stored payload + stored topic + a fixed
-- per-record overhead, see capacity.go); dropped_oldest, rejected_full, failed_writes:
-- records lost for good; reported: how many of those a queue_loss notice has told upstream.
INSERT OR IGNORE INTO counters (name, value) VALUES
    ('rows', 0), ('bytes', 0), ('dropped_oldest', 0), ('rejected_full', 0), ('failed_writes', 0), ('reported', 0);
UPDATE counters SET value = (SELECT COUNT(*) FROM outbox) WHERE name = 'rows';
UPDATE counters SET value = (SELECT COALESCE(SUM(length(payload) + length(CAST(topic AS BLOB)) + 140), 0) FROM outbox)
    WHERE name = 'bytes';

-- version 3
-- Footprint (docs/BENCHMARKS.md): the id is stored as its 16 bytes (uid) and read as text
-- through a virtual column (id, no storage); payloads may use encoding 2 (compress.go);
-- the accounted size is recomputed with the new per-record overhead (capacity.go).
CREATE TABLE IF NOT EXISTS outbox_v3 (
    n            INTEGER PRIMARY KEY,            -- insertion order
    uid          BLOB NOT NULL,                  -- UUID v4, 16 bytes
    stream       TEXT NOT NULL REFERENCES streams (stream),
    seq          INTEGER NOT NULL CHECK (seq > 0),
    topic        TEXT NOT NULL DEFAULT '',       -- '' = streams.topic
    payload      BLOB NOT NULL,
    enc          INTEGER NOT NULL DEFAULT 0,     -- payload encoding
    created_at   INTEGER NOT NULL,               -- Unix milliseconds
    delivered_at INTEGER,                        -- Unix milliseconds, NULL while pending
    attempts     INTEGER NOT NULL DEFAULT 0,     -- publishes so far
    id           TEXT GENERATED ALWAYS AS (lower(hex(substr(uid, 1, 4)) || '-' || hex(substr(uid, 5, 2)) || '-' ||
                     hex(substr(uid, 7, 2)) || '-' || hex(substr(uid, 9, 2)) || '-' || hex(substr(uid, 11, 6)))) VIRTUAL,
    UNIQUE (stream, seq)
);
INSERT INTO outbox_v3 (n, uid, stream, seq, topic, payload, enc, created_at, delivered_at, attempts)
    SELECT n, unhex(replace(id, '-', '')), stream, seq, topic, payload, enc, created_at, delivered_at, attempts
    FROM outbox ORDER BY n;
DROP TABLE outbox;
ALTER TABLE outbox_v3 RENAME TO outbox;
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (n) WHERE delivered_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_delivered ON outbox (delivered_at) WHERE delivered_at IS NOT NULL;
-- The streams the uplink publishes first (outbox.go, priorityStreams; docs/queue.md).
CREATE INDEX IF NOT EXISTS outbox_priority ON outbox (n) WHERE delivered_at IS NULL AND stream IN ('event', 'alert');
UPDATE counters SET value = (SELECT COALESCE(SUM(length(payload) + length(CAST(topic AS BLOB)) + 100), 0) FROM outbox)
    WHERE name = 'bytes';

-- version 4
-- Quarantine (outbox.go, quarantine): a pending row whose id or payload cannot be decoded is
-- moved here with its bytes untouched, for analysis; it is never sent again and is counted as
-- lost (counters.quarantined). Its rows are not accounted against queue.max_bytes and are
-- never purged: delete them by hand once analysed. abandoned counts appends whose caller gave
-- up (its context ended) before the writer took them: records lost too.
CREATE TABLE IF NOT EXISTS quarantine (
    q              INTEGER PRIMARY KEY,
    n              INTEGER NOT NULL,             -- its insertion number in the outbox
    uid            BLOB NOT NULL,
    stream         TEXT NOT NULL,
    seq            INTEGER NOT NULL,
    topic          TEXT NOT NULL DEFAULT '',
    payload        BLOB NOT NULL,
    enc            INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,             -- Unix milliseconds
    attempts       INTEGER NOT NULL DEFAULT 0,
    quarantined_at INTEGER NOT NULL,             -- Unix milliseconds
    reason         TEXT NOT NULL
);
INSERT OR IGNORE INTO counters (name, value) VALUES ('quarantined', 0), ('abandoned', 0);

-- version 5
-- Lost seqs (mark.go; docs/queue.md, "The high-water mark"): a stretch of a stream's seqs the
-- database does not hold although they were used: found at Open when the database is behind
-- its high-water mark (cause 'behind_mark': a damaged WAL, an emptied or replaced file), or
-- by `sentinel queue salvage` (cause 'unreadable'). Each is counted in counters.missing and
-- named once in a queue_loss notice (missing_ranges; reported = 1 after).
CREATE TABLE IF NOT EXISTS gaps (
    g          INTEGER PRIMARY KEY,
    stream     TEXT NOT NULL,
    first_seq  INTEGER NOT NULL,
    last_seq   INTEGER NOT NULL,
    found_at   INTEGER NOT NULL,                 -- Unix milliseconds
    cause      TEXT NOT NULL,
    reported   INTEGER NOT NULL DEFAULT 0
);
INSERT OR IGNORE INTO counters (name, value) VALUES ('missing', 0);
