package tracking

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
)

// IPMode says how much of a client's address an event keeps
// (FUNNEL_TRACKING_IP).
type IPMode string

// IP modes.
const (
	IPTruncate IPMode = "truncate" // the network: IPv4 /24, IPv6 /48 (the default)
	IPHash     IPMode = "hash"     // a keyed hash: equal addresses match, none can be read back
	IPFull     IPMode = "full"     // the whole address
	IPNone     IPMode = "none"     // nothing
)

// ParseIPMode checks a mode name; "" is IPTruncate.
func ParseIPMode(s string) (IPMode, error) {
	switch m := IPMode(s); m {
	case "":
		return IPTruncate, nil
	case IPTruncate, IPHash, IPFull, IPNone:
		return m, nil
	}
	return "", fmt.Errorf("%q is not truncate, hash, full or none", s)
}

// ipPolicy applies an IPMode.
type ipPolicy struct {
	mode IPMode
	key  []byte // for IPHash
}

// apply returns what an event stores of the address raw.
func (p ipPolicy) apply(raw string) string {
	if p.mode == IPNone || raw == "" {
		return ""
	}
	a, err := netip.ParseAddr(raw)
	if err != nil {
		return ""
	}
	a = a.Unmap().WithZone("")
	switch p.mode {
	case IPFull:
		return a.String()
	case IPHash:
		m := hmac.New(sha256.New, p.key)
		m.Write(a.AsSlice())
		return "h:" + hex.EncodeToString(m.Sum(nil)[:12])
	}
	bits := 24
	if a.Is6() {
		bits = 48
	}
	pfx, _ := a.Prefix(bits)
	return pfx.String()
}
