package store

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// CampaignReport is what a campaign's recipients did: opens and clicks
// split by the classifier's verdict, clicks per link, and human
// engagement per hour.
type CampaignReport struct {
	HumanOpens, MachineOpens   int64
	HumanClicks, MachineClicks int64
	Unsubscribed, Complained   int64
	// Links are the clicked destinations, most human clicks first.
	Links []LinkClicks
	// Hours are the hours with human opens or clicks, in time order.
	Hours []HourCount
}

// LinkClicks counts the clicks on one destination.
type LinkClicks struct {
	Link           string
	Human, Machine int64
}

// HourCount counts human opens and clicks in one hour (UTC).
type HourCount struct {
	Hour          time.Time
	Opens, Clicks int64
}

// CampaignReport counts the events of a campaign. An unknown campaign has
// an empty report.
func (db *DB) CampaignReport(ctx context.Context, campaignID int64) (*CampaignReport, error) {
	rep := &CampaignReport{}
	rows, err := db.QueryxContext(ctx, db.rebind(`SELECT kind, CASE WHEN human THEN 1 ELSE 0 END, link, count(*)
		FROM events WHERE campaign_id = ? AND kind IN ('opened', 'clicked', 'unsubscribed', 'complained')
		GROUP BY kind, human, link`), campaignID)
	if err != nil {
		return nil, fmt.Errorf("report of campaign %d: %w", campaignID, err)
	}
	links := map[string]*LinkClicks{}
	for rows.Next() {
		var (
			kind, link string
			human      int
			n          int64
		)
		if err := rows.Scan(&kind, &human, &link, &n); err != nil {
			rows.Close()
			return nil, err
		}
		switch kind {
		case "opened":
			*pick(human == 1, &rep.HumanOpens, &rep.MachineOpens) += n
		case "clicked":
			*pick(human == 1, &rep.HumanClicks, &rep.MachineClicks) += n
			l := links[link]
			if l == nil {
				l = &LinkClicks{Link: link}
				links[link] = l
			}
			*pick(human == 1, &l.Human, &l.Machine) += n
		case "unsubscribed":
			rep.Unsubscribed += n
		case "complained":
			rep.Complained += n
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, l := range links {
		rep.Links = append(rep.Links, *l)
	}
	sort.Slice(rep.Links, func(i, j int) bool {
		a, b := rep.Links[i], rep.Links[j]
		return a.Human > b.Human || a.Human == b.Human && a.Link < b.Link
	})
	rep.Hours, err = db.campaignHours(ctx, campaignID)
	return rep, err
}

// campaignHours buckets a campaign's human opens and clicks by hour.
func (db *DB) campaignHours(ctx context.Context, campaignID int64) ([]HourCount, error) {
	hour := `substr(occurred_at, 1, 13)` // SQLite keeps times as fixed-layout UTC text
	if db.Dialect == Postgres {
		hour = `to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24')`
	}
	rows, err := db.QueryxContext(ctx, db.rebind(`SELECT `+hour+` AS h,
			sum(CASE WHEN kind = 'opened' THEN 1 ELSE 0 END), sum(CASE WHEN kind = 'clicked' THEN 1 ELSE 0 END)
		FROM events WHERE campaign_id = ? AND human AND kind IN ('opened', 'clicked')
		GROUP BY h ORDER BY h`), campaignID)
	if err != nil {
		return nil, fmt.Errorf("hourly report of campaign %d: %w", campaignID, err)
	}
	defer rows.Close()
	var out []HourCount
	for rows.Next() {
		var (
			h  string
			hc HourCount
		)
		if err := rows.Scan(&h, &hc.Opens, &hc.Clicks); err != nil {
			return nil, err
		}
		if len(h) >= 13 {
			hc.Hour, _ = time.Parse("2006-01-02 15", h[:10]+" "+h[11:13])
		}
		out = append(out, hc)
	}
	return out, rows.Err()
}

func pick(cond bool, a, b *int64) *int64 {
	if cond {
		return a
	}
	return b
}
