package worker_test

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/redis/go-redis/v9"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/mailer"
	"github.com/funnel-email/funnel/outbox"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
	"github.com/funnel-email/funnel/templates"
	"github.com/funnel-email/funnel/token"
	"github.com/funnel-email/funnel/worker"
)

// redisDB returns a client on a Redis database of its own (number n of
// FUNNEL_TEST_REDIS_URL's server), flushed before and after the test, so
// that asynq queues of parallel test packages never mix.
func redisDB(t *testing.T, n int) redis.UniversalClient {
	t.Helper()
	opt, err := redis.ParseURL(storetest.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	opt.DB = n
	rdb := redis.NewClient(opt)
	if err := rdb.FlushDB(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.FlushDB(context.Background()); rdb.Close() })
	return rdb
}

// rig is a worker with what it works on: the store, Redis, an SMTP
// server with fault injection, and either an asynq server in the test
// running the Sender and the Reconciler, or a `funnel work` process.
type rig struct {
	t     *testing.T
	db    *store.DB
	dbURL string
	rdb   redis.UniversalClient
	smtp  *outbox.Server
	// other is a second SMTP server, in pool "other" (smtp is in pool
	// "main"), when rigOptions.pools is set.
	other  *outbox.Server
	client *worker.Client
	srv    *worker.Server
	cancel context.CancelFunc
	done   chan struct{}
	work   *workProcess // when rigOptions.process is set
}

type rigOptions struct {
	redisDB  int
	fault    outbox.Fault
	rcpt     func(string) error
	interval time.Duration // reconciler full pass
	// ledger writes each outcome straight to the ledger (funnel dev's
	// mode) instead of through the Redis send journal (funnel work's).
	ledger bool
	lease  time.Duration // default 3 s
	tick   time.Duration // the lease sweep's period; default 200 ms
	pools  bool          // a second SMTP server, each in a pool of its own
	// process runs the worker as a `funnel work` process, the sending
	// side as it is deployed, instead of in the test. It journals (not
	// ledger), sweeps leases on the command's 2 s tick (not tick) and
	// has one SMTP server (not pools).
	process bool
}

func newRig(t *testing.T, o rigOptions) *rig {
	t.Helper()
	dbURL := storetest.URL(t, store.Postgres)
	db, err := store.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	rdb := redisDB(t, o.redisDB)
	box, err := outbox.Listen("127.0.0.1:0", outbox.Options{Keep: 1 << 20, Fault: o.fault, Rcpt: o.rcpt})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { box.Close() })
	r := &rig{t: t, db: db, dbURL: dbURL, rdb: rdb, smtp: box}
	if o.pools {
		other, err := outbox.Listen("127.0.0.1:0", outbox.Options{Keep: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { other.Close() })
		r.other = other
	}
	if o.process {
		r.startProcess(o)
	} else {
		r.start(o)
	}
	return r
}

// serverOf is the pool's configuration of the SMTP server at addr.
func serverOf(addr, pool string) mailer.ServerConfig {
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	return mailer.ServerConfig{Pool: pool, Config: mailer.Config{Host: host, Port: p, TLS: mailer.TLSNone, Timeout: 5 * time.Second}}
}

func (r *rig) start(o rigOptions) {
	t := r.t
	servers := []mailer.ServerConfig{serverOf(r.smtp.Addr(), "")}
	if r.other != nil {
		servers = []mailer.ServerConfig{serverOf(r.smtp.Addr(), "main"), serverOf(r.other.Addr(), "other")}
	}
	pool, err := mailer.NewPool(servers...)
	if err != nil {
		t.Fatal(err)
	}
	codec, err := token.NewCodec([]byte(strings.Repeat("s", 32)))
	if err != nil {
		t.Fatal(err)
	}
	composer, err := mailer.NewComposer(mailer.ComposerConfig{BounceDomain: "bounces.example.com"}, codec)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r.client = worker.NewClient(r.rdb)
	r.client.BucketSize = 100
	r.srv = worker.NewServer(worker.Config{Redis: r.rdb, Logger: log, Concurrency: 6, ShutdownTimeout: 10 * time.Second})
	sender := worker.NewSender(worker.SenderConfig{
		DB: r.db, Redis: r.rdb, Client: r.client, Pool: pool, Composer: composer,
		Templates: templates.Options{PublicURL: "https://t.example.com", Codec: codec}, Logger: log,
		Chunk: 20, Lease: cmp.Or(o.lease, 3*time.Second), RetryBase: 50 * time.Millisecond, // StatusEvery as in production: campaign.StopWithin
		Stopping: r.srv.Stopping(), Journal: !o.ledger,
	})
	sender.Register(r.srv)
	if err := r.srv.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	if o.interval == 0 {
		o.interval = time.Minute
	}
	rec := &worker.Reconciler{DB: r.db, Client: r.client, Sender: sender, Logger: log, Tick: cmp.Or(o.tick, 200*time.Millisecond), Interval: o.interval}
	go func() { defer close(r.done); rec.Run(ctx) }()
	t.Cleanup(r.stop)
}

