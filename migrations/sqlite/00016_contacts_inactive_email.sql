-- +goose Up
-- Contacts that are not active, by status in email order: the status filter
-- of the contact list sorted by email (see the PostgreSQL migration). SQLite
-- uses a partial index only when the query repeats its WHERE term, which the
-- store does.
CREATE INDEX contacts_inactive_email ON contacts (status, email) WHERE status <> 'active';

-- +goose Down
DROP INDEX contacts_inactive_email;
