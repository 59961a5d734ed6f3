package tracking_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
	"github.com/funnel-email/funnel/store/storetest"
	"github.com/funnel-email/funnel/templates"
	"github.com/funnel-email/funnel/token"
	"github.com/funnel-email/funnel/tracking"
	"github.com/funnel-email/funnel/worker"
)

// publicURL is where the fixture's rendered messages point.
const publicURL = "https://t.example.test"

const browserUA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"

// fixture is a tracking server over a real database and Redis, with a
// campaign of two contacts whose messages link to two URLs.
type fixture struct {
	db       *store.DB
	codec    *token.Codec
	queue    *tracking.Queue
	writer   *worker.EventWriter
	srv      *httptest.Server
	campaign int64
	contacts []int64
	delivery []int64 // delivery[i] belongs to contacts[i]
}

var links = []templates.Link{{Index: 1, URL: "https://example.com/pricing", Intent: "pricing"}, {Index: 2, URL: "https://example.com/blog?a=1&b=2"}}

// setup builds the fixture. redisURL "" means the test Redis; sentAgo is
// how long before now the deliveries were accepted.
func setup(t *testing.T, db *store.DB, redisURL string, sentAgo time.Duration) *fixture {
	t.Helper()
	ctx := context.Background()
	if redisURL == "" {
		redisURL = storetest.RedisURL(t)
	}
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	opt.MaxRetries = -1
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	var b [6]byte
	_, _ = rand.Read(b[:])
	key := "funnel:test:tracking:" + hex.EncodeToString(b[:])
	t.Cleanup(func() { rdb.Del(context.Background(), key, key+":lock") })

	codec, err := token.NewCodec([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{db: db, codec: codec}
	rec := tracking.NewRecorder(tracking.RecorderConfig{DB: db, IPMode: tracking.IPFull})
	f.queue = tracking.NewQueue(tracking.QueueConfig{Redis: rdb, Key: key, Timeout: 300 * time.Millisecond,
		Fallback: func(ctx context.Context, hits []tracking.Hit) error { _, err := rec.Record(ctx, hits); return err }})
	f.writer = &worker.EventWriter{Queue: f.queue, Recorder: rec}
	dbLinks := store.NewLinks(db)
	h := tracking.New(tracking.Config{Codec: codec, DB: db, Links: dbLinks, Queue: f.queue,
		Templates: templates.Options{PublicURL: publicURL, Codec: codec}})
	f.srv = httptest.NewServer(h)
	t.Cleanup(func() { f.srv.Close(); h.Close(); f.queue.Close() })

	tpl := &campaign.Template{Name: "t", Subject: "Hi", HTML: "<p>Hello</p>"}
	if err := db.CreateTemplate(ctx, tpl); err != nil {
		t.Fatal(err)
	}
	seg := &campaign.Segment{Name: "all", Rule: &campaign.Rule{Field: "email", Op: campaign.OpContains, Value: "@"}}
	if err := db.CreateSegment(ctx, seg); err != nil {
		t.Fatal(err)
	}
	c := &campaign.Campaign{Name: "Launch", TemplateID: tpl.ID, SegmentIDs: []int64{seg.ID}, FromEmail: "news@acme.example"}
	if err := db.CreateCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}
	f.campaign = c.ID
	recorder := worker.NewLinkRecorder(dbLinks)
	sent := time.Now().Add(-sentAgo).UTC()
	for i := range 2 {
		ct := &campaign.Contact{Email: fmt.Sprintf("c%d@example.com", i)}
		if err := db.CreateContact(ctx, ct); err != nil {
			t.Fatal(err)
		}
		var id int64
		err := db.QueryRowxContext(ctx, db.Rebind(`INSERT INTO deliveries (campaign_id, contact_id, status, sent_at, created_at, updated_at)
			VALUES (?, ?, 'sent', ?, ?, ?) RETURNING id`), c.ID, ct.ID, sent, sent, sent).Scan(&id)
		if err != nil {
			t.Fatal(err)
		}
		if err := recorder.Record(ctx, c.ID, id, links); err != nil {
			t.Fatal(err)
		}
		f.contacts, f.delivery = append(f.contacts, ct.ID), append(f.delivery, id)
	}
	return f
}

func (f *fixture) url(path string, t token.Token) string { return f.srv.URL + path + f.codec.Encode(t) }

func (f *fixture) clickURL(d int64, link int) string {
	return f.url(templates.PathClick, token.Token{Kind: token.Click, Delivery: d, Link: link})
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func do(t *testing.T, method, u, ua string, body io.Reader, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if ua != "" {
		req.Header.Set("User-Agent", ua)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

// drain writes every queued hit.
func (f *fixture) drain(t *testing.T) {
	t.Helper()
	for {
		n, err := f.writer.Drain(context.Background(), 500)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

type row struct {
	Kind   campaign.EventKind
	Link   string
	Human  bool
	Reason string
}

func (f *fixture) events(t *testing.T, contact int64) []row {
	t.Helper()
	evs, err := f.db.ContactEvents(context.Background(), contact)
	if err != nil {
		t.Fatal(err)
	}
	var out []row
	for _, e := range evs {
		out = append(out, row{e.Kind, e.Link, e.Human, e.Reason})
	}
	return out
}

func (f *fixture) count(t *testing.T) int {
	t.Helper()
	var n int
	if err := f.db.GetContext(context.Background(), &n, `SELECT COUNT(*) FROM events`); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestClickRedirectsToTheRecordedLinkAndIsRecorded(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db, "", time.Hour)
		res := do(t, "GET", f.clickURL(f.delivery[0], 2), browserUA, nil)
		if res.StatusCode != http.StatusFound || res.Header.Get("Location") != links[1].URL {
			t.Fatalf("click: %d to %q, want 302 to %q", res.StatusCode, res.Header.Get("Location"), links[1].URL)
		}
		res = do(t, "GET", f.url(templates.PathOpen, token.Token{Kind: token.Open, Delivery: f.delivery[0]}), browserUA, nil)
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "image/gif" || !strings.Contains(res.Header.Get("Cache-Control"), "no-store") {
			t.Fatalf("open: %d %v", res.StatusCode, res.Header)
		}
		f.drain(t)
		want := []row{{campaign.EventClicked, links[1].URL, true, "human"}, {campaign.EventOpened, "", true, "human"}}
		if diff := cmp.Diff(want, f.events(t, f.contacts[0])); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		evs, _ := db.ContactEvents(context.Background(), f.contacts[0])
		if e := evs[0]; e.DeliveryID != f.delivery[0] || e.CampaignID != f.campaign || e.IP != "127.0.0.1" || e.UserAgent != browserUA {
			t.Errorf("event fields: %+v", e)
		}
	})
}

func TestAnyChangedByteOfATokenGets404(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db, "", time.Hour)
		for _, tc := range []struct {
			path string
			tok  token.Token
		}{
			{templates.PathOpen, token.Token{Kind: token.Open, Delivery: f.delivery[0]}},
			{templates.PathClick, token.Token{Kind: token.Click, Delivery: f.delivery[0], Link: 1}},
			{templates.PathUnsubscribe, token.Token{Kind: token.Unsubscribe, Delivery: f.delivery[0]}},
		} {
			s := f.codec.Encode(tc.tok)
			alphabet := "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
			for i := range len(s) {
				for _, c := range []byte{alphabet[(strings.IndexByte(alphabet, s[i])+1)%64], alphabet[(strings.IndexByte(alphabet, s[i])+33)%64]} {
					edited := s[:i] + string(c) + s[i+1:]
					if res := do(t, "GET", f.srv.URL+tc.path+edited, browserUA, nil); res.StatusCode != http.StatusNotFound || res.Header.Get("Location") != "" {
						t.Fatalf("%s with byte %d changed: %d (Location %q)", tc.path, i, res.StatusCode, res.Header.Get("Location"))
					}
				}
			}
			// Truncated, extended and wrong-kind tokens.
			for _, bad := range []string{s[:len(s)-1], s + "A", s[1:], ""} {
				if res := do(t, "GET", f.srv.URL+tc.path+bad, browserUA, nil); res.StatusCode != http.StatusNotFound {
					t.Fatalf("%s%s: %d, want 404", tc.path, bad, res.StatusCode)
				}
			}
		}
		wrongKind := f.url(templates.PathClick, token.Token{Kind: token.Open, Delivery: f.delivery[0]})
		if res := do(t, "GET", wrongKind, browserUA, nil); res.StatusCode != http.StatusNotFound {
			t.Fatalf("open token on the click path: %d", res.StatusCode)
		}
		f.drain(t)
		if n := f.count(t); n != 0 {
			t.Errorf("%d events recorded from bad tokens", n)
		}
	})
}

func TestNoOpenRedirect(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db, "", time.Hour)
		ctx := context.Background()
		// A delivery whose own list holds a javascript: URL (written behind
		// the recorder's back) is never redirected to it.
		if err := store.NewLinks(db).RecordDelivery(ctx, f.delivery[1], []store.Link{{Index: 1, URL: "javascript:alert(1)"}, {Index: 2, URL: "//evil.example/x"}}); err != nil {
			t.Fatal(err)
		}
		for name, u := range map[string]string{
			"link index never recorded": f.clickURL(f.delivery[0], 3),
			"huge link index":           f.clickURL(f.delivery[0], 1<<30),
			"unknown delivery":          f.clickURL(f.delivery[1]+1000, 1),
			"javascript: link":          f.clickURL(f.delivery[1], 1),
			"scheme-relative link":      f.clickURL(f.delivery[1], 2),
			"URL in the path":           f.srv.URL + "/t/c/https://evil.example/",
			"URL in the query":          f.clickURL(f.delivery[0], 3) + "?url=https://evil.example/",
		} {
			res := do(t, "GET", u, browserUA, nil)
			if res.StatusCode != http.StatusNotFound || res.Header.Get("Location") != "" {
				t.Errorf("%s: %d, Location %q; want 404 without Location", name, res.StatusCode, res.Header.Get("Location"))
			}
		}
	})
}

func TestOneClickUnsubscribeSuppressesAtOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db, "", time.Hour)
		ctx := context.Background()
		u := f.url(templates.PathUnsubscribe, token.Token{Kind: token.Unsubscribe, Delivery: f.delivery[0]})
		status := func(i int) campaign.ContactStatus {
			c, err := db.FindContact(ctx, f.contacts[i])
			if err != nil {
				t.Fatal(err)
			}
			return c.Status
		}
		// A GET (what scanners do) changes nothing.
		if res := do(t, "GET", u, "curl/8", nil); res.StatusCode != 200 || status(0) != campaign.ContactActive {
			t.Fatalf("GET: %d, status %s", res.StatusCode, status(0))
		}
		res := do(t, "POST", u, "", strings.NewReader("List-Unsubscribe=One-Click"), "Content-Type", "application/x-www-form-urlencoded")
		if res.StatusCode != 200 || res.Header.Get("Location") != "" || res.Header.Get("Set-Cookie") != "" {
			t.Fatalf("one-click POST: %d %v", res.StatusCode, res.Header)
		}
		// Before any event is written: the contact is already out.
		if got := status(0); got != campaign.ContactUnsubscribed {
			t.Fatalf("after one-click: status %s", got)
		}
		// The page's button, for the other contact.
		u1 := f.url(templates.PathUnsubscribe, token.Token{Kind: token.Unsubscribe, Delivery: f.delivery[1]})
		if res := do(t, "POST", u1, browserUA, strings.NewReader("confirm=yes"), "Content-Type", "application/x-www-form-urlencoded"); res.StatusCode != 200 || status(1) != campaign.ContactUnsubscribed {
			t.Fatalf("page POST: %d, status %s", res.StatusCode, status(1))
		}
		// A POST with neither is refused.
		if res := do(t, "POST", u, "", strings.NewReader("x=y"), "Content-Type", "application/x-www-form-urlencoded"); res.StatusCode != http.StatusBadRequest {
			t.Fatalf("empty POST: %d", res.StatusCode)
		}
		f.drain(t)
		if diff := cmp.Diff([]row{{campaign.EventUnsubscribed, "", true, "one-click"}}, f.events(t, f.contacts[0])); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]row{{campaign.EventUnsubscribed, "", true, "page"}}, f.events(t, f.contacts[1])); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})
}

