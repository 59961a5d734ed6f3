package campaign

import (
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Status is where a campaign is in its life:
//
//	draft -> scheduled -> sending -> sent
//
// with paused (from scheduled or sending, back by resume), cancelled (from
// any state before sent) and failed (from sending). Stores enforce the
// transitions in the UPDATE itself, using the From lists of Transitions.
type Status string

// Campaign statuses.
const (
	StatusDraft     Status = "draft"
	StatusScheduled Status = "scheduled"
	StatusSending   Status = "sending"
	StatusPaused    Status = "paused"
	StatusSent      Status = "sent"
	StatusCancelled Status = "cancelled"
	StatusFailed    Status = "failed"
)

// Transition is a named status change and the statuses it may start from.
type Transition struct {
	Name string
	From []Status
	To   Status
}

// The transitions a campaign can make. Resume returns a paused campaign to
// sending; the worker finds out whether its audience was already
// materialized from the ledger, not from the status.
var (
	Schedule = Transition{"schedule", []Status{StatusDraft, StatusScheduled}, StatusScheduled}
	Start    = Transition{"start", []Status{StatusScheduled}, StatusSending}
	Pause    = Transition{"pause", []Status{StatusScheduled, StatusSending}, StatusPaused}
	Resume   = Transition{"resume", []Status{StatusPaused}, StatusSending}
	Cancel   = Transition{"cancel", []Status{StatusDraft, StatusScheduled, StatusSending, StatusPaused}, StatusCancelled}
	Complete = Transition{"complete", []Status{StatusSending}, StatusSent}
	Fail     = Transition{"fail", []Status{StatusScheduled, StatusSending}, StatusFailed}
)

// StopWithin bounds how long after a campaign leaves sending (a pause or
// a cancel) a worker may still start an SMTP transaction for it: workers
// read the status again at least this often, right before each
// transaction, and the API acknowledges a pause or cancel only once it
// has passed. A transaction already started then still finishes.
const StopWithin = 250 * time.Millisecond

// Deletable reports whether a campaign in status s may be deleted: not
// while it may still send, and not once its ledger is history worth
// keeping for reports.
func (s Status) Deletable() bool {
	return s == StatusDraft || s == StatusCancelled || s == StatusFailed
}

// Duplicate returns a draft copy of c with the same content and audience,
// no schedule and no history.
func (c *Campaign) Duplicate() *Campaign {
	d := &Campaign{
		Name: "Copy of " + c.Name, TemplateID: c.TemplateID, SegmentIDs: slices.Clone(c.SegmentIDs),
		ExcludeSegmentIDs: slices.Clone(c.ExcludeSegmentIDs), FromName: c.FromName, FromEmail: c.FromEmail,
		ReplyTo: c.ReplyTo, Rate: c.Rate, ResendUncertain: c.ResendUncertain, SMTPPool: c.SMTPPool, Status: StatusDraft,
	}
	if utf8.RuneCountInString(d.Name) > MaxNameLength {
		d.Name = string([]rune(d.Name)[:MaxNameLength])
	}
	return d
}

// AudienceRule is the rule that selects c's audience: members of any of
// its segments and of none of its exclusion segments. Suppressed contacts
// are left out by the store, whatever the rule says.
func (c *Campaign) AudienceRule() *Rule {
	incl := &Rule{}
	for _, id := range c.SegmentIDs {
		incl.Any = append(incl.Any, &Rule{Segment: id})
	}
	if len(c.ExcludeSegmentIDs) == 0 {
		return incl
	}
	excl := &Rule{}
	for _, id := range c.ExcludeSegmentIDs {
		excl.Any = append(excl.Any, &Rule{Segment: id})
	}
	return &Rule{All: []*Rule{incl, {Not: excl}}}
}

// Allows reports whether the transition may start from s.
func (t Transition) Allows(s Status) bool { return slices.Contains(t.From, s) }

// Finished reports whether a campaign in status s will never send again:
// sent, cancelled or failed.
func (s Status) Finished() bool {
	return s == StatusSent || s == StatusCancelled || s == StatusFailed
}

// Editable reports whether a campaign in status s may have its content,
// audience or sender changed.
func (s Status) Editable() bool { return s == StatusDraft || s == StatusScheduled }

// Campaign is one mailing of a template to an audience.
type Campaign struct {
	ID         int64   `json:"id"`
	Name       string  `json:"name"`
	TemplateID int64   `json:"template_id"`
	SegmentIDs []int64 `json:"segment_ids"`
	// ExcludeSegmentIDs name segments whose members never receive it.
	ExcludeSegmentIDs []int64 `json:"exclude_segment_ids"`
	FromName          string  `json:"from_name"`
	FromEmail         string  `json:"from_email"`
	ReplyTo           string  `json:"reply_to"`
	// SendAt is when sending starts; nil for a draft that was never
	// scheduled.
	SendAt *time.Time `json:"send_at"`
	// Rate caps messages per second for this campaign; 0 means only the
	// SMTP servers' own limits apply.
	Rate float64 `json:"rate"`
	// ResendUncertain makes deliveries whose outcome is unknown (a worker
	// died inside the SMTP transaction) be sent again instead of reported.
	ResendUncertain bool `json:"resend_uncertain"`
	// SMTPPool names the pool of SMTP servers (the pool= parameter of
	// FUNNEL_SMTP_URL) the campaign is sent through; empty means every
	// server.
	SMTPPool string `json:"smtp_pool"`
	Status   Status `json:"status"`
	// ScheduleVersion grows on every schedule, so a start task enqueued for
	// an older schedule recognises itself as stale.
	ScheduleVersion int64 `json:"schedule_version"`
	// AudienceSize is how many deliveries the start drew; nil until the
	// audience is materialized.
	AudienceSize *int64 `json:"audience_size"`
	// Failure says why a failed campaign failed.
	Failure    string     `json:"failure,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
}

// Validate checks the fields a marketer sets and returns an EINVALID error
// naming each bad one.
func (c *Campaign) Validate() error {
	var details []FieldError
	add := func(field, format string, args ...any) {
		details = append(details, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	c.Name = strings.TrimSpace(c.Name)
	switch n := utf8.RuneCountInString(c.Name); {
	case n == 0:
		add("name", "is required")
	case n > MaxNameLength:
		add("name", "longer than %d characters", MaxNameLength)
	}
	if c.TemplateID <= 0 {
		add("template_id", "is required")
	}
	if len(c.SegmentIDs) == 0 {
		add("segment_ids", "name at least one segment")
	}
	for i, id := range append(slices.Clone(c.SegmentIDs), c.ExcludeSegmentIDs...) {
		if id <= 0 {
			add(fmt.Sprintf("segment_ids[%d]", i), "is not a valid id")
		}
	}
	c.FromEmail = NormalizeEmail(c.FromEmail)
	if err := ValidateEmail(c.FromEmail); err != nil {
		add("from_email", "%s", err)
	}
	if strings.ContainsAny(c.FromName, "\r\n") || utf8.RuneCountInString(c.FromName) > MaxNameLength {
		add("from_name", "must be one line of at most %d characters", MaxNameLength)
	}
	if c.ReplyTo != "" {
		if _, err := mail.ParseAddress(c.ReplyTo); err != nil || strings.ContainsAny(c.ReplyTo, "\r\n") {
			add("reply_to", "is not a valid address")
		}
	}
	if c.Rate < 0 || c.Rate > 100000 {
		add("rate", "must be between 0 (no limit) and 100000 messages per second")
	}
	if c.SMTPPool != "" && !ValidSMTPPool(c.SMTPPool) {
		add("smtp_pool", "must be 1 to 64 letters, digits, '-' or '_'")
	}
	if len(details) > 0 {
		return Invalid("invalid campaign", details...)
	}
	return nil
}

// DeliveryStatus is the state of one (campaign, contact) row of the
// ledger, the only truth about who was sent what.
type DeliveryStatus string

// Delivery statuses.
const (
	// DeliveryQueued waits for a batch to claim it.
	DeliveryQueued DeliveryStatus = "queued"
	// DeliverySending is claimed by a worker under a lease; if the lease
	// runs out the worker died, and the delivery becomes uncertain.
	DeliverySending DeliveryStatus = "sending"
	// DeliverySent was accepted by the SMTP server.
	DeliverySent DeliveryStatus = "sent"
	// DeliveryDeferred got a temporary failure and waits for its next
	// attempt.
	DeliveryDeferred DeliveryStatus = "deferred"
	// DeliveryBounced got a permanent failure for the recipient; the
	// contact is suppressed.
	DeliveryBounced DeliveryStatus = "bounced"
	// DeliveryFailed got another permanent failure (or could not be
	// rendered), with the reason kept.
	DeliveryFailed DeliveryStatus = "failed"
	// DeliverySkipped was not sent because the contact became suppressed
	// after the audience was drawn.
	DeliverySkipped DeliveryStatus = "skipped"
	// DeliveryUncertain may or may not have been accepted: its worker died
	// inside the SMTP transaction. It is reported, not resent.
	DeliveryUncertain DeliveryStatus = "uncertain"
)

// Final reports whether no more sending happens for a delivery in status s.
func (s DeliveryStatus) Final() bool {
	switch s {
	case DeliverySent, DeliveryBounced, DeliveryFailed, DeliverySkipped, DeliveryUncertain:
		return true
	}
	return false
}

// Pending reports whether a delivery in status s may still be sent: it is
// queued, waiting for a retry, or in a worker's hands.
func (s DeliveryStatus) Pending() bool {
	return s == DeliveryQueued || s == DeliveryDeferred || s == DeliverySending
}

// DeliveryStatuses lists every delivery status, in the order reports show
// them.
var DeliveryStatuses = []DeliveryStatus{
	DeliveryQueued, DeliverySending, DeliverySent, DeliveryDeferred, DeliveryBounced,
	DeliveryFailed, DeliverySkipped, DeliveryUncertain,
}

// Delivery is one row of the ledger: one campaign to one contact.
type Delivery struct {
	ID         int64          `json:"id"`
	CampaignID int64          `json:"campaign_id"`
	ContactID  int64          `json:"contact_id"`
	Status     DeliveryStatus `json:"status"`
	// Attempts counts SMTP transactions started for it.
	Attempts      int        `json:"attempts"`
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
	// SMTPCode and Reason keep the server's last reply (or why it was not
	// sent); MessageID the Message-ID it was sent with.
	SMTPCode  int        `json:"smtp_code,omitempty"`
	Reason    string     `json:"reason,omitempty"`
	MessageID string     `json:"message_id,omitempty"`
	SentAt    *time.Time `json:"sent_at,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
}

// Progress is how far a campaign has got: the audience, the deliveries by
// status, the send rate over the last minute and, while sending, when it
// should finish at that rate.
type Progress struct {
	Audience int64                    `json:"audience"`
	Counts   map[DeliveryStatus]int64 `json:"counts"`
	// Rate is messages accepted per second over the last minute.
	Rate float64 `json:"rate"`
	// ETA is nil when nothing is pending or nothing was sent lately.
	ETA *time.Time `json:"eta"`
}

// Remaining is how many deliveries may still be sent.
func (p *Progress) Remaining() int64 {
	return p.Counts[DeliveryQueued] + p.Counts[DeliveryDeferred] + p.Counts[DeliverySending]
}

// ValidSMTPPool reports whether name can name a pool of SMTP servers: 1
// to 64 ASCII letters, digits, '-' or '_'.
func ValidSMTPPool(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
