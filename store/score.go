package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/funnel-email/funnel/campaign"
)

// Scoring reads the events table by an increasing ID cursor and writes
// the ledger, the per-contact state, lifecycle changes, leads, webhook
// outbox rows and the new cursor in ONE transaction, so each event's
// effects are stored exactly once whatever crashes.
//
// Concurrent runs (one per worker) are serialized by the cursor row: on
// PostgreSQL a run takes it FOR UPDATE SKIP LOCKED and a run that finds it
// taken does nothing (Busy); on SQLite the immediate transaction holds the
// database's write lock. The ledger's UNIQUE (contact, rule, once_key) and
// leads' UNIQUE (contact_id) are a second guard.
//
// PostgreSQL hands out IDs before transactions commit, so a plain cursor
// could pass an ID whose row becomes visible later. Each run therefore
// first takes a horizon: it locks the events table in SHARE mode for a
// moment (waiting for the inserts in flight, which hold ROW EXCLUSIVE),
// reads MAX(id) and commits; every ID at or below it is then final. SQLite
// has one writer at a time, so MAX(id) read under its write lock is.
//
// A click's verdict is not final when it is written: a honeypot click or a
// burst of clicks of its delivery seconds later makes it a machine click
// (package tracking). So the worker scores a human click only once it is
// settled, older than the longest such window plus the event writer's lag
// (ScoreSettled): the cursor stops before the first click that is not, and
// a scanner's clicks never earn points, a stage, a lead or a webhook.
//
// Verdicts that change after an event was scored anyway are caught by a
// trigger on events that queues the event in score_rescans whenever human
// changes (migrations 00007 and 00014); runs consume that queue in the
// same transaction. An event turned human (a machine open confirmed by a
// click) is scored; rescoring is harmless, the ledger's once keys refuse a
// second award. An event turned machine after it was scored is reversed
// (reverse): each award it earned gets a ledger row that takes back what
// decay has left of it, with the rule "reversed:" and the event's reason,
// and the award's once key is freed for a person's later click. Its lead,
// if sales has not touched it yet (status new) and the score is now below
// the threshold, is withdrawn: rejected with the reason, the contact
// recycled, lead.updated sent; a requalifying score reopens it as for any
// rejected lead. A lead sales already works is left to sales, with the
// reversal in its ledger. The contact's last activity is not moved back.

// ScoreRun reports what one scoring run did.
type ScoreRun struct {
	Events int // events scored (through the cursor or the rescan queue)
	// Reversed counts awards taken back from events judged machine after
	// they were scored.
	Reversed int
	Leads    int   // leads created or requalified
	Cursor   int64 // the cursor after the run
	// More is true when the run stopped at its limit with events left.
	More bool
	// Busy is true when another run held the cursor.
	Busy bool
}

// defaultRules is version 0, in force before anyone saves rules.
func defaultRules() campaign.ScoreRules { return campaign.DefaultScoreRules() }

// ScoreRules returns the rules in force: the highest stored version, or
// the defaults (version 0) when none was saved.
func (db *DB) ScoreRules(ctx context.Context) (campaign.ScoreRules, error) {
	return loadRules(ctx, db.DB, db)
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func loadRules(ctx context.Context, q queryer, db *DB) (campaign.ScoreRules, error) {
	var (
		version int64
		raw     []byte
		at      time.Time
	)
	err := q.QueryRowContext(ctx, `SELECT version, rules, created_at FROM score_rules ORDER BY version DESC LIMIT 1`).Scan(&version, &raw, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return defaultRules(), nil
	}
	if err != nil {
		return campaign.ScoreRules{}, fmt.Errorf("load scoring rules: %w", err)
	}
	r := defaultRules()
	if err := json.Unmarshal(raw, &r); err != nil {
		return campaign.ScoreRules{}, fmt.Errorf("decode scoring rules version %d: %w", version, err)
	}
	r.Version, r.CreatedAt = version, at.UTC()
	return r, nil
}

// SaveScoreRules validates r and stores it as a new version, which is in
// force from the next scoring run; r.Version and r.CreatedAt are set.
// Owner rules must name enabled users (EINVALID otherwise).
func (db *DB) SaveScoreRules(ctx context.Context, r *campaign.ScoreRules, userID int64) error {
	if err := r.Validate(); err != nil {
		return err
	}
	for i, o := range r.OwnerRules {
		var n int
		err := db.QueryRowContext(ctx, db.rebind(`SELECT COUNT(*) FROM users WHERE id = ? AND disabled_at IS NULL`), o.UserID).Scan(&n)
		if err != nil {
			return fmt.Errorf("check owner rule user: %w", err)
		}
		if n == 0 {
			return campaign.Invalid("invalid scoring rules", campaign.FieldError{
				Field: fmt.Sprintf("owner_rules[%d].user_id", i), Message: fmt.Sprintf("user %d does not exist or is disabled", o.UserID)})
		}
	}
	r.Version, r.CreatedAt = 0, time.Time{}
	raw, _ := json.Marshal(r)
	now := db.now()
	err := db.QueryRowContext(ctx, db.rebind(`INSERT INTO score_rules (rules, created_by, created_at) VALUES (?, ?, ?) RETURNING version`),
		string(raw), nullID(userID), now).Scan(&r.Version)
	if err != nil {
		return fmt.Errorf("save scoring rules: %w", err)
	}
	r.CreatedAt = now
	return nil
}

// ScoreRuleVersions returns every stored version, newest first.
func (db *DB) ScoreRuleVersions(ctx context.Context) ([]campaign.ScoreRules, error) {
	rows, err := db.QueryContext(ctx, `SELECT version, rules, created_at FROM score_rules ORDER BY version DESC`)
	if err != nil {
		return nil, fmt.Errorf("list scoring rules: %w", err)
	}
	defer rows.Close()
	out := []campaign.ScoreRules{}
	for rows.Next() {
		var raw []byte
		r := defaultRules()
		var at time.Time
		if err := rows.Scan(&r.Version, &raw, &at); err != nil {
			return nil, err
		}
		v := r.Version
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, fmt.Errorf("decode scoring rules version %d: %w", v, err)
		}
		r.Version, r.CreatedAt = v, at.UTC()
		out = append(out, r)
	}
	return out, rows.Err()
}

