package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
)

// benchUser is the admin the requests act as.
const benchUser = "adminbench@example.com"

// client sends requests to the service as the benchmark's admin user.
type client struct {
	http          *http.Client
	base          string
	token, cookie string
}

// signIn makes (once) the admin user, and for this run a user token and a
// browser session.
func signIn(ctx context.Context, db *store.DB, base string, conns int) (*client, error) {
	u, err := db.FindUserByEmail(ctx, benchUser)
	if campaign.ErrorCode(err) == campaign.ENOTFOUND {
		u = &campaign.User{Email: benchUser, Name: "Admin Bench", Role: campaign.RoleAdmin}
		err = db.CreateUser(ctx, u, "adminbench-password")
	}
	if err != nil {
		return nil, fmt.Errorf("admin user: %w", err)
	}
	_, token, err := db.CreateUserToken(ctx, u.ID, "adminbench")
	if err != nil {
		return nil, err
	}
	_, session, err := db.CreateSession(ctx, u.ID, 2*time.Hour, "127.0.0.1", "adminbench")
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{MaxIdleConns: conns + 1, MaxIdleConnsPerHost: conns + 1}
	hc := &http.Client{Transport: tr, Timeout: time.Minute,
		// A redirect would be the login page: fail instead of following it.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &client{http: hc, base: base, token: token, cookie: "funnel_session=" + session}, nil
}

// get requests path and returns the body and the time from sending the
// request to reading the last byte. Any status but 200 is an error.
func (c *client) get(ctx context.Context, page bool, path string) ([]byte, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, 0, err
	}
	if page {
		req.Header.Set("Cookie", c.cookie)
	} else {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, 0, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	elapsed := time.Since(start)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s: %.300s", path, resp.Status, body)
	}
	return body, elapsed, err
}

// result is the latency distribution of one endpoint in one mode.
type result struct {
	name, mode    string
	target        int
	p50, p95, p99 float64 // milliseconds
	max           float64
	bytes         int // mean body size
}

// warmup requests are sent before each timed run and not counted.
const warmup = 10

// runEndpoint sends total requests from clients at once and returns their
// distribution.
func runEndpoint(ctx context.Context, cl *client, e endpoint, total, clients int) (result, error) {
	next := e.newClient(clients + 1000) // the warm-up's own client
	var prev []byte
	for range min(warmup, total) {
		var err error
		if prev, _, err = cl.get(ctx, e.page, next(prev)); err != nil {
			return result{}, err
		}
	}
	var (
		mu    sync.Mutex
		times []time.Duration
		bytes int
		errs  []error
		left  = total
		wg    sync.WaitGroup
	)
	take := func() bool {
		mu.Lock()
		defer mu.Unlock()
		left--
		return left >= 0 && len(errs) == 0
	}
	for w := range clients {
		wg.Go(func() {
			next := e.newClient(w)
			var prev []byte
			for take() {
				body, d, err := cl.get(ctx, e.page, next(prev))
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				}
				times, bytes = append(times, d), bytes+len(body)
				mu.Unlock()
				prev = body
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return result{}, errs[0]
	}
	mode := "seq"
	if clients > 1 {
		mode = fmt.Sprintf("c=%d", clients)
	}
	return summarize(e.name, mode, e.target(), times, bytes), nil
}

func summarize(name, mode string, target int, times []time.Duration, bytes int) result {
	slices.Sort(times)
	r := result{name: name, mode: mode, target: target, bytes: bytes / len(times)}
	r.p50, r.p95, r.p99 = ms(percentile(times, 50)), ms(percentile(times, 95)), ms(percentile(times, 99))
	r.max = ms(times[len(times)-1])
	return r
}

// percentile returns the nearest-rank percentile p of sorted times.
func percentile(sorted []time.Duration, p int) time.Duration {
	rank := (p*len(sorted) + 99) / 100 // ceil(p/100 * n)
	return sorted[max(rank, 1)-1]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// measure runs every round and prints each one and the medians.
func measure(ctx context.Context, cl *client, eps []endpoint, cfg config, out io.Writer) error {
	if len(eps) == 0 {
		return errors.New("-only matches no endpoint")
	}
	var rounds [][]result
	for round := 1; round <= cfg.rounds; round++ {
		fmt.Fprintf(out, "\nround %d of %d, load average %s\n", round, cfg.rounds, loadavg())
		var rs []result
		for _, e := range eps {
			n := cfg.n
			if e.page {
				n = cfg.pages
			}
			modes := []int{1}
			if cfg.concurrency > 1 {
				modes = append(modes, cfg.concurrency)
			}
			for _, c := range modes {
				r, err := runEndpoint(ctx, cl, e, n, c)
				if err != nil {
					return fmt.Errorf("%s: %w", e.name, err)
				}
				rs = append(rs, r)
			}
		}
		printTable(out, rs)
		rounds = append(rounds, rs)
	}
	fmt.Fprintf(out, "\nmedian of %d rounds (ms), load average now %s\n", cfg.rounds, loadavg())
	printTable(out, medians(rounds))
	return nil
}

// medians returns, for each result, the median of each figure over rounds.
func medians(rounds [][]result) []result {
	out := slices.Clone(rounds[0])
	med := func(i int, f func(result) float64) float64 {
		var v []float64
		for _, rs := range rounds {
			v = append(v, f(rs[i]))
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	for i := range out {
		out[i].p50 = med(i, func(r result) float64 { return r.p50 })
		out[i].p95 = med(i, func(r result) float64 { return r.p95 })
		out[i].p99 = med(i, func(r result) float64 { return r.p99 })
		out[i].max = med(i, func(r result) float64 { return r.max })
	}
	return out
}

func printTable(out io.Writer, rs []result) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "endpoint\tmode\tp50\tp95\tp99\tmax\ttarget p99\tbytes\t")
	for _, r := range rs {
		miss := ""
		if r.p99 > float64(r.target) {
			miss = " MISS"
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.1f\t%.1f\t%.1f\t%d%s\t%d\t\n", r.name, r.mode, r.p50, r.p95, r.p99, r.max, r.target, miss, r.bytes)
	}
	tw.Flush()
}

// loadavg returns the 1, 5 and 15 minute load averages.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}
