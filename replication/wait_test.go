package replication

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

// waitAnswer answers every wait query (whatever its timeout) with value
// (nil: NULL).
func waitAnswer(value *string) func(string) (fakeResult, bool) {
	return func(q string) (fakeResult, bool) {
		if !strings.Contains(q, "WAIT") {
			return fakeResult{}, false
		}
		return fakeResult{Columns: []string{"result"}, Rows: [][]*string{{value}}}, true
	}
}

// ownPosition answers PrimaryPosition for each flavor.
func ownPosition(f Flavor, set string) map[string]fakeResult {
	if f.IsMariaDB() {
		return map[string]fakeResult{mariaDBPositionQuery: single("gtid_binlog_pos", set)}
	}
	return map[string]fakeResult{mysqlPositionQuery: single("gtid_mode", "ON", "gtid_executed", set)}
}

func TestWaitForPositionStatements(t *testing.T) {
	wait := func(pos Position) func(ctx context.Context, q Querier, f Flavor) error {
		return func(ctx context.Context, q Querier, f Flavor) error {
			ctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			return WaitForPosition(ctx, q, f, pos)
		}
	}
	filePos := mustParse(t, "FilePos/mysql-bin.000003:1234")
	var cases []stmtCase
	for _, f := range flavors {
		cases = append(cases,
			stmtCase{name: "gtid/" + f.String(), flavor: f, call: wait(posFor(t, f))},
			stmtCase{name: "file/" + f.String(), flavor: f, call: wait(filePos)})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			results := ownPosition(tc.flavor, "")
			srv, db := newFakeServer(t, results)
			srv.answer = waitAnswer(ptr("0"))
			if err := tc.call(context.Background(), db, tc.flavor); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, line := range srv.conversation() {
				got = append(got, timeoutArg.ReplaceAllString(line, ", <timeout>) AS result"))
			}
			checkGolden(t, "testdata/statements/"+goldenName.ReplaceAllString(t.Name(), "_")+".txt", got)
		})
	}
}

func TestWaitForPositionResults(t *testing.T) {
	mariaDB := mariaPos(t)
	tests := []struct {
		name    string
		flavor  Flavor
		pos     Position
		own     string  // the server's own position
		result  *string // the wait function's answer; nil: NULL
		timeout time.Duration
		wantErr error
	}{
		{"reached", FlavorMariaDB, mariaDB, "", ptr("0"), time.Minute, nil},
		{"own writes contain it", FlavorMariaDB, mariaDB, "0-101-50,1-102-7", nil, time.Minute, nil},
		{"mysql reached", FlavorMySQL84, mysqlPos(t), "", ptr("0"), time.Minute, nil},
		{"mariadb timeout", FlavorMariaDB, mariaDB, "", ptr("-1"), 50 * time.Millisecond, context.DeadlineExceeded},
		{"mysql timeout", FlavorMySQL80, mysqlPos(t), "", ptr("1"), 50 * time.Millisecond, context.DeadlineExceeded},
		{"mariadb odd answer", FlavorMariaDB, mariaDB, "", ptr("7"), time.Minute, ErrUnexpectedResult},
		{"file pos NULL", FlavorMySQL84, mustParse(t, "FilePos/binlog.000001:4"), "", nil, time.Minute, ErrNotReplicating},
		{"file pos reached", FlavorMariaDB, mustParse(t, "FilePos/binlog.000001:4"), "", ptr("12"), time.Minute, nil},
		{"file pos timeout", FlavorMariaDB, mustParse(t, "FilePos/binlog.000001:4"), "", ptr("-1"), 50 * time.Millisecond, context.DeadlineExceeded},
		{"other flavor", FlavorMySQL84, mariaDB, "", ptr("0"), time.Minute, ErrPositionFlavor},
		{"bad binlog name", FlavorMariaDB, mustParse(t, `FilePos/bin\log.000001:4`), "", ptr("0"), time.Minute, ErrInvalidPosition},
		{"zero position", FlavorMariaDB, Position{}, "", nil, time.Minute, nil},
		{"unknown flavor", FlavorUnknown, mariaDB, "", ptr("0"), time.Minute, ErrUnknownFlavor},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, db := newFakeServer(t, ownPosition(tc.flavor, tc.own))
			srv.answer = waitAnswer(tc.result)
			ctx, cancel := context.WithTimeout(context.Background(), tc.timeout)
			defer cancel()
			err := WaitForPosition(ctx, db, tc.flavor, tc.pos)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("WaitForPosition = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr == context.DeadlineExceeded && rpcerr.Code(err) != vtrpcpb.Code_DEADLINE_EXCEEDED {
				t.Fatalf("timeout error %v has code %v", err, rpcerr.Code(err))
			}
		})
	}
	t.Run("cancelled before asking", func(t *testing.T) {
		_, db := newFakeServer(t, nil)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := WaitForPosition(ctx, db, FlavorMariaDB, mariaDB); !errors.Is(err, context.Canceled) {
			t.Fatalf("WaitForPosition with a cancelled context = %v", err)
		}
	})
}

func TestWaitSeconds(t *testing.T) {
	tests := []struct {
		d             time.Duration
		whole, fracts string
	}{
		{2 * time.Second, "2", "2.000000"},
		{1500 * time.Millisecond, "2", "1.500000"},
		{time.Millisecond, "1", "0.001000"}, // 0 would mean "wait forever" to MySQL
	}
	for _, tc := range tests {
		if got := wholeSeconds(tc.d); got != tc.whole {
			t.Errorf("wholeSeconds(%v) = %s, want %s", tc.d, got, tc.whole)
		}
		if got := fractionalSeconds(tc.d); got != tc.fracts {
			t.Errorf("fractionalSeconds(%v) = %s, want %s", tc.d, got, tc.fracts)
		}
	}
}
