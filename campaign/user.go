package campaign

import (
	"fmt"
	"strings"
	"time"
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
}

// Validate normalizes the email and name and returns an EINVALID error
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
