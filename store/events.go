package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/funnel-email/funnel/campaign"
)

// eventBatch keeps a multi-row INSERT of events (10 columns) well under
// both dialects' parameter limits.
const eventBatch = 500

// InsertEvents validates and stores events in batches, all in one
// transaction: either every event is stored or none is. Event IDs are not
// filled in. A DeliveryID or CampaignID of 0 is stored as NULL; times are
// stored in UTC with microsecond precision. An invalid event is an
// EINVALID error whose fields are prefixed with its index ("events[3].kind").
func (db *DB) InsertEvents(ctx context.Context, events []campaign.Event) error {
	for i := range events {
		if err := events[i].Validate(); err != nil {
			e := err.(*campaign.Error)
			for j := range e.Details {
				e.Details[j].Field = fmt.Sprintf("events[%d].%s", i, e.Details[j].Field)
			}
			return e
		}
	}
	return db.withTx(ctx, func(tx *sqlxTx) error {
		for start := 0; start < len(events); start += eventBatch {
			batch := events[start:min(start+eventBatch, len(events))]
			if err := insertEventBatch(ctx, tx, db, batch); err != nil {
				return fmt.Errorf("insert events: %w", err)
			}
		}
		return nil
	})
}

func insertEventBatch(ctx context.Context, tx *sqlxTx, db *DB, batch []campaign.Event) error {
	rows := make([]string, len(batch))
	args := make([]any, 0, len(batch)*10)
	for i, e := range batch {
		rows[i] = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
		args = append(args, nullID(e.DeliveryID), e.ContactID, nullID(e.CampaignID), string(e.Kind),
			e.Link, e.Human, e.Reason, e.IP, e.UserAgent, e.OccurredAt.UTC().Truncate(time.Microsecond))
	}
	q := `INSERT INTO events (delivery_id, contact_id, campaign_id, kind, link, human, reason, ip, user_agent, occurred_at)
		VALUES ` + strings.Join(rows, ", ")
	_, err := tx.ExecContext(ctx, db.rebind(q), args...)
	return err
}

// nullID stores the zero ID as NULL.
func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// eventRow is an events row as both dialects return it.
type eventRow struct {
	ID         int64     `db:"id"`
	DeliveryID *int64    `db:"delivery_id"`
	ContactID  int64     `db:"contact_id"`
	CampaignID *int64    `db:"campaign_id"`
	Kind       string    `db:"kind"`
	Link       string    `db:"link"`
	Human      bool      `db:"human"`
	Reason     string    `db:"reason"`
	IP         string    `db:"ip"`
	UserAgent  string    `db:"user_agent"`
	OccurredAt time.Time `db:"occurred_at"`
}

// ContactEvents returns the events of one contact, oldest first.
func (db *DB) ContactEvents(ctx context.Context, contactID int64) ([]campaign.Event, error) {
	var rows []eventRow
	q := db.rebind(`SELECT id, delivery_id, contact_id, campaign_id, kind, link, human, reason, ip,
		user_agent, occurred_at FROM events WHERE contact_id = ? ORDER BY occurred_at, id`)
	if err := db.SelectContext(ctx, &rows, q, contactID); err != nil {
		return nil, fmt.Errorf("list events of contact %d: %w", contactID, err)
	}
	out := make([]campaign.Event, len(rows))
	for i, r := range rows {
		out[i] = campaign.Event{
			ID: r.ID, DeliveryID: deref(r.DeliveryID), ContactID: r.ContactID, CampaignID: deref(r.CampaignID),
			Kind: campaign.EventKind(r.Kind), Link: r.Link, Human: r.Human, Reason: r.Reason, IP: r.IP,
			UserAgent: r.UserAgent, OccurredAt: r.OccurredAt.UTC(),
		}
	}
	return out, nil
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}
