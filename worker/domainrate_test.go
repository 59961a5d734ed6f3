package worker_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/mailer"
	"github.com/funnel-email/funnel/outbox"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
	"github.com/funnel-email/funnel/templates"
	"github.com/funnel-email/funnel/token"
	"github.com/funnel-email/funnel/worker"
)

// newDomainRig is newRig with per-recipient-domain rates: two worker
// processes' worth of Senders (each with its own asynq server) on one
// Redis, so that the limit must hold across processes.
func newDomainRig(t *testing.T, redisN int, rates map[string]float64) *rig {
	t.Helper()
	db := storetest.Open(t, store.Postgres)
	rdb := redisDB(t, redisN)
	box, err := outbox.Listen("127.0.0.1:0", outbox.Options{Keep: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { box.Close() })
	r := &rig{t: t, db: db, rdb: rdb, smtp: box}
	host, port, _ := net.SplitHostPort(box.Addr())
	p, _ := strconv.Atoi(port)
	codec, err := token.NewCodec([]byte(strings.Repeat("s", 32)))
	if err != nil {
		t.Fatal(err)
	}
	composer, err := mailer.NewComposer(mailer.ComposerConfig{BounceDomain: "bounces.example.com"}, codec)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r.client = worker.NewClient(rdb)
	r.client.BucketSize = 25
	for range 2 {
		pool, err := mailer.NewPool(mailer.ServerConfig{Config: mailer.Config{Host: host, Port: p, TLS: mailer.TLSNone, Timeout: 5 * time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		srv := worker.NewServer(worker.Config{Redis: rdb, Logger: log, Concurrency: 4, ShutdownTimeout: 10 * time.Second})
		worker.NewSender(worker.SenderConfig{
			DB: db, Redis: rdb, Client: r.client, Pool: pool, Composer: composer,
			Templates: templates.Options{PublicURL: "https://t.example.com", Codec: codec}, Logger: log,
			Chunk: 20, Lease: 3 * time.Second, RetryBase: 50 * time.Millisecond, StatusEvery: 100 * time.Millisecond,
			Stopping: srv.Stopping(), DomainRates: rates,
		}).Register(srv)
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Shutdown)
	}
	return r
}

// Each listed recipient domain gets at most its rate, whichever workers
// send to it (here 8 handlers in two servers, over buckets that mix the
// domains): in any window of w seconds the SMTP server receives at most
// rate*w messages for that domain, plus one (the limiter's burst). The
// check is on the server's receive times per domain, not on how long the
// campaign took.
func TestDomainRatesBoundEachDomainsMessagesInEveryWindow(t *testing.T) {
	const jitter = 250 * time.Millisecond // grant to receipt: render and SMTP
	rates := map[string]float64{"slow.example": 8, "steady.example": 20}
	counts := map[string]int{"slow.example": 24, "steady.example": 40, "free.example": 60}
	r := newDomainRig(t, 5, rates)
	c, _ := r.fixture(0, "dom")
	ctx := context.Background()
	var contacts []*campaign.Contact
	for i := 0; len(contacts) < 124; i++ {
		for _, d := range []string{"slow.example", "steady.example", "free.example"} {
			if counts[d] == 0 {
				continue
			}
			counts[d]--
			ct := &campaign.Contact{Email: fmt.Sprintf("dom-%d@%s", i, d), FirstName: "Ann"}
			if err := r.db.CreateContact(ctx, ct); err != nil {
				t.Fatal(err)
			}
			contacts = append(contacts, ct)
		}
	}
	r.send(c, time.Now())
	_, p := r.wait(c.ID, 30*time.Second, "sent", sentStatus)
	if p.Counts[campaign.DeliverySent] != int64(len(contacts)) {
		t.Fatalf("progress %+v, want %d sent", p.Counts, len(contacts))
	}
	r.exactlyOnce(contacts, nil)

	byDomain := map[string][]time.Time{}
	for _, m := range r.smtp.Messages() {
		d := m.To[0][strings.LastIndexByte(m.To[0], '@')+1:]
		byDomain[d] = append(byDomain[d], m.ReceivedAt)
	}
	for d, rate := range rates {
		ts := byDomain[d]
		slices.SortFunc(ts, time.Time.Compare)
		for _, w := range []time.Duration{time.Second, 2 * time.Second} {
			limit := int(rate*(w+jitter).Seconds()) + 1
			got, at := maxInWindow(ts, w)
			t.Logf("%s: at most %d messages in any %s window (limit %d)", d, got, w, limit)
			if got > limit {
				t.Errorf("%s: %d messages arrived in the %s from %s; at %g/s at most %d may", d, got, w, at.Format("15:04:05.000"), rate, limit)
			}
		}
	}
}
