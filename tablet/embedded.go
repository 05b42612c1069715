package tablet

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/topo/localetcd"
)

// openEmbeddedTopo starts a single-node etcd inside the process when no topology address
// was given (demo mode), and registers the tablet's cell in it the way
// `vtctldclient AddCellInfo` would, so the rest of the startup is the same as in production.
func (t *Tablet) openEmbeddedTopo(ctx context.Context) error {
	if t.cfg.Topo.GlobalServerAddress != "" {
		return nil
	}
	srv, err := localetcd.Start(ctx, localetcd.Config{Dir: t.cfg.EmbeddedTopoDir, Logger: t.log})
	if err != nil {
		return err
	}
	t.etcd = srv
	t.onClose("embedded topology", func(context.Context) { srv.Close() })
	t.cfg.Topo.GlobalServerAddress = srv.Endpoint()
	cellRoot := path.Join(path.Dir(strings.TrimSuffix(t.cfg.Topo.GlobalRoot, "/")), t.cfg.Alias.Cell)
	return addCellInfo(ctx, srv.Endpoint(), t.cfg.Topo.GlobalRoot, t.cfg.Alias.Cell,
		&topodatapb.CellInfo{ServerAddress: srv.Endpoint(), Root: cellRoot})
}

// addCellInfo writes cells/<cell>/CellInfo under globalRoot. The embedded etcd picks a new
// port on every start, so the record is rewritten each time to point at it.
func addCellInfo(ctx context.Context, endpoint, globalRoot, cell string, ci *topodatapb.CellInfo) error {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		return err
	}
	defer cli.Close()
	val, err := proto.Marshal(ci)
	if err != nil {
		return err
	}
	key := path.Join(globalRoot, "cells", cell, "CellInfo")
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err = cli.Put(ctx, key, string(val)); err != nil {
		return fmt.Errorf("registering cell %s in the embedded topology: %w", cell, err)
	}
	return nil
}