// startProcess runs the worker as a `funnel work` process with the
// settings that start gives the one in the test, as its flags. The test's
// client enqueues what the API would.
func (r *rig) startProcess(o rigOptions) {
	t := r.t
	if o.ledger || o.tick != 0 || o.pools {
		t.Fatal("a funnel work rig journals, sweeps leases every 2 s and has one SMTP server")
	}
	r.client = worker.NewClient(r.rdb)
	logs := &syncBuffer{}
	logOnFailure(t, logs)
	env := workEnv(r.dbURL, redisURLWithDB(t, storetest.RedisURL(t), o.redisDB), r.smtp.Addr())
	r.work = startWork(t, env, logs, "-concurrency", "6", "-lease", cmp.Or(o.lease, 3*time.Second).String(),
		"-retry-base", "50ms", "-batch-size", "100", "-reconcile-every", cmp.Or(o.interval, time.Minute).String())
	t.Cleanup(func() {
		if err := r.work.terminate(workShutdownTimeout); err != nil {
			t.Errorf("funnel work did not stop cleanly: %v", err)
		}
	})
}

func (r *rig) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	<-r.done
	r.srv.Shutdown()
	r.cancel = nil
}

// fixture adds n contacts, a sender, a template and a segment of all of
// them, and returns a draft campaign to all of them.
func (r *rig) fixture(n int, name string) (*campaign.Campaign, []*campaign.Contact) {
	t := r.t
	ctx := context.Background()
	var contacts []*campaign.Contact
	for i := range n {
		c := &campaign.Contact{Email: fmt.Sprintf("%s-%d@example.com", name, i), FirstName: "Ann"}
		if err := r.db.CreateContact(ctx, c); err != nil {
			t.Fatal(err)
		}
		contacts = append(contacts, c)
	}
	if err := r.db.SetSender(ctx, campaign.Sender{CompanyName: "Acme", PostalAddress: "1 Road, Town", FromEmail: "news@acme.example"}); err != nil {
		t.Fatal(err)
	}
	tpl := &campaign.Template{Name: "t-" + name, Subject: "Hello {{ .Contact.FirstName }}", HTML: `<p>Hi {{ .Contact.FirstName }}, see <a href="https://acme.example/p">this</a></p>`}
	if err := r.db.CreateTemplate(ctx, tpl); err != nil {
		t.Fatal(err)
	}
	seg := &campaign.Segment{Name: "s-" + name, Rule: &campaign.Rule{Field: "email", Op: campaign.OpStartsWith, Value: name + "-"}}
	if err := r.db.CreateSegment(ctx, seg); err != nil {
		t.Fatal(err)
	}
	c := &campaign.Campaign{Name: name, TemplateID: tpl.ID, SegmentIDs: []int64{seg.ID}, FromName: "Acme", FromEmail: "news@acme.example"}
	if err := r.db.CreateCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}
	return c, contacts
}

// send schedules c for now (or at) and dispatches it, as POST /send does.
func (r *rig) send(c *campaign.Campaign, at time.Time) *campaign.Campaign {
	r.t.Helper()
	got, err := r.db.ScheduleCampaign(context.Background(), c.ID, at)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.client.DispatchCampaign(context.Background(), got); err != nil {
		r.t.Fatal(err)
	}
	return got
}

