package ui

import "net/http"

// The settings pages show what the environment configures (SMTP servers,
// DKIM keys): package admin holds it and hands it over as the body of
// its API answer, so that the page and the API show the same thing.

// SMTP shows the SMTP servers, each with a button that checks its
// connection; servers is the body of GET /api/v1/smtp-servers.
func (p *Pages) SMTP(w http.ResponseWriter, r *http.Request, servers any) {
	p.render(w, r, http.StatusOK, "smtp", "SMTP servers", "settings", servers)
}

// Domains shows the sending domains with the DNS records to publish;
// domains is the body of GET /api/v1/sending-domains.
func (p *Pages) Domains(w http.ResponseWriter, r *http.Request, domains any) {
	p.render(w, r, http.StatusOK, "domains", "Sending domains", "settings", domains)
}
