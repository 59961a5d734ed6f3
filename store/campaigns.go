package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/funnel-email/funnel/campaign"
)

const campaignColumns = `id, name, template_id, segment_ids, exclude_segment_ids, from_name, from_email, reply_to,
	send_at, rate, resend_uncertain, smtp_pool, status, schedule_version, audience_size, failure, created_at, updated_at,
	started_at, finished_at`

// campaignRow is a campaigns row as both dialects return it.
type campaignRow struct {
	ID                int64      `db:"id"`
	Name              string     `db:"name"`
	TemplateID        int64      `db:"template_id"`
	SegmentIDs        []byte     `db:"segment_ids"`
	ExcludeSegmentIDs []byte     `db:"exclude_segment_ids"`
	FromName          string     `db:"from_name"`
	FromEmail         string     `db:"from_email"`
	ReplyTo           string     `db:"reply_to"`
	SendAt            *time.Time `db:"send_at"`
	Rate              float64    `db:"rate"`
	ResendUncertain   bool       `db:"resend_uncertain"`
	SMTPPool          string     `db:"smtp_pool"`
	Status            string     `db:"status"`
	ScheduleVersion   int64      `db:"schedule_version"`
	AudienceSize      *int64     `db:"audience_size"`
	Failure           string     `db:"failure"`
	CreatedAt         time.Time  `db:"created_at"`
	UpdatedAt         time.Time  `db:"updated_at"`
	StartedAt         *time.Time `db:"started_at"`
	FinishedAt        *time.Time `db:"finished_at"`
}

func (r *campaignRow) campaign() (*campaign.Campaign, error) {
	c := &campaign.Campaign{
		ID: r.ID, Name: r.Name, TemplateID: r.TemplateID, FromName: r.FromName, FromEmail: r.FromEmail,
		ReplyTo: r.ReplyTo, SendAt: utcPtr(r.SendAt), Rate: r.Rate, ResendUncertain: r.ResendUncertain, SMTPPool: r.SMTPPool,
		Status: campaign.Status(r.Status), ScheduleVersion: r.ScheduleVersion, AudienceSize: r.AudienceSize,
		Failure: r.Failure, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
		StartedAt: utcPtr(r.StartedAt), FinishedAt: utcPtr(r.FinishedAt),
	}
	if err := json.Unmarshal(r.SegmentIDs, &c.SegmentIDs); err != nil {
		return nil, fmt.Errorf("decode segment_ids of campaign %d: %w", r.ID, err)
	}
	if err := json.Unmarshal(r.ExcludeSegmentIDs, &c.ExcludeSegmentIDs); err != nil {
		return nil, fmt.Errorf("decode exclude_segment_ids of campaign %d: %w", r.ID, err)
	}
	return c, nil
}

func ids(v []int64) []int64 {
	if v == nil {
		return []int64{}
	}
	return v
}

// checkCampaignRefs returns EINVALID when the template or a segment c names
// does not exist, so that a campaign never points at nothing.
func (db *DB) checkCampaignRefs(ctx context.Context, c *campaign.Campaign) error {
	if _, err := db.FindTemplate(ctx, c.TemplateID); err != nil {
		if campaign.ErrorCode(err) == campaign.ENOTFOUND {
			return campaign.Invalid("invalid campaign", campaign.FieldError{Field: "template_id", Message: err.Error()})
		}
		return err
	}
	for i, id := range append(append([]int64{}, c.SegmentIDs...), c.ExcludeSegmentIDs...) {
		if _, err := db.FindSegment(ctx, id); err != nil {
			if campaign.ErrorCode(err) == campaign.ENOTFOUND {
				return campaign.Invalid("invalid campaign", campaign.FieldError{Field: fmt.Sprintf("segment_ids[%d]", i), Message: err.Error()})
			}
			return err
		}
	}
	return nil
}

