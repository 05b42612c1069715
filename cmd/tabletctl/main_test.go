package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tabletd/tabletd/proto/querypb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestPrintResult(t *testing.T) {
	for _, tc := range []struct {
		name string
		res  *querypb.QueryResult
		want string
	}{
		{"rows", &querypb.QueryResult{
			Fields: []*querypb.Field{{Name: "id"}, {Name: "msg"}},
			Rows:   []*querypb.Row{{Lengths: []int64{1, 5}, Values: []byte("1hello")}, {Lengths: []int64{2, -1}, Values: []byte("22")}},
		}, "+----+-------+\n| id | msg   |\n+----+-------+\n| 1  | hello |\n| 22 | NULL  |\n+----+-------+\n2 rows in set (0.001 sec)\n"},
		{"dml", &querypb.QueryResult{RowsAffected: 1}, "Query OK, 1 row affected (0.001 sec)\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			printResult(&b, tc.res, time.Millisecond)
			if b.String() != tc.want {
				t.Fatalf("got\n%s\nwant\n%s", b.String(), tc.want)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"nosuch"}, {"query"}, {"query", "--server", "x:1"}, {"health"}} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
		if !strings.Contains(errb.String(), "usage") && !strings.Contains(errb.String(), "required") {
			t.Errorf("%v: no usage hint in %q", args, errb.String())
		}
	}
}
