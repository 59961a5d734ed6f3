package mailer_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/funnel-email/funnel/mailer"
)

// A pool= parameter groups servers; AcquireIn picks only among a group,
// and a group no server is in is an error, not a wait.
func TestAcquireInPicksOnlyThePoolsServers(t *testing.T) {
	servers, err := mailer.ParseSMTPServers("smtp://a.example:25?tls=none&pool=bulk,smtp://b.example:25?tls=none&pool=transactional&weight=5,smtp://c.example:25?tls=none&pool=bulk")
	if err != nil {
		t.Fatal(err)
	}
	p, err := mailer.NewPool(servers...)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	seen := map[string]int{}
	for range 200 {
		c, err := p.AcquireIn(ctx, "bulk")
		if err != nil {
			t.Fatal(err)
		}
		seen[c.Server()]++
		c.Release()
	}
	if len(seen) != 2 || seen["a.example:25"] == 0 || seen["c.example:25"] == 0 {
		t.Errorf("bulk pool used %v, want a.example:25 and c.example:25 only", seen)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, err := p.AcquireIn(ctx, "marketing"); !errors.Is(err, mailer.ErrNoSuchPool) {
		t.Errorf("unknown pool: %v, want ErrNoSuchPool", err)
	}
	all := map[string]bool{}
	for range 200 {
		c, err := p.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		all[c.Server()] = true
		c.Release()
	}
	if len(all) != 3 {
		t.Errorf("Acquire used %v, want every server", all)
	}
}

func TestPoolParameterIsAName(t *testing.T) {
	for _, bad := range []string{"pool=", "pool=a%20b", "pool=" + strings.Repeat("a", 65)} {
		if _, err := mailer.ParseSMTPServers("smtp://a.example:25?" + bad); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}
