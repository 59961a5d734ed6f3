package ui

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/funnel-email/funnel/campaign"
)

// TestWebhookPageShowsEachDeliveryWithItsAttempts: the delivery log shows
// status, attempts, the last response code and error, when, and every
// attempt, with the server's text escaped.
func TestWebhookPageShowsEachDeliveryWithItsAttempts(t *testing.T) {
	p := New(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	at := time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
	wh := &campaign.Webhook{ID: 7, URL: "https://crm.example.com/hook", Events: []string{campaign.WebhookLeadCreated}, Active: true, SecretPrefix: "whsec_abcd"}
	ds := []campaign.WebhookDelivery{
		{ID: 12, WebhookID: 7, Event: campaign.WebhookLeadCreated, Status: campaign.WebhookFailed, Attempts: 2, StatusCode: 500,
			Error: "<b>upstream</b> timeout", CreatedAt: at, UpdatedAt: at.Add(time.Minute),
			Log: []campaign.WebhookAttempt{{Attempt: 1, Error: "dial tcp: connection refused", DurationMS: 3, At: at},
				{Attempt: 2, StatusCode: 500, Error: "<b>upstream</b> timeout", DurationMS: 120, At: at.Add(time.Minute)}}},
		{ID: 11, WebhookID: 7, Event: campaign.WebhookLeadUpdated, Status: campaign.WebhookDelivered, Attempts: 1, StatusCode: 204, CreatedAt: at, UpdatedAt: at,
			Log: []campaign.WebhookAttempt{{Attempt: 1, StatusCode: 204, DurationMS: 40, At: at}}},
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/webhooks/7", nil)
	req = req.WithContext(WithViewer(req.Context(), &Viewer{UserID: 1, Email: "m@example.com", Role: campaign.RoleMarketer}))
	p.render(rec, req, 200, "webhook", wh.URL, "webhooks", map[string]any{"Webhook": wh, "Deliveries": ds, "Events": campaign.WebhookEvents,
		"Limit": 2, "More": true, "MoreLimit": 8})
	html := rec.Body.String()
	if rec.Code != 200 {
		t.Fatalf("render: %d %s", rec.Code, html)
	}
	for _, want := range []string{
		`<span class="badge failed">failed</span>`, `<td data-label="Attempts">2</td>`, `<td data-label="Response">HTTP 500</td>`,
		"&lt;b&gt;upstream&lt;/b&gt; timeout", "2 attempts", "2026-03-01 09:30 UTC: no response, 3 ms — dial tcp: connection refused",
		"2026-03-01 09:31 UTC: HTTP 500, 120 ms", `<span class="badge sent">delivered</span>`, `<td data-label="Response">HTTP 204</td>`, "1 attempt<",
		"The latest 2 deliveries, newest first.", `href="/webhooks/7?limit=8"`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("the webhook page does not contain %q", want)
		}
	}
	if strings.Contains(html, "<b>upstream") {
		t.Error("the server's error text is not escaped")
	}
}
