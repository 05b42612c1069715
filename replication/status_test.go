package replication

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// statusSummary is a comparable view of Status for table tests.
type statusSummary struct {
	Configured, IORunning, SQLRunning, LagKnown bool
	IOState                                     string
	Lag                                         time.Duration
	Host                                        string
	Port                                        int
	User                                        string
	SourceServerID                              uint32
	SourceUUID                                  string
	UsingGTID                                   bool
	Position, Relay, File                       string
	IOError, SQLError                           string
}

func summarize(s Status) statusSummary {
	return statusSummary{
		Configured: s.Configured, IORunning: s.IOThreadRunning, SQLRunning: s.SQLThreadRunning,
		LagKnown: s.LagKnown, IOState: s.IOThreadState, Lag: s.Lag, Host: s.SourceHost, Port: s.SourcePort,
		User: s.SourceUser, SourceServerID: s.SourceServerID, SourceUUID: s.SourceUUID, UsingGTID: s.UsingGTID,
		Position: s.Position.String(), Relay: s.RelayLogPosition.String(), File: s.FilePosition.String(),
		IOError: s.LastIOError, SQLError: s.LastSQLError,
	}
}

// withValues returns a copy of the first row of r with some columns
// changed; a nil value is NULL.
func withValues(r fakeResult, values map[string]*string) fakeResult {
	row := append([]*string(nil), r.Rows[0]...)
	for i, c := range r.Columns {
		if v, ok := values[c]; ok {
			row[i] = v
		}
	}
	return fakeResult{Columns: r.Columns, Rows: [][]*string{row}}
}

// withoutColumn returns a copy of r without the named column.
func withoutColumn(r fakeResult, name string) fakeResult {
	var out fakeResult
	keep := make([]int, 0, len(r.Columns))
	for i, c := range r.Columns {
		if c != name {
			keep = append(keep, i)
			out.Columns = append(out.Columns, c)
		}
	}
	for _, row := range r.Rows {
		var nr []*string
		for _, i := range keep {
			nr = append(nr, row[i])
		}
		out.Rows = append(out.Rows, nr)
	}
	return out
}

// statusCase is one ReplicaStatus table test against the fake server.
type statusCase struct {
	name    string
	flavor  Flavor
	results map[string]fakeResult
	want    statusSummary
	wantErr error
}

func ptr(s string) *string { return &s }

