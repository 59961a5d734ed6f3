package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/funnel-email/funnel/campaign"
)

// contactRow is a contacts row as both dialects return it: JSON columns
// arrive as text or bytes.
type contactRow struct {
	ID            int64      `db:"id"`
	Email         string     `db:"email"`
	FirstName     string     `db:"first_name"`
	LastName      string     `db:"last_name"`
	Attributes    []byte     `db:"attributes"`
	Tags          []byte     `db:"tags"`
	Status        string     `db:"status"`
	ConsentSource string     `db:"consent_source"`
	ConsentAt     *time.Time `db:"consent_at"`
	CreatedAt     time.Time  `db:"created_at"`
	UpdatedAt     time.Time  `db:"updated_at"`
}

const contactColumns = `id, email, first_name, last_name, attributes, tags, status,
	consent_source, consent_at, created_at, updated_at`

func (r *contactRow) contact() (*campaign.Contact, error) {
	c := &campaign.Contact{
		ID: r.ID, Email: r.Email, FirstName: r.FirstName, LastName: r.LastName,
		Status: campaign.ContactStatus(r.Status), ConsentSource: r.ConsentSource,
		ConsentAt: utcPtr(r.ConsentAt), CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
	if err := json.Unmarshal(r.Attributes, &c.Attributes); err != nil {
		return nil, fmt.Errorf("decode attributes of contact %d: %w", r.ID, err)
	}
	if err := json.Unmarshal(r.Tags, &c.Tags); err != nil {
		return nil, fmt.Errorf("decode tags of contact %d: %w", r.ID, err)
	}
	if c.Attributes == nil {
		c.Attributes = campaign.Attributes{}
	}
	if c.Tags == nil {
		c.Tags = []string{}
	}
	return c, nil
}

// contactsOf converts scanned rows into contacts, in order.
func contactsOf(rows []contactRow) ([]*campaign.Contact, error) {
	out := make([]*campaign.Contact, 0, len(rows))
	for i := range rows {
		c, err := rows[i].contact()
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC().Truncate(time.Microsecond)
	return &u
}

// jsonText encodes v for a JSON column. Both dialects accept JSON as text.
func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		// Only domain values that were validated reach here; a failure is a
		// programming error, so fail loudly rather than store garbage.
		panic(fmt.Sprintf("store: encode JSON column: %v", err))
	}
	return string(b)
}

// CreateContact normalizes, validates and inserts c, filling its ID and
// times. A duplicate email is an ECONFLICT error.
func (db *DB) CreateContact(ctx context.Context, c *campaign.Contact) error {
	c.Normalize()
	if err := c.Validate(); err != nil {
		return err
	}
	now := db.now()
	c.CreatedAt, c.UpdatedAt = now, now
	c.ConsentAt = utcPtr(c.ConsentAt)
	q := db.rebind(`INSERT INTO contacts (email, first_name, last_name, attributes, tags, status,
		consent_source, consent_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`)
	err := db.QueryRowxContext(ctx, q, c.Email, c.FirstName, c.LastName, jsonText(c.Attributes),
		jsonText(c.Tags), c.Status, c.ConsentSource, c.ConsentAt, now, now).Scan(&c.ID)
	if isUniqueViolation(err) {
		return campaign.Errorf(campaign.ECONFLICT, "a contact with email %s already exists", c.Email)
	}
	if err != nil {
		return fmt.Errorf("insert contact: %w", err)
	}
	return nil
}

// FindContact returns the contact with the given ID, or ENOTFOUND.
func (db *DB) FindContact(ctx context.Context, id int64) (*campaign.Contact, error) {
	var r contactRow
	err := db.GetContext(ctx, &r, db.rebind(`SELECT `+contactColumns+` FROM contacts WHERE id = ?`), id)
	if err != nil {
		return nil, notFound(err, "contact %d not found", id)
	}
	return r.contact()
}