// ScoreEvents is ScoreSettled without the wait: it scores every human
// click past the cursor at once, however recent.
func (db *DB) ScoreEvents(ctx context.Context, limit int) (ScoreRun, error) {
	return db.ScoreSettled(ctx, limit, time.Time{})
}

// ScoreSettled runs scoring once over at most limit events past the cursor
// and limit queued rescans. A human click is scored only if it occurred at
// or before settled (the zero time: any click), when no later hit can
// change its verdict any more: the cursor stops before the first click
// that is not settled, and More is false. Rescanned events turned machine
// since they were scored are reversed. See the comment at the top of this
// file for why it is exactly-once.
func (db *DB) ScoreSettled(ctx context.Context, limit int, settled time.Time) (ScoreRun, error) {
	if limit <= 0 {
		limit = 500
	}
	horizon := int64(math.MaxInt64)
	if db.Dialect == Postgres {
		h, idle, err := db.eventHorizon(ctx)
		if err != nil || idle {
			return ScoreRun{}, err
		}
		horizon = h
	}
	var run ScoreRun
	err := db.withTx(ctx, func(tx *sqlxTx) error {
		s, err := db.beginScoring(ctx, tx)
		if err != nil || s == nil {
			run.Busy = s == nil && err == nil
			return err
		}
		if db.Dialect == SQLite {
			if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM events`).Scan(&horizon); err != nil {
				return fmt.Errorf("read events horizon: %w", err)
			}
		}
		events, err := s.cursorEvents(ctx, horizon, limit)
		if err != nil {
			return err
		}
		next := horizon
		if len(events) == limit {
			next, run.More = events[len(events)-1].ID, true
		}
		if i := firstUnsettled(events, settled); i >= 0 {
			next, run.More, events = events[i].ID-1, false, events[:i]
		}
		rescans, err := s.rescanEvents(ctx, limit)
		if err != nil {
			return err
		}
		var machine []scoredEvent
		for _, e := range slices.Concat(events, rescans) {
			if !e.Human && e.Kind.Judged() {
				machine = append(machine, e)
				continue
			}
			if err := s.apply(ctx, e); err != nil {
				return fmt.Errorf("score event %d: %w", e.ID, err)
			}
		}
		if err := s.reverse(ctx, machine, events, max(next, s.cursor)); err != nil {
			return err
		}
		if err := s.flush(ctx); err != nil {
			return err
		}
		next = max(next, s.cursor)
		_, err = tx.ExecContext(ctx, db.rebind(`UPDATE score_cursor SET last_event_id = ?, last_owner_id = ?, updated_at = ? WHERE id = 1`),
			next, s.lastOwner, s.now)
		run.Events, run.Reversed, run.Leads, run.Cursor = len(events)+len(rescans)-len(machine), s.reversed, s.leads, next
		run.More = run.More || len(rescans) == limit
		return err
	})
	if err != nil {
		return ScoreRun{}, fmt.Errorf("score events: %w", err)
	}
	return run, nil
}

// firstUnsettled returns the index of the first human click that occurred
// after settled, or -1.
func firstUnsettled(events []scoredEvent, settled time.Time) int {
	if settled.IsZero() {
		return -1
	}
	return slices.IndexFunc(events, func(e scoredEvent) bool {
		return e.Kind == campaign.EventClicked && e.Human && e.OccurredAt.After(settled)
	})
}

// eventHorizon returns the highest event ID below which no row can still
// appear (PostgreSQL). idle is true when there is nothing to score, which
// spares the table lock.
func (db *DB) eventHorizon(ctx context.Context) (h int64, idle bool, err error) {
	var cursor, maxID int64
	var rescans bool
	err = db.QueryRowContext(ctx, `SELECT (SELECT last_event_id FROM score_cursor WHERE id = 1),
		(SELECT COALESCE(MAX(id), 0) FROM events), EXISTS (SELECT 1 FROM score_rescans)`).Scan(&cursor, &maxID, &rescans)
	if err != nil {
		return 0, false, fmt.Errorf("read scoring cursor: %w", err)
	}
	if maxID <= cursor && !rescans {
		return 0, true, nil
	}
	err = db.withTx(ctx, func(tx *sqlxTx) error {
		// A bounded wait: a slow insert delays scoring by a tick, never
		// holds tracking writes behind this lock for long.
		if _, err := tx.ExecContext(ctx, `SET LOCAL lock_timeout = '2s'`); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `LOCK TABLE events IN SHARE MODE`); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM events`).Scan(&h)
	})
	if err != nil {
		return 0, false, fmt.Errorf("take events horizon: %w", err)
	}
	return h, false, nil
}

