package ops_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/funnel-email/funnel/ops"
)

func TestReadyzReportsFailingCheck(t *testing.T) {
	healthy := true
	mux := http.NewServeMux()
	reg := ops.NewRegistry()
	ops.Register(mux, reg, map[string]ops.Check{
		"database": func(context.Context) error { return nil },
		"redis": func(context.Context) error {
			if healthy {
				return nil
			}
			return errors.New("connection refused")
		},
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/readyz"); code != 200 || !strings.Contains(body, `"redis":"ok"`) {
		t.Errorf("healthy readyz = %d %s", code, body)
	}
	healthy = false
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "connection refused") {
		t.Errorf("unhealthy readyz = %d %s", code, body)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("healthz = %d", code)
	}
}

func TestInstrumentLabelsByRoutePattern(t *testing.T) {
	reg := ops.NewRegistry()
	app := http.NewServeMux()
	app.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	mux := http.NewServeMux()
	ops.Register(mux, reg, nil)
	mux.Handle("/items/", ops.Instrument(reg, app))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, id := range []string{"1", "2", "3"} {
		resp, err := http.Get(srv.URL + "/items/" + id)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	want := `funnel_http_requests_total{code="418",route="GET /items/{id}"} 3`
	if !strings.Contains(string(b), want) {
		t.Errorf("metrics lack %q", want)
	}
}