// FindContactByEmail returns the contact with the given address (matched
// case-insensitively), or ENOTFOUND.
func (db *DB) FindContactByEmail(ctx context.Context, email string) (*campaign.Contact, error) {
	email = campaign.NormalizeEmail(email)
	var r contactRow
	err := db.GetContext(ctx, &r, db.rebind(`SELECT `+contactColumns+` FROM contacts WHERE email = ?`), email)
	if err != nil {
		return nil, notFound(err, "no contact with email %s", email)
	}
	return r.contact()
}

// UpdateContact applies patch to the contact with the given ID in one
// transaction and returns the result. It returns ENOTFOUND, EINVALID, or
// ECONFLICT when the new email belongs to another contact.
func (db *DB) UpdateContact(ctx context.Context, id int64, patch campaign.ContactPatch) (*campaign.Contact, error) {
	var c *campaign.Contact
	err := db.withTx(ctx, func(tx *sqlxTx) error {
		var r contactRow
		err := tx.GetContext(ctx, &r, db.rebind(`SELECT `+contactColumns+` FROM contacts WHERE id = ?`), id)
		if err != nil {
			return notFound(err, "contact %d not found", id)
		}
		if c, err = r.contact(); err != nil {
			return err
		}
		patch.Apply(c)
		if err := c.Validate(); err != nil {
			return err
		}
		c.UpdatedAt = db.now()
		c.ConsentAt = utcPtr(c.ConsentAt)
		_, err = tx.ExecContext(ctx, db.rebind(`UPDATE contacts SET email = ?, first_name = ?, last_name = ?,
			attributes = ?, tags = ?, status = ?, consent_source = ?, consent_at = ?, updated_at = ?
			WHERE id = ?`), c.Email, c.FirstName, c.LastName, jsonText(c.Attributes), jsonText(c.Tags),
			c.Status, c.ConsentSource, c.ConsentAt, c.UpdatedAt, id)
		if isUniqueViolation(err) {
			return campaign.Errorf(campaign.ECONFLICT, "a contact with email %s already exists", c.Email)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// DeleteContact removes the contact with the given ID, or returns ENOTFOUND.
func (db *DB) DeleteContact(ctx context.Context, id int64) error {
	res, err := db.ExecContext(ctx, db.rebind(`DELETE FROM contacts WHERE id = ?`), id)
	if err != nil {
		return fmt.Errorf("delete contact %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return campaign.Errorf(campaign.ENOTFOUND, "contact %d not found", id)
	}
	return nil
}

var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// MaxPageSize bounds every listing.
const MaxPageSize = 500

// ListContacts returns contacts in f.Sort's order (ContactSorts) after
// the keyset cursor f.After (and f.AfterValue), filtered by f. The cursor
// keeps deep pages as cheap as the first. An unknown sort, or a cursor
// value of another sort, is EINVALID.
func (db *DB) ListContacts(ctx context.Context, f campaign.ContactFilter) ([]*campaign.Contact, error) {
	q, args, err := db.contactListQuery(f)
	if err != nil || q == "" {
		return []*campaign.Contact{}, err
	}
	var rows []contactRow
	if err := db.SelectContext(ctx, &rows, q, args...); err != nil {
		return nil, fmt.Errorf("list contacts: %w", err)
	}
	return contactsOf(rows)
}

// contactListQuery returns the statement of ListContacts for f, or ""
// when f can match nothing.
func (db *DB) contactListQuery(f campaign.ContactFilter) (string, []any, error) {
	sort, err := ContactSorts.Resolve(f.Sort)
	if err != nil {
		return "", nil, err
	}
	var where []string
	var args []any
	if f.EmailPrefix != "" {
		// '%' and '_' in the prefix are data. Postgres answers an escaped LIKE
		// from the unique index on email, which is in byte order (COLLATE
		// "C"); SQLite's LIKE ignores case and skips the index, so it gets a
		// range instead.
		prefix := campaign.NormalizeEmail(f.EmailPrefix)
		if db.Dialect == Postgres {
			where = append(where, `email LIKE ? ESCAPE '\'`)
			args = append(args, likeEscaper.Replace(prefix)+"%")
		} else {
			where = append(where, "email >= ? AND email < ?")
			args = append(args, prefix, prefix+"\U0010FFFF")
		}
	}
	if f.Status != "" {
		where = append(where, "status = ?")
		args = append(args, f.Status)
		if f.Status != campaign.ContactActive {
			// Implies the predicate of the partial index contacts_inactive,
			// so that both planners may read the page from it.
			where = append(where, "status <> 'active'")
		}
	}
	from, idCol := "contacts", "contacts.id"
	if f.Tag != "" {
		tag := campaign.NormalizeTags([]string{f.Tag})
		if len(tag) == 0 {
			return "", nil, nil
		}
		switch {
		case db.Dialect == Postgres:
			where = append(where, "tags @> ?::jsonb") // the GIN index contacts_tags
			args = append(args, jsonText(tag))
		case sort.Key == "id":
			// The tag's range of contact_tags, in contact order, drives the
			// page (migration 00012); CROSS JOIN keeps SQLite from
			// reordering the loop.
			from, idCol = "contact_tags CROSS JOIN contacts ON contacts.id = contact_tags.contact_id", "contact_tags.contact_id"
			where = append([]string{"contact_tags.tag = ?"}, where...)
			args = append([]any{tag[0]}, args...)
		default:
			where = append(where, "EXISTS (SELECT 1 FROM contact_tags WHERE contact_tags.tag = ? AND contact_tags.contact_id = contacts.id)")
			args = append(args, tag[0])
		}
	}
	cond, keyArgs, order, err := ContactSorts.keyset(sort, idCol, f.After, f.AfterValue)
	if err != nil {
		return "", nil, err
	}
	where, args = append(where, cond), append(args, keyArgs...)
	limit := f.Limit
	if limit <= 0 || limit > MaxPageSize {
		limit = MaxPageSize
	}
	q := `SELECT ` + contactColumns + ` FROM ` + from + whereClause(where...) + fmt.Sprintf(` ORDER BY %s LIMIT %d`, order, limit)
	return db.rebind(q), args, nil
}

// CountContacts returns the number of contacts. It reads every row (on
// PostgreSQL about 250 ms for 1,000,000 contacts); pages that only show
// the size of the list use EstimateContacts.
func (db *DB) CountContacts(ctx context.Context) (int64, error) {
	var n int64
	err := db.GetContext(ctx, &n, `SELECT count(*) FROM contacts`)
	return n, err
}

// ContactCount is the size of the contact list, exact or estimated.
type ContactCount struct {
	N int64
	// Approximate is set when N is PostgreSQL's estimate rather than a
	// count: the rows per page of the last (auto)VACUUM or ANALYZE times
	// the pages the table has now. It follows the table's growth at once
	// and deletions only after the next of those.
	Approximate bool
}

// EstimateContacts returns the number of contacts cheaply: on PostgreSQL
// the planner's estimate when it is at least exactBelow, else (and
// always on SQLite, whose count reads a small index) an exact count.
func (db *DB) EstimateContacts(ctx context.Context, exactBelow int64) (ContactCount, error) {
	if db.Dialect == Postgres {
		var est float64
		// The planner's own arithmetic: tuples per page at the last
		// statistics times the pages the table has now. reltuples is -1
		// before the first ANALYZE.
		err := db.GetContext(ctx, &est, `SELECT CASE WHEN relpages > 0 AND reltuples >= 0
				THEN reltuples / relpages * (pg_relation_size(oid) / current_setting('block_size')::int)
				ELSE -1 END
			FROM pg_class WHERE oid = 'contacts'::regclass`)
		if err != nil {
			return ContactCount{}, fmt.Errorf("estimate contacts: %w", err)
		}
		if est >= float64(exactBelow) {
			return ContactCount{N: int64(est + 0.5), Approximate: true}, nil
		}
	}
	n, err := db.CountContacts(ctx)
	if err != nil {
		return ContactCount{}, fmt.Errorf("count contacts: %w", err)
	}
	return ContactCount{N: n}, nil
}
