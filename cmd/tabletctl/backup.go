package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/tabletd/tabletd/backup"
	"github.com/tabletd/tabletd/backup/storage"
	"github.com/tabletd/tabletd/proto/tabletmanagerdatapb"
	"github.com/tabletd/tabletd/proto/tabletmanagerservicepb"
)

// backupCmd takes a backup of one tablet through its TabletManager Backup RPC and prints the
// events as they stream (no vtctld needed); the exit code is the backup's outcome.
func backupCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("backup", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", "", "tablet gRPC address host:port")
	allowPrimary := fs.Bool("allow-primary", false, "allow backing up a PRIMARY")
	engine := fs.String("backup-engine", "", "engine instead of the tablet's default (mariabackup, xtrabackup)")
	timeout := fs.Duration("timeout", 0, "give up after this long (0: no limit)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *server == "" || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "usage: tabletctl backup --server host:grpc-port [--allow-primary] [--backup-engine name]")
		return 2
	}
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	conn, err := grpc.NewClient(*server, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintf(stderr, "tabletctl backup: %v\n", err)
		return 1
	}
	defer conn.Close()
	req := &tabletmanagerdatapb.BackupRequest{AllowPrimary: *allowPrimary}
	if *engine != "" {
		req.BackupEngine = engine
	}
	st, err := tabletmanagerservicepb.NewTabletManagerClient(conn).Backup(ctx, req)
	if err != nil {
		fmt.Fprintf(stderr, "tabletctl backup: %s\n", status.Convert(err).Message())
		return 1
	}
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return 0
		}
		if err != nil {
			fmt.Fprintf(stderr, "tabletctl backup: %s\n", status.Convert(err).Message())
			return 1
		}
		ev := m.GetEvent()
		fmt.Fprintf(stdout, "%s %s %s\n", time.Unix(ev.GetTime().GetSeconds(), 0).UTC().Format(time.RFC3339), ev.GetLevel(), ev.GetValue())
	}
}

// backupsCmd lists a shard's backups straight from the storage, each with what its MANIFEST
// says (or that it has none: incomplete, never restored).
func backupsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("backups", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	impl := fs.String("backup-storage-implementation", "file", "file or s3")
	root := fs.String("file-backup-storage-root", "", "file storage root")
	s3c := storage.DefaultS3Config()
	fs.StringVar(&s3c.Bucket, "s3-backup-storage-bucket", "", "S3 bucket")
	fs.StringVar(&s3c.Root, "s3-backup-storage-root", "", "S3 key prefix")
	fs.StringVar(&s3c.Endpoint, "s3-backup-aws-endpoint", "", "S3 endpoint URL")
	fs.StringVar(&s3c.Region, "s3-backup-aws-region", s3c.Region, "S3 region")
	fs.BoolVar(&s3c.ForcePathStyle, "s3-backup-force-path-style", false, "path-style S3 URLs")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 || !strings.Contains(fs.Arg(0), "/") {
		fmt.Fprintln(stderr, "usage: tabletctl backups [--backup-storage-implementation file|s3] [storage flags] <keyspace>/<shard>")
		return 2
	}
	var st storage.Storage
	var err error
	switch *impl {
	case "file":
		st, err = storage.NewFile(*root)
	case "s3":
		st, err = storage.NewS3(ctx, s3c)
	default:
		err = fmt.Errorf("--backup-storage-implementation %q: use file or s3", *impl)
	}
	if err != nil {
		fmt.Fprintf(stderr, "tabletctl backups: %v\n", err)
		return 2
	}
	defer st.Close()
	infos, err := backup.List(ctx, st, fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "tabletctl backups: %v\n", err)
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tCOMPLETE\tENGINE\tPOSITION\tSTORED BYTES\tFINISHED")
	for _, b := range infos {
		if b.Manifest == nil {
			fmt.Fprintf(tw, "%s\tno (%s)\t\t\t\t\n", b.Name, b.Problem)
			continue
		}
		m := b.Manifest
		fmt.Fprintf(tw, "%s\tyes\t%s\t%s\t%d\t%s\n", b.Name, m.BackupMethod, m.Position, b.Stored, m.FinishedTime)
	}
	_ = tw.Flush()
	return 0
}
