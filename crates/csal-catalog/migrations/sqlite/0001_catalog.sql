-- CSAL catalog, version 1 (SQLite). Times are Unix milliseconds (UTC).
CREATE TABLE storage_modules (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    label TEXT,
    provider_type TEXT NOT NULL,
    is_enabled INTEGER NOT NULL DEFAULT 1,
    config_json TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE camera_storage_policies (
    camera_id TEXT PRIMARY KEY NOT NULL,
    storage_targets TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE csal_settings (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL,
    is_secret INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE csal_catalog_state (
    id INTEGER PRIMARY KEY NOT NULL,
    change_seq INTEGER NOT NULL,
    key_check TEXT
);
INSERT INTO csal_catalog_state (id, change_seq, key_check) VALUES (1, 0, NULL);
