-- +goose Up
-- Lead score and lifecycle stage live on the contact so that segment rules can
-- compare them in the same row; scoring writes them.
ALTER TABLE contacts ADD COLUMN score REAL NOT NULL DEFAULT 0;
ALTER TABLE contacts ADD COLUMN lifecycle_stage TEXT NOT NULL DEFAULT 'subscriber'
    CHECK (lifecycle_stage IN ('subscriber', 'engaged', 'mql', 'sql', 'won', 'recycled', 'disqualified'));
CREATE INDEX contacts_score ON contacts (score);

CREATE TABLE segments (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    -- The rule tree in its JSON form (campaign.Rule), validated before it is stored.
    rule        TEXT NOT NULL CHECK (json_valid(rule)),
    created_at  DATETIME NOT NULL,
    updated_at  DATETIME NOT NULL
);

-- Engagement, written by tracking and the sender, read by segment rules and scoring.
-- delivery_id and campaign_id are NULL for events outside a campaign.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    delivery_id INTEGER,
    contact_id  INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    campaign_id INTEGER,
    kind        TEXT NOT NULL
                CHECK (kind IN ('sent', 'opened', 'clicked', 'bounced', 'unsubscribed', 'complained')),
    -- The destination URL of a click; '' otherwise.
    link        TEXT NOT NULL DEFAULT '',
    -- The classifier's verdict (0 or 1) and why it was given.
    human       INTEGER NOT NULL DEFAULT 0 CHECK (human IN (0, 1)),
    reason      TEXT NOT NULL DEFAULT '',
    ip          TEXT NOT NULL DEFAULT '',
    user_agent  TEXT NOT NULL DEFAULT '',
    -- UTC text in the fixed layout of every time column, so text order is time order.
    occurred_at DATETIME NOT NULL
);
-- "Contact X clicked (in the last N days)": the probe of an EXISTS per contact.
CREATE INDEX events_contact_kind_time ON events (contact_id, kind, occurred_at);
-- "Clicked campaign 12": the contacts of one campaign's events.
CREATE INDEX events_campaign_kind_contact ON events (campaign_id, kind, contact_id);
-- "Clicked any campaign in the last 30 days": a range of recent events of one kind.
CREATE INDEX events_kind_time ON events (kind, occurred_at, contact_id, human);

-- +goose Down
DROP TABLE events;
DROP TABLE segments;
DROP INDEX contacts_score;
ALTER TABLE contacts DROP COLUMN lifecycle_stage;
ALTER TABLE contacts DROP COLUMN score;
