package ui_test

import (
	"encoding/csv"
	"fmt"
	"html"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
)

// engagedSite is the admin service on a real database with a user per
// role (sales in Asia/Tokyo, UTC+9) and this engagement:
//
//   - ada: in campaign A, human opens at 2026-03-01 08:00 and 20:00 UTC
//     and a human click at 19:00 UTC, then machine opens and clicks at
//     21:00 UTC;
//   - bob: in campaign B, a human click at 2026-03-01 10:00 UTC and a
//     machine open;
//   - cy: machine opens and clicks only;
//   - pagers: 50 contacts, each with one human open in campaign A on
//     2026-02-20, created after the others.
type engagedSite struct {
	*site
	campaignA, campaignB int64
	ada, bob, cy         int64
	pagers               []int64
}

func newEngagedSite(t *testing.T, db *store.DB) *engagedSite {
	t.Helper()
	ctx := t.Context()
	s := &engagedSite{site: newSite(t, db, map[campaign.Role]string{campaign.RoleSales: "Asia/Tokyo"})}
	tpl := &campaign.Template{Name: "T", Subject: "S", HTML: "<p>x</p>"}
	if err := db.CreateTemplate(ctx, tpl); err != nil {
		t.Fatal(err)
	}
	seg := &campaign.Segment{Name: "all", Rule: &campaign.Rule{Field: "email", Op: campaign.OpStartsWith, Value: "a"}}
	if err := db.CreateSegment(ctx, seg); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		id   *int64
	}{{"Spring launch", &s.campaignA}, {"Webinar invite", &s.campaignB}} {
		cp := &campaign.Campaign{Name: c.name, TemplateID: tpl.ID, SegmentIDs: []int64{seg.ID}, FromEmail: "news@example.com"}
		if err := db.CreateCampaign(ctx, cp); err != nil {
			t.Fatal(err)
		}
		*c.id = cp.ID
	}
	contact := func(email, first string) int64 {
		c := &campaign.Contact{Email: email, FirstName: first, LastName: "Tester"}
		if err := db.CreateContact(ctx, c); err != nil {
			t.Fatal(err)
		}
		return c.ID
	}
	s.ada, s.bob, s.cy = contact("ada@example.com", "Ada"), contact("bob@example.com", "Bob"), contact("cy@example.com", "Cy")
	at := func(day, hour int) time.Time { return time.Date(2026, 3, day, hour, 0, 0, 0, time.UTC) }
	ev := func(contact, campaignID int64, kind campaign.EventKind, human bool, t time.Time) campaign.Event {
		e := campaign.Event{ContactID: contact, CampaignID: campaignID, Kind: kind, Human: human, OccurredAt: t}
		if kind == campaign.EventClicked {
			e.Link = "https://example.com/pricing"
		}
		return e
	}
	A, B := s.campaignA, s.campaignB
	es := []campaign.Event{
		ev(s.ada, A, campaign.EventOpened, true, at(1, 8)), ev(s.ada, A, campaign.EventOpened, true, at(1, 20)),
		ev(s.ada, A, campaign.EventClicked, true, at(1, 19)),
		ev(s.ada, A, campaign.EventOpened, false, at(1, 21)), ev(s.ada, A, campaign.EventOpened, false, at(1, 21)),
		ev(s.ada, A, campaign.EventOpened, false, at(1, 21)), ev(s.ada, A, campaign.EventClicked, false, at(1, 21)),
		ev(s.ada, A, campaign.EventClicked, false, at(1, 21)),
		ev(s.bob, B, campaign.EventClicked, true, at(1, 10)), ev(s.bob, B, campaign.EventOpened, false, at(1, 11)),
		ev(s.cy, A, campaign.EventOpened, false, at(1, 9)), ev(s.cy, A, campaign.EventOpened, false, at(1, 9)),
		ev(s.cy, A, campaign.EventClicked, false, at(1, 9)),
	}
	for i := range 50 {
		id := contact(fmt.Sprintf("p%02d@example.com", i), "Pager")
		s.pagers = append(s.pagers, id)
		es = append(es, ev(id, A, campaign.EventOpened, true, time.Date(2026, 2, 20, 9, 0, 0, 0, time.UTC)))
	}
	if err := db.InsertEvents(ctx, es); err != nil {
		t.Fatal(err)
	}
	for range 100 {
		run, err := db.ScoreEvents(ctx, 500)
		if err != nil {
			t.Fatal(err)
		}
		if !run.More && !run.Busy {
			break
		}
	}
	return s
}

