package campaign

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// EventKind is what happened to a message or because of it.
type EventKind string

// Event kinds. Opens and clicks receive a verdict (human or machine); the
// other kinds are facts recorded by Funnel or reported by mail servers.
const (
	EventSent         EventKind = "sent"
	EventOpened       EventKind = "opened"
	EventClicked      EventKind = "clicked"
	EventBounced      EventKind = "bounced"
	EventUnsubscribed EventKind = "unsubscribed"
	EventComplained   EventKind = "complained"
)

// EventKinds lists every kind in a stable order.
var EventKinds = []EventKind{EventSent, EventOpened, EventClicked, EventBounced, EventUnsubscribed, EventComplained}

// Valid reports whether k is a known kind.
func (k EventKind) Valid() bool {
	switch k {
	case EventSent, EventOpened, EventClicked, EventBounced, EventUnsubscribed, EventComplained:
		return true
	}
	return false
}

// Judged reports whether events of this kind carry a human-or-machine
// verdict. Only judged kinds are filtered by a rule's IncludeMachine.
func (k EventKind) Judged() bool { return k == EventOpened || k == EventClicked }

// Event is one recorded engagement of a contact. DeliveryID and CampaignID
// are 0 when the event belongs to no delivery (for example an unsubscribe
// from the preference page). Link is the destination URL of a click.
// Human is the classifier's verdict and Reason says why it was given.
type Event struct {
	ID         int64     `json:"id"`
	DeliveryID int64     `json:"delivery_id,omitempty"`
	ContactID  int64     `json:"contact_id"`
	CampaignID int64     `json:"campaign_id,omitempty"`
	Kind       EventKind `json:"kind"`
	Link       string    `json:"link,omitempty"`
	Human      bool      `json:"human"`
	Reason     string    `json:"reason,omitempty"`
	IP         string    `json:"ip,omitempty"`
	UserAgent  string    `json:"user_agent,omitempty"`
	OccurredAt time.Time `json:"occurred_at"`
}

// LifecycleStage is where a contact stands on the way from subscriber to
// won customer: subscriber -> engaged (first human open or click) -> mql
// (score at the threshold) -> sql (accepted by sales) -> won, or recycled
// when sales rejects or loses the lead, or disqualified by an unsubscribe,
// hard bounce or complaint. Scoring and the sales handoff move contacts
// along it, and every change is recorded.
type LifecycleStage string

// Lifecycle stages, in order.
const (
	StageSubscriber   LifecycleStage = "subscriber"
	StageEngaged      LifecycleStage = "engaged"
	StageMQL          LifecycleStage = "mql" // marketing-qualified: crossed the score threshold
	StageSQL          LifecycleStage = "sql" // sales-qualified: accepted by sales
	StageWon          LifecycleStage = "won"
	StageRecycled     LifecycleStage = "recycled"     // back to nurture: rejected or lost by sales
	StageDisqualified LifecycleStage = "disqualified" // unsubscribed, bounced or complained
)

// LifecycleStages lists every stage in order.
var LifecycleStages = []LifecycleStage{StageSubscriber, StageEngaged, StageMQL, StageSQL, StageWon, StageRecycled, StageDisqualified}

// Valid reports whether s is a known stage.
func (s LifecycleStage) Valid() bool {
	switch s {
	case StageSubscriber, StageEngaged, StageMQL, StageSQL, StageWon, StageRecycled, StageDisqualified:
		return true
	}
	return false
}

// MaxEventText bounds each text field of an event (link, reason, IP, user
// agent), in bytes.
const MaxEventText = 8192

// Validate checks an event before it is stored and returns an EINVALID
// *Error naming every invalid field.
func (e *Event) Validate() error {
	var details []FieldError
	add := func(field, msg string) { details = append(details, FieldError{Field: field, Message: msg}) }
	if !e.Kind.Valid() {
		add("kind", "must be one of sent, opened, clicked, bounced, unsubscribed, complained")
	}
	if e.ContactID <= 0 {
		add("contact_id", "must be a contact ID")
	}
	if e.DeliveryID < 0 || e.CampaignID < 0 {
		add("campaign_id", "delivery and campaign IDs must be positive, or 0 for none")
	}
	if e.OccurredAt.IsZero() {
		add("occurred_at", "is required")
	}
	for field, s := range map[string]string{"link": e.Link, "reason": e.Reason, "ip": e.IP, "user_agent": e.UserAgent} {
		switch {
		case !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0:
			add(field, "must be valid UTF-8 without NUL characters")
		case len(s) > MaxEventText:
			add(field, fmt.Sprintf("longer than %d bytes", MaxEventText))
		}
	}
	if len(details) > 0 {
		slices.SortFunc(details, func(a, b FieldError) int { return strings.Compare(a.Field, b.Field) })
		return Invalid("invalid event", details...)
	}
	return nil
}
