-- CSAL catalog, version 3 (PostgreSQL): admin sessions shared by every node.
-- The session id itself is only in the browser's cookie; the table keeps
-- its SHA-256. A session counts only while its epoch equals
-- csal_session_state.epoch: bumping the epoch ends every session at once.
CREATE TABLE csal_sessions (
    id_hash TEXT PRIMARY KEY NOT NULL,
    csrf TEXT NOT NULL,
    authenticated BIGINT NOT NULL,
    epoch BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX csal_sessions_expires_at ON csal_sessions (expires_at);
CREATE TABLE csal_session_state (
    id BIGINT PRIMARY KEY NOT NULL,
    epoch BIGINT NOT NULL
);
INSERT INTO csal_session_state (id, epoch) VALUES (1, 0);
