package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
)

// TypeDeliverWebhook POSTs one webhook delivery (an outbox row).
const TypeDeliverWebhook = "webhook:deliver"

// WebhookPayload is the payload of TypeDeliverWebhook.
type WebhookPayload struct {
	DeliveryID int64 `json:"delivery_id"`
}

// WebhookConfig configures webhook delivery.
type WebhookConfig struct {
	DB     *store.DB
	Redis  redis.UniversalClient
	Logger *slog.Logger
	// AllowPrivate lets deliveries reach loopback, private and link-local
	// addresses (tests, funnel dev, a CRM inside the network). Off, the
	// dialer refuses them after DNS resolution, so a public name that
	// resolves to 127.0.0.1 is refused too.
	AllowPrivate bool
	// Timeout bounds one POST (default 10 s).
	Timeout time.Duration
	// Backoff is the wait before attempt n+1 after attempt n failed
	// (default 30 s × 2^(n−1), at most 1 h, with ±20% jitter).
	Backoff func(n int) time.Duration
	// GiveUpAfter is how long after its creation a delivery is retried
	// (default 24 h); then it is marked failed.
	GiveUpAfter time.Duration
	// StaleAfter is how long a delivery handed to the queue may stay
	// pending before Dispatch hands it over again, in case Redis lost it
	// (default 10 min; an asynq task ID still held makes that a no-op).
	StaleAfter time.Duration
	// Queue is the asynq queue (default QueueMaintenance).
	Queue string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// WebhookClient hands webhook deliveries to asynq and delivers them.
type WebhookClient struct {
	cfg  WebhookConfig
	c    *asynq.Client
	http *http.Client
	log  *slog.Logger
}

// NewWebhooks returns a WebhookClient; Close releases its Redis client.
func NewWebhooks(cfg WebhookConfig) *WebhookClient {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Backoff == nil {
		cfg.Backoff = defaultWebhookBackoff
	}
	if cfg.GiveUpAfter <= 0 {
		cfg.GiveUpAfter = 24 * time.Hour
	}
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = 10 * time.Minute
	}
	if cfg.Queue == "" {
		cfg.Queue = QueueMaintenance
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dialer := &net.Dialer{Timeout: cfg.Timeout}
	if !cfg.AllowPrivate {
		dialer.Control = refusePrivate
	}
	tr := &http.Transport{DialContext: dialer.DialContext, Proxy: nil, MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute}
	hc := &http.Client{Transport: tr, Timeout: cfg.Timeout,
		// A redirect could lead anywhere; the endpoint must answer itself.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &WebhookClient{cfg: cfg, c: asynq.NewClientFromRedisClient(cfg.Redis), http: hc, log: log.With("component", "webhooks")}
}

func defaultWebhookBackoff(n int) time.Duration {
	d := 30 * time.Second << min(max(n-1, 0), 7)
	d = min(d, time.Hour)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// refusePrivate is the dialer's last word on the address it connects to.
func refusePrivate(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !campaign.PublicIP(ip) {
		return fmt.Errorf("webhook target %s is not a public address", host)
	}
	return nil
}

// Register registers the delivery handler on s.
func (w *WebhookClient) Register(s *Server) { s.Handle(TypeDeliverWebhook, w) }

// Close closes the client's Redis connection when it owns one.
func (w *WebhookClient) Close() error { return w.c.Close() }

// Dispatch hands pending deliveries to the queue. The task ID is the
// delivery ID, so handing one over twice enqueues it once.
func (w *WebhookClient) Dispatch(ctx context.Context) error {
	for {
		ids, err := w.cfg.DB.ClaimWebhookDeliveries(ctx, w.cfg.Now().Add(-w.cfg.StaleAfter), 200)
		if err != nil {
			return err
		}
		for _, id := range ids {
			payload, _ := json.Marshal(WebhookPayload{DeliveryID: id})
			_, err := w.c.EnqueueContext(ctx, asynq.NewTask(TypeDeliverWebhook, payload),
				asynq.Queue(w.cfg.Queue), asynq.TaskID("webhook:"+strconv.FormatInt(id, 10)),
				asynq.MaxRetry(1000), asynq.Timeout(2*w.cfg.Timeout))
			if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
				_ = w.cfg.DB.ReleaseWebhookDelivery(ctx, id)
				return fmt.Errorf("enqueue webhook delivery %d: %w", id, err)
			}
		}
		if len(ids) < 200 {
			return nil
		}
	}
}

// ProcessTask POSTs a delivery and records the attempt. A failure is
// retried after the backoff (as a retryAfter, so asynq's retry count does
// not decide) until GiveUpAfter has passed since the delivery was made;
// then it is marked failed.
func (w *WebhookClient) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var p WebhookPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil {
		return fmt.Errorf("decode webhook payload: %v: %w", err, asynq.SkipRetry)
	}
	s, err := w.cfg.DB.FindWebhookSend(ctx, p.DeliveryID)
	if campaign.ErrorCode(err) == campaign.ENOTFOUND {
		return nil // the endpoint was deleted with its deliveries
	}
	if err != nil {
		return err
	}
	if s.Delivery.Status != campaign.WebhookPending {
		return nil
	}
	log := w.log.With("webhook_id", s.Delivery.WebhookID, "delivery_id", s.Delivery.ID, "event", s.Delivery.Event)
	a := w.post(ctx, s)
	status := campaign.WebhookPending
	giveUp := !s.Active || w.cfg.Now().Sub(s.Delivery.CreatedAt) >= w.cfg.GiveUpAfter
	switch {
	case a.StatusCode >= 200 && a.StatusCode < 300:
		status = campaign.WebhookDelivered
	case giveUp:
		status = campaign.WebhookFailed
	}
	n, err := w.cfg.DB.RecordWebhookAttempt(ctx, s.Delivery.ID, a, status)
	if campaign.ErrorCode(err) == campaign.ECONFLICT {
		return nil
	}
	if err != nil {
		return err
	}
	switch status {
	case campaign.WebhookDelivered:
		return nil
	case campaign.WebhookFailed:
		log.WarnContext(ctx, "webhook delivery failed for good", "attempts", n, "status_code", a.StatusCode, "err", a.Error)
		return nil
	}
	wait := w.cfg.Backoff(n)
	log.InfoContext(ctx, "webhook delivery will be retried", "attempt", n, "status_code", a.StatusCode, "err", a.Error, "retry_in", wait)
	return &retryAfter{d: wait, why: fmt.Sprintf("webhook delivery %d attempt %d failed", s.Delivery.ID, n)}
}

// post sends the delivery once and describes the outcome.
func (w *WebhookClient) post(ctx context.Context, s *store.WebhookSend) campaign.WebhookAttempt {
	start := w.cfg.Now()
	a := campaign.WebhookAttempt{At: start.UTC()}
	id := strconv.FormatInt(s.Delivery.ID, 10)
	body, _ := json.Marshal(campaign.WebhookPayload{ID: id, Type: s.Delivery.Event, CreatedAt: s.Delivery.CreatedAt, Data: s.Delivery.Data})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(body))
	if err != nil {
		a.Error = err.Error()
		return a
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Funnel-Webhooks/1")
	req.Header.Set("Funnel-Event", s.Delivery.Event)
	req.Header.Set("Funnel-Delivery", id)
	req.Header.Set(campaign.SignatureHeader, campaign.SignWebhook(s.Secret, start, body))
	resp, err := w.http.Do(req)
	a.DurationMS = w.cfg.Now().Sub(start).Milliseconds()
	if err != nil {
		a.Error = err.Error()
		return a
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	a.StatusCode = resp.StatusCode
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		a.Error = resp.Status
	}
	return a
}
