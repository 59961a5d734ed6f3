package mailer_test

import (
	"context"
	"testing"

	"github.com/funnel-email/funnel/outbox"
)

func TestPoolResendsOnAFreshConnectionWhenTheIdleOneWasClosed(t *testing.T) {
	box := startOutbox(t, outbox.Options{})
	px := newProxy(t, box.Addr())
	p := newPool(t, px.server(0))

	c := acquire(t, p)
	if err := c.Send(context.Background(), message(0)); err != nil {
		t.Fatal(err)
	}
	c.Release()
	px.cut() // the server closes the idle connection

	c = acquire(t, p)
	defer c.Release()
	// No retry by the caller: the Conn itself must redial.
	for i := 1; i <= 2; i++ {
		if err := c.Send(context.Background(), message(i)); err != nil {
			t.Fatalf("send %d after the idle connection was closed: %v", i, err)
		}
	}
	wantEachOnce(t, box, 3)
	if got := px.connections(); got != 2 {
		t.Errorf("%d connections, want 2 (one before the close, one redial)", got)
	}
}
