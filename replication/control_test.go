package replication

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/statements golden files")

// Queries the fake answers in control tests, by name of the captured file
// (testdata/control, or testdata/status for status rows).
const (
	mariaDBStatus = "SHOW ALL SLAVES STATUS"
	mysqlStatus   = "SHOW REPLICA STATUS"
)

// stmtCase runs one function against the fake server and compares the
// whole conversation (queries and statements, in order) with a golden
// file testdata/statements/<golden>.txt.
type stmtCase struct {
	name   string
	flavor Flavor
	// answers maps a query to a captured result file: "control/x.json" or
	// "status/x.json".
	answers map[string]string
	// fails makes a statement fail with a MySQL errno.
	fails map[string]uint16
	// onExec: after the statement runs, the query answers with the file.
	onExec  map[string]map[string]string
	call    func(ctx context.Context, q Querier, f Flavor) error
	wantErr error
}

// goldenName turns a test name into a file name.
var goldenName = regexp.MustCompile(`[^A-Za-z0-9.-]+`)

// timeoutArg normalizes the variable timeout of wait statements.
var timeoutArg = regexp.MustCompile(`, [0-9.]+\) AS result`)

func runStmtCases(t *testing.T, cases []stmtCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			results := map[string]fakeResult{}
			for q, file := range tc.answers {
				results[q] = loadResult(t, filepath.Join("testdata", file))
			}
			for q, num := range tc.fails {
				results[q] = fakeResult{err: &mysql.MySQLError{Number: num, Message: "injected"}}
			}
			srv, db := newFakeServer(t, results)
			srv.onExec = map[string]map[string]fakeResult{}
			for stmt, answers := range tc.onExec {
				srv.onExec[stmt] = map[string]fakeResult{}
				for q, file := range answers {
					srv.onExec[stmt][q] = loadResult(t, filepath.Join("testdata", file))
				}
			}
			err := tc.call(context.Background(), db, tc.flavor)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error = %v, want %v", err, tc.wantErr)
			}
			var got []string
			for _, line := range srv.conversation() {
				got = append(got, timeoutArg.ReplaceAllString(line, ", <timeout>) AS result"))
			}
			checkGolden(t, filepath.Join("testdata", "statements", goldenName.ReplaceAllString(t.Name(), "_")+".txt"), got)
		})
	}
}

