package replication

import (
	"errors"
	"fmt"
	"strings"
)

// PositionFlavor names a GTID encoding; it is the prefix before "/" in an
// encoded Position, exactly as Vitess spells it.
type PositionFlavor string

// The position encodings understood by ParsePosition.
const (
	// PositionMariaDB is a MariaDB GTID position: "domain-server-sequence"
	// per replication domain, comma separated.
	PositionMariaDB PositionFlavor = "MariaDB"
	// PositionMySQL56 is a MySQL GTID set: "uuid:interval[:interval...]"
	// per source UUID, comma separated.
	PositionMySQL56 PositionFlavor = "MySQL56"
	// PositionFilePos is a binary log coordinate "file:offset" (no GTIDs).
	PositionFilePos PositionFlavor = "FilePos"
)

// gtidSet is the flavor-specific content of a Position. Implementations are
// immutable and canonical: two equal sets have equal String() values.
type gtidSet interface {
	// String returns the canonical text of the set, without flavor prefix.
	String() string
	// contains reports whether the receiver includes every transaction of
	// other, which has the same concrete type.
	contains(other gtidSet) bool
	// union returns a set holding the transactions of both sets; other has
	// the same concrete type.
	union(other gtidSet) gtidSet
}

// Position is an immutable replication position (a GTID set, or a binary
// log coordinate) in one of the PositionFlavor encodings. The zero value is
// the empty position, encoded as "". Positions must be compared with Equal
// or AtLeast, not ==.
type Position struct {
	_      [0]func() // makes == a compile error
	flavor PositionFlavor
	set    gtidSet
}

// ParsePosition decodes a position in Vitess's encoding "<flavor>/<set>",
// for example "MariaDB/0-101-42,1-2-17",
// "MySQL56/3e11fa47-71ca-11e1-9e33-c80aa9429562:1-3:5" or
// "FilePos/mysql-bin.000003:1234". The empty string decodes to the zero
// Position; any other string must carry a known flavor prefix. Errors wrap
// ErrInvalidPosition and name the offending part.
func ParsePosition(s string) (Position, error) {
	if strings.TrimSpace(s) == "" {
		return Position{}, nil
	}
	flavor, set, ok := strings.Cut(s, "/")
	if !ok {
		return Position{}, invalid("", s, s, "no flavor prefix (want MariaDB/, MySQL56/ or FilePos/)")
	}
	pos, err := ParseGTIDSet(PositionFlavor(strings.TrimSpace(flavor)), set)
	var pe *PositionError
	if errors.As(err, &pe) {
		pe.Input = s // report the whole encoded string, prefix included
	}
	return pos, err
}

// ParseGTIDSet parses a GTID set as printed by the server (without the
// flavor prefix), for example the value of @@gtid_binlog_pos for
// PositionMariaDB or @@gtid_executed for PositionMySQL56. An empty string
// yields an empty, non-zero position of that flavor ("MariaDB/").
func ParseGTIDSet(flavor PositionFlavor, s string) (Position, error) {
	var (
		set gtidSet
		err error
	)
	switch flavor {
	case PositionMariaDB:
		set, err = parseMariaDBSet(s)
	case PositionMySQL56:
		set, err = parseMySQL56Set(s)
	case PositionFilePos:
		set, err = parseFilePos(s)
	default:
		return Position{}, invalid(flavor, string(flavor), s, "unknown flavor (want MariaDB, MySQL56 or FilePos)")
	}
	if err != nil {
		return Position{}, err
	}
	return Position{flavor: flavor, set: set}, nil
}

// PositionError describes a position string that failed to parse. It
// wraps ErrInvalidPosition, so errors.Is(err, ErrInvalidPosition) holds.
type PositionError struct {
	// Flavor is the encoding being parsed ("" if the prefix was missing).
	Flavor PositionFlavor
	// Part is the offending piece of Input (a GTID, UUID, interval, ...).
	Part string
	// Input is the whole string given to the parser.
	Input string
	// Reason says what is wrong with Part.
	Reason string
}

// Error implements error.
func (e *PositionError) Error() string {
	flavor := string(e.Flavor)
	if flavor == "" {
		flavor = "position"
	}
	return fmt.Sprintf("%v: %s: bad part %q in %q: %s", ErrInvalidPosition, flavor, e.Part, e.Input, e.Reason)
}

// Unwrap returns ErrInvalidPosition.
func (e *PositionError) Unwrap() error { return ErrInvalidPosition }

