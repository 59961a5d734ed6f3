package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/funnel-email/funnel/campaign"
)

// SentDelivery is what the event writer needs about a delivery: whose it
// is and when the SMTP server accepted it (zero when it was not).
type SentDelivery struct {
	CampaignID int64
	ContactID  int64
	SentAt     time.Time
}

// SentDeliveries returns the deliveries among ids that exist, by ID.
// Missing IDs are absent from the map, not an error.
func (db *DB) SentDeliveries(ctx context.Context, ids []int64) (map[int64]SentDelivery, error) {
	out := make(map[int64]SentDelivery, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	in, args := db.idsIn("id", uniqueIDs(ids))
	rows, err := db.QueryContext(ctx, db.rebind(`SELECT id, campaign_id, contact_id, sent_at FROM deliveries WHERE `+in), args...)
	if err != nil {
		return nil, fmt.Errorf("load deliveries of events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id   int64
			d    SentDelivery
			sent sql.NullTime
		)
		if err := rows.Scan(&id, &d.CampaignID, &d.ContactID, &sent); err != nil {
			return nil, fmt.Errorf("load deliveries of events: %w", err)
		}
		if sent.Valid {
			d.SentAt = sent.Time.UTC()
		}
		out[id] = d
	}
	return out, rows.Err()
}

// idsIn returns the condition "col is one of ids" and its arguments, for
// a primary-key lookup. On PostgreSQL it is one array parameter, so the
// statement text is the same for any number of IDs (one prepared
// statement, not one per batch size, and no list of 2,000 parameters to
// bind and plan); SQLite gets one parameter per ID. The placeholders are
// "?" (rebind them).
func (db *DB) idsIn(col string, ids []int64) (string, []any) {
	if db.Dialect == Postgres {
		return col + " = ANY(?::bigint[])", []any{ids}
	}
	var b strings.Builder
	args := make([]any, len(ids))
	b.WriteString(col + " IN (")
	for i, id := range ids {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('?')
		args[i] = id
	}
	b.WriteByte(')')
	return b.String(), args
}

// TrackedEvent is an event that came from a tracking request, with that
// request's unique ID.
type TrackedEvent struct {
	campaign.Event
	HitID []byte
}

// RecentEngagement returns the opens and clicks of the given deliveries
// that occurred at or after since, oldest first.
func (db *DB) RecentEngagement(ctx context.Context, deliveryIDs []int64, since time.Time) ([]TrackedEvent, error) {
	if len(deliveryIDs) == 0 {
		return nil, nil
	}
	ids, from := uniqueIDs(deliveryIDs), since.UTC().Truncate(time.Microsecond)
	var rows *sql.Rows
	if db.Dialect == Postgres {
		// A list of thousands of IDs lets the planner, on a young table whose
		// statistics are stale, scan every recent event (seconds a batch);
		// one index probe per delivery is what this wants. JIT would compile
		// the plan for longer than it runs.
		tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		if err != nil {
			return nil, fmt.Errorf("load recent engagement: %w", err)
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, `SET LOCAL jit = off`); err != nil {
			return nil, fmt.Errorf("load recent engagement: %w", err)
		}
		rows, err = tx.QueryContext(ctx, `SELECT e.id, e.delivery_id, e.contact_id, e.campaign_id, e.kind, e.link, e.human,
			e.reason, e.occurred_at, e.hit_id
			FROM unnest($1::bigint[]) AS d(id)
			CROSS JOIN LATERAL (SELECT * FROM events
				WHERE events.delivery_id = d.id AND kind IN ('opened', 'clicked') AND occurred_at >= $2) e
			ORDER BY e.occurred_at, e.id`, ids, from)
		if err != nil {
			return nil, fmt.Errorf("load recent engagement: %w", err)
		}
	} else {
		q, args, err := sqlx.In(`SELECT id, delivery_id, contact_id, campaign_id, kind, link, human, reason, occurred_at, hit_id
			FROM events WHERE delivery_id IN (?) AND kind IN ('opened', 'clicked') AND occurred_at >= ?
			ORDER BY occurred_at, id`, ids, from)
		if err != nil {
			return nil, err
		}
		if rows, err = db.QueryContext(ctx, db.rebind(q), args...); err != nil {
			return nil, fmt.Errorf("load recent engagement: %w", err)
		}
	}
	defer rows.Close()
	var out []TrackedEvent
	for rows.Next() {
		var (
			e              TrackedEvent
			delivery, camp sql.NullInt64
			kind           string
		)
		if err := rows.Scan(&e.ID, &delivery, &e.ContactID, &camp, &kind, &e.Link, &e.Human, &e.Reason, &e.OccurredAt, &e.HitID); err != nil {
			return nil, fmt.Errorf("load recent engagement: %w", err)
		}
		e.DeliveryID, e.CampaignID, e.Kind, e.OccurredAt = delivery.Int64, camp.Int64, campaign.EventKind(kind), e.OccurredAt.UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// OpenSummary tells, for one delivery, the ID of its latest human open
// and of its latest machine open (0 when it has none).
type OpenSummary struct {
	HumanOpen, MachineOpen int64
}

// OpenSummaries returns the OpenSummary of each given delivery that has
// opens.
func (db *DB) OpenSummaries(ctx context.Context, deliveryIDs []int64) (map[int64]OpenSummary, error) {
	out := map[int64]OpenSummary{}
	if len(deliveryIDs) == 0 {
		return out, nil
	}
	q, args, err := sqlx.In(`SELECT delivery_id,
		COALESCE(MAX(CASE WHEN human THEN id END), 0), COALESCE(MAX(CASE WHEN human THEN NULL ELSE id END), 0)
		FROM events WHERE delivery_id IN (?) AND kind = 'opened' GROUP BY delivery_id`, uniqueIDs(deliveryIDs))
	if err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, db.rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("summarize opens: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id int64
			s  OpenSummary
		)
		if err := rows.Scan(&id, &s.HumanOpen, &s.MachineOpen); err != nil {
			return nil, fmt.Errorf("summarize opens: %w", err)
		}
		out[id] = s
	}
	return out, rows.Err()
}

// Verdict is a changed judgment of a stored event.
type Verdict struct {
	ID     int64
	Human  bool
	Reason string
}

// trackedBatch keeps a multi-row INSERT of tracked events (11 columns)
// under both dialects' parameter limits.
const trackedBatch = 1000

// WriteTrackedEvents inserts events and applies verdicts in one
// transaction. An event whose HitID is already stored is skipped, so a
// replayed batch inserts nothing twice; it returns how many were
// inserted. Events must be valid (campaign.Event.Validate).
func (db *DB) WriteTrackedEvents(ctx context.Context, events []TrackedEvent, verdicts []Verdict) (int64, error) {
	var inserted int64
	err := db.withTx(ctx, func(tx *sqlxTx) error {
		for start := 0; start < len(events); start += trackedBatch {
			n, err := insertTracked(ctx, tx, db, events[start:min(start+trackedBatch, len(events))])
			if err != nil {
				return fmt.Errorf("insert tracked events: %w", err)
			}
			inserted += n
		}
		return updateVerdicts(ctx, tx, db, verdicts)
	})
	return inserted, err
}

func insertTracked(ctx context.Context, tx *sqlxTx, db *DB, batch []TrackedEvent) (int64, error) {
	var b strings.Builder
	b.WriteString(`INSERT INTO events (delivery_id, contact_id, campaign_id, kind, link, human, reason, ip, user_agent, occurred_at, hit_id) VALUES `)
	args := make([]any, 0, len(batch)*11)
	for i, e := range batch {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
		args = append(args, nullID(e.DeliveryID), e.ContactID, nullID(e.CampaignID), string(e.Kind),
			e.Link, e.Human, e.Reason, e.IP, e.UserAgent, e.OccurredAt.UTC().Truncate(time.Microsecond), e.HitID)
	}
	b.WriteString(` ON CONFLICT (hit_id) DO NOTHING`)
	res, err := tx.ExecContext(ctx, db.rebind(b.String()), args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// updateVerdicts writes verdicts with one UPDATE per distinct judgment.
func updateVerdicts(ctx context.Context, tx *sqlxTx, db *DB, verdicts []Verdict) error {
	type judgment struct {
		human  bool
		reason string
	}
	groups := map[judgment][]int64{}
	for _, v := range verdicts {
		j := judgment{v.Human, v.Reason}
		groups[j] = append(groups[j], v.ID)
	}
	for j, ids := range groups {
		q, args, err := sqlx.In(`UPDATE events SET human = ?, reason = ? WHERE id IN (?)`, j.human, j.reason, ids)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, db.rebind(q), args...); err != nil {
			return fmt.Errorf("update verdicts: %w", err)
		}
	}
	return nil
}

// Unsubscribe sets an active contact's status to unsubscribed, at once,
// in one statement. It reports whether the status changed: false for a
// contact already unsubscribed, bounced or complained. A contact that
// does not exist is an ENOTFOUND error.
func (db *DB) Unsubscribe(ctx context.Context, contactID int64) (bool, error) {
	res, err := db.ExecContext(ctx, db.rebind(`UPDATE contacts SET status = 'unsubscribed', updated_at = ? WHERE id = ? AND status = 'active'`),
		db.now(), contactID)
	if err != nil {
		return false, fmt.Errorf("unsubscribe contact %d: %w", contactID, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return true, nil
	}
	var one int
	err = db.GetContext(ctx, &one, db.rebind(`SELECT 1 FROM contacts WHERE id = ?`), contactID)
	if err != nil {
		return false, notFound(err, "contact %d not found", contactID)
	}
	return false, nil
}
