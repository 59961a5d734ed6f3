package ui

import (
	"net/http"
)

// commonZones are offered as suggestions on the account page; any IANA
// name is accepted.
var commonZones = []string{"UTC", "Europe/London", "Europe/Dublin", "Europe/Lisbon", "Europe/Paris", "Europe/Berlin",
	"Europe/Madrid", "Europe/Rome", "Europe/Amsterdam", "Europe/Zurich", "Europe/Vienna", "Europe/Warsaw", "Europe/Stockholm",
	"Europe/Helsinki", "Europe/Athens", "Europe/Istanbul", "Europe/Moscow", "Africa/Lagos", "Africa/Johannesburg", "Africa/Cairo",
	"Asia/Dubai", "Asia/Kolkata", "Asia/Singapore", "Asia/Shanghai", "Asia/Hong_Kong", "Asia/Tokyo", "Asia/Seoul",
	"Australia/Perth", "Australia/Sydney", "Pacific/Auckland", "America/St_Johns", "America/Halifax", "America/New_York",
	"America/Toronto", "America/Chicago", "America/Mexico_City", "America/Denver", "America/Phoenix", "America/Los_Angeles",
	"America/Anchorage", "Pacific/Honolulu", "America/Sao_Paulo", "America/Buenos_Aires", "America/Bogota"}

// Account lets the signed-in user change their name, time zone and
// password; app.js sends the forms to PATCH /api/v1/me.
func (p *Pages) Account(w http.ResponseWriter, r *http.Request) {
	u, err := p.db.FindUser(r.Context(), viewerFrom(r.Context()).UserID)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	p.render(w, r, http.StatusOK, "account", "Your account", "account", map[string]any{"User": u, "Zones": commonZones})
}

// ResetForm is the state of the password reset page.
type ResetForm struct {
	// Invalid shows that the link cannot be used (unknown, used, expired:
	// one message for all) instead of the form.
	Invalid bool
	// Done shows that the password was set.
	Done bool
	// Email is the user whose password the link sets.
	Email, CSRF, Token          string
	Error                       string
	PasswordError, ConfirmError string
}

// Reset renders the public page where a user sets a new password with a
// one-time link.
func (p *Pages) Reset(w http.ResponseWriter, r *http.Request, status int, form ResetForm) {
	p.render(w, r, status, "reset", "Set a new password", "", form)
}
