package tracking

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/funnel-email/funnel/campaign"
)

const browserUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type verdict struct {
	Human  bool
	Reason string
}

func judgeOne(t *testing.T, c *Classifier, h Hit, sentAt time.Time, want verdict) {
	t.Helper()
	if h.Time.IsZero() {
		h.Time = t0
	}
	human, reason := c.judgeHit(&h, sentAt)
	if diff := cmp.Diff(want, verdict{human, reason}); diff != "" {
		t.Errorf("verdict (-want +got):\n%s", diff)
	}
}

func TestHeadAndPrefetchRequestsAreMachines(t *testing.T) {
	c := NewClassifier(nil)
	for name, tc := range map[string]struct {
		hit  Hit
		want verdict
	}{
		"HEAD click":           {Hit{Kind: campaign.EventClicked, Link: 1, Flags: FlagHead, UA: browserUA}, verdict{false, ReasonHead}},
		"HEAD open":            {Hit{Kind: campaign.EventOpened, Flags: FlagHead, UA: browserUA}, verdict{false, ReasonHead}},
		"prefetch click":       {Hit{Kind: campaign.EventClicked, Link: 1, Flags: FlagPrefetch, UA: browserUA}, verdict{false, ReasonPrefetch}},
		"plain GET click":      {Hit{Kind: campaign.EventClicked, Link: 1, UA: browserUA}, verdict{true, ReasonHuman}},
		"no user agent":        {Hit{Kind: campaign.EventClicked, Link: 1}, verdict{false, ReasonNoUserAgent}},
		"blank user agent":     {Hit{Kind: campaign.EventOpened, UA: "  "}, verdict{false, ReasonNoUserAgent}},
		"HEAD wins over human": {Hit{Kind: campaign.EventOpened, Flags: FlagHead, UA: "GoogleImageProxy"}, verdict{false, ReasonHead}},
	} {
		t.Run(name, func(t *testing.T) { judgeOne(t, c, tc.hit, time.Time{}, tc.want) })
	}
}

func TestPrefetchHeadersAreDetected(t *testing.T) {
	for name, tc := range map[string]struct {
		key, value string
		want       bool
	}{
		"Purpose":     {"Purpose", "prefetch", true},
		"Sec-Purpose": {"Sec-Purpose", "prefetch;prerender", true},
		"X-Moz":       {"X-Moz", "Prefetch", true},
		"X-Purpose":   {"X-Purpose", "preview", true},
		"other":       {"Purpose", "navigate", false},
	} {
		t.Run(name, func(t *testing.T) {
			hd := map[string][]string{tc.key: {tc.value}}
			if got := isPrefetch(hd); got != tc.want {
				t.Errorf("isPrefetch(%s: %s) = %v, want %v", tc.key, tc.value, got, tc.want)
			}
		})
	}
}

func TestScannersByUserAgentAndNetworkAreMachines(t *testing.T) {
	c := NewClassifier(nil)
	for name, tc := range map[string]struct {
		ua, ip string
		want   verdict
	}{
		"curl":                 {"curl/8.5.0", "198.51.100.7", verdict{false, "scanner:script"}},
		"python-requests":      {"python-requests/2.31", "198.51.100.7", verdict{false, "scanner:script"}},
		"Go-http-client":       {"Go-http-client/1.1", "198.51.100.7", verdict{false, "scanner:script"}},
		"Mimecast UA":          {"Mozilla/5.0 Mimecast URL Protect", "198.51.100.7", verdict{false, "scanner:mimecast"}},
		"Proofpoint UA":        {"Proofpoint URL Defense", "198.51.100.7", verdict{false, "scanner:proofpoint"}},
		"Barracuda UA":         {"Barracuda Sentinel", "198.51.100.7", verdict{false, "scanner:barracuda"}},
		"Safe Links network":   {browserUA, "40.107.22.10", verdict{false, "scanner:safe-links"}},
		"Proofpoint network":   {browserUA, "148.163.150.1", verdict{false, "scanner:proofpoint"}},
		"Mimecast network":     {browserUA, "205.139.110.60", verdict{false, "scanner:mimecast"}},
		"mapped IPv4 network":  {browserUA, "::ffff:40.107.22.10", verdict{false, "scanner:safe-links"}},
		"browser elsewhere":    {browserUA, "198.51.100.7", verdict{true, ReasonHuman}},
		"bad address is human": {browserUA, "not-an-ip", verdict{true, ReasonHuman}},
	} {
		t.Run(name, func(t *testing.T) {
			judgeOne(t, c, Hit{Kind: campaign.EventClicked, Link: 1, UA: tc.ua, IP: tc.ip}, time.Time{}, tc.want)
		})
	}
}

