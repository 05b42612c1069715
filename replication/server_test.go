package replication

import (
	"context"
	"errors"
	"slices"
	"testing"
)

var errFake = errors.New("fake server failure")

// detectCase is one Detect table test against the fake server.
type detectCase struct {
	name    string
	results map[string]fakeResult
	want    ServerInfo
	wantErr error
}

func detectCases() []detectCase {
	mariadb := single("version", "10.11.19-MariaDB-0+deb12u1", "version_comment", "Debian 12",
		"server_id", "101", "read_only", "0")
	mysql := single("version", "8.4.3", "version_comment", "MySQL Community Server - GPL",
		"server_id", "7", "read_only", "1")
	return []detectCase{
		{
			name: "mariadb",
			results: map[string]fakeResult{
				detectQuery:        mariadb,
				detectMariaDBQuery: single("gtid_domain_id", "3"),
			},
			want: ServerInfo{Flavor: FlavorMariaDB, Version: Version{10, 11, 19},
				VersionString: "10.11.19-MariaDB-0+deb12u1", VersionComment: "Debian 12",
				ServerID: 101, GTIDDomainID: 3},
		},
		{
			name: "mysql84",
			results: map[string]fakeResult{
				detectQuery: mysql,
				detectMySQLQuery: single("server_uuid", uuidA, "super_read_only", "1",
					"gtid_mode", "ON"),
			},
			want: ServerInfo{Flavor: FlavorMySQL84, Version: Version{8, 4, 3}, VersionString: "8.4.3",
				VersionComment: "MySQL Community Server - GPL", ServerID: 7, ServerUUID: uuidA,
				GTIDMode: "ON", ReadOnly: true, SuperReadOnly: true},
		},
		{
			name: "mysql57",
			results: map[string]fakeResult{detectQuery: single("version", "5.7.44-log",
				"version_comment", "", "server_id", "1", "read_only", "0")},
			wantErr: ErrUnsupportedServer,
		},
		{
			name: "bad read_only",
			results: map[string]fakeResult{detectQuery: single("version", "8.0.36",
				"version_comment", "", "server_id", "1", "read_only", "maybe")},
			wantErr: ErrUnexpectedResult,
		},
		{
			name: "bad server_id",
			results: map[string]fakeResult{detectQuery: single("version", "8.0.36",
				"version_comment", "", "server_id", "-1", "read_only", "0")},
			wantErr: ErrUnexpectedResult,
		},
		{
			name: "missing column",
			results: map[string]fakeResult{detectQuery: single("version", "8.0.36",
				"version_comment", "", "read_only", "0")},
			wantErr: ErrUnexpectedResult,
		},
		{
			name:    "no rows",
			results: map[string]fakeResult{detectQuery: {Columns: []string{"version"}}},
			wantErr: ErrUnexpectedResult,
		},
		{
			name:    "query error",
			results: map[string]fakeResult{detectQuery: {err: errFake}},
			wantErr: errFake,
		},
	}
}

func TestDetect(t *testing.T) {
	for _, tc := range detectCases() {
		t.Run(tc.name, func(t *testing.T) {
			_, db := newFakeServer(t, tc.results)
			got, err := Detect(context.Background(), db)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Detect() error = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Detect() = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestPrimaryPosition(t *testing.T) {
	tests := []struct {
		name    string
		flavor  Flavor
		result  fakeResult
		want    string
		wantErr error
	}{
		{"mariadb", FlavorMariaDB, single("gtid_binlog_pos", "1-2-17,0-101-42"), "MariaDB/0-101-42,1-2-17", nil},
		{"mariadb fresh", FlavorMariaDB, single("gtid_binlog_pos", ""), "MariaDB/", nil},
		{"mariadb bad", FlavorMariaDB, single("gtid_binlog_pos", "0-1"), "", ErrInvalidPosition},
		{"mysql", FlavorMySQL80, single("gtid_mode", "ON", "gtid_executed", uuidB+":1-3,\n"+uuidA+":1-42:50-60"),
			"MySQL56/" + uuidA + ":1-42:50-60," + uuidB + ":1-3", nil},
		{"mysql fresh", FlavorMySQL84, single("gtid_mode", "ON", "gtid_executed", ""), "MySQL56/", nil},
		{"mysql gtid off", FlavorMySQL84, single("gtid_mode", "OFF", "gtid_executed", ""), "", ErrGTIDDisabled},
		{"mysql gtid permissive", FlavorMySQL80, single("gtid_mode", "ON_PERMISSIVE", "gtid_executed", ""), "", ErrGTIDDisabled},
		{"unknown flavor", FlavorUnknown, fakeResult{}, "", ErrUnknownFlavor},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, db := newFakeServer(t, map[string]fakeResult{
				mariaDBPositionQuery: tc.result,
				mysqlPositionQuery:   tc.result,
			})
			got, err := PrimaryPosition(context.Background(), db, tc.flavor)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("PrimaryPosition() error = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || got.String() != tc.want {
				t.Fatalf("PrimaryPosition() = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestReadOnly(t *testing.T) {
	tests := []struct {
		value   string
		want    bool
		wantErr error
	}{
		{"0", false, nil},
		{"1", true, nil},
		{"OFF", false, nil},
		{"ON", true, nil},
		{"NO_LOCK", true, nil},
		{"NO_LOCK_NO_ADMIN", true, nil},
		{"2", false, ErrUnexpectedResult},
	}
	for _, tc := range tests {
		t.Run(tc.value, func(t *testing.T) {
			_, db := newFakeServer(t, map[string]fakeResult{readOnlyQuery: single("read_only", tc.value)})
			got, err := ReadOnly(context.Background(), db)
			if !errors.Is(err, tc.wantErr) || (err == nil && got != tc.want) {
				t.Fatalf("ReadOnly() = %v, %v; want %v, %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestSetReadOnly(t *testing.T) {
	tests := []struct {
		flavor  Flavor
		on      bool
		want    []string
		wantErr error
	}{
		{FlavorMariaDB, true, []string{"SET GLOBAL read_only = ON"}, nil},
		{FlavorMariaDB, false, []string{"SET GLOBAL read_only = OFF"}, nil},
		{FlavorMySQL80, true, []string{"SET GLOBAL read_only = ON", "SET GLOBAL super_read_only = ON"}, nil},
		{FlavorMySQL84, false, []string{"SET GLOBAL super_read_only = OFF", "SET GLOBAL read_only = OFF"}, nil},
		{FlavorUnknown, true, nil, ErrUnknownFlavor},
	}
	for _, tc := range tests {
		t.Run(tc.flavor.String(), func(t *testing.T) {
			srv, db := newFakeServer(t, nil)
			err := SetReadOnly(context.Background(), db, tc.flavor, tc.on)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("SetReadOnly() error = %v, want %v", err, tc.wantErr)
			}
			if got := srv.executed(); !slices.Equal(got, tc.want) {
				t.Errorf("executed %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("exec error", func(t *testing.T) {
		_, db := newFakeServer(t, map[string]fakeResult{"SET GLOBAL read_only = ON": {err: errFake}})
		if err := SetReadOnly(context.Background(), db, FlavorMySQL84, true); !errors.Is(err, errFake) {
			t.Fatalf("SetReadOnly() error = %v, want %v", err, errFake)
		}
	})
}
