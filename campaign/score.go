package campaign

import (
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"
)

// Scoring, as Funnel defines it:
//
//   - Only human opens and clicks earn points (the classifier's verdict).
//     A human open earns Open points once per campaign; a human click earns
//     Click points once per link (destination URL) per campaign, and, when
//     the link is high-intent, HighIntentClick points on top, also once per
//     link per campaign. A link is high-intent when the template tagged it
//     (any data-funnel-intent value, such as "pricing") or its URL contains
//     one of HighIntentPatterns.
//   - An unsubscribe, a (hard) bounce or a complaint disqualifies: the score
//     drops to 0 through a ledger row, later engagement earns nothing, and
//     no lead is created.
//   - Decay is stepwise on inactivity: every full HalfLife after the
//     contact's last human open or click halves the score. With settled
//     score S, last activity L and k halvings already written to the ledger,
//     the score at time t is S × 0.5^(floor((t−L)/HalfLife) − k). Halvings
//     are written to the ledger as "decay" rows dated L + n×HalfLife (by the
//     periodic decay sweep, or just before the next event's points), so the
//     ledger sum is always the settled score; a human event resets L.
//   - Events are applied at max(occurred_at, the last decay applied): an
//     event scored late never undoes a halving already written.

// Ledger rule names.
const (
	RuleOpen            = "open"
	RuleClick           = "click"
	RuleHighIntentClick = "high_intent_click"
	RuleDecay           = "decay"
	RuleDisqualify      = "disqualify"
)

// IntentHigh is an intent tag; any non-empty tag (data-funnel-intent in a
// template: "pricing", "demo", "high") marks a high-intent link.
const IntentHigh = "high"

// Defaults of ScoreRules.
const (
	DefaultOpenPoints       = 1
	DefaultClickPoints      = 5
	DefaultHighIntentPoints = 15
	DefaultThreshold        = 20
	DefaultHalfLife         = 30 * 24 * time.Hour
)

// ScoreRules is one version of the scoring configuration. Every change is
// stored as a new version; ledger rows name the version that wrote them.
type ScoreRules struct {
	Version         int64   `json:"version"`
	Open            float64 `json:"open"`
	Click           float64 `json:"click"`
	HighIntentClick float64 `json:"high_intent_click"`
	// HighIntentPatterns are substrings of destination URLs (such as
	// "/pricing") that make a click high-intent, besides the event's own
	// intent tag.
	HighIntentPatterns []string `json:"high_intent_patterns"`
	// Threshold is the score at or above which a contact becomes an MQL
	// and a lead.
	Threshold float64 `json:"threshold"`
	// HalfLifeDays is the inactivity after which the score halves.
	HalfLifeDays float64 `json:"half_life_days"`
	// OwnerRules route new leads by a contact attribute; the first match
	// wins, and leads no rule matches go round-robin to sales users.
	OwnerRules []OwnerRule `json:"owner_rules"`
	CreatedAt  time.Time   `json:"created_at,omitzero"`
}

// OwnerRule assigns leads whose contact attribute Attribute equals Value
// (compared case-insensitively as text) to the user UserID.
type OwnerRule struct {
	Attribute string `json:"attribute"`
	Value     string `json:"value"`
	UserID    int64  `json:"user_id"`
}

// DefaultScoreRules returns the rules in force before anyone edits them
// (version 0).
func DefaultScoreRules() ScoreRules {
	return ScoreRules{
		Open: DefaultOpenPoints, Click: DefaultClickPoints, HighIntentClick: DefaultHighIntentPoints,
		HighIntentPatterns: []string{}, Threshold: DefaultThreshold,
		HalfLifeDays: DefaultHalfLife.Hours() / 24, OwnerRules: []OwnerRule{},
	}
}

// HalfLife returns HalfLifeDays as a duration.
func (r *ScoreRules) HalfLife() time.Duration {
	return time.Duration(r.HalfLifeDays * float64(24*time.Hour))
}

