package main

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/tabletd/tabletd/backup"
	"github.com/tabletd/tabletd/tablet"
)

// backupOptions are the backup, restore and mysqld-control flags, as vttablet names them.
type backupOptions struct {
	c           tablet.BackupConfig
	restoreTS   string
	minPartSize int64
}

func (o *backupOptions) bind(fs *pflag.FlagSet) {
	o.c = tablet.DefaultBackupConfig()
	c, e := &o.c, &o.c.Engine
	fs.StringVar(&c.StorageImplementation, "backup-storage-implementation", "", "backup storage: file or s3 (none: Backup and restores refuse)")
	fs.StringVar(&c.FileRoot, "file-backup-storage-root", "", "root directory of file backup storage (<root>/<keyspace>/<shard>/<backup>/)")
	fs.StringVar(&c.S3.Bucket, "s3-backup-storage-bucket", "", "S3 bucket of s3 backup storage")
	fs.StringVar(&c.S3.Root, "s3-backup-storage-root", "", "key prefix in the bucket")
	fs.StringVar(&c.S3.Endpoint, "s3-backup-aws-endpoint", "", "S3 endpoint URL (S3-compatible servers; empty: AWS)")
	fs.StringVar(&c.S3.Region, "s3-backup-aws-region", c.S3.Region, "S3 region")
	fs.BoolVar(&c.S3.ForcePathStyle, "s3-backup-force-path-style", false, "path-style S3 URLs (http://endpoint/bucket/key), as most S3-compatible servers need")
	fs.Int64Var(&o.minPartSize, "s3-backup-aws-min-partsize", c.S3.PartSize, "multipart upload part size in bytes (at least 5 MiB)")
	fs.StringVar(&e.Engine, "backup-engine-implementation", "", "backup engine: mariabackup (MariaDB) or xtrabackup (MySQL; on MariaDB it runs mariabackup); empty: by the server's flavor")
	fs.StringVar(&e.ToolRootPath, "xtrabackup-root-path", "", "directory holding mariabackup/mbstream or xtrabackup/xbstream (empty: PATH)")
	fs.StringVar(&e.StreamMode, "xtrabackup-stream-mode", e.StreamMode, "backup stream format: xbstream (mbstream for mariabackup)")
	fs.StringVar(&e.ToolUser, "xtrabackup-user", "", "MySQL user the backup tool connects as (default: the dba user, with its password)")
	fs.IntVar(&e.Stripes, "xtrabackup-stripes", 0, "store the stream in this many files, compressed and uploaded in parallel (0: one file)")
	fs.IntVar(&e.StripeBlockSize, "xtrabackup-stripe-block-size", e.StripeBlockSize, "bytes dealt to each stripe in turn")
	fs.BoolVar(&e.Compress, "backup-storage-compress", true, "compress backups")
	fs.StringVar(&e.CompressionEngine, "compression-engine-name", e.CompressionEngine, "compression: zstd or pgzip")
	fs.IntVar(&e.CompressionLevel, "compression-level", e.CompressionLevel, "compression level (zstd 1-22, pgzip 1-9)")
	fs.IntVar(&e.Concurrency, "backup-storage-number-blocks", e.Concurrency, "goroutines compressing the backup, shared by its stripes")
	fs.DurationVar(&e.ProgressInterval, "backup-progress-interval", e.ProgressInterval, "how often a running backup or restore reports progress (tabletd's own flag)")
	fs.StringVar(&c.MyCnfFile, "mycnf-file", "", "the server's my.cnf: tabletd may stop and start mysqld for restores (datadir, socket, port from it)")
	fs.StringVar(&c.MysqlctlSocket, "mysqlctl-socket", "", "a mysqlctld's socket (accepted; not implemented yet: use --mycnf-file)")
	fs.BoolVar(&c.RestoreOnStart, "restore-from-backup", false, "at start, restore the newest backup when the database is absent or a restore was interrupted")
	fs.StringVar(&o.restoreTS, "restore-from-backup-ts", "", "restore the newest backup taken at or before YYYY-MM-DD.HHMMSS (UTC)")
	fs.DurationVar(&c.WaitForBackup, "wait-for-backup-interval", 0, "with --restore-from-backup and no backup yet: look again this often (0: start empty)")
	fs.StringSliceVar(&c.AllowedEngines, "restore-from-backup-allowed-engines", nil, "restore only backups taken with these engines")
	fs.DurationVar(&c.CatchUpTimeout, "restore-catch-up-timeout", c.CatchUpTimeout, "after a restore, wait at most this long to catch up with the primary (tabletd's own flag)")
}

func (o *backupOptions) apply(c *tablet.Config) error {
	c.Backup = o.c
	c.Backup.S3.PartSize = o.minPartSize
	if o.restoreTS != "" {
		t, err := backup.ParseBackupTime(o.restoreTS)
		if err != nil {
			return err
		}
		c.Backup.RestoreTime = t
	}
	if err := c.Backup.Validate(); err != nil {
		return fmt.Errorf("%w", err)
	}
	return nil
}
