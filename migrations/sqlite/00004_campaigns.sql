-- +goose Up
CREATE TABLE campaigns (
    id                  INTEGER PRIMARY KEY,
    name                TEXT NOT NULL,
    template_id         INTEGER NOT NULL REFERENCES templates (id),
    -- JSON arrays of segment IDs; the audience is drawn from their rules at start.
    segment_ids         TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(segment_ids)),
    exclude_segment_ids TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(exclude_segment_ids)),
    from_name           TEXT NOT NULL DEFAULT '',
    from_email          TEXT NOT NULL,
    reply_to            TEXT NOT NULL DEFAULT '',
    send_at             DATETIME,
    rate                REAL NOT NULL DEFAULT 0,
    resend_uncertain    BOOLEAN NOT NULL DEFAULT FALSE,
    status              TEXT NOT NULL DEFAULT 'draft'
                        CHECK (status IN ('draft', 'scheduled', 'sending', 'paused', 'sent', 'cancelled', 'failed')),
    -- Grows on every schedule: start tasks of older schedules are stale.
    schedule_version    INTEGER NOT NULL DEFAULT 0,
    -- Set once the audience is in deliveries; NULL before.
    audience_size       INTEGER,
    failure             TEXT NOT NULL DEFAULT '',
    created_at          DATETIME NOT NULL,
    updated_at          DATETIME NOT NULL,
    started_at          DATETIME,
    finished_at         DATETIME
);
CREATE INDEX campaigns_status ON campaigns (status);

-- The ledger: the only truth about who was sent what.
CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY,
    campaign_id     INTEGER NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    contact_id      INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    status          TEXT NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'sending', 'sent', 'deferred', 'bounced', 'failed', 'skipped', 'uncertain')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at DATETIME,
    -- The claim of the worker connection sending it, and until when the
    -- claim holds. Rows of one claim are sent in id order, one at a time.
    claim           TEXT NOT NULL DEFAULT '',
    lease_until     DATETIME,
    smtp_code       INTEGER NOT NULL DEFAULT 0,
    reason          TEXT NOT NULL DEFAULT '',
    message_id      TEXT NOT NULL DEFAULT '',
    sent_at         DATETIME,
    created_at      DATETIME NOT NULL,
    updated_at      DATETIME NOT NULL,
    UNIQUE (campaign_id, contact_id)
);
-- Every status change of a delivery (two per message: the claim and the
-- outcome) writes a new entry into each index whose key or predicate it
-- touches, so deliveries has only the indexes the send path needs.
-- Claims, deferred retries, cancel and completion scan the unfinished rows
-- of one campaign in id order (queries repeat the predicate so that
-- SQLite uses the index too).
CREATE INDEX deliveries_pending ON deliveries (campaign_id, id)
    WHERE status IN ('queued', 'deferred', 'sending');
-- The rows in flight, by claim: a holder's lease and release, and the
-- lease sweep, which reads this whole (small) index.
CREATE INDEX deliveries_claim ON deliveries (claim) WHERE status = 'sending';
-- No index on (campaign_id, status): progress counts read the campaign's
-- rows through the (campaign_id, contact_id) key.

-- +goose Down
DROP TABLE deliveries;
DROP TABLE campaigns;
