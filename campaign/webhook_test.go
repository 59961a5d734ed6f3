package campaign_test

import (
	"testing"
	"time"

	"github.com/funnel-email/funnel/campaign"
)

func TestWebhookSignatureVerifiesAndRefusesTampering(t *testing.T) {
	now := time.Unix(1767225600, 0)
	body := []byte(`{"id":"7","type":"lead.created"}`)
	h := campaign.SignWebhook("whsec_a", now, body)
	if h[:13] != "t=1767225600," {
		t.Fatalf("header %q does not start with the timestamp", h)
	}
	if err := campaign.VerifyWebhook("whsec_a", h, body, now.Add(time.Minute), 5*time.Minute); err != nil {
		t.Fatalf("valid signature refused: %v", err)
	}
	bad := []struct {
		name, secret, header string
		body                 []byte
		at                   time.Time
	}{
		{"other secret", "whsec_b", h, body, now},
		{"edited body", "whsec_a", h, []byte(`{"id":"8","type":"lead.created"}`), now},
		{"edited timestamp", "whsec_a", "t=1767225601" + h[12:], body, now},
		{"too old", "whsec_a", h, body, now.Add(6 * time.Minute)},
		{"malformed", "whsec_a", "v1=abc", body, now},
	}
	for _, b := range bad {
		if err := campaign.VerifyWebhook(b.secret, b.header, b.body, b.at, 5*time.Minute); err == nil {
			t.Errorf("%s: accepted", b.name)
		}
	}
}

func TestDecayIsStepwiseOnInactivity(t *testing.T) {
	r := campaign.DefaultScoreRules()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	evs := []campaign.Event{
		{ID: 1, ContactID: 1, CampaignID: 1, Kind: campaign.EventClicked, Link: "https://x/a", Human: true, OccurredAt: t0},
		{ID: 2, ContactID: 1, CampaignID: 1, Kind: campaign.EventOpened, Human: true, OccurredAt: t0.Add(20 * day)},
	}
	for _, tt := range []struct {
		at   time.Duration
		want float64
	}{{49 * day, 6}, {50 * day, 3}, {80 * day, 1.5}, {110 * day, 0.75}} {
		if got := r.Replay(evs, nil, t0.Add(tt.at)).Score; got != tt.want {
			t.Errorf("day %v: %v, want %v (the open at day 20 restarts the half-life)", tt.at/day, got, tt.want)
		}
	}
}