// Validate returns an EINVALID error naming every invalid field.
func (r *ScoreRules) Validate() error {
	var details []FieldError
	add := func(field, format string, args ...any) {
		details = append(details, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	for field, v := range map[string]float64{"open": r.Open, "click": r.Click, "high_intent_click": r.HighIntentClick} {
		if math.IsNaN(v) || v < 0 || v > 1000 {
			add(field, "must be between 0 and 1000 points")
		}
	}
	if math.IsNaN(r.Threshold) || r.Threshold <= 0 || r.Threshold > 1e6 {
		add("threshold", "must be above 0 and at most 1000000")
	}
	if math.IsNaN(r.HalfLifeDays) || r.HalfLifeDays < 1.0/24 || r.HalfLifeDays > 3650 {
		add("half_life_days", "must be between 1 hour (0.0417) and 3650 days")
	}
	if len(r.HighIntentPatterns) > 100 {
		add("high_intent_patterns", "more than 100 patterns")
	}
	for i, p := range r.HighIntentPatterns {
		if strings.TrimSpace(p) == "" || len(p) > 500 {
			add(fmt.Sprintf("high_intent_patterns[%d]", i), "must be a non-empty text of at most 500 bytes")
		}
	}
	if len(r.OwnerRules) > 500 {
		add("owner_rules", "more than 500 rules")
	}
	for i, o := range r.OwnerRules {
		if o.Attribute == "" || len(o.Attribute) > 100 {
			add(fmt.Sprintf("owner_rules[%d].attribute", i), "must name an attribute (at most 100 bytes)")
		}
		if o.UserID <= 0 {
			add(fmt.Sprintf("owner_rules[%d].user_id", i), "must be a user ID")
		}
	}
	if len(details) > 0 {
		return Invalid("invalid scoring rules", details...)
	}
	return nil
}

// HighIntent reports whether a click on link with the given intent tag
// hits a high-intent link: the template tagged the link, or the URL
// matches a pattern.
func (r *ScoreRules) HighIntent(link, intent string) bool {
	if intent != "" {
		return true
	}
	for _, p := range r.HighIntentPatterns {
		if p != "" && strings.Contains(link, p) {
			return true
		}
	}
	return false
}

// OwnerFor returns the user an owner rule assigns a contact with attrs to,
// or 0 when no rule matches.
func (r *ScoreRules) OwnerFor(attrs Attributes) int64 {
	for _, o := range r.OwnerRules {
		v, ok := attrs[o.Attribute]
		if ok && strings.EqualFold(fmt.Sprint(v), o.Value) {
			return o.UserID
		}
	}
	return 0
}

// Award is what one event may earn: Points under Rule, unless the contact
// already holds a ledger row with the same Rule and OnceKey.
type Award struct {
	Rule    string
	OnceKey string
	Points  float64
}

// Awards returns what a human open or click may earn under r; other events
// earn nothing. The once key makes the open rule once per campaign and the
// click rules once per link per campaign.
func (r *ScoreRules) Awards(e *Event, intent string) []Award {
	if !e.Human {
		return nil
	}
	campaignKey := fmt.Sprintf("c%d", e.CampaignID)
	if e.CampaignID == 0 {
		campaignKey = fmt.Sprintf("e%d", e.ID) // no campaign: each event stands alone
	}
	var out []Award
	switch e.Kind {
	case EventOpened:
		out = append(out, Award{RuleOpen, campaignKey, r.Open})
	case EventClicked:
		key := campaignKey + "|" + normalizeLink(e.Link)
		out = append(out, Award{RuleClick, key, r.Click})
		if r.HighIntent(e.Link, intent) {
			out = append(out, Award{RuleHighIntentClick, key, r.HighIntentClick})
		}
	}
	return out
}

// normalizeLink makes "once per link" ignore what does not change the
// destination: the fragment and the case of scheme and host.
func normalizeLink(link string) string {
	u, err := url.Parse(link)
	if err != nil {
		return link
	}
	u.Fragment, u.RawFragment = "", ""
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	return u.String()
}

// Disqualifies reports whether an event of kind k ends a contact's scoring.
func Disqualifies(k EventKind) bool {
	return k == EventUnsubscribed || k == EventBounced || k == EventComplained
}

// ScoreState is what scoring keeps per contact besides the ledger. Score
// equals the sum of the contact's ledger rows.
type ScoreState struct {
	Score float64 `json:"score"`
	// LastActivity is the time of the last human open or click (zero
	// before the first).
	LastActivity time.Time `json:"last_activity_at,omitzero"`
	// Halvings counts the decay steps written since LastActivity.
	Halvings     int  `json:"halvings"`
	Disqualified bool `json:"disqualified"`
}

// DecayedAt returns when the last written halving took effect, or
// LastActivity when none did.
func (s *ScoreState) DecayedAt(halfLife time.Duration) time.Time {
	return s.LastActivity.Add(time.Duration(s.Halvings) * halfLife)
}

// NextDecay returns when the next halving is due, or the zero time when
// nothing can decay.
func (s *ScoreState) NextDecay(halfLife time.Duration) time.Time {
	if s.LastActivity.IsZero() || s.Score <= 0 || s.Disqualified {
		return time.Time{}
	}
	return s.LastActivity.Add(time.Duration(s.Halvings+1) * halfLife)
}

// Decay applies the halvings due at t. It returns the change in points
// (zero or negative) and the time the last of them took effect; ok is
// false when none was due.
func (s *ScoreState) Decay(t time.Time, halfLife time.Duration) (delta float64, at time.Time, ok bool) {
	if s.LastActivity.IsZero() || halfLife <= 0 || s.Disqualified || !t.After(s.LastActivity) {
		return 0, time.Time{}, false
	}
	n := int(t.Sub(s.LastActivity) / halfLife)
	if n <= s.Halvings {
		return 0, time.Time{}, false
	}
	steps := n - s.Halvings
	s.Halvings = n
	at = s.LastActivity.Add(time.Duration(n) * halfLife)
	if s.Score <= 0 {
		return 0, at, false
	}
	next := s.Score * math.Pow(0.5, float64(steps))
	delta = next - s.Score
	s.Score = next
	return delta, at, true
}

// Current returns the score at t, counting halvings due but not written.
func (s *ScoreState) Current(t time.Time, halfLife time.Duration) float64 {
	c := *s
	c.Decay(t, halfLife)
	return c.Score
}

// Touch records human activity at t (at is the time the event is applied).
func (s *ScoreState) Touch(t time.Time) {
	if t.After(s.LastActivity) {
		s.LastActivity, s.Halvings = t, 0
	}
}

// ApplyAt returns the time an event that occurred at t is applied: never
// before the last written halving.
func (s *ScoreState) ApplyAt(t time.Time, halfLife time.Duration) time.Time {
	if d := s.DecayedAt(halfLife); s.Halvings > 0 && d.After(t) {
		return d
	}
	return t
}

// Replay scores events in the given order under fixed rules, entirely in
// memory, and returns the state at now. It is the reference the stored
// ledger is checked against: the same rules, without a database. intent
// gives the intent tag of an event (may be nil).
func (r *ScoreRules) Replay(events []Event, intent func(Event) string, now time.Time) ScoreState {
	var s ScoreState
	held := map[string]bool{}
	hl := r.HalfLife()
	for _, e := range events {
		switch {
		case s.Disqualified:
		case Disqualifies(e.Kind):
			s.Decay(s.ApplyAt(e.OccurredAt, hl), hl)
			s.Score, s.Disqualified = 0, true
		case e.Kind.Judged() && e.Human:
			at := s.ApplyAt(e.OccurredAt, hl)
			s.Decay(at, hl)
			in := ""
			if intent != nil {
				in = intent(e)
			}
			for _, a := range r.Awards(&e, in) {
				if k := a.Rule + "/" + a.OnceKey; !held[k] && a.Points > 0 {
					held[k] = true
					s.Score += a.Points
				}
			}
			s.Touch(at)
		}
	}
	s.Decay(now, hl)
	return s
}

// LedgerEntry is one row of a contact's points ledger: why the score
// changed, by how much, and what it was after.
type LedgerEntry struct {
	ID          int64     `json:"id"`
	ContactID   int64     `json:"contact_id"`
	Rule        string    `json:"rule"`
	RuleVersion int64     `json:"rule_version"`
	EventID     int64     `json:"event_id,omitempty"`
	CampaignID  int64     `json:"campaign_id,omitempty"`
	Link        string    `json:"link,omitempty"`
	Points      float64   `json:"points"`
	ScoreAfter  float64   `json:"score_after"`
	At          time.Time `json:"at"`
}

// ScoreReport explains a contact's score: the ledger, its sum, and the
// decay due now but not yet written.
type ScoreReport struct {
	ContactID int64          `json:"contact_id"`
	Score     float64        `json:"score"`
	Ledger    float64        `json:"ledger_total"`
	Pending   float64        `json:"pending_decay"`
	State     ScoreState     `json:"state"`
	Stage     LifecycleStage `json:"lifecycle_stage"`
	Threshold float64        `json:"threshold"`
	HalfLife  float64        `json:"half_life_days"`
	NextDecay *time.Time     `json:"next_decay_at,omitempty"`
	Entries   []LedgerEntry  `json:"entries"`
	AsOf      time.Time      `json:"as_of"`
}

// StageChange is one row of a contact's lifecycle history.
type StageChange struct {
	ID        int64          `json:"id"`
	ContactID int64          `json:"contact_id"`
	From      LifecycleStage `json:"from"`
	To        LifecycleStage `json:"to"`
	Reason    string         `json:"reason"`
	LeadID    int64          `json:"lead_id,omitempty"`
	UserID    int64          `json:"user_id,omitempty"`
	At        time.Time      `json:"at"`
}
