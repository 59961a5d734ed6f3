package store

import (
	"context"
	"database/sql"
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
//     SMTP connection, and makes each row's outcome durable before it
//     starts the next row's SMTP transaction: either in the ledger with
//     RecordOutcomes, or in the claim's send journal (kept in Redis by
//     the worker), which it writes to the ledger with RecordOutcomes in
//     one statement when the claim ends.
//  4. So when a holder dies, in each of its claims only the lowest row
//     with no outcome can have been inside an SMTP transaction:
//     RecoverLeases writes the journaled outcomes, makes that row
//     uncertain (or queued, when the campaign resends uncertain
//     deliveries) and queues the rest again. If the journal itself was
//     lost, every row still sending becomes uncertain: none is sent twice.
//     A row without an outcome before the journal's last entry was
//     started too (the journal lost entries), so it becomes uncertain.
//  5. A holder that stops early (a pause, a shutdown, a lost lease) writes
//     the outcomes it has and hands the rows it never started back with
//     ReleaseClaim. When it cannot, it leaves the claim and its journal
//     to the sweep.
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
// leaves either no audience or all of it. A campaign that was cancelled
// (or failed) before its audience was drawn gets ECONFLICT: no row of it
// may wait in the queue.
func (db *DB) MaterializeAudience(ctx context.Context, c *campaign.Campaign) (int64, error) {
	where, args, err := db.SegmentWhere(ctx, c.AudienceRule())
	if err != nil {
		return 0, fmt.Errorf("compile audience of campaign %d: %w", c.ID, err)
	}
	var size int64
	err = db.withTx(ctx, func(tx *sqlxTx) error {
		var state struct {
			Size   *int64          `db:"audience_size"`
			Status campaign.Status `db:"status"`
		}
		// Reading the size under the transaction (SQLite: the write lock;
		// Postgres: FOR UPDATE) makes concurrent starts draw it once, and
		// orders the draw against a cancel: either the cancel comes first
		// and nothing is drawn, or it waits and skips what was drawn.
		lock := ""
		if db.Dialect == Postgres {
			lock = " FOR UPDATE"
		}
		if err := tx.GetContext(ctx, &state, db.rebind(`SELECT audience_size, status FROM campaigns WHERE id = ?`+lock), c.ID); err != nil {
			return notFound(err, "campaign %d not found", c.ID)
		}
		if state.Size != nil {
			size = *state.Size
			return nil
		}
		if state.Status == campaign.StatusCancelled || state.Status == campaign.StatusFailed {
			return campaign.Errorf(campaign.ECONFLICT, "campaign %d is %s: its audience is not drawn", c.ID, state.Status)
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
		var drawn struct {
			Size  int64  `db:"size"`
			First *int64 `db:"first"`
			Last  *int64 `db:"last"`
		}
		if err := tx.GetContext(ctx, &drawn, db.rebind(`SELECT count(*) AS size, min(id) AS first, max(id) AS last
			FROM deliveries WHERE campaign_id = ?`), c.ID); err != nil {
			return err
		}
		size = drawn.Size
		_, err := tx.ExecContext(ctx, db.rebind(`UPDATE campaigns SET audience_size = ?, first_delivery_id = ?, last_delivery_id = ?,
			updated_at = ? WHERE id = ?`), size, drawn.First, drawn.Last, now, c.ID)
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
	ID     int64                   `json:"id"`
	Claim  string                  `json:"-"`
	Status campaign.DeliveryStatus `json:"status"` // sent, deferred, bounced, failed or skipped
	// SMTPCode and Reason keep the server's reply or why it was not sent.
	SMTPCode  int    `json:"code,omitempty"`
	Reason    string `json:"reason,omitempty"`
	MessageID string `json:"message_id,omitempty"`
	// At is when the outcome happened (the sent time of a sent delivery);
	// zero means when it is recorded.
	At time.Time `json:"at,omitzero"`
	// NextAttemptAt is when a deferred delivery may be claimed again.
	NextAttemptAt time.Time `json:"next,omitzero"`
	// ContactID is the contact to suppress when Status is bounced.
	ContactID int64 `json:"contact_id,omitempty"`
}

// RecordOutcome writes the outcome of one claimed delivery; see
// RecordOutcomes.
func (db *DB) RecordOutcome(ctx context.Context, o Outcome) error {
	return db.RecordOutcomes(ctx, o.Claim, []Outcome{o})
}

// RecordOutcomes writes the outcomes of deliveries held by claim, in one
// transaction, and for each bounce suppresses the contact (status
// bounced) and records a bounced event. It returns once the write is
// committed. ErrLeaseLost means some rows were no longer the claim's (the
// sweep recovered them); the others are written all the same. An outcome
// for a row the sweep marked uncertain is written too, because it is what
// really happened.
func (db *DB) RecordOutcomes(ctx context.Context, claim string, os []Outcome) error {
	if len(os) == 0 {
		return nil
	}
	var lost bool
	err := db.withTx(ctx, func(tx *sqlxTx) error {
		written, err := db.writeOutcomes(ctx, tx, claim, os)
		if err != nil {
			return err
		}
		lost = len(written) < len(os)
		return db.suppressBounced(ctx, tx, os, written)
	})
	if err != nil {
		return fmt.Errorf("record outcomes of claim %s: %w", claim, err)
	}
	if lost {
		return ErrLeaseLost
	}
	return nil
}

// MaxOutcomeReason bounds the reason stored with a delivery's outcome
// (an SMTP reply can be long).
const MaxOutcomeReason = 500

// writeOutcomes updates the rows of os still held by claim (sending, or
// uncertain after a sweep) and returns the IDs it wrote. Postgres takes
// them in one statement over arrays; SQLite, whose statements cost no
// round trip, one prepared UPDATE per row.
//
// An outcome that lands on an uncertain row changes a campaign that may
// have settled, so the campaign's recorded final counts are cleared and
// counted again on the next read.
func (db *DB) writeOutcomes(ctx context.Context, tx *sqlxTx, claim string, os []Outcome) (map[int64]bool, error) {
	written := make(map[int64]bool, len(os))
	if len(os) == 0 {
		return written, nil
	}
	var late bool
	var err error
	if db.Dialect == Postgres {
		late, err = db.writeOutcomesPostgres(ctx, tx, claim, os, written)
	} else {
		late, err = db.writeOutcomesSQLite(ctx, tx, claim, os, written)
	}
	if err != nil || !late {
		return written, err
	}
	// Every row of a claim belongs to one campaign. On Postgres the UPDATE
	// must take the campaign's row lock even when no counts are recorded
	// yet, so that it waits for a CampaignProgress recording them and then
	// clears them; SQLite's single writer orders the two anyway.
	q := `UPDATE campaigns SET final_counts = NULL WHERE id = (SELECT campaign_id FROM deliveries WHERE id = ?)`
	if db.Dialect == SQLite {
		q += ` AND final_counts IS NOT NULL`
	}
	_, err = tx.ExecContext(ctx, db.rebind(q), os[0].ID)
	if err != nil {
		return nil, fmt.Errorf("clear final counts: %w", err)
	}
	return written, nil
}

// writeOutcomesPostgres is writeOutcomes in one statement over arrays.
// late reports whether a written row was uncertain: the self-join reads
// the rows as they were before the statement.
func (db *DB) writeOutcomesPostgres(ctx context.Context, tx *sqlxTx, claim string, os []Outcome, written map[int64]bool) (late bool, err error) {
	now := db.now()
	ids, codes := make([]int64, len(os)), make([]int32, len(os))
	statuses, reasons, msgIDs := make([]string, len(os)), make([]string, len(os)), make([]string, len(os))
	ats, nexts := make([]time.Time, len(os)), make([]time.Time, len(os))
	for i, o := range os {
		ids[i], codes[i], statuses[i], reasons[i], msgIDs[i] = o.ID, int32(o.SMTPCode), string(o.Status), truncateText(o.Reason, MaxOutcomeReason), o.MessageID
		ats[i], nexts[i] = outcomeTime(o.At, now), o.NextAttemptAt.UTC()
	}
	var got []struct {
		ID  int64  `db:"id"`
		Was string `db:"was"`
	}
	err = tx.SelectContext(ctx, &got, `UPDATE deliveries AS d SET status = v.status, smtp_code = v.code, reason = v.reason,
		message_id = v.message_id, sent_at = CASE WHEN v.status = 'sent' THEN v.at END,
		next_attempt_at = CASE WHEN v.status = 'deferred' THEN v.next END, lease_until = NULL, updated_at = $1
		FROM unnest($2::bigint[], $3::text[], $4::int[], $5::text[], $6::text[], $7::timestamptz[], $8::timestamptz[])
			AS v(id, status, code, reason, message_id, at, next), deliveries AS before
		WHERE d.id = v.id AND before.id = d.id AND d.claim = $9 AND d.status IN ('sending', 'uncertain')
		RETURNING d.id, before.status AS was`, now, ids, statuses, codes, reasons, msgIDs, ats, nexts, claim)
	if err != nil {
		return false, err
	}
	for _, r := range got {
		written[r.ID] = true
		late = late || r.Was == string(campaign.DeliveryUncertain)
	}
	return late, nil
}

// writeOutcomesSQLite is writeOutcomes one prepared UPDATE per row:
// SQLite's statements cost no round trip. Any written row counts as
// possibly late: clearing counts that are not recorded costs nothing.
func (db *DB) writeOutcomesSQLite(ctx context.Context, tx *sqlxTx, claim string, os []Outcome, written map[int64]bool) (late bool, err error) {
	now := db.now()
	stmt, err := tx.PreparexContext(ctx, `UPDATE deliveries SET status = ?, smtp_code = ?, reason = ?, message_id = ?, sent_at = ?,
		next_attempt_at = ?, lease_until = NULL, updated_at = ?
		WHERE id = ? AND claim = ? AND status IN ('sending', 'uncertain')`)
	if err != nil {
		return false, err
	}
	defer stmt.Close()
	for _, o := range os {
		var sentAt, next any
		if o.Status == campaign.DeliverySent {
			sentAt = outcomeTime(o.At, now)
		}
		if o.Status == campaign.DeliveryDeferred {
			next = o.NextAttemptAt.UTC().Truncate(time.Microsecond)
		}
		res, err := stmt.ExecContext(ctx, string(o.Status), o.SMTPCode, truncateText(o.Reason, MaxOutcomeReason), o.MessageID, sentAt, next, now, o.ID, claim)
		if err != nil {
			return false, fmt.Errorf("delivery %d: %w", o.ID, err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			written[o.ID] = true
		}
	}
	return len(written) > 0, nil
}

func outcomeTime(at, now time.Time) time.Time {
	if at.IsZero() {
		return now
	}
	return at.UTC().Truncate(time.Microsecond)
}

// suppressBounced marks the contacts of the written bounces bounced and
// records a bounced event for each, so that segments ("bounced in
// campaign 12") and scoring (a hard bounce disqualifies) see it.
func (db *DB) suppressBounced(ctx context.Context, tx *sqlxTx, os []Outcome, written map[int64]bool) error {
	now := db.now()
	for _, o := range os {
		if o.Status != campaign.DeliveryBounced || !written[o.ID] {
			continue
		}
		_, err := tx.ExecContext(ctx, db.rebind(`UPDATE contacts SET status = 'bounced', updated_at = ? WHERE id = ? AND status = 'active'`), now, o.ContactID)
		if err != nil {
			return fmt.Errorf("suppress bounced contact %d: %w", o.ContactID, err)
		}
		_, err = tx.ExecContext(ctx, db.rebind(`INSERT INTO events (delivery_id, contact_id, campaign_id, kind, human, reason, occurred_at)
			SELECT id, contact_id, campaign_id, 'bounced', FALSE, ?, ? FROM deliveries WHERE id = ?`), truncateText(o.Reason, campaign.MaxEventText), outcomeTime(o.At, now), o.ID)
		if err != nil {
			return fmt.Errorf("record bounce event of delivery %d: %w", o.ID, err)
		}
	}
	return nil
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

// Journal reads, and closes to further writes, the outcomes a claim's
// holder made durable outside the ledger before writing them to it (see
// worker's send journal). found is false when the journal is gone (the
// store that held it lost it): then any row still sending may have been
// sent.
type Journal func(ctx context.Context, claim string) (outcomes []Outcome, found bool, err error)

// RecoverLeases handles claims whose lease ran out (their worker died or
// stalled). The outcomes in the claim's journal are written first; then
// the lowest row still sending may have been inside its SMTP transaction,
// so it becomes uncertain (or queued, when its campaign resends uncertain
// deliveries), and the rows after it, never started, are queued again.
// When the journal is lost every row still sending becomes uncertain:
// any of them may have been sent, and none is sent twice. A nil journal
// means outcomes are written to the ledger before the next transaction
// starts, so there is nothing to read. It returns the campaigns that got
// rows back in the queue, so their batches can be enqueued.
func (db *DB) RecoverLeases(ctx context.Context, journal Journal) (map[int64]bool, error) {
	var claims []string
	// status = 'sending' with no condition on claim reads the whole
	// deliveries_claim index: only the rows in flight.
	if err := db.SelectContext(ctx, &claims, db.rebind(`SELECT DISTINCT claim FROM deliveries
		WHERE status = 'sending' AND lease_until < ?`), db.now()); err != nil {
		return nil, fmt.Errorf("recover expired delivery leases: %w", err)
	}
	// One claim that cannot be settled does not hold back the others; it
	// is tried again on the next sweep.
	out := map[int64]bool{}
	var errs []error
	for _, claim := range claims {
		var outcomes []Outcome
		found := true
		if journal != nil {
			var err error
			if outcomes, found, err = journal(ctx, claim); err != nil {
				errs = append(errs, fmt.Errorf("recover claim %s: read its journal: %w", claim, err))
				continue
			}
		}
		if err := db.recoverClaim(ctx, claim, outcomes, found, out); err != nil {
			errs = append(errs, fmt.Errorf("recover claim %s: %w", claim, err))
		}
	}
	return out, errors.Join(errs...)
}

// recoverClaim settles one expired claim; see RecoverLeases. Campaigns
// with rows queued again are added to queuedAgain.
func (db *DB) recoverClaim(ctx context.Context, claim string, outcomes []Outcome, found bool, queuedAgain map[int64]bool) error {
	return db.withTx(ctx, func(tx *sqlxTx) error {
		now := db.now()
		lock := ""
		if db.Dialect == Postgres {
			lock = " FOR UPDATE"
		}
		// The lease is checked again under the lock: a holder that was only
		// slow may have extended it, or another sweep settled the claim.
		var rows []struct {
			ID         int64 `db:"id"`
			CampaignID int64 `db:"campaign_id"`
		}
		if err := tx.SelectContext(ctx, &rows, db.rebind(`SELECT id, campaign_id FROM deliveries
			WHERE claim = ? AND status = 'sending' AND lease_until < ? ORDER BY id`+lock), claim, now); err != nil {
			return err
		}
		if len(rows) == 0 {
			return nil
		}
		expired := make(map[int64]bool, len(rows))
		for _, r := range rows {
			expired[r.ID] = true
		}
		var journaled []Outcome
		var lastJournaled int64
		for _, o := range outcomes {
			lastJournaled = max(lastJournaled, o.ID)
			if expired[o.ID] {
				journaled = append(journaled, o)
				delete(expired, o.ID)
			}
		}
		written, err := db.writeOutcomes(ctx, tx, claim, journaled)
		if err != nil {
			return err
		}
		if err := db.suppressBounced(ctx, tx, journaled, written); err != nil {
			return err
		}
		// Rows are sent in ID order: the first one without an outcome
		// after the journal's last may have been inside the transaction,
		// the later ones were never started. A row without an outcome
		// before the journal's last was started too: the journal lost
		// entries (a Redis that failed over or came back from an older
		// snapshot), so it may have been sent. Without the journal, any
		// row may have been sent.
		var maybeSent, unsent []int64
		reason := "the worker was lost inside the SMTP transaction"
		if !found {
			reason = "the worker was lost and its send journal with it: the message may have been sent"
		}
		var pastJournal bool // the first row after the journal's last is taken
		for _, r := range rows {
			switch {
			case !expired[r.ID]:
			case !found || r.ID < lastJournaled:
				maybeSent = append(maybeSent, r.ID)
			case !pastJournal:
				pastJournal = true
				maybeSent = append(maybeSent, r.ID)
			default:
				unsent = append(unsent, r.ID)
			}
		}
		if len(maybeSent) > 0 {
			// A campaign that resends uncertain deliveries queues them
			// again, unless it ended meanwhile.
			q, args, err := sqlx.In(`UPDATE deliveries SET
				status = CASE WHEN (SELECT resend_uncertain AND campaigns.status NOT IN ('cancelled', 'failed')
					FROM campaigns WHERE campaigns.id = deliveries.campaign_id)
					THEN 'queued' ELSE 'uncertain' END,
				reason = ?, lease_until = NULL, updated_at = ?
				WHERE id IN (?) AND status = 'sending'`, reason, now, maybeSent)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, db.rebind(q), args...); err != nil {
				return err
			}
		}
		if len(unsent) > 0 {
			q, args, err := sqlx.In(`UPDATE deliveries SET status = `+requeued+`, attempts = attempts - 1,
				lease_until = NULL, updated_at = ? WHERE id IN (?) AND status = 'sending'`, now, unsent)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, db.rebind(q), args...); err != nil {
				return err
			}
		}
		if len(maybeSent)+len(unsent) == 0 {
			return nil // the journal settled every row
		}
		// A resent uncertain row is queued too.
		var queued []int64
		q, args, err := sqlx.In(`SELECT DISTINCT campaign_id FROM deliveries WHERE id IN (?) AND status = 'queued'`, append(maybeSent, unsent...))
		if err != nil {
			return err
		}
		if err := tx.SelectContext(ctx, &queued, db.rebind(q), args...); err != nil {
			return err
		}
		for _, id := range queued {
			queuedAgain[id] = true
		}
		return nil
	})
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
	return db.ListDeliveriesPage(ctx, id, Page{After: after, Limit: limit})
}

// ListDeliveriesPage returns a page of the deliveries of campaign id in
// the order of DeliverySorts. Unlike other listings, p.Limit may exceed
// MaxPageSize (0 means MaxPageSize), for readers of a whole ledger. An
// unknown sort is EINVALID. Pages walk the primary key within the
// campaign's range of IDs, recorded when its audience was drawn.
func (db *DB) ListDeliveriesPage(ctx context.Context, id int64, p Page) ([]campaign.Delivery, error) {
	cond, pageArgs, order, err := DeliverySorts.keyset(p.Sort, "id", p.After, p.AfterValue)
	if err != nil {
		return nil, err
	}
	limit := p.Limit
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
	// The campaign's deliveries lie between the IDs recorded when its
	// audience was drawn: bounding the primary key to them keeps a page
	// from walking past the deliveries of every other campaign.
	var bounds struct {
		First *int64 `db:"first_delivery_id"`
		Last  *int64 `db:"last_delivery_id"`
	}
	if err := db.GetContext(ctx, &bounds, db.rebind(`SELECT first_delivery_id, last_delivery_id FROM campaigns WHERE id = ?`), id); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("list deliveries of campaign %d: %w", id, err)
	}
	base, args := "campaign_id = ?", []any{id}
	if bounds.First != nil && bounds.Last != nil {
		base += " AND id BETWEEN ? AND ?"
		args = append(args, *bounds.First, *bounds.Last)
	}
	args = append(append(args, pageArgs...), limit)
	err = db.SelectContext(ctx, &rows, db.rebind(`SELECT id, campaign_id, contact_id, status, attempts, next_attempt_at,
		smtp_code, reason, message_id, sent_at, created_at FROM deliveries`+whereClause(base, cond)+` ORDER BY `+order+` LIMIT ?`), args...)
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
