package worker_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/funnel-email/funnel/campaign"
)

// maxInWindow returns the most timestamps that fall in any half-open
// window [t, t+w), and where that window starts.
func maxInWindow(ts []time.Time, w time.Duration) (int, time.Time) {
	best, at := 0, time.Time{}
	j := 0
	for i := range ts {
		for ts[i].Sub(ts[j]) >= w {
			j++
		}
		if n := i - j + 1; n > best {
			best, at = n, ts[j]
		}
	}
	return best, at
}

func TestMaxInWindow(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms ...int) []time.Time {
		var out []time.Time
		for _, m := range ms {
			out = append(out, t0.Add(time.Duration(m)*time.Millisecond))
		}
		return out
	}
	tests := []struct {
		ts   []time.Time
		w    time.Duration
		want int
	}{
		{nil, time.Second, 0},
		{at(0), time.Second, 1},
		{at(0, 999), time.Second, 2},
		{at(0, 1000), time.Second, 1},
		{at(0, 500, 1200, 1300, 1400), time.Second, 4},
		{at(0, 0, 0, 2000, 2000), time.Second, 3},
	}
	for _, tt := range tests {
		if got, _ := maxInWindow(tt.ts, tt.w); got != tt.want {
			t.Errorf("maxInWindow(%v, %s) = %d, want %d", tt.ts, tt.w, got, tt.want)
		}
	}
}

// A campaign's rate holds across all the batches sending it at once (here
// two buckets on six workers, sharing the limit through Redis): in any
// window of w seconds the SMTP server receives at most rate*w messages
// plus the limiter's burst. The check is on the server's receive times,
// not on how long the campaign took.
func TestCampaignRateBoundsMessagesInEveryWindow(t *testing.T) {
	const (
		n     = 200
		rate  = 25
		chunk = 20 // the rig's Sender.Chunk
		// The limiter lets a claim be filled at once: its burst is a
		// second's worth, at most a chunk.
		burst = min(rate, chunk)
		// A message reaches the server a little after its token was
		// granted (claim, render, SMTP); a window of receive times may
		// therefore span this much more of the grant times.
		jitter = 250 * time.Millisecond
	)
	r := newRig(t, rigOptions{redisDB: 4})
	c, contacts := r.fixture(n, "rate")
	c.Rate = rate
	if err := r.db.UpdateCampaign(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	r.send(c, time.Now())
	_, p := r.wait(c.ID, 30*time.Second, "sent", sentStatus)
	if p.Counts[campaign.DeliverySent] != n {
		t.Fatalf("progress %+v, want %d sent", p.Counts, n)
	}
	r.exactlyOnce(contacts, nil)

	var ts []time.Time
	for _, m := range r.smtp.Messages() {
		ts = append(ts, m.ReceivedAt)
	}
	slices.SortFunc(ts, time.Time.Compare)
	for _, w := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		limit := int(rate*(w+jitter).Seconds()) + burst
		got, at := maxInWindow(ts, w)
		t.Logf("at most %d messages in any %s window (limit %d)", got, w, limit)
		if got > limit {
			t.Errorf("%d messages arrived in the %s from %s (%s after the first); at %d/s with a burst of %d at most %d may",
				got, w, at.Format("15:04:05.000"), at.Sub(ts[0]).Round(time.Millisecond), rate, burst, limit)
		}
	}
}