// CreateCampaign validates c and inserts it as a draft, filling its ID,
// status and times. A template or segment that does not exist is EINVALID.
func (db *DB) CreateCampaign(ctx context.Context, c *campaign.Campaign) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if err := db.checkCampaignRefs(ctx, c); err != nil {
		return err
	}
	now := db.now()
	c.Status, c.CreatedAt, c.UpdatedAt, c.ScheduleVersion = campaign.StatusDraft, now, now, 0
	c.SendAt, c.StartedAt, c.FinishedAt, c.AudienceSize, c.Failure = nil, nil, nil, nil, ""
	// The answer must be what a later read returns: empty lists, not nil.
	c.SegmentIDs, c.ExcludeSegmentIDs = ids(c.SegmentIDs), ids(c.ExcludeSegmentIDs)
	err := db.QueryRowxContext(ctx, db.rebind(`INSERT INTO campaigns (name, template_id, segment_ids, exclude_segment_ids,
		from_name, from_email, reply_to, rate, resend_uncertain, smtp_pool, status, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'draft', ?, ?) RETURNING id`),
		c.Name, c.TemplateID, jsonText(c.SegmentIDs), jsonText(c.ExcludeSegmentIDs), c.FromName, c.FromEmail,
		c.ReplyTo, c.Rate, c.ResendUncertain, c.SMTPPool, now, now).Scan(&c.ID)
	if err != nil {
		return fmt.Errorf("insert campaign: %w", err)
	}
	return nil
}

// FindCampaign returns the campaign with the given ID, or ENOTFOUND.
func (db *DB) FindCampaign(ctx context.Context, id int64) (*campaign.Campaign, error) {
	var r campaignRow
	err := db.GetContext(ctx, &r, db.rebind(`SELECT `+campaignColumns+` FROM campaigns WHERE id = ?`), id)
	if err != nil {
		return nil, notFound(err, "campaign %d not found", id)
	}
	return r.campaign()
}

// CampaignStatus returns only the status of campaign id (ENOTFOUND when it
// does not exist): the cheap read that senders poll to honour a pause.
func (db *DB) CampaignStatus(ctx context.Context, id int64) (campaign.Status, error) {
	var s string
	err := db.GetContext(ctx, &s, db.rebind(`SELECT status FROM campaigns WHERE id = ?`), id)
	if err != nil {
		return "", notFound(err, "campaign %d not found", id)
	}
	return campaign.Status(s), nil
}

// ListCampaigns returns campaigns in ID order after the cursor; with
// statuses, only campaigns in one of them.
func (db *DB) ListCampaigns(ctx context.Context, after int64, limit int, statuses ...campaign.Status) ([]*campaign.Campaign, error) {
	return db.ListCampaignsPage(ctx, Page{After: after, Limit: limit}, statuses...)
}

// ListCampaignsPage returns a page of campaigns in the order of
// CampaignSorts; with statuses, only campaigns in one of them. An unknown
// sort is EINVALID. Campaigns are few, so every order is cheap.
func (db *DB) ListCampaignsPage(ctx context.Context, p Page, statuses ...campaign.Status) ([]*campaign.Campaign, error) {
	cond, args, order, err := CampaignSorts.keyset(p.Sort, "id", p.After, p.AfterValue)
	if err != nil {
		return nil, err
	}
	var inStatus string
	if len(statuses) > 0 {
		inStatus = `status IN (` + placeholders(len(statuses)) + `)`
		for _, s := range statuses {
			args = append(args, string(s))
		}
	}
	q := `SELECT ` + campaignColumns + ` FROM campaigns` + whereClause(cond, inStatus) + ` ORDER BY ` + order + ` LIMIT ?`
	var rows []campaignRow
	if err := db.SelectContext(ctx, &rows, db.rebind(q), append(args, p.limit())...); err != nil {
		return nil, fmt.Errorf("list campaigns: %w", err)
	}
	return campaignsOf(rows)
}

