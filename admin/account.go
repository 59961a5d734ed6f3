package admin

import (
	"net/http"
	"time"

	"github.com/funnel-email/funnel/campaign"
)

// The signed-in user's own account: name, time zone and password.

// mePatch is the body of PATCH /api/v1/me; absent fields are kept.
type mePatch struct {
	Name *string `json:"name"`
	// TimeZone is an IANA name such as Europe/Berlin: the web UI shows
	// times in it and reads typed times in it.
	TimeZone *string `json:"time_zone"`
	// Password is the new password (at least 12 characters); changing it
	// needs CurrentPassword and signs out the user's other sessions.
	Password        *string `json:"password"`
	CurrentPassword string  `json:"current_password,omitempty"`
}

// updateMe answers PATCH /api/v1/me with the updated user. Every field is
// checked before anything changes.
func (a *API) updateMe(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	if p.UserID == 0 {
		a.writeError(w, r, campaign.Errorf(campaign.EFORBIDDEN, "a bootstrap token belongs to no user and has no account: sign in as a user"))
		return
	}
	var in mePatch
	if err := a.decodeJSON(w, r, &in); err != nil {
		a.writeError(w, r, err)
		return
	}
	u, err := a.db.FindUser(r.Context(), p.UserID)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	profile := campaign.UserPatch{Name: in.Name, TimeZone: in.TimeZone}
	check := *u
	profile.Apply(&check, time.Now())
	if err := check.Validate(); err != nil {
		a.writeError(w, r, err)
		return
	}
	if in.Password == nil && in.CurrentPassword != "" {
		a.writeError(w, r, campaign.Invalid("invalid password change", campaign.FieldError{Field: "password", Message: "is required with current_password: it is the new password"}))
		return
	}
	if in.Password != nil {
		var keep int64
		if s := sessionFrom(r.Context()); s != nil {
			keep = s.ID
		}
		if err := a.db.ChangePassword(r.Context(), u.ID, in.CurrentPassword, *in.Password, keep); err != nil {
			a.writeError(w, r, err)
			return
		}
	}
	if in.Name != nil || in.TimeZone != nil {
		if u, err = a.db.UpdateUser(r.Context(), u.ID, profile); err != nil {
			a.writeError(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, u)
}

// localTime is the answer of GET /api/v1/me/local-time.
type localTime struct {
	// At is the wall-clock time asked about.
	At string `json:"at"`
	// TimeZone is the zone it was read in.
	TimeZone string `json:"time_zone"`
	// Time is At in RFC 3339 with the zone's offset on that date, as
	// POST /api/v1/campaigns/{id}/schedule takes it.
	Time string `json:"time"`
	// UTC is the same instant in UTC.
	UTC time.Time `json:"utc"`
}

// getLocalTime answers GET /api/v1/me/local-time?at=2026-03-29T09:00: the
// instant that a wall-clock time names in the caller's time zone (or
// ?time_zone=), with the offset right for that date. The web UI's schedule
// forms use it, so that daylight saving is the server's time zone
// database's business, not the browser's. A time the zone skips is 422.
func (a *API) getLocalTime(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	zone := q.Get("time_zone")
	if zone == "" {
		zone = "UTC"
		if p := principalFrom(r.Context()); p.UserID != 0 {
			u, err := a.db.FindUser(r.Context(), p.UserID)
			if err != nil {
				a.writeError(w, r, err)
				return
			}
			zone = u.TimeZone
		}
	}
	loc, err := campaign.LoadTimeZone(zone)
	if err != nil {
		a.writeError(w, r, campaign.Invalid("invalid query", campaign.FieldError{Field: "time_zone", Message: err.Error()}))
		return
	}
	if q.Get("at") == "" {
		a.writeError(w, r, campaign.Invalid("invalid query", campaign.FieldError{Field: "at", Message: "is required: a local date and time such as 2026-03-01T09:00"}))
		return
	}
	t, err := campaign.ParseLocalTime(q.Get("at"), loc, "at")
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, localTime{At: q.Get("at"), TimeZone: loc.String(), Time: t.Format(time.RFC3339), UTC: t.UTC()})
}
