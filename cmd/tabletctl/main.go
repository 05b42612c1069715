// Command tabletctl talks to a running tabletd (or vttablet) over its gRPC API.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/queryservicepb"
)

const usage = `usage: tabletctl <command> [flags]

commands:
  health   follow the tablet's StreamHealth and print each record as JSON
  query    run one statement through the tablet's queryservice and print the result
  vreplication  list the VReplication streams the tablet applies (state, lag, rows copied)
  backup   take a backup of the tablet (Backup RPC) and print its events
  backups  list a shard's backups from the backup storage, with their MANIFESTs
  probe    GET HTTP URLs, exit 0 only when each answers 200 (the container health check)
  topo-server  run a single-node etcd with the cell registered, for a demo (until Ctrl-C)
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "health":
		return health(ctx, args[1:], stdout, stderr)
	case "query":
		return query(ctx, args[1:], stdout, stderr)
	case "vreplication":
		return vreplication(ctx, args[1:], stdout, stderr)
	case "backup":
		return backupCmd(ctx, args[1:], stdout, stderr)
	case "backups":
		return backupsCmd(ctx, args[1:], stdout, stderr)
	case "probe":
		return probe(ctx, args[1:], stdout, stderr)
	case "topo-server":
		return topoServer(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "tabletctl: unknown command %q\n%s", args[0], usage)
	return 2
}

func health(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("health", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", "", "tablet gRPC address host:port")
	count := fs.Int("count", 0, "stop after this many records (0 = follow until interrupted)")
	timeout := fs.Duration("timeout", 0, "give up after this long (0 = no limit)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *server == "" {
		fmt.Fprintln(stderr, "tabletctl health: --server is required (the tablet's host:grpc-port)")
		return 2
	}
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	conn, err := grpc.NewClient(*server, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintf(stderr, "tabletctl health: %v\n", err)
		return 1
	}
	defer conn.Close()
	stream, err := queryservicepb.NewQueryClient(conn).StreamHealth(ctx, &querypb.StreamHealthRequest{})
	if err != nil {
		fmt.Fprintf(stderr, "tabletctl health: %v\n", err)
		return 1
	}
	for n := 0; *count == 0 || n < *count; n++ {
		r, err := stream.Recv()
		if err != nil {
			if ctx.Err() != nil && n > 0 {
				return 0
			}
			fmt.Fprintf(stderr, "tabletctl health: %s\n", status.Convert(err).Message())
			return 1
		}
		line, _ := protojson.MarshalOptions{UseProtoNames: true}.Marshal(r)
		fmt.Fprintf(stdout, "%s %s\n", time.Now().UTC().Format(time.RFC3339), line)
	}
	return 0
}
