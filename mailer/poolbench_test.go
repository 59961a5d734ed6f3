package mailer_test

import (
	"bytes"
	"context"
	"syscall"
	"testing"

	"github.com/funnel-email/funnel/mailer"
	"github.com/funnel-email/funnel/outbox"
)

// BenchmarkPoolSend sends a 14 KB message at a time over one pooled
// connection to a discarding server in the same process; cpu-µs/op is
// the CPU of both ends (user + system), which is what a loopback
// benchmark of the worker pays.
func BenchmarkPoolSend(b *testing.B) {
	box, err := outbox.Listen("127.0.0.1:0", outbox.Options{Discard: true})
	if err != nil {
		b.Fatal(err)
	}
	defer box.Close()
	p, err := mailer.NewPool(serverAt(box.Addr(), 1, 1, 0))
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	m := message(0)
	m.Raw = append(m.Raw, bytes.Repeat([]byte("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do.\r\n"), 14<<10/66)...)
	c, err := p.Acquire(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Release()
	var r0, r1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
	b.ResetTimer()
	for b.Loop() {
		if err := c.Send(context.Background(), m); err != nil {
			b.Fatal(err)
		}
	}
	syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
	cpu := func(r syscall.Rusage) float64 {
		return float64(r.Utime.Sec+r.Stime.Sec)*1e6 + float64(r.Utime.Usec+r.Stime.Usec)
	}
	b.ReportMetric((cpu(r1)-cpu(r0))/float64(b.N), "cpu-µs/op")
}