// campaignsOf turns scanned rows into campaigns.
func campaignsOf(rows []campaignRow) ([]*campaign.Campaign, error) {
	out := make([]*campaign.Campaign, 0, len(rows))
	for i := range rows {
		c, err := rows[i].campaign()
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func placeholders(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }

// UpdateCampaign replaces the editable fields of campaign c.ID whatever
// its version (the last write wins); see UpdateCampaignIf.
func (db *DB) UpdateCampaign(ctx context.Context, c *campaign.Campaign) error {
	return db.UpdateCampaignIf(ctx, c, time.Time{})
}

// UpdateCampaignIf replaces the editable fields of campaign c.ID, but only
// while its version (updated_at) is still version (a zero version skips
// that check: ESTALE otherwise) and it is a draft or scheduled (ECONFLICT
// otherwise, naming the status); both checks are part of the UPDATE.
// Status and schedule are not changed here: see ScheduleCampaign. On
// success c holds the stored campaign with its new version.
func (db *DB) UpdateCampaignIf(ctx context.Context, c *campaign.Campaign, version time.Time) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if err := db.checkCampaignRefs(ctx, c); err != nil {
		return err
	}
	var r campaignRow
	err := db.withTx(ctx, func(tx *sqlxTx) error {
		cur, next, err := db.lockVersion(ctx, tx, "campaigns", "campaign", c.ID, version)
		if err != nil {
			return err
		}
		err = tx.GetContext(ctx, &r, db.rebind(`UPDATE campaigns SET name = ?, template_id = ?, segment_ids = ?,
			exclude_segment_ids = ?, from_name = ?, from_email = ?, reply_to = ?, rate = ?, resend_uncertain = ?, smtp_pool = ?, updated_at = ?
			WHERE id = ? AND updated_at = ? AND status IN ('draft', 'scheduled') RETURNING `+campaignColumns),
			c.Name, c.TemplateID, jsonText(ids(c.SegmentIDs)), jsonText(ids(c.ExcludeSegmentIDs)), c.FromName, c.FromEmail,
			c.ReplyTo, c.Rate, c.ResendUncertain, c.SMTPPool, next, c.ID, cur)
		if errors.Is(err, sql.ErrNoRows) {
			// The row is locked at version cur: only its status can refuse.
			var status string
			if err := tx.GetContext(ctx, &status, db.rebind(`SELECT status FROM campaigns WHERE id = ?`), c.ID); err != nil {
				return fmt.Errorf("read status of campaign %d: %w", c.ID, err)
			}
			return campaign.Errorf(campaign.ECONFLICT, "cannot edit campaign %d: it is %s", c.ID, status)
		}
		if err != nil {
			return fmt.Errorf("update campaign %d: %w", c.ID, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	got, err := r.campaign()
	if err != nil {
		return err
	}
	*c = *got
	return nil
}

// DeleteCampaign removes a draft, cancelled or failed campaign and its
// ledger. Others are ECONFLICT; a missing one ENOTFOUND.
func (db *DB) DeleteCampaign(ctx context.Context, id int64) error {
	res, err := db.ExecContext(ctx, db.rebind(`DELETE FROM campaigns WHERE id = ? AND status IN ('draft', 'cancelled', 'failed')`), id)
	if err != nil {
		return fmt.Errorf("delete campaign %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return db.transitionConflict(ctx, id, "delete")
	}
	return nil
}

// transitionConflict explains why a conditional UPDATE of campaign id
// matched nothing: ENOTFOUND, or ECONFLICT naming the current status.
func (db *DB) transitionConflict(ctx context.Context, id int64, action string) error {
	s, err := db.CampaignStatus(ctx, id)
	if err != nil {
		return err
	}
	return campaign.Errorf(campaign.ECONFLICT, "cannot %s campaign %d: it is %s", action, id, s)
}

// transition runs one conditional UPDATE that moves campaign id along t
// and sets the extra assignments; extraWhere narrows it further. Zero rows
// is ENOTFOUND or ECONFLICT with the current status.
func (db *DB) transition(ctx context.Context, id int64, t campaign.Transition, set string, setArgs []any, extraWhere string, whereArgs ...any) (*campaign.Campaign, error) {
	args := append([]any{string(t.To), db.now()}, setArgs...)
	args = append(args, id)
	for _, s := range t.From {
		args = append(args, string(s))
	}
	args = append(args, whereArgs...)
	if set != "" {
		set = ", " + set
	}
	q := `UPDATE campaigns SET status = ?, updated_at = ?` + set + ` WHERE id = ? AND status IN (` + placeholders(len(t.From)) + `)` +
		extraWhere + ` RETURNING ` + campaignColumns
	var r campaignRow
	err := db.GetContext(ctx, &r, db.rebind(q), args...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, db.transitionConflict(ctx, id, t.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("%s campaign %d: %w", t.Name, id, err)
	}
	return r.campaign()
}

// ScheduleCampaign schedules a draft (or reschedules a scheduled)
// campaign to start at sendAt, and bumps its schedule version so that
// start tasks of any earlier schedule recognise themselves as stale.
func (db *DB) ScheduleCampaign(ctx context.Context, id int64, sendAt time.Time) (*campaign.Campaign, error) {
	return db.transition(ctx, id, campaign.Schedule, `send_at = ?, schedule_version = schedule_version + 1`,
		[]any{sendAt.UTC().Truncate(time.Microsecond)}, "")
}

// StartCampaign moves a scheduled campaign to sending, but only when its
// schedule version is still version: a stale start task gets ECONFLICT.
func (db *DB) StartCampaign(ctx context.Context, id, version int64) (*campaign.Campaign, error) {
	return db.transition(ctx, id, campaign.Start, `started_at = ?`, []any{db.now()}, ` AND schedule_version = ?`, version)
}

// TransitionCampaign applies Pause, Resume or Cancel (or any transition
// that needs no extra data) in one UPDATE. Cancel also skips the pending
// deliveries that no worker holds, so that none of them is sent later.
func (db *DB) TransitionCampaign(ctx context.Context, id int64, t campaign.Transition) (*campaign.Campaign, error) {
	switch t.Name {
	case campaign.Cancel.Name, campaign.Fail.Name:
		c, err := db.transition(ctx, id, t, `finished_at = ?`, []any{db.now()}, "")
		if err != nil {
			return nil, err
		}
		return c, db.skipPending(ctx, c)
	case campaign.Complete.Name:
		return db.CompleteCampaign(ctx, id)
	}
	return db.transition(ctx, id, t, "", nil, "")
}

// CompleteCampaign marks a sending campaign sent, but only when its
// audience is materialized and no delivery is pending any more; otherwise
// ECONFLICT. It then records the "sent" events that are still missing.
func (db *DB) CompleteCampaign(ctx context.Context, id int64) (*campaign.Campaign, error) {
	c, err := db.transition(ctx, id, campaign.Complete, `finished_at = ?`, []any{db.now()},
		` AND audience_size IS NOT NULL AND NOT EXISTS (SELECT 1 FROM deliveries
			WHERE campaign_id = campaigns.id AND status IN ('queued', 'deferred', 'sending'))`)
	if err != nil {
		return nil, err
	}
	return c, db.InsertMissingSentEvents(ctx, id)
}

// FailCampaign marks a scheduled or sending campaign failed with reason
// (for example its template no longer compiles) and skips its pending
// deliveries, as Cancel does.
func (db *DB) FailCampaign(ctx context.Context, id int64, reason string) (*campaign.Campaign, error) {
	c, err := db.transition(ctx, id, campaign.Fail, `failure = ?, finished_at = ?`, []any{reason, db.now()}, "")
	if err != nil {
		return nil, err
	}
	return c, db.skipPending(ctx, c)
}

// skipPending skips the deliveries of an ended campaign c that no worker
// holds, so that none of them is sent later. Rows a worker holds are
// skipped when it hands them back (see requeued).
func (db *DB) skipPending(ctx context.Context, c *campaign.Campaign) error {
	_, err := db.ExecContext(ctx, db.rebind(`UPDATE deliveries SET status = 'skipped', reason = ?, updated_at = ?
		WHERE campaign_id = ? AND status IN ('queued', 'deferred')`), "campaign "+string(c.Status), db.now(), c.ID)
	if err != nil {
		return fmt.Errorf("skip deliveries of campaign %d: %w", c.ID, err)
	}
	return nil
}

// CampaignProgress counts campaign id's deliveries by status and derives
// the send rate over the last minute and the ETA at that rate. A finished
// campaign whose deliveries have all settled changes again only when a
// late outcome lands on an uncertain row (which clears what is recorded),
// so its counts are recorded on the campaign the first time and read from
// there afterwards; they then stay as sent even when contacts are deleted
// later.
func (db *DB) CampaignProgress(ctx context.Context, id int64) (*campaign.Progress, error) {
	var state struct {
		Status campaign.Status `db:"status"`
		Final  *string         `db:"final_counts"`
	}
	err := db.GetContext(ctx, &state, db.rebind(`SELECT status, final_counts FROM campaigns WHERE id = ?`), id)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("read campaign %d: %w", id, err)
	}
	if state.Final != nil {
		return finalProgress(id, *state.Final)
	}
	const window = time.Minute
	now := db.now()
	p, recent, err := db.countDeliveries(ctx, db.DB, id, now.Add(-window))
	if err != nil {
		return nil, err
	}
	if state.Status.Finished() && p.Remaining() == 0 {
		return db.recordFinalCounts(ctx, id)
	}
	p.Rate = float64(recent) / window.Seconds()
	if rem := p.Remaining(); rem > 0 && p.Rate > 0 {
		eta := now.Add(time.Duration(float64(rem) / p.Rate * float64(time.Second)))
		p.ETA = &eta
	}
	return p, nil
}

// countDeliveries counts campaign id's deliveries by status, and the
// sends since the given time, in one pass: the dashboard reads it on
// every view.
func (db *DB) countDeliveries(ctx context.Context, q sqlx.QueryerContext, id int64, since time.Time) (p *campaign.Progress, recent int64, err error) {
	p = &campaign.Progress{Counts: map[campaign.DeliveryStatus]int64{}}
	for _, s := range campaign.DeliveryStatuses {
		p.Counts[s] = 0
	}
	var rows []struct {
		Status string `db:"status"`
		N      int64  `db:"n"`
		Recent int64  `db:"recent"`
	}
	if err := sqlx.SelectContext(ctx, q, &rows, db.rebind(`SELECT status, count(*) AS n,
		sum(CASE WHEN sent_at > ? THEN 1 ELSE 0 END) AS recent
		FROM deliveries WHERE campaign_id = ? GROUP BY status`), since, id); err != nil {
		return nil, 0, fmt.Errorf("count deliveries of campaign %d: %w", id, err)
	}
	for _, r := range rows {
		p.Counts[campaign.DeliveryStatus(r.Status)] = r.N
		p.Audience += r.N
		if campaign.DeliveryStatus(r.Status) == campaign.DeliverySent {
			recent = r.Recent
		}
	}
	return p, recent, nil
}

// recordFinalCounts counts a settled campaign's deliveries again under
// the campaign's row lock and records them. The lock orders the count
// against a late outcome's write (see writeOutcomes): either the write
// committed before the count, or it clears the counts after them.
func (db *DB) recordFinalCounts(ctx context.Context, id int64) (*campaign.Progress, error) {
	var p *campaign.Progress
	err := db.withTx(ctx, func(tx *sqlxTx) error {
		lock := ""
		if db.Dialect == Postgres {
			lock = " FOR UPDATE"
		}
		var final *string
		if err := tx.GetContext(ctx, &final, db.rebind(`SELECT final_counts FROM campaigns WHERE id = ?`+lock), id); err != nil {
			return err
		}
		if final != nil {
			var err error
			p, err = finalProgress(id, *final)
			return err
		}
		var err error
		if p, _, err = db.countDeliveries(ctx, tx, id, db.now()); err != nil {
			return err
		}
		if p.Remaining() > 0 {
			return nil // a late hand-back queued rows again
		}
		counts, err := json.Marshal(p.Counts)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, db.rebind(`UPDATE campaigns SET final_counts = ? WHERE id = ?`), string(counts), id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("record final counts of campaign %d: %w", id, err)
	}
	return p, nil
}

// finalProgress is the progress of a campaign from its recorded counts.
func finalProgress(id int64, final string) (*campaign.Progress, error) {
	p := &campaign.Progress{Counts: map[campaign.DeliveryStatus]int64{}}
	for _, s := range campaign.DeliveryStatuses {
		p.Counts[s] = 0
	}
	var counts map[campaign.DeliveryStatus]int64
	if err := json.Unmarshal([]byte(final), &counts); err != nil {
		return nil, fmt.Errorf("read final counts of campaign %d: %w", id, err)
	}
	for s, n := range counts {
		p.Counts[s] = n
		p.Audience += n
	}
	return p, nil
}
