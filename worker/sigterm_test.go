package worker_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/outbox"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
)

// workShutdownTimeout is how long `funnel work` gives running tasks at
// shutdown (worker.Config's default, which the command keeps), plus a
// little for the HTTP server and the reconciler.
const workShutdownTimeout = 25*time.Second + 2*time.Second

// ledger counts campaign id's deliveries by status straight from the
// table.
func ledger(t *testing.T, db *store.DB, id int64) map[campaign.DeliveryStatus]int64 {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), `SELECT status, count(*) FROM deliveries WHERE campaign_id = $1 GROUP BY status`, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[campaign.DeliveryStatus]int64{}
	for rows.Next() {
		var s string
		var n int64
		if err := rows.Scan(&s, &n); err != nil {
			t.Fatal(err)
		}
		out[campaign.DeliveryStatus(s)] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// SIGTERM on a worker mid-campaign: it stops taking batches, lets the
// SMTP transactions in flight finish and records them, hands the rest
// back and exits within its shutdown timeout. Nothing is left sending or
// uncertain, nothing is doubled, and a new worker finishes the campaign
// with exactly one message per contact.
func TestSIGTERMedWorkerFinishesInFlightMessagesAndHandsBackTheRest(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs funnel work processes")
	}
	const (
		contacts    = 1500
		concurrency = 4
		termAt      = 300 // messages accepted when SIGTERM is sent
	)
	dbURL := storetest.URL(t, store.Postgres)
	redisDB(t, 3) // flushed before and after
	redisURL := redisURLWithDB(t, storetest.RedisURL(t), 3)
	bin := funnelBinary(t)
	// The binary migrates, so that the schema is the one it expects even
	// when the migrations changed since this test was compiled.
	migrate := exec.Command(bin, "migrate")
	migrate.Env = append(os.Environ(), "FUNNEL_DATABASE_URL="+dbURL)
	if out, err := migrate.CombinedOutput(); err != nil {
		t.Fatalf("funnel migrate: %v\n%s", err, out)
	}
	ctx := context.Background()
	db, err := store.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	// From the termAt-th message on, the server holds its reply to DATA
	// until hold is closed: SIGTERM then lands with transactions in flight
	// on every connection.
	var seen atomic.Int64
	reached, hold := make(chan struct{}), make(chan struct{})
	var reachedOnce sync.Once
	box, err := outbox.Listen("127.0.0.1:0", outbox.Options{Keep: 1 << 20, Fault: func(string, []string, []byte) error {
		if seen.Add(1) >= termAt {
			reachedOnce.Do(func() { close(reached) })
			<-hold
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer box.Close()
	var holdOnce sync.Once
	release := func() { holdOnce.Do(func() { close(hold) }) }
	defer release()

	r := &rig{t: t, db: db, smtp: box}
	if _, err := db.ExecContext(ctx, fmt.Sprintf(`INSERT INTO contacts (email, first_name, created_at, updated_at)
		SELECT 'term-' || g || '@example.com', 'Ann', now(), now() FROM generate_series(1, %d) g`, contacts)); err != nil {
		t.Fatal(err)
	}
	c, _ := r.fixture(0, "term")
	c.Rate = 300 // about 5 s of sending, so that SIGTERM lands mid-campaign
	if err := db.UpdateCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}

	env := workEnv(dbURL, redisURL, box.Addr())
	var logs syncBuffer
	start := func() *workProcess {
		return startWork(t, env, &logs, "-concurrency", fmt.Sprint(concurrency), "-lease", "2s")
	}
	// terminate sends SIGTERM and waits for a clean exit within the
	// shutdown timeout.
	terminate := func(p *workProcess, whileHeld bool) {
		t.Helper()
		sent := time.Now()
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if whileHeld {
			// The server answers the held transactions a moment later, as
			// a slow server would, while the worker is shutting down.
			time.AfterFunc(300*time.Millisecond, release)
		}
		select {
		case <-p.done:
			if p.err != nil {
				t.Fatalf("worker exited with %v after SIGTERM\n%s", p.err, logs.String())
			}
			t.Logf("worker exited %s after SIGTERM", time.Since(sent).Round(time.Millisecond))
		case <-time.After(workShutdownTimeout):
			t.Fatalf("worker still running %s after SIGTERM\n%s", workShutdownTimeout, logs.String())
		}
	}

	w := start()
	if _, err := db.ScheduleCampaign(ctx, c.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-reached:
	case <-time.After(20 * time.Second):
		t.Fatalf("only %d messages reached the server\n%s", seen.Load(), logs.String())
	}
	terminate(w, true)

	// The worker is gone: every delivery it touched has its outcome, the
	// rest wait in the queue.
	atExit := box.Accepted()
	counts := ledger(t, db, c.ID)
	if counts[campaign.DeliverySending] != 0 || counts[campaign.DeliveryUncertain] != 0 {
		t.Errorf("after SIGTERM the ledger holds %d sending and %d uncertain deliveries, want none: %v",
			counts[campaign.DeliverySending], counts[campaign.DeliveryUncertain], counts)
	}
	if counts[campaign.DeliverySent] != atExit {
		t.Errorf("after SIGTERM the ledger says %d sent, the server accepted %d", counts[campaign.DeliverySent], atExit)
	}
	if atExit < termAt || atExit >= contacts {
		t.Fatalf("%d of %d messages accepted at exit; SIGTERM did not land mid-campaign", atExit, contacts)
	}
	if got, err := db.CampaignStatus(ctx, c.ID); err != nil || got != campaign.StatusSending {
		t.Errorf("campaign is %s (%v) after its worker stopped; want still sending", got, err)
	}
	for email, n := range box.Count() {
		if n > 1 {
			t.Errorf("%s received %d messages before the restart", email, n)
		}
	}

	w = start()
	_, p := r.wait(c.ID, 30*time.Second, "sent", sentStatus)
	terminate(w, false)

	received := box.Count()
	bad := 0
	for i := 1; i <= contacts; i++ {
		if n := received[fmt.Sprintf("term-%d@example.com", i)]; n != 1 {
			if bad++; bad <= 10 {
				t.Errorf("term-%d@example.com received %d messages, want 1", i, n)
			}
		}
	}
	want := map[campaign.DeliveryStatus]int64{campaign.DeliverySent: contacts}
	if diff := cmp.Diff(want, ledger(t, db, c.ID)); diff != "" {
		t.Errorf("ledger after the restart (-want +got):\n%s", diff)
	}
	if p.Counts[campaign.DeliverySent] != box.Accepted() || box.Accepted() != contacts {
		t.Errorf("API counts %d sent, the server accepted %d, want %d", p.Counts[campaign.DeliverySent], box.Accepted(), contacts)
	}
}
