package admin

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
)

// DKIMKey is a DKIM signing key of the environment (FUNNEL_DKIM_KEYS):
// mail whose From domain is Domain, or a subdomain of it, is signed with
// it, and receivers find its public half in DNS at
// {Selector}._domainkey.{Domain}.
type DKIMKey struct {
	Domain   string
	Selector string
	// PublicKey is the public half of the private key: *rsa.PublicKey or
	// ed25519.PublicKey.
	PublicKey crypto.PublicKey
}

// dnsRecord is a DNS record to publish.
type dnsRecord struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Value string `json:"value"`
	// Zone is the record as a zone-file line, its value cut into quoted
	// strings of at most 255 bytes as DNS requires of a TXT record.
	Zone string `json:"zone"`
	// Note says what to adapt, when the record cannot be exact.
	Note string `json:"note,omitempty"`
}

// domainDKIM says how mail from a domain is DKIM-signed.
type domainDKIM struct {
	Configured bool `json:"configured"`
	// SigningDomain is the signatures' d=: the domain itself, or the
	// parent domain whose key covers it.
	SigningDomain string `json:"signing_domain,omitempty"`
	Selector      string `json:"selector,omitempty"`
	// Algorithm is rsa or ed25519; Bits the key's size.
	Algorithm string     `json:"algorithm,omitempty"`
	Bits      int        `json:"bits,omitempty"`
	Record    *dnsRecord `json:"record,omitempty"`
}

// sendingDomain is one domain that mail is sent from.
type sendingDomain struct {
	Domain string `json:"domain"`
	// Sender is true when the sender setting's From address is on the
	// domain; Campaigns counts the campaigns whose From address is.
	Sender    bool       `json:"sender"`
	Campaigns int64      `json:"campaigns"`
	Addresses []string   `json:"addresses"`
	DKIM      domainDKIM `json:"dkim"`
	// SPF is checked against the envelope sender, on the bounce domain;
	// SPFAligned says whether that domain aligns with this one for DMARC
	// (same organizational domain).
	SPF        dnsRecord `json:"spf"`
	SPFAligned bool      `json:"spf_aligned"`
	DMARC      dnsRecord `json:"dmarc"`
	Warnings   []string  `json:"warnings"`
}

// sendingDomainList is the body of GET /api/v1/sending-domains.
type sendingDomainList struct {
	BounceDomain string          `json:"bounce_domain"`
	Domains      []sendingDomain `json:"domains"`
}

