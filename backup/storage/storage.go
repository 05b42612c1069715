// Package storage provides the places backups are kept: a directory tree (file) and S3-compatible object stores, both in Vitess's layout <root>/<keyspace>/<shard>/<backup>/<file>.
package storage

import (
	"context"
	"errors"
	"io"
	"sort"
	"strings"
)

// Sentinel errors; storage errors wrap one of these (or the underlying I/O error).
var (
	// ErrNotFound: the backup or file does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInvalidName: a directory, backup or file name that would leave its parent ("..",
	// "/", empty), so it is refused before anything is touched.
	ErrInvalidName = errors.New("invalid name")
	// ErrUnusable: the storage cannot be used at all (root missing or not writable,
	// endpoint refusing, bucket missing); the error names which.
	ErrUnusable = errors.New("backup storage unusable")
)

// Storage keeps backups. dir is "<keyspace>/<shard>", name the backup's directory name
// (Vitess's "<YYYY-MM-DD.HHMMSS>.<cell>-<uid>"). Implementations are safe for concurrent use.
type Storage interface {
	// ListBackups returns the backups under dir in name order (which is time order), complete
	// or not: only a backup's MANIFEST says it is complete.
	ListBackups(ctx context.Context, dir string) ([]string, error)
	// StartBackup creates backup name under dir; nothing is visible as complete until the
	// caller writes its MANIFEST.
	StartBackup(ctx context.Context, dir, name string) (Writer, error)
	// ReadFile opens one file of a backup; ErrNotFound when it is absent.
	ReadFile(ctx context.Context, dir, name, file string) (io.ReadCloser, error)
	// RemoveBackup deletes a backup and all its files.
	RemoveBackup(ctx context.Context, dir, name string) error
	// Check proves the storage is usable now (root writable, bucket reachable): ErrUnusable
	// with the reason otherwise.
	Check(ctx context.Context) error
	// Describe names the storage for logs and status ("file /backups", "s3 bucket/root").
	Describe() string
	Close() error
}

// Writer adds files to one backup being written.
type Writer interface {
	// AddFile creates file; what is written becomes visible when the returned writer is
	// closed without error. sizeHint (-1: unknown) lets object stores pick part sizes.
	AddFile(ctx context.Context, file string, sizeHint int64) (io.WriteCloser, error)
	// Abort removes what was written; the backup must not be used afterwards.
	Abort(ctx context.Context) error
}

// CheckName refuses names that would escape their parent directory.
func CheckName(kind, s string) error {
	if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\\\x00") {
		return &NameError{Kind: kind, Name: s}
	}
	return nil
}

// CheckDir checks a "<keyspace>/<shard>" directory: every element a valid name.
func CheckDir(dir string) error {
	for _, p := range strings.Split(dir, "/") {
		if err := CheckName("directory", p); err != nil {
			return &NameError{Kind: "directory", Name: dir}
		}
	}
	return nil
}

// NameError is ErrInvalidName with the offending name.
type NameError struct{ Kind, Name string }

func (e *NameError) Error() string {
	return "invalid backup " + e.Kind + " name " + quote(e.Name) + ": must be non-empty and contain no '/', '\\' or '..'"
}

func (e *NameError) Unwrap() error { return ErrInvalidName }

func quote(s string) string { return "\"" + s + "\"" }

func sorted(s []string) []string {
	sort.Strings(s)
	return s
}