// invalid builds a *PositionError for the part of input that failed to parse.
func invalid(flavor PositionFlavor, part, input, reason string) error {
	return &PositionError{Flavor: flavor, Part: part, Input: input, Reason: reason}
}

// Flavor returns the encoding of p, or "" for the zero Position.
func (p Position) Flavor() PositionFlavor { return p.flavor }

// IsZero reports whether p is the zero Position (decoded from ""). An empty
// GTID set read from a fresh server has a flavor and is not zero.
func (p Position) IsZero() bool { return p.set == nil }

// String returns the Vitess encoding "<flavor>/<set>", or "" for the zero
// Position. ParsePosition(p.String()) yields a Position Equal to p.
func (p Position) String() string {
	if p.set == nil {
		return ""
	}
	return string(p.flavor) + "/" + p.set.String()
}

// GTIDSet returns the set without the flavor prefix, in the server's own
// syntax (suitable for MASTER_GTID_WAIT, gtid_slave_pos, WAIT_FOR_EXECUTED_GTID_SET).
func (p Position) GTIDSet() string {
	if p.set == nil {
		return ""
	}
	return p.set.String()
}

// Equal reports whether p and other denote the same position.
func (p Position) Equal(other Position) bool {
	if p.set == nil || other.set == nil {
		return p.set == nil && other.set == nil
	}
	return p.flavor == other.flavor && p.set.String() == other.set.String()
}

// AtLeast reports whether p contains other: every MariaDB domain of other is
// present in p with a sequence number at least as high, every MySQL GTID of
// other is in p, or p's binlog coordinate is not before other's. Everything
// is at least the zero Position, and the zero Position is at least only
// the zero Position. Positions of different flavors never contain each other.
func (p Position) AtLeast(other Position) bool {
	switch {
	case other.set == nil:
		return true
	case p.set == nil || p.flavor != other.flavor:
		return false
	default:
		return p.set.contains(other.set)
	}
}

// union merges two positions of the same flavor (per-domain maximum for
// MariaDB, set union for MySQL56, the later coordinate for FilePos). A zero
// position is the identity.
func (p Position) union(other Position) (Position, error) {
	switch {
	case other.set == nil:
		return p, nil
	case p.set == nil:
		return other, nil
	case p.flavor != other.flavor:
		return Position{}, fmt.Errorf("%w: cannot merge %s and %s positions", ErrInvalidPosition, p.flavor, other.flavor)
	default:
		return Position{flavor: p.flavor, set: p.set.union(other.set)}, nil
	}
}

// Union returns a position holding every transaction of p and other:
// per-domain maximum sequence for MariaDB (as Vitess and MASTER_GTID_WAIT
// compare), set union for MySQL56, the later coordinate for FilePos. The
// zero Position is the identity. Positions of different flavors give an
// error wrapping ErrPositionFlavor.
func (p Position) Union(other Position) (Position, error) {
	u, err := p.union(other)
	if err != nil {
		return Position{}, fmt.Errorf("%w: %w", ErrPositionFlavor, err)
	}
	return u, nil
}

// Subtract returns the MySQL56 GTIDs of p that are not in other (p minus
// other). The zero Position subtracts nothing and leaves nothing. Only
// MySQL56 sets can be subtracted (a MariaDB position keeps one GTID per
// domain, not a set); other flavors give an error wrapping
// ErrPositionFlavor.
func (p Position) Subtract(other Position) (Position, error) {
	switch {
	case p.set == nil:
		return p, nil
	case p.flavor != PositionMySQL56:
		return Position{}, fmt.Errorf("%w: cannot subtract %s positions (only MySQL56 GTID sets)", ErrPositionFlavor, p.flavor)
	case other.set == nil:
		return p, nil
	case other.flavor != PositionMySQL56:
		return Position{}, fmt.Errorf("%w: cannot subtract a %s position from a MySQL56 one", ErrPositionFlavor, other.flavor)
	}
	return Position{flavor: p.flavor, set: p.set.(mysql56Set).difference(other.set.(mysql56Set))}, nil
}

// IsEmpty reports whether p holds no transaction: the zero Position, or an
// empty GTID set such as a freshly reset server's "MariaDB/" or "MySQL56/".
// A FilePos coordinate is never empty.
func (p Position) IsEmpty() bool { return p.set == nil || p.set.String() == "" }

// MarshalText implements encoding.TextMarshaler with the String encoding.
func (p Position) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParsePosition.
func (p *Position) UnmarshalText(text []byte) error {
	parsed, err := ParsePosition(string(text))
	if err != nil {
		return err
	}
	*p = parsed
	return nil
}
