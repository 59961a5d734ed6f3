package demo_test

import (
	"testing"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/demo"
	"github.com/funnel-email/funnel/mailer"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
	"github.com/funnel-email/funnel/templates"
	"github.com/funnel-email/funnel/token"
)

func TestSeedFillsAnEmptyDatabaseOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		res, err := demo.Seed(t.Context(), db, 50)
		if err != nil || res != (demo.Result{Contacts: 50, Templates: 1, Segments: 1, Campaigns: 1}) {
			t.Fatalf("first seed: %+v %v", res, err)
		}
		again, err := demo.Seed(t.Context(), db, 50)
		if err != nil || again != (demo.Result{}) {
			t.Fatalf("second seed added %+v %v", again, err)
		}
		if n, _ := db.CountContacts(t.Context()); n != 50 {
			t.Errorf("contacts = %d, want 50", n)
		}
		rule, _ := campaign.ParseRule(demo.SegmentText)
		if n, err := db.CountSegment(t.Context(), rule); err != nil || n == 0 {
			t.Errorf("the demo segment selects %d contacts (%v); a new user's first campaign would reach no one", n, err)
		}
	})
}

func TestDemoTemplatePreviews(t *testing.T) {
	codec, _ := token.NewCodec([]byte("0123456789abcdef0123456789abcdef"))
	composer, err := mailer.NewComposer(mailer.ComposerConfig{BounceDomain: "bounces.example.com"}, codec)
	if err != nil {
		t.Fatal(err)
	}
	m := &mailer.TemplateMail{Options: templates.Options{PublicURL: "http://127.0.0.1:8080", Codec: codec}, Composer: composer}
	c := demo.Contacts(1, 1)[0]
	p, err := m.Preview(demo.Template, demo.Sender, c)
	if err != nil {
		t.Fatalf("the demo template does not render: %v", err)
	}
	if want := c.FirstName + ", what's new at Northwind"; p.Subject != want {
		t.Errorf("subject %q, want %q", p.Subject, want)
	}
}
