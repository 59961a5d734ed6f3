package campaign

import (
	"errors"
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // time zones work on a machine without a zone database (a scratch container)
	"unicode/utf8"
)

// MinPasswordLength is the shortest password a user may set. Length is
// what makes a password strong; Funnel asks for nothing else.
const MinPasswordLength = 12

// User is a person who signs in to Funnel.
type User struct {
	ID         int64      `json:"id"`
	Email      string     `json:"email"`
	Name       string     `json:"name"`
	Role       Role       `json:"role"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	DisabledAt *time.Time `json:"disabled_at"`
	// TimeZone is the IANA name of the zone the web UI shows the user
	// times in, and in which it reads the times they type ("UTC" when
	// not set).
	TimeZone string `json:"time_zone"`
}

// Location returns the user's time zone, UTC when it cannot be loaded.
func (u *User) Location() *time.Location {
	loc, err := LoadTimeZone(u.TimeZone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// UserPatch changes a user; nil fields are kept.
type UserPatch struct {
	Name     *string `json:"name"`
	Role     *Role   `json:"role"`
	Disabled *bool   `json:"disabled"`
	TimeZone *string `json:"time_zone"`
}

// Apply sets the patch's fields on u. Disabling stamps now, unless u is
// disabled already; enabling clears the stamp. The caller validates u
// afterwards.
func (p UserPatch) Apply(u *User, now time.Time) {
	if p.Name != nil {
		u.Name = *p.Name
	}
	if p.Role != nil {
		u.Role = *p.Role
	}
	if p.TimeZone != nil {
		u.TimeZone = *p.TimeZone
	}
	switch {
	case p.Disabled == nil:
	case *p.Disabled && u.DisabledAt == nil:
		u.DisabledAt = &now
	case !*p.Disabled:
		u.DisabledAt = nil
	}
}

// Active reports whether u may sign in.
func (u *User) Active() bool { return u.DisabledAt == nil }

// Validate normalizes the email, name and time zone and returns an EINVALID error
// naming each bad field.
func (u *User) Validate() error {
	var details []FieldError
	u.Email = NormalizeEmail(u.Email)
	u.Name = strings.TrimSpace(u.Name)
	if err := ValidateEmail(u.Email); err != nil {
		details = append(details, FieldError{Field: "email", Message: err.Error()})
	}
	if utf8.RuneCountInString(u.Name) > MaxNameLength {
		details = append(details, FieldError{Field: "name", Message: fmt.Sprintf("longer than %d characters", MaxNameLength)})
	}
	if !u.Role.Valid() {
		details = append(details, FieldError{Field: "role", Message: fmt.Sprintf("%q is not one of admin, marketer, sales", u.Role)})
	}
	u.TimeZone = strings.TrimSpace(u.TimeZone)
	if u.TimeZone == "" {
		u.TimeZone = "UTC"
	}
	if _, err := LoadTimeZone(u.TimeZone); err != nil {
		details = append(details, FieldError{Field: "time_zone", Message: err.Error()})
	}
	if len(details) > 0 {
		return Invalid("invalid user", details...)
	}
	return nil
}

// ValidatePassword returns an EINVALID error when p is too short or too
// long to be hashed safely.
func ValidatePassword(p string) error {
	switch n := utf8.RuneCountInString(p); {
	case n < MinPasswordLength:
		return Invalid("invalid password", FieldError{Field: "password", Message: fmt.Sprintf("must be at least %d characters", MinPasswordLength)})
	case len(p) > 1024:
		return Invalid("invalid password", FieldError{Field: "password", Message: "must be at most 1024 bytes"})
	}
	return nil
}

// LoadTimeZone returns the zone with the given IANA name, such as
// "Europe/Berlin" or "UTC". "Local" is refused: it would mean whatever
// zone the server happens to run in.
func LoadTimeZone(name string) (*time.Location, error) {
	if name == "" || name == "Local" {
		return nil, fmt.Errorf("%q is not an IANA time zone name such as Europe/Berlin or UTC", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("%q is not an IANA time zone name such as Europe/Berlin or UTC", name)
	}
	return loc, nil
}

// localLayouts are the forms of a wall-clock time that ParseLocalTime
// reads: what an HTML datetime-local input sends, with or without seconds.
var localLayouts = []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02 15:04:05"}

// ParseLocalTime reads a date and wall-clock time without an offset, such
// as "2026-03-29T09:00", as a time in loc, with the offset the zone has at
// that date. A time that the zone skips (clocks moving forward) is
// EINVALID; a time that happens twice (clocks moving back) is its first
// occurrence. field names the input in errors.
func ParseLocalTime(s string, loc *time.Location, field string) (time.Time, error) {
	var wall time.Time
	err := errors.New("no layout")
	for _, layout := range localLayouts {
		if wall, err = time.Parse(layout, strings.TrimSpace(s)); err == nil {
			break
		}
	}
	if err != nil {
		return time.Time{}, Invalid("invalid local time", FieldError{Field: field,
			Message: fmt.Sprintf("%q is not a local date and time such as 2026-03-01T09:00", s)})
	}
	t := time.Date(wall.Year(), wall.Month(), wall.Day(), wall.Hour(), wall.Minute(), wall.Second(), 0, loc)
	if !sameWallClock(t.In(loc), wall) {
		return time.Time{}, Invalid("invalid local time", FieldError{Field: field,
			Message: fmt.Sprintf("%s does not exist in %s: the clocks skip it that day; choose another time", wall.Format("2006-01-02 15:04"), loc)})
	}
	// In a repeated hour time.Date may pick either occurrence.
	for _, back := range []time.Duration{2 * time.Hour, time.Hour, 30 * time.Minute} {
		if e := t.Add(-back); sameWallClock(e.In(loc), wall) {
			return e, nil
		}
	}
	return t, nil
}

func sameWallClock(t, wall time.Time) bool {
	y1, m1, d1 := t.Date()
	y2, m2, d2 := wall.Date()
	return y1 == y2 && m1 == m2 && d1 == d2 && t.Hour() == wall.Hour() && t.Minute() == wall.Minute() && t.Second() == wall.Second()
}
