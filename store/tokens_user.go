package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/funnel-email/funnel/campaign"
)

// UserToken is an API token with the user who owns it (UserID 0 and
// empty UserEmail for a bootstrap token that belongs to nobody).
type UserToken struct {
	APIToken
	UserID    int64  `db:"user_id" json:"user_id"`
	UserEmail string `db:"user_email" json:"user_email"`
}

// CreateUserToken makes an API token that acts as the user, with the
// user's role, and returns its record and its secret, which the caller
// shows once. An unknown or disabled user is ENOTFOUND.
func (db *DB) CreateUserToken(ctx context.Context, userID int64, name string) (*UserToken, string, error) {
	u, err := db.FindUser(ctx, userID)
	if err != nil {
		return nil, "", err
	}
	if u.DisabledAt != nil {
		return nil, "", campaign.Errorf(campaign.ENOTFOUND, "user %d is disabled", userID)
	}
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 200 {
		return nil, "", campaign.Invalid("invalid token", campaign.FieldError{Field: "name", Message: "is required and at most 200 characters"})
	}
	raw, err := randomSecret()
	if err != nil {
		return nil, "", err
	}
	secret := tokenPrefix + raw
	t := &UserToken{APIToken: APIToken{Name: name, Role: u.Role, Prefix: secret[:len(tokenPrefix)+6], CreatedAt: db.now()},
		UserID: u.ID, UserEmail: u.Email}
	err = db.QueryRowxContext(ctx, db.rebind(`INSERT INTO api_tokens (name, role, hash, prefix, created_at, user_id)
		VALUES (?, ?, ?, ?, ?, ?) RETURNING id`), t.Name, t.Role, hashToken(secret), t.Prefix, t.CreatedAt, u.ID).Scan(&t.ID)
	if err != nil {
		return nil, "", fmt.Errorf("insert API token for user %d: %w", userID, err)
	}
	return t, secret, nil
}

// ListUserTokens returns the unrevoked tokens of a user, newest first;
// userID 0 lists every unrevoked token, bootstrap ones included.
func (db *DB) ListUserTokens(ctx context.Context, userID int64) ([]UserToken, error) {
	q := `SELECT t.id, t.name, COALESCE(u.role, t.role) AS role, t.prefix, t.created_at, t.last_used_at, t.revoked_at,
			COALESCE(t.user_id, 0) AS user_id, COALESCE(u.email, '') AS user_email
		FROM api_tokens t LEFT JOIN users u ON u.id = t.user_id
		WHERE t.revoked_at IS NULL`
	var args []any
	if userID != 0 {
		q += ` AND t.user_id = ?`
		args = append(args, userID)
	}
	ts := []UserToken{}
	if err := db.SelectContext(ctx, &ts, db.rebind(q+` ORDER BY t.id DESC`), args...); err != nil {
		return nil, fmt.Errorf("list API tokens: %w", err)
	}
	for i := range ts {
		ts[i].CreatedAt, ts[i].LastUsedAt = ts[i].CreatedAt.UTC(), utcPtr(ts[i].LastUsedAt)
	}
	return ts, nil
}

// RevokeUserToken revokes a token of the user; userID 0 may revoke any
// token. A token that is unknown, already revoked or another user's is
// ENOTFOUND, so that ids of other users' tokens are not disclosed.
func (db *DB) RevokeUserToken(ctx context.Context, id, userID int64) error {
	q := `UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`
	args := []any{db.now(), id}
	if userID != 0 {
		q += ` AND user_id = ?`
		args = append(args, userID)
	}
	res, err := db.ExecContext(ctx, db.rebind(q), args...)
	if err != nil {
		return fmt.Errorf("revoke API token %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return campaign.Errorf(campaign.ENOTFOUND, "API token %d not found or already revoked", id)
	}
	return nil
}
