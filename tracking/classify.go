package tracking

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/token"
)

//go:embed classifier.json
var defaultRules []byte

// Reasons given with verdicts. Scanner verdicts name the list entry that
// matched: "scanner:mimecast".
const (
	ReasonHuman           = "human"                // no machine signal
	ReasonHead            = "head"                 // a HEAD request
	ReasonPrefetch        = "prefetch"             // a browser or client prefetch
	ReasonNoUserAgent     = "no-user-agent"        // no User-Agent at all
	ReasonScanner         = "scanner:"             // + the scanner's name
	ReasonHoneypot        = "honeypot"             // the hidden link only machines follow
	ReasonHoneypotWindow  = "honeypot-window"      // a click near a honeypot click of the same delivery
	ReasonTooSoon         = "too-soon"             // clicked within ClickMinDelay of the SMTP accept
	ReasonBurst           = "burst"                // BurstLinks links of one message within BurstWindow
	ReasonConfirmed       = "confirmed-by-click"   // a machine open followed by a human click
	ReasonOneClick        = "one-click"            // RFC 8058 unsubscribe POST
	ReasonPage            = "page"                 // the unsubscribe page's button
	ReasonAlreadyUnsubbed = "already-unsubscribed" // suffix when nothing changed
)

// Rules is the classifier's data: timing limits and the lists of proxies
// and scanners. The built-in rules (classifier.json) can be replaced by a
// file in the same format (FUNNEL_CLASSIFIER_FILE) without a new build.
type Rules struct {
	// ClickMinDelay: a click sooner than this after the SMTP server
	// accepted the message is a machine's (security gateways scan links
	// during delivery; no reader is that fast).
	ClickMinDelay Duration `json:"click_min_delay"`
	// HoneypotWindow: clicks of a delivery this close to one of its
	// honeypot clicks are the same machine's.
	HoneypotWindow Duration `json:"honeypot_window"`
	// BurstLinks distinct links of one message clicked within BurstWindow
	// are a machine's.
	BurstWindow Duration `json:"burst_window"`
	BurstLinks  int      `json:"burst_links"`
	// OpenProxies judge opens fetched through image proxies; the name is
	// the reason ("apple-mpp", "proxy").
	OpenProxies []Matcher `json:"open_proxies"`
	// Scanners are machines for opens and clicks alike.
	Scanners []Matcher `json:"scanners"`
}

// Matcher matches requests by User-Agent or network.
type Matcher struct {
	Name  string `json:"name"`
	Human bool   `json:"human"` // open proxies only: the verdict on a match
	// UserAgents match case-insensitively anywhere in the User-Agent;
	// UserAgentsExact match the whole User-Agent exactly.
	UserAgents      []string       `json:"user_agents"`
	UserAgentsExact []string       `json:"user_agents_exact"`
	Networks        []netip.Prefix `json:"networks"`
}

// Duration is a time.Duration written as "5s" in JSON.
type Duration time.Duration

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// DefaultRules returns the built-in rules.
func DefaultRules() *Rules {
	r, err := ParseRules(defaultRules)
	if err != nil {
		panic("tracking: built-in classifier.json: " + err.Error())
	}
	return r
}

// LoadRules reads rules from a file in the format of classifier.json; ""
// means the built-in rules.
func LoadRules(path string) (*Rules, error) {
	if path == "" {
		return DefaultRules(), nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseRules(b)
}

// ParseRules parses and checks rules in the format of classifier.json.
func ParseRules(b []byte) (*Rules, error) {
	var r Rules
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("classifier rules: %w", err)
	}
	if r.ClickMinDelay < 0 || r.HoneypotWindow < 0 || r.BurstWindow < 0 || r.BurstLinks < 0 {
		return nil, fmt.Errorf("classifier rules: durations and burst_links must not be negative")
	}
	for _, list := range [][]Matcher{r.OpenProxies, r.Scanners} {
		for i := range list {
			m := &list[i]
			if m.Name == "" {
				return nil, fmt.Errorf("classifier rules: every proxy and scanner needs a name")
			}
			for j, p := range m.UserAgents {
				if p == "" {
					return nil, fmt.Errorf("classifier rules: %s: empty user agent pattern", m.Name)
				}
				m.UserAgents[j] = strings.ToLower(p)
			}
		}
	}
	return &r, nil
}

