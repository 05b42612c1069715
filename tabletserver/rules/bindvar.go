package rules

import (
	"cmp"
	"regexp"
	"strconv"

	"github.com/tabletd/tabletd/proto/querypb"
)

// Operator is a bind variable condition's comparison.
type Operator int

// The operators, by their JSON names; NoOp ("") tests presence only.
const (
	NoOp         Operator = iota // ""
	Equal                        // ==
	NotEqual                     // !=
	LessThan                     // <
	GreaterEqual                 // >=
	GreaterThan                  // >
	LessEqual                    // <=
	MatchOp                      // MATCH
	NoMatchOp                    // NOMATCH
)

// operatorNames are the JSON names of the operators, indexed by Operator.
var operatorNames = [...]string{"", "==", "!=", "<", ">=", ">", "<=", "MATCH", "NOMATCH"}

// String returns the JSON name of the operator.
func (o Operator) String() string {
	if o < 0 || int(o) >= len(operatorNames) {
		return "?"
	}
	return operatorNames[o]
}

func (o Operator) ordered() bool { return o >= Equal && o <= LessEqual }

// bindVarCond is one compiled BindVarConds entry. Exactly one of the value fields is used,
// chosen by kind.
type bindVarCond struct {
	name                 string
	onAbsent, onMismatch bool
	op                   Operator
	kind                 valueKind
	i                    int64
	u                    uint64
	s                    string
	re                   *regexp.Regexp
}

type valueKind int

const (
	kindNone valueKind = iota
	kindInt
	kindUint
	kindString
	kindRegexp
)

// match evaluates the condition as Vitess's bvMatch does: an absent variable gives
// onAbsent; with operator "" a present one gives !onAbsent; otherwise the variable is the
// left operand. A value that is not a whole number (or is out of range) compares as below
// every uint64 and above every int64; a string condition against a non-text, non-numeric
// variable gives onMismatch.
func (c *bindVarCond) match(bindVars map[string]*querypb.BindVariable) bool {
	bv, ok := bindVars[c.name]
	if !ok || bv == nil {
		return c.onAbsent
	}
	if c.op == NoOp {
		return !c.onAbsent
	}
	switch c.kind {
	case kindUint:
		v, err := strconv.ParseUint(string(bv.Value), 10, 64)
		if bv.Type == querypb.Type_TUPLE || err != nil {
			// Out of range: as if below every uint64.
			return c.op == NotEqual || c.op == LessThan || c.op == LessEqual
		}
		return compare(c.op, cmp.Compare(v, c.u))
	case kindInt:
		v, err := strconv.ParseInt(string(bv.Value), 10, 64)
		if bv.Type == querypb.Type_TUPLE || err != nil {
			// Out of range: as if above every int64.
			return c.op == NotEqual || c.op == GreaterEqual || c.op == GreaterThan
		}
		return compare(c.op, cmp.Compare(v, c.i))
	case kindString, kindRegexp:
		if !stringLike(bv.Type) {
			return c.onMismatch
		}
		s := string(bv.Value)
		switch c.op {
		case MatchOp:
			return c.re.MatchString(s)
		case NoMatchOp:
			return !c.re.MatchString(s)
		}
		return compare(c.op, cmp.Compare(s, c.s))
	}
	return c.onMismatch
}

// stringLike reports whether a variable of type t has a string form for comparison, as
// Vitess's getstring: integral, float, text or binary types.
func stringLike(t querypb.Type) bool {
	for _, f := range [...]int{int(querypb.Flag_ISINTEGRAL), int(querypb.Flag_ISFLOAT), int(querypb.Flag_ISTEXT), int(querypb.Flag_ISBINARY)} {
		if int(t)&f == f {
			return true
		}
	}
	return false
}

func compare(op Operator, c int) bool {
	switch op {
	case Equal:
		return c == 0
	case NotEqual:
		return c != 0
	case LessThan:
		return c < 0
	case GreaterEqual:
		return c >= 0
	case GreaterThan:
		return c > 0
	case LessEqual:
		return c <= 0
	}
	return false
}