var engagedRow = regexp.MustCompile(`(?s)<tr>\s*<td class="link-cell"><a href="/contacts/(\d+)">([^<]*)</a></td>(.*?)</tr>`)

// engagedRows returns the rows of the page's table: contact ID to the
// row's cells, in page order.
func engagedRows(page string) (ids []int64, cells map[int64]string) {
	cells = map[int64]string{}
	for _, m := range engagedRow.FindAllStringSubmatch(page, -1) {
		id, _ := strconv.ParseInt(m[1], 10, 64)
		ids = append(ids, id)
		cells[id] = m[2] + m[3]
	}
	return ids, cells
}

// link returns the unescaped href of the link whose text is text.
func link(t *testing.T, page, text string) string {
	t.Helper()
	m := regexp.MustCompile(`<a (?:class="[^"]*" )?href="([^"]*)"[^>]*>` + regexp.QuoteMeta(text) + `</a>`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no %q link on the page", text)
	}
	return html.UnescapeString(m[1])
}

func mustContain(t *testing.T, what, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("%s does not contain %q", what, w)
		}
	}
}

// TestEngagedPageCountsOnlyHumanOpensAndClicks: a sales user sees each
// engaged contact with its human opens and clicks, its score and stage
// and its last human engagement in the user's zone; machine events add
// nothing and a contact with only machine events is not listed.
func TestEngagedPageCountsOnlyHumanOpensAndClicks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newEngagedSite(t, db)
		page := s.page(t, campaign.RoleSales, "/engaged")
		mustContain(t, "the page", page, `<a href="/engaged" aria-current="page">Engaged</a>`, `<label for="campaign">Campaign</label>`,
			`<label for="since">Engaged since</label>`, `<label for="min_score">Minimum score</label>`, "Asia/Tokyo")
		ids, cells := engagedRows(page)
		if len(ids) != 50 || ids[0] != s.ada || ids[1] != s.bob {
			t.Fatalf("the first page lists %d contacts starting %v, want 50 starting with ada (%d) and bob (%d)", len(ids), ids[:min(2, len(ids))], s.ada, s.bob)
		}
		if _, ok := cells[s.cy]; ok {
			t.Error("cy, with machine events only, is listed")
		}
		stored, err := db.EngagedContacts(t.Context(), campaign.EngagedFilter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range stored[:2] {
			mustContain(t, c.Email+"'s row", cells[c.ContactID], fmt.Sprintf(`<td data-label="Score">%.0f</td>`, c.Score),
				fmt.Sprintf(`<span class="badge %s">%s</span>`, c.Stage, c.Stage))
			if c.Stage == campaign.StageSubscriber || c.Stage == "" {
				t.Errorf("%s is still at stage %q after human engagement", c.Email, c.Stage)
			}
		}
		mustContain(t, "ada's row", cells[s.ada], "ada@example.com", `<td data-label="Name">Ada Tester</td>`,
			`<td data-label="Human opens">2</td>`, `<td data-label="Human clicks">1</td>`, `<td data-label="Last engaged">2026-03-02 05:00 JST</td>`)
		mustContain(t, "bob's row", cells[s.bob], `<td data-label="Human opens">0</td>`, `<td data-label="Human clicks">1</td>`,
			`<td data-label="Last engaged">2026-03-01 19:00 JST</td>`)
	})
}

