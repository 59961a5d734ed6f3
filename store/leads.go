package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/funnel-email/funnel/campaign"
)

const leadSelect = `SELECT l.id, l.contact_id, c.email, c.first_name, c.last_name, l.status, l.reason, l.owner_user_id,
	l.score_at_creation, l.score, l.campaign_id, l.created_at, l.updated_at
	FROM leads l JOIN contacts c ON c.id = l.contact_id`

func scanLead(sc interface{ Scan(...any) error }) (*campaign.Lead, error) {
	var l campaign.Lead
	var owner, camp sql.NullInt64
	err := sc.Scan(&l.ID, &l.ContactID, &l.Email, &l.FirstName, &l.LastName, &l.Status, &l.Reason, &owner,
		&l.ScoreAtCreation, &l.Score, &camp, &l.CreatedAt, &l.UpdatedAt)
	if err != nil {
		return nil, err
	}
	l.OwnerID, l.CampaignID = owner.Int64, camp.Int64
	l.CreatedAt, l.UpdatedAt = l.CreatedAt.UTC(), l.UpdatedAt.UTC()
	return &l, nil
}

func findLead(ctx context.Context, db *DB, q queryer, id int64) (*campaign.Lead, error) {
	l, err := scanLead(q.QueryRowContext(ctx, db.rebind(leadSelect+` WHERE l.id = ?`), id))
	if err != nil {
		return nil, notFound(err, "lead %d not found", id)
	}
	return l, nil
}

// FindLead returns a lead, or ENOTFOUND.
func (db *DB) FindLead(ctx context.Context, id int64) (*campaign.Lead, error) {
	return findLead(ctx, db, db.DB, id)
}

