package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/funnel-email/funnel/campaign"
)

// Link is one tracked link of a message: where click tokens with its
// index redirect.
type Link struct {
	Index  int    `db:"link_index"` // from 1, as in click tokens
	URL    string `db:"url"`
	Intent string `db:"intent"` // data-funnel-intent, or ""
}

// Links records and resolves the targets of tracked links.
//
// The links of a campaign's first recorded message become the campaign's
// links; a delivery whose message has other links gets its own complete
// list, which wins for that delivery. Rows are only ever added, never
// changed, so a token resolved once resolves the same way forever and
// the campaign lists can be cached in the process without invalidation.
// A Links is safe for concurrent use.
type Links struct {
	db *DB

	mu        sync.RWMutex
	campaigns map[int64]map[int]Link // campaign ID -> index -> link; only non-empty lists
}

// NewLinks returns a Links over db with an empty cache.
func NewLinks(db *DB) *Links { return &Links{db: db, campaigns: map[int64]map[int]Link{}} }

// maxLinkCache bounds the campaigns whose links are cached; past it the
// cache starts over (campaigns being clicked at once are few).
const maxLinkCache = 10000

// RecordCampaign stores links as campaign id's links unless it has some
// already, and returns the campaign's stored links. Existing rows are
// never overwritten: when two first messages race, the stored list may
// mix them, which callers detect by comparing (SameLinks) and answer with
// a delivery list. Empty links store nothing.
func (l *Links) RecordCampaign(ctx context.Context, id int64, links []Link) (map[int]Link, error) {
	if cached := l.cachedCampaign(id); cached != nil {
		return cached, nil
	}
	stored, err := l.loadCampaign(ctx, id)
	if err != nil || len(stored) > 0 || len(links) == 0 {
		return stored, err
	}
	q, args := linkInsert("campaign_links", "campaign_id", id, links)
	if _, err := l.db.ExecContext(ctx, l.db.rebind(q+` ON CONFLICT DO NOTHING`), args...); err != nil {
		return nil, fmt.Errorf("record links of campaign %d: %w", id, err)
	}
	return l.loadCampaign(ctx, id)
}

// RecordDelivery stores links as delivery id's own list, replacing the
// rows of the same indexes (a re-rendered message wins).
func (l *Links) RecordDelivery(ctx context.Context, id int64, links []Link) error {
	if len(links) == 0 {
		return nil
	}
	q, args := linkInsert("delivery_links", "delivery_id", id, links)
	q += ` ON CONFLICT (delivery_id, link_index) DO UPDATE SET url = excluded.url, intent = excluded.intent`
	if _, err := l.db.ExecContext(ctx, l.db.rebind(q), args...); err != nil {
		return fmt.Errorf("record links of delivery %d: %w", id, err)
	}
	return nil
}

func linkInsert(table, owner string, id int64, links []Link) (string, []any) {
	rows := make([]string, len(links))
	args := make([]any, 0, 4*len(links))
	for i, k := range links {
		rows[i] = "(?, ?, ?, ?)"
		args = append(args, id, k.Index, k.URL, k.Intent)
	}
	return `INSERT INTO ` + table + ` (` + owner + `, link_index, url, intent) VALUES ` + strings.Join(rows, ", "), args
}

func (l *Links) cachedCampaign(id int64) map[int]Link {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.campaigns[id]
}

// loadCampaign reads campaign id's links and caches a non-empty list.
func (l *Links) loadCampaign(ctx context.Context, id int64) (map[int]Link, error) {
	var rows []Link
	err := l.db.SelectContext(ctx, &rows, l.db.rebind(`SELECT link_index, url, intent FROM campaign_links WHERE campaign_id = ?`), id)
	if err != nil {
		return nil, fmt.Errorf("load links of campaign %d: %w", id, err)
	}
	m := make(map[int]Link, len(rows))
	for _, r := range rows {
		m[r.Index] = r
	}
	if len(m) > 0 {
		l.mu.Lock()
		if len(l.campaigns) >= maxLinkCache {
			clear(l.campaigns)
		}
		l.campaigns[id] = m
		l.mu.Unlock()
	}
	return m, nil
}

// campaignLink returns link index of campaign id, reloading the list once
// when the cached one lacks the index (another process may have added it).
func (l *Links) campaignLink(ctx context.Context, id int64, index int) (Link, bool, error) {
	if m := l.cachedCampaign(id); m != nil {
		if k, ok := m[index]; ok {
			return k, true, nil
		}
	}
	m, err := l.loadCampaign(ctx, id)
	if err != nil {
		return Link{}, false, err
	}
	k, ok := m[index]
	return k, ok, nil
}

// TrackedDelivery is what the tracking endpoints need to know about a
// delivery: whose it is, and the links of its own list when it has one.
type TrackedDelivery struct {
	ID         int64
	CampaignID int64
	ContactID  int64
	own        map[int]Link // nil: the campaign's links apply
}

// FindDeliveries returns the deliveries among ids that exist, by ID, in
// one query however many IDs are asked. Missing IDs are absent from the
// map, not an error.
func (l *Links) FindDeliveries(ctx context.Context, ids []int64) (map[int64]*TrackedDelivery, error) {
	out := make(map[int64]*TrackedDelivery, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	in, args := l.db.idsIn("d.id", uniqueIDs(ids))
	// One row per delivery without a list of its own, one per own link
	// otherwise.
	rows, err := l.db.QueryContext(ctx, l.db.rebind(`SELECT d.id, d.campaign_id, d.contact_id, dl.link_index, dl.url, dl.intent
		FROM deliveries d LEFT JOIN delivery_links dl ON dl.delivery_id = d.id WHERE `+in), args...)
	if err != nil {
		return nil, fmt.Errorf("find deliveries: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			r           TrackedDelivery
			index       sql.NullInt64
			url, intent sql.NullString
		)
		if err := rows.Scan(&r.ID, &r.CampaignID, &r.ContactID, &index, &url, &intent); err != nil {
			return nil, fmt.Errorf("find deliveries: %w", err)
		}
		d := out[r.ID]
		if d == nil {
			d = &r
			out[r.ID] = d
		}
		if index.Valid {
			if d.own == nil {
				d.own = map[int]Link{}
			}
			d.own[int(index.Int64)] = Link{Index: int(index.Int64), URL: url.String, Intent: intent.String}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find deliveries: %w", err)
	}
	return out, nil
}

// Link returns link index of delivery d: from its own list when it has
// one, else from its campaign's. A link that does not exist is an
// ENOTFOUND error.
func (l *Links) Link(ctx context.Context, d *TrackedDelivery, index int) (Link, error) {
	if d.own != nil {
		if k, ok := d.own[index]; ok {
			return k, nil
		}
		return Link{}, campaign.Errorf(campaign.ENOTFOUND, "delivery %d has no link %d", d.ID, index)
	}
	k, ok, err := l.campaignLink(ctx, d.CampaignID, index)
	if err != nil {
		return Link{}, err
	}
	if !ok {
		return Link{}, campaign.Errorf(campaign.ENOTFOUND, "campaign %d has no link %d", d.CampaignID, index)
	}
	return k, nil
}

// SameLinks reports whether links are exactly the indexes and URLs of
// stored (intents included).
func SameLinks(stored map[int]Link, links []Link) bool {
	if len(stored) != len(links) {
		return false
	}
	for _, k := range links {
		if s, ok := stored[k.Index]; !ok || s != k {
			return false
		}
	}
	return true
}

func uniqueIDs(ids []int64) []int64 {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	return slices.Compact(ids)
}