// TestEngagedPageFiltersNarrowTheList: the campaign, since (a day in the
// viewer's zone) and minimum score filters each narrow the list, and the
// form shows the filters in force.
func TestEngagedPageFiltersNarrowTheList(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newEngagedSite(t, db)
		B := strconv.FormatInt(s.campaignB, 10)
		page := s.page(t, campaign.RoleSales, "/engaged?campaign="+B)
		if ids, _ := engagedRows(page); !cmp.Equal(ids, []int64{s.bob}) {
			t.Errorf("campaign B lists %v, want only bob (%d)", ids, s.bob)
		}
		mustContain(t, "the form", page, `<option value="`+B+`" selected>Webinar invite</option>`, "Spring launch")

		// Tokyo's midnight of 2 March is 15:00 UTC on 1 March: bob's click
		// at 10:00 UTC is before it, ada's open at 20:00 and click at 19:00
		// after it.
		page = s.page(t, campaign.RoleSales, "/engaged?since=2026-03-02")
		ids, cells := engagedRows(page)
		if !cmp.Equal(ids, []int64{s.ada}) {
			t.Fatalf("since 2026-03-02 in Tokyo lists %v, want only ada (%d)", ids, s.ada)
		}
		mustContain(t, "ada's row since 2 March", cells[s.ada], `<td data-label="Human opens">1</td>`, `<td data-label="Human clicks">1</td>`)
		mustContain(t, "the form", page, `id="since" name="since" type="date" value="2026-03-02"`)

		stored, err := db.EngagedContacts(t.Context(), campaign.EngagedFilter{})
		if err != nil {
			t.Fatal(err)
		}
		var top campaign.EngagedContact
		for _, c := range stored {
			if c.Score > top.Score {
				top = c
			}
		}
		if top.ContactID != s.ada {
			t.Fatalf("seed: ada should score highest, %s does (%v)", top.Email, stored)
		}
		page = s.page(t, campaign.RoleSales, "/engaged?min_score="+strconv.FormatFloat(top.Score, 'f', -1, 64))
		if ids, _ := engagedRows(page); !cmp.Equal(ids, []int64{s.ada}) {
			t.Errorf("min_score=%v lists %v, want only ada (%d)", top.Score, ids, s.ada)
		}
	})
}

// TestEngagedPagePagesWithTheFilters: "Next page" goes on after the last
// contact of the page, keeping the filters, until the list ends.
func TestEngagedPagePagesWithTheFilters(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newEngagedSite(t, db)
		A := strconv.FormatInt(s.campaignA, 10)
		page := s.page(t, campaign.RoleSales, "/engaged?campaign="+A)
		ids, _ := engagedRows(page)
		if want := append([]int64{s.ada}, s.pagers[:49]...); !cmp.Equal(ids, want) {
			t.Fatalf("campaign A, page 1: %s", cmp.Diff(want, ids))
		}
		next := link(t, page, "Next page →")
		if want := "/engaged?after=" + strconv.FormatInt(s.pagers[48], 10) + "&campaign=" + A; next != want {
			t.Errorf("Next page links to %q, want %q", next, want)
		}
		page = s.page(t, campaign.RoleSales, next)
		if ids, _ := engagedRows(page); !cmp.Equal(ids, []int64{s.pagers[49]}) {
			t.Errorf("campaign A, page 2 lists %v, want only the last pager (%d)", ids, s.pagers[49])
		}
		if strings.Contains(page, "Next page") {
			t.Error("the last page has a Next page link")
		}
		if first := link(t, page, "← First page"); first != "/engaged?campaign="+A {
			t.Errorf("First page links to %q", first)
		}

		page = s.page(t, campaign.RoleSales, link(t, s.page(t, campaign.RoleSales, "/engaged"), "Next page →"))
		if ids, _ := engagedRows(page); !cmp.Equal(ids, s.pagers[48:]) {
			t.Errorf("unfiltered page 2 lists %v, want the last two pagers %v", ids, s.pagers[48:])
		}
	})
}