func TestAppleMPPAndImageProxyOpens(t *testing.T) {
	c := NewClassifier(nil)
	for name, tc := range map[string]struct {
		hit  Hit
		want verdict
	}{
		"MPP user agent":           {Hit{Kind: campaign.EventOpened, UA: "Mozilla/5.0", IP: "198.51.100.7"}, verdict{false, "apple-mpp"}},
		"Apple network":            {Hit{Kind: campaign.EventOpened, UA: browserUA, IP: "17.58.1.2"}, verdict{false, "apple-mpp"}},
		"Google image proxy":       {Hit{Kind: campaign.EventOpened, UA: "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)", IP: "66.249.84.1"}, verdict{true, "proxy"}},
		"click from Apple network": {Hit{Kind: campaign.EventClicked, Link: 1, UA: browserUA, IP: "17.58.1.2"}, verdict{true, ReasonHuman}},
		"plain browser open":       {Hit{Kind: campaign.EventOpened, UA: browserUA, IP: "198.51.100.7"}, verdict{true, ReasonHuman}},
	} {
		t.Run(name, func(t *testing.T) { judgeOne(t, c, tc.hit, time.Time{}, tc.want) })
	}
}

func TestClicksSoonAfterTheSMTPAcceptAreMachines(t *testing.T) {
	c := NewClassifier(nil) // click_min_delay 5s
	for name, tc := range map[string]struct {
		after  time.Duration
		sentAt bool
		want   verdict
	}{
		"1s after":        {time.Second, true, verdict{false, ReasonTooSoon}},
		"4.9s after":      {4900 * time.Millisecond, true, verdict{false, ReasonTooSoon}},
		"5s after":        {5 * time.Second, true, verdict{true, ReasonHuman}},
		"an hour after":   {time.Hour, true, verdict{true, ReasonHuman}},
		"sent_at unknown": {time.Second, false, verdict{true, ReasonHuman}},
	} {
		t.Run(name, func(t *testing.T) {
			var sent time.Time
			if tc.sentAt {
				sent = t0
			}
			judgeOne(t, c, Hit{Kind: campaign.EventClicked, Link: 1, UA: browserUA, Time: t0.Add(tc.after)}, sent, tc.want)
		})
	}
}

func TestUnsubscribesAreHumanWithTheirPath(t *testing.T) {
	c := NewClassifier(nil)
	for name, tc := range map[string]struct {
		flags HitFlags
		want  verdict
	}{
		"one-click":         {FlagOneClick | FlagChanged, verdict{true, ReasonOneClick}},
		"page":              {FlagChanged, verdict{true, ReasonPage}},
		"one-click, repeat": {FlagOneClick, verdict{true, ReasonOneClick + "," + ReasonAlreadyUnsubbed}},
	} {
		t.Run(name, func(t *testing.T) {
			judgeOne(t, c, Hit{Kind: campaign.EventUnsubscribed, Flags: tc.flags, UA: "curl/8"}, time.Time{}, tc.want)
		})
	}
}

// timeline builds a delivery's timeline from (kind, seconds, link) with
// every event human unless its link is "hp" (the honeypot).
func timeline(items ...any) []*judged {
	var tl []*judged
	for i := 0; i < len(items); i += 3 {
		j := &judged{kind: items[i].(campaign.EventKind), at: t0.Add(time.Duration(items[i+1].(float64) * float64(time.Second))), link: items[i+2].(string), human: true, reason: ReasonHuman}
		if j.link == "hp" {
			j.honeypot, j.human, j.reason, j.link = true, false, ReasonHoneypot, ""
		}
		tl = append(tl, j)
	}
	return tl
}

func verdicts(tl []*judged) []verdict {
	out := make([]verdict, len(tl))
	for i, j := range tl {
		out[i] = verdict{j.human, j.reason}
	}
	return out
}

const click, open = campaign.EventClicked, campaign.EventOpened

