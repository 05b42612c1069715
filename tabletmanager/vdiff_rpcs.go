package tabletmanager

import (
	"context"

	"github.com/tabletd/tabletd/proto/tabletmanagerdatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

// VDiffer is the VDiff engine (vreplication/vdiff.Engine). The VReplication engine given to
// the manager provides it when the tablet runs VDiff: both open and close together, on a
// PRIMARY, as in vttablet.
type VDiffer interface {
	PerformVDiff(ctx context.Context, req *tabletmanagerdatapb.VDiffRequest) (*tabletmanagerdatapb.VDiffResponse, error)
}

// VDiff runs a VDiff action (create, show, stop, resume, delete). As in vttablet it does
// not take the action lock: a diff runs in the background for as long as it takes, and
// show must answer while it does.
func (m *Manager) VDiff(ctx context.Context, req *tabletmanagerdatapb.VDiffRequest) (*tabletmanagerdatapb.VDiffResponse, error) {
	vd, ok := m.vre.(VDiffer)
	if m.vre == nil || !ok {
		return nil, rpcerr.New(vtrpcpb.Code_UNIMPLEMENTED, "this tablet does not run VDiff")
	}
	return vd.PerformVDiff(ctx, req)
}