// TestEngagedPageShowsBadFiltersNextToTheirField: a filter that cannot be
// read is a 422 page with the message under its field, marked invalid,
// and no list; a cursor no link gave is a 422 error page.
func TestEngagedPageShowsBadFiltersNextToTheirField(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newEngagedSite(t, db)
		for _, tt := range []struct{ query, field, message string }{
			{"min_score=lots", "min_score", "must be a number, such as 25"},
			{"min_score=NaN", "min_score", "must be a number, such as 25"},
			{"since=yesterday", "since", "must be a date, such as 2026-03-01"},
			{"since=2026-02-30", "since", "must be a date, such as 2026-03-01"},
			{"campaign=spring", "campaign", "must be a campaign from the list"},
			{"campaign=999999", "campaign", "no campaign has this ID; pick one from the list"},
		} {
			status, _, page := s.get(t, campaign.RoleSales, "/engaged?"+tt.query)
			if status != http.StatusUnprocessableEntity {
				t.Errorf("?%s: %d, want 422", tt.query, status)
			}
			mustContain(t, "?"+tt.query, page, `aria-invalid="true" aria-describedby="`+tt.field+`-error"`,
				`<p class="error" id="`+tt.field+`-error">`+html.EscapeString(tt.message)+`</p>`)
			if strings.Contains(page, "ada@example.com") || strings.Contains(page, "Download CSV") {
				t.Errorf("?%s still lists contacts or offers the CSV", tt.query)
			}
		}
		if status, _, page := s.get(t, campaign.RoleSales, "/engaged?after=-1"); status != http.StatusUnprocessableEntity ||
			!strings.Contains(page, "invalid page") || strings.Contains(page, "ada@example.com") {
			t.Errorf("?after=-1: %d, want a 422 error page", status)
		}
	})
}

// TestEngagedPageIsForEveryRoleButNotTheSignedOut: admin, marketer and
// sales (the API's readers) read the page; there is no role that may not,
// so a visitor without a session is the one refused, sent to sign in.
func TestEngagedPageIsForEveryRoleButNotTheSignedOut(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newEngagedSite(t, db)
		for _, role := range []campaign.Role{campaign.RoleAdmin, campaign.RoleMarketer, campaign.RoleSales} {
			if ids, _ := engagedRows(s.page(t, role, "/engaged")); len(ids) != 50 {
				t.Errorf("as %s: %d contacts, want 50", role, len(ids))
			}
		}
		status, location, page := s.get(t, "", "/engaged")
		if status != http.StatusSeeOther || location != "/login?next=%2Fengaged" || strings.Contains(page, "ada@example.com") {
			t.Errorf("signed out: %d to %q, want 303 to /login?next=%%2Fengaged", status, location)
		}
	})
}

// TestEngagedCSVLinkDownloadsWhatThePageLists: the "Download CSV" link
// works with the browser's session and carries the filters, the since
// day as its midnight in the viewer's zone.
func TestEngagedCSVLinkDownloadsWhatThePageLists(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newEngagedSite(t, db)
		page := s.page(t, campaign.RoleSales, "/engaged?since=2026-03-02&campaign="+strconv.FormatInt(s.campaignA, 10))
		href := link(t, page, "Download CSV")
		if !strings.HasPrefix(href, "/api/v1/engaged.csv?") {
			t.Fatalf("Download CSV links to %q", href)
		}
		status, _, body := s.get(t, campaign.RoleSales, href)
		if status != 200 {
			t.Fatalf("GET %s with the session: %d %s", href, status, body)
		}
		rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		var got [][]string
		for _, r := range rows[1:] {
			got = append(got, []string{r[1], r[6], r[7], r[8]})
		}
		want := [][]string{{"ada@example.com", "1", "1", "2026-03-01T20:00:00Z"}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("the CSV (email, human opens, human clicks, last activity) (-want +got):\n%s", diff)
		}
	})
}
