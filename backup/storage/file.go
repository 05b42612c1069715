package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// File keeps backups in a directory tree: <root>/<keyspace>/<shard>/<backup>/<file>, the
// layout of Vitess's file backup storage, so a vtctld given the same
// --file-backup-storage-root lists (GetBackups) and removes (RemoveBackup) them.
type File struct {
	root string
}

// NewFile returns a file storage rooted at root, which must exist and be writable.
func NewFile(root string) (*File, error) {
	if root == "" {
		return nil, fmt.Errorf("%w: --file-backup-storage-root is not set", ErrUnusable)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("%w: --file-backup-storage-root %s: %v", ErrUnusable, root, err)
	}
	return &File{root: abs}, nil
}

// Describe implements Storage.
func (f *File) Describe() string { return "file " + f.root }

// Close implements Storage.
func (f *File) Close() error { return nil }

// Check implements Storage: the root is a directory in which a file can be created.
func (f *File) Check(context.Context) error {
	st, err := os.Stat(f.root)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: --file-backup-storage-root %s does not exist", ErrUnusable, f.root)
	case err != nil:
		return fmt.Errorf("%w: --file-backup-storage-root %s: %v", ErrUnusable, f.root, err)
	case !st.IsDir():
		return fmt.Errorf("%w: --file-backup-storage-root %s is not a directory", ErrUnusable, f.root)
	}
	probe, err := os.CreateTemp(f.root, ".tabletd-write-check-*")
	if err != nil {
		return fmt.Errorf("%w: --file-backup-storage-root %s is not writable: %v", ErrUnusable, f.root, unwrapPath(err))
	}
	name := probe.Name()
	_ = probe.Close()
	_ = os.Remove(name)
	return nil
}

// ListBackups implements Storage.
func (f *File) ListBackups(_ context.Context, dir string) ([]string, error) {
	if err := CheckDir(dir); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(filepath.Join(f.root, filepath.FromSlash(dir)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing backups in %s: %w", dir, err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return sorted(names), nil
}

func (f *File) backupPath(dir, name string) (string, error) {
	if err := CheckDir(dir); err != nil {
		return "", err
	}
	if err := CheckName("backup", name); err != nil {
		return "", err
	}
	return filepath.Join(f.root, filepath.FromSlash(dir), name), nil
}

// StartBackup implements Storage: the backup's directory is created (it must not exist).
func (f *File) StartBackup(ctx context.Context, dir, name string) (Writer, error) {
	if err := f.Check(ctx); err != nil {
		return nil, err
	}
	p, err := f.backupPath(dir, name)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", filepath.Dir(p), err)
	}
	if err := os.Mkdir(p, 0o755); err != nil {
		return nil, fmt.Errorf("creating backup directory %s: %w", p, err)
	}
	return &fileWriter{dir: p}, nil
}

// ReadFile implements Storage.
func (f *File) ReadFile(_ context.Context, dir, name, file string) (io.ReadCloser, error) {
	p, err := f.backupPath(dir, name)
	if err != nil {
		return nil, err
	}
	if err := CheckName("file", file); err != nil {
		return nil, err
	}
	r, err := os.Open(filepath.Join(p, file))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("backup %s/%s: file %s: %w", dir, name, file, ErrNotFound)
	}
	return r, err
}

// RemoveBackup implements Storage.
func (f *File) RemoveBackup(_ context.Context, dir, name string) error {
	p, err := f.backupPath(dir, name)
	if err != nil {
		return err
	}
	if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("backup %s/%s: %w", dir, name, ErrNotFound)
	}
	return os.RemoveAll(p)
}

type fileWriter struct{ dir string }

// AddFile writes to a temporary name and renames on Close, so a file is either complete or
// absent (a MANIFEST is never seen half-written).
func (w *fileWriter) AddFile(_ context.Context, file string, _ int64) (io.WriteCloser, error) {
	if err := CheckName("file", file); err != nil {
		return nil, err
	}
	final := filepath.Join(w.dir, file)
	tmp, err := os.OpenFile(final+".partial", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", final, err)
	}
	return &fileOut{f: tmp, final: final}, nil
}

func (w *fileWriter) Abort(context.Context) error { return os.RemoveAll(w.dir) }

type fileOut struct {
	f       *os.File
	final   string
	written int64 // bytes written
	flushed int64 // bytes whose writeback was started
}

// writebackChunk is how much is written before its writeback to disk is started.
const writebackChunk = 16 << 20

func (o *fileOut) Write(p []byte) (int, error) {
	n, err := o.f.Write(p)
	o.written += int64(n)
	if err != nil {
		return n, fmt.Errorf("writing %s: %w", o.final, unwrapPath(err))
	}
	if o.written-o.flushed >= writebackChunk {
		// Start writing back what is written so far without waiting for it: the fsync in
		// Close then has little left to wait for (a backup's files are synced before its
		// MANIFEST is written, and a large file's single fsync costs seconds).
		startWriteback(o.f, o.flushed, o.written-o.flushed)
		o.flushed = o.written
	}
	return n, nil
}

// Close syncs, closes and renames into place; any failure removes the partial file.
func (o *fileOut) Close() error {
	err := o.f.Sync()
	if cerr := o.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(o.f.Name(), o.final)
	}
	if err != nil {
		_ = os.Remove(o.f.Name())
		return fmt.Errorf("finishing %s: %w", o.final, unwrapPath(err))
	}
	return nil
}

// unwrapPath drops the *PathError's operation and path when the caller names the file.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