func TestHoneypotClickMakesClicksWithinTenSecondsMachines(t *testing.T) {
	c := NewClassifier(nil)
	human, hp, win := verdict{true, ReasonHuman}, verdict{false, ReasonHoneypot}, verdict{false, ReasonHoneypotWindow}
	for name, tc := range map[string]struct {
		tl   []*judged
		want []verdict
	}{
		"click 3s before":      {timeline(click, 0.0, "a", click, 3.0, "hp"), []verdict{win, hp}},
		"click 9s after":       {timeline(click, 0.0, "hp", click, 9.0, "a"), []verdict{hp, win}},
		"click 11s after":      {timeline(click, 0.0, "hp", click, 11.0, "a"), []verdict{hp, human}},
		"click 30s before":     {timeline(click, 0.0, "a", click, 30.0, "hp"), []verdict{human, hp}},
		"opens are untouched":  {timeline(open, 0.0, "", click, 1.0, "hp"), []verdict{human, hp}},
		"no honeypot, no harm": {timeline(click, 0.0, "a", click, 1.0, "b"), []verdict{human, human}},
	} {
		t.Run(name, func(t *testing.T) {
			c.judgeClicks(tc.tl)
			if diff := cmp.Diff(tc.want, verdicts(tc.tl)); diff != "" {
				t.Errorf("verdicts (-want +got):\n%s", diff)
			}
		})
	}
}

