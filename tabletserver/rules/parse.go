package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"

	"github.com/tabletd/tabletd/tabletserver/plan"
)

// The kinds of parse error; a *ParseError wraps one of them (test with errors.Is).
var (
	ErrBadJSON         = errors.New("bad JSON")
	ErrUnknownKey      = errors.New("unknown key")
	ErrBadType         = errors.New("wrong JSON type")
	ErrMissingKey      = errors.New("missing key")
	ErrBadRegexp       = errors.New("invalid regexp")
	ErrUnknownPlan     = errors.New("unknown plan name")
	ErrUnknownOperator = errors.New("unknown operator")
	ErrUnknownAction   = errors.New("unknown action")
	ErrBadValue        = errors.New("invalid condition value")
)

// ParseError is why a rules file was rejected: which rule (Index, from 0, and Name, when
// known; Index is -1 for an error in the file as a whole), which key, and the cause.
type ParseError struct {
	Index int
	Name  string
	Key   string
	Err   error
}

func (e *ParseError) Error() string {
	if e.Index < 0 {
		return "query rules: " + e.Err.Error()
	}
	where := fmt.Sprintf("query rules: rule %d", e.Index)
	if e.Name != "" {
		where += fmt.Sprintf(" (%q)", e.Name)
	}
	if e.Key != "" {
		where += fmt.Sprintf(": key %q", e.Key)
	}
	return where + ": " + e.Err.Error()
}

func (e *ParseError) Unwrap() error { return e.Err }

// Parse reads Vitess's query rules JSON: an array of rule objects with the keys Name,
// Description, RequestIP, User, Query, LeadingComment, TrailingComment (Go regexps,
// anchored as Vitess does: "^" + pattern + "$", so an alternation a|b is anchored only at
// its ends), Plans, TableNames, BindVarConds and Action (FAIL when omitted). It fails
// closed: any error rejects the whole input, with a *ParseError.
func Parse(data []byte) (*Rules, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '[' {
		return nil, &ParseError{Index: -1, Err: fmt.Errorf("%w: want a JSON array of rules", ErrBadJSON)}
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	var raw []any
	if err := dec.Decode(&raw); err != nil {
		return nil, &ParseError{Index: -1, Err: fmt.Errorf("%w: %v", ErrBadJSON, err)}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &ParseError{Index: -1, Err: fmt.Errorf("%w: data after the array", ErrBadJSON)}
	}
	out := &Rules{}
	for i, item := range raw {
		obj, ok := item.(map[string]any)
		if !ok {
			return nil, &ParseError{Index: i, Err: fmt.Errorf("%w: want a JSON object for a rule", ErrBadType)}
		}
		r, err := buildRule(obj)
		if err != nil {
			err.Index = i
			if name, ok := obj["Name"].(string); ok {
				err.Name = name
			}
			return nil, err
		}
		out.rules = append(out.rules, r)
	}
	return out, nil
}

// buildRule compiles one rule object; keys are handled in sorted order so the error for a
// rule with several faults is deterministic.
func buildRule(obj map[string]any) (*Rule, *ParseError) {
	r := &Rule{action: Fail}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := r.set(k, obj[k]); err != nil {
			return nil, &ParseError{Key: k, Err: err}
		}
	}
	return r, nil
}

func (r *Rule) set(key string, v any) error {
	switch key {
	case "Name", "Description", "RequestIP", "User", "Query", "LeadingComment", "TrailingComment", "Action":
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("%w: want a string", ErrBadType)
		}
		return r.setString(key, s)
	case "Plans", "TableNames", "BindVarConds":
		list, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%w: want a list", ErrBadType)
		}
		for _, item := range list {
			if err := r.addItem(key, item); err != nil {
				return err
			}
		}
		return nil
	}
	return ErrUnknownKey
}

func (r *Rule) setString(key, s string) error {
	var dst **regexp.Regexp
	switch key {
	case "Name":
		r.Name = s
		return nil
	case "Description":
		r.Description = s
		return nil
	case "Action":
		i := slices.Index(actionNames[:], s)
		if i < 0 {
			return fmt.Errorf("%w %q", ErrUnknownAction, s)
		}
		r.action = Action(i)
		return nil
	case "RequestIP":
		dst = &r.requestIP
	case "User":
		dst = &r.user
	case "Query":
		dst = &r.query
	case "LeadingComment":
		dst = &r.leading
	case "TrailingComment":
		dst = &r.trailing
	}
	re, err := compileExact(s)
	if err != nil {
		return err
	}
	*dst = re
	return nil
}

