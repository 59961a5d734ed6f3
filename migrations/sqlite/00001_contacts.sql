-- +goose Up
-- Times are stored as UTC text in one fixed layout ("2006-01-02 15:04:05.999999999+00:00",
-- the driver's _time_format=sqlite), so text order is time order.
CREATE TABLE contacts (
    id             INTEGER PRIMARY KEY,
    -- Always stored lower-cased; the unique index is the upsert key of imports.
    email          TEXT NOT NULL UNIQUE,
    first_name     TEXT NOT NULL DEFAULT '',
    last_name      TEXT NOT NULL DEFAULT '',
    attributes     TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes)),
    -- A sorted JSON array of lower-cased strings.
    tags           TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(tags)),
    status         TEXT NOT NULL DEFAULT 'active'
                   CHECK (status IN ('active', 'unsubscribed', 'bounced', 'complained')),
    consent_source TEXT NOT NULL DEFAULT '',
    consent_at     DATETIME,
    created_at     DATETIME NOT NULL,
    updated_at     DATETIME NOT NULL
);

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('admin', 'marketer', 'sales')),
    -- SHA-256 of the token; the token itself is shown once and never stored.
    hash         BLOB NOT NULL UNIQUE,
    prefix       TEXT NOT NULL,
    created_at   DATETIME NOT NULL,
    last_used_at DATETIME,
    revoked_at   DATETIME
);

CREATE TABLE imports (
    id            INTEGER PRIMARY KEY,
    filename      TEXT NOT NULL DEFAULT '',
    status        TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    options       TEXT NOT NULL DEFAULT '{}',
    bytes_total   INTEGER NOT NULL DEFAULT 0,
    bytes_read    INTEGER NOT NULL DEFAULT 0,
    rows_read     INTEGER NOT NULL DEFAULT 0,
    inserted      INTEGER NOT NULL DEFAULT 0,
    updated       INTEGER NOT NULL DEFAULT 0,
    unchanged     INTEGER NOT NULL DEFAULT 0,
    invalid       INTEGER NOT NULL DEFAULT 0,
    -- The first row errors, as a JSON array of {line, message}.
    errors        TEXT NOT NULL DEFAULT '[]',
    failure       TEXT NOT NULL DEFAULT '',
    created_at    DATETIME NOT NULL,
    updated_at    DATETIME NOT NULL,
    finished_at   DATETIME
);

-- +goose Down
DROP TABLE imports;
DROP TABLE api_tokens;
DROP TABLE contacts;
