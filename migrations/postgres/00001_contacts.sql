-- +goose Up
CREATE TABLE contacts (
    id             BIGSERIAL PRIMARY KEY,
    -- Always stored lower-cased; the unique index is the upsert key of imports.
    -- Byte order (COLLATE "C"): the index compares with memcmp rather than
    -- strcoll, which imports pay for on every row, and it also answers
    -- LIKE 'prefix%' and starts_with(email, ...), so no pattern index is needed.
    email          TEXT COLLATE "C" NOT NULL UNIQUE,
    first_name     TEXT NOT NULL DEFAULT '',
    last_name      TEXT NOT NULL DEFAULT '',
    attributes     JSONB NOT NULL DEFAULT '{}'::jsonb,
    -- A sorted JSON array of lower-cased strings; @> with a GIN index answers "has tag".
    tags           JSONB NOT NULL DEFAULT '[]'::jsonb,
    status         TEXT NOT NULL DEFAULT 'active'
                   CHECK (status IN ('active', 'unsubscribed', 'bounced', 'complained')),
    consent_source TEXT NOT NULL DEFAULT '',
    consent_at     TIMESTAMPTZ,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- Every index here is paid for by each imported row, so contacts has only
-- those a query needs. None on status: almost every contact is active, and
-- the audience query filters it from the rows its rule selects. None on
-- attributes: rules compare (attributes->'key') or its generated column
-- (CreateAttributeIndex), never attributes @>.
CREATE INDEX contacts_tags ON contacts USING GIN (tags jsonb_path_ops);

CREATE TABLE api_tokens (
    id           BIGSERIAL PRIMARY KEY,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('admin', 'marketer', 'sales')),
    -- SHA-256 of the token; the token itself is shown once and never stored.
    hash         BYTEA NOT NULL UNIQUE,
    prefix       TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ
);

CREATE TABLE imports (
    id            BIGSERIAL PRIMARY KEY,
    filename      TEXT NOT NULL DEFAULT '',
    status        TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    options       JSONB NOT NULL DEFAULT '{}'::jsonb,
    bytes_total   BIGINT NOT NULL DEFAULT 0,
    bytes_read    BIGINT NOT NULL DEFAULT 0,
    rows_read     BIGINT NOT NULL DEFAULT 0,
    inserted      BIGINT NOT NULL DEFAULT 0,
    updated       BIGINT NOT NULL DEFAULT 0,
    unchanged     BIGINT NOT NULL DEFAULT 0,
    invalid       BIGINT NOT NULL DEFAULT 0,
    -- The first row errors, as a JSON array of {line, message}.
    errors        JSONB NOT NULL DEFAULT '[]'::jsonb,
    failure       TEXT NOT NULL DEFAULT '',
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at   TIMESTAMPTZ
);

-- +goose Down
DROP TABLE imports;
DROP TABLE api_tokens;
DROP TABLE contacts;
