// Package rules implements Vitess's custom query rules: it parses them, matches queries against them, and gives the action to take.
package rules

import (
	"regexp"

	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
	"github.com/tabletd/tabletd/tabletserver/plan"
)

// Action is what vttablet does with a query a rule matches.
type Action int

// The actions, with their JSON names FAIL, FAIL_RETRY and BUFFER.
const (
	// Fail rejects the query with INVALID_ARGUMENT; it is the default when Action is omitted.
	Fail Action = iota
	// FailRetry rejects the query with FAILED_PRECONDITION, which vtgate retries or buffers.
	FailRetry
	// Buffer is accepted for compatibility. In Vitess a BUFFER rule read from a rules file has
	// no cancel context, so the query proceeds at once (query_executor.go checkPermissions);
	// the rule still stops the search, shadowing later rules. Rule.Err is nil for it.
	Buffer
)

// actionNames are the JSON names of the actions, indexed by Action.
var actionNames = [...]string{Fail: "FAIL", FailRetry: "FAIL_RETRY", Buffer: "BUFFER"}

// String returns the JSON name of the action.
func (a Action) String() string {
	if a < 0 || int(a) >= len(actionNames) {
		return ""
	}
	return actionNames[a]
}

// DeniedTablesDescription is the description of the rule built from the shard's denied tables.
const DeniedTablesDescription = "enforce denied tables"

// Rule is one compiled query rule. It is immutable once built.
type Rule struct {
	Name, Description string

	requestIP, user, query, leading, trailing *regexp.Regexp
	plans                                     []plan.Type
	tableNames                                []string
	bindVarConds                              []bindVarCond
	action                                    Action
}

// Action returns the rule's action.
func (r *Rule) Action() Action { return r.action }

// Err returns the error vttablet sends for a query the rule matches: FAIL is INVALID_ARGUMENT
// and FAIL_RETRY FAILED_PRECONDITION, both "disallowed due to rule: <description>" (text
// vtgate's buffer matches); BUFFER gives nil (see Buffer).
func (r *Rule) Err() error {
	switch r.action {
	case Fail:
		return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "disallowed due to rule: %s", r.Description)
	case FailRetry:
		return rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION, "disallowed due to rule: %s", r.Description)
	}
	return nil
}

// DeniedTables returns the rule vttablet builds from Shard.tablet_controls denied tables:
// name "denied_table", FAIL_RETRY, description "enforce denied tables", matching any plan
// that touches one of the tables. It returns nil for an empty list, as vttablet then adds
// no rule.
func DeniedTables(tables []string) *Rule {
	if len(tables) == 0 {
		return nil
	}
	return &Rule{
		Name:        "denied_table",
		Description: DeniedTablesDescription,
		tableNames:  append([]string(nil), tables...),
		action:      FailRetry,
	}
}

// Rules is an ordered, immutable list of rules, safe for concurrent use. The nil *Rules is
// an empty list.
type Rules struct {
	rules []*Rule
}

// New returns a list of the given rules, in order; nil entries are skipped.
func New(rules ...*Rule) *Rules {
	out := &Rules{}
	for _, r := range rules {
		if r != nil {
			out.rules = append(out.rules, r)
		}
	}
	return out
}

// Len returns the number of rules.
func (r *Rules) Len() int {
	if r == nil {
		return 0
	}
	return len(r.rules)
}

// Rules returns a copy of the list.
func (r *Rules) Rules() []*Rule {
	if r == nil {
		return nil
	}
	return append([]*Rule(nil), r.rules...)
}

// Append returns a new list with r's rules followed by other's; neither is changed.
func (r *Rules) Append(other *Rules) *Rules {
	return New(append(r.Rules(), other.Rules()...)...)
}

// Query is what a rule is matched against.
type Query struct {
	// Plan gives the plan type, the tables and the margin comments (Leading, Trailing).
	Plan *plan.Plan
	// SQL is the statement text without its margin comments, as Vitess matches Query.
	SQL string
	// BindVars are the query's bind variables.
	BindVars map[string]*querypb.BindVariable
	// User is the gRPC call-info user and RemoteIP the peer address, as in Vitess (not the
	// VTGateCallerID).
	User, RemoteIP string
}

// Match returns the first rule the query matches. A rule matches when every condition set
// on it holds; an unset condition matches anything. Plans matches the plan type (for a
// Passthrough plan also its Fallback type); TableNames matches when any table the plan
// touches has a listed name, compared case-sensitively and without the qualifier, as
// Vitess compares plan.TableNames(). DDL plans are matched like any other.
func (r *Rules) Match(q Query) (*Rule, bool) {
	if r == nil {
		return nil, false
	}
	for _, rule := range r.rules {
		if rule.matches(q) {
			return rule, true
		}
	}
	return nil, false
}

func (r *Rule) matches(q Query) bool {
	var leading, trailing string
	if q.Plan != nil {
		leading, trailing = q.Plan.Leading, q.Plan.Trailing
	}
	if !reMatch(r.query, q.SQL) || !r.planMatch(q.Plan) || !r.tableMatch(q.Plan) ||
		!reMatch(r.leading, leading) || !reMatch(r.trailing, trailing) ||
		!reMatch(r.requestIP, q.RemoteIP) || !reMatch(r.user, q.User) {
		return false
	}
	for _, c := range r.bindVarConds {
		if !c.match(q.BindVars) {
			return false
		}
	}
	return true
}

func reMatch(re *regexp.Regexp, s string) bool { return re == nil || re.MatchString(s) }

func (r *Rule) planMatch(p *plan.Plan) bool {
	if r.plans == nil {
		return true
	}
	if p == nil {
		return false
	}
	for _, t := range r.plans {
		if t == p.Type || (p.Type == plan.Passthrough && t == p.Fallback) {
			return true
		}
	}
	return false
}

func (r *Rule) tableMatch(p *plan.Plan) bool {
	if r.tableNames == nil {
		return true
	}
	if p == nil {
		return false
	}
	for _, t := range p.Tables {
		for _, name := range r.tableNames {
			if t.Name == name {
				return true
			}
		}
	}
	return false
}
