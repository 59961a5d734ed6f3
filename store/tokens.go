package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/funnel-email/funnel/campaign"
)

// tokenPrefix marks Funnel API tokens so that secret scanners and people
// can recognise one in a leaked file.
const tokenPrefix = "fnl_"

// APIToken describes a stored API token. The secret itself is never stored:
// only its SHA-256, which is enough because tokens are 256 random bits.
type APIToken struct {
	ID         int64         `db:"id" json:"id"`
	Name       string        `db:"name" json:"name"`
	Role       campaign.Role `db:"role" json:"role"`
	Prefix     string        `db:"prefix" json:"prefix"`
	CreatedAt  time.Time     `db:"created_at" json:"created_at"`
	LastUsedAt *time.Time    `db:"last_used_at" json:"last_used_at"`
	RevokedAt  *time.Time    `db:"revoked_at" json:"revoked_at"`
}

func hashToken(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// CreateAPIToken makes a new token with the given name and role and returns
// its record and the secret, which the caller shows once.
func (db *DB) CreateAPIToken(ctx context.Context, name string, role campaign.Role) (*APIToken, string, error) {
	if !role.Valid() {
		return nil, "", campaign.Invalid("invalid token", campaign.FieldError{Field: "role", Message: fmt.Sprintf("%q is not one of admin, marketer, sales", role)})
	}
	name = strings.TrimSpace(name)
	if name == "" {
		return nil, "", campaign.Invalid("invalid token", campaign.FieldError{Field: "name", Message: "is required"})
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, "", err
	}
	secret := tokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	t := &APIToken{Name: name, Role: role, Prefix: secret[:len(tokenPrefix)+6], CreatedAt: db.now()}
	err := db.QueryRowxContext(ctx, db.rebind(`INSERT INTO api_tokens (name, role, hash, prefix, created_at)
		VALUES (?, ?, ?, ?, ?) RETURNING id`), t.Name, t.Role, hashToken(secret), t.Prefix, t.CreatedAt).Scan(&t.ID)
	if err != nil {
		return nil, "", fmt.Errorf("insert API token: %w", err)
	}
	return t, secret, nil
}

// AuthenticateAPIToken returns the principal for a token secret, or
// EUNAUTH when the token is unknown or revoked or its user is disabled.
// A user's token acts with the user's current role. It records the last
// use at most once a minute, so that authentication stays a read on hot
// paths.
func (db *DB) AuthenticateAPIToken(ctx context.Context, secret string) (*campaign.Principal, error) {
	if !strings.HasPrefix(secret, tokenPrefix) {
		return nil, campaign.Errorf(campaign.EUNAUTH, "invalid API token")
	}
	var t struct {
		APIToken
		UserID   *int64     `db:"user_id"`
		Disabled *time.Time `db:"disabled_at"`
	}
	// A token of a disabled user stops working with the user, and a
	// user's token has the user's role of the moment, not the one they
	// had when they made it.
	err := db.GetContext(ctx, &t, db.rebind(`SELECT t.id, t.name, COALESCE(u.role, t.role) AS role, t.prefix, t.created_at, t.last_used_at, t.revoked_at,
		t.user_id, u.disabled_at
		FROM api_tokens t LEFT JOIN users u ON u.id = t.user_id WHERE t.hash = ?`), hashToken(secret))
	if err != nil {
		if e := notFound(err, "invalid API token"); campaign.ErrorCode(e) == campaign.ENOTFOUND {
			return nil, campaign.Errorf(campaign.EUNAUTH, "invalid API token")
		}
		return nil, fmt.Errorf("look up API token: %w", err)
	}
	if t.RevokedAt != nil {
		return nil, campaign.Errorf(campaign.EUNAUTH, "API token has been revoked")
	}
	if t.Disabled != nil {
		return nil, campaign.Errorf(campaign.EUNAUTH, "the user of this API token is disabled")
	}
	now := db.now()
	if t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) > time.Minute {
		if _, err := db.ExecContext(ctx, db.rebind(`UPDATE api_tokens SET last_used_at = ? WHERE id = ?`), now, t.ID); err != nil {
			return nil, fmt.Errorf("record API token use: %w", err)
		}
	}
	return &campaign.Principal{TokenID: t.ID, UserID: deref(t.UserID), Name: t.Name, Role: t.Role}, nil
}

// ListAPITokens returns every token record, newest first.
func (db *DB) ListAPITokens(ctx context.Context) ([]APIToken, error) {
	var ts []APIToken
	err := db.SelectContext(ctx, &ts, `SELECT id, name, role, prefix, created_at, last_used_at, revoked_at
		FROM api_tokens ORDER BY id DESC`)
	return ts, err
}

// RevokeAPIToken revokes a token; it returns ENOTFOUND for an unknown or
// already revoked token.
func (db *DB) RevokeAPIToken(ctx context.Context, id int64) error {
	res, err := db.ExecContext(ctx, db.rebind(`UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`), db.now(), id)
	if err != nil {
		return fmt.Errorf("revoke API token %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return campaign.Errorf(campaign.ENOTFOUND, "API token %d not found or already revoked", id)
	}
	return nil
}
