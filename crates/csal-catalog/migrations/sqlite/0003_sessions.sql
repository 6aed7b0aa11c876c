-- CSAL catalog, version 3 (SQLite): admin sessions shared by every node.
-- The session id itself is only in the browser's cookie; the table keeps
-- its SHA-256. A session counts only while its epoch equals
-- csal_session_state.epoch: bumping the epoch ends every session at once.
CREATE TABLE csal_sessions (
    id_hash TEXT PRIMARY KEY NOT NULL,
    csrf TEXT NOT NULL,
    authenticated INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX csal_sessions_expires_at ON csal_sessions (expires_at);
CREATE TABLE csal_session_state (
    id INTEGER PRIMARY KEY NOT NULL,
    epoch INTEGER NOT NULL
);
INSERT INTO csal_session_state (id, epoch) VALUES (1, 0);