func TestReplicaStatusMySQL(t *testing.T) {
	running := loadFakeResult(t, "mysql84_running.json")
	legacy := loadFakeResult(t, "mysql80_legacy_sql_stopped.json")
	parseErr := fakeResult{err: &mysql.MySQLError{Number: mysqlParseError, Message: "You have an error in your SQL syntax"}}
	runningWant := statusSummary{Configured: true, IORunning: true, SQLRunning: true, LagKnown: true,
		IOState: "Yes", Lag: 3 * time.Second, Host: "10.0.0.5", Port: 3306, User: "vt_repl",
		SourceServerID: 101, SourceUUID: uuidA, UsingGTID: true,
		Position: "MySQL56/" + uuidA + ":1-42," + uuidB + ":1-3",
		Relay:    "MySQL56/" + uuidA + ":1-45," + uuidB + ":1-3",
		File:     "FilePos/binlog.000007:8800"}
	tests := []statusCase{
		{"running", FlavorMySQL84, map[string]fakeResult{mysqlStatusQuery: running}, runningWant, nil},
		{"legacy 8.0 with stopped SQL thread", FlavorMySQL80,
			map[string]fakeResult{mysqlStatusQuery: parseErr, mysqlLegacyStatusQuery: legacy},
			statusSummary{Configured: true, IORunning: true, IOState: "Yes", Host: "primary.example",
				Port: 3307, User: "vt_repl", SourceServerID: 7, SourceUUID: uuidB, UsingGTID: true,
				Position: "MySQL56/" + uuidB + ":1-8", Relay: "MySQL56/" + uuidB + ":1-10",
				File: "FilePos/binlog.000002:900", SQLError: "Error 'Duplicate entry' on query"}, nil},
		{"8.4 does not fall back", FlavorMySQL84,
			map[string]fakeResult{mysqlStatusQuery: parseErr, mysqlLegacyStatusQuery: legacy},
			statusSummary{}, &mysql.MySQLError{Number: mysqlParseError}},
		{"IO thread connecting reports lag 0", FlavorMySQL84,
			map[string]fakeResult{mysqlStatusQuery: withValues(running, map[string]*string{
				"Replica_IO_Running": ptr("Connecting"), "Seconds_Behind_Source": ptr("0")})},
			func() statusSummary {
				w := runningWant
				w.IORunning, w.IOState, w.LagKnown, w.Lag = false, "Connecting", false, 0
				return w
			}(), nil},
		{"not a replica", FlavorMySQL80, map[string]fakeResult{mysqlStatusQuery: loadFakeResult(t, "mysql_not_replica.json")},
			statusSummary{}, nil},
		{"reset replica keeps an empty row", FlavorMySQL84,
			map[string]fakeResult{mysqlStatusQuery: withValues(running, map[string]*string{"Source_Host": ptr("")})},
			statusSummary{}, nil},
		{"two channels", FlavorMySQL84, map[string]fakeResult{mysqlStatusQuery: loadFakeResult(t, "mysql_two_channels.json")},
			statusSummary{}, ErrMultipleSources},
		{"bad executed set", FlavorMySQL84,
			map[string]fakeResult{mysqlStatusQuery: withValues(running, map[string]*string{"Executed_Gtid_Set": ptr("nope")})},
			statusSummary{}, ErrInvalidPosition},
		{"query error", FlavorMySQL80, map[string]fakeResult{mysqlStatusQuery: {err: errFake}}, statusSummary{}, errFake},
		{"unknown flavor", FlavorUnknown, nil, statusSummary{}, ErrUnknownFlavor},
	}
	runStatusTests(t, tests)
}

