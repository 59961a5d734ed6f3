package campaign

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// LeadStatus is where sales stands with a lead.
type LeadStatus string

// Lead statuses. A lead starts new; sales contacts it, accepts it (SQL),
// or rejects it with a reason (the contact goes back to nurture:
// recycled); an accepted lead is won or lost.
const (
	LeadNew       LeadStatus = "new"
	LeadContacted LeadStatus = "contacted"
	LeadAccepted  LeadStatus = "accepted"
	LeadRejected  LeadStatus = "rejected"
	LeadWon       LeadStatus = "won"
	LeadLost      LeadStatus = "lost"
)

// LeadStatuses lists every status.
var LeadStatuses = []LeadStatus{LeadNew, LeadContacted, LeadAccepted, LeadRejected, LeadWon, LeadLost}

// Valid reports whether s is a known status.
func (s LeadStatus) Valid() bool { return slices.Contains(LeadStatuses, s) }

// leadTransitions lists the statuses sales may move a lead to from each
// status. Won and lost are final; a rejected lead becomes new again only
// when its contact crosses the threshold again (scoring does that).
var leadTransitions = map[LeadStatus][]LeadStatus{
	LeadNew:       {LeadContacted, LeadAccepted, LeadRejected},
	LeadContacted: {LeadAccepted, LeadRejected},
	LeadAccepted:  {LeadWon, LeadLost, LeadContacted},
	LeadRejected:  {},
	LeadWon:       {},
	LeadLost:      {},
}

// LeadFrom lists the statuses from which a lead may move to s.
func LeadFrom(s LeadStatus) []LeadStatus {
	var out []LeadStatus
	for _, from := range LeadStatuses {
		if slices.Contains(leadTransitions[from], s) {
			out = append(out, from)
		}
	}
	return out
}

// Stage returns the lifecycle stage a contact moves to when its lead
// reaches s, and the reason recorded in the history; "" when the stage
// stays.
func (s LeadStatus) Stage() (LifecycleStage, string) {
	switch s {
	case LeadContacted:
		return "", "" // sales is working on it; the stage does not change
	case LeadAccepted:
		return StageSQL, "accepted by sales"
	case LeadWon:
		return StageWon, "won"
	case LeadRejected:
		return StageRecycled, "recycled: rejected by sales"
	case LeadLost:
		return StageRecycled, "recycled: lost"
	}
	return StageMQL, "qualified"
}

