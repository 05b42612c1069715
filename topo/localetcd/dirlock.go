package localetcd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockFileName is created in Config.Dir and locked while a Server uses it.
const lockFileName = "localetcd.lock"

// lockDir takes an exclusive, non-blocking lock on dir. etcd's own bbolt
// lock blocks forever (ignoring StartTimeout) when a second server opens a
// dir in use, in this process or another; this fails fast instead.
// Closing the returned file releases the lock.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("localetcd: open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrDirInUse, dir)
		}
		return nil, fmt.Errorf("localetcd: lock %s: %w", path, err)
	}
	return f, nil
}
