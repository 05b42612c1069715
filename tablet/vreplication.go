package tablet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/tabletd/tabletd/dbconfig"
	"github.com/tabletd/tabletd/httpserver"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/topo"
	"github.com/tabletd/tabletd/vreplication/engine"
)

// newVReplication builds the target-side VReplication engine (closed; the tablet manager
// opens it while the tablet is PRIMARY). It reads source tablets from its own topology
// connection, opened on first use.
func (t *Tablet) newVReplication() (*engine.Engine, error) {
	vc := t.cfg.VReplication
	vc.DBName, vc.Keyspace, vc.Shard, vc.Cell = t.cfg.dbName(), t.cfg.Keyspace, t.cfg.Shard, t.cfg.Alias.Cell
	vc.Filtered = connConfig(t.cfg.DB, dbconfig.Filtered, "")
	vc.Dba = connConfig(t.cfg.DB, dbconfig.Dba, "")
	vt := &vreplTopo{t: t}
	eng, err := engine.New(vc, engine.Deps{Log: t.log, Registry: t.reg, Clock: t.now, Topo: vt,
		Dial: engine.GRPCDialer{MaxMessageSize: t.cfg.GRPCMaxMessageSize},
		// t.tm is set right after, before the engine can open.
		Sidecar: func() string { return t.tm.SidecarDBName() }})
	if err != nil {
		return nil, fmt.Errorf("--vreplication-*: %w", err)
	}
	t.vre = eng
	t.onClose("vreplication", func(context.Context) {
		eng.Close()
		vt.close()
	})
	return eng, nil
}

// vreplTopo lists a shard's tablets for the tablet pickers of the VReplication engine and of
// VDiff, on its own topology connection opened on first use.
type vreplTopo struct {
	t  *Tablet
	mu sync.Mutex
	ts *topo.Server
}

func (v *vreplTopo) server(ctx context.Context) (*topo.Server, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ts != nil {
		return v.ts, nil
	}
	ts, err := topo.Open(ctx, v.t.cfg.Topo, v.t.log)
	if err != nil {
		return nil, err
	}
	v.ts = ts
	return ts, nil
}

func (v *vreplTopo) close() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ts != nil {
		v.ts.Close()
		v.ts = nil
	}
}

// ShardTablets implements engine.Topo. tabletd's topology client reads its own cell only.
func (v *vreplTopo) ShardTablets(ctx context.Context, cell, keyspace, shard string) ([]*topodatapb.Tablet, error) {
	if cell != v.t.cfg.Alias.Cell {
		return nil, fmt.Errorf("source tablets are read from this tablet's cell %s only, not %s", v.t.cfg.Alias.Cell, cell)
	}
	ts, err := v.server(ctx)
	if err != nil {
		return nil, err
	}
	sr, err := ts.GetShardReplication(ctx, keyspace, shard)
	if errors.Is(err, topo.ErrNoNode) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*topodatapb.Tablet
	for _, n := range sr.GetNodes() {
		rec, _, err := ts.GetTablet(ctx, n.TabletAlias)
		if errors.Is(err, topo.ErrNoNode) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

// vreplicationStatus is the status page's VReplication section.
func (t *Tablet) vreplicationStatus() []httpserver.VReplicationStream {
	if t.vre == nil {
		return nil
	}
	var out []httpserver.VReplicationStream
	for _, s := range t.vre.Streams() {
		lag := "unknown"
		if s.LagKnown {
			lag = s.Lag.Round(time.Millisecond).String()
		}
		out = append(out, httpserver.VReplicationStream{ID: s.ID, Workflow: s.Workflow,
			Source: s.SourceKeyspace + "/" + s.SourceShard, SourceTablet: s.SourceTablet,
			State: s.State, Phase: s.Phase, Message: s.Message, Position: s.Position, Lag: lag,
			RowsCopied: s.RowsCopied, RowsPerSecond: s.RowsPerSecond, Copying: strings.Join(s.CopyingTables, ","),
			Transactions: s.TransactionsApplied, LastError: s.LastError, LastErrorAt: s.LastErrorAt})
	}
	return out
}

// serveVReplication is /debug/vreplication: the streams as a table, or as JSON with
// ?format=json.
func (t *Tablet) serveVReplication(w http.ResponseWriter, r *http.Request) {
	var streams []engine.StreamStatus
	if t.vre != nil {
		streams = t.vre.Streams()
	}
	if r.URL.Query().Get("format") == "json" {
		w.Header().Set("Content-Type", "application/json")
		if streams == nil {
			streams = []engine.StreamStatus{}
		}
		_ = json.NewEncoder(w).Encode(streams)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	open := t.vre != nil && t.vre.IsOpen()
	fmt.Fprintf(w, "VReplication engine: %s\n\n", map[bool]string{true: "open (PRIMARY)", false: "closed (not a PRIMARY)"}[open])
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tWORKFLOW\tSOURCE\tTABLET\tSTATE\tPHASE\tLAG\tROWS COPIED\tROWS/S\tTXNS\tPOSITION\tMESSAGE\tLAST ERROR")
	for _, s := range streams {
		lag := "unknown"
		if s.LagKnown {
			lag = s.Lag.Round(time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%d\t%s\t%s/%s\t%s\t%s\t%s\t%s\t%d\t%.0f\t%d\t%s\t%s\t%s\n", s.ID, s.Workflow, s.SourceKeyspace, s.SourceShard,
			s.SourceTablet, s.State, s.Phase, lag, s.RowsCopied, s.RowsPerSecond, s.TransactionsApplied, s.Position, s.Message, s.LastError)
	}
	_ = tw.Flush()
}
