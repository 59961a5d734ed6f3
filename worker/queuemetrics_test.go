package worker_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/funnel-email/funnel/ops"
	"github.com/funnel-email/funnel/worker"
)

func TestMetricsShowQueueDepthByState(t *testing.T) {
	rdb := redisDB(t, 6)
	client := asynq.NewClientFromRedisClient(rdb)
	for _, opts := range [][]asynq.Option{nil, nil, {asynq.ProcessIn(time.Hour)}} {
		if _, err := client.Enqueue(asynq.NewTask("test:noop", nil), opts...); err != nil {
			t.Fatal(err)
		}
	}
	reg := ops.NewRegistry()
	if err := worker.RegisterQueueMetrics(reg, rdb); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	ops.Register(mux, reg, nil)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	res, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	for _, want := range []string{
		`asynq_queue_size{queue="default"} 3`,
		`asynq_tasks_enqueued_total{queue="default",state="pending"} 2`,
		`asynq_tasks_enqueued_total{queue="default",state="scheduled"} 1`,
		`asynq_tasks_enqueued_total{queue="default",state="active"} 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", grepLines(string(body), "asynq_"))
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
