-- +goose Up
-- The lowest and highest delivery IDs of a campaign, recorded when its
-- audience is drawn (in one INSERT, so its deliveries hold a narrow range
-- of IDs): listing a campaign's deliveries in ID order then walks only
-- that range of the primary key, instead of every later campaign's rows.
ALTER TABLE campaigns ADD COLUMN first_delivery_id BIGINT;
ALTER TABLE campaigns ADD COLUMN last_delivery_id BIGINT;
UPDATE campaigns SET
    first_delivery_id = (SELECT min(id) FROM deliveries WHERE deliveries.campaign_id = campaigns.id),
    last_delivery_id = (SELECT max(id) FROM deliveries WHERE deliveries.campaign_id = campaigns.id)
WHERE audience_size IS NOT NULL;

-- +goose Down
ALTER TABLE campaigns DROP COLUMN last_delivery_id;
ALTER TABLE campaigns DROP COLUMN first_delivery_id;