// listSendingDomains answers GET /api/v1/sending-domains.
func (a *API) listSendingDomains(w http.ResponseWriter, r *http.Request) {
	list, err := a.sendingDomains(r.Context())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

// domainsPage shows the sending domains with the records to publish.
func (a *API) domainsPage(w http.ResponseWriter, r *http.Request) {
	list, err := a.sendingDomains(r.Context())
	if err != nil {
		a.log.ErrorContext(r.Context(), "sending domains page", "err", err)
		a.pageError(w, r, 0, "Could not list the sending domains; it has been logged.")
		return
	}
	a.pages.Domains(w, r, list)
}

// sendingDomains lists every domain mail is sent from: the sender
// setting's From domain, the campaigns' From domains and the domains of
// the DKIM keys, in order. Nothing is looked up in DNS: the records are
// what to publish, derived from the configuration.
func (a *API) sendingDomains(ctx context.Context) (sendingDomainList, error) {
	byName := map[string]*sendingDomain{}
	get := func(domain string) *sendingDomain {
		domain = strings.ToLower(strings.TrimSuffix(domain, "."))
		if byName[domain] == nil {
			byName[domain] = &sendingDomain{Domain: domain, Addresses: []string{}, Warnings: []string{}}
		}
		return byName[domain]
	}
	addAddress := func(d *sendingDomain, email string) {
		if !slices.Contains(d.Addresses, email) {
			d.Addresses = append(d.Addresses, email)
		}
	}
	sender, err := a.db.Sender(ctx)
	if err != nil {
		return sendingDomainList{}, err
	}
	if at := strings.LastIndexByte(sender.FromEmail, '@'); at >= 0 {
		d := get(sender.FromEmail[at+1:])
		d.Sender = true
		addAddress(d, strings.ToLower(sender.FromEmail))
	}
	froms, err := a.db.CampaignFromAddresses(ctx)
	if err != nil {
		return sendingDomainList{}, err
	}
	for _, f := range froms {
		if at := strings.LastIndexByte(f.Email, '@'); at >= 0 {
			d := get(f.Email[at+1:])
			d.Campaigns += f.Campaigns
			addAddress(d, f.Email)
		}
	}
	for _, k := range a.sending.DKIM {
		get(k.Domain)
	}
	spf := a.spfRecord()
	out := sendingDomainList{BounceDomain: a.sending.BounceDomain, Domains: make([]sendingDomain, 0, len(byName))}
	for _, d := range byName {
		slices.Sort(d.Addresses)
		a.describeDomain(d, spf)
		out.Domains = append(out.Domains, *d)
	}
	slices.SortFunc(out.Domains, func(x, y sendingDomain) int { return strings.Compare(x.Domain, y.Domain) })
	return out, nil
}

// describeDomain fills in d's DKIM status, records and warnings.
func (a *API) describeDomain(d *sendingDomain, spf dnsRecord) {
	warn := func(format string, args ...any) { d.Warnings = append(d.Warnings, fmt.Sprintf(format, args...)) }
	if k := a.dkimKeyFor(d.Domain); k != nil {
		d.DKIM = domainDKIM{Configured: true, SigningDomain: strings.ToLower(k.Domain), Selector: k.Selector}
		alg, bits, p, err := dkimPublicKey(k.PublicKey)
		if err != nil {
			warn("The DKIM key of %s cannot be published: %v.", k.Domain, err)
		} else {
			d.DKIM.Algorithm, d.DKIM.Bits = alg, bits
			rec := txtRecord(k.Selector+"._domainkey."+d.DKIM.SigningDomain, "v=DKIM1; k="+alg+"; p="+p)
			d.DKIM.Record = &rec
			switch {
			case alg == "rsa" && bits < 2048:
				warn("The DKIM key has %d bits: use a 2048-bit RSA key, as receivers distrust shorter ones.", bits)
			case alg == "ed25519":
				warn("Not every receiver verifies Ed25519 signatures yet (RFC 8463), and a domain signs with one key: a 2048-bit RSA key is the safer choice.")
			}
		}
	} else {
		warn("No DKIM key signs mail from %s. Gmail and Yahoo require DKIM (with SPF and DMARC) of bulk senders, "+
			"and Microsoft rejects unauthenticated bulk mail: add %s:SELECTOR:/path/to/key.pem to FUNNEL_DKIM_KEYS and publish its record.", d.Domain, d.Domain)
	}
	d.SPF = spf
	d.SPFAligned = a.sending.BounceDomain != "" && orgDomain(a.sending.BounceDomain) == orgDomain(d.Domain)
	switch {
	case !d.SPFAligned && !d.DKIM.Configured:
		warn("Neither DKIM nor SPF aligns with %s (bounces go to %s): DMARC fails for its mail, which receivers junk or reject.", d.Domain, a.sending.BounceDomain)
	case !d.SPFAligned:
		warn("Bounces go to %s, which is not under %s: SPF does not align with the From domain, so DMARC rests on DKIM alone. "+
			"A FUNNEL_BOUNCE_DOMAIN under %s (such as bounces.%s) aligns both.", a.sending.BounceDomain, orgDomain(d.Domain), orgDomain(d.Domain), orgDomain(d.Domain))
	}
	d.DMARC = txtRecord("_dmarc."+d.Domain, "v=DMARC1; p=none; rua=mailto:dmarc-reports@"+orgDomain(d.Domain))
	d.DMARC.Note = "Start with p=none and read the aggregate reports (rua: use a mailbox you read); move to p=quarantine, then p=reject, " +
		"once the reports show all of your own mail passing. Gmail, Yahoo and Microsoft require a DMARC record of bulk senders; p=none is enough."
	if org := orgDomain(d.Domain); org != d.Domain {
		d.DMARC.Note += " A record at _dmarc." + org + " also covers " + d.Domain + "."
	}
}

// dkimKeyFor returns the key that signs mail from domain: its own or its
// closest parent's, as the mailer chooses.
func (a *API) dkimKeyFor(domain string) *DKIMKey {
	for d := domain; d != ""; {
		for i := range a.sending.DKIM {
			if strings.EqualFold(a.sending.DKIM[i].Domain, d) {
				return &a.sending.DKIM[i]
			}
		}
		_, d, _ = strings.Cut(d, ".")
	}
	return nil
}

// dkimPublicKey returns the k= and p= values of a DKIM key record (RFC
// 6376: p= is the DER SubjectPublicKeyInfo of an RSA key; RFC 8463: the
// raw 32 bytes of an Ed25519 key), base64-encoded.
func dkimPublicKey(pub crypto.PublicKey) (alg string, bits int, p string, err error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			return "", 0, "", err
		}
		return "rsa", k.N.BitLen(), base64.StdEncoding.EncodeToString(der), nil
	case ed25519.PublicKey:
		return "ed25519", 256, base64.StdEncoding.EncodeToString(k), nil
	}
	return "", 0, "", fmt.Errorf("unsupported key type %T", pub)
}