// Lead is a contact handed to sales: one per contact, created when its
// score first reaches the threshold.
type Lead struct {
	ID        int64      `json:"id"`
	ContactID int64      `json:"contact_id"`
	Email     string     `json:"email"`
	FirstName string     `json:"first_name"`
	LastName  string     `json:"last_name"`
	Status    LeadStatus `json:"status"`
	Reason    string     `json:"reason"`
	OwnerID   int64      `json:"owner_user_id,omitempty"`
	// ScoreAtCreation is the score that made the contact a lead; Score is
	// the contact's score now.
	ScoreAtCreation float64 `json:"score_at_creation"`
	Score           float64 `json:"score"`
	// CampaignID is the campaign whose event crossed the threshold.
	CampaignID int64     `json:"campaign_id,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// LeadPatch changes a lead's status (with a reason) or owner; absent
// fields are kept.
type LeadPatch struct {
	Status  *LeadStatus `json:"status"`
	Reason  *string     `json:"reason"`
	OwnerID *int64      `json:"owner_user_id"`
}

// MaxLeadReason bounds a rejection or loss reason, in bytes.
const MaxLeadReason = 2000

// Validate checks the patch on its own: a known status, a reason when
// rejecting, a positive owner (0 clears it). Whether the transition is
// allowed is checked against the stored status (ECONFLICT).
func (p *LeadPatch) Validate() error {
	var details []FieldError
	if p.Status == nil && p.Reason == nil && p.OwnerID == nil {
		return Errorf(EINVALID, "nothing to change: give status, reason or owner_user_id")
	}
	if p.Status != nil && !p.Status.Valid() {
		details = append(details, FieldError{Field: "status", Message: fmt.Sprintf("unknown status %q: use %s", clipText(string(*p.Status)), joinStatuses())})
	}
	if p.Status != nil && *p.Status == LeadNew {
		details = append(details, FieldError{Field: "status", Message: "a lead cannot be set back to new"})
	}
	if p.Status != nil && *p.Status == LeadRejected && (p.Reason == nil || strings.TrimSpace(*p.Reason) == "") {
		details = append(details, FieldError{Field: "reason", Message: "is required when rejecting a lead"})
	}
	if p.Reason != nil && (len(*p.Reason) > MaxLeadReason || !utf8.ValidString(*p.Reason)) {
		details = append(details, FieldError{Field: "reason", Message: fmt.Sprintf("must be valid UTF-8 of at most %d bytes", MaxLeadReason)})
	}
	if p.OwnerID != nil && *p.OwnerID < 0 {
		details = append(details, FieldError{Field: "owner_user_id", Message: "must be a user ID, or 0 for none"})
	}
	if len(details) > 0 {
		return Invalid("invalid lead change", details...)
	}
	return nil
}

func joinStatuses() string {
	s := make([]string, len(LeadStatuses))
	for i, v := range LeadStatuses {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}

func clipText(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// LeadFilter selects leads. Zero fields do not filter. Leads come sorted
// by Sort: "-score" (the default: highest score first, then lowest ID),
// "score" (its reverse) or "id". After* resume after the last lead of the
// previous page (keyset paging).
type LeadFilter struct {
	Status     LeadStatus
	OwnerID    int64
	MinScore   float64
	Since      time.Time // created at or after
	CampaignID int64
	Limit      int
	Sort       Sort
	// AfterScore and AfterID are the sort key of the last lead seen:
	// AfterScore (nil for the first page) with a score sort, AfterID
	// alone (0 for the first page) with an ID sort.
	AfterScore *float64
	AfterID    int64
}

// LeadDetail is a lead with what sales needs to judge it.
type LeadDetail struct {
	Lead
	Contact *Contact      `json:"contact"`
	Ledger  []LedgerEntry `json:"score_ledger"`
	// Events are the contact's most recent human opens and clicks.
	Events    []Event          `json:"recent_events"`
	Campaigns []CampaignClicks `json:"campaigns"`
	Stages    []StageChange    `json:"stage_history"`
}

// CampaignClicks is one campaign a lead engaged with and the links it
// clicked.
type CampaignClicks struct {
	CampaignID int64    `json:"campaign_id"`
	Name       string   `json:"name"`
	Opens      int64    `json:"human_opens"`
	Links      []string `json:"links_clicked"`
}

// LeadSummary counts a campaign's leads: created (the campaign's event
// crossed the threshold) and how many of them sales accepted (accepted,
// contacted, won or lost after accepting) and won.
type LeadSummary struct {
	CampaignID int64 `json:"campaign_id"`
	Created    int64 `json:"created"`
	Accepted   int64 `json:"accepted"`
	Rejected   int64 `json:"rejected"`
	Won        int64 `json:"won"`
	Lost       int64 `json:"lost"`
}

// EngagedFilter selects contacts with human engagement, in contact ID
// order (Sort "id", the default, or "-id") after AfterID (0 for the first
// page).
type EngagedFilter struct {
	CampaignID int64
	Since      time.Time
	MinScore   float64
	Limit      int
	Sort       Sort
	AfterID    int64
}

// EngagedContact is a contact with human opens or clicks.
type EngagedContact struct {
	ContactID    int64          `json:"contact_id"`
	Email        string         `json:"email"`
	FirstName    string         `json:"first_name"`
	LastName     string         `json:"last_name"`
	Score        float64        `json:"score"`
	Stage        LifecycleStage `json:"lifecycle_stage"`
	Opens        int64          `json:"human_opens"`
	Clicks       int64          `json:"human_clicks"`
	LastActivity time.Time      `json:"last_activity_at"`
}
