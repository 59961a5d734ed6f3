package admin

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/funnel-email/funnel/campaign"
)

// Sending is how this process sends mail, as configured in its
// environment: the SMTP servers (FUNNEL_SMTP_URL), the DKIM keys
// (FUNNEL_DKIM_KEYS) and the bounce domain (FUNNEL_BOUNCE_DOMAIN).
//
// They are configured in the environment, not in the database, so that
// SMTP passwords and DKIM private keys stay out of the database (and out
// of its backups and of the API); the admin pages show them, without
// their secrets, and check them.
type Sending struct {
	// SMTP lists the servers in the order of FUNNEL_SMTP_URL.
	SMTP []SMTPServer
	// CheckSMTP connects to SMTP[i] (0 <= i < len(SMTP)) and reports what
	// it found; it sends no mail. Required when SMTP is not empty.
	CheckSMTP func(ctx context.Context, i int) SMTPCheck
	// DKIM holds the signing keys, one per domain.
	DKIM []DKIMKey
	// BounceDomain is the domain of the VERP envelope senders, which SPF
	// is checked against.
	BounceDomain string
}

// pools lists the pools the servers are in, in order, without repeats.
func (s Sending) pools() []string {
	var out []string
	for _, srv := range s.SMTP {
		if srv.Pool != "" && !slices.Contains(out, srv.Pool) {
			out = append(out, srv.Pool)
		}
	}
	return out
}

// SMTPServer is one SMTP server mail is sent through: everything its URL
// says but the password.
type SMTPServer struct {
	// Index is the server's position in the list (from 0), as
	// POST /api/v1/smtp-servers/{index}/check takes it.
	Index int    `json:"index"`
	Host  string `json:"host"`
	Port  int    `json:"port"`
	// TLS is none, opportunistic or mandatory (STARTTLS), or implicit
	// (smtps).
	TLS string `json:"tls"`
	// Username is the AUTH user; empty when the server is used without
	// authentication.
	Username string `json:"username"`
	// Weight is the server's share of the messages.
	Weight int `json:"weight"`
	// MaxConns caps the connections a worker opens to it; 0 means one per
	// task the worker runs at once.
	MaxConns int `json:"max_conns"`
	// Rate caps messages per second across all workers; 0 is no limit.
	Rate float64 `json:"rate"`
	// Pool is the group a campaign can choose to send through (its
	// smtp_pool); empty when the server is in none.
	Pool string `json:"pool"`
	// Catcher marks funnel dev's in-process SMTP catcher, which keeps
	// every message for the outbox pages instead of delivering it.
	Catcher bool `json:"catcher"`
}

// SMTPCheck is what a connection check found.
type SMTPCheck struct {
	Index int  `json:"index"`
	OK    bool `json:"ok"`
	// Stage names the step that failed: dial, greeting, ehlo, starttls,
	// auth or quit.
	Stage string `json:"stage,omitempty"`
	// Error says why the step failed; Code is the server's reply code, 0
	// when it gave none.
	Error string `json:"error,omitempty"`
	Code  int    `json:"code,omitempty"`
	// Greeting is the server's 220 banner; Hello the first line of its
	// EHLO answer and Extensions the rest (after STARTTLS when used).
	Greeting   string   `json:"greeting"`
	Hello      string   `json:"hello"`
	Extensions []string `json:"extensions"`
	// TLS describes the encryption; empty on a plain connection.
	TLS string `json:"tls"`
	// Auth is the mechanism that authenticated; empty without AUTH.
	Auth string `json:"auth"`
	// LatencyMS runs from dialing to the answer to QUIT (or the failure).
	LatencyMS float64 `json:"latency_ms"`
	// CheckedAt is when the check ran.
	CheckedAt time.Time `json:"checked_at"`
}

// smtpCheckTimeout bounds a connection check, whatever the server's own
// timeout.
const smtpCheckTimeout = 15 * time.Second

// smtpServerList is the body of GET /api/v1/smtp-servers.
type smtpServerList struct {
	Servers []SMTPServer `json:"servers"`
}

// smtpServers returns the configured servers with their indexes.
func (a *API) smtpServers() []SMTPServer {
	out := make([]SMTPServer, len(a.sending.SMTP))
	for i, s := range a.sending.SMTP {
		s.Index = i
		out[i] = s
	}
	return out
}

func (a *API) listSMTPServers(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, smtpServerList{Servers: a.smtpServers()})
}

// checkSMTPServer answers POST /api/v1/smtp-servers/{index}/check. A
// server that cannot be reached or refuses us is a 200 with ok=false: the
// check worked, the server did not.
func (a *API) checkSMTPServer(w http.ResponseWriter, r *http.Request) {
	raw := r.PathValue("index")
	i, err := strconv.Atoi(raw)
	switch {
	case len(a.sending.SMTP) == 0 || a.sending.CheckSMTP == nil:
		a.writeError(w, r, campaign.Errorf(campaign.ENOTFOUND, "no SMTP server is configured (FUNNEL_SMTP_URL)"))
		return
	case err != nil || i < 0 || i >= len(a.sending.SMTP):
		a.writeError(w, r, campaign.Errorf(campaign.ENOTFOUND, "no SMTP server %q: the servers are numbered from 0 to %d", raw, len(a.sending.SMTP)-1))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), smtpCheckTimeout)
	defer cancel()
	res := a.sending.CheckSMTP(ctx, i)
	res.Index, res.CheckedAt = i, time.Now().UTC()
	if res.Extensions == nil {
		res.Extensions = []string{}
	}
	s := a.sending.SMTP[i]
	a.log.InfoContext(r.Context(), "smtp check", "server", fmt.Sprintf("%s:%d", s.Host, s.Port), "ok", res.OK,
		"stage", res.Stage, "error", res.Error, "latency_ms", res.LatencyMS)
	writeJSON(w, http.StatusOK, res)
}

// smtpPage shows the SMTP servers with a check button for each.
func (a *API) smtpPage(w http.ResponseWriter, r *http.Request) {
	a.pages.SMTP(w, r, smtpServerList{Servers: a.smtpServers()})
}
