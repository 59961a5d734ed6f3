-- +goose Up
-- SQLite's migration 00012 adds a table of tags per contact; PostgreSQL
-- answers the same filter from its GIN index on contacts.tags (00001), so
-- here the version only keeps the two schemas' numbers in step.
SELECT 1;

-- +goose Down
SELECT 1;
