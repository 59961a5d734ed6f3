-- +goose Up
-- Contacts that are not active, by status in ID order: the status filter of
-- the contact list (see the PostgreSQL migration). SQLite uses a partial
-- index only when the query repeats its WHERE term, which the store does.
CREATE INDEX contacts_inactive ON contacts (status, id) WHERE status <> 'active';

-- +goose Down
DROP INDEX contacts_inactive;
