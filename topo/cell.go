package topo

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/tabletd/tabletd/proto/topodatapb"
)

// RegisterCell writes the global record cells/<cfg.Cell>/CellInfo, creating or overwriting
// it as `vtctldclient AddCellInfo` (then `UpdateCellInfo`) would. Open only reads it; this is
// for tooling that brings a topology up, such as `tabletctl topo-server`, whose etcd gets a
// new port on every start.
func RegisterCell(ctx context.Context, cfg Config, ci *topodatapb.CellInfo, log *zap.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg = cfg.withDefaults()
	endpoints, _ := splitEndpoints(cfg.GlobalServerAddress) // validated above
	cli, err := newClient(endpoints, cfg, log)
	if err != nil {
		return fmt.Errorf("topo: connecting to --topo-global-server-address=%s: %w", cfg.GlobalServerAddress, err)
	}
	defer cli.Close()
	data, err := marshal(ci)
	if err != nil {
		return fmt.Errorf("topo: encoding CellInfo of cell %q: %w", cfg.Cell, err)
	}
	st := &store{name: "global", cli: cli, root: cfg.GlobalRoot, timeout: cfg.RequestTimeout, alive: ctx}
	rctx, cancel := st.reqCtx(ctx)
	defer cancel()
	key := st.key(cellInfoPath(cfg.Cell))
	if _, err := cli.Put(rctx, key, string(data)); err != nil {
		return st.wrap("put", key, err)
	}
	return nil
}
