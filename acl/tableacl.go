package acl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/tabletd/tabletd/proto/tableaclpb"
)

// Role is a level of access on a table; the zero value is Reader.
//
// Roles are independent, as in Vitess's tableacl: a check for a role consults
// only that role's list, so an admin who must also read a table has to be
// listed under readers too.
type Role int

// The roles, in the order (and with the names) Vitess uses.
const (
	Reader Role = iota // may run SELECT
	Writer             // may run INSERT, UPDATE, DELETE
	Admin              // may run DDL
)

// numRoles is the number of valid roles.
const numRoles = 3

// String returns the Vitess name of r (READER, WRITER, ADMIN).
func (r Role) String() string {
	switch r {
	case Reader:
		return "READER"
	case Writer:
		return "WRITER"
	case Admin:
		return "ADMIN"
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// ErrUnknownRole is returned (wrapped) by ParseRole for an unknown name.
var ErrUnknownRole = errors.New("table acl: unknown role")

// ParseRole returns the role named s, case-insensitively.
func ParseRole(s string) (Role, error) {
	for r := Reader; r < numRoles; r++ {
		if strings.EqualFold(s, r.String()) {
			return r, nil
		}
	}
	return 0, fmt.Errorf("%w %q", ErrUnknownRole, s)
}

// Config is the JSON form of Vitess's tableacl.Config.
type Config struct {
	TableGroups []TableGroup `json:"table_groups"`
}

// TableGroup is the JSON form of Vitess's tableacl.TableGroupSpec. An entry of
// TableNamesOrPrefixes ending in '%' matches every table with that prefix.
type TableGroup struct {
	Name                 string   `json:"name"`
	TableNamesOrPrefixes []string `json:"table_names_or_prefixes"`
	Readers              []string `json:"readers"`
	Writers              []string `json:"writers"`
	Admins               []string `json:"admins"`
}

// ErrInvalidConfig matches (via errors.Is) every error from ParseConfig and Compile.
var ErrInvalidConfig = errors.New("table acl: invalid config")

// ConfigError describes why a table ACL config was rejected.
type ConfigError struct {
	Index   int    // index of the offending table group, or -1 when not group-specific
	Group   string // name of the offending table group
	Entry   string // offending table name or prefix, if any
	Problem string // what is wrong
	Err     error  // underlying cause (a JSON error), if any
}

// Error implements error.
func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString("table acl: ")
	if e.Index >= 0 {
		fmt.Fprintf(&b, "table_groups[%d] (group %q): ", e.Index, e.Group)
	}
	if e.Entry != "" {
		fmt.Fprintf(&b, "entry %q: ", e.Entry)
	}
	b.WriteString(e.Problem)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying cause.
func (e *ConfigError) Unwrap() error { return e.Err }

// Is reports whether target is ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// DeniedError reports that a user lacks a role on a table.
type DeniedError struct {
	User, Table string
	Role        Role
}

// Error implements error.
func (e *DeniedError) Error() string {
	return fmt.Sprintf("table acl: user %q lacks %s on table %q", e.User, e.Role, e.Table)
}

// wireGroup accepts both the proto field names and the protojson camelCase
// names, as Vitess's JSON loader does.
type wireGroup struct {
	Name                      string   `json:"name"`
	TableNamesOrPrefixes      []string `json:"table_names_or_prefixes"`
	TableNamesOrPrefixesCamel []string `json:"tableNamesOrPrefixes"`
	Readers                   []string `json:"readers"`
	Writers                   []string `json:"writers"`
	Admins                    []string `json:"admins"`
}

type wireConfig struct {
	TableGroups      []wireGroup `json:"table_groups"`
	TableGroupsCamel []wireGroup `json:"tableGroups"`
}

// ParseConfig decodes and validates a table ACL config in either of the forms
// vttablet reads: JSON (the file starts with '{') or a binary-encoded
// tableacl.Config protobuf. Unknown fields are rejected in both forms; JSON
// accepts snake_case and camelCase field names.
func ParseConfig(data []byte) (*Config, error) {
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) > 0 && t[0] != '{' {
		return parseBinary(data)
	}
	return parseJSON(data)
}

// parseBinary decodes the protobuf form. A text file that is not JSON almost
// never decodes as protobuf; when it does, it leaves unknown fields, which are
// refused, so a wrong file is never taken for an empty (deny-all) config.
func parseBinary(data []byte) (*Config, error) {
	var pc tableaclpb.Config
	if err := proto.Unmarshal(data, &pc); err != nil {
		return nil, &ConfigError{Index: -1, Problem: "neither JSON (no leading '{') nor a binary tableacl.Config protobuf", Err: err}
	}
	if len(pc.ProtoReflect().GetUnknown()) > 0 {
		return nil, &ConfigError{Index: -1, Problem: "binary tableacl.Config has unknown fields: not a table ACL file"}
	}
	cfg := &Config{TableGroups: make([]TableGroup, 0, len(pc.TableGroups))}
	for i, g := range pc.TableGroups {
		if len(g.ProtoReflect().GetUnknown()) > 0 {
			return nil, &ConfigError{Index: i, Group: g.Name, Problem: "binary tableacl.TableGroupSpec has unknown fields"}
		}
		cfg.TableGroups = append(cfg.TableGroups, TableGroup{
			Name: g.Name, TableNamesOrPrefixes: g.TableNamesOrPrefixes,
			Readers: g.Readers, Writers: g.Writers, Admins: g.Admins,
		})
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

func parseJSON(data []byte) (*Config, error) {
	var w wireConfig
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return nil, &ConfigError{Index: -1, Problem: "bad JSON", Err: err}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &ConfigError{Index: -1, Problem: "bad JSON: trailing data after the config object"}
	}
	if w.TableGroups != nil && w.TableGroupsCamel != nil {
		return nil, &ConfigError{Index: -1, Problem: `both "table_groups" and "tableGroups" given`}
	}
	groups := w.TableGroups
	if groups == nil {
		groups = w.TableGroupsCamel
	}
	cfg := &Config{TableGroups: make([]TableGroup, 0, len(groups))}
	for i, g := range groups {
		if g.TableNamesOrPrefixes != nil && g.TableNamesOrPrefixesCamel != nil {
			return nil, &ConfigError{Index: i, Group: g.Name,
				Problem: `both "table_names_or_prefixes" and "tableNamesOrPrefixes" given`}
		}
		names := g.TableNamesOrPrefixes
		if names == nil {
			names = g.TableNamesOrPrefixesCamel
		}
		cfg.TableGroups = append(cfg.TableGroups, TableGroup{
			Name: g.Name, TableNamesOrPrefixes: names,
			Readers: g.Readers, Writers: g.Writers, Admins: g.Admins,
		})
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Validate reports the first problem in cfg as a *ConfigError: an empty entry,
// a '%' anywhere but at the end of an entry, or two entries that overlap. As in Vitess, entries overlap when any
// table could match both (a duplicate name, a name covered by a prefix, or a
// prefix covered by a shorter prefix), even within one group, so at most one
// entry ever governs a table.
func (c *Config) Validate() error {
	if c == nil {
		return nil
	}
	type key struct {
		k     string // exact names end in NUL so they cover only themselves
		entry string
		index int
	}
	var keys []key
	// Group names may be empty or repeated, as vttablet accepts them (its own example config
	// has no names): a group is only a label; what must not overlap are the table entries.
	for i, g := range c.TableGroups {
		for _, e := range g.TableNamesOrPrefixes {
			if e == "" {
				return &ConfigError{Index: i, Group: g.Name, Problem: "empty table name or prefix"}
			}
			k, isPrefix := strings.CutSuffix(e, "%")
			if strings.Contains(k, "%") {
				return &ConfigError{Index: i, Group: g.Name, Entry: e,
					Problem: "'%' may only appear at the end, marking a prefix"}
			}
			if !isPrefix {
				k += "\x00"
			}
			keys = append(keys, key{k: k, entry: e, index: i})
		}
	}
	// In sorted order, if any key is a prefix of a later one, it is a prefix
	// of its immediate successor, so adjacent pairs suffice.
	slices.SortStableFunc(keys, func(a, b key) int { return strings.Compare(a.k, b.k) })
	for n := 1; n < len(keys); n++ {
		a, b := keys[n-1], keys[n]
		if strings.HasPrefix(b.k, a.k) {
			first, second := a, b
			if second.index < first.index {
				first, second = second, first
			}
			return &ConfigError{Index: second.index, Group: c.TableGroups[second.index].Name,
				Entry: second.entry, Problem: fmt.Sprintf("overlaps with entry %q of group %q",
					first.entry, c.TableGroups[first.index].Name)}
		}
	}
	return nil
}

// group is a compiled table group: per role, the set of member principals.
type group struct {
	name    string
	members [numRoles]map[string]struct{}
}

type prefixEntry struct {
	prefix string
	g      *group
}

// ACL is a compiled table ACL. It is immutable and safe for concurrent use.
// A nil *ACL behaves like an empty config: every table but dual is denied.
//
// Table names are matched case-sensitively, byte for byte, as Vitess does
// (and as MySQL does on Linux with lower_case_table_names=0). The pseudo
// table dual is matched case-insensitively, as in MySQL.
type ACL struct {
	exact    map[string]*group
	prefixes []prefixEntry // longest prefix first
}

// Compile validates cfg and compiles it; a nil cfg compiles to a deny-all ACL.
func Compile(cfg *Config) (*ACL, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &ACL{exact: make(map[string]*group)}
	if cfg == nil {
		return a, nil
	}
	for _, tg := range cfg.TableGroups {
		g := &group{name: tg.Name}
		for r, list := range [numRoles][]string{Reader: tg.Readers, Writer: tg.Writers, Admin: tg.Admins} {
			g.members[r] = make(map[string]struct{}, len(list))
			for _, p := range list {
				g.members[r][p] = struct{}{}
			}
		}
		for _, e := range tg.TableNamesOrPrefixes {
			if p, ok := strings.CutSuffix(e, "%"); ok {
				a.prefixes = append(a.prefixes, prefixEntry{prefix: p, g: g})
			} else {
				a.exact[e] = g
			}
		}
	}
	slices.SortStableFunc(a.prefixes, func(x, y prefixEntry) int { return len(y.prefix) - len(x.prefix) })
	return a, nil
}

// lookup returns the group governing table: an exact entry wins over any
// prefix, and the longest matching prefix wins. (Validate rejects overlaps, so
// in a compiled ACL at most one entry matches anyway.)
func (a *ACL) lookup(table string) *group {
	if a == nil {
		return nil
	}
	if g, ok := a.exact[table]; ok {
		return g
	}
	for _, p := range a.prefixes {
		if strings.HasPrefix(table, p.prefix) {
			return p.g
		}
	}
	return nil
}

// isDual reports whether table is MySQL's pseudo table dual.
func isDual(table string) bool { return strings.EqualFold(table, "dual") }

// Allowed reports whether the principal (user, or any of groups) is listed
// for role on the group governing table. A table no group governs is denied
// for every role; dual is always allowed.
func (a *ACL) Allowed(table string, role Role, user string, groups []string) bool {
	if isDual(table) {
		return true
	}
	if role < Reader || role >= numRoles {
		return false
	}
	g := a.lookup(table)
	if g == nil {
		return false
	}
	m := g.members[role]
	if _, ok := m[user]; ok {
		return true
	}
	for _, gr := range groups {
		if _, ok := m[gr]; ok {
			return true
		}
	}
	return false
}

// Check is Allowed returning a *DeniedError instead of false.
func (a *ACL) Check(table string, role Role, user string, groups []string) error {
	if a.Allowed(table, role, user, groups) {
		return nil
	}
	return &DeniedError{User: user, Table: table, Role: role}
}

// Group returns the name of the table group governing table, if any.
func (a *ACL) Group(table string) (name string, ok bool) {
	if g := a.lookup(table); g != nil {
		return g.name, true
	}
	return "", false
}