func TestHeadClickRedirectsButIsNotHuman(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db, "", time.Hour)
		res := do(t, "HEAD", f.clickURL(f.delivery[0], 1), browserUA, nil)
		if res.StatusCode != http.StatusFound {
			t.Fatalf("HEAD: %d", res.StatusCode)
		}
		do(t, "GET", f.clickURL(f.delivery[1], 1), browserUA, nil, "Sec-Purpose", "prefetch")
		f.drain(t)
		if diff := cmp.Diff([]row{{campaign.EventClicked, links[0].URL, false, "head"}}, f.events(t, f.contacts[0])); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]row{{campaign.EventClicked, links[0].URL, false, "prefetch"}}, f.events(t, f.contacts[1])); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})
}

func TestPreviewTokensRecordNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db, "", time.Hour)
		for _, tc := range []struct {
			method, path string
			tok          token.Token
			body         string
			want         int
		}{
			{"GET", templates.PathOpen, token.Token{Kind: token.Open}, "", 200},
			{"GET", templates.PathClick, token.Token{Kind: token.Click, Link: 1}, "", 200},
			{"GET", templates.PathUnsubscribe, token.Token{Kind: token.Unsubscribe}, "", 200},
			{"POST", templates.PathUnsubscribe, token.Token{Kind: token.Unsubscribe}, "List-Unsubscribe=One-Click", 200},
		} {
			res := do(t, tc.method, f.url(tc.path, tc.tok), browserUA, strings.NewReader(tc.body), "Content-Type", "application/x-www-form-urlencoded")
			if res.StatusCode != tc.want || res.Header.Get("Location") != "" {
				t.Errorf("preview %s %s: %d (Location %q)", tc.method, tc.path, res.StatusCode, res.Header.Get("Location"))
			}
		}
		if n, _ := f.queue.Len(context.Background()); n != 0 {
			t.Errorf("%d hits queued for previews", n)
		}
		f.drain(t)
		if n := f.count(t); n != 0 {
			t.Errorf("%d events recorded for previews", n)
		}
	})
}

