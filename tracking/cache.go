package tracking

import (
	"sync"
	"time"

	"github.com/funnel-email/funnel/store"
)

// deliveryCache keeps the deliveries the endpoints resolved recently, so
// that a click after another click or the unsubscribe page of the same
// delivery needs no query. A delivery's campaign and contact never
// change and its links are recorded before its message is sent, so an
// entry is right for as long as it is kept; what it can miss is a
// delivery deleted since, or one re-rendered with other links, and it
// sees those within 2*ttl.
//
// It holds two generations: new entries go into the current one, which
// is retired when it reaches size entries or is ttl old, and lookups
// also read the retired one. So it holds at most 2*size entries, each
// for at most 2*ttl: a bounded, approximately least-recently-resolved
// cache without a list to maintain on every hit.
type deliveryCache struct {
	size int
	ttl  time.Duration
	now  func() time.Time

	mu        sync.RWMutex
	cur, prev map[int64]*store.TrackedDelivery
	started   time.Time // of cur
}

func newDeliveryCache(size int, ttl time.Duration, now func() time.Time) *deliveryCache {
	return &deliveryCache{size: size, ttl: ttl, now: now, cur: map[int64]*store.TrackedDelivery{}, started: now()}
}

// get returns the cached delivery id, or nil.
func (c *deliveryCache) get(id int64) *store.TrackedDelivery {
	c.mu.RLock()
	d, ok := c.cur[id]
	if !ok {
		d = c.prev[id]
	}
	c.mu.RUnlock()
	return d
}

// put caches found deliveries; it never caches an absence.
func (c *deliveryCache) put(found map[int64]*store.TrackedDelivery) {
	if len(found) == 0 {
		return
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, d := range found {
		if len(c.cur) >= c.size || now.Sub(c.started) >= c.ttl {
			c.prev, c.cur, c.started = c.cur, make(map[int64]*store.TrackedDelivery, min(c.size, 1024)), now
		}
		c.cur[id] = d
	}
}
