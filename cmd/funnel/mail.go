package main

import (
	"fmt"
	"net/url"
	"os"

	"github.com/funnel-email/funnel/mailer"
	"github.com/funnel-email/funnel/templates"
	"github.com/funnel-email/funnel/token"
)

// newTemplateMail builds what the admin's template routes need: the
// template engine's options, the message composer with the DKIM keys, and
// a sender for test sends when an SMTP server is configured. The
// configuration was validated.
func newTemplateMail(cfg Config) (*mailer.TemplateMail, error) {
	var previous [][]byte
	for _, s := range cfg.previousSecrets() {
		previous = append(previous, []byte(s))
	}
	codec, err := token.NewCodec([]byte(cfg.Secret), previous...)
	if err != nil {
		return nil, fmt.Errorf("FUNNEL_SECRET: %w", err)
	}
	bounceDomain := cfg.BounceDomain
	if bounceDomain == "" {
		u, _ := url.Parse(cfg.PublicURL)
		bounceDomain = u.Hostname()
	}
	if bounceDomain == "localhost" || bounceDomain == "127.0.0.1" || bounceDomain == "" {
		bounceDomain = "bounces.localhost.localdomain" // funnel dev: nothing leaves the machine
	}
	specs, _ := cfg.dkimKeySpecs()
	var keys []mailer.DKIMKey
	for _, s := range specs {
		pem, err := os.ReadFile(s.path)
		if err != nil {
			return nil, fmt.Errorf("FUNNEL_DKIM_KEYS: %w", err)
		}
		k, err := mailer.ParseDKIMKey(s.domain, s.selector, pem)
		if err != nil {
			return nil, fmt.Errorf("FUNNEL_DKIM_KEYS: key for %s: %w", s.domain, err)
		}
		keys = append(keys, k)
	}
	composer, err := mailer.NewComposer(mailer.ComposerConfig{BounceDomain: bounceDomain, DKIM: keys}, codec)
	if err != nil {
		return nil, fmt.Errorf("FUNNEL_BOUNCE_DOMAIN: %w", err)
	}
	m := &mailer.TemplateMail{Options: templates.Options{PublicURL: cfg.PublicURL, Codec: codec}, Composer: composer}
	if cfg.SMTPURL != "" {
		smtpCfg, err := mailer.ParseSMTPURL(cfg.SMTPURL)
		if err != nil {
			return nil, fmt.Errorf("FUNNEL_SMTP_URL: %w", err)
		}
		if m.Sender, err = mailer.NewSender(smtpCfg); err != nil {
			return nil, fmt.Errorf("FUNNEL_SMTP_URL: %w", err)
		}
	}
	return m, nil
}
