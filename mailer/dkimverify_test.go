package mailer

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
)

// This file is a DKIM verifier written from RFC 6376 and RFC 8463 with the
// standard library only, so that Funnel's signatures (made with
// go-msgauth) are not checked by the library that made them alone. It
// verifies against public keys the test holds instead of DNS, and it
// refuses what Funnel has no reason to send: l= (a body length limit lets
// anyone append to the body) and algorithms other than rsa-sha256 and
// ed25519-sha256.

// The verifier's errors for a body that changed and for a signature that
// does not match the header hash (or was made with another key).
var (
	errBodyHash  = errors.New("body hash mismatch")
	errSignature = errors.New("signature mismatch")
)

// dkimVerdict is the outcome of one DKIM-Signature header field.
type dkimVerdict struct {
	Domain, Selector string
	Headers          []string // the h= tag, in order
	Err              error    // nil when the signature is valid
}

// verifyDKIMRFC verifies every DKIM-Signature field of raw, top to bottom.
// keys maps "selector._domainkey.domain" (lower case) to an
// *rsa.PublicKey or ed25519.PublicKey. A message without a blank line
// after its header has an empty body.
func verifyDKIMRFC(raw []byte, keys map[string]crypto.PublicKey) []dkimVerdict {
	head, body, ok := bytes.Cut(raw, []byte("\r\n\r\n"))
	if !ok {
		head, body = raw, nil
	}
	fields := splitFields(string(head))
	var out []dkimVerdict
	for i, f := range fields {
		if !strings.EqualFold(fieldName(f), "DKIM-Signature") {
			continue
		}
		v := dkimVerdict{}
		v.Err = verifyOne(fields, i, body, keys, &v)
		out = append(out, v)
	}
	return out
}

// splitFields returns the header fields of head, each with its folding
// CRLFs but without the CRLF that ends it (RFC 5322 section 2.2.3). The
// CRLF after the last field is optional.
func splitFields(head string) []string {
	var fields []string
	for line := range strings.SplitSeq(strings.TrimSuffix(head, "\r\n"), "\r\n") {
		if len(fields) > 0 && (strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")) {
			fields[len(fields)-1] += "\r\n" + line
			continue
		}
		fields = append(fields, line)
	}
	return fields
}

// fieldName is the name of a header field, without the WSP that may
// precede the colon.
func fieldName(f string) string {
	name, _, _ := strings.Cut(f, ":")
	return strings.TrimRight(name, " \t")
}

// verifyOne verifies the signature in fields[sig] and fills v.
func verifyOne(fields []string, sig int, body []byte, keys map[string]crypto.PublicKey, v *dkimVerdict) error {
	sigField := fields[sig]
	tags, bValue, err := parseTagList(sigField)
	if err != nil {
		return err
	}
	for _, t := range []string{"v", "a", "b", "bh", "d", "h", "s"} {
		if _, ok := tags[t]; !ok {
			return fmt.Errorf("required tag %s= is missing", t)
		}
	}
	v.Domain, v.Selector = tags["d"], tags["s"]
	for h := range strings.SplitSeq(tags["h"], ":") {
		v.Headers = append(v.Headers, strings.Trim(h, " \t\r\n"))
	}
	if err := checkTags(tags, v.Headers); err != nil {
		return err
	}
	headerC, bodyC, err := parseCanonicalization(tags["c"])
	if err != nil {
		return err
	}

	wantBH, err := decodeBase64Tag(tags["bh"])
	if err != nil {
		return fmt.Errorf("bh=: %w", err)
	}
	gotBH := sha256.Sum256(canonicalBody(body, bodyC))
	if !bytes.Equal(gotBH[:], wantBH) {
		return fmt.Errorf("%w: computed %s, bh=%s", errBodyHash, base64.StdEncoding.EncodeToString(gotBH[:]), tags["bh"])
	}

	b, err := decodeBase64Tag(tags["b"])
	if err != nil {
		return fmt.Errorf("b=: %w", err)
	}
	digest := sha256.Sum256(headerHashInput(fields, sig, bValue, v.Headers, headerC))
	key, ok := keys[strings.ToLower(v.Selector+"._domainkey."+v.Domain)]
	if !ok {
		return fmt.Errorf("no public key for s=%s d=%s", v.Selector, v.Domain)
	}
	return checkSignature(tags["a"], key, digest[:], b)
}

