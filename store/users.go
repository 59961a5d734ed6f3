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

// userColumns are the columns scanUser reads, for a query over users
// that may name the table (prefix "u.") or not ("").
func userColumns(prefix string) string {
	return strings.NewReplacer("@", prefix).Replace(`@id, @email, @name, @role, @created_at, @updated_at, @disabled_at, @time_zone`)
}

// scanUser reads the columns that userColumns lists, in UTC, followed by
// the extra destinations.
func scanUser(sc interface{ Scan(...any) error }, u *campaign.User, extra ...any) error {
	dest := append([]any{&u.ID, &u.Email, &u.Name, &u.Role, &u.CreatedAt, &u.UpdatedAt, &u.DisabledAt, &u.TimeZone}, extra...)
	if err := sc.Scan(dest...); err != nil {
		return err
	}
	utcUser(u)
	return nil
}

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
	err = db.QueryRowxContext(ctx, db.rebind(`INSERT INTO users (email, name, role, password_hash, time_zone, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`), u.Email, u.Name, u.Role, hash, u.TimeZone, now, now).Scan(&u.ID)
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
	return findUser(ctx, db, db.DB, id)
}

func findUser(ctx context.Context, db *DB, q queryer, id int64) (*campaign.User, error) {
	var u campaign.User
	err := scanUser(q.QueryRowContext(ctx, db.rebind(`SELECT `+userColumns("")+` FROM users WHERE id = ?`), id), &u)
	if err != nil {
		return nil, notFound(err, "user %d not found", id)
	}
	return &u, nil
}

// ListUsers returns every enabled user, in ID order; with a role, only
// those holding it. It is for choosing among users (lead owners), so it
// is not paged.
func (db *DB) ListUsers(ctx context.Context, role campaign.Role) ([]*campaign.User, error) {
	q := `SELECT ` + userColumns("") + ` FROM users WHERE disabled_at IS NULL`
	var args []any
	if role != "" {
		q += ` AND role = ?`
		args = append(args, role)
	}
	return db.queryUsers(ctx, q+` ORDER BY id`, args...)
}

// UserFilter selects users for ListAllUsers.
type UserFilter struct {
	// Role, when set, selects the users holding it.
	Role campaign.Role
	// Sort is one of UserSorts ("id" by default, or "email").
	Sort campaign.Sort
	// After is the keyset cursor: the ID of the last user of the previous
	// page, and AfterValue its email with an email sort.
	After      int64
	AfterValue any
	// Limit is the page size, 1 to MaxPageSize (0 means MaxPageSize).
	Limit int
}

// ListAllUsers returns users, enabled and disabled, in f.Sort's order
// after the cursor, at most f.Limit of them. An unknown sort is EINVALID.
func (db *DB) ListAllUsers(ctx context.Context, f UserFilter) ([]*campaign.User, error) {
	cond, args, order, err := UserSorts.keyset(f.Sort, "id", f.After, f.AfterValue)
	if err != nil {
		return nil, err
	}
	var byRole string
	if f.Role != "" {
		byRole, args = `role = ?`, append(args, f.Role)
	}
	if f.Limit <= 0 || f.Limit > MaxPageSize {
		f.Limit = MaxPageSize
	}
	q := `SELECT ` + userColumns("") + ` FROM users` + whereClause(cond, byRole) + ` ORDER BY ` + order + ` LIMIT ?`
	return db.queryUsers(ctx, q, append(args, f.Limit)...)
}

