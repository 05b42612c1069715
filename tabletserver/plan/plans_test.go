package plan

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// planCase is one case of testdata/plans.json: a SQL text and the summary of its plan.
type planCase struct {
	Group string       `json:"group"`
	SQL   string       `json:"sql"`
	Want  *planSummary `json:"want,omitempty"`
}

// planSummary is what the golden file records of a plan. Query is left out when it equals
// the SQL text; the parser's error text is left out (it is the parser's business).
type planSummary struct {
	Error      string            `json:"error,omitempty"`
	Type       string            `json:"type,omitempty"`
	Fallback   string            `json:"fallback,omitempty"`
	Statement  string            `json:"statement,omitempty"`
	Tables     []string          `json:"tables,omitempty"`
	Target     string            `json:"target,omitempty"`
	Query      string            `json:"query,omitempty"`
	Binds      []string          `json:"binds,omitempty"`
	LimitQuery string            `json:"limit_query,omitempty"`
	Where      string            `json:"where,omitempty"`
	Leading    string            `json:"leading,omitempty"`
	Trailing   string            `json:"trailing,omitempty"`
	Directives map[string]string `json:"directives,omitempty"`
	Flags      []string          `json:"flags,omitempty"`
	Next       string            `json:"next,omitempty"`
}

var sentinels = map[string]error{
	"ErrEmpty":          ErrEmpty,
	"ErrMultiStatement": ErrMultiStatement,
	"ErrNotAllowed":     ErrNotAllowed,
}

func summarize(sql string, p *Plan, err error) *planSummary {
	if err != nil {
		for name, s := range sentinels {
			if errors.Is(err, s) {
				return &planSummary{Error: name}
			}
		}
		return &planSummary{Error: "unexpected: " + err.Error()}
	}
	s := &planSummary{Type: p.Type.String(), Statement: p.Statement, Leading: p.Leading,
		Trailing: p.Trailing, Directives: p.Directives}
	if p.Fallback != p.Type {
		s.Fallback = p.Fallback.String()
	}
	for _, t := range p.Tables {
		s.Tables = append(s.Tables, t.String()+" "+t.Role.String())
	}
	if p.Target != nil {
		s.Target = p.Target.String() + " " + p.Target.Role.String()
	}
	if q := p.Query.String(); q != sql {
		s.Query = q
	}
	for _, b := range p.Query.binds {
		name := ":" + b.name
		if b.list {
			name = ":" + name
		}
		s.Binds = append(s.Binds, name)
	}
	if p.LimitQuery != nil {
		s.LimitQuery = p.LimitQuery.String()
	}
	if p.Where != nil {
		s.Where = p.Where.String()
	}
	for _, f := range []struct {
		on   bool
		name string
	}{
		{p.TablesComplete, "complete"}, {p.HasLimit, "has_limit"}, {p.IsDML, "dml"},
		{p.WithoutWhere, "without_where"}, {p.NeedsReservedConn, "reserved"}, {p.Cacheable, "cacheable"},
	} {
		if f.on {
			s.Flags = append(s.Flags, f.name)
		}
	}
	if p.Type == Nextval {
		s.Next = strconv.FormatInt(p.NextCount, 10)
		if p.NextCountBindVar != "" {
			s.Next = ":" + p.NextCountBindVar
		}
	}
	if (p.Type == Passthrough) != (p.ParseError != nil) {
		s.Error = "ParseError set for a plan that is not Passthrough, or missing"
	}
	return s
}

// TestPlansGolden builds every SQL text of testdata/plans.json and compares the plan with
// the recorded summary.
func TestPlansGolden(t *testing.T) {
	var cases []planCase
	readGolden(t, "plans.json", &cases)
	b := NewBuilder()
	for i := range cases {
		c := &cases[i]
		p, err := b.Build(c.SQL)
		got := summarize(c.SQL, p, err)
		if *update {
			c.Want = got
			continue
		}
		gotJSON, _ := json.Marshal(got)
		wantJSON, _ := json.Marshal(c.Want)
		if string(gotJSON) != string(wantJSON) {
			t.Errorf("%s: %q\n got: %s\nwant: %s", c.Group, c.SQL, gotJSON, wantJSON)
		}
	}
	if *update {
		writeGolden(t, "plans.json", cases)
	}
}

func TestBuildLimits(t *testing.T) {
	b := NewBuilder()
	deep := "select " + strings.Repeat("(", MaxNesting+1) + "1" + strings.Repeat(")", MaxNesting+1)
	if _, err := b.Build(deep); !errors.Is(err, ErrTooDeep) {
		t.Errorf("deep nesting: %v", err)
	}
	ok := "select " + strings.Repeat("(", MaxNesting) + "1" + strings.Repeat(")", MaxNesting)
	if _, err := b.Build(ok); err != nil {
		t.Errorf("nesting at the limit: %v", err)
	}
	// Many tables: deduplicated, in order.
	var sb strings.Builder
	sb.WriteString("select * from t0")
	for i := 1; i < 100; i++ {
		fmt.Fprintf(&sb, " join t%d on 1 = 1 join t%d as x%d on 1 = 1", i, i-1, i)
	}
	p, err := b.Build(sb.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Tables) != 100 || p.Tables[0].Name != "t0" || p.Tables[99].Name != "t99" {
		t.Errorf("got %d tables: %v ... %v", len(p.Tables), p.Tables[0], p.Tables[len(p.Tables)-1])
	}
}
