package store

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"

	"github.com/funnel-email/funnel/campaign"
)

// argon2id parameters (RFC 9106's second recommended option, with less
// memory so that a small server can verify a few logins at once).
const (
	argonTime    = 3
	argonMemory  = 64 * 1024 // KiB
	argonThreads = 2
	argonKeyLen  = 32
)

const userColumns = `id, email, name, role, created_at, updated_at, disabled_at`

// CreateUser validates u and its password and inserts it, storing only an
// argon2id hash of the password. A taken email is ECONFLICT.
func (db *DB) CreateUser(ctx context.Context, u *campaign.User, password string) error {
	if err := u.Validate(); err != nil {
		return err
	}
	if err := campaign.ValidatePassword(password); err != nil {
		return err
	}
	hash, err := hashPassword(password)
	if err != nil {
		return err
	}
	now := db.now()
	u.CreatedAt, u.UpdatedAt = now, now
	err = db.QueryRowxContext(ctx, db.rebind(`INSERT INTO users (email, name, role, password_hash, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?) RETURNING id`), u.Email, u.Name, u.Role, hash, now, now).Scan(&u.ID)
	if isUniqueViolation(err) {
		return campaign.Errorf(campaign.ECONFLICT, "a user with email %s already exists", u.Email)
	}
	if err != nil {
		return fmt.Errorf("insert user: %w", err)
	}
	return nil
}

// FindUser returns the user with the given ID, or ENOTFOUND.
func (db *DB) FindUser(ctx context.Context, id int64) (*campaign.User, error) {
	var u campaign.User
	err := db.QueryRowxContext(ctx, db.rebind(`SELECT `+userColumns+` FROM users WHERE id = ?`), id).
		Scan(&u.ID, &u.Email, &u.Name, &u.Role, &u.CreatedAt, &u.UpdatedAt, &u.DisabledAt)
	if err != nil {
		return nil, notFound(err, "user %d not found", id)
	}
	utcUser(&u)
	return &u, nil
}

// ListUsers returns the enabled users, in ID order; with a role, only
// those holding it.
func (db *DB) ListUsers(ctx context.Context, role campaign.Role) ([]*campaign.User, error) {
	q := `SELECT ` + userColumns + ` FROM users WHERE disabled_at IS NULL`
	var args []any
	if role != "" {
		q += ` AND role = ?`
		args = append(args, role)
	}
	rows, err := db.QueryxContext(ctx, db.rebind(q+` ORDER BY id`), args...)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	out := []*campaign.User{}
	for rows.Next() {
		var u campaign.User
		if err := rows.Scan(&u.ID, &u.Email, &u.Name, &u.Role, &u.CreatedAt, &u.UpdatedAt, &u.DisabledAt); err != nil {
			return nil, err
		}
		utcUser(&u)
		out = append(out, &u)
	}
	return out, rows.Err()
}

// AuthenticateUser returns the enabled user with this email and password.
// A wrong email, a wrong password and a disabled user give the same
// EUNAUTH error, so that the answer tells an attacker nothing.
func (db *DB) AuthenticateUser(ctx context.Context, email, password string) (*campaign.User, error) {
	var (
		u    campaign.User
		hash string
	)
	err := db.QueryRowxContext(ctx, db.rebind(`SELECT `+userColumns+`, password_hash FROM users WHERE email = ?`),
		campaign.NormalizeEmail(email)).Scan(&u.ID, &u.Email, &u.Name, &u.Role, &u.CreatedAt, &u.UpdatedAt, &u.DisabledAt, &hash)
	if err != nil && campaign.ErrorCode(notFound(err, "")) != campaign.ENOTFOUND {
		return nil, fmt.Errorf("look up user: %w", err)
	}
	if err != nil {
		hash = dummyHash() // spend the same time as for a real user
	}
	ok := verifyPassword(hash, password)
	if err != nil || !ok || u.DisabledAt != nil {
		return nil, campaign.Errorf(campaign.EUNAUTH, "wrong email or password")
	}
	utcUser(&u)
	return &u, nil
}

// SetUserPassword replaces a user's password, or returns ENOTFOUND.
func (db *DB) SetUserPassword(ctx context.Context, id int64, password string) error {
	if err := campaign.ValidatePassword(password); err != nil {
		return err
	}
	hash, err := hashPassword(password)
	if err != nil {
		return err
	}
	res, err := db.ExecContext(ctx, db.rebind(`UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?`), hash, db.now(), id)
	if err != nil {
		return fmt.Errorf("set password of user %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return campaign.Errorf(campaign.ENOTFOUND, "user %d not found", id)
	}
	return nil
}

func utcUser(u *campaign.User) {
	u.CreatedAt, u.UpdatedAt, u.DisabledAt = u.CreatedAt.UTC(), u.UpdatedAt.UTC(), utcPtr(u.DisabledAt)
}

// dummyHash is verified against when the email is unknown. It is made on
// first use: hashing costs 64 MiB and tens of milliseconds, which no
// process should pay at start.
var dummyHash = sync.OnceValue(func() string {
	h, _ := hashPassword("funnel-dummy-password")
	return h
})

// hashPassword returns an argon2id hash in the PHC string format.
func hashPassword(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// verifyPassword checks password against a PHC argon2id hash, using the
// parameters stored in the hash so that they can be raised later.
func verifyPassword(hash, password string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var (
		version, mem, iter int
		threads            uint8
	)
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mem, &iter, &threads); err != nil {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, uint32(iter), uint32(mem), threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}