// Classifier judges hits: human or machine, and why. It is safe for
// concurrent use.
type Classifier struct {
	rules *Rules

	mu sync.Mutex
	ua map[string]uaMatch // matchUA's answers for the User-Agents seen lately
}

// uaMatch is the first scanner and the first open proxy of the rules
// whose User-Agent patterns match a User-Agent; the list's length when
// none does.
type uaMatch struct{ scanner, proxy int }

// maxUAMemo bounds Classifier.ua; past it the memo starts over. Readers'
// User-Agents repeat a lot; an attacker's cost no more than this.
const maxUAMemo = 4096

// matchUA returns the matchers of ua, from the memo when it was seen
// lately: matching every pattern of the lists was most of the event
// writer's own CPU time.
func (c *Classifier) matchUA(ua string) uaMatch {
	c.mu.Lock()
	u, ok := c.ua[ua]
	c.mu.Unlock()
	if ok {
		return u
	}
	lower := strings.ToLower(ua)
	u = uaMatch{scanner: firstUA(c.rules.Scanners, lower, ua), proxy: firstUA(c.rules.OpenProxies, lower, ua)}
	c.mu.Lock()
	if c.ua == nil || len(c.ua) >= maxUAMemo {
		c.ua = make(map[string]uaMatch)
	}
	c.ua[ua] = u
	c.mu.Unlock()
	return u
}

func firstUA(list []Matcher, lower, ua string) int {
	for i := range list {
		if list[i].matchUA(lower, ua) {
			return i
		}
	}
	return len(list)
}

func firstIP(list []Matcher, ip netip.Addr) int {
	for i := range list {
		if list[i].matchIP(ip) {
			return i
		}
	}
	return len(list)
}

// NewClassifier returns a classifier over rules (DefaultRules when nil).
func NewClassifier(rules *Rules) *Classifier {
	if rules == nil {
		rules = DefaultRules()
	}
	return &Classifier{rules: rules}
}

// Settle returns the longest time after a click in which a later hit of
// its delivery can still make it a machine click (honeypot-window,
// burst): its verdict is final once that much later hits are recorded.
func (r *Rules) Settle() time.Duration {
	return max(time.Duration(r.HoneypotWindow), time.Duration(r.BurstWindow))
}

// Rules returns the classifier's rules.
func (c *Classifier) Rules() *Rules { return c.rules }

func (m *Matcher) matchUA(lowerUA, ua string) bool {
	if slices.Contains(m.UserAgentsExact, ua) {
		return true
	}
	for _, p := range m.UserAgents {
		if strings.Contains(lowerUA, p) {
			return true
		}
	}
	return false
}