// checkTags applies the rules of RFC 6376 section 3.5 and 5.4 that do not
// depend on the message: v=1, no l=, From in h=, i= within d=, x= not
// passed.
func checkTags(tags map[string]string, h []string) error {
	if tags["v"] != "1" {
		return fmt.Errorf("v=%s, want 1", tags["v"])
	}
	if _, ok := tags["l"]; ok {
		return errors.New("l= is refused: it leaves the rest of the body unsigned")
	}
	if !containsFold(h, "From") {
		return errors.New("h= does not list From")
	}
	if err := checkIdentity(tags["i"], tags["d"]); err != nil {
		return err
	}
	return checkExpiry(tags["t"], tags["x"], time.Now())
}

// parseTagList parses the value of a DKIM-Signature field (RFC 6376
// section 3.2) into its tags, and returns where the value of b= lies in f
// so that it can be emptied: from just after "b=" to the semicolon or the
// end of the field, which drops the whitespace around the value too
// (section 3.7).
func parseTagList(f string) (map[string]string, [2]int, error) {
	var bValue [2]int
	colon := strings.IndexByte(f, ':')
	if colon < 0 {
		return nil, bValue, errors.New("header field without a colon")
	}
	tags := map[string]string{}
	start := colon + 1
	for start <= len(f) {
		end := strings.IndexByte(f[start:], ';')
		if end < 0 {
			end = len(f)
		} else {
			end += start
		}
		spec := f[start:end]
		last := end == len(f)
		if strings.Trim(spec, " \t\r\n") == "" {
			if last && len(tags) > 0 {
				break // a trailing semicolon is allowed
			}
			return nil, bValue, fmt.Errorf("empty tag-spec at offset %d", start)
		}
		eq := strings.IndexByte(spec, '=')
		if eq < 0 {
			return nil, bValue, fmt.Errorf("tag-spec %q has no '='", spec)
		}
		name := strings.Trim(spec[:eq], " \t\r\n")
		if !validTagName(name) {
			return nil, bValue, fmt.Errorf("invalid tag name %q", name)
		}
		if _, dup := tags[name]; dup {
			return nil, bValue, fmt.Errorf("tag %s= appears twice", name)
		}
		value := strings.Trim(spec[eq+1:], " \t\r\n")
		if err := checkTagValue(value); err != nil {
			return nil, bValue, fmt.Errorf("tag %s=: %w", name, err)
		}
		tags[name] = value
		if name == "b" {
			bValue = [2]int{start + eq + 1, end}
		}
		if last {
			break
		}
		start = end + 1
	}
	return tags, bValue, nil
}

// validTagName reports whether s is ALPHA *ALNUMPUNC.
func validTagName(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlpha(c) && !(c >= '0' && c <= '9') && c != '_' {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// checkTagValue checks a tag value against tval *( 1*(WSP / FWS) tval ),
// where tval is made of VALCHAR (%x21-3A / %x3C-7E). A CRLF is allowed
// only when WSP follows it (folding).
func checkTagValue(v string) error {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == ' ' || c == '\t':
		case c == '\r':
			if !strings.HasPrefix(v[i:], "\r\n ") && !strings.HasPrefix(v[i:], "\r\n\t") {
				return errors.New("CR not part of folding whitespace")
			}
			i++
		case c >= 0x21 && c <= 0x7e && c != ';':
		default:
			return fmt.Errorf("byte %#x not allowed", c)
		}
	}
	return nil
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// checkIdentity checks that the domain of i=, when present, is d= or a
// subdomain of it (RFC 6376 section 3.5).
func checkIdentity(i, d string) error {
	if i == "" {
		return nil
	}
	at := strings.LastIndexByte(i, '@')
	if at < 0 {
		return fmt.Errorf("i=%s has no '@'", i)
	}
	id, d := strings.ToLower(i[at+1:]), strings.ToLower(d)
	if id != d && !strings.HasSuffix(id, "."+d) {
		return fmt.Errorf("i=%s is not within d=%s", i, d)
	}
	return nil
}

// checkExpiry checks that x= is not before t= nor in the past.
func checkExpiry(t, x string, now time.Time) error {
	if x == "" {
		return nil
	}
	exp, err := strconv.ParseInt(x, 10, 64)
	if err != nil {
		return fmt.Errorf("x=: %w", err)
	}
	if t != "" {
		ts, err := strconv.ParseInt(t, 10, 64)
		if err != nil {
			return fmt.Errorf("t=: %w", err)
		}
		if exp < ts {
			return fmt.Errorf("x=%d is before t=%d", exp, ts)
		}
	}
	if now.Unix() > exp {
		return fmt.Errorf("signature expired at %d", exp)
	}
	return nil
}

// parseCanonicalization reads c=: "header/body", where a missing body
// part is simple and a missing tag is simple/simple.
func parseCanonicalization(c string) (header, body string, err error) {
	if c == "" {
		return "simple", "simple", nil
	}
	header, body, ok := strings.Cut(c, "/")
	if !ok {
		body = "simple"
	}
	for _, a := range []string{header, body} {
		if a != "simple" && a != "relaxed" {
			return "", "", fmt.Errorf("unknown canonicalization %q in c=%s", a, c)
		}
	}
	return header, body, nil
}

// decodeBase64Tag decodes the value of b= or bh=, in which FWS may appear
// anywhere.
func decodeBase64Tag(v string) ([]byte, error) {
	v = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, v)
	if v == "" {
		return nil, errors.New("empty value")
	}
	return base64.StdEncoding.DecodeString(v)
}

