package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/funnel-email/funnel/campaign"
)

// Webhook deliveries use an outbox: the change a delivery reports (a lead
// created or updated, an unsubscribe scored) and the webhook_deliveries
// rows are written in one transaction; the worker reads pending rows and
// POSTs them. A delivery is never lost with the change, nor sent for a
// change that rolled back.

const webhookColumns = `id, url, events, secret, active, description, created_at, updated_at`

func scanWebhook(sc interface{ Scan(...any) error }) (*campaign.Webhook, error) {
	var w campaign.Webhook
	var events []byte
	if err := sc.Scan(&w.ID, &w.URL, &events, &w.Secret, &w.Active, &w.Description, &w.CreatedAt, &w.UpdatedAt); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(events, &w.Events); err != nil {
		return nil, fmt.Errorf("decode events of webhook %d: %w", w.ID, err)
	}
	w.CreatedAt, w.UpdatedAt = w.CreatedAt.UTC(), w.UpdatedAt.UTC()
	w.SecretPrefix = w.Secret[:min(len(w.Secret), 10)]
	return &w, nil
}

// CreateWebhook validates w (allowPrivate: see campaign.CheckWebhookURL),
// generates its secret and stores it. w.Secret holds the secret
// afterwards; it is not returned by reads.
func (db *DB) CreateWebhook(ctx context.Context, w *campaign.Webhook, allowPrivate bool) error {
	if err := w.Validate(allowPrivate); err != nil {
		return err
	}
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	w.Secret = "whsec_" + base64.RawURLEncoding.EncodeToString(raw[:])
	w.SecretPrefix = w.Secret[:10]
	now := db.now()
	w.CreatedAt, w.UpdatedAt = now, now
	events, _ := json.Marshal(w.Events)
	err := db.QueryRowContext(ctx, db.rebind(`INSERT INTO webhooks (url, events, secret, active, description, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`), w.URL, string(events), w.Secret, w.Active, w.Description, now, now).Scan(&w.ID)
	if err != nil {
		return fmt.Errorf("insert webhook: %w", err)
	}
	return nil
}

// FindWebhook returns an endpoint without its secret, or ENOTFOUND.
func (db *DB) FindWebhook(ctx context.Context, id int64) (*campaign.Webhook, error) {
	w, err := scanWebhook(db.QueryRowContext(ctx, db.rebind(`SELECT `+webhookColumns+` FROM webhooks WHERE id = ?`), id))
	if err != nil {
		return nil, notFound(err, "webhook %d not found", id)
	}
	w.Secret = ""
	return w, nil
}