// wait polls the campaign until cond holds or the timeout passes.
func (r *rig) wait(id int64, timeout time.Duration, what string, cond func(*campaign.Campaign, *campaign.Progress) bool) (*campaign.Campaign, *campaign.Progress) {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c, err := r.db.FindCampaign(context.Background(), id)
		if err != nil {
			r.t.Fatal(err)
		}
		p, err := r.db.CampaignProgress(context.Background(), id)
		if err != nil {
			r.t.Fatal(err)
		}
		if cond(c, p) {
			return c, p
		}
		if r.work != nil {
			if exited, err := r.work.exited(); exited {
				r.t.Fatalf("campaign %d: funnel work exited (%v) before %s", id, err, what)
			}
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("campaign %d: %s not reached in %s: status %s, progress %+v", id, what, timeout, c.Status, p.Counts)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func sentStatus(c *campaign.Campaign, _ *campaign.Progress) bool {
	return c.Status == campaign.StatusSent
}

// exactlyOnce checks that every contact got exactly one message.
func (r *rig) exactlyOnce(contacts []*campaign.Contact, skip map[int64]bool) {
	r.t.Helper()
	counts := r.smtp.Count()
	bad := 0
	for _, c := range contacts {
		want := 1
		if skip[c.ID] {
			want = 0
		}
		if got := counts[c.Email]; got != want {
			bad++
			if bad < 10 {
				r.t.Errorf("%s received %d messages, want %d", c.Email, got, want)
			}
		}
	}
	if bad > 0 {
		r.t.Errorf("%d of %d contacts received the wrong number of messages", bad, len(contacts))
	}
}

func TestCampaignSendsEachContactOnceNotBeforeSendAt(t *testing.T) {
	r := newRig(t, rigOptions{redisDB: 10})
	c, contacts := r.fixture(250, "happy")
	at := time.Now().Add(1500 * time.Millisecond).Truncate(time.Millisecond)
	r.send(c, at)
	got, p := r.wait(c.ID, 30*time.Second, "sent", sentStatus)
	if got.StartedAt == nil || got.StartedAt.Before(at) {
		t.Errorf("started at %v, before send_at %v", got.StartedAt, at)
	}
	if p.Counts[campaign.DeliverySent] != 250 || p.Audience != 250 {
		t.Errorf("progress %+v", p.Counts)
	}
	r.exactlyOnce(contacts, nil)
	evs, err := r.db.ContactEvents(context.Background(), contacts[0].ID)
	if err != nil || len(evs) != 1 || evs[0].Kind != campaign.EventSent {
		t.Errorf("sent event of a contact: %+v, %v", evs, err)
	}
	m := r.smtp.Messages()[0]
	if !strings.Contains(string(m.Raw), "Hello Ann") || !strings.Contains(string(m.Raw), "List-Unsubscribe") {
		t.Errorf("message is not the rendered campaign:\n%.600s", m.Raw)
	}
}

// Reliability test 2: 10% of transactions get 421 or 451, 1% of
// connections drop mid-DATA (not accepted) and 1% drop right after the
// message was accepted: every contact still gets exactly one message,
// from a `funnel work` process and from funnel dev's way of recording.
func TestTemporaryFailuresAndDropsDeliverExactlyOnce(t *testing.T) {
	var mu sync.Mutex
	rnd := rand.New(rand.NewPCG(1, 2))
	fault := func(from string, to []string, data []byte) error {
		mu.Lock()
		x := rnd.Float64()
		mu.Unlock()
		switch {
		case x < 0.05:
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
		case x < 0.10:
			return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "closing"}
		case x < 0.11:
			return outbox.ErrDrop
		case x < 0.12:
			return outbox.ErrAcceptDrop
		}
		return nil
	}
	for _, ledger := range []bool{false, true} {
		t.Run(map[bool]string{false: "journal", true: "ledger"}[ledger], func(t *testing.T) {
			// The journal is how funnel work records outcomes, tried on that
			// process; the ledger is funnel dev's way, tried in the test.
			r := newRig(t, rigOptions{redisDB: 11, fault: fault, ledger: ledger, process: !ledger})
			c, contacts := r.fixture(1000, "faults")
			r.send(c, time.Now())
			r.wait(c.ID, 60*time.Second, "sent", sentStatus)
			r.exactlyOnce(contacts, nil)
			ds, err := r.db.ListDeliveries(context.Background(), c.ID, 0, 2000)
			if err != nil {
				t.Fatal(err)
			}
			retried := 0
			for _, d := range ds {
				if d.Status != campaign.DeliverySent {
					t.Errorf("delivery %d is %s (%s)", d.ID, d.Status, d.Reason)
				}
				if d.Attempts > 1 {
					retried++
				}
			}
			if retried < 50 {
				t.Errorf("only %d deliveries show retries in the ledger; want about 110", retried)
			}
		})
	}
}

// Reliability test 3: 550 5.1.1 from the SMTP server makes a `funnel
// work` process bounce the delivery and suppress the contact, and the
// next campaign skips it.
func TestHardBounceSuppressesTheContact(t *testing.T) {
	rcpt := func(to string) error {
		if strings.HasSuffix(strings.SplitN(to, "@", 2)[0], "7") {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}
		return nil
	}
	r := newRig(t, rigOptions{redisDB: 12, rcpt: rcpt, process: true})
	c, contacts := r.fixture(100, "bounce")
	r.send(c, time.Now())
	_, p := r.wait(c.ID, 30*time.Second, "sent", sentStatus)
	if p.Counts[campaign.DeliveryBounced] != 10 || p.Counts[campaign.DeliverySent] != 90 {
		t.Fatalf("progress %+v, want 10 bounced and 90 sent", p.Counts)
	}
	bounced := map[int64]bool{}
	for _, ct := range contacts {
		if strings.HasSuffix(strings.SplitN(ct.Email, "@", 2)[0], "7") {
			bounced[ct.ID] = true
			got, err := r.db.FindContact(context.Background(), ct.ID)
			if err != nil || got.Status != campaign.ContactBounced {
				t.Errorf("contact %s: %v, %v; want bounced", ct.Email, got.Status, err)
			}
		}
	}
	r.exactlyOnce(contacts, bounced)
	// The next campaign to the same segment leaves them out.
	c2 := *c
	c2.Name = "bounce again"
	if err := r.db.CreateCampaign(context.Background(), &c2); err != nil {
		t.Fatal(err)
	}
	r.send(&c2, time.Now())
	_, p2 := r.wait(c2.ID, 30*time.Second, "sent", sentStatus)
	if p2.Audience != 90 || p2.Counts[campaign.DeliverySent] != 90 {
		t.Errorf("second campaign progress %+v (audience %d), want 90 sent", p2.Counts, p2.Audience)
	}
	counts := r.smtp.Count()
	for _, ct := range contacts {
		want := 2
		if bounced[ct.ID] {
			want = 0
		}
		if counts[ct.Email] != want {
			t.Errorf("%s got %d messages over two campaigns, want %d", ct.Email, counts[ct.Email], want)
		}
	}
}

// A worker that stalls inside one SMTP transaction past its lease, with
// no sweep in between, loses the claim when it next extends the lease. It
// must hand the rows it never started back to the queue, not leave them
// claimed for the sweep to find: with the journal already gone, the sweep
// would make every one of them uncertain.
func TestLeaseLostToAStallHandsTheUnstartedRowsBack(t *testing.T) {
	for _, ledger := range []bool{false, true} {
		t.Run(map[bool]string{false: "journal", true: "ledger"}[ledger], func(t *testing.T) {
			const lease = time.Second
			var stall sync.Once
			fault := func(from string, to []string, data []byte) error {
				if to[0] == "stall-0@example.com" {
					stall.Do(func() { time.Sleep(lease + 500*time.Millisecond) })
				}
				return nil
			}
			// A sweep once a minute never runs while the test does.
			r := newRig(t, rigOptions{redisDB: 7, fault: fault, ledger: ledger, lease: lease, tick: time.Minute})
			c, contacts := r.fixture(40, "stall")
			r.send(c, time.Now())
			_, p := r.wait(c.ID, 30*time.Second, "sent", sentStatus)
			if p.Counts[campaign.DeliverySent] != 40 || p.Counts[campaign.DeliveryUncertain] != 0 {
				t.Errorf("progress %+v, want all 40 sent and none uncertain", p.Counts)
			}
			r.exactlyOnce(contacts, nil)
		})
	}
}

// A campaign goes out through the SMTP servers of the pool it names, and
// only through them; one that names a pool no server is in fails with the
// reason instead of waiting for ever.
func TestCampaignSendsThroughItsSMTPPool(t *testing.T) {
	r := newRig(t, rigOptions{redisDB: 1, pools: true})
	ctx := context.Background()
	c, contacts := r.fixture(60, "pooled")
	c.SMTPPool = "other"
	if err := r.db.UpdateCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}
	r.send(c, time.Now())
	r.wait(c.ID, 30*time.Second, "sent", sentStatus)
	if n := r.other.Accepted(); n != 60 {
		t.Errorf("pool other's server accepted %d messages, want 60", n)
	}
	if n := r.smtp.Accepted(); n != 0 {
		t.Errorf("pool main's server accepted %d messages, want none", n)
	}
	counts := r.other.Count()
	for _, ct := range contacts {
		if counts[ct.Email] != 1 {
			t.Errorf("%s received %d messages, want 1", ct.Email, counts[ct.Email])
		}
	}

	lost, _ := r.fixture(5, "nopool")
	lost.SMTPPool = "marketing"
	if err := r.db.UpdateCampaign(ctx, lost); err != nil {
		t.Fatal(err)
	}
	r.send(lost, time.Now())
	got, _ := r.wait(lost.ID, 30*time.Second, "failed", func(c *campaign.Campaign, _ *campaign.Progress) bool {
		return c.Status == campaign.StatusFailed
	})
	if !strings.Contains(got.Failure, `"marketing"`) {
		t.Errorf("failure %q does not name the pool", got.Failure)
	}
}

