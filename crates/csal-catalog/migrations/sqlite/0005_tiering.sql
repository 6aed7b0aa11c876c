-- CSAL catalog, version 5 (SQLite): tiering.

-- Move a camera's copies from one target to another after some days: a JSON
-- list of {"from", "to", "after_days"} (NULL: no tiering).
ALTER TABLE camera_storage_policies ADD COLUMN tier_rules TEXT;
