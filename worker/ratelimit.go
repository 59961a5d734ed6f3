package worker

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/mailer"
)

// limiter holds the per-campaign, per-SMTP-server and per-recipient-domain
// rates in Redis (GCRA via redis_rate), so that they hold across every
// worker process. Campaign and server tokens are taken before deliveries
// are claimed: a worker never holds a lease while it waits for those
// limits. A domain token is taken right before the transaction to that
// recipient (see Sender.waitDomain). Waiting never costs an asynq retry.
type limiter struct {
	l *redis_rate.Limiter
}

func newLimiter(rdb redis.UniversalClient) *limiter {
	if rdb == nil {
		return &limiter{}
	}
	return &limiter{l: redis_rate.NewLimiter(rdb)}
}

// limitOf turns messages per second into a GCRA limit whose burst is at
// most a second's worth (and at most chunk), so a claim can be filled at
// once without exceeding the rate over any second.
func limitOf(rate float64, chunk int) redis_rate.Limit {
	if rate >= 1 {
		r := int(math.Round(rate))
		return redis_rate.Limit{Rate: r, Period: time.Second, Burst: max(1, min(r, chunk))}
	}
	return redis_rate.Limit{Rate: 1, Period: time.Duration(float64(time.Second) / rate), Burst: 1}
}

// take returns how many messages (at most n) may be sent now under the
// campaign's and the connection's server limits, or 0 and how long to
// wait. Tokens the campaign granted but the server refused are lost: the
// campaign then sends slightly below its rate, never above.
func (l *limiter) take(ctx context.Context, c *campaign.Campaign, conn *mailer.Conn, n int) (int, time.Duration, error) {
	if l.l == nil {
		return n, 0, nil
	}
	for _, lim := range []struct {
		key  string
		rate float64
	}{{fmt.Sprintf("funnel:rate:campaign:%d", c.ID), c.Rate}, {"funnel:rate:smtp:" + conn.Server(), conn.Rate()}} {
		if lim.rate <= 0 {
			continue
		}
		res, err := l.l.AllowAtMost(ctx, lim.key, limitOf(lim.rate, n), n)
		if err != nil {
			return 0, 0, fmt.Errorf("rate limit %s: %w", lim.key, err)
		}
		if res.Allowed == 0 {
			return 0, res.RetryAfter, nil
		}
		n = res.Allowed
	}
	return n, 0, nil
}

// takeDomain takes one message of domain's rate, or returns how long to
// wait before asking again. The burst is one message: the domain sees
// its messages evenly spaced, whichever workers send them.
func (l *limiter) takeDomain(ctx context.Context, domain string, rate float64) (time.Duration, error) {
	if l.l == nil {
		return 0, nil
	}
	key := "funnel:rate:domain:" + domain
	res, err := l.l.Allow(ctx, key, limitOf(rate, 1))
	if err != nil {
		return 0, fmt.Errorf("rate limit %s: %w", key, err)
	}
	if res.Allowed == 0 {
		return max(res.RetryAfter, time.Millisecond), nil
	}
	return 0, nil
}
