package store

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"github.com/funnel-email/funnel/campaign"
)

// Segment rules compile to a WHERE fragment over the contacts table (named
// contacts, not aliased) with '?' placeholders and their arguments, one
// dialect at a time.
//
// Every value of a rule is bound as a parameter. The only rule text that
// becomes SQL text is an attribute key, inside a JSON path literal such as
// '$."country"' (SQLite) or 'country' (Postgres): an expression index is
// used only when the query spells the indexed expression identically, and
// SQLite cannot match an index on json_extract(attributes, ?). This is not
// an injection: keys are checked against campaign.ValidAttributeKey (1 to 64
// characters of [A-Za-z0-9_-], starting with a letter or '_'), so a key
// can hold neither a quote nor a backslash, and attrKey re-checks that
// before any key is written.
//
// On Postgres an indexed attribute (see CreateAttributeIndex) is also a
// stored generated column, attr_KEY_HASH, equal to AttrExpr by definition.
// The compiler reads which of these columns exist from the catalog at each
// compilation and spells the attribute as the column: Postgres never answers
// a query on an expression from the index alone, but does on a column.
//
// Three-valued logic: a condition on a missing attribute is NULL, which
// behaves as false under AND and OR but not under NOT. The compiler tracks
// which expressions may be NULL and negates those as NOT COALESCE(x,
// FALSE); the others (EXISTS, columns) keep a plain NOT, which the
// planners turn into anti-joins.

type ruleSQL struct {
	d      Dialect
	now    time.Time
	lookup campaign.RuleLookup
	chain  []int64
	args   []any
	// columns holds the generated attribute columns of contacts (Postgres).
	columns map[string]bool
}

// compileRule validates r (resolving segment references through the
// database) and compiles it for time now.
func (db *DB) compileRule(ctx context.Context, r *campaign.Rule, now time.Time) (string, []any, error) {
	lookup := db.ruleLookup(ctx, db)
	if err := r.Validate(0, lookup); err != nil {
		return "", nil, err
	}
	columns, err := db.attrColumns(ctx)
	if err != nil {
		return "", nil, err
	}
	c := &ruleSQL{d: db.Dialect, now: now.UTC(), lookup: lookup, columns: columns}
	where, _, err := c.expr(r)
	if err != nil {
		return "", nil, err
	}
	return where, c.args, nil
}

// arg binds v and returns its placeholder, with a cast on Postgres where
// the type cannot be inferred.
func (c *ruleSQL) arg(v any, pgType string) string {
	c.args = append(c.args, v)
	if c.d == Postgres && pgType != "" {
		return "?::" + pgType
	}
	return "?"
}

// list binds each value and returns "?, ?, ?".
func (c *ruleSQL) list(values []any) string {
	ps := make([]string, len(values))
	for i, v := range values {
		ps[i] = c.arg(v, "")
	}
	return strings.Join(ps, ", ")
}

// expr compiles r and reports whether the result may be NULL.
func (c *ruleSQL) expr(r *campaign.Rule) (string, bool, error) {
	switch r.Kind() {
	case campaign.KindAll, campaign.KindAny:
		return c.join(r)
	case campaign.KindNot:
		inner, nullable, err := c.expr(r.Not)
		if nullable {
			return "NOT COALESCE(" + inner + ", FALSE)", false, err
		}
		return "NOT " + inner, false, err
	case campaign.KindSegment:
		return c.segment(r.Segment)
	case campaign.KindEvent:
		return c.event(r), false, nil
	case campaign.KindField:
		return c.field(r), false, nil
	case campaign.KindAttr:
		return c.attr(r)
	}
	return "", false, fmt.Errorf("compile rule: a node holds no rule")
}

