package mailer

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-msgauth/dkim"
)

// SignedHeaders are the header fields every DKIM signature covers. From,
// Subject and the List-Unsubscribe pair are listed twice (oversigned) so
// that a copy added in transit breaks the signature instead of being
// shown; RFC 8058 requires List-Unsubscribe and List-Unsubscribe-Post to be
// signed.
var SignedHeaders = []string{
	"From", "From", "To", "Subject", "Subject", "Date", "Message-ID", "Reply-To",
	"MIME-Version", "Content-Type", "List-Unsubscribe", "List-Unsubscribe",
	"List-Unsubscribe-Post", "List-Unsubscribe-Post", "Feedback-ID",
	HeaderCampaign, HeaderDelivery,
}

// DKIMKey is the private key a domain signs with, published in DNS at
// {Selector}._domainkey.{Domain}.
type DKIMKey struct {
	Domain   string
	Selector string
	Signer   crypto.Signer // *rsa.PrivateKey or ed25519.PrivateKey
}

// ParseDKIMKey reads a PEM private key (PKCS#1 or PKCS#8 RSA of at least
// 1024 bits, or PKCS#8 Ed25519).
func ParseDKIMKey(domain, selector string, pemBytes []byte) (DKIMKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return DKIMKey{}, errors.New("dkim key: no PEM block")
	}
	var key any
	var err error
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		return DKIMKey{}, fmt.Errorf("dkim key: unsupported PEM block %q", block.Type)
	}
	if err != nil {
		return DKIMKey{}, fmt.Errorf("dkim key: %w", err)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < 1024 {
			return DKIMKey{}, errors.New("dkim key: RSA keys need at least 1024 bits")
		}
		return DKIMKey{Domain: domain, Selector: selector, Signer: k}, nil
	case ed25519.PrivateKey:
		return DKIMKey{Domain: domain, Selector: selector, Signer: k}, nil
	}
	return DKIMKey{}, fmt.Errorf("dkim key: unsupported key type %T", key)
}

// keyFor returns the key of domain or of its closest parent domain.
func (c *Composer) keyFor(domain string) *DKIMKey {
	d := strings.ToLower(domain)
	for {
		if k, ok := c.keys[d]; ok {
			return k
		}
		dot := strings.IndexByte(d, '.')
		if dot < 0 {
			return nil
		}
		d = d[dot+1:]
	}
}

// sign returns the DKIM-Signature header field, CRLF included, to put in
// front of raw. go-msgauth signs the bytes exactly as written,
// relaxed/relaxed; go-mail's own signer folds long h= tags inside a
// header name and breaks the signature (research notes 2.6).
func (k *DKIMKey) sign(raw []byte) (string, error) {
	s, err := dkim.NewSigner(&dkim.SignOptions{
		Domain:                 k.Domain,
		Selector:               k.Selector,
		Signer:                 k.Signer,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             SignedHeaders,
	})
	if err != nil {
		return "", err
	}
	if _, err := s.Write(raw); err != nil {
		s.Close()
		return "", err
	}
	if err := s.Close(); err != nil {
		return "", err
	}
	return s.Signature(), nil
}
