package store_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
)

func mustRule(t *testing.T, text string) *campaign.Rule {
	t.Helper()
	r, err := campaign.ParseRule(text)
	if err != nil {
		t.Fatalf("parse %s: %v", text, err)
	}
	return r
}

func TestSegmentLifecycle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		de := &campaign.Segment{Name: "  Germany ", Description: "DE contacts", Rule: mustRule(t, `attr.country = "DE"`)}
		if err := db.CreateSegment(ctx, de); err != nil {
			t.Fatal(err)
		}
		got, err := db.FindSegment(ctx, de.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(de, got); diff != "" || got.Name != "Germany" {
			t.Errorf("stored segment differs (-created +found):\n%s", diff)
		}
		if err := db.CreateSegment(ctx, &campaign.Segment{Name: "Germany", Rule: mustRule(t, `opened`)}); campaign.ErrorCode(err) != campaign.ECONFLICT {
			t.Errorf("duplicate name: got %v, want ECONFLICT", err)
		}
		err = db.CreateSegment(ctx, &campaign.Segment{Name: "bad", Rule: mustRule(t, `opened and segment(999)`)})
		if e, ok := err.(*campaign.Error); !ok || e.Code != campaign.EINVALID || e.Details[0].Field != "rule.all[1].segment" {
			t.Errorf("missing referenced segment: got %#v", err)
		}

		engaged := &campaign.Segment{Name: "Engaged Germans", Rule: mustRule(t, `segment(`+itoa(de.ID)+`) and opened(within: 30d)`)}
		if err := db.CreateSegment(ctx, engaged); err != nil {
			t.Fatal(err)
		}
		// Making "Germany" depend on "Engaged Germans" would close a loop.
		loop := mustRule(t, `segment(`+itoa(engaged.ID)+`)`)
		if _, err := db.UpdateSegment(ctx, de.ID, campaign.SegmentPatch{Rule: loop}); campaign.ErrorCode(err) != campaign.EINVALID ||
			!strings.Contains(err.Error(), "refers back to itself") {
			t.Errorf("cycle: got %v, want EINVALID", err)
		}
		name := "Deutschland"
		updated, err := db.UpdateSegment(ctx, de.ID, campaign.SegmentPatch{Name: &name, Rule: mustRule(t, `attr.country in ["DE", "AT"]`)})
		if err != nil || updated.Name != name || updated.Rule.String() != `attr.country in ["DE", "AT"]` {
			t.Fatalf("update: %+v, %v", updated, err)
		}
		if err := db.DeleteSegment(ctx, de.ID); campaign.ErrorCode(err) != campaign.ECONFLICT {
			t.Errorf("deleting a referenced segment: got %v, want ECONFLICT", err)
		}
		list, err := db.ListSegments(ctx)
		if err != nil || len(list) != 2 || list[0].ID != de.ID || list[1].ID != engaged.ID {
			t.Errorf("list: %v, %v", list, err)
		}
		if err := db.DeleteSegment(ctx, engaged.ID); err != nil {
			t.Fatal(err)
		}
		if err := db.DeleteSegment(ctx, de.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := db.FindSegment(ctx, de.ID); campaign.ErrorCode(err) != campaign.ENOTFOUND {
			t.Errorf("after delete: got %v, want ENOTFOUND", err)
		}
		if err := db.DeleteSegment(ctx, de.ID); campaign.ErrorCode(err) != campaign.ENOTFOUND {
			t.Errorf("delete twice: got %v, want ENOTFOUND", err)
		}
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestSegmentContactsAndEngagement(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2026, 5, 10, 12, 0, 0, 0, time.UTC)
		store.SetNow(db, func() time.Time { return now })
		var ids []int64
		for i, country := range []string{"DE", "DE", "FR", "DE"} {
			c := &campaign.Contact{Email: "c" + itoa(int64(i)) + "@x.io", Attributes: campaign.Attributes{"country": country}, Tags: []string{"customer"}}
			if err := db.CreateContact(ctx, c); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, c.ID)
		}
		err := db.InsertEvents(ctx, []campaign.Event{
			{ContactID: ids[0], CampaignID: 12, Kind: campaign.EventClicked, Human: true, Link: "https://x.io/pricing", OccurredAt: now.Add(-time.Hour)},
			{ContactID: ids[1], CampaignID: 12, Kind: campaign.EventClicked, Human: false, Reason: "scanner", OccurredAt: now.Add(-time.Hour)},
			{ContactID: ids[3], CampaignID: 12, Kind: campaign.EventClicked, Human: true, OccurredAt: now.Add(-time.Hour)},
			{ContactID: ids[3], Kind: campaign.EventUnsubscribed, OccurredAt: now.Add(-time.Minute)},
			{ContactID: ids[2], CampaignID: 12, Kind: campaign.EventClicked, Human: true, OccurredAt: now.Add(-40 * 24 * time.Hour)},
		})
		if err != nil {
			t.Fatal(err)
		}
		rule := mustRule(t, `attr.country = "DE" and tag "customer" and clicked(within: 30d) and not unsubscribed`)
		if n, err := db.CountSegment(ctx, rule); err != nil || n != 1 {
			t.Errorf("count = %d, %v; want 1 (the scanner click and the unsubscriber do not count)", n, err)
		}
		machine := mustRule(t, `clicked(campaign: 12, include_machine: true, within: 30d)`)
		sample, err := db.SampleSegment(ctx, machine, 20)
		if err != nil || len(sample) != 3 || sample[0].ID != ids[0] || sample[1].ID != ids[1] {
			t.Errorf("sample with machine clicks: %v, %v", sample, err)
		}
		seg := &campaign.Segment{Name: "clickers", Rule: mustRule(t, `clicked`)}
		if err := db.CreateSegment(ctx, seg); err != nil {
			t.Fatal(err)
		}
		var paged []int64
		for after := int64(0); ; {
			page, err := db.ListSegmentContacts(ctx, seg.ID, after, 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			paged = append(paged, page[0].ID)
			after = page[0].ID
		}
		if diff := cmp.Diff([]int64{ids[0], ids[2], ids[3]}, paged); diff != "" {
			t.Errorf("paged segment contacts (-want +got):\n%s", diff)
		}
		if _, err := db.ListSegmentContacts(ctx, 999, 0, 10); campaign.ErrorCode(err) != campaign.ENOTFOUND {
			t.Errorf("unknown segment: got %v", err)
		}
		events, err := db.ContactEvents(ctx, ids[1])
		if err != nil || len(events) != 1 || events[0].Reason != "scanner" || events[0].CampaignID != 12 || !events[0].OccurredAt.Equal(now.Add(-time.Hour)) {
			t.Errorf("contact events: %+v, %v", events, err)
		}
		if err := db.InsertEvents(ctx, []campaign.Event{{ContactID: ids[0], Kind: "read", OccurredAt: now}}); campaign.ErrorCode(err) != campaign.EINVALID ||
			!strings.Contains(err.Error(), "events[0].kind") {
			t.Errorf("invalid event: got %v", err)
		}
	})
}

