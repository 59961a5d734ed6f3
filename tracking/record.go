package tracking

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/funnel-email/funnel/campaign"
	"github.com/funnel-email/funnel/store"
)

// RecorderConfig configures a Recorder.
type RecorderConfig struct {
	DB         *store.DB
	Classifier *Classifier // default: NewClassifier(nil)
	// IPMode says what events keep of client addresses; HashKey keys
	// IPHash (derive it from FUNNEL_SECRET).
	IPMode  IPMode
	HashKey []byte
	Logger  *slog.Logger
	Metrics *Metrics
}

// Recorder turns hits into events: it judges each one against the
// delivery's recent history and writes the batch in one transaction.
// Record is what the queue consumer calls for each batch, and what the
// endpoints call directly when Redis is down.
type Recorder struct {
	cfg RecorderConfig
	ip  ipPolicy
}

// NewRecorder returns a Recorder.
func NewRecorder(cfg RecorderConfig) *Recorder {
	if cfg.Classifier == nil {
		cfg.Classifier = NewClassifier(nil)
	}
	if cfg.IPMode == "" {
		cfg.IPMode = IPTruncate
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	return &Recorder{cfg: cfg, ip: ipPolicy{mode: cfg.IPMode, key: cfg.HashKey}}
}

// RecordResult counts what Record did with a batch.
type RecordResult struct {
	Inserted int64 // new events
	Replayed int   // hits already stored (a batch read twice)
	Dropped  int   // hits of deliveries that no longer exist
}

// Record judges and stores hits, oldest first within each delivery, in
// one transaction: every hit becomes exactly one event, including when
// the same hits are recorded again (they are recognized by HitID and
// skipped). Verdicts of stored events that the new hits change (a
// honeypot click after a click, a human click after a machine open) are
// updated in the same transaction. Hits of deliveries that no longer
// exist are dropped.
func (r *Recorder) Record(ctx context.Context, hits []Hit) (RecordResult, error) {
	var res RecordResult
	if len(hits) == 0 {
		return res, nil
	}
	// Only a click is judged against its delivery's history (honeypot,
	// burst, confirming an open): opens and unsubscribes are judged on
	// their own, so their deliveries' histories are not read, and their
	// replays are caught by the INSERT (events.hit_id is unique).
	ids := make([]int64, 0, len(hits))
	var clicked []int64
	var oldest time.Time
	for i := range hits {
		h := &hits[i]
		ids = append(ids, h.Delivery)
		if h.Kind == campaign.EventClicked {
			clicked = append(clicked, h.Delivery)
			if oldest.IsZero() || h.Time.Before(oldest) {
				oldest = h.Time
			}
		}
	}
	db := r.cfg.DB
	deliveries, err := db.SentDeliveries(ctx, ids)
	if err != nil {
		return res, err
	}
	rules := r.cfg.Classifier.rules
	history, err := db.RecentEngagement(ctx, clicked, oldest.Add(-rules.Settle()))
	if err != nil {
		return res, err
	}
	stored := make(map[HitID]bool, len(history))
	timelines := map[int64][]*judged{}
	for i := range history {
		e := &history[i]
		if len(e.HitID) == len(HitID{}) {
			stored[HitID(e.HitID)] = true
		}
		timelines[e.DeliveryID] = append(timelines[e.DeliveryID], &judged{id: e.ID, kind: e.Kind, at: e.OccurredAt,
			link: e.Link, honeypot: e.Reason == ReasonHoneypot, human: e.Human, reason: e.Reason})
	}

	events := make([]store.TrackedEvent, 0, len(hits))
	verdicts := map[int64]*judged{} // new events' judgments, by index into events
	for i := range hits {
		h := &hits[i]
		d, ok := deliveries[h.Delivery]
		switch {
		case stored[h.ID]:
			res.Replayed++
			continue
		case !ok:
			res.Dropped++
			continue
		}
		stored[h.ID] = true // a hit queued twice in one batch
		human, reason := r.cfg.Classifier.judgeHit(h, d.SentAt)
		events = append(events, store.TrackedEvent{HitID: h.ID[:], Event: campaign.Event{
			DeliveryID: h.Delivery, ContactID: d.ContactID, CampaignID: d.CampaignID, Kind: h.Kind, Link: clean(h.URL, campaign.MaxEventText),
			Human: human, Reason: reason, IP: r.ip.apply(h.IP), UserAgent: clean(h.UA, MaxUserAgent), OccurredAt: h.Time,
		}})
		if h.Kind == campaign.EventOpened || h.Kind == campaign.EventClicked {
			j := &judged{kind: h.Kind, at: h.Time, link: h.URL, honeypot: reason == ReasonHoneypot, human: human, reason: reason}
			verdicts[int64(len(events)-1)] = j
			timelines[h.Delivery] = append(timelines[h.Delivery], j)
		}
	}

	var needOlder []int64
	for id, tl := range timelines {
		// Stored events come first among equal times: they happened first.
		slices.SortStableFunc(tl, func(a, b *judged) int { return a.at.Compare(b.at) })
		r.cfg.Classifier.judgeClicks(tl)
		if needsOlderOpens(tl) {
			needOlder = append(needOlder, id)
		}
	}
	older, err := db.OpenSummaries(ctx, needOlder)
	if err != nil {
		return res, err
	}
	var changes []store.Verdict
	for id, tl := range timelines {
		inTimeline := func(eventID int64) bool {
			return slices.ContainsFunc(tl, func(j *judged) bool { return j.id == eventID })
		}
		o := olderOpens{}
		if s, ok := older[id]; ok && slices.Contains(needOlder, id) {
			o.human = s.HumanOpen != 0 && !inTimeline(s.HumanOpen)
			if !inTimeline(s.MachineOpen) {
				o.machineID = s.MachineOpen
			}
		}
		if confirmed := r.cfg.Classifier.confirmOpens(tl, o); confirmed != 0 {
			changes = append(changes, store.Verdict{ID: confirmed, Human: true, Reason: ReasonConfirmed})
		}
		for _, j := range tl {
			if j.id != 0 && j.changed {
				changes = append(changes, store.Verdict{ID: j.id, Human: j.human, Reason: j.reason})
			}
		}
	}
	for i, j := range verdicts {
		events[i].Human, events[i].Reason = j.human, j.reason
	}
	res.Inserted, err = db.WriteTrackedEvents(ctx, events, changes)
	if err != nil {
		return res, err
	}
	res.Replayed += len(events) - int(res.Inserted) // stored already, found by the INSERT
	r.cfg.Metrics.written.Add(float64(res.Inserted))
	r.cfg.Metrics.dropped.Add(float64(res.Dropped))
	return res, nil
}

// clean makes s storable: valid UTF-8 without NUL, at most n bytes.
func clean(s string, n int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	if len(s) > n {
		s = s[:n]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return s
}
