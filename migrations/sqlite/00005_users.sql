-- +goose Up
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    -- Lower-cased; people log in with it.
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL DEFAULT '',
    role          TEXT NOT NULL CHECK (role IN ('admin', 'marketer', 'sales')),
    -- argon2id in the PHC string format; never the password.
    password_hash TEXT NOT NULL,
    created_at    DATETIME NOT NULL,
    updated_at    DATETIME NOT NULL,
    disabled_at   DATETIME
);
CREATE INDEX users_role ON users (role) WHERE disabled_at IS NULL;

-- A token belongs to the user who made it; bootstrap tokens have none.
ALTER TABLE api_tokens ADD COLUMN user_id INTEGER REFERENCES users (id) ON DELETE CASCADE;

-- +goose Down
ALTER TABLE api_tokens DROP COLUMN user_id;
DROP TABLE users;
