-- CSAL catalog, version 1 (PostgreSQL). Times are Unix milliseconds (UTC).
CREATE TABLE storage_modules (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    label TEXT,
    provider_type TEXT NOT NULL,
    is_enabled BIGINT NOT NULL DEFAULT 1,
    config_json TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE camera_storage_policies (
    camera_id TEXT PRIMARY KEY NOT NULL,
    storage_targets TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE csal_settings (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL,
    is_secret BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE csal_catalog_state (
    id BIGINT PRIMARY KEY NOT NULL,
    change_seq BIGINT NOT NULL,
    key_check TEXT
);
INSERT INTO csal_catalog_state (id, change_seq, key_check) VALUES (1, 0, NULL);
