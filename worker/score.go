package worker

import (
	"context"
	"log/slog"
	"time"

	"github.com/funnel-email/funnel/store"
)

// Scorer turns events into points, stages and leads, and hands pending
// webhook deliveries to the queue. Every worker process may run one: the
// scoring cursor in the database serializes them (see store.ScoreEvents),
// so running many is harmless and one dying mid-run loses nothing.
//
// Every Tick it scores until the events are drained (in batches of
// Batch), writes the decay due (every DecayEvery), and enqueues the
// webhook deliveries the runs produced. A human click is scored once it
// is Settle old (see store.ScoreSettled), so a click that a later hit
// turns into a machine click earns nothing.
type Scorer struct {
	DB       *store.DB
	Webhooks *WebhookClient // nil: deliveries stay pending in the database
	Logger   *slog.Logger
	// Settle is how old a human click must be before it is scored: the
	// longest time in which a later hit of its delivery can make it a
	// machine click, plus the event writer's lag (funnel work derives it
	// from the classifier's windows). Zero scores clicks at once.
	Settle time.Duration
	// Now is the clock Settle is measured on (default time.Now).
	Now func() time.Time
	// Tick is how often the scorer looks for events (default 1 s).
	Tick time.Duration
	// DecayEvery is how often decay is written (default 1 min).
	DecayEvery time.Duration
	// Batch is the events per transaction (default 500).
	Batch int
}

// Run scores until ctx ends.
func (s *Scorer) Run(ctx context.Context) {
	if s.Tick <= 0 {
		s.Tick = time.Second
	}
	if s.DecayEvery <= 0 {
		s.DecayEvery = time.Minute
	}
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var lastDecay time.Time
	t := time.NewTicker(s.Tick)
	defer t.Stop()
	for {
		decay := time.Since(lastDecay) >= s.DecayEvery
		if err := s.Once(ctx, decay); err != nil && ctx.Err() == nil {
			log.WarnContext(ctx, "scoring", "err", err)
		} else if decay {
			lastDecay = time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Once scores every event there is (stopping when another worker holds
// the cursor), writes due decay when decay is set, and dispatches pending
// webhook deliveries.
func (s *Scorer) Once(ctx context.Context, decay bool) error {
	batch := s.Batch
	if batch <= 0 {
		batch = 500
	}
	var settled time.Time
	if s.Settle > 0 {
		now := time.Now
		if s.Now != nil {
			now = s.Now
		}
		settled = now().Add(-s.Settle)
	}
	for ctx.Err() == nil {
		run, err := s.DB.ScoreSettled(ctx, batch, settled)
		if err != nil {
			return err
		}
		if !run.More || run.Busy {
			break
		}
	}
	for decay && ctx.Err() == nil {
		n, busy, err := s.DB.DecayScores(ctx, batch)
		if err != nil {
			return err
		}
		if busy || n < batch {
			break
		}
	}
	if s.Webhooks != nil {
		return s.Webhooks.Dispatch(ctx)
	}
	return nil
}
