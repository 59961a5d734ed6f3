package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/mailer"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/templates"
)

// SenderConfig configures a Sender. DB, Redis, Client, Pool, Composer and
// Templates are required.
type SenderConfig struct {
	DB        *store.DB
	Redis     redis.UniversalClient
	Client    *Client
	Pool      *mailer.Pool
	Composer  *mailer.Composer
	Templates templates.Options
	Logger    *slog.Logger
	Metrics   *Metrics
	// Links records each message's tracked links before it is sent, so
	// that its click tokens resolve (default: a recorder over DB).
	Links *LinkRecorder
	// Chunk is how many deliveries one claim takes (default 100). A claim
	// is sent over one connection; its size bounds the rows a dead worker
	// leaves for the lease sweep. Per-claim statements (the claim, its
	// contacts, its sent events) are shared by this many messages.
	Chunk int
	// Lease is how long a claim holds before the sweep may recover it
	// (default 30 s); the holder extends it while it sends.
	Lease time.Duration
	// RetryBase is the first backoff of a deferred delivery (default 1
	// min); it doubles per attempt up to an hour.
	RetryBase time.Duration
	// MaxAge is how long a delivery is retried before it fails (default 24 h).
	MaxAge time.Duration
	// StatusEvery is how often a campaign's status is re-read to honour a
	// pause or cancel (default, and at most, campaign.StopWithin).
	StatusEvery time.Duration
	// Stopping, when closed, makes handlers finish the SMTP transaction in
	// flight, record it, hand the rest back and return (graceful shutdown).
	Stopping <-chan struct{}
	// DomainRates caps messages per second to each listed recipient
	// domain (lower case, such as "gmail.com"), across all workers. A
	// handler waits for the limit before the transaction to such a
	// recipient; other domains are not limited.
	DomainRates map[string]float64
	// Journal keeps each message's outcome in Redis until its claim ends,
	// then writes the claim's outcomes to the ledger in one statement,
	// instead of committing each to the ledger before the next message.
	// Use it when Redis outlives the worker (a Redis server, ideally with
	// persistence); not with funnel dev's in-process Redis, which dies
	// with the worker and would leave a crashed claim's rows uncertain.
	Journal bool
}

// Sender handles TypeStartCampaign and TypeSendBatch.
//
// Exactly once: a batch claims a chunk of deliveries (status sending,
// under a claim token and a lease), then sends them in ID order over one
// SMTP connection and makes each outcome durable (in the ledger, or in the
// claim's send journal when SenderConfig.Journal is set) before the next
// MAIL FROM. So after a crash only the lowest row of a claim without an
// outcome may have been inside an SMTP transaction; store.RecoverLeases
// writes the journaled outcomes, marks that row uncertain and re-queues
// the rest. Uncertain deliveries are therefore at most one per connection
// open at the crash (every unsettled row of a claim whose journal Redis
// lost as well, never resent).
type Sender struct {
	cfg    SenderConfig
	log    *slog.Logger
	limits *limiter
	status *statusCache

	mu    sync.Mutex
	preps map[int64]*prepared

	journal *sendJournal // nil without SenderConfig.Journal
}

