package tracking

import (
	"testing"
	"time"

	"github.com/funnel-email/funnel/store"
)

func TestDeliveryCacheIsBoundedAndForgetsAfterTwoGenerations(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	c := newDeliveryCache(2, time.Minute, func() time.Time { return now })
	d := func(id int64) map[int64]*store.TrackedDelivery {
		return map[int64]*store.TrackedDelivery{id: {ID: id, CampaignID: 7, ContactID: id * 10}}
	}
	c.put(d(1))
	c.put(d(2))
	c.put(d(3)) // retires {1, 2}
	for _, id := range []int64{1, 2, 3} {
		if got := c.get(id); got == nil || got.ContactID != id*10 {
			t.Fatalf("get(%d) = %+v after one retirement", id, got)
		}
	}
	c.put(d(4))
	c.put(d(5)) // retires {3, 4}, drops {1, 2}
	if c.get(1) != nil || c.get(2) != nil {
		t.Errorf("entries two generations old are still cached")
	}
	if n := len(c.cur) + len(c.prev); n > 4 {
		t.Errorf("%d entries cached, want at most 2*size", n)
	}
	now = now.Add(2 * time.Minute)
	c.put(d(6)) // ttl: retires {5}
	c.put(d(7)) // cur {6, 7}
	c.put(d(8)) // size: retires {6, 7}, drops {5}
	if c.get(5) != nil || c.get(99) != nil {
		t.Errorf("expired or unknown delivery answered from the cache")
	}
}
