package store

import (
	"fmt"
	"strings"

	"github.com/funnel-email/funnel/campaign"
)

// Sorts are the orders that a listing of T accepts. Every listing sorts by
// "id"; its other keys are backed by an index (so that a deep page costs
// what the first does), or its table is small enough that any order is
// cheap. A page resumes after the last row of the previous one: its ID,
// and its key's value (Last) when the sort is not by ID.
type Sorts[T any] struct {
	// Default is the order of a listing asked for none (the zero Sort).
	Default campaign.Sort
	id      func(T) int64
	keys    []sortKey[T]
}

// sortKey is one key of a listing.
type sortKey[T any] struct {
	name string
	// column is the key's SQL expression; "" when the key is the ID.
	column string
	// value reads the key of an item: a string, or a float64 when number.
	value  func(T) any
	number bool
	// unique keys need no ID to break ties: the order and the cursor's
	// condition use the key alone, which its unique index answers.
	unique bool
	// tiesDesc orders equal keys by descending ID in the ascending sort
	// (and so ascending in the descending one), where an index has it so.
	tiesDesc bool
}

// The sort keys of each listing. A key added here must be backed by an
// index on a table that grows with the contacts.
var (
	// ContactSorts order ListContacts and ListSegmentContactsPage: "email"
	// reads the unique index on email (with a status other than active,
	// contacts_inactive_email).
	ContactSorts = Sorts[*campaign.Contact]{
		Default: campaign.Sort{Key: "id"},
		id:      func(c *campaign.Contact) int64 { return c.ID },
		keys: []sortKey[*campaign.Contact]{
			{name: "id"},
			{name: "email", column: "contacts.email", unique: true, value: func(c *campaign.Contact) any { return c.Email }},
		},
	}
	// SegmentSorts order ListSegmentsPage.
	SegmentSorts = Sorts[*campaign.Segment]{
		Default: campaign.Sort{Key: "id"},
		id:      func(s *campaign.Segment) int64 { return s.ID },
		keys: []sortKey[*campaign.Segment]{
			{name: "id"},
			{name: "name", column: "name", unique: true, value: func(s *campaign.Segment) any { return s.Name }},
		},
	}
	// TemplateSorts order ListTemplatesPage.
	TemplateSorts = Sorts[*campaign.Template]{
		Default: campaign.Sort{Key: "id"},
		id:      func(t *campaign.Template) int64 { return t.ID },
		keys: []sortKey[*campaign.Template]{
			{name: "id"},
			{name: "name", column: "name", unique: true, value: func(t *campaign.Template) any { return t.Name }},
		},
	}
	// CampaignSorts order ListCampaignsPage. Names repeat; ties go by ID.
	CampaignSorts = Sorts[*campaign.Campaign]{
		Default: campaign.Sort{Key: "id"},
		id:      func(c *campaign.Campaign) int64 { return c.ID },
		keys: []sortKey[*campaign.Campaign]{
			{name: "id"},
			{name: "name", column: "name", value: func(c *campaign.Campaign) any { return c.Name }},
		},
	}
	// UserSorts order ListAllUsers.
	UserSorts = Sorts[*campaign.User]{
		Default: campaign.Sort{Key: "id"},
		id:      func(u *campaign.User) int64 { return u.ID },
		keys: []sortKey[*campaign.User]{
			{name: "id"},
			{name: "email", column: "email", unique: true, value: func(u *campaign.User) any { return u.Email }},
		},
	}
	// DeliverySorts order ListDeliveriesPage.
	DeliverySorts = Sorts[campaign.Delivery]{
		Default: campaign.Sort{Key: "id"},
		id:      func(d campaign.Delivery) int64 { return d.ID },
		keys:    []sortKey[campaign.Delivery]{{name: "id"}},
	}
	// LeadSorts order ListLeads: by default "-score", highest score first
	// and then the oldest lead, as the index leads_score (score DESC, id)
	// has them; "score" is its reverse, "id" reads the primary key.
	LeadSorts = Sorts[*campaign.Lead]{
		Default: campaign.Sort{Key: "score", Desc: true},
		id:      func(l *campaign.Lead) int64 { return l.ID },
		keys: []sortKey[*campaign.Lead]{
			{name: "score", column: "l.score", number: true, tiesDesc: true, value: func(l *campaign.Lead) any { return l.Score }},
			{name: "id"},
		},
	}
	// EngagedSorts order EngagedContacts, by contact ID.
	EngagedSorts = Sorts[campaign.EngagedContact]{
		Default: campaign.Sort{Key: "id"},
		id:      func(e campaign.EngagedContact) int64 { return e.ContactID },
		keys:    []sortKey[campaign.EngagedContact]{{name: "id"}},
	}
	// TokenSorts and WebhookSorts order short lists that come whole, from
	// ListUserTokens (newest first) and ListWebhooks (in ID order); the
	// other order is their reverse.
	TokenSorts = Sorts[UserToken]{
		Default: campaign.Sort{Key: "id", Desc: true},
		id:      func(t UserToken) int64 { return t.ID },
		keys:    []sortKey[UserToken]{{name: "id"}},
	}
	WebhookSorts = Sorts[*campaign.Webhook]{
		Default: campaign.Sort{Key: "id"},
		id:      func(w *campaign.Webhook) int64 { return w.ID },
		keys:    []sortKey[*campaign.Webhook]{{name: "id"}},
	}
)