// ListLeads returns leads matching f in f.Sort's order (LeadSorts: by
// default highest score first, then lowest ID), at most f.Limit of them.
// An unknown sort is EINVALID.
func (db *DB) ListLeads(ctx context.Context, f campaign.LeadFilter) ([]*campaign.Lead, error) {
	var afterScore any
	if f.AfterScore != nil {
		afterScore = *f.AfterScore
	}
	// leads.score is the contact's score, copied by writeScoreState, so
	// that a page is read from the leads_score indexes.
	page, args, order, err := LeadSorts.keyset(f.Sort, "l.id", f.AfterID, afterScore)
	if err != nil {
		return nil, err
	}
	where := []string{page}
	if f.Status != "" {
		where, args = append(where, "l.status = ?"), append(args, f.Status)
	}
	if f.OwnerID != 0 {
		where, args = append(where, "l.owner_user_id = ?"), append(args, f.OwnerID)
	}
	if f.MinScore != 0 {
		where, args = append(where, "l.score >= ?"), append(args, f.MinScore)
	}
	if !f.Since.IsZero() {
		where, args = append(where, "l.created_at >= ?"), append(args, f.Since.UTC())
	}
	if f.CampaignID != 0 {
		where, args = append(where, "l.campaign_id = ?"), append(args, f.CampaignID)
	}
	if f.Limit <= 0 {
		f.Limit = 50
	}
	q := leadSelect + whereClause(where...) + " ORDER BY " + order + " LIMIT ?"
	args = append(args, f.Limit)
	rows, err := db.QueryContext(ctx, db.rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("list leads: %w", err)
	}
	defer rows.Close()
	out := []*campaign.Lead{}
	for rows.Next() {
		l, err := scanLead(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// UpdateLead applies a validated patch as userID (0 for none). A status
// change must be allowed from the stored status (ECONFLICT otherwise);
// setting the status it already has is allowed and changes only the
// reason and owner. The contact's lifecycle stage follows the status, the
// change is recorded, and lead.updated is queued for the webhooks, all in
// one transaction. An owner must be an enabled user (EINVALID).
func (db *DB) UpdateLead(ctx context.Context, id int64, p campaign.LeadPatch, userID int64) (*campaign.Lead, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	var out *campaign.Lead
	err := db.withTx(ctx, func(tx *sqlxTx) error {
		q := `SELECT l.status, l.contact_id, c.lifecycle_stage FROM leads l JOIN contacts c ON c.id = l.contact_id WHERE l.id = ?`
		if db.Dialect == Postgres {
			q += ` FOR UPDATE OF l`
		}
		var cur campaign.LeadStatus
		var contactID int64
		var stage campaign.LifecycleStage
		if err := tx.QueryRowContext(ctx, db.rebind(q), id).Scan(&cur, &contactID, &stage); err != nil {
			return notFound(err, "lead %d not found", id)
		}
		next := cur
		if p.Status != nil {
			next = *p.Status
		}
		if next != cur && !slices.Contains(campaign.LeadFrom(next), cur) {
			return campaign.Errorf(campaign.ECONFLICT, "lead %d is %s and cannot become %s", id, cur, next)
		}
		if p.OwnerID != nil && *p.OwnerID != 0 {
			var n int
			err := tx.QueryRowContext(ctx, db.rebind(`SELECT COUNT(*) FROM users WHERE id = ? AND disabled_at IS NULL`), *p.OwnerID).Scan(&n)
			if err != nil {
				return err
			}
			if n == 0 {
				return campaign.Invalid("invalid lead change", campaign.FieldError{Field: "owner_user_id", Message: fmt.Sprintf("user %d does not exist or is disabled", *p.OwnerID)})
			}
		}
		if err := db.writeLeadPatch(ctx, tx, id, cur, next, p); err != nil {
			return err
		}
		now := db.now()
		if next != cur {
			if to, reason := next.Stage(); to != "" {
				if p.Reason != nil && *p.Reason != "" {
					reason += ": " + *p.Reason
				}
				if err := changeStage(ctx, db, tx, contactID, stage, to, reason, id, userID, now); err != nil {
					return err
				}
			}
		}
		var err error
		if out, err = findLead(ctx, db, tx, id); err != nil {
			return err
		}
		hooks, err := activeWebhooks(ctx, tx)
		if err != nil {
			return err
		}
		return queueWebhooks(ctx, db, tx, hooks, campaign.WebhookLeadUpdated, map[string]any{"lead": out, "previous_status": cur}, now)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// writeLeadPatch writes the patch, guarded by the status it was checked
// against.
func (db *DB) writeLeadPatch(ctx context.Context, tx *sqlxTx, id int64, cur, next campaign.LeadStatus, p campaign.LeadPatch) error {
	now := db.now()
	sets := []string{"status = ?", "updated_at = ?"}
	args := []any{next, now}
	if p.Reason != nil {
		sets, args = append(sets, "reason = ?"), append(args, *p.Reason)
	} else if next != cur {
		sets = append(sets, "reason = ''")
	}
	if p.OwnerID != nil {
		sets, args = append(sets, "owner_user_id = ?"), append(args, nullID(*p.OwnerID))
	}
	if next == campaign.LeadAccepted && next != cur {
		sets, args = append(sets, "accepted_at = COALESCE(accepted_at, ?)"), append(args, now)
	}
	args = append(args, id, cur)
	res, err := tx.ExecContext(ctx, db.rebind(`UPDATE leads SET `+strings.Join(sets, ", ")+` WHERE id = ? AND status = ?`), args...)
	if err != nil {
		return fmt.Errorf("update lead %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return campaign.Errorf(campaign.ECONFLICT, "lead %d changed meanwhile; try again", id)
	}
	return nil
}

// FindLeadDetail returns a lead with its contact, score ledger, recent
// human events (at most 50), the campaigns it engaged with and the links
// it clicked, and the contact's stage history.
func (db *DB) FindLeadDetail(ctx context.Context, id int64) (*campaign.LeadDetail, error) {
	l, err := db.FindLead(ctx, id)
	if err != nil {
		return nil, err
	}
	d := &campaign.LeadDetail{Lead: *l}
	if d.Contact, err = db.FindContact(ctx, l.ContactID); err != nil {
		return nil, err
	}
	if d.Ledger, err = db.ScoreLedger(ctx, l.ContactID); err != nil {
		return nil, err
	}
	if d.Stages, err = db.StageHistory(ctx, l.ContactID); err != nil {
		return nil, err
	}
	if d.Events, err = db.recentHumanEvents(ctx, l.ContactID, 50); err != nil {
		return nil, err
	}
	if d.Campaigns, err = db.campaignClicks(ctx, l.ContactID); err != nil {
		return nil, err
	}
	return d, nil
}

func (db *DB) recentHumanEvents(ctx context.Context, contactID int64, limit int) ([]campaign.Event, error) {
	rows, err := db.QueryContext(ctx, db.rebind(`SELECT id, delivery_id, contact_id, campaign_id, kind, link, human, reason, occurred_at
		FROM events WHERE contact_id = ? AND human AND kind IN ('opened', 'clicked') ORDER BY occurred_at DESC, id DESC LIMIT ?`), contactID, limit)
	if err != nil {
		return nil, fmt.Errorf("list events of contact %d: %w", contactID, err)
	}
	defer rows.Close()
	out := []campaign.Event{}
	for rows.Next() {
		var e campaign.Event
		var del, camp sql.NullInt64
		if err := rows.Scan(&e.ID, &del, &e.ContactID, &camp, &e.Kind, &e.Link, &e.Human, &e.Reason, &e.OccurredAt); err != nil {
			return nil, err
		}
		e.DeliveryID, e.CampaignID, e.OccurredAt = del.Int64, camp.Int64, e.OccurredAt.UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

func (db *DB) campaignClicks(ctx context.Context, contactID int64) ([]campaign.CampaignClicks, error) {
	rows, err := db.QueryContext(ctx, db.rebind(`SELECT e.campaign_id, COALESCE(c.name, ''), e.kind, e.link
		FROM events e LEFT JOIN campaigns c ON c.id = e.campaign_id
		WHERE e.contact_id = ? AND e.human AND e.kind IN ('opened', 'clicked') AND e.campaign_id IS NOT NULL
		ORDER BY e.campaign_id, e.id`), contactID)
	if err != nil {
		return nil, fmt.Errorf("list campaigns of contact %d: %w", contactID, err)
	}
	defer rows.Close()
	out := []campaign.CampaignClicks{}
	for rows.Next() {
		var id int64
		var name, link string
		var kind campaign.EventKind
		if err := rows.Scan(&id, &name, &kind, &link); err != nil {
			return nil, err
		}
		if len(out) == 0 || out[len(out)-1].CampaignID != id {
			out = append(out, campaign.CampaignClicks{CampaignID: id, Name: name, Links: []string{}})
		}
		cc := &out[len(out)-1]
		if kind == campaign.EventOpened {
			cc.Opens++
		} else if !slices.Contains(cc.Links, link) {
			cc.Links = append(cc.Links, link)
		}
	}
	return out, rows.Err()
}

// CampaignLeads counts the leads a campaign produced and what sales made
// of them. An unknown campaign is ENOTFOUND.
func (db *DB) CampaignLeads(ctx context.Context, campaignID int64) (*campaign.LeadSummary, error) {
	var n int
	if err := db.QueryRowContext(ctx, db.rebind(`SELECT COUNT(*) FROM campaigns WHERE id = ?`), campaignID).Scan(&n); err != nil {
		return nil, fmt.Errorf("find campaign %d: %w", campaignID, err)
	}
	if n == 0 {
		return nil, campaign.Errorf(campaign.ENOTFOUND, "campaign %d not found", campaignID)
	}
	s := &campaign.LeadSummary{CampaignID: campaignID}
	err := db.QueryRowContext(ctx, db.rebind(`SELECT COUNT(*), COUNT(accepted_at),
		COALESCE(SUM(CASE WHEN status = 'rejected' THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN status = 'won' THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN status = 'lost' THEN 1 ELSE 0 END), 0)
		FROM leads WHERE campaign_id = ?`), campaignID).Scan(&s.Created, &s.Accepted, &s.Rejected, &s.Won, &s.Lost)
	if err != nil {
		return nil, fmt.Errorf("count leads of campaign %d: %w", campaignID, err)
	}
	return s, nil
}

// EngagedContacts returns contacts with human opens or clicks matching f
// (campaign, since, minimum score), in contact ID order (f.Sort, one of
// EngagedSorts) after f.AfterID. An unknown sort is EINVALID.
func (db *DB) EngagedContacts(ctx context.Context, f campaign.EngagedFilter) ([]campaign.EngagedContact, error) {
	cond, pageArgs, order, err := EngagedSorts.keyset(f.Sort, "c.id", f.AfterID, nil)
	if err != nil {
		return nil, err
	}
	events := []string{"e.human", "e.kind IN ('opened', 'clicked')"}
	var eventArgs []any
	if f.CampaignID != 0 {
		events, eventArgs = append(events, "e.campaign_id = ?"), append(eventArgs, f.CampaignID)
	}
	if !f.Since.IsZero() {
		events, eventArgs = append(events, "e.occurred_at >= ?"), append(eventArgs, f.Since.UTC())
	}
	if f.AfterID > 0 {
		// The same bound on the events' contact: PostgreSQL merges the
		// events in contact order with the contacts, and without it walked
		// events_contact_kind_time from its end to the cursor (235 ms for
		// a page past 500,000 contacts of 1,000,000; 0.5 ms with it).
		eventCond, condArgs, _, _ := EngagedSorts.keyset(f.Sort, "e.contact_id", f.AfterID, nil)
		events, eventArgs = append(events, eventCond), append(eventArgs, condArgs...)
	}
	if f.Limit <= 0 {
		f.Limit = 50
	}
	page := []string{cond}
	if f.MinScore != 0 {
		page, pageArgs = append(page, "c.score >= ?"), append(pageArgs, f.MinScore)
	}
	if db.Dialect == SQLite {
		// SQLite grouped every human event before it could page (0.9 s
		// over 1,300,000 events). The page's contacts are found first,
		// walking contacts in ID order with one probe of
		// events_contact_kind_time each, then only their events are
		// counted.
		ids, err := db.engagedPage(ctx, page, pageArgs, events, eventArgs, order, f.Limit)
		if err != nil || len(ids) == 0 {
			return []campaign.EngagedContact{}, err
		}
		in, inArgs, err := sqlx.In("c.id IN (?)", ids)
		if err != nil {
			return nil, err
		}
		page, pageArgs = []string{in}, inArgs
	}
	args := append(append(eventArgs, pageArgs...), f.Limit)
	rows, err := db.QueryContext(ctx, db.rebind(`SELECT c.id, c.email, c.first_name, c.last_name, c.score, c.lifecycle_stage,
		SUM(CASE WHEN e.kind = 'opened' THEN 1 ELSE 0 END), SUM(CASE WHEN e.kind = 'clicked' THEN 1 ELSE 0 END), MAX(e.occurred_at)
		FROM events e JOIN contacts c ON c.id = e.contact_id`+whereClause(append(events, page...)...)+`
		GROUP BY c.id, c.email, c.first_name, c.last_name, c.score, c.lifecycle_stage
		ORDER BY `+order+` LIMIT ?`), args...)
	if err != nil {
		return nil, fmt.Errorf("list engaged contacts: %w", err)
	}
	defer rows.Close()
	out := []campaign.EngagedContact{}
	for rows.Next() {
		var e campaign.EngagedContact
		var last any
		if err := rows.Scan(&e.ContactID, &e.Email, &e.FirstName, &e.LastName, &e.Score, &e.Stage, &e.Opens, &e.Clicks, &last); err != nil {
			return nil, err
		}
		if e.LastActivity, err = anyTime(last); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// engagedPage returns the IDs of the first limit contacts in order that
// match page and have an event that matches events.
func (db *DB) engagedPage(ctx context.Context, page []string, pageArgs []any, events []string, eventArgs []any, order string, limit int) ([]int64, error) {
	args := append(append(append([]any{}, pageArgs...), eventArgs...), limit)
	var ids []int64
	hasEvent := `EXISTS (SELECT 1 FROM events e WHERE e.contact_id = c.id AND ` + strings.Join(events, " AND ") + `)`
	err := db.SelectContext(ctx, &ids, db.rebind(`SELECT c.id FROM contacts c`+whereClause(append(page, hasEvent)...)+`
		ORDER BY `+order+` LIMIT ?`), args...)
	if err != nil {
		return nil, fmt.Errorf("list engaged contacts: %w", err)
	}
	return ids, nil
}

// anyTime reads a time that an aggregate returned: SQLite gives its text.
func anyTime(v any) (time.Time, error) {
	switch t := v.(type) {
	case time.Time:
		return t.UTC(), nil
	case string:
		return parseSQLiteTime(t)
	case []byte:
		return parseSQLiteTime(string(t))
	case nil:
		return time.Time{}, nil
	}
	return time.Time{}, fmt.Errorf("unexpected time value %T", v)
}

func parseSQLiteTime(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02 15:04:05.999999999-07:00", "2006-01-02 15:04:05.999999999Z07:00", time.RFC3339Nano, "2006-01-02 15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, errors.New("unreadable time " + s)
}

// CountLeadsSince counts the leads created at or after since, all of them.
func (db *DB) CountLeadsSince(ctx context.Context, since time.Time) (int64, error) {
	var n int64
	if err := db.GetContext(ctx, &n, db.rebind(`SELECT count(*) FROM leads WHERE created_at >= ?`), since.UTC()); err != nil {
		return 0, fmt.Errorf("count leads since %s: %w", since.Format(time.RFC3339), err)
	}
	return n, nil
}
