-- CSAL catalog, version 2 (PostgreSQL): the recording path. Times are Unix
-- milliseconds (UTC).

-- How many distinct targets must hold each segment of a camera.
ALTER TABLE camera_storage_policies ADD COLUMN copies BIGINT NOT NULL DEFAULT 1;

-- API tokens with a scope (ingest / read / admin); only a SHA-256 of each.
CREATE TABLE api_tokens (
    name TEXT PRIMARY KEY NOT NULL,
    sha256 TEXT NOT NULL UNIQUE,
    scope TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- The segment index: one row per segment a recorder handed in.
CREATE TABLE segments (
    id TEXT PRIMARY KEY NOT NULL,
    camera_id TEXT NOT NULL,
    name TEXT NOT NULL,
    start_ms BIGINT NOT NULL,
    end_ms BIGINT NOT NULL,
    duration_ms BIGINT,
    time_source TEXT NOT NULL,
    size BIGINT NOT NULL,
    crc32c TEXT NOT NULL,
    content_type TEXT,
    node_id TEXT NOT NULL,
    spooled BIGINT NOT NULL,
    copies_required BIGINT NOT NULL,
    copies_stored BIGINT NOT NULL,
    next_attempt_ms BIGINT NOT NULL,
    received_ms BIGINT NOT NULL,
    UNIQUE (camera_id, name)
);
CREATE INDEX segments_by_time ON segments (camera_id, start_ms);
CREATE INDEX segments_undelivered ON segments (node_id, spooled, next_attempt_ms);

-- The delivery journal: one row per (segment, target) ever attempted.
-- state: writing (an attempt is under way, or was when the node stopped),
-- stored (object_id holds the bytes), failed (last attempt failed).
CREATE TABLE segment_copies (
    segment_id TEXT NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
    target TEXT NOT NULL,
    state TEXT NOT NULL,
    key_hint TEXT NOT NULL,
    object_id TEXT,
    attempts BIGINT NOT NULL,
    last_error TEXT,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (segment_id, target)
);
CREATE INDEX segment_copies_by_target ON segment_copies (target, state);
