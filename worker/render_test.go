package worker_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/funnel-email/funnel/campaign"
)

// A template that cannot be rendered for one contact fails that delivery,
// with the reason kept, and the campaign goes on for everyone else.
func TestRenderFailureFailsOnlyThatDelivery(t *testing.T) {
	r := newRig(t, rigOptions{redisDB: 8})
	ctx := context.Background()
	var contacts []*campaign.Contact
	for i := range 10 {
		// date needs a date: the contact whose renewal is "soon" cannot be
		// rendered, which only shows when the template runs for them.
		renewal := "2027-01-31"
		if i == 3 {
			renewal = "soon"
		}
		c := &campaign.Contact{Email: fmt.Sprintf("render-%d@example.com", i), Attributes: campaign.Attributes{"renewal": renewal}}
		if err := r.db.CreateContact(ctx, c); err != nil {
			t.Fatal(err)
		}
		contacts = append(contacts, c)
	}
	if err := r.db.SetSender(ctx, campaign.Sender{CompanyName: "Acme", PostalAddress: "1 Road, Town", FromEmail: "news@acme.example"}); err != nil {
		t.Fatal(err)
	}
	tpl := &campaign.Template{Name: "plan", Subject: "Your plan", HTML: `<p>{{ with .Attr "renewal" }}Renews on {{ date "2 Jan 2006" "UTC" . }}{{ end }}</p>`}
	if err := r.db.CreateTemplate(ctx, tpl); err != nil {
		t.Fatal(err)
	}
	seg := &campaign.Segment{Name: "render", Rule: &campaign.Rule{Field: "email", Op: campaign.OpStartsWith, Value: "render-"}}
	if err := r.db.CreateSegment(ctx, seg); err != nil {
		t.Fatal(err)
	}
	c := &campaign.Campaign{Name: "render", TemplateID: tpl.ID, SegmentIDs: []int64{seg.ID}, FromEmail: "news@acme.example"}
	if err := r.db.CreateCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}
	r.send(c, time.Now())
	r.wait(c.ID, 30*time.Second, "sent", sentStatus)

	r.exactlyOnce(contacts, map[int64]bool{contacts[3].ID: true})
	var status, reason string
	err := r.db.QueryRowxContext(ctx, r.db.Rebind(`SELECT status, reason FROM deliveries WHERE campaign_id = ? AND contact_id = ?`),
		c.ID, contacts[3].ID).Scan(&status, &reason)
	if err != nil {
		t.Fatal(err)
	}
	if status != string(campaign.DeliveryFailed) || !strings.Contains(reason, "soon") {
		t.Errorf("the unrenderable delivery is %s (%q), want failed with the template error", status, reason)
	}
}