func (c *ruleSQL) join(r *campaign.Rule) (string, bool, error) {
	sep := " AND "
	if r.Kind() == campaign.KindAny {
		sep = " OR "
	}
	parts := make([]string, 0, len(r.Children()))
	anyNull := false
	for _, child := range r.Children() {
		s, nullable, err := c.expr(child)
		if err != nil {
			return "", false, err
		}
		parts = append(parts, s)
		anyNull = anyNull || nullable
	}
	return "(" + strings.Join(parts, sep) + ")", anyNull, nil
}

func (c *ruleSQL) segment(id int64) (string, bool, error) {
	if slices.Contains(c.chain, id) {
		return "", false, campaign.Errorf(campaign.EINVALID, "segment %d refers back to itself", id)
	}
	sub, err := c.lookup(id)
	if err != nil {
		return "", false, err
	}
	c.chain = append(c.chain, id)
	defer func() { c.chain = c.chain[:len(c.chain)-1] }()
	return c.expr(sub)
}

func (c *ruleSQL) event(r *campaign.Rule) string {
	where := []string{"e.contact_id = contacts.id", "e.kind = " + c.arg(string(r.Event), "")}
	if r.Campaign != 0 {
		where = append(where, "e.campaign_id = "+c.arg(r.Campaign, ""))
	}
	if r.LinkContains != "" {
		if c.d == Postgres {
			where = append(where, "strpos(e.link, "+c.arg(r.LinkContains, "text")+") > 0")
		} else {
			where = append(where, "instr(e.link, "+c.arg(r.LinkContains, "")+") > 0")
		}
	}
	if r.WithinDays > 0 {
		cutoff := c.now.Add(-time.Duration(r.WithinDays) * 24 * time.Hour)
		where = append(where, "e.occurred_at >= "+c.arg(cutoff, ""))
	}
	if r.Event.Judged() && !r.IncludeMachine {
		where = append(where, "e.human")
	}
	cond := strings.Join(where, " AND ")
	if r.MinEvents() == 1 {
		return "EXISTS (SELECT 1 FROM events e WHERE " + cond + ")"
	}
	// Stop counting at the threshold: a contact with thousands of opens costs
	// no more than one with at_least of them.
	n := r.MinEvents()
	return "(SELECT count(*) FROM (SELECT 1 FROM events e WHERE " + cond + " LIMIT " + c.arg(n, "") +
		") AS e_n) >= " + c.arg(n, "")
}

// fieldColumns maps rule fields to columns; only these constants become
// SQL text.
var fieldColumns = map[string]string{
	campaign.FieldEmail: "contacts.email", campaign.FieldFirstName: "contacts.first_name",
	campaign.FieldLastName: "contacts.last_name", campaign.FieldStatus: "contacts.status",
	campaign.FieldLifecycleStage: "contacts.lifecycle_stage", campaign.FieldScore: "contacts.score",
	campaign.FieldCreatedAt: "contacts.created_at",
}

// field compiles a condition on a column; columns are NOT NULL, so the
// result never is NULL.
func (c *ruleSQL) field(r *campaign.Rule) string {
	col := fieldColumns[r.Field]
	switch r.Field {
	case campaign.FieldTags:
		return c.tags(r)
	case campaign.FieldScore:
		return c.compare(col, r.Op, r.Value, "float8")
	case campaign.FieldCreatedAt:
		return c.createdAt(r)
	}
	return c.text(col, r.Op, r.Value)
}

var compareOps = map[campaign.Op]string{
	campaign.OpEq: "=", campaign.OpNe: "<>", campaign.OpGt: ">", campaign.OpGte: ">=", campaign.OpLt: "<", campaign.OpLte: "<=",
}

func (c *ruleSQL) compare(x string, op campaign.Op, v any, pgType string) string {
	return x + " " + compareOps[op] + " " + c.arg(v, pgType)
}

