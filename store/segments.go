package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/funnel-email/funnel/campaign"
)

type segmentRow struct {
	ID          int64     `db:"id"`
	Name        string    `db:"name"`
	Description string    `db:"description"`
	Rule        []byte    `db:"rule"`
	CreatedAt   time.Time `db:"created_at"`
	UpdatedAt   time.Time `db:"updated_at"`
}

const segmentColumns = `id, name, description, rule, created_at, updated_at`

func (r *segmentRow) segment() (*campaign.Segment, error) {
	s := &campaign.Segment{ID: r.ID, Name: r.Name, Description: r.Description,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(), Rule: &campaign.Rule{}}
	if err := json.Unmarshal(r.Rule, s.Rule); err != nil {
		return nil, fmt.Errorf("decode rule of segment %d: %w", r.ID, err)
	}
	return s, nil
}

// ruleLookup resolves segment references through q (the pool or a
// transaction), remembering what it read.
func (db *DB) ruleLookup(ctx context.Context, q sqlx.QueryerContext) campaign.RuleLookup {
	seen := map[int64]*campaign.Rule{}
	return func(id int64) (*campaign.Rule, error) {
		if r, ok := seen[id]; ok {
			return r, nil
		}
		s, err := db.findSegment(ctx, q, id)
		if err != nil {
			return nil, err
		}
		seen[id] = s.Rule
		return s.Rule, nil
	}
}

// CreateSegment normalizes and validates s (its rule included, with the
// segments it references) and inserts it, filling its ID and times. A
// duplicate name is ECONFLICT.
func (db *DB) CreateSegment(ctx context.Context, s *campaign.Segment) error {
	s.ID = 0
	s.Normalize()
	if err := s.Validate(db.ruleLookup(ctx, db)); err != nil {
		return err
	}
	now := db.now()
	s.CreatedAt, s.UpdatedAt = now, now
	q := db.rebind(`INSERT INTO segments (name, description, rule, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?) RETURNING id`)
	err := db.QueryRowxContext(ctx, q, s.Name, s.Description, jsonText(s.Rule), now, now).Scan(&s.ID)
	if isUniqueViolation(err) {
		return campaign.Errorf(campaign.ECONFLICT, "a segment named %q already exists", s.Name)
	}
	if err != nil {
		return fmt.Errorf("insert segment: %w", err)
	}
	return nil
}

// FindSegment returns the segment with the given ID, or ENOTFOUND.
func (db *DB) FindSegment(ctx context.Context, id int64) (*campaign.Segment, error) {
	return db.findSegment(ctx, db, id)
}

func (db *DB) findSegment(ctx context.Context, q sqlx.QueryerContext, id int64) (*campaign.Segment, error) {
	var r segmentRow
	err := sqlx.GetContext(ctx, q, &r, db.rebind(`SELECT `+segmentColumns+` FROM segments WHERE id = ?`), id)
	if err != nil {
		return nil, notFound(err, "segment %d not found", id)
	}
	return r.segment()
}

// UpdateSegment applies patch to the segment with the given ID whatever
// its version (the last write wins); see UpdateSegmentIf.
func (db *DB) UpdateSegment(ctx context.Context, id int64, patch campaign.SegmentPatch) (*campaign.Segment, error) {
	return db.UpdateSegmentIf(ctx, id, patch, time.Time{})
}

