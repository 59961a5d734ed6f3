package templates

import (
	"fmt"
	"strings"
	"time"

	"github.com/funnel-email/funnel/campaign"
)

// Data is what a template sees as dot. Its exported fields and methods are
// the whole vocabulary of a template: Compile refuses any other field.
type Data struct {
	Contact          ContactData
	Campaign         CampaignData
	Sender           SenderData
	UnsubscribeURL   string
	ViewInBrowserURL string
	Preheader        string    // the rendered preheader
	Subject          string    // the rendered subject (layouts put it in <title>)
	Now              time.Time // the time of rendering, for {{ date }}
	attrs            campaign.Attributes
}

// ContactData is the contact as templates see it.
type ContactData struct {
	Email     string
	FirstName string
	LastName  string
	FullName  string
}

// CampaignData names the campaign being sent.
type CampaignData struct {
	ID   int64
	Name string
}

// SenderData is the part of campaign.Sender that templates print.
type SenderData struct {
	CompanyName   string
	PostalAddress string // line breaks replaced by ", "
}

// Attr returns the contact's custom attribute name: a string, a float64 or
// a bool, or "" when the contact has no such attribute, so that
// {{ .Attr "company" | default "your team" }} falls back.
func (d *Data) Attr(name string) any {
	if v, ok := d.attrs[name]; ok && v != nil {
		return v
	}
	return ""
}

// fillData sets d for one render. A campaign renders with one sender, so
// the one-line postal address is kept from the previous render.
func (c *Compiled) fillData(d *Data, in *Input, unsubscribe, view string) {
	ct := &in.Contact
	*d = Data{
		Contact: ContactData{
			Email: ct.Email, FirstName: ct.FirstName, LastName: ct.LastName, FullName: ct.FullName(),
		},
		Campaign: CampaignData{ID: in.Campaign.ID, Name: in.Campaign.Name},
		Sender: SenderData{
			CompanyName:   in.Sender.CompanyName,
			PostalAddress: c.postalAddress(in.Sender.PostalAddress),
		},
		UnsubscribeURL:   unsubscribe,
		ViewInBrowserURL: view,
		Now:              in.Now,
		attrs:            ct.Attributes,
	}
}

func (c *Compiled) postalAddress(s string) string {
	if p := c.postal.Load(); p != nil && p[0] == s {
		return p[1]
	}
	one := oneLine(s, ", ")
	c.postal.Store(&[2]string{s, one})
	return one
}

// oneLine joins the non-empty trimmed lines of s with sep.
func oneLine(s, sep string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return strings.TrimSpace(s)
	}
	var parts []string
	for _, l := range strings.FieldsFunc(s, func(r rune) bool { return r == '\r' || r == '\n' }) {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, sep)
}

// SampleInput is the contact, campaign and sender that Compile renders to
// find errors that only show when a template runs, and that a preview
// without a chosen contact uses.
func SampleInput() Input {
	return Input{
		Contact: campaign.Contact{
			Email: "ana.lopez@example.com", FirstName: "Ana", LastName: "López",
			Attributes: campaign.Attributes{"company": "Example Co", "plan": "pro", "seats": float64(12)},
		},
		Campaign: CampaignData{ID: 1, Name: "Sample campaign"},
		Sender: campaign.Sender{
			CompanyName: "Example Co", PostalAddress: "1 Main Street\nSpringfield, 12345",
			FromName: "Example Co", FromEmail: "news@example.com",
		},
		Now: time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC),
	}
}

// describeFields lists the fields and methods a type offers, for error
// messages that say what was meant.
func describeFields(names []string) string {
	return fmt.Sprintf("known: %s", strings.Join(names, ", "))
}
