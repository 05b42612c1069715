package plan

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tabletd/tabletd/proto/querypb"
)

var kindNames = map[tokKind]string{
	tokWord: "word", tokIdent: "ident", tokString: "string", tokBind: "bind", tokPunct: "punct",
	tokComment: "comment", tokExecOpen: "exec", tokExecClose: "execend",
}

// renderTokens writes each token as kind[:depth][!]:text (! inside an executable comment).
func renderTokens(sc *scanned) []string {
	var out []string
	for _, t := range sc.toks {
		s := kindNames[t.kind]
		if t.kind == tokBind && t.list {
			s = "list"
		}
		if t.depth > 0 {
			s += ":" + string(rune('0'+t.depth))
		}
		if t.inExec {
			s += "!"
		}
		out = append(out, s+" "+sc.str(t))
	}
	if sc.err != nil {
		out = append(out, "error: "+sc.err.Error())
	}
	return out
}

type scanCase struct {
	SQL    string   `json:"sql"`
	Tokens []string `json:"tokens"`
}

// TestScanGolden compares the scanner's tokens for testdata/scan.json.
func TestScanGolden(t *testing.T) {
	var cases []scanCase
	readGolden(t, "scan.json", &cases)
	for i := range cases {
		c := &cases[i]
		got := renderTokens(scan(c.SQL))
		if *update {
			c.Tokens = got
			continue
		}
		if strings.Join(got, "\n") != strings.Join(c.Tokens, "\n") {
			t.Errorf("%q:\n got %q\nwant %q", c.SQL, got, c.Tokens)
		}
	}
	if *update {
		writeGolden(t, "scan.json", cases)
	}
}

func TestSplitMargins(t *testing.T) {
	for _, tc := range []struct{ sql, leading, body, trailing string }{
		{"select 1", "", "select 1", ""},
		{"  /* a */  select 1  ", "/* a */  ", "select 1", ""},
		{"select 1 /* b */ ", "", "select 1", "/* b */"},
		{"/* a */ /* b */ select 1 /* c */ /* d */;", "/* a */ /* b */ ", "select 1 /* c */ /* d */", ""},
		{"/* a */ select 1; /* c */", "/* a */ ", "select 1", "/* c */"},
		{"/*! select 1 */", "", "/*! select 1 */", ""},
		{"/* only */", "", "", "/* only */"},
		{"-- x\nselect 1", "", "-- x\nselect 1", ""},
		{"select '/* a */'", "", "select '/* a */'", ""},
	} {
		m := splitMargins(scan(tc.sql))
		if m.leading != tc.leading || m.body != tc.body || m.trailing != tc.trailing {
			t.Errorf("%q: got %q %q %q, want %q %q %q", tc.sql, m.leading, m.body, m.trailing, tc.leading, tc.body, tc.trailing)
		}
	}
}

// FuzzScan checks that the scanner never panics and that its tokens are in order, do not
// overlap and stay inside the text.
func FuzzScan(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, sql string) {
		sc := scan(sql)
		end := 0
		for _, tok := range sc.toks {
			if tok.start < end || tok.end <= tok.start || tok.end > len(sql) {
				t.Fatalf("bad token %+v after %d in %q", tok, end, sql)
			}
			end = tok.end
		}
		splitMargins(sc)
	})
}

// FuzzBuild checks that Build never panics, and that a plan's queries generate once every
// bind variable they name is supplied.
func FuzzBuild(f *testing.F) {
	addSeeds(f)
	b := NewBuilder()
	f.Fuzz(func(t *testing.T, sql string) {
		p, err := b.Build(sql)
		if err != nil {
			return
		}
		for _, q := range []*ParsedQuery{p.Query, p.LimitQuery, p.Where} {
			if q == nil {
				continue
			}
			bvs := map[string]*querypb.BindVariable{}
			for _, l := range q.binds {
				bvs[l.name] = &querypb.BindVariable{Type: querypb.Type_INT64, Value: []byte("1")}
				if l.list {
					bvs[l.name] = &querypb.BindVariable{Type: querypb.Type_TUPLE, Values: []*querypb.Value{{Type: querypb.Type_INT64, Value: []byte("1")}}}
				}
			}
			if _, err := q.GenerateString(bvs); err != nil && !strings.HasPrefix(err.Error(), "unexpected") {
				t.Fatalf("%q: %v", q.String(), err)
			}
		}
	})
}

// addSeeds seeds a fuzz target with every SQL text of the golden files.
func addSeeds(f *testing.F) {
	for _, name := range []string{"plans.json", "scan.json", "generate.json"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		var cases []struct {
			SQL string `json:"sql"`
		}
		if err := json.Unmarshal(data, &cases); err != nil {
			f.Fatal(err)
		}
		for _, c := range cases {
			f.Add(c.SQL)
		}
	}
}
