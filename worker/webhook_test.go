package worker_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
	"github.com/funnel-email/funnel/worker"
)

// receiver is a CRM endpoint in the test: it verifies every signature,
// answers 503 while down, and records what it accepted by delivery ID.
type receiver struct {
	t      *testing.T
	secret atomic.Value
	down   atomic.Bool
	mu     sync.Mutex
	got    map[string]campaign.WebhookPayload
	dups   int
	bad    int
	failed int
	seen   chan string
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	secret, _ := rc.secret.Load().(string)
	if err := campaign.VerifyWebhook(secret, r.Header.Get(campaign.SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
		rc.mu.Lock()
		rc.bad++
		rc.mu.Unlock()
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if rc.down.Load() {
		rc.mu.Lock()
		rc.failed++
		rc.mu.Unlock()
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	var p campaign.WebhookPayload
	if err := json.Unmarshal(body, &p); err != nil || p.ID != r.Header.Get("Funnel-Delivery") {
		rc.t.Errorf("bad body %s (%v)", body, err)
	}
	rc.mu.Lock()
	if _, ok := rc.got[p.ID]; ok {
		rc.dups++
	}
	rc.got[p.ID] = p
	rc.mu.Unlock()
	rc.seen <- p.Type
}

func TestWebhooksSurviveAnOutageAndArriveSigned(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	if storetest.Dialects(t)[len(storetest.Dialects(t))-1] == store.Postgres {
		db = storetest.Open(t, store.Postgres)
	}
	rdb := redisDB(t, 2)
	rc := &receiver{t: t, got: map[string]campaign.WebhookPayload{}, seen: make(chan string, 100)}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)

	wh := &campaign.Webhook{URL: srv.URL + "/hooks/funnel", Active: true, Events: campaign.WebhookEvents}
	if err := db.CreateWebhook(t.Context(), wh, false); err == nil {
		t.Fatal("a loopback webhook was accepted without AllowPrivate")
	}
	if err := db.CreateWebhook(t.Context(), wh, true); err != nil {
		t.Fatal(err)
	}
	rc.secret.Store(wh.Secret)

	log := slog.New(slog.DiscardHandler)
	s := worker.NewServer(worker.Config{Redis: rdb, Logger: log, Concurrency: 4})
	hooks := worker.NewWebhooks(worker.WebhookConfig{DB: db, Redis: rdb, Logger: log, AllowPrivate: true,
		Backoff: func(int) time.Duration { return 100 * time.Millisecond }})
	t.Cleanup(func() { hooks.Close() })
	hooks.Register(s)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	scorer := &worker.Scorer{DB: db, Webhooks: hooks}

	// The endpoint is down while a contact becomes a lead and another
	// unsubscribes.
	rc.down.Store(true)
	a := &campaign.Contact{Email: "hot@example.com"}
	b := &campaign.Contact{Email: "bye@example.com"}
	for _, c := range []*campaign.Contact{a, b} {
		if err := db.CreateContact(t.Context(), c); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC()
	err := db.InsertEvents(t.Context(), []campaign.Event{
		{ContactID: a.ID, CampaignID: 1, Kind: campaign.EventClicked, Human: true, Link: "https://x.test/1", OccurredAt: now},
		{ContactID: a.ID, CampaignID: 1, Kind: campaign.EventClicked, Human: true, Link: "https://x.test/2", OccurredAt: now},
		{ContactID: a.ID, CampaignID: 1, Kind: campaign.EventClicked, Human: true, Link: "https://x.test/3", OccurredAt: now},
		{ContactID: a.ID, CampaignID: 1, Kind: campaign.EventClicked, Human: true, Link: "https://x.test/4", OccurredAt: now},
		{ContactID: b.ID, CampaignID: 1, Kind: campaign.EventUnsubscribed, OccurredAt: now},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := scorer.Once(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "two failed attempts while down", func() bool { rc.mu.Lock(); defer rc.mu.Unlock(); return rc.failed >= 4 })

	// It comes back: every event arrives, and a lead update made now too.
	rc.down.Store(false)
	leads, _ := db.ListLeads(t.Context(), campaign.LeadFilter{})
	st := campaign.LeadAccepted
	if _, err := db.UpdateLead(t.Context(), leads[0].ID, campaign.LeadPatch{Status: &st}, 0); err != nil {
		t.Fatal(err)
	}
	if err := scorer.Once(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	types := map[string]int{}
	for range 3 {
		select {
		case typ := <-rc.seen:
			types[typ]++
		case <-time.After(15 * time.Second):
			t.Fatalf("timed out; received %v", types)
		}
	}
	want := map[string]int{campaign.WebhookLeadCreated: 1, campaign.WebhookLeadUpdated: 1, campaign.WebhookContactUnsubscribe: 1}
	for k, v := range want {
		if types[k] != v {
			t.Errorf("received %v, want %v", types, want)
		}
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.bad != 0 || rc.dups != 0 {
		t.Errorf("%d requests failed signature verification, %d duplicates", rc.bad, rc.dups)
	}
	var ds []campaign.WebhookDelivery
	waitFor(t, "the deliveries to be recorded", func() bool {
		ds, _ = db.WebhookDeliveries(t.Context(), wh.ID, 10)
		for _, d := range ds {
			if d.Status == campaign.WebhookPending {
				return false
			}
		}
		return len(ds) == 3
	})
	for _, d := range ds {
		if d.Status != campaign.WebhookDelivered || len(d.Log) != d.Attempts || d.Log[len(d.Log)-1].StatusCode != 200 {
			t.Errorf("delivery %d (%s): status %s, %d attempts, log %+v", d.ID, d.Event, d.Status, d.Attempts, d.Log)
		}
		if d.Event != campaign.WebhookLeadUpdated && (d.Attempts < 2 || d.Log[0].StatusCode != 503) {
			t.Errorf("delivery %d (%s) made while down: log %+v, want a 503 first", d.ID, d.Event, d.Log)
		}
	}
}

func TestWebhookGivesUpAfterTheDeadline(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	rdb := redisDB(t, 2)
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(srv.Close)
	wh := &campaign.Webhook{URL: srv.URL, Active: true, Events: []string{campaign.WebhookContactUnsubscribe}}
	if err := db.CreateWebhook(t.Context(), wh, true); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	s := worker.NewServer(worker.Config{Redis: rdb, Logger: log, Concurrency: 2})
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	hooks := worker.NewWebhooks(worker.WebhookConfig{DB: db, Redis: rdb, Logger: log, AllowPrivate: true,
		Backoff: func(int) time.Duration { return 50 * time.Millisecond },
		Now:     func() time.Time { return time.Unix(0, clock.Load()) }})
	t.Cleanup(func() { hooks.Close() })
	hooks.Register(s)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	c := &campaign.Contact{Email: "gone@example.com"}
	_ = db.CreateContact(t.Context(), c)
	_ = db.InsertEvents(t.Context(), []campaign.Event{{ContactID: c.ID, Kind: campaign.EventUnsubscribed, OccurredAt: time.Now()}})
	if err := (&worker.Scorer{DB: db, Webhooks: hooks}).Once(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "two attempts", func() bool { return hits.Load() >= 2 })
	clock.Add(int64(25 * time.Hour))
	waitFor(t, "the delivery to fail for good", func() bool {
		ds, _ := db.WebhookDeliveries(t.Context(), wh.ID, 1)
		return len(ds) == 1 && ds[0].Status == campaign.WebhookFailed
	})
	n := hits.Load()
	time.Sleep(300 * time.Millisecond) // several backoffs: nothing more is sent
	if hits.Load() != n {
		t.Errorf("a failed delivery was retried: %d -> %d attempts", n, hits.Load())
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
