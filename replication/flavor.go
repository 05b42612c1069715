package replication

import (
	"fmt"
	"strconv"
	"strings"
)

// Flavor identifies the kind of database server, which decides the SQL used
// to read and control replication.
type Flavor int

// The supported flavors. FlavorUnknown is the zero value and is rejected by
// every function taking a Flavor.
const (
	FlavorUnknown Flavor = iota
	// FlavorMariaDB is MariaDB 10.4 or later (10.x and 11.x).
	FlavorMariaDB
	// FlavorMySQL80 is MySQL 8.0.x (including Percona Server 8.0).
	FlavorMySQL80
	// FlavorMySQL84 is MySQL 8.1 or later: the 8.4 LTS line, the 8.1-8.3
	// innovation releases that led to it, and 9.x.
	FlavorMySQL84
)

// flavorNames is an immutable lookup table for Flavor.String.
var flavorNames = [...]string{
	FlavorUnknown: "unknown",
	FlavorMariaDB: "mariadb",
	FlavorMySQL80: "mysql80",
	FlavorMySQL84: "mysql84",
}

// String returns a short lower-case name: "mariadb", "mysql80", "mysql84"
// or "unknown".
func (f Flavor) String() string {
	if f < 0 || int(f) >= len(flavorNames) {
		return "Flavor(" + strconv.Itoa(int(f)) + ")"
	}
	return flavorNames[f]
}

// IsMariaDB reports whether f is a MariaDB flavor.
func (f Flavor) IsMariaDB() bool { return f == FlavorMariaDB }

// IsMySQL reports whether f is a MySQL flavor.
func (f Flavor) IsMySQL() bool { return f == FlavorMySQL80 || f == FlavorMySQL84 }

// PositionFlavor returns the GTID encoding used by servers of flavor f:
// PositionMariaDB for MariaDB, PositionMySQL56 for MySQL, "" for unknown.
func (f Flavor) PositionFlavor() PositionFlavor {
	switch {
	case f.IsMariaDB():
		return PositionMariaDB
	case f.IsMySQL():
		return PositionMySQL56
	default:
		return ""
	}
}

// check returns ErrUnknownFlavor unless f is one of the supported flavors.
func (f Flavor) check() error {
	if f.IsMariaDB() || f.IsMySQL() {
		return nil
	}
	return fmt.Errorf("%w: %v", ErrUnknownFlavor, f)
}

// Version is a server's numeric version, without distribution suffixes.
type Version struct {
	Major, Minor, Patch int
}

// String returns the version as "major.minor.patch".
func (v Version) String() string {
	return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
}

// Compare returns -1, 0 or +1 as v is older than, equal to or newer than o.
func (v Version) Compare(o Version) int {
	for _, d := range [...]int{v.Major - o.Major, v.Minor - o.Minor, v.Patch - o.Patch} {
		switch {
		case d < 0:
			return -1
		case d > 0:
			return 1
		}
	}
	return 0
}

// mariaDBReplicationPrefix is prepended to the version in the handshake of
// MariaDB servers (to keep old MySQL clients working).
const mariaDBReplicationPrefix = "5.5.5-"

// DetectFlavor derives the flavor and numeric version from a server version
// string as returned by the handshake or SELECT @@version, for example
// "8.0.36", "8.4.3-log", "10.11.19-MariaDB-0+deb12u1" or
// "5.5.5-10.11.19-MariaDB-0+deb12u1". Unsupported or unparsable versions
// return an error wrapping ErrUnsupportedServer.
func DetectFlavor(version string) (Flavor, Version, error) {
	return detectFlavor(version, "")
}

// detectFlavor is DetectFlavor with @@version_comment as an extra hint for
// MariaDB builds whose version string lacks the "MariaDB" marker.
func detectFlavor(version, comment string) (Flavor, Version, error) {
	text := strings.TrimSpace(version)
	mariadb := strings.Contains(strings.ToLower(text), "mariadb") ||
		strings.Contains(strings.ToLower(comment), "mariadb")
	if mariadb {
		text = strings.TrimPrefix(text, mariaDBReplicationPrefix)
	}
	v, err := parseVersion(text)
	if err != nil {
		return FlavorUnknown, Version{}, fmt.Errorf("%w: %v", ErrUnsupportedServer, err)
	}
	switch {
	case mariadb && v.Compare(Version{10, 4, 0}) >= 0:
		return FlavorMariaDB, v, nil
	case mariadb:
		return FlavorUnknown, v, fmt.Errorf("%w: MariaDB %v (%q) is too old, need 10.4 or later",
			ErrUnsupportedServer, v, version)
	case v.Major == 8 && v.Minor == 0:
		return FlavorMySQL80, v, nil
	case (v.Major == 8 && v.Minor > 0) || v.Major == 9:
		return FlavorMySQL84, v, nil
	case v.Major < 8:
		return FlavorUnknown, v, fmt.Errorf("%w: MySQL %v (%q) is too old, need 8.0 or later",
			ErrUnsupportedServer, v, version)
	default:
		return FlavorUnknown, v, fmt.Errorf("%w: unrecognised server version %q (not MySQL 8.x/9.x nor MariaDB)",
			ErrUnsupportedServer, version)
	}
}

// parseVersion parses the leading "major.minor.patch" of s; anything after
// the patch number that does not start with a digit is ignored.
func parseVersion(s string) (Version, error) {
	if s == "" {
		return Version{}, fmt.Errorf("empty version string")
	}
	end := strings.IndexFunc(s, func(r rune) bool { return r != '.' && (r < '0' || r > '9') })
	numeric := s
	if end >= 0 {
		numeric = s[:end]
	}
	parts := strings.Split(numeric, ".")
	if len(parts) != 3 {
		return Version{}, fmt.Errorf("version %q does not start with major.minor.patch", s)
	}
	var nums [3]int
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || len(p) > 6 {
			return Version{}, fmt.Errorf("version %q has a bad number %q", s, p)
		}
		nums[i] = n
	}
	return Version{Major: nums[0], Minor: nums[1], Patch: nums[2]}, nil
}
