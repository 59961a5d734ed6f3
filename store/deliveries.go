package store

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"github.com/funnel-email/funnel/campaign"
)

// The deliveries table is the ledger of who was sent what. Its protocol,
// which the worker follows and the tests check:
//
//  1. MaterializeAudience inserts one queued row per audience member, once.
//  2. ClaimDeliveries moves up to n claimable rows of an ID range to
//     sending, under a claim token and a lease, in one statement.
//  3. The holder sends the claimed rows one at a time in ID order over one
//     SMTP connection, and writes each row's outcome with RecordOutcome
//     (durably) before it starts the next row's SMTP transaction.
//  4. So when a holder dies, in each of its claims only the lowest row still
//     in sending can have been inside an SMTP transaction: RecoverLeases
//     makes that row uncertain (or queued, when the campaign resends
//     uncertain deliveries) and the rest queued again.
//
// Every write of a holder names its claim, so a holder whose lease was
// recovered cannot overwrite what another holder does with the rows.

// ErrLeaseLost is returned to a claim holder whose rows were recovered by
// the lease sweep (its lease ran out): it must stop sending them.
var ErrLeaseLost = errors.New("delivery claim lost: the lease expired and the rows were recovered")

// MaterializeAudience draws campaign c's audience into the ledger in one
// INSERT ... SELECT: active contacts that match c.AudienceRule, at most
// one row per contact. It runs once per campaign: when the audience was
// already drawn it inserts nothing and returns the recorded size. The
// size is stored on the campaign in the same transaction, so a crash
// leaves either no audience or all of it.
func (db *DB) MaterializeAudience(ctx context.Context, c *campaign.Campaign) (int64, error) {
	where, args, err := db.SegmentWhere(ctx, c.AudienceRule())
	if err != nil {
		return 0, fmt.Errorf("compile audience of campaign %d: %w", c.ID, err)
	}
	var size int64
	err = db.withTx(ctx, func(tx *sqlxTx) error {
		var existing *int64
		// Reading the size under the transaction (SQLite: the write lock;
		// Postgres: FOR UPDATE) makes concurrent starts draw it once.
		lock := ""
		if db.Dialect == Postgres {
			lock = " FOR UPDATE"
		}
		if err := tx.GetContext(ctx, &existing, db.rebind(`SELECT audience_size FROM campaigns WHERE id = ?`+lock), c.ID); err != nil {
			return notFound(err, "campaign %d not found", c.ID)
		}
		if existing != nil {
			size = *existing
			return nil
		}
		now := db.now()
		q := `INSERT INTO deliveries (campaign_id, contact_id, status, created_at, updated_at)
			SELECT ?, contacts.id, 'queued', ?, ? FROM contacts
			WHERE contacts.status = 'active' AND (` + where + `)
			ORDER BY contacts.id
			ON CONFLICT (campaign_id, contact_id) DO NOTHING`
		if _, err := tx.ExecContext(ctx, db.rebind(q), append([]any{c.ID, now, now}, args...)...); err != nil {
			return fmt.Errorf("insert deliveries: %w", err)
		}
		if err := tx.GetContext(ctx, &size, db.rebind(`SELECT count(*) FROM deliveries WHERE campaign_id = ?`), c.ID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, db.rebind(`UPDATE campaigns SET audience_size = ?, updated_at = ? WHERE id = ?`), size, now, c.ID)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("materialize audience of campaign %d: %w", c.ID, err)
	}
	c.AudienceSize = &size
	return size, nil
}

// PendingBuckets returns the buckets (delivery ID / size) that hold
// deliveries of campaign id still to be sent, in order. Batches are
// defined over these fixed ID ranges so that their task IDs are
// deterministic.
func (db *DB) PendingBuckets(ctx context.Context, id int64, size int64) ([]int64, error) {
	var out []int64
	err := db.SelectContext(ctx, &out, db.rebind(`SELECT DISTINCT id / ? FROM deliveries
		WHERE campaign_id = ? AND status IN ('queued', 'deferred', 'sending') ORDER BY 1`), size, id)
	if err != nil {
		return nil, fmt.Errorf("list pending buckets of campaign %d: %w", id, err)
	}
	return out, nil
}

// Claim asks for deliveries to send.
type Claim struct {
	CampaignID int64
	// MinID and MaxID bound the delivery IDs (inclusive).
	MinID, MaxID int64
	Limit        int
	// Token names the claim; Lease is how long it holds.
	Token string
	Lease time.Duration
}

// Claimed is a delivery taken for sending, with its contact as it was at
// the claim.
type Claimed struct {
	campaign.Delivery
	Contact *campaign.Contact
}

// ClaimDeliveries moves up to c.Limit claimable deliveries (queued, or
// deferred and due) of the range to sending under c.Token, in one UPDATE
// ... RETURNING, and counts the attempt. Postgres skips rows another claim
// is taking at the same moment (FOR UPDATE SKIP LOCKED); SQLite has a
// single writer. Rows come back in ID order, the order they must be sent
// in, each with its contact, which the caller checks again for
// suppression.
func (db *DB) ClaimDeliveries(ctx context.Context, c Claim) ([]Claimed, error) {
	now := db.now()
	lock := ""
	if db.Dialect == Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	q := `UPDATE deliveries SET status = 'sending', claim = ?, lease_until = ?, attempts = attempts + 1, updated_at = ?
		WHERE id IN (SELECT id FROM deliveries
			WHERE campaign_id = ? AND id BETWEEN ? AND ? AND status IN ('queued', 'deferred', 'sending')
			AND (status = 'queued' OR (status = 'deferred' AND next_attempt_at <= ?))
			ORDER BY id LIMIT ?` + lock + `)
		RETURNING id, campaign_id, contact_id, attempts, created_at`
	var rows []struct {
		ID         int64     `db:"id"`
		CampaignID int64     `db:"campaign_id"`
		ContactID  int64     `db:"contact_id"`
		Attempts   int       `db:"attempts"`
		CreatedAt  time.Time `db:"created_at"`
	}
	err := db.SelectContext(ctx, &rows, db.rebind(q), c.Token, now.Add(c.Lease), now, c.CampaignID, c.MinID, c.MaxID, now, c.Limit)
	if err != nil {
		return nil, fmt.Errorf("claim deliveries of campaign %d: %w", c.CampaignID, err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	contactIDs := make([]int64, len(rows))
	for i, r := range rows {
		contactIDs[i] = r.ContactID
	}
	contacts, err := db.contactsByID(ctx, contactIDs)
	if err != nil {
		return nil, err
	}
	out := make([]Claimed, len(rows))
	for i, r := range rows {
		out[i] = Claimed{Delivery: campaign.Delivery{ID: r.ID, CampaignID: r.CampaignID, ContactID: r.ContactID,
			Status: campaign.DeliverySending, Attempts: r.Attempts, CreatedAt: r.CreatedAt.UTC()}, Contact: contacts[r.ContactID]}
	}
	// RETURNING does not promise an order.
	sortClaimed(out)
	return out, nil
}

func sortClaimed(c []Claimed) {
	for i := 1; i < len(c); i++ {
		for j := i; j > 0 && c[j].ID < c[j-1].ID; j-- {
			c[j], c[j-1] = c[j-1], c[j]
		}
	}
}

func (db *DB) contactsByID(ctx context.Context, ids []int64) (map[int64]*campaign.Contact, error) {
	q, args, err := sqlx.In(`SELECT `+contactColumns+` FROM contacts WHERE id IN (?)`, ids)
	if err != nil {
		return nil, err
	}
	var rows []contactRow
	if err := db.SelectContext(ctx, &rows, db.rebind(q), args...); err != nil {
		return nil, fmt.Errorf("load contacts of claimed deliveries: %w", err)
	}
	out := make(map[int64]*campaign.Contact, len(rows))
	for i := range rows {
		c, err := rows[i].contact()
		if err != nil {
			return nil, err
		}
		out[c.ID] = c
	}
	return out, nil
}

// Outcome is the result of one delivery's send (or of the decision not to
// send it).
type Outcome struct {
	ID     int64
	Claim  string
	Status campaign.DeliveryStatus // sent, deferred, bounced, failed or skipped
	// SMTPCode and Reason keep the server's reply or why it was not sent.
	SMTPCode  int
	Reason    string
	MessageID string
	// NextAttemptAt is when a deferred delivery may be claimed again.
	NextAttemptAt time.Time
	// ContactID is the contact to suppress when Status is bounced.
	ContactID int64
}

// RecordOutcome writes the outcome of a claimed delivery and, for a
// bounce, suppresses the contact (status bounced) and records a bounced
// event in the same transaction. It returns once the write is committed: the caller may
// then start the next SMTP transaction. ErrLeaseLost means the claim was
// recovered meanwhile; an outcome for a row the sweep marked uncertain is
// still written, because it is what really happened.
func (db *DB) RecordOutcome(ctx context.Context, o Outcome) error {
	now := db.now()
	var sentAt, next any
	if o.Status == campaign.DeliverySent {
		sentAt = now
	}
	if o.Status == campaign.DeliveryDeferred {
		next = o.NextAttemptAt.UTC().Truncate(time.Microsecond)
	}
	q := db.rebind(`UPDATE deliveries SET status = ?, smtp_code = ?, reason = ?, message_id = ?, sent_at = ?,
		next_attempt_at = ?, lease_until = NULL, updated_at = ?
		WHERE id = ? AND claim = ? AND status IN ('sending', 'uncertain')`)
	args := []any{string(o.Status), o.SMTPCode, o.Reason, o.MessageID, sentAt, next, now, o.ID, o.Claim}
	if o.Status != campaign.DeliveryBounced {
		res, err := db.ExecContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("record outcome of delivery %d: %w", o.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrLeaseLost
		}
		return nil
	}
	return db.withTx(ctx, func(tx *sqlxTx) error {
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("record outcome of delivery %d: %w", o.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrLeaseLost
		}
		_, err = tx.ExecContext(ctx, db.rebind(`UPDATE contacts SET status = 'bounced', updated_at = ? WHERE id = ? AND status = 'active'`), now, o.ContactID)
		if err != nil {
			return fmt.Errorf("suppress bounced contact %d: %w", o.ContactID, err)
		}
		// The bounce is an event too, so that segments ("bounced in campaign
		// 12") and scoring (a hard bounce disqualifies) see it.
		_, err = tx.ExecContext(ctx, db.rebind(`INSERT INTO events (delivery_id, contact_id, campaign_id, kind, human, reason, occurred_at)
			SELECT id, contact_id, campaign_id, 'bounced', FALSE, ?, ? FROM deliveries WHERE id = ?`), truncateText(o.Reason, campaign.MaxEventText), now, o.ID)
		if err != nil {
			return fmt.Errorf("record bounce event of delivery %d: %w", o.ID, err)
		}
		return nil
	})
}

// ExtendLease pushes the lease of claim token's unsent rows to now+lease.
// ErrLeaseLost means the sweep recovered them first.
func (db *DB) ExtendLease(ctx context.Context, token string, lease time.Duration) error {
	now := db.now()
	res, err := db.ExecContext(ctx, db.rebind(`UPDATE deliveries SET lease_until = ? WHERE claim = ? AND status = 'sending' AND lease_until >= ?`),
		now.Add(lease), token, now)
	if err != nil {
		return fmt.Errorf("extend lease %s: %w", token, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrLeaseLost
	}
	return nil
}

// requeued is the status of a row handed back unsent: queued, or skipped
// when its campaign was cancelled (or failed) meanwhile, so that nothing
// is left waiting for a send that will never come.
const requeued = `CASE WHEN (SELECT status FROM campaigns WHERE campaigns.id = deliveries.campaign_id)
	IN ('cancelled', 'failed') THEN 'skipped' ELSE 'queued' END`

// ReleaseClaim puts the rows of claim token that were never sent back in
// the queue (a pause, a shutdown) without counting an attempt. The caller
// must have recorded the outcome of every row it started.
func (db *DB) ReleaseClaim(ctx context.Context, token string) error {
	_, err := db.ExecContext(ctx, db.rebind(`UPDATE deliveries SET status = `+requeued+`, claim = '', lease_until = NULL,
		attempts = attempts - 1, updated_at = ? WHERE claim = ? AND status = 'sending'`), db.now(), token)
	if err != nil {
		return fmt.Errorf("release claim %s: %w", token, err)
	}
	return nil
}

// RecoverLeases handles claims whose lease ran out (their worker died or
// stalled): in each such claim the lowest row still sending may have been
// inside its SMTP transaction, so it becomes uncertain, or queued when
// its campaign resends uncertain deliveries; the rows after it were never
// started and are queued again. It returns the campaigns that got rows
// back in the queue, so their batches can be enqueued.
func (db *DB) RecoverLeases(ctx context.Context) (map[int64]bool, error) {
	now := db.now()
	out := map[int64]bool{}
	// Two statements in one transaction rather than one UPDATE with a
	// correlated min(): SQLite's UPDATE would see its own earlier changes
	// in the subquery and mark every row of a claim uncertain.
	err := db.withTx(ctx, func(tx *sqlxTx) error {
		var firsts []int64
		// status = 'sending' with no condition on claim reads the whole
		// deliveries_claim index: only the rows in flight.
		if err := tx.SelectContext(ctx, &firsts, db.rebind(`SELECT min(id) FROM deliveries
			WHERE status = 'sending' AND lease_until < ? GROUP BY claim`), now); err != nil {
			return err
		}
		if len(firsts) == 0 {
			return nil
		}
		q, args, err := sqlx.In(`UPDATE deliveries SET
			status = CASE WHEN (SELECT resend_uncertain FROM campaigns WHERE campaigns.id = deliveries.campaign_id)
				THEN 'queued' ELSE 'uncertain' END,
			reason = 'the worker was lost inside the SMTP transaction', lease_until = NULL, updated_at = ?
			WHERE id IN (?) AND status = 'sending' AND lease_until < ?`, now, firsts, now)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, db.rebind(q), args...); err != nil {
			return err
		}
		var campaigns []int64
		if err := tx.SelectContext(ctx, &campaigns, db.rebind(`UPDATE deliveries SET status = `+requeued+`, attempts = attempts - 1,
			lease_until = NULL, updated_at = ? WHERE status = 'sending' AND lease_until < ? RETURNING campaign_id`), now, now); err != nil {
			return err
		}
		for _, id := range campaigns {
			out[id] = true
		}
		// A resent uncertain row is queued too.
		var resent []int64
		q, args, err = sqlx.In(`SELECT DISTINCT campaign_id FROM deliveries WHERE id IN (?) AND status = 'queued'`, firsts)
		if err != nil {
			return err
		}
		if err := tx.SelectContext(ctx, &resent, db.rebind(q), args...); err != nil {
			return err
		}
		for _, id := range resent {
			out[id] = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("recover expired delivery leases: %w", err)
	}
	return out, nil
}

// NextDeferred returns when the earliest deferred delivery of campaign
// id in the ID range becomes due, and false when none is deferred.
func (db *DB) NextDeferred(ctx context.Context, id, minID, maxID int64) (time.Time, bool, error) {
	var t *time.Time
	err := db.GetContext(ctx, &t, db.rebind(`SELECT min(next_attempt_at) FROM deliveries
		WHERE campaign_id = ? AND id BETWEEN ? AND ? AND status IN ('queued', 'deferred', 'sending') AND status = 'deferred'`), id, minID, maxID)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("find next deferred delivery of campaign %d: %w", id, err)
	}
	if t == nil {
		return time.Time{}, false, nil
	}
	return t.UTC(), true, nil
}

// FailExpired fails the deferred deliveries of campaign id in the ID
// range [minID, maxID] that were created more than maxAge ago: they have
// been retried long enough. The range keeps the cost of a batch's call
// to its own rows, not the campaign's.
func (db *DB) FailExpired(ctx context.Context, id, minID, maxID int64, maxAge time.Duration) (int64, error) {
	now := db.now()
	res, err := db.ExecContext(ctx, db.rebind(`UPDATE deliveries SET status = 'failed',
		reason = 'gave up after retrying for the maximum age: ' || reason, updated_at = ?
		WHERE campaign_id = ? AND id BETWEEN ? AND ? AND status IN ('queued', 'deferred', 'sending')
		AND status = 'deferred' AND created_at < ?`), now, id, minID, maxID, now.Add(-maxAge))
	if err != nil {
		return 0, fmt.Errorf("fail expired deliveries of campaign %d: %w", id, err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// InsertMissingSentEvents records a "sent" event for each sent delivery
// of campaign id (only those in deliveryIDs, when given) that has none
// yet, so that segment rules such as sent(campaign: 12) see them. It is
// idempotent.
//
// Both forms are written so that their cost stays linear whatever the
// planner's statistics say: while a campaign sends they are stale (the
// last ANALYZE saw every row queued and no event), and an anti-join
// planned for one row, probing the campaign's events by campaign and kind
// only, took 42 s for 20,000 deliveries. With IDs, the deliveries come by
// primary key and each probe uses the whole events key; without, the
// contacts still missing an event are a set difference (hashed or
// sorted), and only those are joined back.
func (db *DB) InsertMissingSentEvents(ctx context.Context, id int64, deliveryIDs ...int64) error {
	q := `INSERT INTO events (delivery_id, contact_id, campaign_id, kind, occurred_at)
		SELECT d.id, d.contact_id, d.campaign_id, 'sent', d.sent_at FROM deliveries d
		WHERE d.campaign_id = ? AND d.status = 'sent' AND d.contact_id IN (
			SELECT contact_id FROM deliveries WHERE campaign_id = ? AND status = 'sent'
			EXCEPT SELECT contact_id FROM events WHERE campaign_id = ? AND kind = 'sent')`
	args := []any{id, id, id}
	if len(deliveryIDs) > 0 {
		q = `INSERT INTO events (delivery_id, contact_id, campaign_id, kind, occurred_at)
		SELECT d.id, d.contact_id, d.campaign_id, 'sent', d.sent_at FROM deliveries d
		WHERE d.id IN (?) AND d.status = 'sent' AND NOT EXISTS (SELECT 1 FROM events e
			WHERE e.campaign_id = d.campaign_id AND e.kind = 'sent' AND e.contact_id = d.contact_id)`
		var err error
		if q, args, err = sqlx.In(q, deliveryIDs); err != nil {
			return err
		}
	}
	if _, err := db.ExecContext(ctx, db.rebind(q), args...); err != nil {
		return fmt.Errorf("record sent events of campaign %d: %w", id, err)
	}
	return nil
}

// ListDeliveries returns the deliveries of campaign id in ID order after
// the cursor.
func (db *DB) ListDeliveries(ctx context.Context, id, after int64, limit int) ([]campaign.Delivery, error) {
	if limit <= 0 {
		limit = MaxPageSize
	}
	var rows []struct {
		ID            int64      `db:"id"`
		CampaignID    int64      `db:"campaign_id"`
		ContactID     int64      `db:"contact_id"`
		Status        string     `db:"status"`
		Attempts      int        `db:"attempts"`
		NextAttemptAt *time.Time `db:"next_attempt_at"`
		SMTPCode      int        `db:"smtp_code"`
		Reason        string     `db:"reason"`
		MessageID     string     `db:"message_id"`
		SentAt        *time.Time `db:"sent_at"`
		CreatedAt     time.Time  `db:"created_at"`
	}
	err := db.SelectContext(ctx, &rows, db.rebind(`SELECT id, campaign_id, contact_id, status, attempts, next_attempt_at,
		smtp_code, reason, message_id, sent_at, created_at FROM deliveries WHERE campaign_id = ? AND id > ? ORDER BY id LIMIT ?`), id, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list deliveries of campaign %d: %w", id, err)
	}
	out := make([]campaign.Delivery, len(rows))
	for i, r := range rows {
		out[i] = campaign.Delivery{ID: r.ID, CampaignID: r.CampaignID, ContactID: r.ContactID, Status: campaign.DeliveryStatus(r.Status),
			Attempts: r.Attempts, NextAttemptAt: utcPtr(r.NextAttemptAt), SMTPCode: r.SMTPCode, Reason: r.Reason,
			MessageID: r.MessageID, SentAt: utcPtr(r.SentAt), CreatedAt: r.CreatedAt.UTC()}
	}
	return out, nil
}

// truncateText cuts s to at most n bytes without splitting a UTF-8 rune.
func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
