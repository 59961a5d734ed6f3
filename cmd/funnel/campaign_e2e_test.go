package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A campaign goes from draft through scheduled to sent in funnel dev, on
// SQLite and the in-process Redis, and every member of its audience finds
// exactly one message in the outbox.
func TestDevSendsACampaignToItsSegment(t *testing.T) {
	base, token, _ := startDev(t, "sqlite:"+filepath.Join(t.TempDir(), "dev.db"), "-demo")
	c := client{t: t, base: base, token: token}

	var seg struct {
		ID    int64 `json:"id"`
		Count int64 `json:"count"`
	}
	body := `{"name":"VIPs in Germany","text":"tag \"vip\" and attr.country = \"DE\""}`
	if code := c.do("POST", "/api/v1/segments", "application/json", strings.NewReader(body), &seg); code != 201 {
		t.Fatalf("create segment = %d", code)
	}
	var preview struct {
		Count int64 `json:"count"`
	}
	if code := c.do("POST", "/api/v1/segments/preview", "application/json", strings.NewReader(`{"text":"tag \"vip\" and attr.country = \"DE\" and status = \"active\""}`), &preview); code != 200 || preview.Count == 0 {
		t.Fatalf("segment preview = %d, count %d", code, preview.Count)
	}

	var camp struct {
		ID     int64  `json:"id"`
		Status string `json:"status"`
	}
	body = fmt.Sprintf(`{"name":"November update","template_id":1,"segment_ids":[%d],"from_name":"Northwind","from_email":"news@northwind.example"}`, seg.ID)
	if code := c.do("POST", "/api/v1/campaigns", "application/json", strings.NewReader(body), &camp); code != 201 || camp.Status != "draft" {
		t.Fatalf("create campaign = %d %+v", code, camp)
	}
	if code := c.do("POST", fmt.Sprintf("/api/v1/campaigns/%d/send", camp.ID), "", nil, &camp); code != 200 || camp.Status != "scheduled" {
		t.Fatalf("send = %d %+v", code, camp)
	}

	var got struct {
		Status   string `json:"status"`
		Progress struct {
			Audience int64            `json:"audience"`
			Counts   map[string]int64 `json:"counts"`
		} `json:"progress"`
	}
	deadline := time.Now().Add(60 * time.Second)
	for got.Status != "sent" {
		if time.Now().After(deadline) {
			t.Fatalf("campaign did not finish: %+v", got)
		}
		time.Sleep(100 * time.Millisecond)
		c.do("GET", fmt.Sprintf("/api/v1/campaigns/%d", camp.ID), "", nil, &got)
	}
	if got.Progress.Audience != preview.Count || got.Progress.Counts["sent"] != preview.Count {
		t.Errorf("audience %d, sent %d; the segment's active members are %d", got.Progress.Audience, got.Progress.Counts["sent"], preview.Count)
	}

	var outbox struct {
		Messages []struct {
			To      []string `json:"to"`
			Subject string   `json:"subject"`
		} `json:"messages"`
	}
	c.do("GET", "/api/v1/dev/outbox", "", nil, &outbox)
	seen := map[string]int{}
	for _, m := range outbox.Messages {
		if strings.HasSuffix(m.Subject, "what's new at Northwind") {
			seen[m.To[0]]++
		}
	}
	if int64(len(seen)) != preview.Count {
		t.Errorf("outbox has messages for %d recipients, want %d", len(seen), preview.Count)
	}
	for to, n := range seen {
		if n != 1 {
			t.Errorf("%s received %d messages", to, n)
		}
	}
}
