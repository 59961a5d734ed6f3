package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/funnel-email/funnel/bench/contactgen"
	"github.com/funnel-email/funnel/store"
)

// Targets of the issue, in milliseconds of p99.
const (
	apiTarget  = 50
	pageTarget = 300
)

// fixtures are the facts about the loaded data that requests need.
type fixtures struct {
	minID, maxID int64
	campaignID   int64 // a sent campaign, the first
	lastSentID   int64 // the last sent campaign
	seed         int64
	contacts     int
}

func fixturesOf(ctx context.Context, db *store.DB, seed int64) (fixtures, error) {
	fx := fixtures{seed: seed}
	err := db.QueryRowContext(ctx, `SELECT min(id), max(id), count(*) FROM contacts`).Scan(&fx.minID, &fx.maxID, &fx.contacts)
	if err == nil {
		err = db.QueryRowContext(ctx, `SELECT min(id), max(id) FROM campaigns WHERE status = 'sent'`).Scan(&fx.campaignID, &fx.lastSentID)
	}
	if err != nil {
		return fx, fmt.Errorf("read fixtures: %w", err)
	}
	return fx, nil
}

// endpoint is one measured URL family. newClient returns, for one client
// of a run, the function that gives the path of its next request from the
// body of its previous answer (nil before the first).
type endpoint struct {
	name      string
	page      bool // a UI page (session cookie), else the API (bearer token)
	newClient func(worker int) func(prev []byte) string
}

func (e endpoint) target() int {
	if e.page {
		return pageTarget
	}
	return apiTarget
}

// fixed is an endpoint whose every request is the same path.
func fixed(name string, page bool, path string) endpoint {
	return endpoint{name, page, func(int) func([]byte) string { return func([]byte) string { return path } }}
}

// rotating requests format with each value of vals in turn.
func rotating(name string, page bool, format string, vals []string) endpoint {
	return endpoint{name, page, func(w int) func([]byte) string {
		i := w
		return func([]byte) string {
			i++
			return fmt.Sprintf(format, url.QueryEscape(vals[i%len(vals)]))
		}
	}}
}

// randomID requests format with a random contact ID.
func randomID(name string, page bool, format string, fx fixtures) endpoint {
	return endpoint{name, page, func(w int) func([]byte) string {
		rng := rand.New(rand.NewPCG(uint64(w), 7))
		return func([]byte) string { return fmt.Sprintf(format, fx.minID+rng.Int64N(fx.maxID-fx.minID+1)) }
	}}
}

// following walks the API list at path page by page from the first,
// following next_cursor, and starts over after the last page.
func following(name, path string) endpoint {
	return endpoint{name, false, func(int) func([]byte) string {
		return func(prev []byte) string {
			var p struct {
				Next string `json:"next_cursor"`
			}
			if prev != nil && json.Unmarshal(prev, &p) == nil && p.Next != "" {
				return path + "&limit=50&cursor=" + url.QueryEscape(p.Next)
			}
			return path + "&limit=50"
		}
	}}
}

// deepPages follows next_cursor from the middle of the list on: each
// client walks its own chain from its own starting point.
func deepPages(fx fixtures) endpoint {
	return endpoint{"api contacts deep pages (next_cursor)", false, func(w int) func([]byte) string {
		start := fx.minID + (fx.maxID-fx.minID)*int64(50+5*w)/100
		return func(prev []byte) string {
			cursor := strconv.FormatInt(start, 10)
			if prev != nil {
				var p struct {
					Next string `json:"next_cursor"`
				}
				if json.Unmarshal(prev, &p) == nil && p.Next != "" {
					cursor = p.Next
				}
			}
			return "/api/v1/contacts?limit=50&cursor=" + cursor
		}
	}}
}

// Email prefixes of the generated addresses ("first.last.row@domain"),
// by share of the contacts they match.
var (
	broadPrefixes  = []string{"a", "c", "e", "l", "m", "o"}                                                             // 8-12%
	namePrefixes   = []string{"liam.", "emma.", "noah.", "yuki.", "omar.", "ivan."}                                     // 4.2%
	narrowPrefixes = []string{"liam.smith.", "emma.kim.", "noah.garcia.", "yuki.tanaka.", "omar.patel.", "ivan.novak."} // 0.2%
	nonePrefixes   = []string{"zz", "xq", "qq."}                                                                        // none
)

// exactPrefixes are whole local parts of generated contacts: one match
// each.
func exactPrefixes(fx fixtures) []string {
	g := contactgen.New(fx.seed)
	out := make([]string, 100)
	for i := range out {
		email := g.Contact(i * fx.contacts / len(out)).Email
		out[i] = email[:strings.IndexByte(email, '@')+1]
	}
	return out
}