func (db *DB) queryUsers(ctx context.Context, q string, args ...any) ([]*campaign.User, error) {
	rows, err := db.QueryContext(ctx, db.rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	out := []*campaign.User{}
	for rows.Next() {
		var u campaign.User
		if err := scanUser(rows, &u); err != nil {
			return nil, err
		}
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
	err := scanUser(db.QueryRowContext(ctx, db.rebind(`SELECT `+userColumns("")+`, password_hash FROM users WHERE email = ?`),
		campaign.NormalizeEmail(email)), &u, &hash)
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

// UpdateUser applies patch to user id and returns the result. It returns
// ENOTFOUND, EINVALID naming the bad field, or ECONFLICT when the change
// would leave no enabled admin (disabling or demoting the last one).
// Disabling a user ends their sessions and unused reset links in the same
// transaction; their API tokens stop working because authentication
// checks the user on every request.
func (db *DB) UpdateUser(ctx context.Context, id int64, patch campaign.UserPatch) (*campaign.User, error) {
	var u *campaign.User
	err := db.withTx(ctx, func(tx *sqlxTx) error {
		// Lock the enabled admins first, in ID order: two admins demoting
		// each other at once must not both succeed. (SQLite's immediate
		// transactions already run one at a time.)
		q := `SELECT id FROM users WHERE role = 'admin' AND disabled_at IS NULL ORDER BY id`
		if db.Dialect == Postgres {
			q += ` FOR UPDATE`
		}
		var admins []int64
		if err := tx.SelectContext(ctx, &admins, q); err != nil {
			return fmt.Errorf("lock admins: %w", err)
		}
		var err error
		if u, err = findUser(ctx, db, tx, id); err != nil {
			return err
		}
		wasAdmin := u.Role == campaign.RoleAdmin && u.Active()
		now := db.now()
		patch.Apply(u, now)
		if err := u.Validate(); err != nil {
			return err
		}
		if wasAdmin && !(u.Role == campaign.RoleAdmin && u.Active()) && len(admins) <= 1 {
			action := "demote"
			if !u.Active() {
				action = "disable"
			}
			return campaign.Errorf(campaign.ECONFLICT, "%s is the last enabled admin: make another user an admin before you %s them", u.Email, action)
		}
		u.UpdatedAt = nextVersion(u.UpdatedAt, now)
		_, err = tx.ExecContext(ctx, db.rebind(`UPDATE users SET name = ?, role = ?, time_zone = ?, disabled_at = ?, updated_at = ?
			WHERE id = ?`), u.Name, u.Role, u.TimeZone, u.DisabledAt, u.UpdatedAt, id)
		if err != nil {
			return fmt.Errorf("update user %d: %w", id, err)
		}
		if u.Active() {
			return nil
		}
		if _, err := tx.ExecContext(ctx, db.rebind(`DELETE FROM sessions WHERE user_id = ?`), id); err != nil {
			return fmt.Errorf("end sessions of user %d: %w", id, err)
		}
		if _, err := tx.ExecContext(ctx, db.rebind(`DELETE FROM password_resets WHERE user_id = ? AND used_at IS NULL`), id); err != nil {
			return fmt.Errorf("drop reset links of user %d: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// ChangePassword sets a new password for user id when current is their
// password, and ends their sessions other than keepSession (0 ends all).
// A missing or wrong current password is EINVALID naming
// "current_password"; a new password that breaks the length rules is
// EINVALID naming "password".
func (db *DB) ChangePassword(ctx context.Context, id int64, current, password string, keepSession int64) error {
	if err := campaign.ValidatePassword(password); err != nil {
		return err
	}
	if current == "" {
		return campaign.Invalid("invalid password change", campaign.FieldError{Field: "current_password", Message: "is required to change the password"})
	}
	var stored string
	err := db.GetContext(ctx, &stored, db.rebind(`SELECT password_hash FROM users WHERE id = ?`), id)
	if err != nil {
		return notFound(err, "user %d not found", id)
	}
	if !verifyPassword(stored, current) {
		return campaign.Invalid("invalid password change", campaign.FieldError{Field: "current_password", Message: "is not your current password"})
	}
	hash, err := hashPassword(password)
	if err != nil {
		return err
	}
	return db.withTx(ctx, func(tx *sqlxTx) error {
		return db.replacePassword(ctx, tx, id, hash, keepSession)
	})
}

// replacePassword stores a new password hash for user id and ends their
// sessions other than keep.
func (db *DB) replacePassword(ctx context.Context, tx *sqlxTx, id int64, hash string, keep int64) error {
	if _, err := tx.ExecContext(ctx, db.rebind(`UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?`), hash, db.now(), id); err != nil {
		return fmt.Errorf("set password of user %d: %w", id, err)
	}
	if _, err := tx.ExecContext(ctx, db.rebind(`DELETE FROM sessions WHERE user_id = ? AND id <> ?`), id, keep); err != nil {
		return fmt.Errorf("end sessions of user %d: %w", id, err)
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
