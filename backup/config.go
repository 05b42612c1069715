package backup

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Config configures backups and restores (vttablet's backup flags where they exist).
type Config struct {
	// Engine is --backup-engine-implementation: mariabackup (MariaDB), xtrabackup (MySQL; on
	// MariaDB it runs mariabackup, whose stream format is the same), or "" to pick by flavor.
	Engine string
	// ToolRootPath is --xtrabackup-root-path: where the tools are ("" = PATH).
	ToolRootPath string
	// StreamMode is --xtrabackup-stream-mode; only xbstream (XtraBackup 8 has no tar).
	StreamMode string
	// ToolUser and ToolPassword are the MySQL account the tool connects as
	// (--xtrabackup-user; tabletd defaults both to the dba user's).
	ToolUser, ToolPassword string
	// Stripes is --xtrabackup-stripes (0 or 1: one file); StripeBlockSize
	// --xtrabackup-stripe-block-size, the raw bytes dealt to each stripe in turn.
	Stripes         int
	StripeBlockSize int
	// Compress is --backup-storage-compress; CompressionEngine --compression-engine-name
	// (zstd, pgzip), CompressionLevel --compression-level.
	Compress          bool
	CompressionEngine string
	CompressionLevel  int
	// Concurrency is --backup-storage-number-blocks: goroutines compressing, shared by the stripes.
	Concurrency int
	// ProgressInterval is how often a running backup or restore reports progress.
	ProgressInterval time.Duration
	// TempDir holds the tool's defaults file and its info files ("" = os.TempDir()).
	TempDir string
}

// DefaultConfig returns the defaults: zstd level 1, one stripe, progress every 5 s.
func DefaultConfig() Config {
	return Config{StreamMode: "xbstream", StripeBlockSize: 102400, Compress: true,
		CompressionEngine: CompressZstd, CompressionLevel: 1, Concurrency: 2, ProgressInterval: 5 * time.Second}
}

// Engines lists the engine names tabletd knows.
var Engines = []string{EngineMariabackup, EngineXtrabackup}

// Validate reports the first unusable setting, naming its flag.
func (c Config) Validate() error {
	if c.Engine != "" && !slices.Contains(Engines, c.Engine) {
		if c.Engine == "builtin" || c.Engine == "mysqlshell" {
			return fmt.Errorf("--backup-engine-implementation %q is not available in tabletd: use mariabackup (MariaDB) or xtrabackup (MySQL)", c.Engine)
		}
		return fmt.Errorf("--backup-engine-implementation %q is unknown: use mariabackup or xtrabackup", c.Engine)
	}
	if c.StreamMode != "xbstream" {
		return fmt.Errorf("--xtrabackup-stream-mode %q is not supported: use xbstream (mbstream for mariabackup)", c.StreamMode)
	}
	if c.Stripes < 0 || c.Stripes > 64 {
		return fmt.Errorf("--xtrabackup-stripes %d: use 0 to 64", c.Stripes)
	}
	if c.Stripes > 1 && c.StripeBlockSize < 1024 {
		return fmt.Errorf("--xtrabackup-stripe-block-size %d: use at least 1024 bytes", c.StripeBlockSize)
	}
	if c.Compress {
		if err := checkCompression(c.CompressionEngine, c.CompressionLevel); err != nil {
			return err
		}
	}
	if c.Concurrency < 1 {
		return errors.New("--backup-storage-number-blocks must be at least 1")
	}
	if c.ProgressInterval <= 0 {
		return errors.New("backup progress interval must be > 0")
	}
	return nil
}

// compression is the compressor of each stripe: the Concurrency goroutines are shared by
// the stripes (more than the cores only adds switching).
func (c Config) compression() compression {
	if !c.Compress {
		return compression{}
	}
	return compression{engine: c.CompressionEngine, level: c.CompressionLevel, concurrency: max(1, c.Concurrency/max(1, c.Stripes))}
}