// checkGolden compares lines with a golden file (-update rewrites it).
func checkGolden(t *testing.T, path string, lines []string) {
	t.Helper()
	text := strings.Join(lines, "\n") + "\n"
	if *updateGolden {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(want) != text {
		t.Errorf("conversation differs from %s:\n got:\n%s\nwant:\n%s", path, text, want)
	}
}

// flavors are the three supported servers, for per-flavor cases.
var flavors = []Flavor{FlavorMariaDB, FlavorMySQL80, FlavorMySQL84}

// perFlavor builds one case per flavor.
func perFlavor(name string, call func(ctx context.Context, q Querier, f Flavor) error,
	answers func(Flavor) map[string]string) []stmtCase {
	var out []stmtCase
	for _, f := range flavors {
		c := stmtCase{name: name + "/" + f.String(), flavor: f, call: call}
		if answers != nil {
			c.answers = answers(f)
		}
		out = append(out, c)
	}
	return out
}

// semiSyncAnswers returns captured semi-sync variables for each flavor:
// MariaDB's built-in set, MySQL 8.0 with the source/replica plugins, 8.4
// with none.
func semiSyncAnswers(f Flavor) map[string]string {
	switch f {
	case FlavorMariaDB:
		return map[string]string{semiSyncVarsQuery: "control/mariadb_semisync_vars_replica.json",
			semiSyncStatusQuery: "control/mariadb_semisync_status_replica.json",
			mariaDBStatus:       "control/mariadb_status_filtered_delayed.json"}
	case FlavorMySQL80:
		return map[string]string{semiSyncVarsQuery: "control/mysql80_semisync_vars_source.json",
			semiSyncStatusQuery: "control/mysql80_semisync_status_source.json",
			mysqlStatus:         "status/mysql84_running.json"}
	default:
		return map[string]string{semiSyncVarsQuery: "control/mysql_semisync_vars_none.json"}
	}
}

func mariaPos(t *testing.T) Position { return mustParse(t, "MariaDB/0-101-42,1-102-7") }
func mysqlPos(t *testing.T) Position { return mustParse(t, "MySQL56/"+uuidA+":1-42,"+uuidB+":1-3") }

// posFor returns a GTID position of f's encoding.
func posFor(t *testing.T, f Flavor) Position {
	if f.IsMariaDB() {
		return mariaPos(t)
	}
	return mysqlPos(t)
}

func TestControlStatements(t *testing.T) {
	var cases []stmtCase
	cases = append(cases, perFlavor("StopReplication", StopReplication, nil)...)
	cases = append(cases, perFlavor("StopIOThread", StopIOThread, nil)...)
	cases = append(cases, perFlavor("StartReplication", StartReplication, nil)...)
	cases = append(cases, perFlavor("StartReplicationUntilAfter", func(ctx context.Context, q Querier, f Flavor) error {
		return StartReplicationUntilAfter(ctx, q, f, posFor(t, f))
	}, nil)...)
	cases = append(cases, perFlavor("ResetReplication", ResetReplication, semiSyncAnswers)...)
	cases = append(cases, perFlavor("ResetReplicationParameters", ResetReplicationParameters, nil)...)
	cases = append(cases, perFlavor("SetReplicationPosition", func(ctx context.Context, q Querier, f Flavor) error {
		return SetReplicationPosition(ctx, q, f, posFor(t, f))
	}, nil)...)
	cases = append(cases, perFlavor("SetReplicationPosition_empty", func(ctx context.Context, q Querier, f Flavor) error {
		return SetReplicationPosition(ctx, q, f, Position{})
	}, nil)...)
	cases = append(cases,
		stmtCase{name: "legacy MySQL 8.0 spelling", flavor: FlavorMySQL80,
			fails: map[string]uint16{"STOP REPLICA": mysqlParseError, "START REPLICA": mysqlParseError},
			call: func(ctx context.Context, q Querier, f Flavor) error {
				if err := StopReplication(ctx, q, f); err != nil {
					return err
				}
				return StartReplication(ctx, q, f)
			}},
		stmtCase{name: "8.4 has no legacy spelling", flavor: FlavorMySQL84,
			fails: map[string]uint16{"STOP REPLICA": mysqlParseError}, call: StopReplication,
			wantErr: &mysql.MySQLError{Number: mysqlParseError}},
		stmtCase{name: "stops at the first error", flavor: FlavorMariaDB,
			fails: map[string]uint16{"RESET MASTER": 1227}, call: ResetReplication,
			wantErr: &mysql.MySQLError{Number: 1227}},
		stmtCase{name: "position of the other flavor", flavor: FlavorMariaDB, wantErr: ErrPositionFlavor,
			call: func(ctx context.Context, q Querier, f Flavor) error {
				return SetReplicationPosition(ctx, q, f, mysqlPos(t))
			}},
		stmtCase{name: "until an empty position", flavor: FlavorMySQL84, wantErr: ErrInvalidPosition,
			call: func(ctx context.Context, q Querier, f Flavor) error {
				return StartReplicationUntilAfter(ctx, q, f, mustParse(t, "MySQL56/"))
			}},
		stmtCase{name: "unknown flavor", flavor: FlavorUnknown, call: StopReplication, wantErr: ErrUnknownFlavor},
	)
	runStmtCases(t, cases)
}

func TestSetSourceStatements(t *testing.T) {
	src := SourceParams{Host: "10.0.0.5", Port: 3306, User: "vt_repl", Password: "it's-secret",
		ConnectRetry: 1500 * time.Millisecond, HeartbeatInterval: 2500 * time.Millisecond}
	call := func(start bool) func(ctx context.Context, q Querier, f Flavor) error {
		return func(ctx context.Context, q Querier, f Flavor) error { return SetSource(ctx, q, f, src, start) }
	}
	minimal := func(ctx context.Context, q Querier, f Flavor) error {
		return SetSource(ctx, q, f, SourceParams{Host: "db1", Port: 3307, User: "repl"}, false)
	}
	demoted := map[string]string{resumePositionsQuery: "control/mariadb_resume_positions.json"}
	replica := map[string]string{resumePositionsQuery: "control/mariadb_gtid_positions_replica.json"}
	cases := []stmtCase{
		{name: "demoted primary/mariadb", flavor: FlavorMariaDB, answers: demoted, call: call(true)},
		{name: "replica/mariadb", flavor: FlavorMariaDB, answers: replica, call: call(false)},
		{name: "minimal/mariadb", flavor: FlavorMariaDB, answers: replica, call: minimal},
		{name: "start/mysql80", flavor: FlavorMySQL80, call: call(true)},
		{name: "start/mysql84", flavor: FlavorMySQL84, call: call(true)},
		{name: "minimal/mysql84", flavor: FlavorMySQL84, call: minimal},
		{name: "before 8.0.23/mysql80", flavor: FlavorMySQL80, call: call(false), fails: map[string]uint16{
			changeSourceStatement(FlavorMySQL80, src).sql: mysqlParseError}},
		{name: "invalid/mariadb", flavor: FlavorMariaDB, wantErr: ErrInvalidSource,
			call: func(ctx context.Context, q Querier, f Flavor) error {
				return SetSource(ctx, q, f, SourceParams{Host: "db1", Port: 0, User: "repl"}, true)
			}},
	}
	runStmtCases(t, cases)
}

func TestSetSourceRedactsPassword(t *testing.T) {
	const password = "hunter2-is-a-long-password-of-more-than-sixty-four-characters-for-the-server"
	src := SourceParams{Host: "db1", Port: 3306, User: "repl", Password: password}
	stmt := changeSourceStatement(FlavorMySQL84, src).sql
	// The server quotes only a prefix of the value, as MariaDB does in 1470.
	msg := "String '" + password[:64] + "...' is too long for SOURCE_PASSWORD (should be no longer than 32)"
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"mysql error", &mysql.MySQLError{Number: errWrongStringLength, Message: msg}},
		{"other error", errors.New("connection lost while running " + stmt)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, db := newFakeServer(t, map[string]fakeResult{stmt: {err: tc.err}})
			err := SetSource(context.Background(), db, FlavorMySQL84, src, false)
			if err == nil || strings.Contains(err.Error(), password[:minRedactedRun]) {
				t.Fatalf("SetSource error %q holds the password", err)
			}
			if !errors.Is(err, tc.err) && !errors.As(err, new(*mysql.MySQLError)) {
				t.Fatalf("SetSource error %v lost its cause", err)
			}
			var me *mysql.MySQLError
			if errors.As(err, &me) && (me.Number != errWrongStringLength || strings.Contains(me.Message, password[:8])) {
				t.Fatalf("driver error kept in the chain = %+v, want errno %d without the password", me, errWrongStringLength)
			}
		})
	}
}

