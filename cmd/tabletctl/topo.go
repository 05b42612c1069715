package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/topo"
	"github.com/tabletd/tabletd/topo/localetcd"
)

// topoServer runs a single-node etcd for a demo or a laptop cluster, with the cell already
// registered the way `vtctldclient AddCellInfo` would, until interrupted. It lives here and
// not in tabletd so that the daemon carries no etcd server (10 MB of binary and ~11 MiB of
// RSS it never uses in production, where the topology is the operator's etcd).
func topoServer(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("topo-server", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "etcd data directory (created if missing); required")
	cell := fs.String("cell", "zone1", "the cell to register (cells/<cell>/CellInfo under --root)")
	root := fs.String("root", "/vitess/global", "the global topology root (tabletd's --topo-global-root)")
	addr := fs.String("client-addr", localetcd.DefaultClientAddr, "host:port etcd listens on for clients (port 0 picks a free one)")
	endpointFile := fs.String("endpoint-file", "", "also write the client endpoint (host:port) to this file once etcd serves")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 2
	}
	cellErr := topo.ValidateCellName(*cell)
	switch {
	case *dir == "":
		fmt.Fprintln(stderr, "tabletctl topo-server: --dir is required (where etcd keeps its data)")
		return 2
	case cellErr != nil:
		fmt.Fprintf(stderr, "tabletctl topo-server: --cell: %v\n", cellErr)
		return 2
	case !strings.HasPrefix(*root, "/") || path.Clean(*root) == "/":
		fmt.Fprintf(stderr, "tabletctl topo-server: --root %q must be an absolute path below /, e.g. /vitess/global\n", *root)
		return 2
	}
	cfg := localetcd.DefaultConfig(*dir)
	cfg.ClientAddr = *addr
	srv, err := localetcd.Start(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "tabletctl topo-server: %v\n", err)
		return 1
	}
	defer srv.Close()
	endpoint := srv.Endpoint()
	globalRoot := path.Clean(*root)
	ci := &topodatapb.CellInfo{ServerAddress: endpoint, Root: path.Join(path.Dir(globalRoot), *cell)}
	tcfg := topo.Config{GlobalServerAddress: endpoint, GlobalRoot: globalRoot, Cell: *cell}
	if err := topo.RegisterCell(ctx, tcfg, ci, zap.NewNop()); err != nil {
		fmt.Fprintf(stderr, "tabletctl topo-server: %v\n", err)
		return 1
	}
	if *endpointFile != "" {
		if err := writeFileAtomic(*endpointFile, endpoint+"\n"); err != nil {
			fmt.Fprintf(stderr, "tabletctl topo-server: --endpoint-file: %v\n", err)
			return 1
		}
	}
	fmt.Fprintf(stdout, "etcd serving on %s; cell %s registered under %s (tabletd --topo-global-server-address %s --topo-global-root %s)\n",
		endpoint, *cell, globalRoot, endpoint, globalRoot)
	<-ctx.Done()
	return 0
}

// writeFileAtomic writes through a temporary file and a rename, so a script polling for the
// file never reads half an address.
func writeFileAtomic(name, content string) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}