func (m *Matcher) matchIP(ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	for _, p := range m.Networks {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// judgeHit gives the verdict that one request earns on its own: the
// request's method and headers, its User-Agent and network, and for a
// click the time since the SMTP server accepted the message (sentAt, zero
// when unknown).
func (c *Classifier) judgeHit(h *Hit, sentAt time.Time) (bool, string) {
	if h.Kind == campaign.EventUnsubscribed {
		reason := ReasonPage
		if h.Flags&FlagOneClick != 0 {
			reason = ReasonOneClick
		}
		if h.Flags&FlagChanged == 0 {
			reason += "," + ReasonAlreadyUnsubbed
		}
		return true, reason
	}
	if h.Kind == campaign.EventClicked && h.Link == token.HoneypotLink {
		return false, ReasonHoneypot
	}
	switch {
	case h.Flags&FlagHead != 0:
		return false, ReasonHead
	case h.Flags&FlagPrefetch != 0:
		return false, ReasonPrefetch
	case strings.TrimSpace(h.UA) == "":
		return false, ReasonNoUserAgent
	}
	u := c.matchUA(h.UA)
	ip := parseAddr(h.IP)
	if i := min(u.scanner, firstIP(c.rules.Scanners, ip)); i < len(c.rules.Scanners) {
		return false, ReasonScanner + c.rules.Scanners[i].Name
	}
	if h.Kind == campaign.EventOpened {
		if i := min(u.proxy, firstIP(c.rules.OpenProxies, ip)); i < len(c.rules.OpenProxies) {
			m := &c.rules.OpenProxies[i]
			return m.Human, m.Name
		}
	}
	if h.Kind == campaign.EventClicked && !sentAt.IsZero() && h.Time.Sub(sentAt) < time.Duration(c.rules.ClickMinDelay) {
		return false, ReasonTooSoon
	}
	return true, ReasonHuman
}

func parseAddr(s string) netip.Addr {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// judged is one open or click of a delivery on its timeline: stored
// already (id > 0) or new in this batch.
type judged struct {
	id       int64 // the stored event, 0 for a new one
	kind     campaign.EventKind
	at       time.Time
	link     string // the destination URL; "" for the honeypot
	honeypot bool
	human    bool
	reason   string
	changed  bool // a stored event whose verdict this batch changed
}

func (j *judged) setMachine(reason string) {
	if j.human {
		j.human, j.reason, j.changed = false, reason, true
	}
}

// olderOpens summarizes a delivery's opens outside the timeline: whether
// one is human, and the ID of the latest machine open.
type olderOpens struct {
	human     bool
	machineID int64
}

// judgeClicks applies the rules that need a delivery's other clicks to its
// timeline (sorted by time; stored events first among equal times):
// clicks near a honeypot click and clicks of a burst are machine clicks,
// stored ones included.
func (c *Classifier) judgeClicks(tl []*judged) {
	r := c.rules
	var clicks []*judged
	for _, j := range tl {
		if j.kind == campaign.EventClicked {
			clicks = append(clicks, j)
		}
	}
	for _, h := range clicks {
		if !h.honeypot {
			continue
		}
		for _, o := range clicks {
			if d := o.at.Sub(h.at); !o.honeypot && d <= time.Duration(r.HoneypotWindow) && d >= -time.Duration(r.HoneypotWindow) {
				o.setMachine(ReasonHoneypotWindow)
			}
		}
	}
	if r.BurstLinks > 0 {
		for i, first := range clicks {
			links := map[string]bool{}
			end := i
			for k := i; k < len(clicks) && clicks[k].at.Sub(first.at) <= time.Duration(r.BurstWindow); k++ {
				if !clicks[k].honeypot {
					links[clicks[k].link] = true
				}
				end = k
			}
			if len(links) >= r.BurstLinks {
				for _, o := range clicks[i : end+1] {
					o.setMachine(ReasonBurst)
				}
			}
		}
	}
}

// needsOlderOpens reports whether confirmOpens could use opens outside
// the timeline: a new human click with no human open in the timeline.
func needsOlderOpens(tl []*judged) bool {
	click := false
	for _, j := range tl {
		if j.kind == campaign.EventOpened && j.human {
			return false
		}
		click = click || (j.kind == campaign.EventClicked && j.human && j.id == 0)
	}
	return click
}

// confirmOpens upgrades, for each new human click, the latest machine
// open before it, unless a human open already precedes it. Opens outside
// the timeline count as before every click. It returns the ID of the
// older open it confirmed, or 0.
func (c *Classifier) confirmOpens(tl []*judged, older olderOpens) int64 {
	humanOpen := older.human
	var lastMachine *judged
	olderID := older.machineID
	var confirmedOlder int64
	for _, j := range tl {
		switch {
		case j.kind == campaign.EventOpened && j.human:
			humanOpen = true
		case j.kind == campaign.EventOpened:
			lastMachine = j
		case j.kind == campaign.EventClicked && j.human && j.id == 0 && !humanOpen:
			if lastMachine != nil {
				lastMachine.human, lastMachine.reason, lastMachine.changed = true, ReasonConfirmed+" (was "+lastMachine.reason+")", true
				humanOpen = true
			} else if olderID != 0 {
				confirmedOlder, olderID, humanOpen = olderID, 0, true
			}
		}
	}
	return confirmedOlder
}
