package schema

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/tabletd/tabletd/proto/tabletmanagerdatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

// Table types as information_schema.tables spells them (MariaDB also has SEQUENCE and
// SYSTEM VERSIONED; like Vitess, they count as tables only when views are asked for).
const (
	typeBaseTable = "BASE TABLE"
	typeView      = "VIEW"
)

// tableFilter selects tables by name as Vitess's tmutils.TableFilter: an entry /re/ is a
// regexp, any other entry a name compared case-insensitively. An empty include list
// includes every table; exclusions win.
type tableFilter struct {
	includeViews bool
	include      nameSet
	exclude      nameSet
}

type nameSet struct {
	set   bool // the list was given (an empty list matches everything)
	names []string
	res   []*regexp.Regexp
}

func newTableFilter(tables, excludeTables []string, includeViews bool) (*tableFilter, error) {
	f := &tableFilter{includeViews: includeViews}
	var err error
	if f.include, err = newNameSet(tables, "tables"); err != nil {
		return nil, err
	}
	if f.exclude, err = newNameSet(excludeTables, "exclude_tables"); err != nil {
		return nil, err
	}
	return f, nil
}

func newNameSet(list []string, field string) (nameSet, error) {
	ns := nameSet{set: len(list) > 0}
	for _, t := range list {
		if !strings.HasPrefix(t, "/") {
			ns.names = append(ns.names, t)
			continue
		}
		expr := strings.Trim(t, "/")
		re, err := regexp.Compile(expr)
		if err != nil {
			return nameSet{}, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "%s entry %q is not a valid regexp: %v", field, t, err)
		}
		ns.res = append(ns.res, re)
	}
	return ns, nil
}

func (ns nameSet) matches(name string) bool {
	for _, n := range ns.names {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	for _, re := range ns.res {
		if re.MatchString(name) {
			return true
		}
	}
	return false
}

// includes reports whether the table of that name and type is selected.
func (f *tableFilter) includes(name, tableType string) bool {
	if f.include.set && !f.include.matches(name) {
		return false
	}
	if f.exclude.set && f.exclude.matches(name) {
		return false
	}
	return f.includeViews || tableType != typeView
}

// Vitess's internal table names (go/vt/schema): online DDL and table GC artifacts that
// schema comparisons ignore.
var (
	internalTableName = regexp.MustCompile(`^_vt_([a-zA-Z0-9]{3})_([0-f]{32})_([0-9]{14})_$`)
	oldGCTableName    = regexp.MustCompile(`^_vt_(HOLD|PURGE|EVAC|DROP)_([0-f]{32})_([0-9]{14})$`)
	onlineDDLTable    = regexp.MustCompile(`^_[0-f]{8}_[0-f]{4}_[0-f]{4}_[0-f]{4}_[0-f]{12}_([0-9]{14})_(gho|ghc|del|new|vrepl)$`)
	ptOSCTable        = regexp.MustCompile(`^_.*_old$`)
)

// isInternalTable reports whether name is one of Vitess's operation tables.
func isInternalTable(name string) bool {
	return internalTableName.MatchString(name) || oldGCTableName.MatchString(name) ||
		onlineDDLTable.MatchString(name) || ptOSCTable.MatchString(name)
}

// diffSchemas lists the differences between two schema definitions as Vitess's
// tmutils.DiffSchema does: database definition, extra tables (internal tables ignored),
// table definitions and types. Both must be sorted by table name (GetSchema sorts).
func diffSchemas(leftName string, left *tabletmanagerdatapb.SchemaDefinition, rightName string, right *tabletmanagerdatapb.SchemaDefinition) []string {
	if left == nil && right == nil {
		return nil
	}
	if left == nil || right == nil {
		return []string{fmt.Sprintf("schemas are different:\n%s: %v, %s: %v", leftName, left, rightName, right)}
	}
	var diffs []string
	add := func(format string, args ...any) { diffs = append(diffs, fmt.Sprintf(format, args...)) }
	if left.DatabaseSchema != right.DatabaseSchema {
		add("schemas are different:\n%s: %v\n differs from:\n%s: %v", leftName, left.DatabaseSchema, rightName, right.DatabaseSchema)
	}
	l, r := left.TableDefinitions, right.TableDefinitions
	i, j := 0, 0
	for i < len(l) && j < len(r) {
		switch {
		case l[i].Name < r[j].Name:
			if !isInternalTable(l[i].Name) {
				add("%v has an extra table named %v", leftName, l[i].Name)
			}
			i++
			continue
		case l[i].Name > r[j].Name:
			if !isInternalTable(r[j].Name) {
				add("%v has an extra table named %v", rightName, r[j].Name)
			}
			j++
			continue
		}
		if l[i].Schema != r[j].Schema && !isInternalTable(l[i].Name) {
			add("schemas differ on table %v:\n%s: %v\n differs from:\n%s: %v", l[i].Name, leftName, l[i].Schema, rightName, r[j].Schema)
		}
		if l[i].Type != r[j].Type && !isInternalTable(r[j].Name) {
			add("schemas differ on table type for table %v:\n%s: %v\n differs from:\n%s: %v", l[i].Name, leftName, l[i].Type, rightName, r[j].Type)
		}
		i++
		j++
	}
	extra := func(name string, tds []*tabletmanagerdatapb.TableDefinition) {
		for _, td := range tds {
			switch {
			case td.Type == typeBaseTable && !isInternalTable(td.Name):
				add("%v has an extra table named %v", name, td.Name)
			case td.Type == typeView:
				add("%v has an extra view named %v", name, td.Name)
			}
		}
	}
	extra(leftName, l[i:])
	extra(rightName, r[j:])
	return diffs
}
