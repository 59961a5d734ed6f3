-- +goose Up
-- The zone the web UI shows a user times in and reads their times in.
ALTER TABLE users ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC';

-- One-time password reset links that an admin makes for a user. The link
-- holds a random secret; only its SHA-256 is stored.
CREATE TABLE password_resets (
    id         BIGSERIAL PRIMARY KEY,
    hash       BYTEA NOT NULL UNIQUE,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The admin who made it; NULL for a bootstrap token or a deleted admin.
    created_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    -- Set when the link is used; a used link never works again.
    used_at    TIMESTAMPTZ
);
CREATE INDEX password_resets_user ON password_resets (user_id);
CREATE INDEX password_resets_expires ON password_resets (expires_at);

-- +goose Down
DROP TABLE password_resets;
ALTER TABLE users DROP COLUMN time_zone;
