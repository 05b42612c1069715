package backup

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tabletd/tabletd/backup/storage"
	"github.com/tabletd/tabletd/replication"
)

func putManifest(t *testing.T, st storage.Storage, m *Manifest) {
	t.Helper()
	ctx := context.Background()
	w, err := st.StartBackup(ctx, "commerce/0", m.BackupName)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeManifest(ctx, w, m); err != nil {
		t.Fatal(err)
	}
}

func TestFindBackup(t *testing.T) {
	ctx := context.Background()
	st, _ := storage.NewFile(t.TempDir())
	svc, err := New(DefaultConfig(), Deps{Storage: st})
	if err != nil {
		t.Fatal(err)
	}
	logf := func(Level, string, ...any) {}
	req := RestoreRequest{Keyspace: "commerce", Shard: "0", Flavor: replication.FlavorMariaDB, Log: logf}
	if _, err := svc.FindBackup(ctx, req); !errors.Is(err, ErrNoBackup) {
		t.Fatalf("empty shard: %v; want ErrNoBackup", err)
	}
	mk := func(name, at, method, pos, version string) *Manifest {
		return &Manifest{BackupName: name, BackupMethod: method, BackupTime: at, Position: pos, MySQLVersion: version, Keyspace: "commerce", Shard: "0"}
	}
	putManifest(t, st, mk("2025-01-01.000000.zone1-0000000101", "2025-01-01T00:00:00Z", EngineMariabackup, "MariaDB/0-1-5", "10.11.19-MariaDB"))
	putManifest(t, st, mk("2025-01-02.000000.zone1-0000000101", "2025-01-02T00:00:00Z", EngineXtrabackup, "MariaDB/0-1-9", "10.11.19-MariaDB"))
	putManifest(t, st, mk("2025-01-03.000000.zone1-0000000102", "2025-01-03T00:00:00Z", EngineXtrabackup, "MySQL56/3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5", "8.0.40"))
	// An incomplete backup (no MANIFEST) is never chosen, even when newest.
	if _, err := st.StartBackup(ctx, "commerce/0", "2025-01-04.000000.zone1-0000000101"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		tweak   func(*RestoreRequest)
		want    string
		wantErr error
	}{
		{"newest of the flavor", nil, "2025-01-02.000000.zone1-0000000101", nil},
		{"at or before a time", func(r *RestoreRequest) { r.BackupTime = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC) }, "2025-01-01.000000.zone1-0000000101", nil},
		{"allowed engines", func(r *RestoreRequest) { r.AllowedEngines = []string{EngineMariabackup} }, "2025-01-01.000000.zone1-0000000101", nil},
		{"MySQL server", func(r *RestoreRequest) { r.Flavor = replication.FlavorMySQL80 }, "2025-01-03.000000.zone1-0000000102", nil},
		{"too early", func(r *RestoreRequest) { r.BackupTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC) }, "", ErrNoFit},
		{"no allowed engine", func(r *RestoreRequest) { r.AllowedEngines = []string{"builtin"} }, "", ErrNoFit},
	} {
		r := req
		if tc.tweak != nil {
			tc.tweak(&r)
		}
		m, err := svc.FindBackup(ctx, r)
		switch {
		case tc.wantErr != nil:
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("%s: %v %v; want %v", tc.name, m, err, tc.wantErr)
			}
		case err != nil || m.BackupName != tc.want:
			t.Errorf("%s: %v %v; want %s", tc.name, m, err, tc.want)
		}
	}
	// A MySQL backup offered to MariaDB is named in the refusal.
	only, _ := storage.NewFile(t.TempDir())
	putManifest(t, only, mk("2025-01-03.000000.zone1-0000000102", "2025-01-03T00:00:00Z", EngineXtrabackup, "MySQL56/3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5", "8.0.40"))
	svc2, _ := New(DefaultConfig(), Deps{Storage: only})
	_, err = svc2.FindBackup(ctx, req)
	if !errors.Is(err, ErrNoFit) || !strings.Contains(err.Error(), "MySQL backup") || !strings.Contains(err.Error(), "MariaDB server") {
		t.Fatalf("a MySQL backup for MariaDB: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tweak func(*Config)
		flag  string
	}{
		{"unknown engine", func(c *Config) { c.Engine = "rsync" }, "--backup-engine-implementation"},
		{"builtin", func(c *Config) { c.Engine = "builtin" }, "--backup-engine-implementation"},
		{"tar", func(c *Config) { c.StreamMode = "tar" }, "--xtrabackup-stream-mode"},
		{"unknown compressor", func(c *Config) { c.CompressionEngine = "lz4" }, "--compression-engine-name"},
		{"zstd level", func(c *Config) { c.CompressionLevel = 40 }, "--compression-level"},
		{"stripes", func(c *Config) { c.Stripes = -1 }, "--xtrabackup-stripes"},
		{"block size", func(c *Config) { c.Stripes, c.StripeBlockSize = 2, 10 }, "--xtrabackup-stripe-block-size"},
		{"concurrency", func(c *Config) { c.Concurrency = 0 }, "--backup-storage-number-blocks"},
	} {
		c := DefaultConfig()
		tc.tweak(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.flag) {
			t.Errorf("%s: %v; want an error naming %s", tc.name, err, tc.flag)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
}

func TestList(t *testing.T) {
	ctx := context.Background()
	st, _ := storage.NewFile(t.TempDir())
	putManifest(t, st, &Manifest{BackupName: "2025-01-01.000000.zone1-0000000101", BackupTime: "2025-01-01T00:00:00Z",
		BackupMethod: EngineMariabackup, Stripes: []Stripe{{Name: "a", Size: 5}, {Name: "b", Size: 7}}})
	if _, err := st.StartBackup(ctx, "commerce/0", "2025-01-02.000000.zone1-0000000101"); err != nil {
		t.Fatal(err)
	}
	got, err := List(ctx, st, "commerce/0")
	if err != nil || len(got) != 2 {
		t.Fatalf("List: %v %v", got, err)
	}
	if got[0].Manifest == nil || got[0].Stored != 12 || got[1].Manifest != nil || !strings.Contains(got[1].Problem, "not found") {
		t.Fatalf("List: %+v", got)
	}
}