func TestRedisDownEventsAreWrittenDirectly(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		// Nothing listens on port 1.
		f := setup(t, db, "redis://127.0.0.1:1/0", time.Hour)
		res := do(t, "GET", f.clickURL(f.delivery[0], 1), browserUA, nil)
		if res.StatusCode != http.StatusFound {
			t.Fatalf("click with Redis down: %d", res.StatusCode)
		}
		do(t, "GET", f.url(templates.PathOpen, token.Token{Kind: token.Open, Delivery: f.delivery[0]}), browserUA, nil)
		// No drain: the events are in the database when the answers come.
		want := []row{{campaign.EventClicked, links[0].URL, true, "human"}, {campaign.EventOpened, "", true, "human"}}
		if diff := cmp.Diff(want, f.events(t, f.contacts[0])); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})
}

func TestEveryAnsweredRequestIsExactlyOneEventUnderLoad(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db, "", time.Hour)
		urls := []string{
			f.clickURL(f.delivery[0], 1), f.clickURL(f.delivery[1], 2),
			f.url(templates.PathOpen, token.Token{Kind: token.Open, Delivery: f.delivery[0]}),
			f.url(templates.PathOpen, token.Token{Kind: token.Open, Delivery: f.delivery[1]}),
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); f.writer.Run(ctx) }() // writes while requests come in
		var answered atomic.Int64
		var wg sync.WaitGroup
		for g := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 100 {
					res, err := noRedirect.Get(urls[(g+i)%len(urls)])
					if err != nil {
						t.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode == 200 || res.StatusCode == 302 {
						answered.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		cancel()
		<-done
		f.drain(t)
		// Replaying a batch that was already written adds nothing.
		if got := f.count(t); int64(got) != answered.Load() || got != 1600 {
			t.Fatalf("%d events for %d answered requests", got, answered.Load())
		}
	})
}

func TestReplayedHitsAreNotWrittenTwice(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db, "", time.Hour)
		for range 3 {
			do(t, "GET", f.clickURL(f.delivery[0], 1), browserUA, nil)
		}
		ctx := context.Background()
		hits, raw, err := f.queue.Peek(ctx, 10)
		if err != nil || len(raw) != 3 {
			t.Fatalf("peek: %d hits, %v", len(raw), err)
		}
		rec := tracking.NewRecorder(tracking.RecorderConfig{DB: db})
		var plain []tracking.Hit
		for _, h := range hits {
			plain = append(plain, *h)
		}
		// Written, then the writer dies before the acknowledgement: the
		// next writer reads the same batch.
		if _, err := rec.Record(ctx, plain); err != nil {
			t.Fatal(err)
		}
		res, err := rec.Record(ctx, plain)
		if err != nil || res.Inserted != 0 || res.Replayed != 3 {
			t.Fatalf("replay: %+v, %v", res, err)
		}
		f.drain(t)
		if n := f.count(t); n != 3 {
			t.Errorf("%d events, want 3", n)
		}
	})
}

