package mailer

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/google/go-cmp/cmp"
)

// dnsFor returns a LookupTXT stub that publishes the public keys of keys.
func dnsFor(tb testing.TB, keys ...DKIMKey) func(string) ([]string, error) {
	tb.Helper()
	records := map[string]string{}
	for _, k := range keys {
		var rec string
		switch pub := k.Signer.Public().(type) {
		case *rsa.PublicKey:
			der, err := x509.MarshalPKIXPublicKey(pub)
			if err != nil {
				tb.Fatal(err)
			}
			rec = "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)
		case ed25519.PublicKey:
			rec = "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)
		}
		records[k.Selector+"._domainkey."+k.Domain] = rec
	}
	return func(name string) ([]string, error) {
		if r, ok := records[name]; ok {
			return []string{r}, nil
		}
		return nil, fmt.Errorf("no TXT record for %s", name)
	}
}

func testKeys(tb testing.TB) (rsaKey, edKey DKIMKey) {
	tb.Helper()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	_, ek, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return DKIMKey{Domain: "example.com", Selector: "rsa1", Signer: rk}, DKIMKey{Domain: "example.com", Selector: "ed1", Signer: ek}
}

// publicKeys returns the public keys of keys for verifyDKIMRFC.
func publicKeys(keys ...DKIMKey) map[string]crypto.PublicKey {
	m := map[string]crypto.PublicKey{}
	for _, k := range keys {
		m[strings.ToLower(k.Selector+"._domainkey."+k.Domain)] = k.Signer.Public()
	}
	return m
}

// verify checks every DKIM signature of raw twice, with go-msgauth (which
// also made them) and with verifyDKIMRFC, and fails the test unless both
// find the same signatures, by the same domains over the same h= lists,
// and agree on which are valid. It returns go-msgauth's verdicts.
func verify(tb testing.TB, raw []byte, keys ...DKIMKey) []*dkim.Verification {
	tb.Helper()
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(raw), &dkim.VerifyOptions{LookupTXT: dnsFor(tb, keys...)})
	if err != nil {
		tb.Fatalf("verify: %v", err)
	}
	rfc := verifyDKIMRFC(raw, publicKeys(keys...))
	if len(rfc) != len(vs) {
		tb.Fatalf("go-msgauth found %d signatures, the RFC 6376 verifier %d", len(vs), len(rfc))
	}
	for i, v := range vs {
		if (v.Err == nil) != (rfc[i].Err == nil) || v.Domain != rfc[i].Domain || !slices.Equal(v.HeaderKeys, rfc[i].Headers) {
			tb.Errorf("signature %d: go-msgauth says d=%s h=%v err=%v; the RFC 6376 verifier says d=%s h=%v err=%v",
				i+1, v.Domain, v.HeaderKeys, v.Err, rfc[i].Domain, rfc[i].Headers, rfc[i].Err)
		}
	}
	return vs
}

func TestDKIMSignatureVerifiesAndCoversUnsubscribeHeaders(t *testing.T) {
	rsaKey, edKey := testKeys(t)
	for _, key := range []DKIMKey{rsaKey, edKey} {
		t.Run(key.Selector, func(t *testing.T) {
			for _, tc := range goldenCases {
				d := draftFor(t, tc.tmpl, ana, 77)
				m, err := newComposer(t, key).Compose(d)
				if err != nil {
					t.Fatal(err)
				}
				vs := verify(t, m.Raw, key)
				if len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != "example.com" {
					t.Fatalf("%s: verifications = %+v, want one valid signature by example.com", tc.name, vs)
				}
				var signed []string
				for _, h := range vs[0].HeaderKeys {
					signed = append(signed, strings.ToLower(h))
				}
				for _, must := range []string{"from", "to", "subject", "date", "message-id", "list-unsubscribe", "list-unsubscribe-post"} {
					if !strings.Contains(" "+strings.Join(signed, " ")+" ", " "+must+" ") {
						t.Errorf("%s: h= lacks %s: %v", tc.name, must, signed)
					}
				}
			}
		})
	}
}

func TestDKIMSignatureBreaksWhenASignedHeaderChanges(t *testing.T) {
	_, edKey := testKeys(t)
	m, err := newComposer(t, edKey).Compose(draftFor(t, goldenCases[0].tmpl, ana, 77))
	if err != nil {
		t.Fatal(err)
	}
	tampered := regexp.MustCompile(`List-Unsubscribe: <[^>]+>`).ReplaceAll(m.Raw, []byte("List-Unsubscribe: <https://evil.example/u>"))
	if bytes.Equal(tampered, m.Raw) {
		t.Fatal("test did not change List-Unsubscribe")
	}
	vs := verify(t, tampered, edKey)
	if len(vs) != 1 || vs[0].Err == nil {
		t.Errorf("a changed List-Unsubscribe still verifies: %+v", vs)
	}
	added := append([]byte("List-Unsubscribe-Post: nothing\r\n"), m.Raw...)
	if vs := verify(t, added, edKey); len(vs) != 1 || vs[0].Err == nil {
		t.Errorf("an added List-Unsubscribe-Post still verifies (oversigning): %+v", vs)
	}
}

func TestDKIMPicksTheKeyOfTheFromDomainOrItsParent(t *testing.T) {
	rsaKey, edKey := testKeys(t)
	other := DKIMKey{Domain: "other.org", Selector: "o1", Signer: rsaKey.Signer}
	c := newComposer(t, other, edKey)
	tests := []struct{ from, wantDomain string }{
		{"news@example.com", "example.com"},
		{"news@mail.example.com", "example.com"},
		{"news@unsigned.net", ""},
	}
	for _, tt := range tests {
		d := draftFor(t, goldenCases[0].tmpl, ana, 1)
		d.Sender.FromEmail = tt.from
		m, err := c.Compose(d)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		for _, v := range verify(t, m.Raw, other, edKey) {
			if v.Err != nil {
				t.Errorf("%s: %v", tt.from, v.Err)
			}
			got = v.Domain
		}
		if got != tt.wantDomain {
			t.Errorf("From %s signed by %q, want %q", tt.from, got, tt.wantDomain)
		}
	}
}

func TestParseDKIMKeyReadsPEM(t *testing.T) {
	rsaKey, edKey := testKeys(t)
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey.Signer.(*rsa.PrivateKey))})
	der, _ := x509.MarshalPKCS8PrivateKey(edKey.Signer)
	pkcs8 := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	for name, tc := range map[string]struct {
		pem  []byte
		want crypto.PublicKey
	}{"pkcs1 rsa": {pkcs1, rsaKey.Signer.Public()}, "pkcs8 ed25519": {pkcs8, edKey.Signer.Public()}} {
		k, err := ParseDKIMKey("example.com", "s", tc.pem)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !cmp.Equal(tc.want, k.Signer.Public()) {
			t.Errorf("%s: wrong key", name)
		}
	}
	if _, err := ParseDKIMKey("example.com", "s", []byte("not pem")); err == nil {
		t.Error("ParseDKIMKey(garbage) = nil error")
	}
}
