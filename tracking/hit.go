package tracking

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"sync/atomic"
	"time"

	"github.com/funnel-email/funnel/campaign"
)

// Hit is one accepted tracking request, as the endpoints queue it for the
// event writer: what was asked, by whom, and when. It becomes exactly one
// event.
type Hit struct {
	ID       HitID
	Kind     campaign.EventKind // opened, clicked or unsubscribed
	Delivery int64
	Link     int    // link index of a click; 0 (token.HoneypotLink) is the honeypot
	URL      string // the click's destination; "" for the honeypot and other kinds
	Time     time.Time
	Flags    HitFlags
	IP       string // the client address as received; privacy is applied when written
	UA       string // the User-Agent, at most MaxUserAgent bytes
}

// HitFlags are facts about a request that the classifier uses.
type HitFlags uint8

// Hit flags.
const (
	FlagHead     HitFlags = 1 << iota // a HEAD request
	FlagPrefetch                      // Purpose/Sec-Purpose/X-Moz: prefetch
	FlagOneClick                      // an RFC 8058 one-click POST (unsubscribe)
	FlagChanged                       // the unsubscribe changed the contact's status
)

// MaxUserAgent bounds the User-Agent kept per event, in bytes.
const MaxUserAgent = 512

// HitID identifies a hit uniquely across processes and restarts: a random
// per-process prefix and a counter.
type HitID [16]byte

// hitIDs makes HitIDs.
type hitIDs struct {
	prefix [8]byte
	n      atomic.Uint64
}

func newHitIDs() *hitIDs {
	g := &hitIDs{}
	_, _ = rand.Read(g.prefix[:])
	return g
}

func (g *hitIDs) next() HitID {
	var id HitID
	copy(id[:8], g.prefix[:])
	binary.BigEndian.PutUint64(id[8:], g.n.Add(1))
	return id
}

var kindCodes = [...]campaign.EventKind{1: campaign.EventOpened, 2: campaign.EventClicked, 3: campaign.EventUnsubscribed}

func kindCode(k campaign.EventKind) byte {
	for i, v := range kindCodes {
		if v == k && i > 0 {
			return byte(i)
		}
	}
	return 0
}

// hitVersion is the first byte of an encoded hit; a new layout takes a
// new number so that hits queued by an older process still decode.
const hitVersion = 1

// AppendBinary appends the hit's compact encoding to b.
func (h *Hit) AppendBinary(b []byte) ([]byte, error) {
	c := kindCode(h.Kind)
	if c == 0 {
		return b, errors.New("hit: unknown kind " + string(h.Kind))
	}
	b = append(b, hitVersion)
	b = append(b, h.ID[:]...)
	b = append(b, c, byte(h.Flags))
	b = binary.AppendUvarint(b, uint64(h.Delivery))
	b = binary.AppendUvarint(b, uint64(h.Link))
	b = binary.AppendVarint(b, h.Time.UnixMicro())
	for _, s := range [...]string{h.URL, h.IP, h.UA} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b, nil
}

var errBadHit = errors.New("hit: malformed encoding")

// UnmarshalBinary decodes a hit made by AppendBinary.
func (h *Hit) UnmarshalBinary(b []byte) error {
	if len(b) < 1+16+2 || b[0] != hitVersion {
		return errBadHit
	}
	copy(h.ID[:], b[1:17])
	c := int(b[17])
	if c == 0 || c >= len(kindCodes) {
		return errBadHit
	}
	h.Kind, h.Flags = kindCodes[c], HitFlags(b[18])
	b = b[19:]
	var ok bool
	var u uint64
	if u, b, ok = uvarint(b); !ok || u > 1<<63-1 {
		return errBadHit
	}
	h.Delivery = int64(u)
	if u, b, ok = uvarint(b); !ok || u > 1<<31-1 {
		return errBadHit
	}
	h.Link = int(u)
	t, n := binary.Varint(b)
	if n <= 0 {
		return errBadHit
	}
	h.Time, b = time.UnixMicro(t).UTC(), b[n:]
	for _, s := range [...]*string{&h.URL, &h.IP, &h.UA} {
		if u, b, ok = uvarint(b); !ok || u > uint64(len(b)) {
			return errBadHit
		}
		*s, b = string(b[:u]), b[u:]
	}
	if len(b) != 0 {
		return errBadHit
	}
	return nil
}

func uvarint(b []byte) (uint64, []byte, bool) {
	u, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, b, false
	}
	return u, b[n:], true
}
