package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/funnel-email/funnel/campaign"
)

// statusOf maps domain error codes to HTTP statuses: the one table where
// the domain meets HTTP.
var statusOf = map[string]int{
	campaign.EMALFORMED: http.StatusBadRequest,
	campaign.EINVALID:   http.StatusUnprocessableEntity,
	campaign.ENOTFOUND:  http.StatusNotFound,
	campaign.ECONFLICT:  http.StatusConflict,
	campaign.EFORBIDDEN: http.StatusForbidden,
	campaign.EUNAUTH:    http.StatusUnauthorized,
	campaign.ETOOLARGE:  http.StatusRequestEntityTooLarge,
	campaign.EINTERNAL:  http.StatusInternalServerError,
	campaign.ESTALE:     http.StatusPreconditionFailed,
}

// errorBody is the one error shape of the API.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string                `json:"code"`
	Message string                `json:"message"`
	Details []campaign.FieldError `json:"details,omitempty"`
}

// writeError answers with err's status and message. Internal errors are
// logged here, once, and their text never reaches the client.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := campaign.ErrorCode(err)
	status := statusOf[code]
	body := errorBody{Error: errorDetail{Code: code, Message: campaign.ErrorMessage(err)}}
	var e *campaign.Error
	if errors.As(err, &e) {
		body.Error.Details = e.Details
	}
	if status == http.StatusInternalServerError {
		a.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// decodeJSON reads a JSON object of at most a.maxBody bytes into v,
// refusing unknown fields and trailing data, with errors that say where
// the body is wrong. A body that cannot be read as JSON is malformed
// (400); one that reads but does not fit v is invalid (422).
func (a *API) decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return campaign.Errorf(campaign.EMALFORMED, "Content-Type must be application/json, not %q", ct)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.maxBody))
	if err != nil {
		return bodyError(err, a.maxBody)
	}
	if hasNULEscape(body) {
		// PostgreSQL cannot store U+0000 in text; no field may hold it.
		return campaign.Errorf(campaign.EMALFORMED, "request body contains the NUL character (\\u0000), which no field may hold")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyError(err, a.maxBody)
	}
	if _, err := dec.Token(); err != io.EOF {
		return campaign.Errorf(campaign.EMALFORMED, "request body must hold one JSON value and nothing after it")
	}
	return nil
}

// hasNULEscape reports whether JSON text holds the escape \u0000 (an
// escaped backslash followed by "u0000" is not one). A raw NUL byte is
// not valid JSON and fails decoding anyway.
func hasNULEscape(b []byte) bool {
	for i := bytes.Index(b, []byte("u0000")); i >= 0; {
		slashes := 0
		for j := i - 1; j >= 0 && b[j] == '\\'; j-- {
			slashes++
		}
		if slashes%2 == 1 {
			return true
		}
		next := bytes.Index(b[i+1:], []byte("u0000"))
		if next < 0 {
			break
		}
		i += 1 + next
	}
	return false
}

// bodyError turns a json decoding error into a domain error that says what
// and where.
func bodyError(err error, limit int64) error {
	var (
		domain   *campaign.Error
		syntax   *json.SyntaxError
		typeErr  *json.UnmarshalTypeError
		tooLarge *http.MaxBytesError
	)
	switch {
	case errors.As(err, &domain):
		return domain // a domain type's UnmarshalJSON already says what and where
	case errors.As(err, &tooLarge):
		return campaign.Errorf(campaign.ETOOLARGE, "request body is larger than %d bytes", limit)
	case errors.Is(err, io.EOF):
		return campaign.Errorf(campaign.EMALFORMED, "request body is empty; a JSON object is required")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return campaign.Errorf(campaign.EMALFORMED, "request body ends in the middle of a JSON value")
	case errors.As(err, &syntax):
		return campaign.Errorf(campaign.EMALFORMED, "request body is not valid JSON at byte %d: %v", syntax.Offset, err)
	case errors.As(err, &typeErr):
		return campaign.Invalid("request body has a value of the wrong type",
			campaign.FieldError{Field: typeErr.Field, Message: fmt.Sprintf("must be %s, not %s", typeErr.Type, typeErr.Value)})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return campaign.Invalid("request body has an unknown field", campaign.FieldError{Field: field, Message: "is not a known field"})
	default:
		return campaign.Errorf(campaign.EINVALID, "request body is invalid: %v", err)
	}
}
