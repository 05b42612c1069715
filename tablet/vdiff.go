package tablet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tabletd/tabletd/dbconfig"
	"github.com/tabletd/tabletd/httpserver"
	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/tabletmanagerdatapb"
	"github.com/tabletd/tabletd/proto/tabletmanagerservicepb"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/stats"
	"github.com/tabletd/tabletd/tabletmanager"
	"github.com/tabletd/tabletd/topo"
	"github.com/tabletd/tabletd/vreplication/engine"
	"github.com/tabletd/tabletd/vreplication/vdiff"
)

// newVDiff builds the VDiff engine beside the VReplication engine and returns what the
// tablet manager drives: the VReplication engine, whose Open and Close (on PRIMARY) also
// open and close VDiff, and which answers the VDiff RPC.
func (t *Tablet) newVDiff(vre *engine.Engine) (tabletmanager.VReplication, error) {
	vc := t.cfg.VDiff
	vc.Alias, vc.Keyspace, vc.Shard, vc.DBName, vc.Cell = t.cfg.Alias, t.cfg.Keyspace, t.cfg.Shard, t.cfg.dbName(), t.cfg.Alias.Cell
	vc.Conn = connConfig(t.cfg.DB, dbconfig.Filtered, "")
	vc.Caller = t.cfg.DB.Users[dbconfig.Filtered].User
	vt := &vdiffTopo{&vreplTopo{t: t}}
	vd, err := vdiff.New(vc, vdiff.Deps{Log: t.log, Clock: t.now, VRepl: vre, Topo: vt,
		TM:    vdiffTM{maxMsg: t.cfg.GRPCMaxMessageSize},
		Dial:  engine.GRPCDialer{MaxMessageSize: t.cfg.GRPCMaxMessageSize},
		Local: t.qs,
		// t.tm is set right after, before the engines can open.
		Sidecar: func() string { return t.tm.SidecarDBName() },
		Target: func() *querypb.Target {
			return &querypb.Target{Keyspace: t.cfg.Keyspace, Shard: t.cfg.Shard, TabletType: topodatapb.TabletType_PRIMARY}
		}})
	if err != nil {
		return nil, fmt.Errorf("--vdiff-*: %w", err)
	}
	t.vdiff = vd
	// Registered after the VReplication engine's closer, so it runs first.
	t.onClose("vdiff", func(context.Context) {
		vd.Close()
		vt.close()
	})
	if t.obs != nil {
		if err := publishVDiffVars(t.obs.vars, vd); err != nil {
			return nil, err
		}
	}
	return &vreplWithVDiff{Engine: vre, vd: vd}, nil
}

// vreplWithVDiff is the VReplication engine with VDiff beside it, as the tablet manager sees
// them: VDiff is open exactly while VReplication is (vttablet opens both on PRIMARY).
type vreplWithVDiff struct {
	*engine.Engine
	vd *vdiff.Engine
}

func (v *vreplWithVDiff) Open() {
	v.Engine.Open()
	v.vd.Open()
}

// Close stops the diffs first: a diff restarts the workflow's streams when it ends.
func (v *vreplWithVDiff) Close() {
	v.vd.Close()
	v.Engine.Close()
}

// PerformVDiff implements tabletmanager.VDiffer.
func (v *vreplWithVDiff) PerformVDiff(ctx context.Context, req *tabletmanagerdatapb.VDiffRequest) (*tabletmanagerdatapb.VDiffResponse, error) {
	return v.vd.Perform(ctx, req)
}

// publishVDiffVars publishes vttablet's VDiff variables (tabletmanager/vdiff/stats.go).
func publishVDiffVars(set *stats.Set, vd *vdiff.Engine) error {
	return errors.Join(
		set.Publish("VDiffCount", "Number of current vdiffs", stats.IntFunc{F: vd.Count}),
		set.Publish("VDiffErrorCountTotal", "Number of errors encountered across all vdiff actions", stats.IntFunc{F: vd.ErrorCount, Counter: true}),
		set.Publish("VDiffRestartedTableDiffsCount", "Table diffs restarted due to --max-diff-duration counts by table",
			stats.CountsFunc{Labels: []string{"table_name"}, F: vd.RestartedTableDiffs}),
		set.Publish("VDiffRowsComparedTotal", "Number of rows compared across all vdiffs", stats.IntFunc{F: vd.RowsComparedTotal, Counter: true}),
		set.Publish("VDiffRowsCompared", "Live number of rows compared per vdiff by table",
			stats.CountsFunc{Labels: []string{"workflow", "uuid", "table"}, F: vd.RowsCompared}),
		set.Publish("VDiffErrors", "Count of specific errors seen during the lifetime of a vdiff",
			stats.CountsFunc{Labels: []string{"workflow", "uuid", "error"}, F: vd.Errors, Counter: true}),
		set.Publish("VDiffPhaseTimings", "VDiff phase timings",
			stats.CountsFunc{Labels: []string{"workflow", "uuid", "table", "phase"}, F: vd.PhaseTimings}),
	)
}

// vdiffStatus is the status page's VDiff section.
func (t *Tablet) vdiffStatus() []httpserver.VDiffRun {
	if t.vdiff == nil {
		return nil
	}
	var out []httpserver.VDiffRun
	for _, d := range t.vdiff.Diffs() {
		out = append(out, httpserver.VDiffRun{UUID: d.UUID, Workflow: d.Workflow, Table: d.Table, Phase: d.Phase,
			Started: d.Started, RowsCompared: d.RowsCompared, Mismatches: d.Mismatches})
	}
	return out
}

// vdiffTopo is what VDiff reads from the topology, on its own connection opened on first
// use: source tablets of this tablet's cell (the VReplication engine's lister), and the named
// workflow lock.
type vdiffTopo struct {
	*vreplTopo
}

func (v *vdiffTopo) CellNames(context.Context) ([]string, error) {
	return []string{v.t.cfg.Alias.Cell}, nil
}

// LockName implements vdiff.Topo with Vitess's named lock.
func (v *vdiffTopo) LockName(ctx context.Context, name, action string) (func(), error) {
	ts, err := v.server(ctx)
	if err != nil {
		return nil, err
	}
	l, err := ts.LockName(ctx, name, action)
	if err != nil {
		return nil, err
	}
	return func() { _ = l.Unlock(context.Background()) }, nil
}

// vdiffTM calls other tablets' TabletManager API over gRPC (unencrypted, as the
// VReplication engine's streams).
type vdiffTM struct{ maxMsg int }

// WaitForPosition implements vdiff.TabletManager.
func (v vdiffTM) WaitForPosition(ctx context.Context, tablet *topodatapb.Tablet, pos string) error {
	port, ok := tablet.GetPortMap()["grpc"]
	if tablet.GetHostname() == "" || !ok {
		return fmt.Errorf("tablet %s has no gRPC address in the topology", topo.AliasString(tablet.GetAlias()))
	}
	size := v.maxMsg
	if size <= 0 {
		size = 16 << 20
	}
	cc, err := grpc.NewClient(net.JoinHostPort(tablet.Hostname, strconv.Itoa(int(port))), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(size)))
	if err != nil {
		return err
	}
	defer cc.Close()
	_, err = tabletmanagerservicepb.NewTabletManagerClient(cc).WaitForPosition(ctx, &tabletmanagerdatapb.WaitForPositionRequest{Position: pos})
	return err
}