// scoring is one run's transaction and what it has loaded.
type scoring struct {
	db        *DB
	tx        *sqlxTx
	rules     campaign.ScoreRules
	halfLife  time.Duration
	now       time.Time
	cursor    int64
	lastOwner int64
	contacts  map[int64]*scoreContact
	hooks     []webhookTarget
	leads     int
	reversed  int
}

// scoreContact is a contact's scoring state within a run.
type scoreContact struct {
	id        int64
	email     string
	firstName string
	lastName  string
	attrs     campaign.Attributes
	stage     campaign.LifecycleStage
	state     campaign.ScoreState
	dirty     bool
	reversed  bool // points were taken back in this run
}

// scoredEvent is an event as scoring reads it.
type scoredEvent struct {
	campaign.Event
	Intent string
}

// beginScoring takes the cursor (nil when another run holds it) and
// loads the rules and webhook endpoints.
func (db *DB) beginScoring(ctx context.Context, tx *sqlxTx) (*scoring, error) {
	q := `SELECT last_event_id, last_owner_id FROM score_cursor WHERE id = 1`
	if db.Dialect == Postgres {
		q += ` FOR UPDATE SKIP LOCKED`
	}
	s := &scoring{db: db, tx: tx, now: db.now(), contacts: map[int64]*scoreContact{}}
	err := tx.QueryRowContext(ctx, q).Scan(&s.cursor, &s.lastOwner)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lock scoring cursor: %w", err)
	}
	if s.rules, err = loadRules(ctx, tx, db); err != nil {
		return nil, err
	}
	s.halfLife = s.rules.HalfLife()
	if s.hooks, err = activeWebhooks(ctx, tx); err != nil {
		return nil, err
	}
	return s, nil
}

// A click's intent is the data-funnel-intent of the link it hit, as the
// sender recorded it for the delivery or the campaign; an intent written
// on the event itself wins.
const scoredEventColumns = `id, delivery_id, contact_id, campaign_id, kind, link, human, reason, occurred_at,
	COALESCE(NULLIF(intent, ''),
		(SELECT dl.intent FROM delivery_links dl WHERE dl.delivery_id = events.delivery_id AND dl.url = events.link LIMIT 1),
		(SELECT cl.intent FROM campaign_links cl WHERE cl.campaign_id = events.campaign_id AND cl.url = events.link LIMIT 1),
		'')`

