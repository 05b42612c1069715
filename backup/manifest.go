package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tabletd/tabletd/backup/storage"
	"github.com/tabletd/tabletd/proto/topodatapb"
)

// ManifestFile is the name of the file that makes a backup complete; it is written last.
const ManifestFile = "MANIFEST"

// Sentinel errors of this package.
var (
	// ErrNoBackup: the shard has no complete backup that fits the request ("start empty").
	ErrNoBackup = errors.New("no backup to restore")
	// ErrCorrupt: a backup's files do not match its MANIFEST (see CorruptError).
	ErrCorrupt = errors.New("backup is corrupt")
	// ErrInProgress: another backup or restore is running on this tablet.
	ErrInProgress = errors.New("a backup or restore is already in progress")
	// ErrNotManaged: restoring needs control of mysqld (--mycnf-file or --mysqlctl-socket).
	ErrNotManaged = errors.New("mysqld is not managed by tabletd")
)

// Manifest is a backup's MANIFEST: the JSON fields of Vitess's backup manifest (common and
// xtrabackup ones, so GetBackups, RemoveBackup and Vitess's restore code read it), plus
// Stripes, tabletd's per-file size and checksum.
type Manifest struct {
	BackupName   string
	BackupMethod string
	// Position is the replication position the backup is consistent with, in Vitess's
	// encoding ("MariaDB/0-101-42", "MySQL56/<uuid>:1-5").
	Position           string
	PurgedPosition     string
	FromPosition       string
	FromBackup         string
	Incremental        bool
	BackupTime         string // RFC 3339, UTC
	FinishedTime       string
	ServerUUID         string
	TabletAlias        string
	Keyspace           string
	Shard              string
	MySQLVersion       string
	UpgradeSafe        bool
	IncrementalDetails *struct{} `json:",omitempty"`

	// xtrabackup engine fields (Vitess's xtraBackupManifest).
	CompressionEngine      string `json:",omitempty"`
	FileName               string `json:",omitempty"`
	ExtraCommandLineParams string `json:",omitempty"`
	StreamMode             string `json:",omitempty"`
	NumStripes             int32  `json:",omitempty"`
	StripeBlockSize        int32  `json:",omitempty"`
	SkipCompress           bool   `json:",omitempty"`

	// Stripes: every stored file with its size and CRC-32 (tabletd).
	Stripes []Stripe `json:",omitempty"`
	// Flavor is the server flavor the backup was taken from ("MariaDB", "MySQL") (tabletd).
	Flavor string `json:",omitempty"`
	// DataSize is the datadir's size when the backup started, for restore progress (tabletd).
	DataSize int64 `json:",omitempty"`
}

// decodeManifest reads a MANIFEST; an error means the backup is not complete (or not ours).
func decodeManifest(b []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("MANIFEST does not decode: %w", err)
	}
	if m.BackupName == "" || m.BackupTime == "" {
		return nil, errors.New("MANIFEST lacks BackupName or BackupTime")
	}
	return &m, nil
}

func (m *Manifest) encode() ([]byte, error) { return json.MarshalIndent(m, "", "  ") }

// backupTimeLayout is Vitess's backup name time format (UTC).
const backupTimeLayout = "2006-01-02.150405"

// BackupName is Vitess's name for a backup taken at t by alias: "2006-01-02.150405.zone1-0000000101".
func BackupName(t time.Time, alias *topodatapb.TabletAlias) string {
	return t.UTC().Format(backupTimeLayout) + "." + AliasString(alias)
}

// AliasString is the alias as Vitess writes it in backup names: "<cell>-<uid, 10 digits>".
func AliasString(a *topodatapb.TabletAlias) string {
	return fmt.Sprintf("%s-%010d", a.GetCell(), a.GetUid())
}

// ParseBackupName returns the time and alias encoded in a backup name.
func ParseBackupName(name string) (time.Time, string, error) {
	if len(name) < len(backupTimeLayout)+2 || name[len(backupTimeLayout)] != '.' {
		return time.Time{}, "", fmt.Errorf("backup name %q is not <YYYY-MM-DD.HHMMSS>.<cell>-<uid>", name)
	}
	t, err := time.Parse(backupTimeLayout, name[:len(backupTimeLayout)])
	if err != nil {
		return time.Time{}, "", fmt.Errorf("backup name %q: %w", name, err)
	}
	return t, name[len(backupTimeLayout)+1:], nil
}

// ParseBackupTime parses --restore-from-backup-ts (YYYY-MM-DD.HHMMSS, UTC).
func ParseBackupTime(s string) (time.Time, error) {
	t, err := time.Parse(backupTimeLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--restore-from-backup-ts %q: want YYYY-MM-DD.HHMMSS (UTC), e.g. 2025-01-02.030405", s)
	}
	return t, nil
}

// flavorOf names the flavor family of a position or version string: "MariaDB" or "MySQL".
func flavorOf(position, version string) string {
	switch {
	case strings.HasPrefix(position, "MariaDB/"), strings.Contains(version, "MariaDB"):
		return "MariaDB"
	case strings.HasPrefix(position, "MySQL56/"), version != "":
		return "MySQL"
	}
	return ""
}

// Listed is one backup of a shard as List finds it.
type Listed struct {
	Name     string
	Manifest *Manifest // nil: incomplete (no MANIFEST, or one that does not decode)
	Problem  string    // why Manifest is nil
	Stored   int64     // bytes of the stored files per the MANIFEST
}

// List returns the backups of dir ("<keyspace>/<shard>") in st, oldest first, each with its
// MANIFEST when it has one (operators without vtctld: tabletctl backups).
func List(ctx context.Context, st storage.Storage, dir string) ([]Listed, error) {
	names, err := st.ListBackups(ctx, dir)
	if err != nil {
		return nil, err
	}
	s := &Service{storage: st}
	out := make([]Listed, 0, len(names))
	for _, n := range names {
		m, err := s.readManifest(ctx, dir, n)
		if err != nil {
			out = append(out, Listed{Name: n, Problem: err.Error()})
			continue
		}
		out = append(out, Listed{Name: n, Manifest: m, Stored: storedSize(m)})
	}
	return out, nil
}
