package worker_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/outbox"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
)

// Reliability test 1: real `funnel work` processes against Postgres and
// Redis are SIGKILLed three times mid-campaign and restarted. Every
// contact gets exactly one message, except deliveries reported uncertain,
// which got at most one and number at most the SMTP connections open at
// the kills; the campaign ends sent; the ledger's count equals the SMTP
// server's.
func TestSIGKILLedWorkersNeitherLoseNorDoubleAMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs funnel work processes")
	}
	const (
		contacts    = 5000
		procs       = 2
		concurrency = 4
		kills       = 3
	)
	dbURL := storetest.URL(t, store.Postgres)
	redisDB(t, 9) // flushed before and after
	redisURL := redisURLWithDB(t, storetest.RedisURL(t), 9)
	ctx := context.Background()
	db, err := store.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	box, err := outbox.Listen("127.0.0.1:0", outbox.Options{Keep: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer box.Close()

	r := &rig{t: t, db: db}
	if _, err := db.ExecContext(ctx, fmt.Sprintf(`INSERT INTO contacts (email, first_name, created_at, updated_at)
		SELECT 'kill-' || g || '@example.com', 'Ann', now(), now() FROM generate_series(1, %d) g`, contacts)); err != nil {
		t.Fatal(err)
	}
	c, _ := r.fixture(0, "kill")
	c.Rate = 300 // about 17 s of sending, so that the kills land mid-campaign
	if err := db.UpdateCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}

	env := workEnv(dbURL, redisURL, box.Addr())
	var logs syncBuffer
	logOnFailure(t, &logs)
	start := func() *workProcess {
		return startWork(t, env, &logs, "-concurrency", fmt.Sprint(concurrency), "-lease", "2s")
	}
	var running []*workProcess
	for range procs {
		running = append(running, start())
	}
	if _, err := db.ScheduleCampaign(ctx, c.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for k := range kills {
		time.Sleep(time.Duration(1500+rnd.IntN(2500)) * time.Millisecond)
		before := box.Accepted()
		for _, p := range running {
			p.kill()
		}
		t.Logf("kill %d: %d messages accepted so far", k+1, before)
		if before >= contacts {
			t.Fatalf("the campaign finished before kill %d; slow it down", k+1)
		}
		running = running[:0]
		for range procs {
			running = append(running, start())
		}
	}
	last := time.Now()
	got, p := r.wait(c.ID, 3*time.Minute, "sent", func(c *campaign.Campaign, p *campaign.Progress) bool {
		if time.Since(last) > 5*time.Second {
			last = time.Now()
			t.Logf("progress: %v accepted=%d", p.Counts, box.Accepted())
		}
		return sentStatus(c, p)
	})
	if got.Status != campaign.StatusSent {
		t.Fatalf("campaign %s", got.Status)
	}
	ds, err := db.ListDeliveries(ctx, c.ID, 0, contacts+1)
	if err != nil {
		t.Fatal(err)
	}
	counts := box.Count()
	uncertain, receivedUncertain := 0, 0
	contactEmail := map[int64]string{}
	rows, err := db.QueryContext(ctx, `SELECT id, email FROM contacts`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		var email string
		rows.Scan(&id, &email)
		contactEmail[id] = email
	}
	rows.Close()
	for _, d := range ds {
		n := counts[contactEmail[d.ContactID]]
		switch d.Status {
		case campaign.DeliveryUncertain:
			uncertain++
			receivedUncertain += n
			if n > 1 {
				t.Errorf("uncertain delivery %d received %d times", d.ID, n)
			}
		case campaign.DeliverySent:
			if n != 1 {
				t.Errorf("delivery %d to %s is sent but was received %d times", d.ID, contactEmail[d.ContactID], n)
			}
		default:
			t.Errorf("delivery %d ended %s (%s)", d.ID, d.Status, d.Reason)
		}
	}
	if len(ds) != contacts {
		t.Errorf("%d deliveries, want %d", len(ds), contacts)
	}
	if max := kills * procs * concurrency; uncertain > max {
		t.Errorf("%d uncertain deliveries, more than the %d connections open at the kills", uncertain, max)
	}
	if sent := p.Counts[campaign.DeliverySent]; sent+int64(receivedUncertain) != box.Accepted() {
		t.Errorf("ledger: %d sent (+%d uncertain received); SMTP server accepted %d", sent, receivedUncertain, box.Accepted())
	}
	t.Logf("%d sent, %d uncertain (%d of them received)", p.Counts[campaign.DeliverySent], uncertain, receivedUncertain)
}

func redisURLWithDB(t *testing.T, raw string, n int) string {
	t.Helper()
	i := strings.LastIndex(raw, "/")
	if i < len("redis://") {
		return fmt.Sprintf("%s/%d", raw, n)
	}
	return fmt.Sprintf("%s/%d", raw[:i], n)
}
