package plan

import (
	"encoding/json"
	"strings"
)

// Type is a plan type. The names (String) are exactly Vitess v23's vttablet plan names, so
// query rules written for vttablet ("Plans": ["Select", "DDL", ...]) select the same
// statements; Passthrough is tabletd's own, for statements the parser cannot read.
type Type int

// The plan types, in Vitess's order (planbuilder/plan.go), then tabletd's Passthrough.
const (
	Select Type = iota
	Nextval
	SelectImpossible
	SelectLockFunc
	Insert
	InsertMessage
	Update
	UpdateLimit
	Delete
	DeleteLimit
	DDL
	Set
	OtherRead
	OtherAdmin
	SelectNoLimit
	SelectStream
	MessageStream
	Savepoint
	Release
	RollbackSavepoint
	Show
	Load
	Flush
	UnlockTables
	CallProcedure
	AlterMigration
	RevertMigration
	ShowMigrations
	ShowMigrationLogs
	ShowThrottledApps
	ShowThrottlerStatus
	// Passthrough is a statement the parser could not read: it is sent to MySQL as written
	// (bind variables substituted), Plan.Fallback says what it most likely is, and
	// Plan.TablesComplete says whether Plan.Tables can be trusted for the table ACL.
	Passthrough
	numTypes
)

// typeNames must match the order of the constants above.
var typeNames = [numTypes]string{
	"Select", "Nextval", "SelectImpossible", "SelectLockFunc", "Insert", "InsertMessage",
	"Update", "UpdateLimit", "Delete", "DeleteLimit", "DDL", "Set", "OtherRead", "OtherAdmin",
	"SelectNoLimit", "SelectStream", "MessageStream", "Savepoint", "Release",
	"RollbackSavepoint", "Show", "Load", "Flush", "UnlockTables", "CallProcedure",
	"AlterMigration", "RevertMigration", "ShowMigrations", "ShowMigrationLogs",
	"ShowThrottledApps", "ShowThrottlerStatus", "Passthrough",
}

// String returns the Vitess plan name ("" for an out-of-range value).
func (t Type) String() string {
	if t < 0 || t >= numTypes {
		return ""
	}
	return typeNames[t]
}

// MarshalJSON writes the plan name, as vttablet's /debug/query_plans does.
func (t Type) MarshalJSON() ([]byte, error) { return json.Marshal(t.String()) }

// TypeByName finds a plan type by its exact name (as in a query-rule "Plans" list).
func TypeByName(name string) (Type, bool) {
	for i, n := range typeNames {
		if n == name {
			return Type(i), true
		}
	}
	return 0, false
}

// IsDML reports whether the type changes rows through INSERT, UPDATE or DELETE.
func (t Type) IsDML() bool {
	switch t {
	case Insert, InsertMessage, Update, UpdateLimit, Delete, DeleteLimit:
		return true
	}
	return false
}

// Unlimited is the type the executor uses when it must not add a row limit (Vitess's
// --queryserver-config-passthrough-dmls for in-DML executions): Select becomes
// SelectNoLimit, UpdateLimit Update, DeleteLimit Delete; others are unchanged.
func (t Type) Unlimited() Type {
	switch t {
	case Select:
		return SelectNoLimit
	case UpdateLimit:
		return Update
	case DeleteLimit:
		return Delete
	}
	return t
}

// Role is the table ACL role a statement needs on a table (Vitess tableacl roles).
type Role int

// The roles. NoRole marks a table the statement names without reading or changing its rows
// (SHOW CREATE TABLE t, DESCRIBE t): listed for query rules, skipped by the table ACL.
const (
	NoRole Role = iota
	Reader
	Writer
	Admin
)

var roleNames = [...]string{"NONE", "READER", "WRITER", "ADMIN"}

// String returns READER, WRITER, ADMIN or NONE (Vitess tableacl spelling).
func (r Role) String() string {
	if r < 0 || int(r) >= len(roleNames) {
		return ""
	}
	return roleNames[r]
}

// MarshalJSON writes the role name.
func (r Role) MarshalJSON() ([]byte, error) { return json.Marshal(r.String()) }

// TableRef is one table a statement touches and the role it needs on it. Qualifier is the
// database when the statement wrote db.table. Both keep the statement's spelling (without
// backquotes); compare them with Matches, which folds case as MySQL does on a server with
// lower_case_table_names=1 and for information_schema.
type TableRef struct {
	Qualifier string `json:"qualifier,omitempty"`
	Name      string `json:"name"`
	Role      Role   `json:"role"`
}

// String returns "name" or "qualifier.name".
func (t TableRef) String() string {
	if t.Qualifier == "" {
		return t.Name
	}
	return t.Qualifier + "." + t.Name
}

// Matches reports whether the reference names qualifier.name, ignoring case; an empty
// qualifier on either side matches any database.
func (t TableRef) Matches(qualifier, name string) bool {
	if !strings.EqualFold(t.Name, name) {
		return false
	}
	return t.Qualifier == "" || qualifier == "" || strings.EqualFold(t.Qualifier, qualifier)
}
