package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/funnel-email/funnel/campaign"
)

const templateColumns = `id, name, subject, html, text, layout, preheader, created_at, updated_at`

// CreateTemplate validates and inserts t, filling its ID and times. The
// caller checks the template sources (templates.Check) first; the store
// checks only what campaign.Template.Validate covers. A duplicate name is
// ECONFLICT.
func (db *DB) CreateTemplate(ctx context.Context, t *campaign.Template) error {
	if err := t.Validate(); err != nil {
		return err
	}
	t.Layout = t.LayoutName()
	now := db.now()
	t.CreatedAt, t.UpdatedAt = now, now
	err := db.QueryRowxContext(ctx, db.rebind(`INSERT INTO templates (name, subject, html, text, layout, preheader, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
		t.Name, t.Subject, t.HTML, t.Text, t.Layout, t.Preheader, now, now).Scan(&t.ID)
	if isUniqueViolation(err) {
		return campaign.Errorf(campaign.ECONFLICT, "a template named %q already exists", t.Name)
	}
	if err != nil {
		return fmt.Errorf("insert template: %w", err)
	}
	return nil
}

// FindTemplate returns the template with the given ID, or ENOTFOUND.
func (db *DB) FindTemplate(ctx context.Context, id int64) (*campaign.Template, error) {
	var t campaign.Template
	err := db.QueryRowxContext(ctx, db.rebind(`SELECT `+templateColumns+` FROM templates WHERE id = ?`), id).
		Scan(&t.ID, &t.Name, &t.Subject, &t.HTML, &t.Text, &t.Layout, &t.Preheader, &t.CreatedAt, &t.UpdatedAt)
	if err != nil {
		return nil, notFound(err, "template %d not found", id)
	}
	t.CreatedAt, t.UpdatedAt = t.CreatedAt.UTC(), t.UpdatedAt.UTC()
	return &t, nil
}

// UpdateTemplate replaces the editable fields of template t.ID whatever
// its version (the last write wins); see UpdateTemplateIf.
func (db *DB) UpdateTemplate(ctx context.Context, t *campaign.Template) error {
	return db.UpdateTemplateIf(ctx, t, time.Time{})
}

// UpdateTemplateIf replaces the editable fields of template t.ID, but only
// while its version (updated_at) is still version; a zero version skips
// that check. It sets t.UpdatedAt to the new version and returns
// ENOTFOUND, EINVALID, ESTALE for a template changed since version, or
// ECONFLICT for a name another template has.
func (db *DB) UpdateTemplateIf(ctx context.Context, t *campaign.Template, version time.Time) error {
	if err := t.Validate(); err != nil {
		return err
	}
	t.Layout = t.LayoutName()
	err := db.withTx(ctx, func(tx *sqlxTx) error {
		cur, next, err := db.lockVersion(ctx, tx, "templates", "template", t.ID, version)
		if err != nil {
			return err
		}
		err = tx.QueryRowxContext(ctx, db.rebind(`UPDATE templates SET name = ?, subject = ?, html = ?, text = ?, layout = ?,
			preheader = ?, updated_at = ? WHERE id = ? AND updated_at = ? RETURNING created_at`),
			t.Name, t.Subject, t.HTML, t.Text, t.Layout, t.Preheader, next, t.ID, cur).Scan(&t.CreatedAt)
		switch {
		case isUniqueViolation(err):
			return campaign.Errorf(campaign.ECONFLICT, "a template named %q already exists", t.Name)
		case errors.Is(err, sql.ErrNoRows):
			return staleError("template", t.ID)
		case err != nil:
			return fmt.Errorf("update template %d: %w", t.ID, err)
		}
		t.UpdatedAt = next
		return nil
	})
	if err != nil {
		return err
	}
	t.CreatedAt = t.CreatedAt.UTC()
	return nil
}

// DeleteTemplate removes a template that no campaign uses: ECONFLICT
// names a campaign that does, ENOTFOUND a template that is not there.
func (db *DB) DeleteTemplate(ctx context.Context, id int64) error {
	return db.withTx(ctx, func(tx *sqlxTx) error {
		// A campaign keeps its template for ever: its report and its
		// duplicates read it.
		var user struct {
			ID   int64  `db:"id"`
			Name string `db:"name"`
		}
		err := tx.GetContext(ctx, &user, db.rebind(`SELECT id, name FROM campaigns WHERE template_id = ? ORDER BY id LIMIT 1`), id)
		if err == nil {
			return campaign.Errorf(campaign.ECONFLICT, "template %d is used by campaign %d (%s): it cannot be deleted", id, user.ID, user.Name)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("delete template %d: %w", id, err)
		}
		res, err := tx.ExecContext(ctx, db.rebind(`DELETE FROM templates WHERE id = ?`), id)
		if isForeignKeyViolation(err) {
			return campaign.Errorf(campaign.ECONFLICT, "template %d is used by a campaign: it cannot be deleted", id)
		}
		if err != nil {
			return fmt.Errorf("delete template %d: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return campaign.Errorf(campaign.ENOTFOUND, "template %d not found", id)
		}
		return nil
	})
}

// ListTemplates returns templates in ID order after the cursor.
func (db *DB) ListTemplates(ctx context.Context, after int64, limit int) ([]*campaign.Template, error) {
	return db.ListTemplatesPage(ctx, Page{After: after, Limit: limit})
}

// ListTemplatesPage returns a page of templates in the order of
// TemplateSorts. An unknown sort is EINVALID.
func (db *DB) ListTemplatesPage(ctx context.Context, p Page) ([]*campaign.Template, error) {
	cond, args, order, err := TemplateSorts.keyset(p.Sort, "id", p.After, p.AfterValue)
	if err != nil {
		return nil, err
	}
	q := `SELECT ` + templateColumns + ` FROM templates` + whereClause(cond) + ` ORDER BY ` + order + ` LIMIT ?`
	rows, err := db.QueryxContext(ctx, db.rebind(q), append(args, p.limit())...)
	if err != nil {
		return nil, fmt.Errorf("list templates: %w", err)
	}
	defer rows.Close()
	out := []*campaign.Template{}
	for rows.Next() {
		var t campaign.Template
		if err := rows.Scan(&t.ID, &t.Name, &t.Subject, &t.HTML, &t.Text, &t.Layout, &t.Preheader, &t.CreatedAt, &t.UpdatedAt); err != nil {
			return nil, err
		}
		t.CreatedAt, t.UpdatedAt = t.CreatedAt.UTC(), t.UpdatedAt.UTC()
		out = append(out, &t)
	}
	return out, rows.Err()
}

// Setting keys.
const settingSender = "sender"

// Sender returns the organisation's sender settings; zero values when none
// were saved.
func (db *DB) Sender(ctx context.Context) (campaign.Sender, error) {
	var s campaign.Sender
	err := db.getSetting(ctx, settingSender, &s)
	return s, err
}

// SetSender validates and saves the organisation's sender settings.
func (db *DB) SetSender(ctx context.Context, s campaign.Sender) error {
	s.FromEmail = campaign.NormalizeEmail(s.FromEmail)
	if err := s.Validate(); err != nil {
		return err
	}
	return db.putSetting(ctx, settingSender, s)
}

func (db *DB) getSetting(ctx context.Context, key string, v any) error {
	var raw []byte
	err := db.GetContext(ctx, &raw, db.rebind(`SELECT value FROM settings WHERE key = ?`), key)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read setting %s: %w", key, err)
	}
	return json.Unmarshal(raw, v)
}

func (db *DB) putSetting(ctx context.Context, key string, v any) error {
	_, err := db.ExecContext(ctx, db.rebind(`INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`), key, jsonText(v), db.now())
	if err != nil {
		return fmt.Errorf("save setting %s: %w", key, err)
	}
	return nil
}
