package backup

import (
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
)

// Compression engines, as vttablet names them in --compression-engine-name and in the
// MANIFEST's CompressionEngine.
const (
	CompressZstd  = "zstd"
	CompressPgzip = "pgzip"
)

// compressionExt is the file-name extension Vitess gives each engine's files.
func compressionExt(engine string) string {
	switch engine {
	case CompressZstd:
		return ".zst"
	case CompressPgzip, "pargzip":
		return ".gz"
	}
	return ""
}

// checkCompression reports an engine name tabletd cannot write, naming the flag.
func checkCompression(engine string, level int) error {
	switch engine {
	case CompressZstd:
		if level < 1 || level > 22 {
			return fmt.Errorf("--compression-level %d is out of zstd's range 1-22", level)
		}
	case CompressPgzip:
		if level < 1 || level > 9 {
			return fmt.Errorf("--compression-level %d is out of gzip's range 1-9", level)
		}
	default:
		return fmt.Errorf("--compression-engine-name %q is not supported: use zstd or pgzip", engine)
	}
	return nil
}

// newCompressor wraps w; concurrency is the goroutines the compressor may use.
func newCompressor(engine string, level, concurrency int, w io.Writer) (io.WriteCloser, error) {
	switch engine {
	case CompressZstd:
		return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)),
			zstd.WithEncoderConcurrency(concurrency), zstd.WithLowerEncoderMem(false))
	case CompressPgzip:
		zw, err := pgzip.NewWriterLevel(w, level)
		if err != nil {
			return nil, err
		}
		if err := zw.SetConcurrency(1<<20, max(concurrency, 1)); err != nil {
			return nil, err
		}
		return zw, nil
	}
	return nil, fmt.Errorf("unknown compression engine %q", engine)
}

// newDecompressor reads what newCompressor wrote (engine from the MANIFEST; "" = stored raw).
func newDecompressor(engine string, r io.Reader) (io.ReadCloser, error) {
	switch engine {
	case "":
		return io.NopCloser(r), nil
	case CompressZstd:
		d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(2), zstd.WithDecoderMaxMemory(1<<32))
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	case CompressPgzip, "pargzip":
		return pgzip.NewReader(r)
	}
	return nil, fmt.Errorf("the backup is compressed with %q, which tabletd cannot read (zstd, pgzip)", engine)
}
