package campaign

// Role is what a user or API token may do.
type Role string

// Roles, from most to least powerful. Admins do everything; marketers own
// contacts, segments, templates, campaigns and webhooks; sales reads
// contacts, engaged lists and leads, and updates leads.
const (
	RoleAdmin    Role = "admin"
	RoleMarketer Role = "marketer"
	RoleSales    Role = "sales"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	return r == RoleAdmin || r == RoleMarketer || r == RoleSales
}

// Principal is the authenticated caller of a request.
type Principal struct {
	// TokenID is the API token used, or 0 for a browser session.
	TokenID int64
	// UserID is the user acting, or 0 for a token that belongs to no user
	// (a bootstrap token).
	UserID int64
	Name   string
	Role   Role
}

// Can reports whether the principal holds one of the given roles. Admin
// holds every role.
func (p *Principal) Can(roles ...Role) bool {
	if p == nil {
		return false
	}
	if p.Role == RoleAdmin {
		return true
	}
	for _, r := range roles {
		if p.Role == r {
			return true
		}
	}
	return false
}