// NewSender returns a Sender; register it with Register.
func NewSender(cfg SenderConfig) *Sender {
	if cfg.Chunk <= 0 {
		cfg.Chunk = 100
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 30 * time.Second
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = time.Minute
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 24 * time.Hour
	}
	if cfg.StatusEvery <= 0 || cfg.StatusEvery > campaign.StopWithin {
		cfg.StatusEvery = campaign.StopWithin
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	if cfg.Links == nil {
		cfg.Links = NewLinkRecorder(store.NewLinks(cfg.DB))
	}
	h := &Sender{cfg: cfg, log: cfg.Logger, limits: newLimiter(cfg.Redis), preps: map[int64]*prepared{},
		status: &statusCache{db: cfg.DB, ttl: cfg.StatusEvery, m: map[int64]statusEntry{}}}
	if cfg.Journal {
		h.journal = &sendJournal{rdb: cfg.Redis, ttl: 7 * 24 * time.Hour}
	}
	return h
}

// journalReader is what the lease sweep reads a dead claim's outcomes
// with: nil when outcomes go straight to the ledger.
func (h *Sender) journalReader() store.Journal {
	if h.journal == nil {
		return nil
	}
	return h.journal.read
}

// Register installs the Sender's handlers on s.
func (h *Sender) Register(s *Server) {
	s.Handle(TypeStartCampaign, asynq.HandlerFunc(h.Start))
	s.Handle(TypeSendBatch, asynq.HandlerFunc(h.SendBatch))
}

func (h *Sender) now() time.Time { return time.Now() }

// Start handles TypeStartCampaign. It never starts a campaign before its
// send_at (asynq may fire up to a second early: the task is run again for
// the remainder) nor for a stale schedule version.
func (h *Sender) Start(ctx context.Context, t *asynq.Task) error {
	var p StartPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil {
		return fmt.Errorf("decode start payload: %v: %w", err, asynq.SkipRetry)
	}
	c, err := h.cfg.DB.FindCampaign(ctx, p.CampaignID)
	if campaign.ErrorCode(err) == campaign.ENOTFOUND {
		return nil
	}
	if err != nil {
		return err
	}
	if c.ScheduleVersion != p.Version {
		return nil
	}
	switch c.Status {
	case campaign.StatusScheduled:
		if c.SendAt != nil {
			if wait := c.SendAt.Sub(h.now()); wait > 0 {
				return &retryAfter{d: wait, why: "before send_at"}
			}
		}
		c, err = h.cfg.DB.StartCampaign(ctx, c.ID, p.Version)
		if campaign.ErrorCode(err) == campaign.ECONFLICT {
			return nil // paused, cancelled or rescheduled meanwhile
		}
		if err != nil {
			return err
		}
		h.log.InfoContext(ctx, "campaign started", "campaign_id", c.ID)
	case campaign.StatusSending:
	default:
		return nil
	}
	if _, err := h.cfg.DB.MaterializeAudience(ctx, c); err != nil {
		switch campaign.ErrorCode(err) {
		case campaign.ECONFLICT:
			return nil // cancelled or failed before its audience was drawn
		case campaign.EINVALID, campaign.ENOTFOUND:
			// Its rule no longer compiles (a segment is gone): no retry
			// would draw it.
			h.log.ErrorContext(ctx, "campaign audience cannot be drawn", "campaign_id", c.ID, "err", err)
			_, ferr := h.cfg.DB.FailCampaign(ctx, c.ID, err.Error())
			return endedMeanwhile(ferr)
		}
		return err
	}
	return h.enqueuePending(ctx, c.ID, "")
}

// endedMeanwhile is the result of a task that failed its campaign: a
// campaign another task failed (or someone cancelled) first is no error.
func endedMeanwhile(err error) error {
	switch campaign.ErrorCode(err) {
	case campaign.ECONFLICT, campaign.ENOTFOUND:
		return nil
	}
	return err
}

// enqueuePending enqueues a batch for every bucket with pending
// deliveries, and completes the campaign when there is none.
func (h *Sender) enqueuePending(ctx context.Context, id int64, suffix string) error {
	buckets, err := h.cfg.DB.PendingBuckets(ctx, id, h.cfg.Client.BucketSize)
	if err != nil {
		return err
	}
	if len(buckets) == 0 {
		return h.complete(ctx, id)
	}
	return h.cfg.Client.enqueueBatches(ctx, id, buckets, suffix)
}

func (h *Sender) complete(ctx context.Context, id int64) error {
	c, err := h.cfg.DB.CompleteCampaign(ctx, id)
	if campaign.ErrorCode(err) == campaign.ECONFLICT {
		return nil // still pending, or not sending any more
	}
	if err == nil {
		h.log.InfoContext(ctx, "campaign sent", "campaign_id", id, "audience", deref(c.AudienceSize))
	}
	return err
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// errStop ends a batch early: the campaign left sending, or the worker
// is shutting down.
var errStop = errors.New("stop sending")

// SendBatch handles TypeSendBatch: it claims and sends the bucket's
// claimable deliveries chunk by chunk while the campaign is sending, then
// schedules itself again for the earliest deferred delivery, or completes
// the campaign when nothing is pending.
func (h *Sender) SendBatch(ctx context.Context, t *asynq.Task) error {
	var p BatchPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.Size <= 0 {
		return fmt.Errorf("decode batch payload: %v: %w", err, asynq.SkipRetry)
	}
	log := h.log.With("campaign_id", p.CampaignID, "bucket", p.Bucket)
	c, err := h.cfg.DB.FindCampaign(ctx, p.CampaignID)
	if campaign.ErrorCode(err) == campaign.ENOTFOUND {
		return nil
	}
	if err != nil {
		return err
	}
	if c.Status != campaign.StatusSending {
		return nil // resume enqueues again
	}
	prep, err := h.prepare(ctx, c)
	if err != nil {
		var ce *campaign.Error
		if errors.As(err, &ce) {
			log.ErrorContext(ctx, "campaign cannot be sent", "err", err)
			_, ferr := h.cfg.DB.FailCampaign(ctx, c.ID, err.Error())
			return endedMeanwhile(ferr)
		}
		return err
	}
	lo, hi := p.bounds()
	from := lo
	conn, err := h.cfg.Pool.AcquireIn(ctx, c.SMTPPool)
	if errors.Is(err, mailer.ErrNoSuchPool) {
		// The campaign names a pool this worker's FUNNEL_SMTP_URL lacks:
		// waiting would leave it sending for ever without a word.
		log.ErrorContext(ctx, "campaign cannot be sent", "err", err)
		_, ferr := h.cfg.DB.FailCampaign(ctx, c.ID, fmt.Sprintf("no SMTP server of the worker is in pool %q (the pool= parameter of FUNNEL_SMTP_URL)", c.SMTPPool))
		return endedMeanwhile(ferr)
	}
	if err != nil {
		return err
	}
	defer conn.Release()
	for {
		if err := h.checkGo(ctx, c.ID); err != nil {
			return h.stopResult(err)
		}
		n, wait, err := h.limits.take(ctx, c, conn, h.cfg.Chunk)
		if err != nil {
			return err
		}
		if n == 0 {
			if err := h.sleep(ctx, wait); err != nil {
				return h.stopResult(err)
			}
			continue
		}
		token := newToken()
		if h.journal != nil {
			// Before the claim: a claim without its journal would look lost.
			if err := h.journal.open(ctx, token); err != nil {
				return err
			}
		}
		claimed, err := h.cfg.DB.ClaimDeliveries(ctx, store.Claim{CampaignID: c.ID, MinID: from, MaxID: hi, Limit: n, Token: token, Lease: h.cfg.Lease})
		if err != nil {
			return err
		}
		if len(claimed) == 0 {
			if h.journal != nil {
				_ = h.journal.drop(ctx, token) // unused; it would expire anyway
			}
			if from == lo {
				break
			}
			from = lo // once more from the start, for deferred rows that came due
			continue
		}
		// The next claim starts after this one, so that it does not walk
		// the index entries of the rows this run already sent.
		from = claimed[len(claimed)-1].ID + 1
		sent, err := h.sendClaim(ctx, conn, c, prep, token, claimed)
		if len(sent) > 0 {
			if eerr := h.cfg.DB.InsertMissingSentEvents(context.WithoutCancel(ctx), c.ID, sent...); eerr != nil {
				log.WarnContext(ctx, "record sent events", "err", eerr) // the completion sweep adds them
			}
		}
		if err != nil {
			return h.stopResult(err)
		}
	}
	if _, err := h.cfg.DB.FailExpired(ctx, c.ID, lo, hi, h.cfg.MaxAge); err != nil {
		return err
	}
	next, ok, err := h.cfg.DB.NextDeferred(ctx, c.ID, lo, hi)
	if err != nil {
		return err
	}
	if ok {
		return &retryAfter{d: time.Until(next), why: "deferred deliveries"}
	}
	return h.complete(ctx, c.ID)
}

// stopResult maps why a batch stopped to its task result: a paused or
// cancelled campaign ends the task; a shutdown hands it to another worker
// at once without using up a retry.
func (h *Sender) stopResult(err error) error {
	switch {
	case errors.Is(err, errPaused):
		return nil
	case errors.Is(err, errStop), errors.Is(err, context.Canceled):
		return &retryAfter{d: time.Second, why: "worker shutting down"}
	case errors.Is(err, errJournalClosed), errors.Is(err, store.ErrLeaseLost):
		// The claim was swept or its lease ran out while the worker was
		// slow; the rows are back in the queue (or with the sweep).
		return &retryAfter{d: time.Second, why: err.Error()}
	case errors.Is(err, errDial):
		return &retryAfter{d: 5 * time.Second, why: err.Error()}
	}
	return err
}

var (
	errPaused = errors.New("campaign is not sending")
	errDial   = errors.New("cannot reach the SMTP server")
)

// checkGo says whether a new SMTP transaction may start: not after the
// worker began shutting down, nor once the campaign left sending.
func (h *Sender) checkGo(ctx context.Context, id int64) error {
	select {
	case <-h.cfg.Stopping:
		return errStop
	default:
	}
	if ctx.Err() != nil {
		return errStop
	}
	ok, err := h.status.sending(ctx, id)
	if err != nil {
		return err
	}
	if !ok {
		return errPaused
	}
	return nil
}

func (h *Sender) sleep(ctx context.Context, d time.Duration) error {
	d = min(max(d, 5*time.Millisecond), h.cfg.StatusEvery)
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return errStop
	case <-h.cfg.Stopping:
		return errStop
	}
}

// sendClaim sends claimed deliveries in ID order, making each outcome
// durable before the next transaction starts, and has them all in the
// ledger when it returns. When it stops early it hands the unsent rows
// back. It returns the IDs of the deliveries sent.
func (h *Sender) sendClaim(ctx context.Context, conn *mailer.Conn, c *campaign.Campaign, prep *prepared, token string, claimed []store.Claimed) (sent []int64, err error) {
	// Outcome writes must land even when the task's context is cancelled
	// at shutdown: an unrecorded outcome would turn into an uncertain row.
	wctx := context.WithoutCancel(ctx)
	outs := &claimOutcomes{db: h.cfg.DB, journal: h.journal, token: token, unsettled: len(claimed)}
	defer func() {
		if ferr := outs.finish(wctx); ferr != nil {
			// A pause or shutdown still ends the batch as it would; the
			// lease sweep settles the claim later.
			h.log.WarnContext(ctx, "claim left for the lease sweep", "campaign_id", c.ID, "err", ferr)
			err = errors.Join(err, ferr)
		}
	}()
	leaseEnd := h.now().Add(h.cfg.Lease)
	extend := func() error {
		if time.Until(leaseEnd) < h.cfg.Lease/2 {
			if err := h.cfg.DB.ExtendLease(wctx, token, h.cfg.Lease); err != nil {
				return err
			}
			leaseEnd = h.now().Add(h.cfg.Lease)
		}
		return nil
	}
	buf := make([]byte, 0, 32<<10)
	for _, d := range claimed {
		if err := h.checkGo(ctx, c.ID); err != nil {
			return sent, err
		}
		if err := extend(); err != nil {
			return sent, err
		}
		if err := h.waitDomain(ctx, c.ID, d, extend); err != nil {
			return sent, err
		}
		o, msgBuf, dialFailed, err := h.deliver(ctx, conn, c, prep, token, d, buf)
		buf = msgBuf
		if err != nil {
			return sent, err // not started: finish hands the row back
		}
		o.At = h.now()
		if err := outs.record(wctx, o); err != nil {
			if errors.Is(err, errJournalClosed) {
				return sent, err
			}
			// Stop: starting another transaction before this outcome is
			// durable would break the one-uncertain-per-claim rule.
			return sent, fmt.Errorf("delivery %d: %w", d.ID, err)
		}
		h.cfg.Metrics.outcome(o)
		if o.Status == campaign.DeliverySent {
			sent = append(sent, d.ID)
		}
		if dialFailed {
			return sent, errDial
		}
	}
	return sent, nil
}

// claimOutcomes records the outcomes of one claim: each straight into
// the ledger, or, with a journal, each into the journal and all of them
// into the ledger at once when the claim ends.
type claimOutcomes struct {
	db      *store.DB
	journal *sendJournal
	token   string
	// pending are outcomes not yet in the ledger: journaled, or whose
	// write failed.
	pending []store.Outcome
	// unsettled counts the claimed rows with no outcome yet.
	unsettled int
}

// record makes o durable: once it returns nil, the next transaction may
// start.
func (c *claimOutcomes) record(ctx context.Context, o store.Outcome) error {
	c.unsettled--
	c.pending = append(c.pending, o)
	if c.journal == nil {
		return c.flush(ctx)
	}
	err := c.journal.append(ctx, c.token, o)
	if err == nil {
		return nil
	}
	// Redis did not take it: the ledger must have it before anything else
	// is sent. A sealed or lost journal also ends the claim.
	if ferr := c.flush(ctx); ferr != nil {
		return errors.Join(err, ferr)
	}
	if errors.Is(err, errJournalClosed) {
		return errJournalClosed
	}
	return nil
}

// flush writes the pending outcomes to the ledger.
func (c *claimOutcomes) flush(ctx context.Context) error {
	if len(c.pending) == 0 {
		return nil
	}
	err := c.db.RecordOutcomes(ctx, c.token, c.pending)
	if err == nil || errors.Is(err, store.ErrLeaseLost) {
		// Written, or settled by the sweep from the journal already.
		c.pending = c.pending[:0]
	}
	return err
}

// finish ends the claim, however sending stopped: it writes the pending
// outcomes, hands the rows never started back to the queue, and then
// deletes the journal. When any step fails the journal is kept and the
// rows stay claimed, for the lease sweep to settle from the journal:
// without it every row still sending would become uncertain.
func (c *claimOutcomes) finish(ctx context.Context) error {
	if err := c.flush(ctx); err != nil && !errors.Is(err, store.ErrLeaseLost) {
		return err
	}
	// Every started transaction's outcome is in the ledger now, which is
	// what ReleaseClaim requires.
	if c.unsettled > 0 {
		if err := c.db.ReleaseClaim(ctx, c.token); err != nil {
			return err
		}
	}
	if c.journal == nil {
		return nil
	}
	return c.journal.drop(ctx, c.token)
}

// waitDomain waits until d's recipient domain allows one more message,
// before its transaction starts, while the claim's lease is kept and a
// pause or shutdown is still honoured. Rows that are not sent (inactive
// contacts) do not wait.
func (h *Sender) waitDomain(ctx context.Context, id int64, d store.Claimed, extend func() error) error {
	if len(h.cfg.DomainRates) == 0 || d.Contact == nil || d.Contact.Status != campaign.ContactActive {
		return nil
	}
	domain := domainOf(d.Contact.Email)
	rate := h.cfg.DomainRates[domain]
	if rate <= 0 {
		return nil
	}
	for {
		wait, err := h.limits.takeDomain(ctx, domain, rate)
		if err != nil || wait == 0 {
			return err
		}
		if err := h.sleep(ctx, wait); err != nil {
			return err
		}
		if err := h.checkGo(ctx, id); err != nil {
			return err
		}
		if err := extend(); err != nil {
			return err
		}
	}
}

// domainOf is the lower-cased domain of an address.
func domainOf(email string) string {
	return strings.ToLower(email[strings.LastIndexByte(email, '@')+1:])
}

// deliver decides one delivery's outcome: skipped for a contact who is no
// longer active, failed when its message cannot be built, else the SMTP
// result. It checks once more that the campaign is sending right before
// the transaction starts, so that a pause or cancel is honoured within
// campaign.StopWithin however long building the message took; when it is
// not, it returns the error and no outcome.
func (h *Sender) deliver(ctx context.Context, conn *mailer.Conn, c *campaign.Campaign, prep *prepared, token string, d store.Claimed, buf []byte) (store.Outcome, []byte, bool, error) {
	o := store.Outcome{ID: d.ID, Claim: token, ContactID: d.ContactID}
	ct := d.Contact
	if ct == nil || ct.Status != campaign.ContactActive {
		o.Status, o.Reason = campaign.DeliverySkipped, "contact is no longer active"
		if ct != nil {
			o.Reason = "contact is " + string(ct.Status)
		}
		return o, buf, false, nil
	}
	msg, err := prep.tpl.Render(templates.Input{Contact: *ct, Campaign: templates.CampaignData{ID: c.ID, Name: c.Name},
		Sender: prep.sender, Delivery: d.ID})
	if err != nil {
		o.Status, o.Reason = campaign.DeliveryFailed, "render: "+err.Error()
		return o, buf, false, nil
	}
	// A click on a link that was not recorded would find nothing: record
	// before the message can reach anyone.
	if err := h.cfg.Links.Record(ctx, c.ID, d.ID, msg.Links); err != nil {
		o.Status, o.NextAttemptAt, o.Reason = campaign.DeliveryDeferred, h.now().Add(h.backoff(d.Attempts)), "record links: "+err.Error()
		return o, buf, false, nil
	}
	m, err := h.cfg.Composer.ComposeTo(buf[:0], mailer.Draft{Sender: prep.sender, ToEmail: ct.Email, ToName: ct.FullName(),
		Subject: msg.Subject, HTML: msg.HTML, Text: msg.Text, UnsubscribeURL: msg.UnsubscribeURL, CampaignID: c.ID, DeliveryID: d.ID})
	if err != nil {
		o.Status, o.Reason = campaign.DeliveryFailed, "compose: "+err.Error()
		return o, buf, false, nil
	}
	if err := h.checkGo(ctx, c.ID); err != nil {
		return o, m.Raw[:0], false, err
	}
	start := time.Now()
	err = conn.Send(ctx, &m)
	h.cfg.Metrics.latency.Observe(time.Since(start).Seconds())
	buf = m.Raw[:0]
	if err == nil {
		o.Status, o.SMTPCode, o.MessageID = campaign.DeliverySent, 250, m.MessageID
		return o, buf, false, nil
	}
	var se *mailer.SendError
	if !errors.As(err, &se) {
		se = &mailer.SendError{Stage: "send", Err: err}
	}
	o.SMTPCode, o.Reason = se.Code, se.Error() // the ledger bounds its length
	switch {
	case se.Class() == mailer.Permanent && se.Stage == "rcpt":
		o.Status = campaign.DeliveryBounced
	case se.Class() == mailer.Permanent:
		o.Status = campaign.DeliveryFailed
	case h.now().Sub(d.CreatedAt) > h.cfg.MaxAge:
		o.Status = campaign.DeliveryFailed
	default:
		o.Status, o.NextAttemptAt = campaign.DeliveryDeferred, h.now().Add(h.backoff(d.Attempts))
	}
	return o, buf, se.Stage == "dial", nil
}

// backoff is the wait before attempt n+1: RetryBase doubled per attempt,
// capped at an hour, with ±20% jitter so that retries spread out.
func (h *Sender) backoff(attempts int) time.Duration {
	d := float64(h.cfg.RetryBase) * math.Pow(2, float64(max(attempts-1, 0)))
	d = math.Min(d, float64(time.Hour))
	return time.Duration(d * (0.8 + 0.4*mrand.Float64()))
}

func newToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// prepared is what a campaign's messages share: the compiled template and
// the sender. It is built once per campaign per process.
type prepared struct {
	tpl    *templates.Compiled
	sender campaign.Sender
}

// prepare compiles c's template and builds its sender. An EINVALID error
// means the campaign cannot be sent at all.
func (h *Sender) prepare(ctx context.Context, c *campaign.Campaign) (*prepared, error) {
	h.mu.Lock()
	p := h.preps[c.ID]
	h.mu.Unlock()
	if p != nil {
		return p, nil
	}
	t, err := h.cfg.DB.FindTemplate(ctx, c.TemplateID)
	if err != nil {
		return nil, err
	}
	tpl, err := templates.Compile(*t, h.cfg.Templates)
	if err != nil {
		return nil, err
	}
	s, err := h.cfg.DB.Sender(ctx)
	if err != nil {
		return nil, err
	}
	s.FromName, s.FromEmail = c.FromName, c.FromEmail
	if c.ReplyTo != "" {
		s.ReplyTo = c.ReplyTo
	}
	p = &prepared{tpl: tpl, sender: s}
	h.mu.Lock()
	if len(h.preps) > 100 {
		clear(h.preps)
	}
	h.preps[c.ID] = p
	h.mu.Unlock()
	return p, nil
}

// statusCache shares one status read per campaign per ttl among all the
// batches of a process: a pause is seen within ttl without a query per
// message.
type statusCache struct {
	db  *store.DB
	ttl time.Duration
	mu  sync.Mutex
	m   map[int64]statusEntry
}

type statusEntry struct {
	s  campaign.Status
	at time.Time
}

func (s *statusCache) sending(ctx context.Context, id int64) (bool, error) {
	s.mu.Lock()
	e, ok := s.m[id]
	s.mu.Unlock()
	if ok && time.Since(e.at) < s.ttl {
		return e.s == campaign.StatusSending, nil
	}
	// The entry's age counts from before the read: a status is then never
	// used more than ttl after the moment the database returned it.
	readAt := time.Now()
	st, err := s.db.CampaignStatus(ctx, id)
	if campaign.ErrorCode(err) == campaign.ENOTFOUND {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	s.mu.Lock()
	s.m[id] = statusEntry{s: st, at: readAt}
	s.mu.Unlock()
	return st == campaign.StatusSending, nil
}
