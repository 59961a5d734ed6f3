package tracking

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/funnel-email/funnel/campaign"
)

// Metrics counts what the tracking side does. The zero registerer (nil)
// keeps them unexported.
type Metrics struct {
	hits      *prometheus.CounterVec
	byKind    [len(kindCodes)]prometheus.Counter // hits' counters, by kindCode
	fallbacks prometheus.Counter
	lost      prometheus.Counter
	written   prometheus.Counter
	dropped   prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg when it is
// not nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		hits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "funnel_tracking_hits_total", Help: "Tracking requests accepted and queued, by event kind.",
		}, []string{"kind"}),
		fallbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "funnel_tracking_direct_writes_total", Help: "Hits written directly to the database because Redis refused them.",
		}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "funnel_tracking_hits_lost_total", Help: "Hits that neither Redis nor the database took (the request was answered anyway).",
		}),
		written: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "funnel_tracking_events_written_total", Help: "Events inserted from hits.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "funnel_tracking_hits_dropped_total", Help: "Hits of deliveries that no longer exist, or that did not decode.",
		}),
	}
	for i, k := range kindCodes {
		if i > 0 {
			m.byKind[i] = m.hits.WithLabelValues(string(k))
		}
	}
	if reg != nil {
		reg.MustRegister(m.hits, m.fallbacks, m.lost, m.written, m.dropped)
	}
	return m
}

// hit returns the counter of accepted hits of kind k.
func (m *Metrics) hit(k campaign.EventKind) prometheus.Counter {
	if c := m.byKind[kindCode(k)]; c != nil {
		return c
	}
	return m.hits.WithLabelValues(string(k))
}
