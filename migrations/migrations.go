// Package migrations holds Funnel's numbered SQL migrations, one directory
// per dialect (postgres/ and sqlite/) with the same version numbers, in the
// goose format. They are embedded in the binary.
package migrations

import "embed"

// FS holds postgres/*.sql and sqlite/*.sql.
//
//go:embed postgres/*.sql sqlite/*.sql
var FS embed.FS
