package worker

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
)

// Reconciler makes Redis hold what the database says is pending. The
// database is the truth; Redis may have been flushed, or be funnel dev's
// in-memory Redis that died with the last process. Every worker process
// may run one: all it does is enqueue tasks with deterministic IDs, which
// makes running it many times harmless.
//
// Every Tick it recovers expired delivery leases (re-queued rows get a
// recovery batch at once, without waiting for asynq to notice the dead
// task), enqueues the start task of every scheduled campaign, and the
// batches of campaigns that changed to sending since the last tick (a
// resume). The admin API only writes the database, so this is how a
// schedule, send-now or resume reaches the queue, within one Tick. At
// start-up and every Interval it also enqueues the batches of every
// sending campaign that has pending deliveries, and completes those that
// have none.
type Reconciler struct {
	DB       *store.DB
	Client   *Client
	Sender   *Sender
	Logger   *slog.Logger
	Tick     time.Duration // default 2 s
	Interval time.Duration // default 1 min

	since time.Time // campaigns updated after this are looked at every tick
	wave  string    // task ID suffix of the next full pass ("" after the first)
}

// Run reconciles until ctx ends.
func (r *Reconciler) Run(ctx context.Context) {
	if r.Tick <= 0 {
		r.Tick = 2 * time.Second
	}
	if r.Interval <= 0 {
		r.Interval = time.Minute
	}
	log := r.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var lastFull time.Time
	r.since = time.Now().Add(-r.Tick)
	// A worker that starts may be replacing one that died holding batch
	// tasks: asynq keeps those active (and their IDs taken) until its own
	// recovery, a minute or more later. The first pass therefore enqueues
	// a wave under fresh IDs; running a bucket twice is harmless.
	r.wave = fmt.Sprintf(":start:%d", time.Now().UnixNano())
	t := time.NewTicker(r.Tick)
	defer t.Stop()
	for {
		full := time.Since(lastFull) >= r.Interval
		if err := r.Once(ctx, full); err != nil && ctx.Err() == nil {
			log.WarnContext(ctx, "reconcile", "err", err)
		} else if full {
			lastFull = time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Once runs one reconciliation; full adds the pass over sending campaigns.
func (r *Reconciler) Once(ctx context.Context, full bool) error {
	requeued, err := r.DB.RecoverLeases(ctx, r.Sender.journalReader())
	if err != nil {
		return err
	}
	suffix := fmt.Sprintf(":rec:%d", time.Now().UnixNano())
	for id, queued := range requeued {
		if queued {
			if err := r.Sender.enqueuePending(ctx, id, suffix); err != nil {
				return err
			}
		}
	}
	// Clock skew between this worker and the database is absorbed by
	// looking a few ticks back; enqueueing twice is harmless.
	since := r.since.Add(-3 * r.Tick)
	r.since = time.Now()
	statuses := []campaign.Status{campaign.StatusScheduled, campaign.StatusSending}
	for after := int64(0); ; {
		cs, err := r.DB.ListCampaigns(ctx, after, 0, statuses...)
		if err != nil {
			return err
		}
		if len(cs) == 0 {
			if full {
				r.wave = ""
			}
			return nil
		}
		for _, c := range cs {
			after = c.ID
			if c.Status == campaign.StatusSending && !full && c.AudienceSize != nil && c.UpdatedAt.Before(since) {
				continue
			}
			if err := r.reconcile(ctx, c); err != nil {
				return err
			}
		}
	}
}

func (r *Reconciler) reconcile(ctx context.Context, c *campaign.Campaign) error {
	if c.Status == campaign.StatusScheduled || c.AudienceSize == nil {
		at := time.Now()
		if c.Status == campaign.StatusScheduled && c.SendAt != nil {
			at = *c.SendAt
		}
		return r.Client.enqueueStart(ctx, c.ID, c.ScheduleVersion, at, "")
	}
	return r.Sender.enqueuePending(ctx, c.ID, r.wave)
}
