package store

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/funnel-email/funnel/campaign"
)

// Session is a signed-in browser. The secret that the cookie carries is
// never stored: only its SHA-256.
type Session struct {
	ID     int64
	UserID int64
	// CSRF is the synchronizer token that every state-changing request of
	// this session must echo (form field or X-CSRF-Token header).
	CSRF      string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// randomSecret returns 32 random bytes, URL-safe base64 encoded.
func randomSecret() (string, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(raw[:]), nil
}

// CreateSession starts a session for a user that lasts ttl and returns it
// with the secret for the cookie, which is shown to nobody else.
func (db *DB) CreateSession(ctx context.Context, userID int64, ttl time.Duration, ip, userAgent string) (*Session, string, error) {
	secret, err := randomSecret()
	if err != nil {
		return nil, "", err
	}
	csrf, err := randomSecret()
	if err != nil {
		return nil, "", err
	}
	if len(userAgent) > 512 {
		userAgent = userAgent[:512]
	}
	now := db.now()
	s := &Session{UserID: userID, CSRF: csrf, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	err = db.QueryRowxContext(ctx, db.rebind(`INSERT INTO sessions (hash, user_id, csrf, created_at, last_seen_at, expires_at, ip, user_agent)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`), hashToken(secret), userID, csrf, now, now, s.ExpiresAt, ip, userAgent).Scan(&s.ID)
	if err != nil {
		return nil, "", fmt.Errorf("insert session for user %d: %w", userID, err)
	}
	return s, secret, nil
}

// FindSession returns the live session with this secret and its user. An
// unknown or expired secret, or a disabled user, is EUNAUTH.
func (db *DB) FindSession(ctx context.Context, secret string) (*Session, *campaign.User, error) {
	var (
		s Session
		u campaign.User
	)
	err := scanUser(db.QueryRowContext(ctx, db.rebind(`SELECT `+userColumns("u.")+`, s.id, s.user_id, s.csrf, s.created_at, s.expires_at
		FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE s.hash = ? AND s.expires_at > ?`), hashToken(secret), db.now()),
		&u, &s.ID, &s.UserID, &s.CSRF, &s.CreatedAt, &s.ExpiresAt)
	if err != nil {
		if e := notFound(err, "no session"); campaign.ErrorCode(e) == campaign.ENOTFOUND {
			return nil, nil, campaign.Errorf(campaign.EUNAUTH, "the session has expired or was ended: sign in again")
		}
		return nil, nil, fmt.Errorf("look up session: %w", err)
	}
	if u.DisabledAt != nil {
		return nil, nil, campaign.Errorf(campaign.EUNAUTH, "this user is disabled")
	}
	s.CreatedAt, s.ExpiresAt = s.CreatedAt.UTC(), s.ExpiresAt.UTC()
	return &s, &u, nil
}

// DeleteSession ends the session with this secret. Ending an unknown
// session is not an error: logging out twice is harmless.
func (db *DB) DeleteSession(ctx context.Context, secret string) error {
	if _, err := db.ExecContext(ctx, db.rebind(`DELETE FROM sessions WHERE hash = ?`), hashToken(secret)); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// DeleteExpiredSessions removes sessions past their expiry, and login
// failures and password reset links older than keep, and returns how many sessions went.
func (db *DB) DeleteExpiredSessions(ctx context.Context, keep time.Duration) (int64, error) {
	now := db.now()
	res, err := db.ExecContext(ctx, db.rebind(`DELETE FROM sessions WHERE expires_at <= ?`), now)
	if err != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", err)
	}
	if _, err := db.ExecContext(ctx, db.rebind(`DELETE FROM login_failures WHERE failed_at < ?`), now.Add(-keep)); err != nil {
		return 0, fmt.Errorf("delete old login failures: %w", err)
	}
	if _, err := db.ExecContext(ctx, db.rebind(`DELETE FROM password_resets WHERE expires_at < ?`), now.Add(-keep)); err != nil {
		return 0, fmt.Errorf("delete old password reset links: %w", err)
	}
	return res.RowsAffected()
}

// RecordLoginFailure notes a failed login for the email and the client
// address, for the limit that LoginFailures reads.
func (db *DB) RecordLoginFailure(ctx context.Context, email, ip string) error {
	_, err := db.ExecContext(ctx, db.rebind(`INSERT INTO login_failures (email, ip, failed_at) VALUES (?, ?, ?)`),
		campaign.NormalizeEmail(email), ip, db.now())
	if err != nil {
		return fmt.Errorf("record login failure: %w", err)
	}
	return nil
}

// LoginFailures counts the failed logins since the given time for the
// email and, separately, for the client address.
func (db *DB) LoginFailures(ctx context.Context, email, ip string, since time.Time) (byEmail, byIP int, err error) {
	err = db.QueryRowxContext(ctx, db.rebind(`SELECT
			(SELECT count(*) FROM login_failures WHERE email = ? AND failed_at > ?),
			(SELECT count(*) FROM login_failures WHERE ip = ? AND failed_at > ?)`),
		campaign.NormalizeEmail(email), since, ip, since).Scan(&byEmail, &byIP)
	if err != nil {
		return 0, 0, fmt.Errorf("count login failures: %w", err)
	}
	return byEmail, byIP, nil
}

// ClearLoginFailures forgets the failed logins of an email, after it
// signs in successfully.
func (db *DB) ClearLoginFailures(ctx context.Context, email string) error {
	if _, err := db.ExecContext(ctx, db.rebind(`DELETE FROM login_failures WHERE email = ?`), campaign.NormalizeEmail(email)); err != nil {
		return fmt.Errorf("clear login failures: %w", err)
	}
	return nil
}

// FindUserByEmail returns the user with this email (any case), or
// ENOTFOUND.
func (db *DB) FindUserByEmail(ctx context.Context, email string) (*campaign.User, error) {
	var u campaign.User
	err := scanUser(db.QueryRowContext(ctx, db.rebind(`SELECT `+userColumns("")+` FROM users WHERE email = ?`), campaign.NormalizeEmail(email)), &u)
	if err != nil {
		return nil, notFound(err, "no user with email %s", campaign.NormalizeEmail(email))
	}
	return &u, nil
}

// EndUserSessions ends every session of user id except keep (0 keeps
// none) and returns how many ended.
func (db *DB) EndUserSessions(ctx context.Context, id, keep int64) (int64, error) {
	res, err := db.ExecContext(ctx, db.rebind(`DELETE FROM sessions WHERE user_id = ? AND id <> ?`), id, keep)
	if err != nil {
		return 0, fmt.Errorf("end sessions of user %d: %w", id, err)
	}
	return res.RowsAffected()
}
