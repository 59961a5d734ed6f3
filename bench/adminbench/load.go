package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/funnel-email/funnel/bench/contactgen"
	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
)

// The shape of the generated data beside the contacts.
const (
	objects       = 30   // templates, segments and campaigns each
	sentCampaigns = 10   // the first campaigns, each sent to a tenth of the list; the next one is sending
	leads         = 5000 // from the contacts that clicked
	// rareTag is on one contact in 5,000; it sorts after every tag that
	// contactgen makes, so the tags arrays stay sorted.
	rareTag = "zeta-pilot"
)

// load fills an empty database: contacts through the CSV import, then
// everything else in SQL, then statistics.
func load(ctx context.Context, db *store.DB, cfg config, out io.Writer) error {
	steps := []struct {
		name string
		fn   func(context.Context, *store.DB, config) error
	}{
		{"import contacts", importContacts},
		{"statuses and rare tag", markContacts},
		{"templates, segments, campaigns", createObjects},
		{"deliveries and events", sendCampaigns},
		{"leads", createLeads},
		{"analyze", analyze},
	}
	for _, s := range steps {
		start := time.Now()
		if err := s.fn(ctx, db, cfg); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		fmt.Fprintf(out, "load: %-32s %s\n", s.name, time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// importContacts streams generated CSV through the importer, as an
// upload would.
func importContacts(ctx context.Context, db *store.DB, cfg config) error {
	src := contactgen.New(cfg.seed).Reader(cfg.contacts)
	defer src.Close()
	r, err := campaign.NewCSVReader(src)
	if err != nil {
		return err
	}
	_, err = db.ImportContacts(ctx, r, campaign.ImportOptions{}, nil)
	return err
}

// markContacts gives about 3% of contacts the unsubscribed status, 1%
// bounced, 0.05% complained, and one in 5,000 the rare tag.
func markContacts(ctx context.Context, db *store.DB, _ config) error {
	addTag := `tags || '["` + rareTag + `"]'::jsonb`
	if db.Dialect == store.SQLite {
		addTag = `json_insert(tags, '$[#]', '` + rareTag + `')`
	}
	for _, q := range []string{
		`UPDATE contacts SET status = 'unsubscribed' WHERE id % 33 = 0`,
		`UPDATE contacts SET status = 'bounced' WHERE id % 100 = 1`,
		`UPDATE contacts SET status = 'complained' WHERE id % 2000 = 2`,
		`UPDATE contacts SET tags = ` + addTag + ` WHERE id % 5000 = 3`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

var segmentRules = []string{`tag "vip"`, `attr.country = "DE"`, `tag "customer" and not tag "churn-risk"`,
	`attr.plan = "pro" or attr.plan = "enterprise"`, `tag "newsletter"`}

// createObjects makes the templates, segments and campaigns through the
// store, as the API would; the first sentCampaigns campaigns are then
// marked sent.
func createObjects(ctx context.Context, db *store.DB, _ config) error {
	// About 14 KB of HTML, like the template of the rendering benchmark.
	html := strings.Repeat(`<p>Hello {{.FirstName}}, here is what is new this month at <a href="https://example.com/blog">our blog</a>.</p>`+"\n", 120)
	for i := 1; i <= objects; i++ {
		t := &campaign.Template{Name: fmt.Sprintf("Newsletter %02d", i), Subject: "News for {{.FirstName}}", HTML: html, Layout: "default"}
		if err := db.CreateTemplate(ctx, t); err != nil {
			return err
		}
		rule, err := campaign.ParseRule(segmentRules[i%len(segmentRules)])
		if err != nil {
			return err
		}
		s := &campaign.Segment{Name: fmt.Sprintf("Segment %02d", i), Rule: rule}
		if err := db.CreateSegment(ctx, s); err != nil {
			return err
		}
		c := &campaign.Campaign{Name: fmt.Sprintf("Campaign %02d", i), TemplateID: t.ID, SegmentIDs: []int64{s.ID},
			FromName: "Funnel", FromEmail: "news@example.com"}
		if err := db.CreateCampaign(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// sendCampaigns gives each of the first sentCampaigns campaigns a tenth
// of the contacts (by ID modulo 10) as deliveries, mostly sent, with a
// "sent" event each, opens for a quarter (80% human) and clicks for 4%.
// The next campaign is sending: half of its tenth is sent, half queued.
func sendCampaigns(ctx context.Context, db *store.DB, _ config) error {
	var ids []int64
	if err := db.SelectContext(ctx, &ids, db.Rebind(`SELECT id FROM campaigns ORDER BY id LIMIT ?`), sentCampaigns+1); err != nil {
		return err
	}
	now := time.Now().UTC().Truncate(time.Second)
	for k, id := range ids {
		sent, status, lag := now.Add(-time.Duration(k*3*24+1)*time.Hour), "sent", time.Hour
		outcome := `CASE WHEN id % 50 = 7 THEN 'bounced' WHEN id % 200 = 9 THEN 'failed' ELSE 'sent' END`
		var finished any = sent.Add(20 * time.Minute)
		if k == sentCampaigns {
			sent, status, lag, finished = now.Add(-10*time.Minute), "sending", 2*time.Minute, nil
			outcome = `CASE WHEN id % 20 = 0 THEN 'sent' ELSE 'queued' END` // its contacts' IDs end in 0
		}
		stmts := []struct {
			q    string
			args []any
		}{
			{`INSERT INTO deliveries (campaign_id, contact_id, status, attempts, sent_at, created_at, updated_at)
				SELECT ?, id, ` + outcome + `, 1, ?, ?, ? FROM contacts WHERE id % 10 = ?`, []any{id, sent, sent, sent, k % 10}},
			{`INSERT INTO events (delivery_id, contact_id, campaign_id, kind, human, occurred_at)
				SELECT id, contact_id, campaign_id, 'sent', true, ? FROM deliveries WHERE campaign_id = ? AND status = 'sent'`,
				[]any{sent, id}},
			{`INSERT INTO events (delivery_id, contact_id, campaign_id, kind, human, occurred_at)
				SELECT id, contact_id, campaign_id, 'opened', id % 5 <> 0, ? FROM deliveries
				WHERE campaign_id = ? AND status = 'sent' AND id % 4 = 0`, []any{sent.Add(lag), id}},
			{`INSERT INTO events (delivery_id, contact_id, campaign_id, kind, link, human, occurred_at)
				SELECT id, contact_id, campaign_id, 'clicked', 'https://example.com/pricing', id % 10 <> 0, ? FROM deliveries
				WHERE campaign_id = ? AND status = 'sent' AND id % 25 = 0`, []any{sent.Add(2 * lag), id}},
			// As MaterializeAudience records them.
			{`UPDATE campaigns SET status = ?, audience_size = (SELECT count(*) FROM deliveries WHERE campaign_id = ?),
				first_delivery_id = (SELECT min(id) FROM deliveries WHERE campaign_id = ?),
				last_delivery_id = (SELECT max(id) FROM deliveries WHERE campaign_id = ?),
				send_at = ?, started_at = ?, finished_at = ? WHERE id = ?`,
				[]any{status, id, id, id, sent, sent, finished, id}},
		}
		for _, s := range stmts {
			if _, err := db.ExecContext(ctx, db.Rebind(s.q), s.args...); err != nil {
				return fmt.Errorf("campaign %d: %w", id, err)
			}
		}
	}
	return nil
}

// createLeads makes leads of the first contacts that clicked a human
// click, created over the last 60 days, and gives those contacts a score.
func createLeads(ctx context.Context, db *store.DB, _ config) error {
	var rows []struct {
		Contact  int64 `db:"contact_id"`
		Campaign int64 `db:"campaign_id"`
	}
	if err := db.SelectContext(ctx, &rows, db.Rebind(`SELECT contact_id, min(campaign_id) AS campaign_id FROM events
		WHERE kind = 'clicked' AND human GROUP BY contact_id ORDER BY contact_id LIMIT ?`), leads); err != nil {
		return err
	}
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	now := time.Now().UTC().Truncate(time.Microsecond)
	statuses := []string{"new", "new", "new", "contacted", "accepted", "won", "lost"}
	for i, r := range rows {
		at := now.Add(-time.Duration(i%60) * 24 * time.Hour)
		if _, err := tx.ExecContext(ctx, db.Rebind(`INSERT INTO leads (contact_id, status, score_at_creation, campaign_id, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?)`), r.Contact, statuses[i%len(statuses)], 50, r.Campaign, at, at); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE contacts SET score = 50 + id % 50, lifecycle_stage = 'mql'
		WHERE id IN (SELECT contact_id FROM leads)`); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE leads SET score = 50 + contact_id % 50`); err != nil {
		return err
	}
	return tx.Commit()
}

// analyze gathers statistics; on Postgres VACUUM also sets the visibility
// map, as autovacuum would soon after a load.
func analyze(ctx context.Context, db *store.DB, _ config) error {
	q := "ANALYZE"
	if db.Dialect == store.Postgres {
		q = "VACUUM ANALYZE"
	}
	_, err := db.ExecContext(ctx, q)
	return err
}