// ListWebhooks returns every endpoint, without secrets.
func (db *DB) ListWebhooks(ctx context.Context) ([]*campaign.Webhook, error) {
	rows, err := db.QueryContext(ctx, `SELECT `+webhookColumns+` FROM webhooks ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	defer rows.Close()
	out := []*campaign.Webhook{}
	for rows.Next() {
		w, err := scanWebhook(rows)
		if err != nil {
			return nil, err
		}
		w.Secret = ""
		out = append(out, w)
	}
	return out, rows.Err()
}

// UpdateWebhook applies p to endpoint id after validating the result.
func (db *DB) UpdateWebhook(ctx context.Context, id int64, p campaign.WebhookPatch, allowPrivate bool) (*campaign.Webhook, error) {
	w, err := db.FindWebhook(ctx, id)
	if err != nil {
		return nil, err
	}
	p.Apply(w)
	if err := w.Validate(allowPrivate); err != nil {
		return nil, err
	}
	w.UpdatedAt = db.now()
	events, _ := json.Marshal(w.Events)
	res, err := db.ExecContext(ctx, db.rebind(`UPDATE webhooks SET url = ?, events = ?, active = ?, description = ?, updated_at = ? WHERE id = ?`),
		w.URL, string(events), w.Active, w.Description, w.UpdatedAt, id)
	if err != nil {
		return nil, fmt.Errorf("update webhook %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, campaign.Errorf(campaign.ENOTFOUND, "webhook %d not found", id)
	}
	return w, nil
}

// DeleteWebhook removes an endpoint and its delivery log.
func (db *DB) DeleteWebhook(ctx context.Context, id int64) error {
	res, err := db.ExecContext(ctx, db.rebind(`DELETE FROM webhooks WHERE id = ?`), id)
	if err != nil {
		return fmt.Errorf("delete webhook %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return campaign.Errorf(campaign.ENOTFOUND, "webhook %d not found", id)
	}
	return nil
}

// webhookTarget is an active endpoint and the events it wants.
type webhookTarget struct {
	id     int64
	events []string
}

func activeWebhooks(ctx context.Context, tx *sqlxTx) ([]webhookTarget, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, events FROM webhooks WHERE active ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("load webhooks: %w", err)
	}
	defer rows.Close()
	var out []webhookTarget
	for rows.Next() {
		var t webhookTarget
		var raw []byte
		if err := rows.Scan(&t.id, &raw); err != nil {
			return nil, err
		}
		if err := json.Unmarshal(raw, &t.events); err != nil {
			return nil, fmt.Errorf("decode events of webhook %d: %w", t.id, err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// queueWebhooks writes one pending delivery of event per target that
// subscribes to it.
func queueWebhooks(ctx context.Context, db *DB, tx *sqlxTx, targets []webhookTarget, event string, data any, now time.Time) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("encode %s payload: %w", event, err)
	}
	for _, t := range targets {
		if !slices.Contains(t.events, event) {
			continue
		}
		_, err := tx.ExecContext(ctx, db.rebind(`INSERT INTO webhook_deliveries (webhook_id, event, data, status, created_at, updated_at)
			VALUES (?, ?, ?, 'pending', ?, ?)`), t.id, event, string(raw), now, now)
		if err != nil {
			return fmt.Errorf("queue %s for webhook %d: %w", event, t.id, err)
		}
	}
	return nil
}

// ClaimWebhookDeliveries returns up to limit pending deliveries that were
// never handed to the queue or were handed over before staleBefore (the
// queue may have lost them), and marks them handed over now. Handing a
// delivery over twice is harmless: its task ID is the delivery ID.
func (db *DB) ClaimWebhookDeliveries(ctx context.Context, staleBefore time.Time, limit int) ([]int64, error) {
	var ids []int64
	err := db.withTx(ctx, func(tx *sqlxTx) error {
		rows, err := tx.QueryContext(ctx, db.rebind(`SELECT id FROM webhook_deliveries
			WHERE status = 'pending' AND (enqueued_at IS NULL OR enqueued_at < ?) ORDER BY id LIMIT ?`), staleBefore, limit)
		if err != nil {
			return err
		}
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
			if _, err := tx.ExecContext(ctx, db.rebind(`UPDATE webhook_deliveries SET enqueued_at = ? WHERE id = ?`), db.now(), id); err != nil {
				return err
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("claim webhook deliveries: %w", err)
	}
	return ids, nil
}

// ReleaseWebhookDelivery marks a claimed delivery as not handed over (its
// enqueue failed), so the next claim takes it again.
func (db *DB) ReleaseWebhookDelivery(ctx context.Context, id int64) error {
	_, err := db.ExecContext(ctx, db.rebind(`UPDATE webhook_deliveries SET enqueued_at = NULL WHERE id = ? AND status = 'pending'`), id)
	return err
}

// WebhookSend is what the worker needs to POST one delivery.
type WebhookSend struct {
	Delivery campaign.WebhookDelivery
	URL      string
	Secret   string
	Active   bool
}

// FindWebhookSend loads a delivery with its endpoint's URL and secret.
func (db *DB) FindWebhookSend(ctx context.Context, id int64) (*WebhookSend, error) {
	var s WebhookSend
	d := &s.Delivery
	var data []byte
	err := db.QueryRowContext(ctx, db.rebind(`SELECT d.id, d.webhook_id, d.event, d.data, d.status, d.attempts, d.status_code, d.error,
		d.created_at, d.updated_at, w.url, w.secret, w.active
		FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id WHERE d.id = ?`), id).
		Scan(&d.ID, &d.WebhookID, &d.Event, &data, &d.Status, &d.Attempts, &d.StatusCode, &d.Error, &d.CreatedAt, &d.UpdatedAt,
			&s.URL, &s.Secret, &s.Active)
	if err != nil {
		return nil, notFound(err, "webhook delivery %d not found", id)
	}
	d.Data = json.RawMessage(data)
	d.CreatedAt, d.UpdatedAt = d.CreatedAt.UTC(), d.UpdatedAt.UTC()
	return &s, nil
}

// RecordWebhookAttempt logs one attempt of a pending delivery and sets its
// status (pending to try again, delivered, or failed for good). It returns
// the attempt's number. A delivery no longer pending is ECONFLICT.
func (db *DB) RecordWebhookAttempt(ctx context.Context, id int64, a campaign.WebhookAttempt, status string) (int, error) {
	var n int
	err := db.withTx(ctx, func(tx *sqlxTx) error {
		err := tx.QueryRowContext(ctx, db.rebind(`UPDATE webhook_deliveries SET attempts = attempts + 1, status = ?, status_code = ?, error = ?, updated_at = ?
			WHERE id = ? AND status = 'pending' RETURNING attempts`), status, a.StatusCode, a.Error, a.At, id).Scan(&n)
		if errors.Is(err, sql.ErrNoRows) {
			return campaign.Errorf(campaign.ECONFLICT, "webhook delivery %d is no longer pending", id)
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, db.rebind(`INSERT INTO webhook_attempts (delivery_id, attempt, status_code, error, duration_ms, at)
			VALUES (?, ?, ?, ?, ?, ?)`), id, n, a.StatusCode, a.Error, a.DurationMS, a.At)
		return err
	})
	if err != nil && campaign.ErrorCode(err) != campaign.ECONFLICT {
		err = fmt.Errorf("record attempt of webhook delivery %d: %w", id, err)
	}
	return n, err
}

// WebhookDeliveries returns an endpoint's most recent deliveries (newest
// first) with every attempt's log.
func (db *DB) WebhookDeliveries(ctx context.Context, webhookID int64, limit int) ([]campaign.WebhookDelivery, error) {
	if _, err := db.FindWebhook(ctx, webhookID); err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, db.rebind(`SELECT id, webhook_id, event, data, status, attempts, status_code, error, created_at, updated_at
		FROM webhook_deliveries WHERE webhook_id = ? ORDER BY id DESC LIMIT ?`), webhookID, limit)
	if err != nil {
		return nil, fmt.Errorf("list deliveries of webhook %d: %w", webhookID, err)
	}
	out := []campaign.WebhookDelivery{}
	for rows.Next() {
		var d campaign.WebhookDelivery
		var data []byte
		if err := rows.Scan(&d.ID, &d.WebhookID, &d.Event, &data, &d.Status, &d.Attempts, &d.StatusCode, &d.Error, &d.CreatedAt, &d.UpdatedAt); err != nil {
			rows.Close()
			return nil, err
		}
		d.Data, d.CreatedAt, d.UpdatedAt = json.RawMessage(data), d.CreatedAt.UTC(), d.UpdatedAt.UTC()
		out = append(out, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		if out[i].Log, err = db.webhookAttempts(ctx, out[i].ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (db *DB) webhookAttempts(ctx context.Context, deliveryID int64) ([]campaign.WebhookAttempt, error) {
	rows, err := db.QueryContext(ctx, db.rebind(`SELECT attempt, status_code, error, duration_ms, at FROM webhook_attempts
		WHERE delivery_id = ? ORDER BY id`), deliveryID)
	if err != nil {
		return nil, fmt.Errorf("list attempts of webhook delivery %d: %w", deliveryID, err)
	}
	defer rows.Close()
	out := []campaign.WebhookAttempt{}
	for rows.Next() {
		var a campaign.WebhookAttempt
		if err := rows.Scan(&a.Attempt, &a.StatusCode, &a.Error, &a.DurationMS, &a.At); err != nil {
			return nil, err
		}
		a.At = a.At.UTC()
		out = append(out, a)
	}
	return out, rows.Err()
}