// Names lists the values of the API's sort parameter that the listing
// accepts, ascending before descending: "id", "-id", "email", "-email".
func (s Sorts[T]) Names() []string {
	out := make([]string, 0, 2*len(s.keys))
	for _, k := range s.keys {
		out = append(out, k.name, "-"+k.name)
	}
	return out
}

// Resolve returns the order that sort names (Default for the zero Sort),
// or an EINVALID error naming the field "sort" and the accepted keys.
func (s Sorts[T]) Resolve(sort campaign.Sort) (campaign.Sort, error) {
	_, sort, err := s.key(sort)
	return sort, err
}

func (s Sorts[T]) key(sort campaign.Sort) (sortKey[T], campaign.Sort, error) {
	if sort == (campaign.Sort{}) {
		sort = s.Default
	}
	for _, k := range s.keys {
		if k.name == sort.Key {
			return k, sort, nil
		}
	}
	return sortKey[T]{}, sort, campaign.Invalid("invalid query", campaign.FieldError{Field: "sort",
		Message: fmt.Sprintf("must be one of %s, not %q", strings.Join(s.Names(), ", "), sort.String())})
}

// Last returns where a page sorted by sort ends when item is its last
// row: the item's ID and, unless the sort is by ID, its key's value.
func (s Sorts[T]) Last(sort campaign.Sort, item T) (id int64, value any) {
	k, _, err := s.key(sort)
	if err != nil || k.value == nil {
		return s.id(item), nil
	}
	return s.id(item), k.value(item)
}

// keyset returns the ORDER BY list for sort, with idCol as the ID column,
// and, when the page resumes after a row (afterID > 0, and afterValue for
// a sort by another key), the condition that selects the rows after it.
// It returns EINVALID for an unknown sort, or a value that is not of the
// key's type (a cursor made for another sort).
func (s Sorts[T]) keyset(sort campaign.Sort, idCol string, afterID int64, afterValue any) (cond string, args []any, order string, err error) {
	k, sort, err := s.key(sort)
	if err != nil {
		return "", nil, "", err
	}
	keyOp, keyDir := ">", "ASC"
	if sort.Desc {
		keyOp, keyDir = "<", "DESC"
	}
	if k.column == "" {
		if afterID > 0 {
			cond, args = idCol+" "+keyOp+" ?", []any{afterID}
		}
		return cond, args, idCol + " " + keyDir, nil
	}
	idOp, idDir := ">", "ASC"
	if sort.Desc != k.tiesDesc {
		idOp, idDir = "<", "DESC"
	}
	order = k.column + " " + keyDir + ", " + idCol + " " + idDir
	if k.unique {
		order = k.column + " " + keyDir
	}
	if afterValue == nil {
		if afterID > 0 {
			// A cursor of this sort always carries the key's value: one
			// without it would start the list again, for ever.
			return "", nil, "", campaign.Invalid("invalid query", campaign.FieldError{Field: "cursor", Message: "was not made for sort " + sort.String()})
		}
		return "", nil, order, nil
	}
	ok := false
	if k.number {
		_, ok = afterValue.(float64)
	} else {
		_, ok = afterValue.(string)
	}
	if !ok {
		return "", nil, "", campaign.Invalid("invalid query", campaign.FieldError{Field: "cursor", Message: "was not made for sort " + sort.String()})
	}
	if k.unique {
		return k.column + " " + keyOp + " ?", []any{afterValue}, order, nil
	}
	// The first term repeats the second's bound on the key alone, so that
	// both planners start their index scan at the cursor instead of
	// walking up to it.
	cond = fmt.Sprintf("%[1]s %[2]s= ? AND (%[1]s %[2]s ? OR (%[1]s = ? AND %[3]s %[4]s ?))", k.column, keyOp, idCol, idOp)
	return cond, []any{afterValue, afterValue, afterValue, afterID}, order, nil
}

// Page selects one page of a listing that has no filter of its own.
type Page struct {
	// Sort is one of the listing's Sorts; the zero Sort is its default.
	Sort campaign.Sort
	// After is the ID of the last row of the previous page (0 for the
	// first page), and AfterValue that row's sort key (see Sorts.Last)
	// when the sort is not by ID.
	After      int64
	AfterValue any
	// Limit is the page size, 1 to MaxPageSize (0 means MaxPageSize).
	Limit int
}

// limit returns p's page size within 1 to MaxPageSize.
func (p Page) limit() int {
	if p.Limit <= 0 || p.Limit > MaxPageSize {
		return MaxPageSize
	}
	return p.Limit
}

// whereClause joins conditions into a WHERE clause, leaving out empty
// ones; "" when none is left.
func whereClause(conds ...string) string {
	var out []string
	for _, c := range conds {
		if c != "" {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(out, " AND ")
}