// canonicalBody applies the simple or relaxed body algorithm (RFC 6376
// section 3.4.3 and 3.4.4).
func canonicalBody(body []byte, alg string) []byte {
	lines := strings.Split(string(body), "\r\n")
	// The element after the last CRLF is an unterminated line, or empty
	// when the body ends with CRLF; either way it gets a CRLF below.
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if alg == "relaxed" {
		for i, l := range lines {
			lines[i] = strings.TrimRight(collapseWSP(l), " ")
		}
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) == 0 {
		if alg == "simple" {
			return []byte("\r\n") // an empty body is a single CRLF
		}
		return nil
	}
	return []byte(strings.Join(lines, "\r\n") + "\r\n")
}

// collapseWSP replaces every run of SP and HTAB with one SP.
func collapseWSP(s string) string {
	var b strings.Builder
	inWSP := false
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' || s[i] == '\t' {
			if !inWSP {
				b.WriteByte(' ')
			}
			inWSP = true
			continue
		}
		inWSP = false
		b.WriteByte(s[i])
	}
	return b.String()
}

// canonicalHeader applies the simple or relaxed header algorithm (RFC
// 6376 section 3.4.1 and 3.4.2) to one field, without the CRLF that ends
// it.
func canonicalHeader(f, alg string) string {
	if alg == "simple" {
		return f
	}
	name, value, _ := strings.Cut(f, ":")
	name = strings.ToLower(strings.TrimRight(name, " \t"))
	value = strings.ReplaceAll(value, "\r\n", "") // unfold
	value = strings.Trim(collapseWSP(value), " ")
	return name + ":" + value
}

// headerHashInput is the data the signature in fields[sig] covers (RFC
// 6376 section 3.7): each field that h= names, in h= order, where a name
// listed n times takes the n last fields of that name from the bottom up
// and a name with no field left contributes nothing; then the signature
// field with the b= value at bValue emptied and no CRLF after it. The
// signature field is never one of the fields h= selects: it did not exist
// when the signer hashed them.
func headerHashInput(fields []string, sig int, bValue [2]int, h []string, alg string) []byte {
	used := map[int]bool{sig: true}
	var b bytes.Buffer
	for _, name := range h {
		for i := len(fields) - 1; i >= 0; i-- {
			if !used[i] && strings.EqualFold(fieldName(fields[i]), name) {
				used[i] = true
				b.WriteString(canonicalHeader(fields[i], alg) + "\r\n")
				break
			}
		}
	}
	b.WriteString(canonicalHeader(fields[sig][:bValue[0]]+fields[sig][bValue[1]:], alg))
	return b.Bytes()
}

// checkSignature verifies sig over the SHA-256 digest of the header hash
// input: PKCS #1 v1.5 for rsa-sha256 (at least 1024 bits, RFC 8301), and
// for ed25519-sha256 a pure Ed25519 signature whose message is the
// digest itself (RFC 8463 section 3).
func checkSignature(a string, key crypto.PublicKey, digest, sig []byte) error {
	switch a {
	case "rsa-sha256":
		pub, ok := key.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("a=%s but the key is %T", a, key)
		}
		if pub.N.BitLen() < 1024 {
			return fmt.Errorf("RSA key of %d bits is too short", pub.N.BitLen())
		}
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest, sig); err != nil {
			return fmt.Errorf("%w: %v", errSignature, err)
		}
		return nil
	case "ed25519-sha256":
		pub, ok := key.(ed25519.PublicKey)
		if !ok {
			return fmt.Errorf("a=%s but the key is %T", a, key)
		}
		if !ed25519.Verify(pub, digest, sig) {
			return fmt.Errorf("%w: ed25519", errSignature)
		}
		return nil
	}
	return fmt.Errorf("unsupported algorithm a=%s", a)
}

