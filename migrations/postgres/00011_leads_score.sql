-- +goose Up
-- The leads board lists leads by their contact's current score. Ordering by
-- contacts.score made PostgreSQL walk the score index of every contact until
-- it had a page of leads (a parallel scan: 60-80 ms for 5,000 leads among
-- 1,000,000 contacts). The lead now carries a copy of the score, written in
-- the same statement group as contacts.score (store.writeScoreState), so a
-- page is the first rows of an index of leads.
ALTER TABLE leads ADD COLUMN score DOUBLE PRECISION NOT NULL DEFAULT 0;
UPDATE leads SET score = contacts.score FROM contacts WHERE contacts.id = leads.contact_id;
CREATE INDEX leads_score ON leads (score DESC, id);
-- Replaces leads_status: the board is read one status at a time.
CREATE INDEX leads_status_score ON leads (status, score DESC, id);
DROP INDEX leads_status;

-- +goose Down
CREATE INDEX leads_status ON leads (status);
DROP INDEX leads_status_score;
DROP INDEX leads_score;
ALTER TABLE leads DROP COLUMN score;
