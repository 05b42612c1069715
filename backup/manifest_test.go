package backup

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tabletd/tabletd/proto/topodatapb"
)

// TestManifestGolden: the MANIFEST has Vitess's field names (GetBackups, RemoveBackup and
// Vitess's restore code read it); testdata/manifest.json is what a MariaDB backup writes.
func TestManifestGolden(t *testing.T) {
	m := &Manifest{BackupName: "2025-01-02.030405.zone1-0000000101", BackupMethod: EngineMariabackup,
		Position: "MariaDB/0-101-42", BackupTime: "2025-01-02T03:04:05Z", FinishedTime: "2025-01-02T03:04:09Z",
		TabletAlias: "zone1-0000000101", Keyspace: "commerce", Shard: "0", MySQLVersion: "10.11.19-MariaDB-0+deb12u1-log",
		CompressionEngine: CompressZstd, FileName: "backup.xbstream.zst", StreamMode: "xbstream", NumStripes: 2, StripeBlockSize: 102400,
		Stripes:  []Stripe{{Name: "backup.xbstream.zst-000", Size: 10, Hash: "0a0b0c0d"}, {Name: "backup.xbstream.zst-001", Size: 9, Hash: "01020304"}},
		Flavor:   "MariaDB",
		DataSize: 1234}
	got, err := m.encode()
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(got)) != strings.TrimSpace(string(want)) {
		t.Fatalf("MANIFEST:\n%s\nwant (testdata/manifest.json):\n%s", got, want)
	}
	back, err := decodeManifest(want)
	if err != nil {
		t.Fatal(err)
	}
	if back.Position != m.Position || len(back.Stripes) != 2 || back.Stripes[1] != m.Stripes[1] {
		t.Fatalf("decoded %+v", back)
	}
	// Every common field Vitess's backup manifest has is there by its Go name.
	var fields map[string]any
	_ = json.Unmarshal(want, &fields)
	for _, f := range []string{"BackupName", "BackupMethod", "Position", "PurgedPosition", "FromPosition", "FromBackup",
		"Incremental", "BackupTime", "FinishedTime", "ServerUUID", "TabletAlias", "Keyspace", "Shard", "MySQLVersion", "UpgradeSafe"} {
		if _, ok := fields[f]; !ok {
			t.Errorf("MANIFEST lacks Vitess's field %s", f)
		}
	}
}

func TestManifestBadInput(t *testing.T) {
	for _, in := range []string{"", "{", "[]", `{"BackupName": "x"}`, `{"BackupTime": "2025-01-02T03:04:05Z"}`, `{"BackupName": 5}`} {
		if _, err := decodeManifest([]byte(in)); err == nil {
			t.Errorf("decodeManifest(%q) accepted it", in)
		}
	}
}

func TestBackupNames(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	name := BackupName(at, &topodatapb.TabletAlias{Cell: "zone1", Uid: 101})
	if name != "2025-01-02.020405.zone1-0000000101" {
		t.Fatalf("BackupName: %s", name)
	}
	got, alias, err := ParseBackupName(name)
	if err != nil || !got.Equal(at) || alias != "zone1-0000000101" {
		t.Fatalf("ParseBackupName: %v %s %v", got, alias, err)
	}
	for _, bad := range []string{"", "2025-01-02", "2025-13-02.030405.zone1-1", "garbage.zone1-0000000101"} {
		if _, _, err := ParseBackupName(bad); err == nil {
			t.Errorf("ParseBackupName(%q) accepted it", bad)
		}
	}
	if _, err := ParseBackupTime("2025-01-02 03:04:05"); err == nil || !strings.Contains(err.Error(), "--restore-from-backup-ts") {
		t.Errorf("ParseBackupTime of a bad value: %v", err)
	}
}