// Reliability test 4: Redis loses everything mid-campaign; the
// reconciler of the `funnel work` process re-enqueues from the ledger and
// nobody gets a duplicate.
func TestRedisFlushMidCampaignCompletesWithoutDuplicates(t *testing.T) {
	r := newRig(t, rigOptions{redisDB: 13, interval: 500 * time.Millisecond, process: true})
	c, contacts := r.fixture(600, "flush")
	c.Rate = 300
	if err := r.db.UpdateCampaign(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	r.send(c, time.Now())
	r.wait(c.ID, 20*time.Second, "100 sent", func(_ *campaign.Campaign, p *campaign.Progress) bool {
		return p.Counts[campaign.DeliverySent] >= 100
	})
	if err := r.rdb.FlushDB(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	_, p := r.wait(c.ID, 60*time.Second, "sent", sentStatus)
	if p.Counts[campaign.DeliverySent] != 600 {
		t.Errorf("progress %+v", p.Counts)
	}
	r.exactlyOnce(contacts, nil)
}

// Reliability test 5: a `funnel work` process starts nothing new more
// than a second after a pause is acknowledged; resume continues; nothing
// is sent after cancel.
func TestPauseResumeCancel(t *testing.T) {
	r := newRig(t, rigOptions{redisDB: 14, process: true})
	ctx := context.Background()
	c, contacts := r.fixture(800, "pause")
	c.Rate = 200
	if err := r.db.UpdateCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}
	r.send(c, time.Now())
	r.wait(c.ID, 20*time.Second, "50 sent", func(_ *campaign.Campaign, p *campaign.Progress) bool {
		return p.Counts[campaign.DeliverySent] >= 50
	})
	paused, err := r.db.TransitionCampaign(ctx, c.ID, campaign.Pause)
	if err != nil {
		t.Fatal(err)
	}
	// The API acknowledges a pause campaign.StopWithin after it commits.
	time.Sleep(campaign.StopWithin)
	ack := time.Now().UTC()
	time.Sleep(2 * time.Second)
	for _, m := range r.smtp.Messages() {
		if m.StartedAt.After(ack) {
			t.Fatalf("transaction to %v started %s after the pause was acknowledged", m.To, m.StartedAt.Sub(ack))
		}
	}
	atPause := r.smtp.Accepted()
	if atPause >= 800 {
		t.Fatal("the campaign finished before it could be paused")
	}
	resumed, err := r.db.TransitionCampaign(ctx, paused.ID, campaign.Resume)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.client.DispatchCampaign(ctx, resumed); err != nil {
		t.Fatal(err)
	}
	r.wait(c.ID, 20*time.Second, "more sent after resume", func(_ *campaign.Campaign, p *campaign.Progress) bool {
		return p.Counts[campaign.DeliverySent] >= atPause+100
	})
	if _, err := r.db.TransitionCampaign(ctx, c.ID, campaign.Cancel); err != nil {
		t.Fatal(err)
	}
	time.Sleep(campaign.StopWithin)
	cancelAck := time.Now().UTC()
	time.Sleep(1500 * time.Millisecond)
	atCancel := r.smtp.Accepted()
	time.Sleep(1500 * time.Millisecond)
	if got := r.smtp.Accepted(); got != atCancel {
		t.Errorf("%d messages sent more than 1.5 s after cancel", got-atCancel)
	}
	for _, m := range r.smtp.Messages() {
		if m.StartedAt.After(cancelAck) {
			t.Errorf("transaction started %s after the cancel was acknowledged", m.StartedAt.Sub(cancelAck))
			break
		}
	}
	got, p := r.wait(c.ID, 5*time.Second, "settled", func(_ *campaign.Campaign, p *campaign.Progress) bool {
		return p.Counts[campaign.DeliverySending] == 0
	})
	if got.Status != campaign.StatusCancelled || p.Counts[campaign.DeliverySkipped] == 0 || p.Counts[campaign.DeliveryQueued] != 0 {
		t.Errorf("after cancel: %s %+v", got.Status, p.Counts)
	}
	if p.Counts[campaign.DeliverySent] != r.smtp.Accepted() {
		t.Errorf("ledger says %d sent, SMTP server accepted %d", p.Counts[campaign.DeliverySent], r.smtp.Accepted())
	}
	counts := r.smtp.Count()
	for _, ct := range contacts {
		if counts[ct.Email] > 1 {
			t.Errorf("%s received %d messages", ct.Email, counts[ct.Email])
		}
	}
}
