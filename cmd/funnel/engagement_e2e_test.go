package main

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/funnel-email/funnel/campaign"
)

// browserUA is what a person's mail client opens links with.
const browserUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"

// In funnel dev, a person's click on the pricing link of a caught message
// redirects at once, is recorded as a human click, moves the contact's
// score over the threshold, makes the contact a lead in the sales list,
// and reaches a webhook with a valid signature.
func TestDevClickMakesALeadAndReachesAWebhook(t *testing.T) {
	var (
		mu       sync.Mutex
		received []string
		secret   string
	)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if err := campaign.VerifyWebhook(secret, r.Header.Get("Funnel-Signature"), body, time.Now(), 5*time.Minute); err != nil {
			t.Errorf("webhook signature: %v", err)
		}
		received = append(received, r.Header.Get("Funnel-Event"))
	}))
	defer hook.Close()

	base, token, _ := startDev(t, "sqlite:"+filepath.Join(t.TempDir(), "dev.db"), "-demo")
	c := client{t: t, base: base, token: token}

	var wh struct {
		Secret string `json:"secret"`
	}
	body := fmt.Sprintf(`{"url":%q,"events":["lead.created"]}`, hook.URL)
	if code := c.do("POST", "/api/v1/webhooks", "application/json", strings.NewReader(body), &wh); code != 201 || wh.Secret == "" {
		t.Fatalf("create webhook = %d", code)
	}
	mu.Lock()
	secret = wh.Secret
	mu.Unlock()

	var contact struct {
		ID    int64  `json:"id"`
		Email string `json:"email"`
	}
	body = `{"email":"reader@example.com","first_name":"Rita"}`
	if code := c.do("POST", "/api/v1/contacts", "application/json", strings.NewReader(body), &contact); code != 201 {
		t.Fatalf("create contact = %d", code)
	}
	var seg struct {
		ID int64 `json:"id"`
	}
	c.do("POST", "/api/v1/segments", "application/json", strings.NewReader(`{"name":"Rita","text":"email = \"reader@example.com\""}`), &seg)
	var camp struct {
		ID int64 `json:"id"`
	}
	body = fmt.Sprintf(`{"name":"Pricing","template_id":1,"segment_ids":[%d],"from_email":"news@northwind.example"}`, seg.ID)
	if code := c.do("POST", "/api/v1/campaigns", "application/json", strings.NewReader(body), &camp); code != 201 {
		t.Fatalf("create campaign = %d", code)
	}
	c.do("POST", fmt.Sprintf("/api/v1/campaigns/%d/send", camp.ID), "", nil, nil)
	sentAt := waitFor(t, 60*time.Second, "the campaign to be sent", func() bool {
		var got struct {
			Status string `json:"status"`
		}
		c.do("GET", fmt.Sprintf("/api/v1/campaigns/%d", camp.ID), "", nil, &got)
		return got.Status == "sent"
	})

	pricing := caughtLink(t, c, contact.Email, "Compare plans")
	// A click seconds after delivery is what scanners do; a person takes
	// longer than the classifier's window.
	time.Sleep(time.Until(sentAt.Add(6 * time.Second)))
	req, _ := http.NewRequest("GET", pricing, nil)
	req.Header.Set("User-Agent", browserUA)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "https://northwind.example/pricing" {
		t.Fatalf("click answered %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	var score campaign.ScoreReport
	waitFor(t, 30*time.Second, "the click to be scored", func() bool {
		c.do("GET", fmt.Sprintf("/api/v1/contacts/%d/score", contact.ID), "", nil, &score)
		return score.Score >= score.Threshold && score.Threshold > 0
	})
	if score.Score != 20 {
		t.Errorf("score %v after one human click on a pricing link, want 20 (click 5 + high intent 15)", score.Score)
	}
	var leads struct {
		Leads []campaign.Lead `json:"leads"`
	}
	c.do("GET", "/api/v1/leads", "", nil, &leads)
	if len(leads.Leads) != 1 || leads.Leads[0].ContactID != contact.ID {
		t.Fatalf("sales lead list = %+v, want the reader", leads.Leads)
	}
	waitFor(t, 30*time.Second, "the lead.created webhook", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(received) > 0
	})
	mu.Lock()
	defer mu.Unlock()
	if received[0] != "lead.created" {
		t.Errorf("webhook events %v, want lead.created", received)
	}
}

// waitFor polls cond every 100 ms and returns when it first held.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Now()
}

// caughtLink returns the tracked URL that follows label in the text part
// of the message the dev outbox caught for to.
func caughtLink(t *testing.T, c client, to, label string) string {
	t.Helper()
	var box struct {
		Messages []struct {
			ID int64    `json:"id"`
			To []string `json:"to"`
		} `json:"messages"`
	}
	c.do("GET", "/api/v1/dev/outbox", "", nil, &box)
	for _, m := range box.Messages {
		if len(m.To) == 0 || m.To[0] != to {
			continue
		}
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s/api/v1/dev/outbox?id=%d", c.base, m.ID), nil)
		req.Header.Set("Authorization", "Bearer "+c.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		text := textPart(t, raw)
		re := regexp.MustCompile(regexp.QuoteMeta(label) + `\s*\((http[^)\s]+/t/c/[^)\s]+)\)`)
		if m := re.FindStringSubmatch(text); m != nil {
			return m[1]
		}
		t.Fatalf("no tracked link after %q in:\n%s", label, text)
	}
	t.Fatalf("no caught message to %s", to)
	return ""
}

func textPart(t *testing.T, raw []byte) string {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	_, params, _ := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextRawPart()
		if err != nil {
			t.Fatalf("message has no text part: %v", err)
		}
		if strings.HasPrefix(p.Header.Get("Content-Type"), "text/plain") {
			b, _ := io.ReadAll(quotedprintable.NewReader(p))
			return string(b)
		}
	}
}
