package replication

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

// errantCase is one MariaDB rule case of testdata/errant_mariadb.json.
// want lists "domain-server-last after N" per errant pair.
type errantCase struct {
	Name      string `json:"name"`
	PrimaryID uint32 `json:"primary_id"`
	Primary   string `json:"primary"`
	Replica   string `json:"replica"`
	Want      string `json:"want"`
}

func mustState(t *testing.T, s string) BinlogState {
	t.Helper()
	b, err := ParseBinlogState(s)
	if err != nil {
		t.Fatalf("ParseBinlogState(%q): %v", s, err)
	}
	return b
}

func TestFindErrantGTIDsMariaDB(t *testing.T) {
	data, err := os.ReadFile("testdata/errant_mariadb.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []errantCase
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			primary := GTIDState{Flavor: FlavorMariaDB, ServerID: tc.PrimaryID, BinlogState: mustState(t, tc.Primary)}
			replica := GTIDState{Flavor: FlavorMariaDB, ServerID: 99, BinlogState: mustState(t, tc.Replica)}
			got, err := FindErrantGTIDs(replica, primary)
			if err != nil {
				t.Fatal(err)
			}
			var parts []string
			for _, r := range got.MariaDB() {
				parts = append(parts, fmt.Sprintf("%s after %d", r, r.After))
			}
			if s := strings.Join(parts, ","); s != tc.Want || got.IsEmpty() != (tc.Want == "") {
				t.Fatalf("errant = %q (empty %v), want %q", s, got.IsEmpty(), tc.Want)
			}
		})
	}
}