// endpoints lists what is measured, filtered by only.
func endpoints(fx fixtures, only *regexp.Regexp) []endpoint {
	exact := exactPrefixes(fx)
	all := []endpoint{
		fixed("api contacts first page", false, "/api/v1/contacts"),
		deepPages(fx),
		rotating("api search broad (8-12%)", false, "/api/v1/contacts?email_prefix=%s", broadPrefixes),
		rotating("api search first name (4%)", false, "/api/v1/contacts?email_prefix=%s", namePrefixes),
		rotating("api search first.last (0.2%)", false, "/api/v1/contacts?email_prefix=%s", narrowPrefixes),
		rotating("api search one address", false, "/api/v1/contacts?email_prefix=%s", exact),
		rotating("api search no match", false, "/api/v1/contacts?email_prefix=%s", nonePrefixes),
		fixed("api tag vip (17%)", false, "/api/v1/contacts?tag=vip"),
		fixed("api tag rare (0.02%)", false, "/api/v1/contacts?tag="+rareTag),
		fixed("api tag absent", false, "/api/v1/contacts?tag=no-such-tag"),
		fixed("api status unsubscribed (3%)", false, "/api/v1/contacts?status=unsubscribed"),
		fixed("api status bounced (1%)", false, "/api/v1/contacts?status=bounced"),
		fixed("api status complained (0.05%)", false, "/api/v1/contacts?status=complained"),
		randomID("api contact by id", false, "/api/v1/contacts/%d", fx),
		fixed("api leads", false, "/api/v1/leads"),
		fixed("api leads status=new", false, "/api/v1/leads?status=new"),
		fixed("api engaged", false, "/api/v1/engaged"),
		fixed("api engaged campaign", false, fmt.Sprintf("/api/v1/engaged?campaign=%d", fx.campaignID)),
		fixed("api segments", false, "/api/v1/segments"),
		fixed("api templates", false, "/api/v1/templates"),
		fixed("api campaigns", false, "/api/v1/campaigns"),
		fixed("api contacts sort=-id", false, "/api/v1/contacts?sort=-id"),
		following("api contacts sort=email (next_cursor)", "/api/v1/contacts?sort=email"),
		following("api contacts sort=-email (next_cursor)", "/api/v1/contacts?sort=-email"),
		fixed("api contacts sort=email tag vip (17%)", false, "/api/v1/contacts?sort=email&tag=vip"),
		fixed("api contacts sort=email tag rare (0.02%)", false, "/api/v1/contacts?sort=email&tag="+rareTag),
		fixed("api contacts sort=-email status bounced (1%)", false, "/api/v1/contacts?sort=-email&status=bounced"),
		fixed("api contacts sort=email status complained (0.05%)", false, "/api/v1/contacts?sort=email&status=complained"),
		fixed("api leads sort=score", false, "/api/v1/leads?sort=score"),
		fixed("api leads sort=-id status=new", false, "/api/v1/leads?sort=-id&status=new"),
		following("api engaged sort=-id (next_cursor)", "/api/v1/engaged?sort=-id"),
		fixed("api campaigns sort=name", false, "/api/v1/campaigns?sort=name"),
		fixed("api deliveries of the first sent campaign, sort=id", false, fmt.Sprintf("/api/v1/campaigns/%d/deliveries?sort=id", fx.campaignID)),
		fixed("api deliveries of the first sent campaign, sort=-id", false, fmt.Sprintf("/api/v1/campaigns/%d/deliveries?sort=-id", fx.campaignID)),
		fixed("api deliveries of the last sent campaign, sort=id", false, fmt.Sprintf("/api/v1/campaigns/%d/deliveries?sort=id", fx.lastSentID)),
		following("api deliveries of the last sent campaign (next_cursor)", fmt.Sprintf("/api/v1/campaigns/%d/deliveries?sort=id", fx.lastSentID)),
		fixed("page /contacts", true, "/contacts"),
		rotating("page /contacts?q=broad", true, "/contacts?q=%s", broadPrefixes),
		rotating("page /contacts?q=first.last", true, "/contacts?q=%s", narrowPrefixes),
		randomID("page /contacts/{id}", true, "/contacts/%d", fx),
		fixed("page / (dashboard)", true, "/"),
		fixed("page /campaigns", true, "/campaigns"),
		fixed("page /leads", true, "/leads"),
		fixed("page /engaged", true, "/engaged"),
	}
	var out []endpoint
	for _, e := range all {
		if only.MatchString(e.name) {
			out = append(out, e)
		}
	}
	return out
}
