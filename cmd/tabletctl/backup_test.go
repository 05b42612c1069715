package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBackupsCommand(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "commerce", "0")
	complete := filepath.Join(dir, "2025-01-01.000000.zone1-0000000101")
	if err := os.MkdirAll(complete, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(complete, "MANIFEST"), []byte(`{"BackupName": "2025-01-01.000000.zone1-0000000101",
		"BackupTime": "2025-01-01T00:00:00Z", "FinishedTime": "2025-01-01T00:00:09Z", "BackupMethod": "mariabackup",
		"Position": "MariaDB/0-101-42", "Stripes": [{"Name": "backup.xbstream.zst", "Size": 1234, "Hash": "00000000"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "2025-01-02.000000.zone1-0000000101"), 0o755); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"backups", "--file-backup-storage-root", root, "commerce/0"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "yes") || !strings.Contains(lines[1], "MariaDB/0-101-42") ||
		!strings.Contains(lines[1], "1234") || !strings.Contains(lines[2], "no (") {
		t.Fatalf("tabletctl backups:\n%s", out.String())
	}
	for _, bad := range [][]string{{"backups"}, {"backups", "--backup-storage-implementation", "gcs", "ks/0"}, {"backup"}} {
		if code := run(context.Background(), bad, &out, &errOut); code != 2 {
			t.Errorf("tabletctl %v: exit %d, want 2", bad, code)
		}
	}
}