func TestFindErrantGTIDsMySQL(t *testing.T) {
	const own = "8d3e2a61-bd55-11ee-a0b5-0242ac120002"
	tests := []struct {
		name, primaryUUID, primary, replica, want string
		wantErr                                   error
	}{
		{"clean", uuidB, uuidB + ":1-10", uuidB + ":1-10", "", nil},
		{"newer primary writes are not errant", uuidB, uuidB + ":1-10", uuidB + ":1-15", "", nil},
		{"replica's own writes", uuidB, uuidB + ":1-10", uuidB + ":1-10," + own + ":1-2", own + ":1-2", nil},
		{"own writes the primary has", uuidB, uuidB + ":1-10," + own + ":1-2", uuidB + ":1-10," + own + ":1-3", own + ":3", nil},
		{"gaps", uuidB, uuidB + ":1-10," + uuidA + ":1-5:9-20", uuidB + ":1-10," + uuidA + ":1-25", uuidA + ":6-8:21-25", nil},
		{"bad primary uuid", "", uuidB + ":1-10", uuidB + ":1-10", "", ErrInvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			primary := GTIDState{Flavor: FlavorMySQL84, ServerUUID: tc.primaryUUID, Executed: mustParse(t, "MySQL56/"+tc.primary)}
			replica := GTIDState{Flavor: FlavorMySQL84, ServerUUID: own, Executed: mustParse(t, "MySQL56/"+tc.replica)}
			got, err := FindErrantGTIDs(replica, primary)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error = %v, want %v", err, tc.wantErr)
			}
			if got.String() != tc.want || got.IsEmpty() != (tc.want == "") {
				t.Fatalf("errant = %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("flavors differ", func(t *testing.T) {
		_, err := FindErrantGTIDs(GTIDState{Flavor: FlavorMariaDB}, GTIDState{Flavor: FlavorMySQL80})
		if !errors.Is(err, ErrPositionFlavor) {
			t.Fatalf("error = %v, want ErrPositionFlavor", err)
		}
	})
}

func TestErrantGTIDsCaptured(t *testing.T) {
	t.Run("mariadb", func(t *testing.T) {
		_, pdb := newFakeServer(t, map[string]fakeResult{mariaDBStateQuery: loadCaptured(t, "mariadb_gtid_state_primary.json")})
		primary, err := ReadGTIDState(context.Background(), pdb, FlavorMariaDB)
		if err != nil || primary.ServerID != 1 || primary.BinlogState.String() != "0-1-3" {
			t.Fatalf("ReadGTIDState = %+v, %v", primary, err)
		}
		_, rdb := newFakeServer(t, map[string]fakeResult{mariaDBStateQuery: loadCaptured(t, "mariadb_gtid_state_replica_local_write.json")})
		errant, err := ErrantGTIDs(context.Background(), rdb, FlavorMariaDB, primary)
		if err != nil || errant.String() != "0-2-4" {
			t.Fatalf("ErrantGTIDs = %q, %v; want 0-2-4 (the replica's local write)", errant, err)
		}
	})
	t.Run("mysql", func(t *testing.T) {
		_, pdb := newFakeServer(t, map[string]fakeResult{mysqlStateQuery: loadCaptured(t, "mysql_gtid_state_primary.json")})
		primary, err := ReadGTIDState(context.Background(), pdb, FlavorMySQL80)
		if err != nil {
			t.Fatal(err)
		}
		_, rdb := newFakeServer(t, map[string]fakeResult{mysqlStateQuery: loadCaptured(t, "mysql_gtid_state_replica.json")})
		errant, err := ErrantGTIDs(context.Background(), rdb, FlavorMySQL80, primary)
		want := "16b1039f-22b6-11ed-b765-0a43f95f28a3:1-3,8d3e2a61-bd55-11ee-a0b5-0242ac120002:6-7"
		if err != nil || errant.String() != want || errant.MySQL56().Flavor() != PositionMySQL56 {
			t.Fatalf("ErrantGTIDs = %q, %v; want %s", errant, err, want)
		}
	})
}

func TestParseBinlogState(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  error
	}{
		{"", "", nil},
		{" 1-5-3, 0-2-9,0-1-4 ", "0-1-4,0-2-9,1-5-3", nil},
		{"0-1-4,0-1-5", "", ErrInvalidPosition},
		{"0-1", "", ErrInvalidPosition},
	}
	for _, tc := range tests {
		got, err := ParseBinlogState(tc.in)
		if !errors.Is(err, tc.wantErr) || got.String() != tc.want {
			t.Errorf("ParseBinlogState(%q) = %q, %v; want %q, %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
	b := mustState(t, "0-1-4,0-2-9")
	if g := b.GTIDs(); len(g) != 2 || g[1] != (MariaDBGTID{0, 2, 9}) || b.IsEmpty() || !mustState(t, "").IsEmpty() {
		t.Errorf("GTIDs() = %v", g)
	}
}

func TestPositionSetOperations(t *testing.T) {
	a := "MySQL56/" + uuidA + ":1-10:20-30," + uuidB + ":1-5"
	tests := []struct {
		op, p, other, want string
		wantErr            error
	}{
		{"subtract", a, "MySQL56/" + uuidA + ":5-25", "MySQL56/" + uuidA + ":1-4:26-30," + uuidB + ":1-5", nil},
		{"subtract", a, a, "MySQL56/", nil},
		{"subtract", a, "", a, nil},
		{"subtract", "", a, "", nil},
		{"subtract", a, "MySQL56/" + uuidB + ":2-3:5", "MySQL56/" + uuidA + ":1-10:20-30," + uuidB + ":1:4", nil},
		{"subtract", "MariaDB/0-1-5", "MariaDB/0-1-3", "", ErrPositionFlavor},
		{"subtract", a, "MariaDB/0-1-3", "", ErrPositionFlavor},
		{"union", "MariaDB/0-1-5,1-2-3", "MariaDB/0-3-4,2-1-1", "MariaDB/0-1-5,1-2-3,2-1-1", nil},
		{"union", "MariaDB/0-1-5", a, "", ErrPositionFlavor},
	}
	for _, tc := range tests {
		p, other := mustParse(t, tc.p), mustParse(t, tc.other)
		var got Position
		var err error
		if tc.op == "subtract" {
			got, err = p.Subtract(other)
		} else {
			got, err = p.Union(other)
		}
		if !errors.Is(err, tc.wantErr) || got.String() != tc.want {
			t.Errorf("%q %s %q = %q, %v; want %q, %v", tc.p, tc.op, tc.other, got, err, tc.want, tc.wantErr)
		}
	}
	for s, empty := range map[string]bool{"": true, "MariaDB/": true, "MySQL56/": true, "MariaDB/0-1-1": false, "FilePos/b.1:4": false} {
		if got := mustParse(t, s).IsEmpty(); got != empty {
			t.Errorf("IsEmpty(%q) = %v, want %v", s, got, empty)
		}
	}
}