func TestVerdictsChangeByUpdatingTheEarlierRow(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db, "", time.Hour)
		// An Apple MPP open, written in its own batch...
		do(t, "GET", f.url(templates.PathOpen, token.Token{Kind: token.Open, Delivery: f.delivery[0]}), "Mozilla/5.0", nil)
		f.drain(t)
		// ...then a human click confirms it, in a later batch.
		do(t, "GET", f.clickURL(f.delivery[0], 1), browserUA, nil)
		f.drain(t)
		// A click, then the honeypot 2 s later, for the other contact.
		do(t, "GET", f.clickURL(f.delivery[1], 1), browserUA, nil)
		f.drain(t)
		do(t, "GET", f.clickURL(f.delivery[1], token.HoneypotLink), browserUA, nil)
		f.drain(t)
		want0 := []row{{campaign.EventOpened, "", true, "confirmed-by-click (was apple-mpp)"}, {campaign.EventClicked, links[0].URL, true, "human"}}
		if diff := cmp.Diff(want0, f.events(t, f.contacts[0])); diff != "" {
			t.Errorf("contact 0 (-want +got):\n%s", diff)
		}
		want1 := []row{{campaign.EventClicked, links[0].URL, false, "honeypot-window"}, {campaign.EventClicked, "", false, "honeypot"}}
		if diff := cmp.Diff(want1, f.events(t, f.contacts[1])); diff != "" {
			t.Errorf("contact 1 (-want +got):\n%s", diff)
		}
		if n := f.count(t); n != 4 {
			t.Errorf("%d rows, want 4: verdict changes must not add rows", n)
		}
	})
}

func TestClickRightAfterSendingIsMachine(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db, "", 0) // accepted just now
		do(t, "GET", f.clickURL(f.delivery[0], 1), browserUA, nil)
		f.drain(t)
		if diff := cmp.Diff([]row{{campaign.EventClicked, links[0].URL, false, "too-soon"}}, f.events(t, f.contacts[0])); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})
}

func TestBadInputGets4xxNever500(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db, "", time.Hour)
		open := f.url(templates.PathOpen, token.Token{Kind: token.Open, Delivery: f.delivery[0]})
		unsub := f.url(templates.PathUnsubscribe, token.Token{Kind: token.Unsubscribe, Delivery: f.delivery[0]})
		long := strings.Repeat("A", 100<<10)
		for name, tc := range map[string]struct {
			method, u, ua, body string
			hdr                 []string
			ok                  bool // 2xx allowed (the request is valid)
		}{
			"malformed token":          {"GET", f.srv.URL + "/t/o/%00%ff", browserUA, "", nil, false},
			"dots":                     {"GET", f.srv.URL + "/t/c/..%2f..%2f", browserUA, "", nil, false},
			"long token":               {"GET", f.srv.URL + "/t/c/" + long, browserUA, "", nil, false},
			"no token":                 {"GET", f.srv.URL + "/t/c/", browserUA, "", nil, false},
			"unknown path":             {"GET", f.srv.URL + "/t/x/abc", browserUA, "", nil, false},
			"PUT":                      {"PUT", open, browserUA, "", nil, false},
			"oversized header":         {"GET", open, browserUA, "", []string{"X-Big", strings.Repeat("b", 2<<20)}, false},
			"huge user agent":          {"GET", open, strings.Repeat("u", 64<<10), "", nil, true},
			"binary user agent":        {"GET", open, "\xff\xfe bot", "", nil, true},
			"odd prefetch header":      {"GET", open, browserUA, "", []string{"Sec-Purpose", "PREFETCH ;;; = \"\t"}, true},
			"bad forwarded-for":        {"GET", open, browserUA, "", []string{"X-Forwarded-For", "nonsense, , 999.1.1.1"}, true},
			"oversized unsubscribe":    {"POST", unsub, browserUA, "List-Unsubscribe=One-Click&x=" + long, []string{"Content-Type", "application/x-www-form-urlencoded"}, false},
			"bad multipart":            {"POST", unsub, browserUA, "--x\r\n", []string{"Content-Type", "multipart/form-data; boundary=x"}, false},
			"unsubscribe without body": {"POST", unsub, browserUA, "", nil, false},
		} {
			t.Run(name, func(t *testing.T) {
				req, err := http.NewRequest(tc.method, tc.u, strings.NewReader(tc.body))
				if err != nil {
					// Some inputs cannot even be sent; try them raw.
					req = &http.Request{Method: tc.method, URL: &url.URL{Scheme: "http", Host: strings.TrimPrefix(f.srv.URL, "http://"), Opaque: tc.u}, Header: http.Header{}}
				}
				req.Header.Set("User-Agent", tc.ua)
				for i := 0; i+1 < len(tc.hdr); i += 2 {
					req.Header.Set(tc.hdr[i], tc.hdr[i+1])
				}
				res, err := noRedirect.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				if res.StatusCode >= 500 || (!tc.ok && res.StatusCode < 400) {
					t.Errorf("%s: %d", name, res.StatusCode)
				}
			})
		}
		f.drain(t)
		for _, e := range f.events(t, f.contacts[0]) {
			if e.Kind != campaign.EventOpened {
				t.Errorf("unexpected event %+v", e)
			}
		}
	})
}
