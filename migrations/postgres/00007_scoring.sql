-- +goose Up
-- The intent tag of a click's link ("high" for pricing, demo...), filled by
-- tracking from the campaign's link table; '' when untagged.
ALTER TABLE events ADD COLUMN intent TEXT NOT NULL DEFAULT '';

-- Scoring rules, one row per version; the highest version is in force and
-- older versions are kept so that ledger rows can name theirs.
CREATE TABLE score_rules (
    version    BIGSERIAL PRIMARY KEY,
    rules      JSONB NOT NULL,
    created_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The scoring cursor: events with an id at or below last_event_id are
-- scored. One row; scoring runs lock it, which serializes them.
CREATE TABLE score_cursor (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    last_event_id BIGINT NOT NULL DEFAULT 0,
    -- The last sales user a lead went to, for round-robin.
    last_owner_id BIGINT NOT NULL DEFAULT 0,
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO score_cursor (id) VALUES (1);

-- Events whose verdict turned human after they were scored (a machine open
-- upgraded by a later human click): scoring takes them from here.
CREATE TABLE score_rescans (
    event_id BIGINT PRIMARY KEY
);
-- +goose StatementBegin
CREATE FUNCTION events_rescan() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO score_rescans (event_id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER events_rescan AFTER UPDATE OF human ON events FOR EACH ROW
    WHEN (NEW.human AND NOT OLD.human AND NEW.kind IN ('opened', 'clicked'))
    EXECUTE FUNCTION events_rescan();

-- Per-contact scoring state; score equals the sum of the contact's ledger.
CREATE TABLE contact_scores (
    contact_id       BIGINT PRIMARY KEY REFERENCES contacts (id) ON DELETE CASCADE,
    score            DOUBLE PRECISION NOT NULL DEFAULT 0,
    last_activity_at TIMESTAMPTZ,
    halvings         INTEGER NOT NULL DEFAULT 0,
    -- When the next halving is due; NULL when nothing can decay.
    next_decay_at    TIMESTAMPTZ,
    disqualified     BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX contact_scores_decay ON contact_scores (next_decay_at) WHERE next_decay_at IS NOT NULL;

-- The points ledger: every change of a score is a row. once_key makes a
-- rule count once per campaign (open), once per link per campaign (click),
-- once per halving (decay) or once per contact (disqualify), so a replay
-- of the same event can never add points twice.
CREATE TABLE score_ledger (
    id           BIGSERIAL PRIMARY KEY,
    contact_id   BIGINT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    rule         TEXT NOT NULL,
    rule_version BIGINT NOT NULL,
    once_key     TEXT NOT NULL,
    event_id     BIGINT,
    campaign_id  BIGINT,
    link         TEXT NOT NULL DEFAULT '',
    points       DOUBLE PRECISION NOT NULL,
    score_after  DOUBLE PRECISION NOT NULL,
    at           TIMESTAMPTZ NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    UNIQUE (contact_id, rule, once_key)
);

-- Every lifecycle stage change.
CREATE TABLE stage_history (
    id         BIGSERIAL PRIMARY KEY,
    contact_id BIGINT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    from_stage TEXT NOT NULL,
    to_stage   TEXT NOT NULL,
    reason     TEXT NOT NULL DEFAULT '',
    lead_id    BIGINT,
    user_id    BIGINT,
    at         TIMESTAMPTZ NOT NULL
);
CREATE INDEX stage_history_contact ON stage_history (contact_id, id);

-- Leads: one per contact.
CREATE TABLE leads (
    id                BIGSERIAL PRIMARY KEY,
    contact_id        BIGINT NOT NULL UNIQUE REFERENCES contacts (id) ON DELETE CASCADE,
    status            TEXT NOT NULL DEFAULT 'new'
                      CHECK (status IN ('new', 'contacted', 'accepted', 'rejected', 'won', 'lost')),
    reason            TEXT NOT NULL DEFAULT '',
    owner_user_id     BIGINT REFERENCES users (id) ON DELETE SET NULL,
    score_at_creation DOUBLE PRECISION NOT NULL,
    -- The campaign whose event crossed the threshold.
    campaign_id       BIGINT,
    accepted_at       TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL
);
CREATE INDEX leads_status ON leads (status);
CREATE INDEX leads_owner ON leads (owner_user_id);
CREATE INDEX leads_campaign ON leads (campaign_id);

CREATE TABLE webhooks (
    id          BIGSERIAL PRIMARY KEY,
    url         TEXT NOT NULL,
    -- JSON array of event types.
    events      JSONB NOT NULL,
    secret      TEXT NOT NULL,
    active      BOOLEAN NOT NULL DEFAULT TRUE,
    description TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

-- The outbox: one row per event per endpoint, written in the transaction of
-- the change it reports; the worker delivers it.
CREATE TABLE webhook_deliveries (
    id           BIGSERIAL PRIMARY KEY,
    webhook_id   BIGINT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event        TEXT NOT NULL,
    data         JSONB NOT NULL,
    status       TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    status_code  INTEGER NOT NULL DEFAULT 0,
    error        TEXT NOT NULL DEFAULT '',
    -- When a task for it was last put in the queue.
    enqueued_at  TIMESTAMPTZ,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (id) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, id);

CREATE TABLE webhook_attempts (
    id          BIGSERIAL PRIMARY KEY,
    delivery_id BIGINT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL,
    status_code INTEGER NOT NULL DEFAULT 0,
    error       TEXT NOT NULL DEFAULT '',
    duration_ms BIGINT NOT NULL DEFAULT 0,
    at          TIMESTAMPTZ NOT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, id);

-- +goose Down
DROP TABLE webhook_attempts;
DROP TABLE webhook_deliveries;
DROP TABLE webhooks;
DROP TABLE leads;
DROP TABLE stage_history;
DROP TABLE score_ledger;
DROP TABLE contact_scores;
DROP TRIGGER events_rescan ON events;
DROP FUNCTION events_rescan();
DROP TABLE score_rescans;
DROP TABLE score_cursor;
DROP TABLE score_rules;
ALTER TABLE events DROP COLUMN intent;
