package admin

import (
	"crypto/subtle"
	"errors"
	"net/http"

	"github.com/funnel-email/funnel/admin/ui"
	"github.com/funnel-email/funnel/campaign"
)

// Password reset pages. An admin makes a one-time link
// (POST /api/v1/users/{id}/reset-link) and gives it to the user, who opens
// it without being signed in and sets a new password. An unknown, used or
// expired link gets one page and one status, so that the answer says
// nothing about which it was. The form is protected like the login form,
// with a double-submit CSRF cookie, since no session exists.

// resetCookie carries the double-submit CSRF token of the reset form.
const resetCookie = "funnel_reset"

// resetPage answers GET /reset/{token}.
func (a *API) resetPage(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	u, err := a.db.PasswordResetUser(r.Context(), token)
	if err != nil {
		a.resetFailed(w, r, err)
		return
	}
	a.renderReset(w, r, http.StatusOK, ui.ResetForm{Email: u.Email, Token: token})
}

// resetPassword answers POST /reset/{token}: it sets the password, uses up
// the link and ends the user's sessions.
func (a *API) resetPassword(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	token := r.PathValue("token")
	u, err := a.db.PasswordResetUser(r.Context(), token)
	if err != nil {
		a.resetFailed(w, r, err)
		return
	}
	form := ui.ResetForm{Email: u.Email, Token: token}
	c, err := r.Cookie(resetCookie)
	if err != nil || c.Value == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue("csrf"))) != 1 {
		form.Error = "The form expired. Please enter your new password again."
		a.renderReset(w, r, http.StatusBadRequest, form)
		return
	}
	password := r.PostFormValue("password")
	if password != r.PostFormValue("confirm") {
		form.ConfirmError = "The two passwords differ."
		a.renderReset(w, r, http.StatusUnprocessableEntity, form)
		return
	}
	if _, err := a.db.ResetPassword(r.Context(), token, password); err != nil {
		var e *campaign.Error
		if campaign.ErrorCode(err) == campaign.EINVALID && errors.As(err, &e) && len(e.Details) > 0 {
			form.PasswordError = "The password " + e.Details[0].Message + "."
			a.renderReset(w, r, http.StatusUnprocessableEntity, form)
			return
		}
		a.resetFailed(w, r, err)
		return
	}
	reset := a.cookie(r, resetCookie, "", -1)
	reset.Path = "/reset/"
	http.SetCookie(w, reset)
	http.SetCookie(w, a.cookie(r, sessionCookie, "", -1))
	a.pages.Reset(w, r, http.StatusOK, ui.ResetForm{Done: true})
}

// renderReset shows the form with a fresh CSRF cookie.
func (a *API) renderReset(w http.ResponseWriter, r *http.Request, status int, form ui.ResetForm) {
	token, err := randomToken()
	if err != nil {
		a.pageError(w, r, http.StatusInternalServerError, "could not start a password reset")
		return
	}
	c := a.cookie(r, resetCookie, token, resetLinkTTL)
	c.Path = "/reset/"
	http.SetCookie(w, c)
	form.CSRF = token
	a.pages.Reset(w, r, status, form)
}

// resetFailed shows the one page for a link that cannot be used, or an
// error page for a fault (logged).
func (a *API) resetFailed(w http.ResponseWriter, r *http.Request, err error) {
	if campaign.ErrorCode(err) == campaign.ENOTFOUND {
		a.pages.Reset(w, r, http.StatusNotFound, ui.ResetForm{Invalid: true})
		return
	}
	a.log.ErrorContext(r.Context(), "password reset", "err", err)
	a.pageError(w, r, http.StatusInternalServerError, "could not reset the password")
}
