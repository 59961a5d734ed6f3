package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/funnel-email/funnel/store"
)

// sendJournal keeps the outcomes of a claim's messages in Redis, one list
// per claim, so that the ledger can take them in one UPDATE per claim
// rather than one commit per message. An outcome is in the journal before
// the next SMTP transaction starts, which is what the lease sweep needs to
// settle a claim whose worker died: the journal says what was sent, and
// only the first row after it can have been inside a transaction.
//
// The list is created before the claim and starts with a marker, so that
// a missing list means Redis lost it (a flush, a restart without
// persistence) rather than that nothing was sent; the sweep then makes
// every unsettled row uncertain, never resends it. Reading the journal for
// a sweep seals it: the holder's next append fails and it stops sending,
// so a worker that was only slow cannot send rows the sweep gave back.
type sendJournal struct {
	rdb redis.UniversalClient
	// ttl keeps a journal well beyond any lease; each append renews it.
	ttl time.Duration
}

const (
	journalOpen   = "open"
	journalSealed = "sealed"
)

// errJournalClosed tells a claim holder that its journal was sealed by a
// sweep or lost: it must not start another transaction for the claim.
var errJournalClosed = errors.New("send journal sealed or lost")

func journalKey(claim string) string { return "funnel:journal:" + claim }

// appendScript appends ARGV[1] unless the journal is missing or sealed.
var appendScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('LINDEX', KEYS[1], -1) == 'sealed' then
	return 0
end
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1`)

// sealScript returns the journal and seals it; nil when it is missing.
var sealScript = redis.NewScript(`
local v = redis.call('LRANGE', KEYS[1], 0, -1)
if #v == 0 then
	return false
end
if v[#v] ~= 'sealed' then
	redis.call('RPUSH', KEYS[1], 'sealed')
end
return v`)

// open creates claim's journal; it must exist before the claim does.
func (j *sendJournal) open(ctx context.Context, claim string) error {
	_, err := j.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.RPush(ctx, journalKey(claim), journalOpen)
		p.Expire(ctx, journalKey(claim), j.ttl)
		return nil
	})
	if err != nil {
		return fmt.Errorf("open send journal: %w", err)
	}
	return nil
}

// append makes o durable in claim's journal. errJournalClosed means the
// claim was taken back or the journal lost.
func (j *sendJournal) append(ctx context.Context, claim string, o store.Outcome) error {
	b, err := json.Marshal(o)
	if err != nil {
		return err
	}
	ok, err := appendScript.Run(ctx, j.rdb, []string{journalKey(claim)}, b, int64(j.ttl/time.Second)).Int()
	if err != nil {
		return fmt.Errorf("append to send journal: %w", err)
	}
	if ok == 0 {
		return errJournalClosed
	}
	return nil
}

// drop deletes claim's journal once its outcomes are in the ledger.
func (j *sendJournal) drop(ctx context.Context, claim string) error {
	return j.rdb.Del(ctx, journalKey(claim)).Err()
}

// read seals claim's journal and returns its outcomes; it is the sweep's
// store.Journal.
func (j *sendJournal) read(ctx context.Context, claim string) ([]store.Outcome, bool, error) {
	v, err := sealScript.Run(ctx, j.rdb, []string{journalKey(claim)}).StringSlice()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("seal send journal: %w", err)
	}
	out := make([]store.Outcome, 0, len(v))
	for _, e := range v {
		if e == journalOpen || e == journalSealed {
			continue
		}
		var o store.Outcome
		if err := json.Unmarshal([]byte(e), &o); err != nil {
			return nil, false, fmt.Errorf("send journal of claim %s: %w", claim, err)
		}
		o.Claim = claim
		out = append(out, o)
	}
	return out, true, nil
}
