package topo

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/tabletd/tabletd/proto/topodatapb"
)

// maxNameLen is Vitess's limit on keyspace and shard names (topo/validator.go).
const maxNameLen = 64

// ParseTabletAlias parses "<cell>-<uid>" (for example "zone1-0000000100" or
// "zone1-100"). The cell may itself contain '-': the uid is what follows the
// last '-'. It returns ErrInvalidAlias when the input has another shape.
func ParseTabletAlias(s string) (*topodatapb.TabletAlias, error) {
	i := strings.LastIndexByte(s, '-')
	if i <= 0 || i == len(s)-1 {
		return nil, fmt.Errorf("%w %q: want <cell>-<uid>, e.g. zone1-0000000100", ErrInvalidAlias, s)
	}
	cell, uidStr := s[:i], s[i+1:]
	if err := ValidateCellName(cell); err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrInvalidAlias, s, err)
	}
	for _, c := range uidStr {
		if c < '0' || c > '9' {
			return nil, fmt.Errorf("%w %q: uid %q must be decimal digits", ErrInvalidAlias, s, uidStr)
		}
	}
	uid, err := strconv.ParseUint(uidStr, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("%w %q: uid %q must fit in 32 bits (0-4294967295)", ErrInvalidAlias, s, uidStr)
	}
	return &topodatapb.TabletAlias{Cell: cell, Uid: uint32(uid)}, nil
}

// AliasString formats an alias the way Vitess names tablet records:
// "<cell>-<uid as 10 zero-padded digits>", e.g. "zone1-0000000100".
func AliasString(a *topodatapb.TabletAlias) string {
	if a == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%s-%010d", a.GetCell(), a.GetUid())
}

// ValidateCellName accepts the characters Vitess accepts in the cell part of an
// alias: letters, digits, '-', '_' and '.'.
func ValidateCellName(cell string) error {
	if cell == "" {
		return fmt.Errorf("empty cell name")
	}
	for _, c := range cell {
		if !isNameChar(c) && c != '.' {
			return fmt.Errorf("cell %q has invalid character %q (allowed: letters, digits, '-', '_', '.')", cell, c)
		}
	}
	return nil
}

func isNameChar(c rune) bool {
	return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') || c == '-' || c == '_'
}

// validateObjectName mirrors Vitess's check on keyspace and shard names.
func validateObjectName(name string) error {
	if name == "" {
		return fmt.Errorf("empty name")
	}
	if len(name) > maxNameLen {
		return fmt.Errorf("name %q is longer than %d characters", name, maxNameLen)
	}
	for _, c := range name {
		if !isNameChar(c) {
			return fmt.Errorf("name %q has invalid character %q (allowed: letters, digits, '-', '_')", name, c)
		}
	}
	return nil
}

// ValidateKeyspaceName checks a keyspace name the way Vitess does; it returns
// ErrInvalidKeyspace when the name cannot be stored.
func ValidateKeyspaceName(name string) error {
	if err := validateObjectName(name); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidKeyspace, err)
	}
	return nil
}

// ValidateShardName checks a shard name and returns its canonical form and key
// range, as Vitess does. A name without '-' (e.g. "0") is a plain name with a
// nil key range. Otherwise it must be "<start>-<end>" with start and end hex
// (either may be empty, meaning the minimum/maximum key) and start < end; the
// canonical form is lower-case and the key range is the decoded bytes ("-"
// gives a non-nil, empty key range, like Vitess).
func ValidateShardName(name string) (string, *topodatapb.KeyRange, error) {
	if err := validateObjectName(name); err != nil {
		return "", nil, fmt.Errorf("%w: %v", ErrInvalidShard, err)
	}
	if !strings.Contains(name, "-") {
		return name, nil, nil
	}
	parts := strings.Split(name, "-")
	if len(parts) != 2 {
		return "", nil, fmt.Errorf("%w %q: a key range shard has exactly one '-', e.g. \"-80\" or \"80-c0\"", ErrInvalidShard, name)
	}
	start, err := hex.DecodeString(parts[0])
	if err != nil {
		return "", nil, fmt.Errorf("%w %q: start %q is not an even-length hex string", ErrInvalidShard, name, parts[0])
	}
	end, err := hex.DecodeString(parts[1])
	if err != nil {
		return "", nil, fmt.Errorf("%w %q: end %q is not an even-length hex string", ErrInvalidShard, name, parts[1])
	}
	if len(end) > 0 && string(start) >= string(end) {
		return "", nil, fmt.Errorf("%w %q: start %s must be strictly smaller than end %s", ErrInvalidShard, name, parts[0], parts[1])
	}
	return strings.ToLower(name), &topodatapb.KeyRange{Start: start, End: end}, nil
}
