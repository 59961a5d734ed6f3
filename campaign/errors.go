package campaign

import (
	"errors"
	"fmt"
)

// Error codes. Adapters map them to protocol statuses in one place each
// (admin maps them to HTTP statuses).
const (
	ECONFLICT  = "conflict"     // the resource's state forbids the action
	EINTERNAL  = "internal"     // a fault of Funnel or its infrastructure
	EINVALID   = "invalid"      // the input breaks a rule
	EMALFORMED = "malformed"    // the request cannot be read (not JSON, a NUL character, a number that is not one)
	ENOTFOUND  = "not_found"    // the resource does not exist
	EFORBIDDEN = "forbidden"    // the caller may not do this
	EUNAUTH    = "unauthorized" // the caller did not prove who it is
	ETOOLARGE  = "too_large"    // the input exceeds a size limit
	// ESTALE: the resource changed since the version the caller named
	// (HTTP If-Match), so the change was not made.
	ESTALE = "stale"
)

// Error is a domain error: a code that says what kind of failure it is, a
// message meant for the user, and optional details (for example one entry
// per invalid field).
type Error struct {
	Code    string
	Message string
	Details []FieldError
}

// FieldError points at one problem inside an input: a field or JSON path,
// and for text inputs a line and column (1-based, 0 when not known).
type FieldError struct {
	Field   string `json:"field,omitempty"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	if len(e.Details) == 0 {
		return e.Message
	}
	d := e.Details[0]
	where := d.Field
	if d.Line > 0 {
		where = fmt.Sprintf("%s line %d column %d", where, d.Line, d.Column)
	}
	if where == "" {
		return fmt.Sprintf("%s: %s", e.Message, d.Message)
	}
	return fmt.Sprintf("%s: %s: %s", e.Message, where, d.Message)
}

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns an EINVALID error that lists the given field problems.
func Invalid(message string, details ...FieldError) *Error {
	return &Error{Code: EINVALID, Message: message, Details: details}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	default:
		return EINTERNAL
	}
}

// ErrorMessage returns the user-facing message of the first *Error in err's
// chain, and a generic text for other errors so that internal details
// (SQL, addresses, secrets) never reach a client.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