func TestSourceParamsValidate(t *testing.T) {
	ok := SourceParams{Host: "db1", Port: 3306, User: "repl", Password: "p"}
	tests := []struct {
		name   string
		change func(*SourceParams)
		valid  bool
	}{
		{"valid", func(*SourceParams) {}, true},
		{"empty password", func(p *SourceParams) { p.Password = "" }, true},
		{"quote in password", func(p *SourceParams) { p.Password = "it's" }, true},
		{"empty host", func(p *SourceParams) { p.Host = " " }, false},
		{"port 0", func(p *SourceParams) { p.Port = 0 }, false},
		{"port 65536", func(p *SourceParams) { p.Port = 65536 }, false},
		{"empty user", func(p *SourceParams) { p.User = "" }, false},
		{"backslash in password", func(p *SourceParams) { p.Password = `a\b` }, false},
		{"newline in host", func(p *SourceParams) { p.Host = "db1\n" }, false},
		{"negative retry", func(p *SourceParams) { p.ConnectRetry = -time.Second }, false},
		{"retry above a year", func(p *SourceParams) { p.ConnectRetry = maxConnectRetry + time.Second }, false},
		{"heartbeat below 1ms", func(p *SourceParams) { p.HeartbeatInterval = time.Microsecond }, false},
		{"heartbeat too long", func(p *SourceParams) { p.HeartbeatInterval = maxHeartbeatInterval + time.Second }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := ok
			tc.change(&p)
			err := p.Validate()
			if tc.valid != (err == nil) || (err != nil && !errors.Is(err, ErrInvalidSource)) {
				t.Fatalf("Validate(%+v) = %v, want valid=%v", p, err, tc.valid)
			}
		})
	}
}

