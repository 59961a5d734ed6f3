package worker

import (
	"github.com/hibiken/asynq"
	"github.com/hibiken/asynq/x/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
)

// Metrics are the sender's Prometheus metrics.
type Metrics struct {
	messages *prometheus.CounterVec
	latency  prometheus.Histogram
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered, for tests).
//
//	funnel_messages_total{outcome, reason}  deliveries by outcome; reason is
//	                                        the SMTP reply class or why it was not sent
//	funnel_smtp_send_seconds                one SMTP transaction, dial included
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "funnel_messages_total", Help: "Campaign deliveries by outcome and reason.",
		}, []string{"outcome", "reason"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "funnel_smtp_send_seconds", Help: "Duration of one SMTP transaction.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
	}
	if reg != nil {
		reg.MustRegister(m.messages, m.latency)
	}
	return m
}

func (m *Metrics) outcome(o store.Outcome) {
	reason := ""
	switch {
	case o.Status == campaign.DeliverySkipped:
		reason = "suppressed"
	case o.SMTPCode >= 500:
		reason = "5xx"
	case o.SMTPCode >= 400:
		reason = "4xx"
	case o.Status == campaign.DeliveryDeferred:
		reason = "transport"
	case o.Status == campaign.DeliveryFailed:
		reason = "build"
	}
	m.messages.WithLabelValues(string(o.Status), reason).Inc()
}

// RegisterQueueMetrics registers asynq's queue gauges with reg. They are
// read from Redis at scrape time (a few commands per queue), so every
// worker reports the same cluster-wide values:
//
//	asynq_queue_size{queue}                   tasks in the queue, all states
//	asynq_tasks_enqueued_total{queue, state}  tasks by state: active, pending,
//	                                          aggregating, scheduled, retry,
//	                                          archived, completed
//	asynq_queue_latency_seconds{queue}        age of the oldest pending task
//	asynq_queue_paused_total{queue}           1 when the queue is paused
//
// and the processed, failed and memory-usage gauges of asynq's x/metrics.
// A failed read is logged by that package and the scrape omits them.
func RegisterQueueMetrics(reg prometheus.Registerer, rdb redis.UniversalClient) error {
	return reg.Register(metrics.NewQueueMetricsCollector(asynq.NewInspectorFromRedisClient(rdb)))
}
