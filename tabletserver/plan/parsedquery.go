package plan

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/tabletd/tabletd/proto/querypb"
)

// ParsedQuery is a SQL text split at its bind variables (:name and ::name outside quotes and
// comments), for fast substitution. It is immutable.
type ParsedQuery struct {
	text  string
	binds []bindLoc
}

// bindLoc is one bind variable in a ParsedQuery's text.
type bindLoc struct {
	start, end int // the ":name" or "::name" in text
	name       string
	list       bool
}

// String returns the text with its bind variables as written.
func (q *ParsedQuery) String() string { return q.text }

// MarshalJSON writes the text, as vttablet's /debug/query_plans shows FullQuery.
func (q *ParsedQuery) MarshalJSON() ([]byte, error) { return json.Marshal(q.text) }

// BindVarNames returns the names of the bind variables the text uses, in order of first use.
func (q *ParsedQuery) BindVarNames() []string {
	names := make([]string, len(q.binds))
	for i, b := range q.binds {
		names[i] = b.name
	}
	return uniqueInOrder(names)
}

// Generate appends the text to buf with every bind variable replaced by its value in Vitess's
// literal encoding (EncodeValue). A bind variable missing from bindVars is a
// *MissingBindVarError; a list where a scalar is expected, a scalar (or empty list) where a
// list is expected, is a *BindVarTypeError (checks as in Vitess's FetchBindVar). Generate
// allocates nothing beyond growing buf.
func (q *ParsedQuery) Generate(buf []byte, bindVars map[string]*querypb.BindVariable) ([]byte, error) {
	cur := 0
	for i := range q.binds {
		b := &q.binds[i]
		buf = append(buf, q.text[cur:b.start]...)
		bv, ok := bindVars[b.name]
		if !ok || bv == nil {
			return buf, &MissingBindVarError{Name: b.name}
		}
		if err := checkBindVar(b, bv); err != nil {
			return buf, err
		}
		var err error
		if buf, err = EncodeValue(buf, bv); err != nil {
			return buf, err
		}
		cur = b.end
	}
	return append(buf, q.text[cur:]...), nil
}

// GenerateString is Generate into a new string.
func (q *ParsedQuery) GenerateString(bindVars map[string]*querypb.BindVariable) (string, error) {
	if len(q.binds) == 0 {
		return q.text, nil
	}
	buf, err := q.Generate(make([]byte, 0, len(q.text)+16*len(q.binds)), bindVars)
	if err != nil {
		return "", err
	}
	return string(buf), nil
}

func checkBindVar(b *bindLoc, bv *querypb.BindVariable) error {
	isTuple := bv.Type == querypb.Type_TUPLE || bv.Type == querypb.Type_ROW_TUPLE
	switch {
	case b.list && (!isTuple || len(bv.Values) == 0):
		return &BindVarTypeError{Name: b.name, Type: bv.Type, WantList: true}
	case !b.list && bv.Type == querypb.Type_TUPLE:
		return &BindVarTypeError{Name: b.name, Type: bv.Type}
	}
	return nil
}

// queryBuilder assembles a ParsedQuery from pieces of scanned texts and plain text.
type queryBuilder struct {
	sb    strings.Builder
	binds []bindLoc
}

// plain appends text that holds no bind variables.
func (b *queryBuilder) plain(s string) { b.sb.WriteString(s) }

// bind appends a bind variable reference, written as :name.
func (b *queryBuilder) bind(name string) {
	start := b.sb.Len()
	b.sb.WriteByte(':')
	b.sb.WriteString(name)
	b.binds = append(b.binds, bindLoc{start: start, end: b.sb.Len(), name: name})
}

// scanned appends sc.text[from:to], recording the bind variables in it.
func (b *queryBuilder) scanned(sc *scanned, from, to int) {
	base := b.sb.Len() - from
	for _, t := range sc.toks {
		if t.kind == tokBind && t.start >= from && t.end <= to {
			b.binds = append(b.binds, bindLoc{start: base + t.start, end: base + t.end, name: sc.bindName(t), list: t.list})
		}
	}
	b.sb.WriteString(sc.text[from:to])
}

func (b *queryBuilder) done() *ParsedQuery {
	return &ParsedQuery{text: b.sb.String(), binds: b.binds}
}

// uniqueInOrder drops repeated names, keeping the first of each in order.
func uniqueInOrder(names []string) []string {
	out := names[:0]
	for _, n := range names {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}