// text compiles a string condition on x; ne and not_in are left to the
// caller when x may be NULL.
func (c *ruleSQL) text(x string, op campaign.Op, v any) string {
	switch op {
	case campaign.OpEq:
		return x + " = " + c.arg(v, "text")
	case campaign.OpNe:
		return "NOT (" + c.text(x, campaign.OpEq, v) + ")"
	case campaign.OpIn:
		if c.d == Postgres {
			return x + " = ANY(" + c.arg(stringsOf(v), "text[]") + ")"
		}
		return x + " IN (" + c.list(v.([]any)) + ")"
	case campaign.OpNotIn:
		return "NOT (" + c.text(x, campaign.OpIn, v) + ")"
	}
	s := v.(string)
	if c.d == Postgres {
		switch op {
		case campaign.OpContains:
			return "strpos(" + x + ", " + c.arg(s, "text") + ") > 0"
		case campaign.OpStartsWith:
			return "starts_with(" + x + ", " + c.arg(s, "text") + ")"
		}
		return "right(" + x + ", length(" + c.arg(s, "text") + ")) = " + c.arg(s, "text")
	}
	switch op {
	case campaign.OpContains:
		return "instr(" + x + ", " + c.arg(s, "") + ") > 0"
	case campaign.OpStartsWith:
		return "substr(" + x + ", 1, length(" + c.arg(s, "") + ")) = " + c.arg(s, "")
	}
	return "substr(" + x + ", -length(" + c.arg(s, "") + ")) = " + c.arg(s, "")
}

func (c *ruleSQL) createdAt(r *campaign.Rule) string {
	switch r.Op {
	case campaign.OpBefore:
		d, _ := campaign.RuleDate(r.Value)
		return "contacts.created_at < " + c.arg(d, "")
	case campaign.OpAfter:
		d, _ := campaign.RuleDate(r.Value)
		return "contacts.created_at >= " + c.arg(d.AddDate(0, 0, 1), "")
	}
	n, _ := campaign.RuleDays(r.Value)
	return "contacts.created_at >= " + c.arg(c.now.Add(-time.Duration(n)*24*time.Hour), "")
}

// tags compiles a tags condition. Postgres answers containment (@>) from
// the GIN index on tags; SQLite looks into the JSON array.
func (c *ruleSQL) tags(r *campaign.Rule) string {
	values := slices.Compact(slices.Sorted(slices.Values(r.TagValues())))
	if c.d == Postgres {
		switch r.Op {
		case campaign.OpHas, campaign.OpHasAll:
			return "contacts.tags @> " + c.arg(jsonText(values), "jsonb")
		}
		ors := make([]string, len(values))
		for i, v := range values {
			ors[i] = "contacts.tags @> " + c.arg(jsonText([]string{v}), "jsonb")
		}
		hasAny := "(" + strings.Join(ors, " OR ") + ")"
		if r.Op == campaign.OpHasNone {
			return "NOT " + hasAny
		}
		return hasAny
	}
	in := "value IN (" + c.list(anyOf(values)) + ")"
	switch r.Op {
	case campaign.OpHasAll:
		return "(SELECT count(*) FROM json_each(contacts.tags) WHERE " + in + ") = " + c.arg(len(values), "")
	case campaign.OpHasNone:
		return "NOT EXISTS (SELECT 1 FROM json_each(contacts.tags) WHERE " + in + ")"
	}
	return "EXISTS (SELECT 1 FROM json_each(contacts.tags) WHERE " + in + ")"
}