func compileExact(pattern string) (*regexp.Regexp, error) {
	re, err := regexp.Compile("^" + pattern + "$")
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrBadRegexp, pattern, err)
	}
	return re, nil
}

func (r *Rule) addItem(key string, item any) error {
	if key == "BindVarConds" {
		obj, ok := item.(map[string]any)
		if !ok {
			return fmt.Errorf("%w: want a JSON object for a bind var condition", ErrBadType)
		}
		c, err := buildBindVarCond(obj)
		if err != nil {
			return err
		}
		r.bindVarConds = append(r.bindVarConds, c)
		return nil
	}
	s, ok := item.(string)
	if !ok {
		return fmt.Errorf("%w: want a list of strings", ErrBadType)
	}
	if key == "TableNames" {
		r.tableNames = append(r.tableNames, s)
		return nil
	}
	t, ok := plan.TypeByName(s)
	if !ok || t == plan.Passthrough {
		return fmt.Errorf("%w %q", ErrUnknownPlan, s)
	}
	r.plans = append(r.plans, t)
	return nil
}

// buildBindVarCond compiles one {Name, OnAbsent, Operator, Value, OnMismatch} object. As in
// Vitess, Name, OnAbsent and Operator are required, and Value and OnMismatch too unless the
// operator is "" (presence only). Ordered operators take an integer (int64, else uint64) or
// a string; MATCH and NOMATCH take a string, an anchored regexp.
func buildBindVarCond(obj map[string]any) (bindVarCond, error) {
	var c bindVarCond
	for k := range obj {
		switch k {
		case "Name", "OnAbsent", "Operator", "Value", "OnMismatch":
		default:
			return c, fmt.Errorf("%w %q in bind var condition", ErrUnknownKey, k)
		}
	}
	var err error
	if c.name, err = field[string](obj, "Name"); err != nil {
		return c, err
	}
	if c.onAbsent, err = field[bool](obj, "OnAbsent"); err != nil {
		return c, err
	}
	opName, err := field[string](obj, "Operator")
	if err != nil {
		return c, err
	}
	i := slices.Index(operatorNames[:], opName)
	if i < 0 {
		return c, fmt.Errorf("%w %q in bind var condition %q", ErrUnknownOperator, opName, c.name)
	}
	c.op = Operator(i)
	if c.op == NoOp {
		return c, nil
	}
	v, ok := obj["Value"]
	if !ok {
		return c, fmt.Errorf("%w Value in bind var condition %q", ErrMissingKey, c.name)
	}
	switch v := v.(type) {
	case json.Number:
		if !c.op.ordered() {
			return c, fmt.Errorf("%w: operator %s needs a string, got %s", ErrBadValue, c.op, v)
		}
		if n, err := v.Int64(); err == nil {
			c.kind, c.i = kindInt, n
		} else if u, err := strconv.ParseUint(string(v), 10, 64); err == nil {
			c.kind, c.u = kindUint, u
		} else {
			return c, fmt.Errorf("%w: want an int64 or uint64, got %s", ErrBadValue, v)
		}
	case string:
		if c.op.ordered() {
			c.kind, c.s = kindString, v
		} else {
			c.kind = kindRegexp
			if c.re, err = compileExact(v); err != nil {
				return c, err
			}
		}
	default:
		return c, fmt.Errorf("%w: want a string or a number, got %v", ErrBadValue, v)
	}
	if c.onMismatch, err = field[bool](obj, "OnMismatch"); err != nil {
		return c, err
	}
	return c, nil
}

func field[T any](obj map[string]any, key string) (T, error) {
	var zero T
	v, ok := obj[key]
	if !ok {
		return zero, fmt.Errorf("%w %s in bind var condition", ErrMissingKey, key)
	}
	t, ok := v.(T)
	if !ok {
		return zero, fmt.Errorf("%w for %s in bind var condition: want %T", ErrBadType, key, zero)
	}
	return t, nil
}
