-- +goose Up
-- A copy of the contact's current score on its lead, so the leads board is
-- read from an index of leads (see the PostgreSQL migration).
ALTER TABLE leads ADD COLUMN score REAL NOT NULL DEFAULT 0;
UPDATE leads SET score = (SELECT score FROM contacts WHERE contacts.id = leads.contact_id);
CREATE INDEX leads_score ON leads (score DESC, id);
CREATE INDEX leads_status_score ON leads (status, score DESC, id);
DROP INDEX leads_status;

-- +goose Down
CREATE INDEX leads_status ON leads (status);
DROP INDEX leads_status_score;
DROP INDEX leads_score;
ALTER TABLE leads DROP COLUMN score;
