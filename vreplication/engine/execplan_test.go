package engine

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/pingcap/tidb/pkg/parser"

	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

// TestPlanExec checks VReplicationExec's statement set against the statements vtctld sends
// and the ones vttablet refuses (testdata/exec_statements.json).
func TestPlanExec(t *testing.T) {
	b, err := os.ReadFile("testdata/exec_statements.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Name, SQL, Kind, Where, Code, Sidecar, Query string
		Inserts                                      int
	}
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]execKind{"insert": execInsert, "update": execUpdate, "delete": execDelete, "select": execSelect, "journal": execJournal}
	p := parser.New()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			sc := tc.Sidecar
			if sc == "" {
				sc = "_vt"
			}
			plan, err := planExec(p, tc.SQL, sc)
			if tc.Code != "" {
				if err == nil {
					t.Fatalf("accepted %q as %v", tc.SQL, plan.kind)
				}
				if got := rpcerr.Code(err).String(); got != tc.Code {
					t.Fatalf("code %s (%v), want %s", got, err, tc.Code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if plan.kind != kinds[tc.Kind] || plan.where != tc.Where || plan.numInserts != tc.Inserts {
				t.Fatalf("plan %v where %q inserts %d, want %s where %q inserts %d", plan.kind, plan.where, plan.numInserts, tc.Kind, tc.Where, tc.Inserts)
			}
			want := tc.Query
			if want == "" {
				want = tc.SQL
			}
			if plan.query != want {
				t.Fatalf("query %q, want %q", plan.query, want)
			}
		})
	}
}

func TestReplaceQualifier(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"select * from _vt.vreplication", "select * from `_x`.vreplication"},
		{"select * from `_vt`.vreplication v join _vt.copy_state c", "select * from `_x`.vreplication v join `_x`.copy_state c"},
		{"select '_vt.vreplication' from _vt.copy_state", "select '_vt.vreplication' from `_x`.copy_state"},
		{"select _vt_other.a from _vt_other.t", "select _vt_other.a from _vt_other.t"},
		{"select 1 /* _vt.x */ from _vt . t", "select 1 /* _vt.x */ from _vt . t"},
	} {
		if got := replaceQualifier(tc.in, "_vt", "_x"); got != tc.want {
			t.Errorf("replaceQualifier(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestBadExecIsInvalidArgument(t *testing.T) {
	_, err := planExec(parser.New(), "update _vt.vreplication set state='Running'", "_vt")
	if rpcerr.Code(err) != vtrpcpb.Code_INVALID_ARGUMENT {
		t.Fatalf("got %v", err)
	}
}
