-- +goose Up
-- Where tracked links go. The links of a campaign's first rendered message
-- are the campaign's; a message whose links differ (personalized URLs, links
-- inside conditionals) gets its complete list in delivery_links, which then
-- wins for that delivery. Rows are only ever added: a click token resolved
-- once resolves the same way forever.
CREATE TABLE campaign_links (
    campaign_id INTEGER NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    -- The index in click tokens, from 1 (0 is the honeypot, never stored).
    link_index  INTEGER NOT NULL CHECK (link_index >= 1),
    url         TEXT NOT NULL,
    -- data-funnel-intent of the link (for example "pricing"), or ''.
    intent      TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (campaign_id, link_index)
);
CREATE TABLE delivery_links (
    delivery_id INTEGER NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    link_index  INTEGER NOT NULL CHECK (link_index >= 1),
    url         TEXT NOT NULL,
    intent      TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (delivery_id, link_index)
);

-- The identity of the tracking request an event came from: replaying a
-- batch of requests (at-least-once queue) inserts nothing twice. NULL for
-- events that did not come from a tracking request.
ALTER TABLE events ADD COLUMN hit_id BLOB;
CREATE UNIQUE INDEX events_hit_id ON events (hit_id);
-- The classifier reads the recent opens and clicks of a batch's deliveries.
CREATE INDEX events_delivery_kind_time ON events (delivery_id, kind, occurred_at);

-- +goose Down
DROP INDEX events_delivery_kind_time;
DROP INDEX events_hit_id;
ALTER TABLE events DROP COLUMN hit_id;
DROP TABLE delivery_links;
DROP TABLE campaign_links;
