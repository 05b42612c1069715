package plan

import (
	"errors"
	"strings"
	"testing"

	"github.com/tabletd/tabletd/proto/querypb"
)

type generateCase struct {
	Name     string               `json:"name"`
	SQL      string               `json:"sql"`
	Limit    bool                 `json:"limit,omitempty"` // generate LimitQuery
	BindVars map[string]valueJSON `json:"bind_vars"`
	Out      string               `json:"out,omitempty"`
	Error    string               `json:"error,omitempty"` // "missing <name>" or "type <name>"
}

// TestGenerateGolden builds each SQL text of testdata/generate.json and generates its final
// SQL with the bind variables.
func TestGenerateGolden(t *testing.T) {
	var cases []generateCase
	readGolden(t, "generate.json", &cases)
	b := NewBuilder()
	for _, c := range cases {
		p, err := b.Build(c.SQL)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		q := p.Query
		if c.Limit {
			q = p.LimitQuery
		}
		bvs := map[string]*querypb.BindVariable{}
		for name, v := range c.BindVars {
			bvs[name] = v.bindVar(t)
		}
		out, err := q.GenerateString(bvs)
		if got := generateError(err); got != c.Error {
			t.Errorf("%s: error %q (%v), want %q", c.Name, got, err, c.Error)
			continue
		}
		if err == nil && out != c.Out {
			t.Errorf("%s:\n got %q\nwant %q", c.Name, out, c.Out)
		}
	}
}

func generateError(err error) string {
	var missing *MissingBindVarError
	var typ *BindVarTypeError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &missing):
		return "missing " + missing.Name
	case errors.As(err, &typ):
		return "type " + typ.Name
	}
	return err.Error()
}

func TestGenerateErrorsAndBuffers(t *testing.T) {
	p, err := Build("select * from t where id = :id and name in ::names")
	if err != nil {
		t.Fatal(err)
	}
	// A nil value in the map counts as missing.
	_, err = p.Query.Generate(nil, map[string]*querypb.BindVariable{"id": nil})
	var missing *MissingBindVarError
	if !errors.As(err, &missing) || missing.Name != "id" || missing.Error() != "missing bind var id" {
		t.Errorf("nil bind var: got %v", err)
	}
	// The error messages are Vitess's.
	id := &querypb.BindVariable{Type: querypb.Type_INT64, Value: []byte("1")}
	for _, tc := range []struct {
		names *querypb.BindVariable
		want  string
	}{
		{&querypb.BindVariable{Type: querypb.Type_INT64, Value: []byte("1")}, "unexpected list arg type (INT64) for key names"},
		{&querypb.BindVariable{Type: querypb.Type_TUPLE}, "empty list supplied for names"},
	} {
		_, err := p.Query.Generate(nil, map[string]*querypb.BindVariable{"id": id, "names": tc.names})
		var typ *BindVarTypeError
		if !errors.As(err, &typ) || !typ.WantList || err.Error() != tc.want {
			t.Errorf("got %v, want %q", err, tc.want)
		}
	}
	_, err = p.Query.Generate(nil, map[string]*querypb.BindVariable{"id": {Type: querypb.Type_TUPLE}})
	if err == nil || err.Error() != "unexpected arg type (TUPLE) for non-list key id" {
		t.Errorf("tuple for scalar: got %v", err)
	}
	// Generate appends to the buffer it is given.
	names := &querypb.BindVariable{Type: querypb.Type_TUPLE, Values: []*querypb.Value{{Type: querypb.Type_VARCHAR, Value: []byte("a")}}}
	out, err := p.Query.Generate([]byte("/* x */ "), map[string]*querypb.BindVariable{"id": id, "names": names})
	if err != nil || string(out) != "/* x */ select * from t where id = 1 and name in ('a')" {
		t.Errorf("got %q, %v", out, err)
	}
	if got := strings.Join(p.Query.BindVarNames(), ","); got != "id,names" {
		t.Errorf("BindVarNames: %s", got)
	}
}

// TestGenerateAllocs checks that generating a point select allocates nothing once the buffer
// is large enough.
func TestGenerateAllocs(t *testing.T) {
	p, err := Build("select a, b, c from t where id = :id and name = :name")
	if err != nil {
		t.Fatal(err)
	}
	bvs := map[string]*querypb.BindVariable{
		"id":   {Type: querypb.Type_INT64, Value: []byte("12345")},
		"name": {Type: querypb.Type_VARCHAR, Value: []byte("it's")},
	}
	buf := make([]byte, 0, 256)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		if buf, err = p.Query.Generate(buf[:0], bvs); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Generate allocates %v times per run, want 0", allocs)
	}
}
