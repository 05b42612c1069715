package tablet

import (
	"context"
	"fmt"
	"sync"

	"github.com/tabletd/tabletd/dbconfig"
	"github.com/tabletd/tabletd/proto/vschemapb"
	"github.com/tabletd/tabletd/topo"
	"github.com/tabletd/tabletd/vreplication/vstreamer"
)

// openVStreamer builds the source side of VReplication. It reads through the query service
// (admission, table ACLs, snapshot readers as the filtered user), dumps the binlog as the
// filtered user, and reads the cell's SrvVSchema (vindexes of key range filters) from its own
// topology connection, opened on first use.
func (t *Tablet) openVStreamer(context.Context) error {
	vc := t.cfg.VStream
	vc.Keyspace, vc.Shard, vc.DBName = t.cfg.Keyspace, t.cfg.Shard, t.cfg.dbName()
	vc.DB = connConfig(t.cfg.DB, dbconfig.Filtered, "")
	vt := &vstreamTopo{t: t}
	eng, err := vstreamer.New(vc, vstreamer.Deps{Log: t.log, Registry: t.reg, Clock: t.now, Source: t.qs,
		VSchema: vt.srvVSchema,
		// t.tm exists before the gRPC server, hence before any stream.
		Sidecar: func() string {
			if t.tm == nil {
				return ""
			}
			return t.tm.SidecarDBName()
		}})
	if err != nil {
		return fmt.Errorf("--vstream-*: %w", err)
	}
	t.vs = eng
	t.onClose("vstreamer", func(context.Context) {
		eng.Close()
		vt.close()
	})
	return nil
}

// vstreamTopo reads the cell's SrvVSchema on a topology connection opened on first use.
type vstreamTopo struct {
	t  *Tablet
	mu sync.Mutex
	ts *topo.Server
}

func (v *vstreamTopo) srvVSchema(ctx context.Context) (*vschemapb.SrvVSchema, error) {
	v.mu.Lock()
	if v.ts == nil {
		ts, err := topo.Open(ctx, v.t.cfg.Topo, v.t.log)
		if err != nil {
			v.mu.Unlock()
			return nil, err
		}
		v.ts = ts
	}
	ts := v.ts
	v.mu.Unlock()
	return ts.GetSrvVSchema(ctx)
}

func (v *vstreamTopo) close() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ts != nil {
		v.ts.Close()
		v.ts = nil
	}
}
