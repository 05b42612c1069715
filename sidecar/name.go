package sidecar

import (
	"strings"
	"unicode/utf8"

	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

// DefaultName is the sidecar database of a keyspace whose sidecar_db_name is empty.
const DefaultName = "_vt"

// maxNameLen is MySQL's and MariaDB's limit on a database name, in characters; vtctldclient
// CreateKeyspace enforces the same limit on --sidecar-db-name.
const maxNameLen = 64

// systemSchemas cannot be a sidecar database: tabletd would create its tables among the
// server's own.
var systemSchemas = map[string]bool{
	"mysql": true, "information_schema": true, "performance_schema": true, "sys": true,
}

// ValidateName reports why name cannot be a sidecar database name: empty, longer than 64
// characters, not UTF-8, containing a character MySQL refuses or maps onto the file system in a
// database name (NUL, '/', '\\', '.', a backtick is refused to keep quoting trivial), ending in a
// space, or a system schema. The error has code INVALID_ARGUMENT.
func ValidateName(name string) error {
	bad := func(why string) error {
		return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "sidecar database name %q %s", name, why)
	}
	switch {
	case name == "":
		return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "sidecar database name must not be empty")
	case !utf8.ValidString(name):
		return bad("is not valid UTF-8")
	case utf8.RuneCountInString(name) > maxNameLen:
		return bad("is longer than 64 characters")
	case strings.HasSuffix(name, " "):
		return bad("ends with a space")
	case strings.ContainsAny(name, "\x00/\\.`"):
		return bad("contains one of NUL / \\ . ` (not allowed in a database name here)")
	case systemSchemas[strings.ToLower(name)]:
		return bad("is a system schema")
	}
	return nil
}

// QuoteName returns name as a backtick-quoted identifier. name must have passed ValidateName
// (which excludes backticks, so no escaping is needed).
func QuoteName(name string) string { return "`" + name + "`" }
