-- +goose Up
-- Lead score and lifecycle stage live on the contact so that segment rules can
-- compare them in the same row; scoring writes them.
ALTER TABLE contacts ADD COLUMN score DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE contacts ADD COLUMN lifecycle_stage TEXT NOT NULL DEFAULT 'subscriber'
    CHECK (lifecycle_stage IN ('subscriber', 'engaged', 'mql', 'sql', 'won', 'recycled', 'disqualified'));
CREATE INDEX contacts_score ON contacts (score);

CREATE TABLE segments (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    -- The rule tree in its JSON form (campaign.Rule), validated before it is stored.
    rule        JSONB NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Engagement, written by tracking and the sender, read by segment rules and scoring.
-- delivery_id and campaign_id are NULL for events outside a campaign; they gain
-- foreign keys when those tables exist.
CREATE TABLE events (
    id          BIGSERIAL PRIMARY KEY,
    delivery_id BIGINT,
    contact_id  BIGINT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    campaign_id BIGINT,
    kind        TEXT NOT NULL
                CHECK (kind IN ('sent', 'opened', 'clicked', 'bounced', 'unsubscribed', 'complained')),
    -- The destination URL of a click; '' otherwise.
    link        TEXT NOT NULL DEFAULT '',
    -- The classifier's verdict and why it was given.
    human       BOOLEAN NOT NULL DEFAULT FALSE,
    reason      TEXT NOT NULL DEFAULT '',
    ip          TEXT NOT NULL DEFAULT '',
    user_agent  TEXT NOT NULL DEFAULT '',
    occurred_at TIMESTAMPTZ NOT NULL
);
-- "Contact X clicked (in the last N days)": the probe of an EXISTS per contact.
CREATE INDEX events_contact_kind_time ON events (contact_id, kind, occurred_at);
-- "Clicked campaign 12": the contacts of one campaign's events.
CREATE INDEX events_campaign_kind_contact ON events (campaign_id, kind, contact_id);
-- "Clicked any campaign in the last 30 days": a range of recent events of one kind.
CREATE INDEX events_kind_time ON events (kind, occurred_at) INCLUDE (contact_id, human);

-- +goose Down
DROP TABLE events;
DROP TABLE segments;
DROP INDEX contacts_score;
ALTER TABLE contacts DROP COLUMN lifecycle_stage;
ALTER TABLE contacts DROP COLUMN score;