// UpdateSegmentIf applies patch to the segment with the given ID in one
// transaction, but only while its version (updated_at) is still version;
// a zero version skips that check. It returns the result with its new
// version, or ENOTFOUND, ESTALE for a segment changed since version,
// EINVALID (a rule that would make segments refer to each other in a loop
// among others), or ECONFLICT for a name already taken.
func (db *DB) UpdateSegmentIf(ctx context.Context, id int64, patch campaign.SegmentPatch, version time.Time) (*campaign.Segment, error) {
	var s *campaign.Segment
	err := db.withTx(ctx, func(tx *sqlxTx) error {
		cur, next, err := db.lockVersion(ctx, tx, "segments", "segment", id, version)
		if err != nil {
			return err
		}
		if s, err = db.findSegment(ctx, tx, id); err != nil {
			return err
		}
		patch.Apply(s)
		if err := s.Validate(db.ruleLookup(ctx, tx)); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, db.rebind(`UPDATE segments SET name = ?, description = ?, rule = ?,
			updated_at = ? WHERE id = ? AND updated_at = ?`), s.Name, s.Description, jsonText(s.Rule), next, id, cur)
		if isUniqueViolation(err) {
			return campaign.Errorf(campaign.ECONFLICT, "a segment named %q already exists", s.Name)
		}
		if err != nil {
			return fmt.Errorf("update segment %d: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return staleError("segment", id)
		}
		s.UpdatedAt = next
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// DeleteSegment removes the segment with the given ID. It returns
// ENOTFOUND, or ECONFLICT while another segment's rule refers to it or a
// campaign that has not drawn its audience yet sends to it.
func (db *DB) DeleteSegment(ctx context.Context, id int64) error {
	return db.withTx(ctx, func(tx *sqlxTx) error {
		var rows []segmentRow
		if err := tx.SelectContext(ctx, &rows, `SELECT `+segmentColumns+` FROM segments ORDER BY id`); err != nil {
			return fmt.Errorf("load segments: %w", err)
		}
		for i := range rows {
			s, err := rows[i].segment()
			if err != nil {
				return err
			}
			if s.ID != id && slices.Contains(s.Rule.Segments(), id) {
				return campaign.Errorf(campaign.ECONFLICT, "segment %d is used by segment %d (%s)", id, s.ID, s.Name)
			}
		}
		// A campaign that has not drawn its audience yet would find the
		// segment gone when it starts (or, on SQLite, which reuses IDs, a
		// later segment under its number).
		var pending []campaignRow
		if err := tx.SelectContext(ctx, &pending, `SELECT `+campaignColumns+` FROM campaigns
			WHERE audience_size IS NULL AND status NOT IN ('cancelled', 'failed') ORDER BY id`); err != nil {
			return fmt.Errorf("load campaigns: %w", err)
		}
		unsent, err := campaignsOf(pending)
		if err != nil {
			return err
		}
		for _, c := range unsent {
			if slices.Contains(c.SegmentIDs, id) || slices.Contains(c.ExcludeSegmentIDs, id) {
				return campaign.Errorf(campaign.ECONFLICT, "segment %d is used by campaign %d (%s), which has not been sent yet", id, c.ID, c.Name)
			}
		}
		res, err := tx.ExecContext(ctx, db.rebind(`DELETE FROM segments WHERE id = ?`), id)
		if err != nil {
			return fmt.Errorf("delete segment %d: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return campaign.Errorf(campaign.ENOTFOUND, "segment %d not found", id)
		}
		return nil
	})
}

// ListSegments returns every segment in ID order, for the pickers of the
// admin pages: segments are written by people, so they are few.
func (db *DB) ListSegments(ctx context.Context) ([]*campaign.Segment, error) {
	var rows []segmentRow
	if err := db.SelectContext(ctx, &rows, `SELECT `+segmentColumns+` FROM segments ORDER BY id`); err != nil {
		return nil, fmt.Errorf("list segments: %w", err)
	}
	return segmentsOf(rows)
}

// ListSegmentsAfter returns at most limit segments (1 to MaxPageSize; 0
// means MaxPageSize) in ID order after the keyset cursor.
func (db *DB) ListSegmentsAfter(ctx context.Context, after int64, limit int) ([]*campaign.Segment, error) {
	return db.ListSegmentsPage(ctx, Page{After: after, Limit: limit})
}

// ListSegmentsPage returns a page of segments in the order of
// SegmentSorts. An unknown sort is EINVALID.
func (db *DB) ListSegmentsPage(ctx context.Context, p Page) ([]*campaign.Segment, error) {
	cond, args, order, err := SegmentSorts.keyset(p.Sort, "id", p.After, p.AfterValue)
	if err != nil {
		return nil, err
	}
	q := `SELECT ` + segmentColumns + ` FROM segments` + whereClause(cond) + ` ORDER BY ` + order + ` LIMIT ?`
	var rows []segmentRow
	err = db.SelectContext(ctx, &rows, db.rebind(q), append(args, p.limit())...)
	if err != nil {
		return nil, fmt.Errorf("list segments: %w", err)
	}
	return segmentsOf(rows)
}

func segmentsOf(rows []segmentRow) ([]*campaign.Segment, error) {
	out := make([]*campaign.Segment, 0, len(rows))
	for i := range rows {
		s, err := rows[i].segment()
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}
