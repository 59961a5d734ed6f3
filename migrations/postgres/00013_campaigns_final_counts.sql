-- +goose Up
-- A finished campaign's deliveries by status, recorded the first time its
-- progress is read after every delivery has settled: lists of campaigns
-- read it instead of counting each campaign's ledger again (a campaign of
-- 100,000 deliveries took 20-35 ms to count, the campaigns page one such
-- count per row). A JSON object of status to count.
ALTER TABLE campaigns ADD COLUMN final_counts TEXT;

-- +goose Down
ALTER TABLE campaigns DROP COLUMN final_counts;
