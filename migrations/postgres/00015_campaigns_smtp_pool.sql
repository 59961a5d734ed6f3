-- +goose Up
-- The pool of SMTP servers (the pool= parameter of FUNNEL_SMTP_URL) a
-- campaign is sent through; empty means every server.
ALTER TABLE campaigns ADD COLUMN smtp_pool TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE campaigns DROP COLUMN smtp_pool;
