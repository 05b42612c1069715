package plan

import (
	"errors"
	"fmt"

	"github.com/tabletd/tabletd/proto/querypb"
)

var (
	// ErrEmpty is returned by Build for a text without a statement (only white space,
	// semicolons or comments); MySQL answers it with "Query was empty".
	ErrEmpty = errors.New("query was empty")
	// ErrMultiStatement is returned by Build for a text with more than one statement
	// ("select 1; drop table t"): the tablet runs exactly one statement per request.
	ErrMultiStatement = errors.New("multiple statements in one query are not allowed")
	// ErrNotAllowed is returned by Build, wrapped with the statement, for statements a
	// tablet refuses to run through Execute because they change the state of a shared
	// connection or bypass the tablet's transaction handling (BEGIN, COMMIT, USE, LOCK
	// TABLES, PREPARE, CREATE DATABASE, ...), as vttablet refuses them.
	ErrNotAllowed = errors.New("statement not allowed through Execute")
	// ErrTooDeep is returned by Build for a statement nesting parentheses deeper than
	// MaxNesting: its syntax tree would cost too much stack and time to walk.
	ErrTooDeep = fmt.Errorf("statement nests parentheses deeper than %d", MaxNesting)
	// ErrBadTupleEncoding is returned when a tuple value inside a bind variable is not a
	// valid Vitess packed tuple.
	ErrBadTupleEncoding = errors.New("bad tuple encoding in bind variable")
	// ErrBadBindValue is returned when a bind variable written unquoted (a number, a hex or
	// bit literal) does not have its type's syntax: sent as written it would be SQL.
	ErrBadBindValue = errors.New("bad bind variable value")
)

// MaxNesting is the deepest parenthesis nesting Build accepts.
const MaxNesting = 1000

// errUnterminated is a scanner error: a quote or comment that does not end.
type errUnterminated string

func (e errUnterminated) Error() string { return "unterminated " + string(e) }

// MissingBindVarError is returned by Generate when the query uses a bind variable the
// request does not supply.
type MissingBindVarError struct {
	Name string
}

func (e *MissingBindVarError) Error() string { return "missing bind var " + e.Name }

// BindVarTypeError is returned by Generate when a bind variable does not fit its place:
// a list (::name) needs a non-empty TUPLE or ROW_TUPLE, a scalar (:name) must not be a TUPLE.
type BindVarTypeError struct {
	Name     string
	Type     querypb.Type
	WantList bool // the query has ::Name
}

func (e *BindVarTypeError) Error() string {
	switch {
	case !e.WantList:
		return fmt.Sprintf("unexpected arg type (%v) for non-list key %s", e.Type, e.Name)
	case e.Type == querypb.Type_TUPLE || e.Type == querypb.Type_ROW_TUPLE:
		return "empty list supplied for " + e.Name
	default:
		return fmt.Sprintf("unexpected list arg type (%v) for key %s", e.Type, e.Name)
	}
}
