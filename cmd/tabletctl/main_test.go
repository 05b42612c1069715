package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tabletd/tabletd/proto/binlogdatapb"
	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/tabletmanagerdatapb"
	"github.com/tabletd/tabletd/proto/vttimepb"
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
	for _, args := range [][]string{{}, {"nosuch"}, {"query"}, {"query", "--server", "x:1"}, {"health"}, {"vreplication"}, {"vreplication", "--server", "x:1", "--format", "xml"}} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
		if !strings.Contains(errb.String(), "usage") && !strings.Contains(errb.String(), "required") {
			t.Errorf("%v: no usage hint in %q", args, errb.String())
		}
	}
}

func TestPrintStreams(t *testing.T) {
	now := time.Unix(1_700_000_100, 0)
	resp := &tabletmanagerdatapb.ReadVReplicationWorkflowsResponse{Workflows: []*tabletmanagerdatapb.ReadVReplicationWorkflowResponse{{
		Workflow: "commerce2customer",
		Streams: []*tabletmanagerdatapb.ReadVReplicationWorkflowResponse_Stream{{
			Id: 1, Bls: &binlogdatapb.BinlogSource{Keyspace: "commerce", Shard: "0"}, State: binlogdatapb.VReplicationWorkflowState_Running,
			Pos: "MariaDB/0-1-5", RowsCopied: 42, TransactionTimestamp: &vttimepb.Time{Seconds: 1_700_000_098},
			TimeHeartbeat: &vttimepb.Time{Seconds: 1_700_000_099}, Message: "line\nbreak"}},
	}}}
	var b bytes.Buffer
	printStreams(&b, resp, now)
	want := "WORKFLOW           ID  SOURCE      STATE    LAG  ROWS COPIED  POSITION       MESSAGE\n" +
		"commerce2customer  1   commerce/0  Running  1s   42           MariaDB/0-1-5  line break\n"
	if b.String() != want {
		t.Fatalf("got\n%q\nwant\n%q", b.String(), want)
	}
	b.Reset()
	printStreams(&b, &tabletmanagerdatapb.ReadVReplicationWorkflowsResponse{}, now)
	if !strings.Contains(b.String(), "no streams") {
		t.Fatalf("empty: %q", b.String())
	}
}
