package campaign

import (
	"fmt"
	"math"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// ContactStatus says whether a contact may be mailed. Only active contacts
// receive campaigns; the other statuses are suppressions that an import
// never lifts.
type ContactStatus string

// Contact statuses.
const (
	ContactActive       ContactStatus = "active"
	ContactUnsubscribed ContactStatus = "unsubscribed"
	ContactBounced      ContactStatus = "bounced"
	ContactComplained   ContactStatus = "complained"
)

// Valid reports whether s is one of the known statuses.
func (s ContactStatus) Valid() bool {
	switch s {
	case ContactActive, ContactUnsubscribed, ContactBounced, ContactComplained:
		return true
	}
	return false
}

// Suppressed reports whether a contact in this status must never be mailed.
func (s ContactStatus) Suppressed() bool { return s != ContactActive }

// Limits on contact fields. They keep one row from bloating every query and
// every rendered message.
const (
	MaxEmailLength     = 254 // RFC 5321 path limit
	MaxNameLength      = 200
	MaxAttributes      = 100
	MaxAttributeKey    = 64
	MaxAttributeString = 2000
	MaxTags            = 100
	MaxTagLength       = 100
)

// Contact is a person who may receive campaigns.
type Contact struct {
	ID         int64         `json:"id"`
	Email      string        `json:"email"`
	FirstName  string        `json:"first_name"`
	LastName   string        `json:"last_name"`
	Attributes Attributes    `json:"attributes"`
	Tags       []string      `json:"tags"`
	Status     ContactStatus `json:"status"`
	// ConsentSource says where the contact agreed to be mailed (a form, an
	// import, an API client); ConsentAt says when. Both may be empty.
	ConsentSource string     `json:"consent_source"`
	ConsentAt     *time.Time `json:"consent_at"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
}

// FullName joins the first and last name, leaving out empty parts.
func (c *Contact) FullName() string {
	return strings.TrimSpace(c.FirstName + " " + c.LastName)
}

// Normalize puts a contact into its canonical form before validation and
// storage: a trimmed, lower-cased email, trimmed names, normalized tags, the
// active status when none is given, and a non-nil attribute map.
func (c *Contact) Normalize() {
	c.Email = NormalizeEmail(c.Email)
	c.FirstName = strings.TrimSpace(c.FirstName)
	c.LastName = strings.TrimSpace(c.LastName)
	c.ConsentSource = strings.TrimSpace(c.ConsentSource)
	c.Tags = NormalizeTags(c.Tags)
	if c.Status == "" {
		c.Status = ContactActive
	}
	if c.Attributes == nil {
		c.Attributes = Attributes{}
	}
}

// Validate checks a normalized contact and returns an EINVALID *Error that
// names every invalid field.
func (c *Contact) Validate() error {
	var details []FieldError
	add := func(field, format string, args ...any) {
		details = append(details, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	if err := ValidateEmail(c.Email); err != nil {
		add("email", "%s", err.Error())
	}
	if utf8.RuneCountInString(c.FirstName) > MaxNameLength {
		add("first_name", "longer than %d characters", MaxNameLength)
	}
	if utf8.RuneCountInString(c.LastName) > MaxNameLength {
		add("last_name", "longer than %d characters", MaxNameLength)
	}
	if !c.Status.Valid() {
		add("status", "%q is not one of active, unsubscribed, bounced, complained", c.Status)
	}
	if utf8.RuneCountInString(c.ConsentSource) > MaxNameLength {
		add("consent_source", "longer than %d characters", MaxNameLength)
	}
	if len(c.Tags) > MaxTags {
		add("tags", "more than %d tags", MaxTags)
	}
	for i, t := range c.Tags {
		if utf8.RuneCountInString(t) > MaxTagLength {
			add(fmt.Sprintf("tags[%d]", i), "longer than %d characters", MaxTagLength)
		}
	}
	details = append(details, c.Attributes.validate()...)
	if len(details) > 0 {
		return Invalid("invalid contact", details...)
	}
	return nil
}

// NormalizeEmail trims and lower-cases an address. Funnel treats addresses
// case-insensitively, as every mailbox provider in practice does.
func NormalizeEmail(s string) string {
	return strings.ToLower(strings.TrimSpace(s))
}

// ValidateEmail reports why s is not a plain, normalized mailbox address
// such as "ana@example.com". Display names, comments and quoted local parts
// are refused: they have no place in a contact list and are a common way to
// smuggle text into headers.
func ValidateEmail(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("is empty")
	case len(s) > MaxEmailLength:
		return fmt.Errorf("longer than %d characters", MaxEmailLength)
	case !utf8.ValidString(s):
		return fmt.Errorf("is not valid UTF-8")
	case strings.ContainsAny(s, " \t\r\n<>\"(),;:[]\\"):
		return fmt.Errorf("%q contains a character not allowed in an address", s)
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return fmt.Errorf("%q is not an address of the form name@domain", s)
	}
	domain := s[at+1:]
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") {
		return fmt.Errorf("%q has an invalid domain", s)
	}
	if a, err := mail.ParseAddress(s); err != nil || a.Address != s {
		return fmt.Errorf("%q is not a valid address", s)
	}
	return nil
}

// NormalizeTags trims and lower-cases tags, drops empty ones and
// duplicates, and sorts them, so that "VIP" and " vip" are one tag.
func NormalizeTags(tags []string) []string {
	out := make([]string, 0, len(tags))
	for _, t := range tags {
		t = strings.ToLower(strings.TrimSpace(t))
		if t != "" {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Attributes are a contact's custom fields. Values are strings, numbers
// (float64) or booleans; nested objects and arrays are refused so that every
// attribute can be compared in a segment rule.
type Attributes map[string]any

func (a Attributes) validate() []FieldError {
	var details []FieldError
	if len(a) > MaxAttributes {
		return []FieldError{{Field: "attributes", Message: fmt.Sprintf("more than %d attributes", MaxAttributes)}}
	}
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		field := "attributes." + k
		if msg := validAttributeKey(k); msg != "" {
			details = append(details, FieldError{Field: field, Message: msg})
			continue
		}
		switch v := a[k].(type) {
		case string:
			if utf8.RuneCountInString(v) > MaxAttributeString {
				details = append(details, FieldError{Field: field, Message: fmt.Sprintf("longer than %d characters", MaxAttributeString)})
			}
		case float64:
			if math.IsNaN(v) || math.IsInf(v, 0) {
				details = append(details, FieldError{Field: field, Message: "is not a finite number"})
			}
		case bool:
		default:
			details = append(details, FieldError{Field: field, Message: "must be a string, a number or a boolean"})
		}
	}
	return details
}

// ValidAttributeKey reports whether k can name an attribute: 1 to 64
// letters, digits, '_' or '-', starting with a letter or '_'. The
// restriction keeps keys usable in segment rules, templates and SQL JSON
// paths without quoting.
func ValidAttributeKey(k string) bool { return validAttributeKey(k) == "" }

func validAttributeKey(k string) string {
	if k == "" || len(k) > MaxAttributeKey {
		return fmt.Sprintf("attribute names must be 1 to %d characters", MaxAttributeKey)
	}
	for i, r := range k {
		letter := r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
		if letter || (i > 0 && (r == '-' || (r >= '0' && r <= '9'))) {
			continue
		}
		return fmt.Sprintf("attribute name %q may only hold letters, digits, '_' and '-', and must start with a letter or '_'", k)
	}
	return ""
}

// ContactFilter selects contacts in a list. Zero fields do not filter.
type ContactFilter struct {
	EmailPrefix string
	Tag         string
	Status      ContactStatus
	// Sort is the order: by "id" (the default) or "email".
	Sort Sort
	// After is the keyset cursor: the ID of the last contact of the
	// previous page (0 for the first page), and AfterValue its sort key's
	// value when the sort is not by ID. Only contacts after it are listed.
	After      int64
	AfterValue any
	Limit      int
}

// ContactPatch is a partial update; nil fields are left as they are.
// Attributes are merged key by key, and a key set to nil is removed.
type ContactPatch struct {
	Email         *string        `json:"email"`
	FirstName     *string        `json:"first_name"`
	LastName      *string        `json:"last_name"`
	Attributes    map[string]any `json:"attributes"`
	Tags          *[]string      `json:"tags"`
	Status        *ContactStatus `json:"status"`
	ConsentSource *string        `json:"consent_source"`
	ConsentAt     **time.Time    `json:"consent_at"`
}

// Apply applies the patch to c, then normalizes it. The caller validates.
func (p *ContactPatch) Apply(c *Contact) {
	if p.Email != nil {
		c.Email = *p.Email
	}
	if p.FirstName != nil {
		c.FirstName = *p.FirstName
	}
	if p.LastName != nil {
		c.LastName = *p.LastName
	}
	if p.Tags != nil {
		c.Tags = *p.Tags
	}
	if p.Status != nil {
		c.Status = *p.Status
	}
	if p.ConsentSource != nil {
		c.ConsentSource = *p.ConsentSource
	}
	if p.ConsentAt != nil {
		c.ConsentAt = *p.ConsentAt
	}
	if p.Attributes != nil && c.Attributes == nil {
		c.Attributes = Attributes{}
	}
	for k, v := range p.Attributes {
		if v == nil {
			delete(c.Attributes, k)
		} else {
			c.Attributes[k] = v
		}
	}
	c.Normalize()
}