// knownRelays maps the SMTP hosts of common providers to the SPF include
// they document: their relays send from addresses other than the
// submission host's.
var knownRelays = []struct{ suffix, include string }{
	{".amazonaws.com", "amazonses.com"},
	{"smtp.sendgrid.net", "sendgrid.net"},
	{".mailgun.org", "mailgun.org"},
	{".postmarkapp.com", "spf.mtasv.net"},
	{"smtp.gmail.com", "_spf.google.com"},
	{"smtp-relay.gmail.com", "_spf.google.com"},
	{"smtp.office365.com", "spf.protection.outlook.com"},
}

// spfRecord is the SPF record to publish on the bounce domain: the
// envelope sender of every message is bounces+...@BounceDomain, and that
// is the domain SPF checks. It authorizes the SMTP servers' public
// addresses (or their provider's include); local servers are left out.
func (a *API) spfRecord() dnsRecord {
	var terms []string
	add := func(t string) {
		if !slices.Contains(terms, t) {
			terms = append(terms, t)
		}
	}
	for _, s := range a.sending.SMTP {
		host := strings.ToLower(s.Host)
		if ip := net.ParseIP(host); ip != nil {
			if ip.IsLoopback() || ip.IsPrivate() || ip.IsUnspecified() || ip.IsLinkLocalUnicast() {
				continue
			}
			if ip.To4() != nil {
				add("ip4:" + ip.String())
			} else {
				add("ip6:" + ip.String())
			}
			continue
		}
		if host == "localhost" || strings.HasSuffix(host, ".localhost") || !strings.Contains(host, ".") {
			continue
		}
		include := ""
		for _, k := range knownRelays {
			if host == strings.TrimPrefix(k.suffix, ".") || strings.HasSuffix(host, k.suffix) {
				include = k.include
				break
			}
		}
		if include != "" {
			add("include:" + include)
		} else {
			add("a:" + host)
		}
	}
	domain := a.sending.BounceDomain
	if len(terms) == 0 {
		rec := txtRecord(domain, "v=spf1 include:YOUR-RELAY-SPF-DOMAIN ~all")
		rec.Note = "No SMTP server here has a public address (a local relay, or funnel dev's catcher): " +
			"replace the include with the addresses or the include: of the servers that deliver your mail."
		return rec
	}
	rec := txtRecord(domain, "v=spf1 "+strings.Join(terms, " ")+" ~all")
	rec.Note = "Authorizes the SMTP servers of FUNNEL_SMTP_URL (a: the address of a server's name). " +
		"If a provider relays your mail from other addresses, use the include: it documents. " +
		"Some providers rewrite the envelope sender to their own domain unless told otherwise; SPF then aligns only if you set a custom MAIL FROM domain with them."
	return rec
}

// txtRecord returns a TXT record with its zone-file line.
func txtRecord(name, value string) dnsRecord {
	var parts []string
	for v := value; v != ""; {
		n := min(len(v), 255)
		parts = append(parts, `"`+v[:n]+`"`)
		v = v[n:]
	}
	return dnsRecord{Name: name, Type: "TXT", Value: value, Zone: name + ". 3600 IN TXT " + strings.Join(parts, " ")}
}

// orgDomain approximates the organizational domain of RFC 7489 (the
// registered domain) without the public suffix list: the last two
// labels, or three under a country's common second-level suffix
// (example.co.uk). DMARC's relaxed alignment compares these.
func orgDomain(domain string) string {
	labels := strings.Split(strings.ToLower(strings.TrimSuffix(domain, ".")), ".")
	n := 2
	if len(labels) >= 3 && len(labels[len(labels)-1]) == 2 &&
		slices.Contains([]string{"co", "com", "net", "org", "gov", "ac", "edu", "ne", "or"}, labels[len(labels)-2]) {
		n = 3
	}
	if len(labels) <= n {
		return strings.Join(labels, ".")
	}
	return strings.Join(labels[len(labels)-n:], ".")
}
