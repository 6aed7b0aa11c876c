-- CSAL catalog, version 4 (SQLite): retention, legal holds, job leases.
-- (Version 3 is the sessions/keys migration of the hardening work.)

-- How long a camera's recordings are kept: all copies after retention_days,
-- the oldest first beyond max_bytes (NULL: no limit), one target's copy
-- after keep_days (JSON object: target name -> days).
ALTER TABLE camera_storage_policies ADD COLUMN retention_days INTEGER;
ALTER TABLE camera_storage_policies ADD COLUMN max_bytes INTEGER;
ALTER TABLE camera_storage_policies ADD COLUMN keep_days TEXT;

-- Evidence that must not be deleted: a whole camera (from_ms and to_ms
-- NULL) or a time range of it.
CREATE TABLE legal_holds (
    id TEXT PRIMARY KEY NOT NULL,
    camera_id TEXT NOT NULL,
    from_ms INTEGER,
    to_ms INTEGER,
    reason TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX legal_holds_by_camera ON legal_holds (camera_id);

-- One node at a time runs a periodic job (retention, fsck): who holds the
-- lease and until when.
CREATE TABLE csal_leases (
    name TEXT PRIMARY KEY NOT NULL,
    holder TEXT NOT NULL,
    expires_ms INTEGER NOT NULL
);

-- Finding the segment of an object (csal rm refuses held segments).
CREATE INDEX segment_copies_by_object ON segment_copies (target, object_id);