func TestThreeLinksWithinTwoSecondsAreMachines(t *testing.T) {
	c := NewClassifier(nil)
	human, burst := verdict{true, ReasonHuman}, verdict{false, ReasonBurst}
	for name, tc := range map[string]struct {
		tl   []*judged
		want []verdict
	}{
		"three links in 1s":          {timeline(click, 0.0, "a", click, 0.5, "b", click, 1.0, "c"), []verdict{burst, burst, burst}},
		"three links in 2s":          {timeline(click, 0.0, "a", click, 1.0, "b", click, 2.0, "c"), []verdict{burst, burst, burst}},
		"three links in 3s":          {timeline(click, 0.0, "a", click, 1.5, "b", click, 3.0, "c"), []verdict{human, human, human}},
		"one link three times":       {timeline(click, 0.0, "a", click, 0.5, "a", click, 1.0, "a"), []verdict{human, human, human}},
		"two links":                  {timeline(click, 0.0, "a", click, 0.5, "b"), []verdict{human, human}},
		"burst later in the message": {timeline(click, 0.0, "a", click, 60.0, "a", click, 60.5, "b", click, 61.0, "c"), []verdict{human, burst, burst, burst}},
	} {
		t.Run(name, func(t *testing.T) {
			c.judgeClicks(tc.tl)
			if diff := cmp.Diff(tc.want, verdicts(tc.tl)); diff != "" {
				t.Errorf("verdicts (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHumanClickConfirmsTheMachineOpenBeforeIt(t *testing.T) {
	c := NewClassifier(nil)
	mpp := func(tl []*judged, i int, stored bool) []*judged {
		tl[i].human, tl[i].reason = false, "apple-mpp"
		if stored {
			tl[i].id = 7
		}
		return tl
	}
	confirmed := verdict{true, ReasonConfirmed + " (was apple-mpp)"}
	human := verdict{true, ReasonHuman}
	for name, tc := range map[string]struct {
		tl        []*judged
		older     olderOpens
		want      []verdict
		wantOlder int64
	}{
		"machine open then click": {mpp(timeline(open, 0.0, "", click, 60.0, "a"), 0, true), olderOpens{}, []verdict{confirmed, human}, 0},
		"human open already":      {mpp(timeline(open, 0.0, "", open, 10.0, "", click, 60.0, "a"), 0, true), olderOpens{}, []verdict{{false, "apple-mpp"}, human, human}, 0},
		"open after the click":    {mpp(timeline(click, 0.0, "a", open, 60.0, ""), 1, false), olderOpens{}, []verdict{human, {false, "apple-mpp"}}, 0},
		"older open confirmed":    {timeline(click, 0.0, "a"), olderOpens{machineID: 42}, []verdict{human}, 42},
		"older human open":        {timeline(click, 0.0, "a"), olderOpens{human: true, machineID: 42}, []verdict{human}, 0},
		"machine click confirms nothing": {func() []*judged {
			tl := mpp(timeline(open, 0.0, "", click, 60.0, "a"), 0, true)
			tl[1].human, tl[1].reason = false, ReasonHead
			return tl
		}(), olderOpens{machineID: 42}, []verdict{{false, "apple-mpp"}, {false, ReasonHead}}, 0},
	} {
		t.Run(name, func(t *testing.T) {
			got := c.confirmOpens(tc.tl, tc.older)
			if diff := cmp.Diff(tc.want, verdicts(tc.tl)); diff != "" {
				t.Errorf("verdicts (-want +got):\n%s", diff)
			}
			if got != tc.wantOlder {
				t.Errorf("confirmed older open %d, want %d", got, tc.wantOlder)
			}
		})
	}
}

func TestRulesFileReplacesTheBuiltInLists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.json")
	err := os.WriteFile(path, []byte(`{"click_min_delay": "1m", "burst_links": 0,
		"scanners": [{"name": "acme-gateway", "user_agents": ["AcmeScan"], "networks": ["203.0.113.0/24"]}]}`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	rules, err := LoadRules(path)
	if err != nil {
		t.Fatal(err)
	}
	c := NewClassifier(rules)
	judgeOne(t, c, Hit{Kind: campaign.EventClicked, Link: 1, UA: "AcmeScan/2"}, time.Time{}, verdict{false, "scanner:acme-gateway"})
	judgeOne(t, c, Hit{Kind: campaign.EventClicked, Link: 1, UA: browserUA, IP: "203.0.113.9"}, time.Time{}, verdict{false, "scanner:acme-gateway"})
	judgeOne(t, c, Hit{Kind: campaign.EventClicked, Link: 1, UA: "curl/8"}, time.Time{}, verdict{true, ReasonHuman})
	judgeOne(t, c, Hit{Kind: campaign.EventClicked, Link: 1, UA: browserUA, Time: t0.Add(30 * time.Second)}, t0, verdict{false, ReasonTooSoon})

	for name, bad := range map[string]string{
		"not JSON":      `{`,
		"bad duration":  `{"click_min_delay": "soon"}`,
		"bad network":   `{"scanners": [{"name": "x", "networks": ["10.0.0.0/33"]}]}`,
		"unnamed entry": `{"scanners": [{"user_agents": ["x"]}]}`,
	} {
		if _, err := ParseRules([]byte(bad)); err == nil {
			t.Errorf("%s: ParseRules accepted %s", name, bad)
		}
	}
}

func TestIPPrivacyModes(t *testing.T) {
	for name, tc := range map[string]struct {
		mode   IPMode
		in     string
		want   string
		hashed bool
	}{
		"truncate v4":  {IPTruncate, "203.0.113.77", "203.0.113.0/24", false},
		"truncate v6":  {IPTruncate, "2001:db8:abcd:12::1", "2001:db8:abcd::/48", false},
		"truncate map": {IPTruncate, "::ffff:203.0.113.77", "203.0.113.0/24", false},
		"full":         {IPFull, "203.0.113.77", "203.0.113.77", false},
		"none":         {IPNone, "203.0.113.77", "", false},
		"garbage":      {IPTruncate, "x", "", false},
		"hash":         {IPHash, "203.0.113.77", "", true},
	} {
		t.Run(name, func(t *testing.T) {
			p := ipPolicy{mode: tc.mode, key: []byte("k")}
			got := p.apply(tc.in)
			if tc.hashed {
				if got == "" || got == tc.in || got != p.apply(tc.in) || got == p.apply("203.0.113.78") {
					t.Errorf("hash %q: want a stable hash that differs per address", got)
				}
				return
			}
			if got != tc.want {
				t.Errorf("apply(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
	if _, err := ParseIPMode("partial"); err == nil {
		t.Error("ParseIPMode accepted partial")
	}
}

func TestHitEncodingRoundTripsAndRejectsGarbage(t *testing.T) {
	h := Hit{ID: newHitIDs().next(), Kind: campaign.EventClicked, Delivery: 1 << 40, Link: 3, URL: "https://example.com/a?b=c",
		Time: t0.Add(123456 * time.Microsecond), Flags: FlagHead | FlagPrefetch, IP: "2001:db8::1", UA: browserUA}
	b, err := h.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	var got Hit
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(h, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	for i := range len(b) {
		if err := new(Hit).UnmarshalBinary(b[:i]); err == nil {
			t.Errorf("truncated to %d bytes: decoded", i)
		}
	}
	if err := new(Hit).UnmarshalBinary(append(b, 0)); err == nil {
		t.Error("trailing byte: decoded")
	}
}

func FuzzHitDecode(f *testing.F) {
	h := Hit{Kind: campaign.EventOpened, Delivery: 5, Time: t0, UA: "x"}
	b, _ := h.AppendBinary(nil)
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		var h Hit
		if h.UnmarshalBinary(b) != nil {
			return
		}
		again, err := h.AppendBinary(nil)
		if err != nil {
			t.Fatalf("decoded hit does not encode: %v", err)
		}
		var h2 Hit
		if err := h2.UnmarshalBinary(again); err != nil || !cmp.Equal(h, h2) {
			t.Fatalf("re-encoding changed the hit: %v", err)
		}
	})
}