func TestSemiSyncStatements(t *testing.T) {
	set := func(primary, replica bool) func(ctx context.Context, q Querier, f Flavor) error {
		return func(ctx context.Context, q Querier, f Flavor) error { return SetSemiSync(ctx, q, f, primary, replica) }
	}
	install := map[string]map[string]string{
		installSourcePlugin.sql: {semiSyncVarsQuery: "control/mysql84_semisync_vars_both.json"},
	}
	cases := []stmtCase{
		// A running I/O thread whose semi-sync status is not the wanted one is
		// restarted (captured MariaDB replica: Rpl_semi_sync_slave_status ON;
		// MySQL 8.0: Rpl_semi_sync_replica_status OFF).
		{name: "replica on, already acknowledging/mariadb", flavor: FlavorMariaDB, call: set(false, true),
			answers: semiSyncAnswers(FlavorMariaDB)},
		{name: "replica off restarts the acknowledging IO thread/mariadb", flavor: FlavorMariaDB, call: set(true, false),
			answers: semiSyncAnswers(FlavorMariaDB)},
		{name: "replica on restarts the IO thread/mysql80", flavor: FlavorMySQL80, call: set(false, true),
			answers: semiSyncAnswers(FlavorMySQL80)},
		{name: "older plugin naming/mysql80", flavor: FlavorMySQL80, call: set(false, true), answers: map[string]string{
			semiSyncVarsQuery: "control/mysql80_semisync_vars_master.json", semiSyncStatusQuery: "control/mysql80_semisync_status_master.json",
			mysqlStatus: "status/mysql84_running.json"}},
		{name: "disable without plugins is a no-op/mysql84", flavor: FlavorMySQL84, call: set(false, false),
			answers: semiSyncAnswers(FlavorMySQL84)},
		{name: "enable installs the missing plugin/mysql84", flavor: FlavorMySQL84, call: set(true, false),
			answers: map[string]string{semiSyncVarsQuery: "control/mysql84_semisync_vars_replica_only.json",
				semiSyncStatusQuery: "control/mysql84_semisync_status_replica_only.json",
				mysqlStatus:         "status/mysql_not_replica.json"},
			onExec: install},
		{name: "8.0 without source plugin library/mysql80", flavor: FlavorMySQL80, call: set(true, false),
			answers: map[string]string{semiSyncVarsQuery: "control/mysql_semisync_vars_none.json",
				mysqlStatus: "status/mysql_not_replica.json"},
			fails: map[string]uint16{installSourcePlugin.sql: errCantOpenLibrary},
			onExec: map[string]map[string]string{
				installMasterPlugin.sql: {semiSyncVarsQuery: "control/mysql80_semisync_vars_master_only.json"}}},
		{name: "install refused/mysql84", flavor: FlavorMySQL84, call: set(true, true),
			answers: map[string]string{semiSyncVarsQuery: "control/mysql_semisync_vars_none.json"},
			fails:   map[string]uint16{installSourcePlugin.sql: 1227}, wantErr: &mysql.MySQLError{Number: 1227}},
	}
	runStmtCases(t, cases)
}

