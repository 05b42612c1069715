package backup

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/tabletd/tabletd/backup/storage"
)

// testData is compressible but not trivial.
func testData(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + r.IntN(8))
	}
	return b
}

func storeAndManifest(t *testing.T, st storage.Storage, data []byte, stripes, block int, comp compression) *Manifest {
	t.Helper()
	ctx := context.Background()
	w, err := st.StartBackup(ctx, "ks/0", "b")
	if err != nil {
		t.Fatal(err)
	}
	m := &Manifest{BackupName: "b", Keyspace: "ks", Shard: "0", FileName: "backup.xbstream" + compressionExt(comp.engine),
		CompressionEngine: comp.engine, SkipCompress: comp.engine == ""}
	names := stripeNames(m.FileName, stripes)
	if len(names) > 1 {
		m.NumStripes, m.StripeBlockSize = int32(len(names)), int32(block)
	}
	if m.Stripes, err = writeStriped(ctx, w, names, block, comp, bytes.NewReader(data), nil); err != nil {
		t.Fatal(err)
	}
	return m
}

func readBack(st storage.Storage, m *Manifest) ([]byte, error) {
	r, err := openStriped(context.Background(), st, "ks/0", "b", m)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

func TestStripesRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name    string
		size    int
		stripes int
		block   int
		comp    compression
	}{
		{"one file zstd", 1 << 20, 0, 102400, compression{CompressZstd, 1, 2}},
		{"parallel zstd, many frames", 9<<20 + 3, 0, 102400, compression{CompressZstd, 1, 3}},
		{"parallel zstd, two stripes", 9 << 20, 2, 102400, compression{CompressZstd, 1, 2}},
		{"parallel zstd, empty", 0, 0, 102400, compression{CompressZstd, 1, 2}},
		{"three stripes zstd", 1<<20 + 17, 3, 4096, compression{CompressZstd, 3, 1}},
		{"two stripes pgzip", 300000, 2, 1024, compression{CompressPgzip, 1, 2}},
		{"uncompressed stripes", 100000, 4, 1000, compression{}},
		{"empty stream", 0, 2, 1024, compression{CompressZstd, 1, 1}},
		{"less than a block", 10, 3, 1024, compression{CompressZstd, 1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, _ := storage.NewFile(t.TempDir())
			data := testData(tc.size)
			m := storeAndManifest(t, st, data, tc.stripes, tc.block, tc.comp)
			if want := max(tc.stripes, 1); len(m.Stripes) != want {
				t.Fatalf("%d stripes stored, want %d", len(m.Stripes), want)
			}
			got, err := readBack(st, m)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("read back %d bytes, want the %d written", len(got), len(data))
			}
		})
	}
}

func TestStripesCorruption(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(path string) error
		file   int // the stripe damaged
	}{
		{"flipped byte", func(p string) error {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b[len(b)/2] ^= 0x5a
			return os.WriteFile(p, b, 0o644)
		}, 1},
		{"truncated", func(p string) error {
			st, err := os.Stat(p)
			if err != nil {
				return err
			}
			return os.Truncate(p, st.Size()/2)
		}, 0},
		{"appended garbage", func(p string) error {
			f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.Write([]byte("junk"))
			return err
		}, 1},
		{"missing", os.Remove, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			st, _ := storage.NewFile(root)
			m := storeAndManifest(t, st, testData(500000), 2, 4096, compression{CompressZstd, 1, 1})
			if err := tc.damage(filepath.Join(root, "ks", "0", "b", m.Stripes[tc.file].Name)); err != nil {
				t.Fatal(err)
			}
			_, err := readBack(st, m)
			var ce *CorruptError
			if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) || ce.File != m.Stripes[tc.file].Name {
				t.Fatalf("read of a damaged stripe: %v; want a CorruptError naming %s", err, m.Stripes[tc.file].Name)
			}
		})
	}
}

// TestStripesVerifyRest: a reader abandoned part way (the unpacker failed first) still names
// the damaged stripe from its stored bytes, and finds nothing wrong with an intact backup.
func TestStripesVerifyRest(t *testing.T) {
	for _, tc := range []struct {
		name    string
		damage  bool
		comp    compression
		wantErr bool
	}{
		{"intact zstd", false, compression{CompressZstd, 1, 2}, false},
		{"flipped byte zstd", true, compression{CompressZstd, 1, 2}, true},
		{"flipped byte pgzip", true, compression{CompressPgzip, 1, 2}, true},
		{"flipped byte uncompressed", true, compression{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			st, _ := storage.NewFile(root)
			m := storeAndManifest(t, st, testData(2<<20), 2, 4096, tc.comp)
			if tc.damage {
				p := filepath.Join(root, "ks", "0", "b", m.Stripes[1].Name)
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				b[len(b)*3/4] ^= 0x5a
				if err := os.WriteFile(p, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			r, err := openStriped(context.Background(), st, "ks/0", "b", m)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			// pgzip decodes ahead, so its first read may meet the damage already: that
			// error must name the stripe just as verifyRest's does.
			if _, err = io.ReadFull(r, make([]byte, 64<<10)); err == nil {
				err = r.verifyRest()
			}
			var ce *CorruptError
			switch {
			case tc.wantErr && (!errors.As(err, &ce) || ce.File != m.Stripes[1].Name):
				t.Fatalf("read + verifyRest: %v; want a CorruptError naming %s", err, m.Stripes[1].Name)
			case !tc.wantErr && err != nil:
				t.Fatalf("verifyRest of an intact backup: %v", err)
			}
		})
	}
}

// failingStorage accepts limit bytes per file, then fails every write (a full disk).
type failingStorage struct {
	storage.Writer
	limit int
}

var errDiskFull = errors.New("no space left on device")

func (f failingStorage) AddFile(context.Context, string, int64) (io.WriteCloser, error) {
	return &limitedFile{left: f.limit}, nil
}

type limitedFile struct{ left int }

func (l *limitedFile) Write(p []byte) (int, error) {
	if len(p) > l.left {
		return 0, errDiskFull
	}
	l.left -= len(p)
	return len(p), nil
}

func (l *limitedFile) Close() error { return nil }

// TestStripesStorageFailure: a storage failure ends writeStriped with that error and calls
// abort, which stops the producer the reader goroutine is blocked on (an endless tool).
func TestStripesStorageFailure(t *testing.T) {
	pr, pw := io.Pipe()
	go func() {
		blk := testData(64 << 10)
		for {
			if _, err := pw.Write(blk); err != nil {
				return
			}
		}
	}()
	var aborted atomic.Bool
	_, err := writeStriped(context.Background(), failingStorage{limit: 100 << 10}, stripeNames("b", 2), 4096,
		compression{}, pr, func() { aborted.Store(true); _ = pr.CloseWithError(errors.New("tool killed")) })
	if !errors.Is(err, errDiskFull) || !aborted.Load() {
		t.Fatalf("writeStriped on a full storage: %v (aborted %v); want the storage error and the producer stopped", err, aborted.Load())
	}
}
