package storage

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestFileStorage(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	f, err := NewFile(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Check(ctx); err != nil {
		t.Fatalf("Check: %v", err)
	}
	w, err := f.StartBackup(ctx, "ks/0", "2025-01-02.030405.zone1-0000000101")
	if err != nil {
		t.Fatal(err)
	}
	out, err := w.AddFile(ctx, "MANIFEST", -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := out.Write([]byte("{}")); err != nil {
		t.Fatal(err)
	}
	// Until Close the file is not there under its name (a reader never sees half a MANIFEST).
	if _, err := f.ReadFile(ctx, "ks/0", "2025-01-02.030405.zone1-0000000101", "MANIFEST"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ReadFile before Close: %v; want ErrNotFound", err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := f.ReadFile(ctx, "ks/0", "2025-01-02.030405.zone1-0000000101", "MANIFEST")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	r.Close()
	if string(b) != "{}" {
		t.Fatalf("read back %q", b)
	}
	if _, err := f.StartBackup(ctx, "ks/0", "2025-01-01.000000.zone1-0000000101"); err != nil {
		t.Fatal(err)
	}
	names, err := f.ListBackups(ctx, "ks/0")
	if err != nil || len(names) != 2 || names[0] != "2025-01-01.000000.zone1-0000000101" {
		t.Fatalf("ListBackups: %v %v; want both, oldest first", names, err)
	}
	if err := f.RemoveBackup(ctx, "ks/0", names[0]); err != nil {
		t.Fatal(err)
	}
	if err := f.RemoveBackup(ctx, "ks/0", names[0]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second RemoveBackup: %v; want ErrNotFound", err)
	}
	if names, _ := f.ListBackups(ctx, "other/0"); len(names) != 0 {
		t.Fatalf("ListBackups of an absent shard: %v", names)
	}
}

func TestFileStorageAbort(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	f, _ := NewFile(root)
	w, err := f.StartBackup(ctx, "ks/0", "b")
	if err != nil {
		t.Fatal(err)
	}
	out, _ := w.AddFile(ctx, "backup.xbstream.zst", -1)
	_, _ = out.Write([]byte("data"))
	_ = out.Close()
	if err := w.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "ks", "0", "b")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("aborted backup still there: %v", err)
	}
}

func TestFileStorageBadInput(t *testing.T) {
	ctx := context.Background()
	ro := t.TempDir()
	if err := os.Chmod(ro, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(ro, 0o755) })
	for _, tc := range []struct {
		name string
		root string
		want error
	}{
		{"missing root", filepath.Join(t.TempDir(), "absent"), ErrUnusable},
		{"root is a file", writeFile(t), ErrUnusable},
	} {
		f, err := NewFile(tc.root)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Check(ctx); !errors.Is(err, tc.want) {
			t.Errorf("%s: Check: %v; want %v", tc.name, err, tc.want)
		}
		if _, err := f.StartBackup(ctx, "ks/0", "b"); !errors.Is(err, tc.want) {
			t.Errorf("%s: StartBackup: %v; want %v", tc.name, err, tc.want)
		}
	}
	if os.Geteuid() != 0 { // root writes anywhere
		f, _ := NewFile(ro)
		if err := f.Check(ctx); !errors.Is(err, ErrUnusable) {
			t.Errorf("read-only root: %v; want ErrUnusable", err)
		}
	}
	f, _ := NewFile(t.TempDir())
	for _, tc := range []struct{ dir, name, file string }{
		{"../x", "b", "f"}, {"ks/0", "..", "f"}, {"ks/0", "b", "../../etc/passwd"}, {"", "b", "f"}, {"ks/0", "a/b", "f"},
	} {
		if _, err := f.ReadFile(ctx, tc.dir, tc.name, tc.file); !errors.Is(err, ErrInvalidName) {
			t.Errorf("ReadFile(%q, %q, %q): %v; want ErrInvalidName", tc.dir, tc.name, tc.file, err)
		}
	}
	if _, err := NewFile(""); !errors.Is(err, ErrUnusable) {
		t.Errorf("NewFile(\"\"): %v", err)
	}
}

func writeFile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
