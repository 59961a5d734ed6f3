// Package demo seeds a database with realistic sample data, so that a new
// user of `funnel dev --demo` has contacts to segment and mail at once.
// The data is deterministic: the same seed gives the same contacts.
package demo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
)

var (
	firstNames = []string{"Ana", "Ben", "Chloé", "David", "Elif", "Femi", "Grace", "Hiro", "Ines", "Jonas",
		"Kavya", "Lars", "Maya", "Noah", "Olga", "Pablo", "Quinn", "Rosa", "Sven", "Tara", "Umar", "Vera", "Wei", "Yusuf", "Zoë"}
	lastNames = []string{"Almeida", "Becker", "Chen", "Dubois", "Eriksson", "Fischer", "García", "Hansen", "Ito",
		"Jansen", "Kowalski", "Lopez", "Müller", "Novak", "Okafor", "Petrov", "Rossi", "Schmidt", "Tanaka", "Weber"}
	companies = []string{"Acme Analytics", "Brightpath", "Cobalt Labs", "Driftwood", "Evergreen Foods", "Fjord Systems",
		"Granite Health", "Helix Robotics", "Indigo Travel", "Juniper Legal", "Keystone Retail", "Lumen Energy"}
	countries = []string{"DE", "DE", "DE", "FR", "NL", "US", "US", "GB", "ES", "IT", "SE", "PL", "JP", "BR"}
	plans     = []string{"free", "free", "starter", "starter", "pro", "enterprise"}
	domains   = []string{"example.com", "example.org", "example.net"}
	tags      = []string{"newsletter", "customer", "trial", "webinar", "partner", "vip"}
)

// Contacts returns n deterministic demo contacts. Addresses use the
// example.* domains reserved by RFC 2606, so no real person is mailed.
func Contacts(n int, seed uint64) []*campaign.Contact {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	out := make([]*campaign.Contact, 0, n)
	for i := range n {
		first, last := pick(r, firstNames), pick(r, lastNames)
		consent := base.Add(time.Duration(r.IntN(600*24)) * time.Hour)
		c := &campaign.Contact{
			Email:     fmt.Sprintf("%s.%s.%d@%s", ascii(first), ascii(last), i+1, pick(r, domains)),
			FirstName: first,
			LastName:  last,
			Attributes: campaign.Attributes{
				"company": pick(r, companies),
				"country": pick(r, countries),
				"plan":    pick(r, plans),
				"seats":   float64(1 + r.IntN(200)),
			},
			ConsentSource: "demo",
			ConsentAt:     &consent,
		}
		for _, t := range tags {
			if r.IntN(4) == 0 {
				c.Tags = append(c.Tags, t)
			}
		}
		if r.IntN(40) == 0 {
			c.Status = campaign.ContactUnsubscribed
		}
		out = append(out, c)
	}
	return out
}

// Sender is the demo organisation.
var Sender = campaign.Sender{
	CompanyName: "Northwind Software", PostalAddress: "Example Street 1\n10115 Berlin, Germany",
	FromName: "Northwind", FromEmail: "news@northwind.example", ReplyTo: "hello@northwind.example",
}

// Template is the demo newsletter: personalized, with an intent-tagged
// pricing link.
var Template = campaign.Template{
	Name:      "Product update",
	Subject:   "{{ .Contact.FirstName | default \"Hello\" }}, what's new at Northwind",
	Preheader: "Three things we shipped this month",
	HTML: `<h1>Hi {{ .Contact.FirstName | default "there" }},</h1>
<p>Here is what we shipped for {{ .Attr "company" | default "your team" }} this month.</p>
<ul>
  <li><a href="https://northwind.example/blog/segments">Live segment counts</a></li>
  <li><a href="https://northwind.example/blog/reports">Reports that tell people from scanners</a></li>
</ul>
<p>On the {{ .Attr "plan" | default "free" }} plan? <a href="https://northwind.example/pricing" data-funnel-intent="pricing">Compare plans</a>.</p>`,
}

// SegmentText is the demo segment: the rule a marketer would type.
const SegmentText = `tag "customer" and attr.country = "DE"`

// Result says what Seed added.
type Result struct {
	Contacts  int
	Templates int
	Segments  int
	Campaigns int
}

// Seed fills an empty database with the demo sender, template and n
// contacts. It adds nothing when contacts exist, so restarting
// `funnel dev --demo` never duplicates or overwrites a user's data.
func Seed(ctx context.Context, db *store.DB, n int) (Result, error) {
	var res Result
	count, err := db.CountContacts(ctx)
	if err != nil {
		return res, fmt.Errorf("count contacts: %w", err)
	}
	if count > 0 {
		return res, nil
	}
	for _, c := range Contacts(n, 1) {
		if err := db.CreateContact(ctx, c); err != nil {
			return res, fmt.Errorf("seed contact %s: %w", c.Email, err)
		}
		res.Contacts++
	}
	if s, err := db.Sender(ctx); err != nil {
		return res, err
	} else if s.FromEmail == "" {
		if err := db.SetSender(ctx, Sender); err != nil {
			return res, fmt.Errorf("seed sender: %w", err)
		}
	}
	t := Template
	if err := db.CreateTemplate(ctx, &t); err != nil {
		return res, fmt.Errorf("seed template: %w", err)
	}
	res.Templates++
	rule, err := campaign.ParseRule(SegmentText)
	if err != nil {
		return res, fmt.Errorf("seed segment: %w", err)
	}
	seg := &campaign.Segment{Name: "Customers in Germany", Rule: rule}
	if err := db.CreateSegment(ctx, seg); err != nil {
		return res, fmt.Errorf("seed segment: %w", err)
	}
	res.Segments++
	c := &campaign.Campaign{Name: "Product update for German customers", TemplateID: t.ID, SegmentIDs: []int64{seg.ID},
		FromName: Sender.FromName, FromEmail: Sender.FromEmail, ReplyTo: Sender.ReplyTo}
	if err := db.CreateCampaign(ctx, c); err != nil {
		return res, fmt.Errorf("seed campaign: %w", err)
	}
	res.Campaigns++
	return res, nil
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// ascii lower-cases a name and replaces the accented letters the lists use,
// so that demo addresses stay plain.
func ascii(s string) string {
	return strings.NewReplacer("é", "e", "ë", "e", "ü", "u", "í", "i", "ö", "o").Replace(strings.ToLower(s))
}