func TestReadSemiSync(t *testing.T) {
	tests := []struct {
		name       string
		flavor     Flavor
		vars, stat string
		want       SemiSync
	}{
		{"mariadb primary", FlavorMariaDB, "mariadb_semisync_vars_primary.json", "mariadb_semisync_status_primary.json",
			SemiSync{Available: true, PrimaryEnabled: true, PrimaryActive: true, PrimaryClients: 1,
				Timeout: 10 * time.Second, WaitForReplicaCount: 1}},
		{"mariadb replica", FlavorMariaDB, "mariadb_semisync_vars_replica.json", "mariadb_semisync_status_replica.json",
			SemiSync{Available: true, ReplicaEnabled: true, ReplicaActive: true, Timeout: 10 * time.Second, WaitForReplicaCount: 1}},
		{"mysql80 source naming", FlavorMySQL80, "mysql80_semisync_vars_source.json", "mysql80_semisync_status_source.json",
			SemiSync{Available: true, PrimaryEnabled: true, PrimaryActive: true, PrimaryClients: 2, WaitingSessions: 3,
				Timeout: 10 * time.Second, WaitForReplicaCount: 2}},
		{"mysql80 master naming", FlavorMySQL80, "mysql80_semisync_vars_master.json", "mysql80_semisync_status_master.json",
			SemiSync{Available: true, ReplicaEnabled: true, ReplicaActive: true, Timeout: 5 * time.Second, WaitForReplicaCount: 1}},
		{"mysql84 replica plugin only", FlavorMySQL84, "mysql84_semisync_vars_replica_only.json", "mysql84_semisync_status_replica_only.json",
			SemiSync{Available: true, ReplicaEnabled: true, ReplicaActive: true, WaitForReplicaCount: 1}},
		{"mysql84 no plugin", FlavorMySQL84, "mysql_semisync_vars_none.json", "", SemiSync{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			results := map[string]fakeResult{semiSyncVarsQuery: loadCaptured(t, tc.vars)}
			if tc.stat != "" {
				results[semiSyncStatusQuery] = loadCaptured(t, tc.stat)
			}
			_, db := newFakeServer(t, results)
			got, err := ReadSemiSync(context.Background(), db, tc.flavor)
			if err != nil || got != tc.want {
				t.Fatalf("ReadSemiSync = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
	t.Run("bad counter", func(t *testing.T) {
		_, db := newFakeServer(t, map[string]fakeResult{
			semiSyncVarsQuery:   loadCaptured(t, "mariadb_semisync_vars_primary.json"),
			semiSyncStatusQuery: single("Variable_name", "Rpl_semi_sync_master_clients", "Value", "many"),
		})
		if _, err := ReadSemiSync(context.Background(), db, FlavorMariaDB); !errors.Is(err, ErrUnexpectedResult) {
			t.Fatalf("ReadSemiSync with a bad counter: %v, want ErrUnexpectedResult", err)
		}
	})
}

func TestRedactSecret(t *testing.T) {
	tests := []struct{ text, secret, want string }{
		{"pw is pw", "pw", "**** is ****"},
		{"no secret here", "", "no secret here"},
		{"prefix 'abcdefghij...'", "abcdefghijklmnop", "prefix '****...'"},
		{"middle 'ghijklmnop'", "abcdefghijklmnop", "middle '****'"},
		{"short run 'abcdefg'", "abcdefghijklmnop", "short run 'abcdefg'"},
	}
	for _, tc := range tests {
		if got := redactSecret(tc.text, tc.secret); got != tc.want {
			t.Errorf("redactSecret(%q, %q) = %q, want %q", tc.text, tc.secret, got, tc.want)
		}
	}
}