// attrKey returns the validated attribute key for a JSON path literal; see
// the comment at the top of this file.
func attrKey(key string) (string, error) {
	if !campaign.ValidAttributeKey(key) || strings.ContainsAny(key, `'"\`) {
		return "", campaign.Errorf(campaign.EINVALID, "invalid attribute name %q", key)
	}
	return key, nil
}

// AttrExpr returns the one spelling of an attribute's value that
// equality conditions and expression indexes share:
// json_extract(attributes, '$."KEY"') on SQLite and (attributes->'KEY') on
// Postgres. The Postgres form is the jsonb value rather than its text
// (->>): jsonb equality is typed as the rules are ("12" is not 12), so an
// equality needs no jsonb_typeof filter beside it. On Postgres an indexed
// attribute is a generated column defined by this expression, and queries
// name the column instead (see CreateAttributeIndex). It returns EINVALID
// for a key that campaign.ValidAttributeKey refuses.
func AttrExpr(d Dialect, key string) (string, error) {
	k, err := attrKey(key)
	if err != nil {
		return "", err
	}
	if d == Postgres {
		return "(attributes->'" + k + "')", nil
	}
	return `json_extract(attributes, '$."` + k + `"')`, nil
}

// attr compiles an attribute condition. The value expression is the
// indexed spelling; type checks keep comparisons as strict as the
// in-memory evaluator's (12 is not "12", true is not 1).
func (c *ruleSQL) attr(r *campaign.Rule) (string, bool, error) {
	indexed, err := AttrExpr(c.d, r.Attr)
	if err != nil {
		return "", false, err
	}
	// x is the value as SQL text or number, typ its JSON type as the
	// dialect names it.
	x, typ := indexed, `json_type(attributes, '$."`+r.Attr+`"')`
	if c.d == Postgres {
		x = "(attributes->>'" + r.Attr + "')"
		if col := attrColumn(r.Attr); c.columns[col] {
			// The same values, read from the column: #>> '{}' is to the
			// column what ->> is to the key (JSON null included).
			indexed = `contacts."` + col + `"`
			x = "(" + indexed + " #>> '{}')"
		}
		typ = "jsonb_typeof(" + indexed + ")"
	}
	a := attrSQL{c: c, x: x, typ: typ, indexed: indexed}
	switch r.Op {
	case campaign.OpExists:
		return x + " IS NOT NULL", false, nil
	case campaign.OpMissing:
		return x + " IS NULL", false, nil
	case campaign.OpNe, campaign.OpNotIn:
		positive := campaign.OpEq
		if r.Op == campaign.OpNotIn {
			positive = campaign.OpIn
		}
		return "NOT COALESCE(" + a.cond(positive, r.Value) + ", FALSE)", false, nil
	}
	return a.cond(r.Op, r.Value), true, nil
}

type attrSQL struct {
	c               *ruleSQL
	x, typ, indexed string
}

func (a attrSQL) isType(t string) string {
	if a.c.d == Postgres {
		return a.typ + " = '" + map[string]string{"text": "string", "number": "number"}[t] + "'"
	}
	return map[string]string{"text": a.typ + " = 'text'", "number": a.typ + " IN ('integer', 'real')"}[t]
}

// number is x as a number, or NULL when it holds another type. Postgres
// needs the CASE: a cast of a non-number would fail the whole query.
func (a attrSQL) number() string {
	if a.c.d == Postgres {
		return "(CASE WHEN " + a.isType("number") + " THEN " + a.x + "::float8 END)"
	}
	return a.x
}

func (a attrSQL) cond(op campaign.Op, v any) string {
	c := a.c
	switch op {
	case campaign.OpEq:
		return a.eq(v)
	case campaign.OpIn:
		list := v.([]any)
		if c.d == Postgres {
			ps := make([]string, len(list))
			for i, e := range list {
				ps[i] = c.arg(jsonText(e), "jsonb")
			}
			return a.indexed + " IN (" + strings.Join(ps, ", ") + ")"
		}
		if _, num := list[0].(float64); num {
			return "(" + a.x + " IN (" + c.list(list) + ") AND " + a.isType("number") + ")"
		}
		return a.x + " IN (" + c.list(list) + ")" // json_extract gives TEXT only for strings
	case campaign.OpGt, campaign.OpGte, campaign.OpLt, campaign.OpLte:
		if c.d == Postgres {
			return c.compare(a.number(), op, v, "float8")
		}
		return "(" + c.compare(a.x, op, v, "") + " AND " + a.isType("number") + ")"
	case campaign.OpContains, campaign.OpStartsWith, campaign.OpEndsWith:
		return "(" + a.isType("text") + " AND " + c.text(a.x, op, v) + ")"
	}
	return a.date(op, v)
}

// eq compares typed values: jsonb equality on Postgres (12 = 12.0, but
// "12" <> 12 and true <> 1); on SQLite json_extract gives TEXT only for
// strings, and numbers need their type checked apart from booleans (1).
func (a attrSQL) eq(v any) string {
	c := a.c
	if c.d == Postgres {
		return a.indexed + " = " + c.arg(jsonText(v), "jsonb")
	}
	switch x := v.(type) {
	case float64:
		return "(" + a.x + " = " + c.arg(x, "") + " AND " + a.isType("number") + ")"
	case bool:
		return a.typ + " = " + c.arg(fmt.Sprint(x), "") // json_type says 'true' or 'false'
	}
	return a.x + " = " + c.arg(v, "")
}

// date compares the YYYY-MM-DD prefix of a string attribute, as
// campaign.HasDatePrefix describes it. The "C" collation makes Postgres
// compare bytes, as SQLite and Go do.
func (a attrSQL) date(op campaign.Op, v any) string {
	c := a.c
	var shape, day string
	if c.d == Postgres {
		shape = a.x + " ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}'"
		day = "left(" + a.x + ", 10) COLLATE \"C\""
	} else {
		shape = a.x + " GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*'"
		day = "substr(" + a.x + ", 1, 10)"
	}
	pre := "(" + a.isType("text") + " AND " + shape + " AND "
	switch op {
	case campaign.OpBefore:
		return pre + day + " < " + c.arg(v, "text") + ")"
	case campaign.OpAfter:
		return pre + day + " > " + c.arg(v, "text") + ")"
	}
	from, to := campaign.WithinDates(v, c.now)
	return pre + day + " >= " + c.arg(from, "text") + " AND " + day + " <= " + c.arg(to, "text") + ")"
}

func stringsOf(v any) []string {
	list := v.([]any)
	out := make([]string, len(list))
	for i, x := range list {
		out[i] = x.(string)
	}
	return out
}

func anyOf(values []string) []any {
	out := make([]any, len(values))
	for i, v := range values {
		out[i] = v
	}
	return out
}

// attrIndexName names the index of an attribute. Keys that differ only in
// case need different names (SQLite compares index names
// case-insensitively), and Postgres truncates names past 63 bytes, so the
// name ends in a hash of the exact key.
func attrIndexName(key string) string { return "contacts_attr_" + attrSuffix(key) }

// attrColumn names the generated column of an indexed attribute on
// Postgres, as attrIndexName names its index.
func attrColumn(key string) string { return "attr_" + attrSuffix(key) }

func attrSuffix(key string) string {
	h := fnv.New32a()
	h.Write([]byte(key))
	short := strings.ToLower(key)
	if len(short) > 32 {
		short = short[:32]
	}
	return fmt.Sprintf("%s_%08x", strings.ReplaceAll(short, "-", "_"), h.Sum32())
}

// attrColumns returns the names of the generated attribute columns of the
// contacts table: none on SQLite. Reading the catalog at each compilation
// costs one short query and is never stale, whichever process added the
// column.
func (db *DB) attrColumns(ctx context.Context) (map[string]bool, error) {
	if db.Dialect != Postgres {
		return nil, nil
	}
	var names []string
	err := db.SelectContext(ctx, &names, `SELECT attname FROM pg_attribute
		WHERE attrelid = 'contacts'::regclass AND attgenerated = 's' AND NOT attisdropped
		  AND attname LIKE 'attr\_%'`)
	if err != nil {
		return nil, fmt.Errorf("read attribute columns: %w", err)
	}
	columns := make(map[string]bool, len(names))
	for _, n := range names {
		columns[n] = true
	}
	return columns, nil
}