// rfc8463Example is the message of RFC 8463 appendix A.3 with its
// Ed25519 signature, made by another implementation than go-msgauth. Its
// h= lists From, Subject and Date twice, so it also checks that a name
// with no field left adds nothing to the hash.
const rfc8463Example = `DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;
 d=football.example.com; i=@football.example.com;
 q=dns/txt; s=brisbane; t=1528637909; h=from : to :
 subject : date : message-id : from : subject : date;
 bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;
 b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus
 Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==
From: Joe SixPack <joe@football.example.com>
To: Suzie Q <suzie@shopping.example.net>
Subject: Is dinner ready?
Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)
Message-ID: <20030712040037.46341.5F8J@football.example.com>

Hi.

We lost the game.  Are you hungry yet?

Joe.
`

func TestRFCVerifierAcceptsTheRFC8463Example(t *testing.T) {
	raw := []byte(strings.ReplaceAll(rfc8463Example, "\n", "\r\n"))
	pub, err := base64.StdEncoding.DecodeString("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]crypto.PublicKey{"brisbane._domainkey.football.example.com": ed25519.PublicKey(pub)}
	vs := verifyDKIMRFC(raw, keys)
	if len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != "football.example.com" {
		t.Fatalf("verdicts = %+v, want one valid signature by football.example.com", vs)
	}
	late := bytes.Replace(raw, []byte("21:00:37"), []byte("21:00:38"), 1)
	if vs := verifyDKIMRFC(late, keys); len(vs) != 1 || vs[0].Err == nil {
		t.Errorf("the example with a changed Date still verifies: %+v", vs)
	}
}

// headerSpans returns where each header field of raw lies, without the
// CRLF that ends it, and where the body starts.
func headerSpans(raw []byte) (spans [][2]int, body int) {
	for pos := 0; pos < len(raw); {
		n := bytes.Index(raw[pos:], []byte("\r\n"))
		if n < 0 {
			return spans, len(raw)
		}
		if n == 0 {
			return spans, pos + 2
		}
		if raw[pos] == ' ' || raw[pos] == '\t' {
			spans[len(spans)-1][1] = pos + n
		} else {
			spans = append(spans, [2]int{pos, pos + n})
		}
		pos += n + 2
	}
	return spans, len(raw)
}

// flipped is raw with the byte at i changed to another byte that is
// neither whitespace for whitespace nor a change of letter case, so that
// no canonicalization can undo it.
func flipped(raw []byte, i int) []byte {
	b := bytes.Clone(raw)
	b[i] ^= 0x01
	return b
}

func TestRFCVerifierFailsWhenABodyOrSignedHeaderByteChanges(t *testing.T) {
	rsaKey, edKey := testKeys(t)
	for _, key := range []DKIMKey{rsaKey, edKey} {
		t.Run(key.Selector, func(t *testing.T) {
			m, err := newComposer(t, key).Compose(draftFor(t, goldenCases[0].tmpl, ana, 77))
			if err != nil {
				t.Fatal(err)
			}
			keys := publicKeys(key)
			if vs := verify(t, m.Raw, key); len(vs) != 1 || vs[0].Err != nil {
				t.Fatalf("untouched message: %+v", vs)
			}

			// One changed byte, seen by both verifiers.
			body := bytes.Replace(m.Raw, []byte("Hello Ana"), []byte("Hello Anb"), 1)
			delivery := bytes.Replace(m.Raw, []byte("X-Funnel-Delivery: 77"), []byte("X-Funnel-Delivery: 78"), 1)
			for name, tc := range map[string]struct {
				raw  []byte
				want error
			}{"body": {body, errBodyHash}, "signed header": {delivery, errSignature}} {
				if bytes.Equal(tc.raw, m.Raw) {
					t.Fatalf("%s: the test changed nothing", name)
				}
				if vs := verify(t, tc.raw, key); len(vs) != 1 || vs[0].Err == nil {
					t.Errorf("%s: go-msgauth accepts a changed byte", name)
				}
				if vs := verifyDKIMRFC(tc.raw, keys); len(vs) != 1 || !errors.Is(vs[0].Err, tc.want) {
					t.Errorf("%s: RFC verifier says %+v, want %v", name, vs, tc.want)
				}
			}

			// Every byte of the body and of the fields h= covers, and
			// none of an unsigned field.
			spans, bodyStart := headerSpans(m.Raw)
			check := func(i int, signed bool, what string) {
				vs := verifyDKIMRFC(flipped(m.Raw, i), keys)
				if len(vs) != 1 || (vs[0].Err == nil) == signed {
					t.Errorf("byte %d (%q in %s) changed: verdicts %+v, signed=%v", i, m.Raw[i], what, vs, signed)
				}
			}
			for i := bodyStart; i < len(m.Raw); i++ {
				check(i, true, "body")
			}
			for _, s := range spans {
				name := fieldName(string(m.Raw[s[0]:s[1]]))
				if strings.EqualFold(name, "DKIM-Signature") {
					continue
				}
				for i := s[0]; i < s[1]; i++ {
					check(i, containsFold(SignedHeaders, name), name)
				}
			}
		})
	}
}

func TestRFCVerifierCanonicalizesSimpleAndRelaxed(t *testing.T) {
	_, edKey := testKeys(t)
	m, err := newComposer(t).Compose(draftFor(t, goldenCases[0].tmpl, ana, 77))
	if err != nil {
		t.Fatal(err)
	}
	_, bodyStart := headerSpans(m.Raw)
	// Whitespace that relaxed canonicalization removes and simple keeps.
	header := bytes.Replace(m.Raw, []byte("\r\nSubject: "), []byte("\r\nSubject : \t "), 1)
	body := slices.Concat(m.Raw[:bodyStart], bytes.Replace(m.Raw[bodyStart:], []byte("\r\n"), []byte(" \t\r\n"), 1))
	algs := []dkim.Canonicalization{dkim.CanonicalizationSimple, dkim.CanonicalizationRelaxed}
	for _, hc := range algs {
		for _, bc := range algs {
			var signed bytes.Buffer
			err := dkim.Sign(&signed, bytes.NewReader(m.Raw), &dkim.SignOptions{
				Domain: edKey.Domain, Selector: edKey.Selector, Signer: edKey.Signer,
				HeaderCanonicalization: hc, BodyCanonicalization: bc, HeaderKeys: SignedHeaders,
			})
			if err != nil {
				t.Fatal(err)
			}
			sig := signed.Bytes()[:signed.Len()-len(m.Raw)]
			for _, tc := range []struct {
				name  string
				raw   []byte
				valid bool
			}{
				{"as signed", m.Raw, true},
				{"header whitespace", header, hc == dkim.CanonicalizationRelaxed},
				{"body whitespace", body, bc == dkim.CanonicalizationRelaxed},
				{"empty lines after the body", slices.Concat(m.Raw, []byte("\r\n\r\n")), true},
			} {
				vs := verify(t, slices.Concat(sig, tc.raw), edKey)
				if len(vs) != 1 || (vs[0].Err == nil) != tc.valid {
					t.Errorf("c=%s/%s, %s: verdicts %+v, want valid=%v", hc, bc, tc.name, vs, tc.valid)
				}
			}
		}
	}
}

func TestRFCVerifierTakesRepeatedHeadersFromTheBottom(t *testing.T) {
	_, edKey := testKeys(t)
	m, err := newComposer(t).Compose(draftFor(t, goldenCases[0].tmpl, ana, 77))
	if err != nil {
		t.Fatal(err)
	}
	raw := slices.Concat([]byte("Comments: first\r\nComments: second\r\n"), m.Raw)
	var signed bytes.Buffer
	err = dkim.Sign(&signed, bytes.NewReader(raw), &dkim.SignOptions{
		Domain: edKey.Domain, Selector: edKey.Selector, Signer: edKey.Signer,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed,
		HeaderKeys: append(slices.Clone(SignedHeaders), "Comments", "Comments"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if vs := verify(t, signed.Bytes(), edKey); len(vs) != 1 || vs[0].Err != nil {
		t.Fatalf("as signed: %+v", vs)
	}
	swapped := bytes.Replace(signed.Bytes(), []byte("Comments: first\r\nComments: second"), []byte("Comments: second\r\nComments: first"), 1)
	if vs := verify(t, swapped, edKey); len(vs) != 1 || !errors.Is(verifyDKIMRFC(swapped, publicKeys(edKey))[0].Err, errSignature) {
		t.Errorf("two Comments fields swapped still verify: %+v", vs)
	}
}