func (s *scoring) scanEvents(rows *sql.Rows) ([]scoredEvent, error) {
	defer rows.Close()
	var out []scoredEvent
	for rows.Next() {
		var e scoredEvent
		var delivery, camp sql.NullInt64
		if err := rows.Scan(&e.ID, &delivery, &e.ContactID, &camp, &e.Kind, &e.Link, &e.Human, &e.Reason, &e.OccurredAt, &e.Intent); err != nil {
			return nil, err
		}
		e.DeliveryID, e.CampaignID, e.OccurredAt = delivery.Int64, camp.Int64, e.OccurredAt.UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// cursorEvents reads the events past the cursor, up to horizon, that can
// change a score: human opens and clicks, unsubscribes, bounces and
// complaints. Sends and machine events are passed over.
func (s *scoring) cursorEvents(ctx context.Context, horizon int64, limit int) ([]scoredEvent, error) {
	rows, err := s.tx.QueryContext(ctx, s.db.rebind(`SELECT `+scoredEventColumns+` FROM events
		WHERE id > ? AND id <= ?
		  AND ((kind IN ('opened', 'clicked') AND human) OR kind IN ('unsubscribed', 'bounced', 'complained'))
		ORDER BY id LIMIT ?`), s.cursor, horizon, limit)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return s.scanEvents(rows)
}

// rescanEvents takes events from the rescan queue: the opens and clicks
// whose verdict changed, with their verdict now.
func (s *scoring) rescanEvents(ctx context.Context, limit int) ([]scoredEvent, error) {
	rows, err := s.tx.QueryContext(ctx, s.db.rebind(`DELETE FROM score_rescans WHERE event_id IN
		(SELECT event_id FROM score_rescans ORDER BY event_id LIMIT ?) RETURNING event_id`), limit)
	if err != nil {
		return nil, fmt.Errorf("take rescans: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(ids) == 0 {
		return nil, err
	}
	q, args, err := sqlx.In(`SELECT `+scoredEventColumns+` FROM events WHERE id IN (?) AND kind IN ('opened', 'clicked') ORDER BY id`, ids)
	if err != nil {
		return nil, err
	}
	r2, err := s.tx.QueryContext(ctx, s.db.rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("read rescanned events: %w", err)
	}
	return s.scanEvents(r2)
}

// contact loads (once per run) what scoring needs of a contact; nil when
// the contact is gone.
func (s *scoring) contact(ctx context.Context, id int64) (*scoreContact, error) {
	if c, ok := s.contacts[id]; ok {
		return c, nil
	}
	c := &scoreContact{id: id}
	var (
		attrs    []byte
		score    sql.NullFloat64
		last     sql.NullTime
		halvings sql.NullInt64
		disq     sql.NullBool
	)
	err := s.tx.QueryRowContext(ctx, s.db.rebind(`SELECT c.email, c.first_name, c.last_name, c.attributes, c.lifecycle_stage,
		s.score, s.last_activity_at, s.halvings, s.disqualified
		FROM contacts c LEFT JOIN contact_scores s ON s.contact_id = c.id WHERE c.id = ?`), id).
		Scan(&c.email, &c.firstName, &c.lastName, &attrs, &c.stage, &score, &last, &halvings, &disq)
	if errors.Is(err, sql.ErrNoRows) {
		s.contacts[id] = nil
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load contact %d: %w", id, err)
	}
	_ = json.Unmarshal(attrs, &c.attrs)
	c.state = campaign.ScoreState{Score: score.Float64, Halvings: int(halvings.Int64), Disqualified: disq.Bool}
	if last.Valid {
		c.state.LastActivity = last.Time.UTC()
	}
	s.contacts[id] = c
	return c, nil
}

// apply scores one event.
func (s *scoring) apply(ctx context.Context, e scoredEvent) error {
	c, err := s.contact(ctx, e.ContactID)
	if err != nil || c == nil || c.state.Disqualified {
		return err
	}
	at := c.state.ApplyAt(e.OccurredAt, s.halfLife)
	if err := s.decay(ctx, c, at); err != nil {
		return err
	}
	if campaign.Disqualifies(e.Kind) {
		return s.disqualify(ctx, c, e, at)
	}
	before := c.state.Score
	for _, a := range s.rules.Awards(&e.Event, e.Intent) {
		if a.Points <= 0 {
			continue
		}
		ok, err := s.ledger(ctx, c, a.Rule, a.OnceKey, e.ID, e.CampaignID, e.Link, a.Points, at)
		if err != nil {
			return err
		}
		if ok {
			c.state.Score += a.Points
		}
	}
	c.state.Touch(at)
	c.dirty = true
	if c.stage == campaign.StageSubscriber {
		if err := s.setStage(ctx, c, campaign.StageEngaged, "engaged: first human "+string(e.Kind), 0); err != nil {
			return err
		}
	}
	if c.state.Score >= s.rules.Threshold {
		return s.qualify(ctx, c, e.CampaignID, before)
	}
	return nil
}

// decay writes the halvings due at t as one ledger row.
func (s *scoring) decay(ctx context.Context, c *scoreContact, t time.Time) error {
	prev := c.state
	delta, at, ok := c.state.Decay(t, s.halfLife)
	if !ok && c.state.Halvings == prev.Halvings {
		return nil
	}
	c.dirty = true
	if !ok {
		return nil
	}
	key := fmt.Sprintf("%d/%d", prev.LastActivity.UnixMicro(), c.state.Halvings)
	c.state.Score = prev.Score // ledger adds delta back when the row is new
	inserted, err := s.ledger(ctx, c, campaign.RuleDecay, key, 0, 0, "", delta, at)
	if err != nil {
		return err
	}
	if inserted {
		c.state.Score += delta
	}
	return nil
}

// disqualify zeroes the score, moves the stage and, for an unsubscribe,
// tells the webhooks.
func (s *scoring) disqualify(ctx context.Context, c *scoreContact, e scoredEvent, at time.Time) error {
	if _, err := s.ledger(ctx, c, campaign.RuleDisqualify, "contact", e.ID, e.CampaignID, "", -c.state.Score, at); err != nil {
		return err
	}
	c.state.Score, c.state.Disqualified, c.dirty = 0, true, true
	switch c.stage {
	case campaign.StageSubscriber, campaign.StageEngaged, campaign.StageRecycled, campaign.StageMQL:
		if err := s.setStage(ctx, c, campaign.StageDisqualified, "disqualified: "+string(e.Kind), 0); err != nil {
			return err
		}
	}
	if e.Kind != campaign.EventUnsubscribed {
		return nil
	}
	return s.notify(ctx, campaign.WebhookContactUnsubscribe, map[string]any{
		"contact_id": c.id, "email": c.email, "campaign_id": e.CampaignID, "event_id": e.ID, "occurred_at": e.OccurredAt,
	})
}

// ruleReversed begins the rule of a ledger row that takes back an award
// of an event judged machine after it was scored; the event's reason
// follows ("reversed:honeypot-window").
const ruleReversed = "reversed:"

// reversedKey is the once key an award gets when it is reversed: the key
// it held is free again, and the award is not reversed twice.
func reversedKey(awardID int64) string { return fmt.Sprintf("reversed:%d", awardID) }

// award is a ledger row that an open or click earned.
type award struct {
	id, contactID, eventID int64
	points                 float64
}

// reverse takes back what events now judged machine earned when they were
// scored as human: those at or below the cursor the run started from, or
// among the events it scored (sorted by ID; a verdict changed while it
// ran). Then each of their contacts' leads and stages are corrected
// (restage). scoredTo is the cursor after the run.
func (s *scoring) reverse(ctx context.Context, machine, scored []scoredEvent, scoredTo int64) error {
	var events []scoredEvent
	for _, e := range machine {
		_, inRun := slices.BinarySearchFunc(scored, e.ID, func(o scoredEvent, id int64) int { return cmp.Compare(o.ID, id) })
		if e.ID <= s.cursor || inRun {
			events = append(events, e)
		}
	}
	if len(events) == 0 {
		return nil
	}
	byID := make(map[int64]scoredEvent, len(events))
	var contactIDs, eventIDs []int64
	for _, e := range events {
		byID[e.ID] = e
		contactIDs, eventIDs = append(contactIDs, e.ContactID), append(eventIDs, e.ID)
	}
	awards, err := s.awards(ctx, contactIDs, eventIDs)
	if err != nil {
		return err
	}
	for _, a := range awards {
		c, err := s.contact(ctx, a.contactID)
		if err != nil {
			return err
		}
		if c == nil || c.state.Disqualified {
			continue
		}
		if err := s.takeBack(ctx, c, a, byID[a.eventID], scoredTo); err != nil {
			return fmt.Errorf("reverse event %d: %w", a.eventID, err)
		}
	}
	restaged := map[int64]bool{}
	for _, e := range events {
		if restaged[e.ContactID] {
			continue
		}
		restaged[e.ContactID] = true
		c, err := s.contact(ctx, e.ContactID)
		if err != nil {
			return err
		}
		if err := s.restage(ctx, c, e); err != nil {
			return err
		}
	}
	return nil
}

// awards returns the unreversed awards of events, oldest first.
func (s *scoring) awards(ctx context.Context, contactIDs, eventIDs []int64) ([]award, error) {
	q, args, err := sqlx.In(`SELECT id, contact_id, event_id, points FROM score_ledger
		WHERE contact_id IN (?) AND event_id IN (?) AND rule IN (?) AND once_key NOT LIKE 'reversed:%'
		ORDER BY id`, contactIDs, eventIDs, []string{campaign.RuleOpen, campaign.RuleClick, campaign.RuleHighIntentClick})
	if err != nil {
		return nil, err
	}
	rows, err := s.tx.QueryContext(ctx, s.db.rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("read awards to reverse: %w", err)
	}
	defer rows.Close()
	var out []award
	for rows.Next() {
		var a award
		if err := rows.Scan(&a.id, &a.contactID, &a.eventID, &a.points); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// takeBack writes the ledger row that reverses award a of event e, frees
// the award's once key, and queues the contact's earliest other human
// event of the same campaign (and link) scored by scoredTo, which that key
// may have kept from earning the award.
func (s *scoring) takeBack(ctx context.Context, c *scoreContact, a award, e scoredEvent, scoredTo int64) error {
	worth, err := s.remaining(ctx, c.id, a)
	if err != nil {
		return err
	}
	worth = min(worth, max(c.state.Score, 0))
	ok, err := s.ledger(ctx, c, ruleReversed+e.Reason, fmt.Sprint(a.id), e.ID, e.CampaignID, e.Link, -worth, s.now)
	if err != nil || !ok {
		return err
	}
	c.state.Score -= worth
	c.dirty, c.reversed = true, true
	s.reversed++
	// The award keeps its points, the ledger its history: only the key
	// that made it once per campaign (or link) moves aside.
	if _, err := s.tx.ExecContext(ctx, s.db.rebind(`UPDATE score_ledger SET once_key = ? WHERE id = ?`), reversedKey(a.id), a.id); err != nil {
		return fmt.Errorf("mark award %d reversed: %w", a.id, err)
	}
	if e.CampaignID == 0 {
		return nil // its key was the event's own
	}
	q := `SELECT MIN(id) FROM events WHERE contact_id = ? AND campaign_id = ? AND kind = ? AND human AND id <> ? AND id <= ?`
	args := []any{c.id, e.CampaignID, e.Kind, e.ID, scoredTo}
	if e.Kind == campaign.EventClicked {
		q += ` AND link = ?`
		args = append(args, e.Link)
	}
	var other sql.NullInt64
	if err := s.tx.QueryRowContext(ctx, s.db.rebind(q), args...).Scan(&other); err != nil {
		return fmt.Errorf("find events held back by award %d: %w", a.id, err)
	}
	if !other.Valid {
		return nil
	}
	_, err = s.tx.ExecContext(ctx, s.db.rebind(`INSERT INTO score_rescans (event_id) VALUES (?) ON CONFLICT DO NOTHING`), other.Int64)
	if err != nil {
		return fmt.Errorf("queue event %d: %w", other.Int64, err)
	}
	return nil
}

// remaining returns what award a still adds to its contact's score: its
// points, halved by every halving written since (decay halves the whole
// score, so every part of it alike).
func (s *scoring) remaining(ctx context.Context, contactID int64, a award) (float64, error) {
	rows, err := s.tx.QueryContext(ctx, s.db.rebind(`SELECT points, score_after FROM score_ledger
		WHERE contact_id = ? AND rule = ? AND id > ? ORDER BY id`), contactID, campaign.RuleDecay, a.id)
	if err != nil {
		return 0, fmt.Errorf("read decay since award %d: %w", a.id, err)
	}
	defer rows.Close()
	worth := a.points
	for rows.Next() {
		var points, after float64
		if err := rows.Scan(&points, &after); err != nil {
			return 0, err
		}
		if before := after - points; before > 0 {
			worth *= after / before
		}
	}
	return worth, rows.Err()
}

// restage corrects a contact's lead and stage after event e was judged
// machine: when points were taken back and the score is now below the
// threshold, a lead sales has not touched (status new) is withdrawn
// (rejected with the reason, the contact recycled, lead.updated sent); an
// engaged contact without any human open or click left is a subscriber
// again.
func (s *scoring) restage(ctx context.Context, c *scoreContact, e scoredEvent) error {
	if c == nil || c.state.Disqualified {
		return nil
	}
	what := "click"
	if e.Kind == campaign.EventOpened {
		what = "open"
	}
	why := fmt.Sprintf("its %s in campaign %d was judged machine (%s)", what, e.CampaignID, e.Reason)
	if c.reversed && c.state.Score < s.rules.Threshold {
		var leadID int64
		err := s.tx.QueryRowContext(ctx, s.db.rebind(`UPDATE leads SET status = 'rejected', reason = ?, updated_at = ?
			WHERE contact_id = ? AND status = 'new' RETURNING id`), "withdrawn: the score fell below the threshold when "+why, s.now, c.id).Scan(&leadID)
		switch {
		case err == nil:
			if err := s.setStage(ctx, c, campaign.StageRecycled, "recycled: lead withdrawn, "+why, leadID); err != nil {
				return err
			}
			return s.notifyLead(ctx, campaign.WebhookLeadUpdated, leadID)
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("withdraw lead of contact %d: %w", c.id, err)
		}
	}
	if c.stage != campaign.StageEngaged {
		return nil
	}
	var active bool
	err := s.tx.QueryRowContext(ctx, s.db.rebind(`SELECT EXISTS (SELECT 1 FROM events
		WHERE contact_id = ? AND kind IN ('opened', 'clicked') AND human)`), c.id).Scan(&active)
	if err != nil {
		return fmt.Errorf("find human events of contact %d: %w", c.id, err)
	}
	if active {
		return nil
	}
	return s.setStage(ctx, c, campaign.StageSubscriber, "subscriber: "+why, 0)
}

// ledger inserts a ledger row unless the contact holds one with the same
// rule and once key; it reports whether it did.
func (s *scoring) ledger(ctx context.Context, c *scoreContact, rule, key string, eventID, campaignID int64, link string, points float64, at time.Time) (bool, error) {
	var id int64
	err := s.tx.QueryRowContext(ctx, s.db.rebind(`INSERT INTO score_ledger
		(contact_id, rule, rule_version, once_key, event_id, campaign_id, link, points, score_after, at, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (contact_id, rule, once_key) DO NOTHING RETURNING id`),
		c.id, rule, s.rules.Version, key, nullID(eventID), nullID(campaignID), link, points, c.state.Score+points, at, s.now).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("write ledger: %w", err)
	}
	return true, nil
}

// setStage moves a contact to a lifecycle stage and records the change.
func (s *scoring) setStage(ctx context.Context, c *scoreContact, to campaign.LifecycleStage, reason string, leadID int64) error {
	if err := changeStage(ctx, s.db, s.tx, c.id, c.stage, to, reason, leadID, 0, s.now); err != nil {
		return err
	}
	c.stage = to
	return nil
}

// changeStage updates contacts.lifecycle_stage and writes the history row.
func changeStage(ctx context.Context, db *DB, tx *sqlxTx, contactID int64, from, to campaign.LifecycleStage, reason string, leadID, userID int64, now time.Time) error {
	if from == to {
		return nil
	}
	if _, err := tx.ExecContext(ctx, db.rebind(`UPDATE contacts SET lifecycle_stage = ? WHERE id = ?`), to, contactID); err != nil {
		return fmt.Errorf("set stage of contact %d: %w", contactID, err)
	}
	_, err := tx.ExecContext(ctx, db.rebind(`INSERT INTO stage_history (contact_id, from_stage, to_stage, reason, lead_id, user_id, at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`), contactID, from, to, reason, nullID(leadID), nullID(userID), now)
	if err != nil {
		return fmt.Errorf("record stage change of contact %d: %w", contactID, err)
	}
	return nil
}

// qualify makes a contact at or above the threshold a lead: it creates
// the lead (one per contact), or reopens a rejected or lost one when the
// score has just crossed the threshold again.
func (s *scoring) qualify(ctx context.Context, c *scoreContact, campaignID int64, before float64) error {
	var leadID int64
	var status campaign.LeadStatus
	err := s.tx.QueryRowContext(ctx, s.db.rebind(`SELECT id, status FROM leads WHERE contact_id = ?`), c.id).Scan(&leadID, &status)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return s.createLead(ctx, c, campaignID)
	case err != nil:
		return fmt.Errorf("find lead of contact %d: %w", c.id, err)
	case (status == campaign.LeadRejected || status == campaign.LeadLost) && before < s.rules.Threshold:
		res, err := s.tx.ExecContext(ctx, s.db.rebind(`UPDATE leads SET status = 'new', reason = '', updated_at = ?
			WHERE id = ? AND status IN ('rejected', 'lost')`), s.now, leadID)
		if err != nil {
			return fmt.Errorf("requalify lead %d: %w", leadID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		s.leads++
		if err := s.setStage(ctx, c, campaign.StageMQL, "requalified", leadID); err != nil {
			return err
		}
		return s.notifyLead(ctx, campaign.WebhookLeadUpdated, leadID)
	}
	return nil
}

func (s *scoring) createLead(ctx context.Context, c *scoreContact, campaignID int64) error {
	owner, err := s.owner(ctx, c)
	if err != nil {
		return err
	}
	var id int64
	err = s.tx.QueryRowContext(ctx, s.db.rebind(`INSERT INTO leads (contact_id, status, owner_user_id, score_at_creation, score, campaign_id, created_at, updated_at)
		VALUES (?, 'new', ?, ?, ?, ?, ?, ?) ON CONFLICT (contact_id) DO NOTHING RETURNING id`),
		c.id, nullID(owner), c.state.Score, c.state.Score, nullID(campaignID), s.now, s.now).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // another run made it: one lead per contact
	}
	if err != nil {
		return fmt.Errorf("create lead for contact %d: %w", c.id, err)
	}
	s.leads++
	switch c.stage {
	case campaign.StageSubscriber, campaign.StageEngaged, campaign.StageRecycled, campaign.StageDisqualified:
		if err := s.setStage(ctx, c, campaign.StageMQL, "qualified: score reached the threshold", id); err != nil {
			return err
		}
	}
	return s.notifyLead(ctx, campaign.WebhookLeadCreated, id)
}

// owner picks a new lead's owner: the first owner rule that matches the
// contact's attributes (if its user is enabled), else the next enabled
// sales user after the last one given a lead (round-robin), else none.
func (s *scoring) owner(ctx context.Context, c *scoreContact) (int64, error) {
	if id := s.rules.OwnerFor(c.attrs); id != 0 {
		var n int
		err := s.tx.QueryRowContext(ctx, s.db.rebind(`SELECT COUNT(*) FROM users WHERE id = ? AND disabled_at IS NULL`), id).Scan(&n)
		if err != nil {
			return 0, fmt.Errorf("check lead owner: %w", err)
		}
		if n > 0 {
			return id, nil
		}
	}
	var id int64
	err := s.tx.QueryRowContext(ctx, s.db.rebind(`SELECT COALESCE(
		(SELECT MIN(id) FROM users WHERE role = 'sales' AND disabled_at IS NULL AND id > ?),
		(SELECT MIN(id) FROM users WHERE role = 'sales' AND disabled_at IS NULL), 0)`), s.lastOwner).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("pick lead owner: %w", err)
	}
	if id != 0 {
		s.lastOwner = id
	}
	return id, nil
}

// notifyLead queues a lead event for the webhooks with the lead as it is
// now in this transaction.
func (s *scoring) notifyLead(ctx context.Context, event string, leadID int64) error {
	if len(s.hooks) == 0 {
		return nil
	}
	if err := s.flush(ctx); err != nil { // the payload carries the current score
		return err
	}
	l, err := findLead(ctx, s.db, s.tx, leadID)
	if err != nil {
		return err
	}
	return s.notify(ctx, event, map[string]any{"lead": l})
}

func (s *scoring) notify(ctx context.Context, event string, data any) error {
	return queueWebhooks(ctx, s.db, s.tx, s.hooks, event, data, s.now)
}

// flush writes the state of every contact changed in this run.
func (s *scoring) flush(ctx context.Context) error {
	for _, c := range s.contacts {
		if c == nil || !c.dirty {
			continue
		}
		if err := writeScoreState(ctx, s.db, s.tx, c.id, c.state, s.halfLife, s.now); err != nil {
			return err
		}
		c.dirty = false
	}
	return nil
}

func writeScoreState(ctx context.Context, db *DB, tx *sqlxTx, id int64, st campaign.ScoreState, halfLife time.Duration, now time.Time) error {
	var last, next any
	if !st.LastActivity.IsZero() {
		last = st.LastActivity
	}
	if n := st.NextDecay(halfLife); !n.IsZero() {
		next = n
	}
	_, err := tx.ExecContext(ctx, db.rebind(`INSERT INTO contact_scores (contact_id, score, last_activity_at, halvings, next_decay_at, disqualified, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (contact_id) DO UPDATE SET score = excluded.score, last_activity_at = excluded.last_activity_at,
			halvings = excluded.halvings, next_decay_at = excluded.next_decay_at, disqualified = excluded.disqualified,
			updated_at = excluded.updated_at`), id, st.Score, last, st.Halvings, next, st.Disqualified, now)
	if err != nil {
		return fmt.Errorf("write score of contact %d: %w", id, err)
	}
	if _, err := tx.ExecContext(ctx, db.rebind(`UPDATE contacts SET score = ? WHERE id = ?`), st.Score, id); err != nil {
		return fmt.Errorf("write score of contact %d: %w", id, err)
	}
	// The lead's copy orders the leads board (migration 00011).
	if _, err := tx.ExecContext(ctx, db.rebind(`UPDATE leads SET score = ? WHERE contact_id = ?`), st.Score, id); err != nil {
		return fmt.Errorf("write score of contact %d's lead: %w", id, err)
	}
	return nil
}

// DecayScores writes the halvings due now for at most limit contacts and
// returns how many it decayed. It takes the scoring cursor like
// ScoreEvents, so it never interleaves with a scoring run; busy is true
// when another run held it.
func (db *DB) DecayScores(ctx context.Context, limit int) (n int, busy bool, err error) {
	if limit <= 0 {
		limit = 500
	}
	err = db.withTx(ctx, func(tx *sqlxTx) error {
		s, err := db.beginScoring(ctx, tx)
		if err != nil || s == nil {
			busy = s == nil && err == nil
			return err
		}
		rows, err := tx.QueryContext(ctx, db.rebind(`SELECT contact_id FROM contact_scores
			WHERE next_decay_at IS NOT NULL AND next_decay_at <= ? ORDER BY next_decay_at LIMIT ?`), s.now, limit)
		if err != nil {
			return fmt.Errorf("find decaying scores: %w", err)
		}
		var ids []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		for _, id := range ids {
			c, err := s.contact(ctx, id)
			if err != nil || c == nil {
				return err
			}
			if err := s.decay(ctx, c, s.now); err != nil {
				return err
			}
			c.dirty = true // also rewrites next_decay_at when the score is already 0
		}
		n = len(ids)
		return s.flush(ctx)
	})
	if err != nil {
		return 0, false, fmt.Errorf("decay scores: %w", err)
	}
	return n, busy, nil
}

// ScoreLedger returns a contact's ledger rows, oldest first.
func (db *DB) ScoreLedger(ctx context.Context, contactID int64) ([]campaign.LedgerEntry, error) {
	return scoreLedger(ctx, db, db.DB, contactID)
}

type rowsQueryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func scoreLedger(ctx context.Context, db *DB, q rowsQueryer, contactID int64) ([]campaign.LedgerEntry, error) {
	rows, err := q.QueryContext(ctx, db.rebind(`SELECT id, contact_id, rule, rule_version, event_id, campaign_id, link, points, score_after, at
		FROM score_ledger WHERE contact_id = ? ORDER BY id`), contactID)
	if err != nil {
		return nil, fmt.Errorf("read ledger of contact %d: %w", contactID, err)
	}
	defer rows.Close()
	out := []campaign.LedgerEntry{}
	for rows.Next() {
		var e campaign.LedgerEntry
		var ev, camp sql.NullInt64
		if err := rows.Scan(&e.ID, &e.ContactID, &e.Rule, &e.RuleVersion, &ev, &camp, &e.Link, &e.Points, &e.ScoreAfter, &e.At); err != nil {
			return nil, err
		}
		e.EventID, e.CampaignID, e.At = ev.Int64, camp.Int64, e.At.UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// ContactScore explains a contact's score at the store's clock: the ledger
// rows, their total (the settled score) and the decay due but not yet
// written. An unknown contact is ENOTFOUND.
func (db *DB) ContactScore(ctx context.Context, contactID int64) (*campaign.ScoreReport, error) {
	rules, err := db.ScoreRules(ctx)
	if err != nil {
		return nil, err
	}
	rep := &campaign.ScoreReport{ContactID: contactID, Threshold: rules.Threshold, HalfLife: rules.HalfLifeDays, AsOf: db.now()}
	var (
		score    sql.NullFloat64
		last     sql.NullTime
		halvings sql.NullInt64
		disq     sql.NullBool
	)
	err = db.QueryRowContext(ctx, db.rebind(`SELECT c.lifecycle_stage, s.score, s.last_activity_at, s.halvings, s.disqualified
		FROM contacts c LEFT JOIN contact_scores s ON s.contact_id = c.id WHERE c.id = ?`), contactID).
		Scan(&rep.Stage, &score, &last, &halvings, &disq)
	if err != nil {
		return nil, notFound(err, "contact %d not found", contactID)
	}
	rep.State = campaign.ScoreState{Score: score.Float64, Halvings: int(halvings.Int64), Disqualified: disq.Bool}
	if last.Valid {
		rep.State.LastActivity = last.Time.UTC()
	}
	if rep.Entries, err = db.ScoreLedger(ctx, contactID); err != nil {
		return nil, err
	}
	for _, e := range rep.Entries {
		rep.Ledger += e.Points
	}
	hl := rules.HalfLife()
	rep.Score = rep.State.Current(rep.AsOf, hl)
	rep.Pending = rep.Score - rep.State.Score
	if n := rep.State.NextDecay(hl); !n.IsZero() {
		rep.NextDecay = &n
	}
	return rep, nil
}

// StageHistory returns a contact's lifecycle changes, oldest first.
func (db *DB) StageHistory(ctx context.Context, contactID int64) ([]campaign.StageChange, error) {
	rows, err := db.QueryContext(ctx, db.rebind(`SELECT id, contact_id, from_stage, to_stage, reason, lead_id, user_id, at
		FROM stage_history WHERE contact_id = ? ORDER BY id`), contactID)
	if err != nil {
		return nil, fmt.Errorf("read stage history of contact %d: %w", contactID, err)
	}
	defer rows.Close()
	out := []campaign.StageChange{}
	for rows.Next() {
		var c campaign.StageChange
		var lead, user sql.NullInt64
		if err := rows.Scan(&c.ID, &c.ContactID, &c.From, &c.To, &c.Reason, &lead, &user, &c.At); err != nil {
			return nil, err
		}
		c.LeadID, c.UserID, c.At = lead.Int64, user.Int64, c.At.UTC()
		out = append(out, c)
	}
	return out, rows.Err()
}
