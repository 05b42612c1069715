package replication

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestReadPrimaryStatus(t *testing.T) {
	mysqlUUID := single("server_uuid", uuidB)
	tests := []struct {
		name    string
		flavor  Flavor
		results map[string]fakeResult
		want    PrimaryStatus
		wantErr error
	}{
		{"mariadb", FlavorMariaDB, map[string]fakeResult{
			"SHOW MASTER STATUS": loadCaptured(t, "mariadb_master_status.json"),
			mariaDBPositionQuery: single("gtid_binlog_pos", "0-1-3")},
			PrimaryStatus{Position: mustParse(t, "MariaDB/0-1-3"), FilePosition: mustParse(t, "FilePos/mysql-bin.000001:812")}, nil},
		{"mysql80", FlavorMySQL80, map[string]fakeResult{
			"SHOW MASTER STATUS": loadCaptured(t, "mysql80_master_status.json"),
			mysqlPositionQuery:   single("gtid_mode", "ON", "gtid_executed", uuidB+":1-5"),
			serverUUIDQuery:      mysqlUUID},
			PrimaryStatus{Position: mustParse(t, "MySQL56/"+uuidB+":1-5"),
				FilePosition: mustParse(t, "FilePos/source-bin.000002:1307"), ServerUUID: uuidB}, nil},
		{"mysql84", FlavorMySQL84, map[string]fakeResult{
			"SHOW BINARY LOG STATUS": loadCaptured(t, "mysql84_binary_log_status.json"),
			mysqlPositionQuery:       single("gtid_mode", "ON", "gtid_executed", uuidB+":1-5,\n"+uuidA+":1-2"),
			serverUUIDQuery:          mysqlUUID},
			PrimaryStatus{Position: mustParse(t, "MySQL56/"+uuidA+":1-2,"+uuidB+":1-5"),
				FilePosition: mustParse(t, "FilePos/binlog.000012:4711"), ServerUUID: uuidB}, nil},
		{"binlog off", FlavorMySQL80, map[string]fakeResult{"SHOW MASTER STATUS": loadCaptured(t, "mysql_binlog_off.json")},
			PrimaryStatus{}, ErrNoPrimaryStatus},
		{"gtid mode off", FlavorMySQL84, map[string]fakeResult{
			"SHOW BINARY LOG STATUS": loadCaptured(t, "mysql84_binary_log_status.json"),
			mysqlPositionQuery:       single("gtid_mode", "OFF", "gtid_executed", "")},
			PrimaryStatus{}, ErrGTIDDisabled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, db := newFakeServer(t, tc.results)
			got, err := ReadPrimaryStatus(context.Background(), db, tc.flavor)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error = %v, want %v", err, tc.wantErr)
			}
			if !got.Position.Equal(tc.want.Position) || !got.FilePosition.Equal(tc.want.FilePosition) || got.ServerUUID != tc.want.ServerUUID {
				t.Fatalf("ReadPrimaryStatus = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestExtendedStatus(t *testing.T) {
	t.Run("mariadb filtered and delayed", func(t *testing.T) {
		_, db := newFakeServer(t, map[string]fakeResult{mariaDBStatusQuery: loadCaptured(t, "mariadb_status_filtered_delayed.json")})
		st, err := ReplicaStatus(context.Background(), db, FlavorMariaDB)
		if err != nil {
			t.Fatal(err)
		}
		want := Status{IOState: ReplicationStateRunning, SQLState: ReplicationStateRunning, SQLThreadState: "Yes",
			IOStateMessage: "Waiting for master to send event", SQLStateMessage: "Slave has read all relay log; waiting for more updates",
			SQLDelay: time.Second, ConnectRetry: 2 * time.Second, HeartbeatInterval: 500 * time.Millisecond,
			UsingGTIDMode: "Slave_Pos", HasReplicationFilters: true}
		if st.IOState != want.IOState || st.SQLState != want.SQLState || st.SQLThreadState != want.SQLThreadState ||
			st.IOStateMessage != want.IOStateMessage || st.SQLStateMessage != want.SQLStateMessage ||
			st.SQLDelay != want.SQLDelay || st.ConnectRetry != want.ConnectRetry || st.HeartbeatInterval != want.HeartbeatInterval ||
			st.UsingGTIDMode != want.UsingGTIDMode || st.HasReplicationFilters != want.HasReplicationFilters ||
			st.AutoPosition || st.SSLAllowed || st.ReplicationLagUnknown() || st.ReplicationLagSeconds() != 0 {
			t.Errorf("status = %+v", st)
		}
		for name, pair := range map[string][2]Position{
			"relay source equivalent": {st.RelayLogSourceBinlogEquivalentPosition, mustParse(t, "FilePos/mysql-bin.000001:812")},
			"relay file":              {st.RelayLogFilePosition, mustParse(t, "FilePos/relay-bin.000002:1111")},
			"relay log (Gtid_IO_Pos)": {st.RelayLogPosition, mustParse(t, "MariaDB/0-1-3")},
		} {
			if !pair[0].Equal(pair[1]) {
				t.Errorf("%s = %s, want %s", name, pair[0], pair[1])
			}
		}
	})
	t.Run("mysql84", func(t *testing.T) {
		_, db := newFakeServer(t, map[string]fakeResult{mysqlStatusQuery: loadFakeResult(t, "mysql84_running.json")})
		st, err := ReplicaStatus(context.Background(), db, FlavorMySQL84)
		if err != nil {
			t.Fatal(err)
		}
		if !st.AutoPosition || st.ConnectRetry != 10*time.Second || st.IOStateMessage != "Waiting for source to send event" ||
			st.UsingGTIDMode != "" || st.ReplicationLagSeconds() != 3 || st.HasReplicationFilters ||
			!st.RelayLogSourceBinlogEquivalentPosition.Equal(mustParse(t, "FilePos/binlog.000007:9001")) ||
			!st.RelayLogFilePosition.Equal(mustParse(t, "FilePos/relay.000003:812")) {
			t.Errorf("status = %+v", st)
		}
	})
	for v, want := range map[string]ReplicationState{"Yes": ReplicationStateRunning, "No": ReplicationStateStopped,
		"Connecting": ReplicationStateConnecting, "": ReplicationStateUnknown, "ON": ReplicationStateRunning} {
		if got := parseReplicationState(v); got != want {
			t.Errorf("parseReplicationState(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestReadGlobalStatusVars(t *testing.T) {
	const query = "SHOW GLOBAL STATUS WHERE Variable_name IN ('Innodb_buffer_pool_pages_data', 'rpl_semi_sync_master_clients', 'nope')"
	rows := fakeResult{Columns: []string{"Variable_name", "Value"}, Rows: [][]*string{
		{ptr("Innodb_buffer_pool_pages_data"), ptr("1234")}, {ptr("Rpl_semi_sync_master_clients"), ptr("1")}}}
	_, db := newFakeServer(t, map[string]fakeResult{query: rows, "SHOW GLOBAL STATUS": rows})
	got, err := ReadGlobalStatusVars(context.Background(), db,
		[]string{"Innodb_buffer_pool_pages_data", "rpl_semi_sync_master_clients", "nope"})
	if err != nil || len(got) != 2 || got["Innodb_buffer_pool_pages_data"] != "1234" || got["rpl_semi_sync_master_clients"] != "1" {
		t.Fatalf("ReadGlobalStatusVars = %v, %v", got, err)
	}
	all, err := ReadGlobalStatusVars(context.Background(), db, nil)
	if err != nil || all["Rpl_semi_sync_master_clients"] != "1" || len(all) != 2 {
		t.Fatalf("ReadGlobalStatusVars(all) = %v, %v", all, err)
	}
	if _, err := ReadGlobalStatusVars(context.Background(), db, []string{"x' OR 1=1 -- "}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("ReadGlobalStatusVars(injection) = %v, want ErrInvalidArgument", err)
	}
}