func runStatusTests(t *testing.T, tests []statusCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, db := newFakeServer(t, tc.results)
			st, err := ReplicaStatus(context.Background(), db, tc.flavor)
			if tc.wantErr != nil {
				var me *mysql.MySQLError
				if wantMe, ok := tc.wantErr.(*mysql.MySQLError); ok {
					if !errors.As(err, &me) || me.Number != wantMe.Number {
						t.Fatalf("ReplicaStatus() error = %v, want MySQL error %d", err, wantMe.Number)
					}
					return
				}
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("ReplicaStatus() error = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ReplicaStatus(): %v", err)
			}
			if got := summarize(st); got != tc.want {
				t.Errorf("ReplicaStatus() =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

// withConnectionName returns a copy of the first row of r with
// Connection_name set to name.
func withConnectionName(r fakeResult, name string) fakeResult {
	return withValues(r, map[string]*string{"Connection_name": ptr(name)})
}

// concatRows returns a result holding the rows of all results (which share
// their columns).
func concatRows(results ...fakeResult) fakeResult {
	out := fakeResult{Columns: results[0].Columns}
	for _, r := range results {
		out.Rows = append(out.Rows, r.Rows...)
	}
	return out
}

// The mariadb_*.json files are SHOW ALL SLAVES STATUS (and SHOW SLAVE
// STATUS) output captured from MariaDB 10.11.19.
func TestReplicaStatusMariaDB(t *testing.T) {
	running := loadFakeResult(t, "mariadb_running.json")
	const source = "0-818521327-"
	runningWant := statusSummary{Configured: true, IORunning: true, SQLRunning: true, LagKnown: true,
		IOState: "Yes", Host: "127.0.0.1", Port: 42223, User: "vt_repl", SourceServerID: 818521327,
		UsingGTID: true, Position: "MariaDB/" + source + "3", Relay: "MariaDB/" + source + "3",
		File: "FilePos/mysql-bin.000001:803"}
	stoppedWant := runningWant
	stoppedWant.IORunning, stoppedWant.IOState, stoppedWant.SQLRunning, stoppedWant.LagKnown = false, "No", false, false
	stoppedWant.Relay = "MariaDB/" + source + "4"
	sqlStoppedWant := stoppedWant
	sqlStoppedWant.IORunning, sqlStoppedWant.IOState = true, "Yes"
	laggingWant := runningWant
	laggingWant.Lag = 75 * time.Second
	namedWant := runningWant
	namedWant.Host = "other"

	tests := []statusCase{
		{"running", FlavorMariaDB, map[string]fakeResult{mariaDBStatusQuery: running}, runningWant, nil},
		{"lagging", FlavorMariaDB, map[string]fakeResult{mariaDBStatusQuery: withValues(running,
			map[string]*string{"Seconds_Behind_Master": ptr("75")})}, laggingWant, nil},
		{"SQL thread stopped", FlavorMariaDB,
			map[string]fakeResult{mariaDBStatusQuery: loadFakeResult(t, "mariadb_sql_stopped.json")}, sqlStoppedWant, nil},
		{"both threads stopped", FlavorMariaDB,
			map[string]fakeResult{mariaDBStatusQuery: loadFakeResult(t, "mariadb_stopped.json")}, stoppedWant, nil},
		{"IO thread connecting with lag 0", FlavorMariaDB, map[string]fakeResult{mariaDBStatusQuery: withValues(running,
			map[string]*string{"Slave_IO_Running": ptr("Connecting")})},
			func() statusSummary {
				w := runningWant
				w.IORunning, w.IOState, w.LagKnown = false, "Connecting", false
				return w
			}(), nil},
		{"no Gtid_Slave_Pos column", FlavorMariaDB, map[string]fakeResult{
			mariaDBStatusQuery:   loadFakeResult(t, "mariadb_show_slave.json"),
			mariaDBSlavePosQuery: single("gtid_slave_pos", source+"3"),
		}, runningWant, nil},
		{"not a replica", FlavorMariaDB,
			map[string]fakeResult{mariaDBStatusQuery: loadFakeResult(t, "mariadb_reset_all.json")}, statusSummary{}, nil},
		{"default connection among named ones", FlavorMariaDB, map[string]fakeResult{mariaDBStatusQuery: concatRows(
			withConnectionName(running, "a"), running, withConnectionName(running, "b"))}, runningWant, nil},
		{"single named connection", FlavorMariaDB, map[string]fakeResult{mariaDBStatusQuery: withValues(running,
			map[string]*string{"Connection_name": ptr("a"), "Master_Host": ptr("other")})}, namedWant, nil},
		{"several named connections", FlavorMariaDB, map[string]fakeResult{mariaDBStatusQuery: concatRows(
			withConnectionName(running, "a"), withConnectionName(running, "b"))}, statusSummary{}, ErrMultipleSources},
		{"relay position merges domains", FlavorMariaDB, map[string]fakeResult{mariaDBStatusQuery: withValues(running,
			map[string]*string{"Gtid_Slave_Pos": ptr("0-1-5,2-1-9"), "Gtid_IO_Pos": ptr("0-1-7,1-2-3")})},
			func() statusSummary {
				w := runningWant
				w.Position, w.Relay = "MariaDB/0-1-5,2-1-9", "MariaDB/0-1-7,1-2-3,2-1-9"
				return w
			}(), nil},
		{"bad Gtid_Slave_Pos", FlavorMariaDB, map[string]fakeResult{mariaDBStatusQuery: withValues(running,
			map[string]*string{"Gtid_Slave_Pos": ptr("0-1")})}, statusSummary{}, ErrInvalidPosition},
		{"bad Gtid_IO_Pos", FlavorMariaDB, map[string]fakeResult{mariaDBStatusQuery: withValues(running,
			map[string]*string{"Gtid_IO_Pos": ptr("x")})}, statusSummary{}, ErrInvalidPosition},
		{"query error", FlavorMariaDB, map[string]fakeResult{mariaDBStatusQuery: {err: errFake}}, statusSummary{}, errFake},
	}
	runStatusTests(t, tests)
}
