package grpcserver

import (
	"context"

	"github.com/tabletd/tabletd/proto/tabletmanagerdatapb"
)

// VDiffRPCs is the part of the tablet manager behind TabletManager VDiff: the create, show,
// stop, resume and delete actions vtctld's VDiff commands send to a workflow's target
// primaries.
type VDiffRPCs interface {
	VDiff(ctx context.Context, req *tabletmanagerdatapb.VDiffRequest) (*tabletmanagerdatapb.VDiffResponse, error)
}

func (s *tabletManagerServer) VDiff(ctx context.Context, r *tabletmanagerdatapb.VDiffRequest) (*tabletmanagerdatapb.VDiffResponse, error) {
	return s.tm.VDiff(ctx, r)
}
