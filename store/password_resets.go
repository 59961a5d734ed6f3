package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/funnel-email/funnel/campaign"
)

// PasswordReset is a one-time link with which a user sets a new password.
// The secret the link carries is never stored: only its SHA-256.
type PasswordReset struct {
	ID        int64     `json:"id"`
	UserID    int64     `json:"user_id"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// errResetInvalid is the one answer for an unknown, used or expired reset
// secret, or one whose user is disabled: which of these it is would tell
// a guesser something.
func errResetInvalid() error {
	return campaign.Errorf(campaign.ENOTFOUND, "this password reset link is not valid: it was used already, it expired, or it never existed")
}

// CreatePasswordReset makes a reset link for user id that lasts ttl,
// voiding the user's earlier unused ones, and returns it with its secret,
// which the caller shows once. createdBy is the admin who asked (0 for
// none). An unknown user is ENOTFOUND; a disabled one ECONFLICT.
func (db *DB) CreatePasswordReset(ctx context.Context, id, createdBy int64, ttl time.Duration) (*PasswordReset, string, error) {
	secret, err := randomSecret()
	if err != nil {
		return nil, "", err
	}
	now := db.now()
	r := &PasswordReset{UserID: id, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	var by *int64
	if createdBy != 0 {
		by = &createdBy
	}
	err = db.withTx(ctx, func(tx *sqlxTx) error {
		u, err := findUser(ctx, db, tx, id)
		if err != nil {
			return err
		}
		if !u.Active() {
			return campaign.Errorf(campaign.ECONFLICT, "%s is disabled: enable the user before making a reset link", u.Email)
		}
		if _, err := tx.ExecContext(ctx, db.rebind(`DELETE FROM password_resets WHERE user_id = ? AND used_at IS NULL`), id); err != nil {
			return fmt.Errorf("void earlier reset links of user %d: %w", id, err)
		}
		return tx.QueryRowxContext(ctx, db.rebind(`INSERT INTO password_resets (hash, user_id, created_by, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?) RETURNING id`), hashToken(secret), id, by, r.CreatedAt, r.ExpiresAt).Scan(&r.ID)
	})
	if err != nil {
		return nil, "", err
	}
	return r, secret, nil
}

// PasswordResetUser returns the user whom a live reset secret belongs to.
// An unknown, used or expired secret, or one whose user is disabled, is
// ENOTFOUND with the same message for each.
func (db *DB) PasswordResetUser(ctx context.Context, secret string) (*campaign.User, error) {
	var u campaign.User
	err := scanUser(db.QueryRowContext(ctx, db.rebind(`SELECT `+userColumns("u.")+`
		FROM password_resets r JOIN users u ON u.id = r.user_id
		WHERE r.hash = ? AND r.used_at IS NULL AND r.expires_at > ? AND u.disabled_at IS NULL`), hashToken(secret), db.now()), &u)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errResetInvalid()
	}
	if err != nil {
		return nil, fmt.Errorf("look up password reset: %w", err)
	}
	return &u, nil
}

// ResetPassword sets the password of the user whom a live reset secret
// belongs to, uses the secret up and ends all of the user's sessions, in
// one transaction, and returns the user. A password that breaks the
// length rules is EINVALID and leaves the secret usable; a secret that
// is not live is ENOTFOUND as in PasswordResetUser, also when two
// requests race to use it.
func (db *DB) ResetPassword(ctx context.Context, secret, password string) (*campaign.User, error) {
	if err := campaign.ValidatePassword(password); err != nil {
		return nil, err
	}
	if _, err := db.PasswordResetUser(ctx, secret); err != nil {
		return nil, err // before hashing: a bad link costs no argon2 round
	}
	hash, err := hashPassword(password)
	if err != nil {
		return nil, err
	}
	var u *campaign.User
	err = db.withTx(ctx, func(tx *sqlxTx) error {
		now := db.now()
		var id int64
		// Using the secret is the condition of the UPDATE: of two uses
		// at once, one finds it used.
		err := tx.QueryRowxContext(ctx, db.rebind(`UPDATE password_resets SET used_at = ?
			WHERE hash = ? AND used_at IS NULL AND expires_at > ?
			AND user_id IN (SELECT id FROM users WHERE disabled_at IS NULL) RETURNING user_id`),
			now, hashToken(secret), now).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return errResetInvalid()
		}
		if err != nil {
			return fmt.Errorf("use password reset: %w", err)
		}
		if err := db.replacePassword(ctx, tx, id, hash, 0); err != nil {
			return err
		}
		u, err = findUser(ctx, db, tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}