// Hostile values are data: they select exactly the contacts that hold them,
// never appear in the SQL text, and leave the schema alone.
func TestSegmentValuesAreNeverSQL(t *testing.T) {
	hostile := []string{
		`O'Brien`, `'; DROP TABLE contacts; --`, `x" OR 1=1 --`, `back\slash\`, `semi;colon`,
		`-- comment`, `/* c */`, `%_`, `Zoë 日本 🙂`, `$1`, `?`, `'$.x'`, `\'`,
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		for i, v := range hostile {
			c := &campaign.Contact{Email: "h" + itoa(int64(i)) + "@x.io", FirstName: v, Attributes: campaign.Attributes{"note": v}, Tags: []string{v}}
			if err := db.CreateContact(ctx, c); err != nil {
				t.Fatalf("%q: %v", v, err)
			}
		}
		for i, v := range hostile {
			tag := strings.ToLower(strings.TrimSpace(v))
			for _, r := range []*campaign.Rule{
				{Attr: "note", Op: campaign.OpEq, Value: v},
				{Field: campaign.FieldFirstName, Op: campaign.OpEq, Value: v},
				{Field: campaign.FieldFirstName, Op: campaign.OpContains, Value: v},
				{Attr: "note", Op: campaign.OpEndsWith, Value: v},
				{Attr: "note", Op: campaign.OpIn, Value: []any{v, "nobody"}},
				{Field: campaign.FieldTags, Op: campaign.OpHas, Value: tag},
			} {
				sample, err := db.SampleSegment(ctx, r, 50)
				if err != nil {
					t.Fatalf("%s: %v", r, err)
				}
				if len(sample) < 1 || sample[0].Email != "h"+itoa(int64(i))+"@x.io" {
					t.Errorf("%s selected %d contacts, first %v; want h%d@x.io", r, len(sample), sample, i)
				}
				if where, _, _ := store.CompileRule(db, r, time.Now()); len(v) > 1 && strings.Contains(where, v) {
					t.Errorf("value %q appears in SQL: %s", v, where)
				}
			}
			// Exactly one contact holds each value.
			if n, err := db.CountSegment(ctx, &campaign.Rule{Attr: "note", Op: campaign.OpEq, Value: v}); err != nil || n != 1 {
				t.Errorf("count %q = %d, %v", v, n, err)
			}
		}
		if n, err := db.CountContacts(ctx); err != nil || n != int64(len(hostile)) {
			t.Fatalf("contacts after hostile rules: %d, %v", n, err)
		}
		for _, bad := range []*campaign.Rule{
			{Attr: "note", Op: campaign.OpEq, Value: "nul\x00byte"},
			{Attr: "note", Op: campaign.OpEq, Value: "bad \xff utf8"},
			{Attr: `x') OR 1=1 --`, Op: campaign.OpExists},
			{Attr: `x"`, Op: campaign.OpExists},
			{Attr: `a\`, Op: campaign.OpExists},
			{Attr: "a;b", Op: campaign.OpExists},
			{Attr: "ключ", Op: campaign.OpExists},
		} {
			if _, err := db.CountSegment(ctx, bad); campaign.ErrorCode(err) != campaign.EINVALID {
				t.Errorf("%#v: got %v, want EINVALID", bad, err)
			}
			if err := db.CreateAttributeIndex(ctx, bad.Attr); bad.Attr != "note" && campaign.ErrorCode(err) != campaign.EINVALID {
				t.Errorf("index on %q: got %v, want EINVALID", bad.Attr, err)
			}
		}
	})
}

// The attribute index must be the one the planner picks for the rule's
// expression: the same spelling in CREATE INDEX and in the query, and on
// Postgres a count that needs no table page.
func TestAttributeIndexIsUsedByRules(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		for range 2 { // idempotent
			if err := db.CreateAttributeIndex(ctx, "country"); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.CreateAttributeIndex(ctx, "Country"); err != nil {
			t.Fatal(err)
		}
		if store.AttrIndexName("country") == store.AttrIndexName("Country") {
			t.Fatal("keys that differ in case share an index name")
		}
		where, args, err := store.CompileRule(db, mustRule(t, `attr.country = "DE"`), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		q := "SELECT count(*) FROM contacts WHERE " + where
		conn, err := db.Connx(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var plan []string
		if db.Dialect == store.Postgres {
			// The table is empty: forbid the sequential scan to see whether
			// the index can serve the expression at all.
			if _, err := conn.ExecContext(ctx, "SET enable_seqscan = off"); err != nil {
				t.Fatal(err)
			}
			err = conn.SelectContext(ctx, &plan, "EXPLAIN "+db.Rebind(q), args...)
		} else {
			var rows []struct {
				ID      int    `db:"id"`
				Parent  int    `db:"parent"`
				NotUsed int    `db:"notused"`
				Detail  string `db:"detail"`
			}
			err = conn.SelectContext(ctx, &rows, "EXPLAIN QUERY PLAN "+q, args...)
			for _, r := range rows {
				plan = append(plan, r.Detail)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		want := store.AttrIndexName("country")
		if db.Dialect == store.Postgres {
			// Postgres answers a count from an index alone only when the
			// index is on a column, never on an expression.
			want = "Index Only Scan using " + want
		}
		if !strings.Contains(strings.Join(plan, "\n"), want) {
			t.Errorf("plan does not show %q:\n%s", want, strings.Join(plan, "\n"))
		}
	})
}
