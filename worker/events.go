package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"time"

	"github.com/funnel-email/funnel/tracking"
)

// EventWriter moves tracking hits from the Redis queue into the events
// table: it reads them in order, in batches, has the Recorder judge and
// write each batch in one transaction, and only then removes the batch
// from the queue. A hit read twice (after a crash between the write and
// the removal) is recognized and not written again, so every queued hit
// becomes exactly one event.
//
// Any number of workers may run an EventWriter: a lock in Redis lets one
// write at a time, which keeps each delivery's events in order for the
// classifier; the others wait and take over within LockTTL when it dies.
type EventWriter struct {
	Queue    *tracking.Queue
	Recorder *tracking.Recorder
	Logger   *slog.Logger
	// Batch is the most hits written per transaction (default 2000).
	Batch int
	// Idle is the pause when the queue is empty (default 20 ms).
	Idle time.Duration
	// LockTTL is how long the writer lock outlives a writer that stopped
	// renewing it (default 15 s).
	LockTTL time.Duration
}

// Run writes hits until ctx is done, then finishes the batch in hand and
// releases the lock.
func (w *EventWriter) Run(ctx context.Context) {
	batch, idle, ttl := w.Batch, w.Idle, w.LockTTL
	if batch <= 0 {
		batch = 2000
	}
	if idle <= 0 {
		idle = 20 * time.Millisecond
	}
	if ttl <= 0 {
		ttl = 15 * time.Second
	}
	log := w.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	owner := hex.EncodeToString(b[:])
	wctx := context.WithoutCancel(ctx)
	defer func() { _ = w.Queue.Unlock(wctx, owner) }()
	for ctx.Err() == nil {
		n, err := w.step(wctx, owner, batch, ttl)
		if err != nil {
			log.Warn("event writer", "err", err)
		}
		if n == 0 || err != nil {
			wait := idle
			if err != nil {
				wait = time.Second
			}
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
		}
	}
}

// step writes one batch under the lock and returns how many hits it took
// off the queue (0 when it does not hold the lock or the queue is empty).
func (w *EventWriter) step(ctx context.Context, owner string, batch int, ttl time.Duration) (int, error) {
	ok, err := w.Queue.Lock(ctx, owner, ttl)
	if err != nil || !ok {
		return 0, err
	}
	return w.Drain(ctx, batch)
}

// Drain writes one batch of at most n hits from the head of the queue and
// removes it; it returns how many were removed. Callers other than Run
// must hold the lock (tests, the benchmark).
func (w *EventWriter) Drain(ctx context.Context, n int) (int, error) {
	hits, raw, err := w.Queue.Peek(ctx, n)
	if err != nil || len(raw) == 0 {
		return 0, err
	}
	valid := make([]tracking.Hit, 0, len(hits))
	for _, h := range hits {
		if h != nil {
			valid = append(valid, *h)
		}
	}
	if _, err := w.Recorder.Record(ctx, valid); err != nil {
		return 0, err
	}
	if _, err := w.Queue.Ack(ctx, raw); err != nil {
		return 0, err
	}
	return len(raw), nil
}
