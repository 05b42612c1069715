package schema

import (
	"encoding/json"
	"errors"
	"os"
	"slices"
	"testing"

	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestSplit(t *testing.T) {
	var cases []struct {
		Name     string
		SQL      string
		Stmts    []string
		Unparsed bool
	}
	readJSON(t, "testdata/split.json", &cases)
	var sp splitter
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			s := sp.split(tc.SQL)
			if !slices.Equal(s.stmts, tc.Stmts) {
				t.Errorf("statements %q, want %q", s.stmts, tc.Stmts)
			}
			if s.parsed() == tc.Unparsed {
				t.Errorf("parsed %v (error %v), want %v", s.parsed(), s.parseErr, !tc.Unparsed)
			}
		})
	}
}

func TestWithSidecar(t *testing.T) {
	var cases []struct {
		Name, Sidecar, SQL string
		Stmts              []string
		Error              string
	}
	readJSON(t, "testdata/sidecar.json", &cases)
	var sp splitter
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			s, err := withSidecar(sp.split(tc.SQL), tc.Sidecar)
			if tc.Error != "" {
				if want := vtrpcpb.Code(vtrpcpb.Code_value[tc.Error]); !errors.Is(err, rpcerr.OfCode(want)) {
					t.Fatalf("error %v, want code %v", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(s.stmts, tc.Stmts) {
				t.Errorf("statements %q, want %q", s.stmts, tc.Stmts)
			}
		})
	}
}

func TestAllowsZeroInDate(t *testing.T) {
	for _, tc := range []struct {
		sql  string
		want bool
	}{
		{"create /*vt+ allowZeroInDate=true */ table t (d date)", true},
		{"create /*vt+ allowZeroInDate */ table t (d date)", true},
		{"create /*vt+ ALLOWZEROINDATE=1 */ table t (d date)", true},
		{"create /*vt+ strategy=direct allowZeroInDate=true */ table t (d date)", true},
		{"create /*vt+ allowZeroInDate=false */ table t (d date)", false},
		{"create /* allowZeroInDate=true */ table t (d date)", false},
		{"create table t (d date)", false},
	} {
		if got := allowsZeroInDate([]string{"select 1", tc.sql}); got != tc.want {
			t.Errorf("%q: %v, want %v", tc.sql, got, tc.want)
		}
	}
}
