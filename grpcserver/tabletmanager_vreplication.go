package grpcserver

import (
	"context"

	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/tabletmanagerdatapb"
)

// VReplicationRPCs is the part of the tablet manager behind the TabletManager VReplication
// RPCs: the workflow CRUD calls vtctld's MoveTables and Reshard use, VReplicationExec,
// VReplicationWaitForPos and ValidateVReplicationPermissions. The adapters live in this
// file; as vttablet, ReadVReplicationWorkflow without streams answers an empty message.
type VReplicationRPCs interface {
	CreateVReplicationWorkflow(ctx context.Context, req *tabletmanagerdatapb.CreateVReplicationWorkflowRequest) (*tabletmanagerdatapb.CreateVReplicationWorkflowResponse, error)
	DeleteVReplicationWorkflow(ctx context.Context, req *tabletmanagerdatapb.DeleteVReplicationWorkflowRequest) (*tabletmanagerdatapb.DeleteVReplicationWorkflowResponse, error)
	HasVReplicationWorkflows(ctx context.Context, req *tabletmanagerdatapb.HasVReplicationWorkflowsRequest) (*tabletmanagerdatapb.HasVReplicationWorkflowsResponse, error)
	ReadVReplicationWorkflow(ctx context.Context, req *tabletmanagerdatapb.ReadVReplicationWorkflowRequest) (*tabletmanagerdatapb.ReadVReplicationWorkflowResponse, error)
	ReadVReplicationWorkflows(ctx context.Context, req *tabletmanagerdatapb.ReadVReplicationWorkflowsRequest) (*tabletmanagerdatapb.ReadVReplicationWorkflowsResponse, error)
	UpdateVReplicationWorkflow(ctx context.Context, req *tabletmanagerdatapb.UpdateVReplicationWorkflowRequest) (*tabletmanagerdatapb.UpdateVReplicationWorkflowResponse, error)
	UpdateVReplicationWorkflows(ctx context.Context, req *tabletmanagerdatapb.UpdateVReplicationWorkflowsRequest) (*tabletmanagerdatapb.UpdateVReplicationWorkflowsResponse, error)
	ValidateVReplicationPermissions(ctx context.Context) (*tabletmanagerdatapb.ValidateVReplicationPermissionsResponse, error)
	VReplicationExec(ctx context.Context, query string) (*querypb.QueryResult, error)
	VReplicationWaitForPos(ctx context.Context, id int32, pos string) error
}

func (s *tabletManagerServer) CreateVReplicationWorkflow(ctx context.Context, r *tabletmanagerdatapb.CreateVReplicationWorkflowRequest) (*tabletmanagerdatapb.CreateVReplicationWorkflowResponse, error) {
	return s.tm.CreateVReplicationWorkflow(ctx, r)
}

func (s *tabletManagerServer) DeleteVReplicationWorkflow(ctx context.Context, r *tabletmanagerdatapb.DeleteVReplicationWorkflowRequest) (*tabletmanagerdatapb.DeleteVReplicationWorkflowResponse, error) {
	return s.tm.DeleteVReplicationWorkflow(ctx, r)
}

func (s *tabletManagerServer) HasVReplicationWorkflows(ctx context.Context, r *tabletmanagerdatapb.HasVReplicationWorkflowsRequest) (*tabletmanagerdatapb.HasVReplicationWorkflowsResponse, error) {
	return s.tm.HasVReplicationWorkflows(ctx, r)
}

func (s *tabletManagerServer) ReadVReplicationWorkflow(ctx context.Context, r *tabletmanagerdatapb.ReadVReplicationWorkflowRequest) (*tabletmanagerdatapb.ReadVReplicationWorkflowResponse, error) {
	resp, err := s.tm.ReadVReplicationWorkflow(ctx, r)
	if err != nil {
		return nil, err
	}
	if resp == nil {
		resp = &tabletmanagerdatapb.ReadVReplicationWorkflowResponse{} // no streams: vtctld checks len(streams)
	}
	return resp, nil
}

func (s *tabletManagerServer) ReadVReplicationWorkflows(ctx context.Context, r *tabletmanagerdatapb.ReadVReplicationWorkflowsRequest) (*tabletmanagerdatapb.ReadVReplicationWorkflowsResponse, error) {
	return s.tm.ReadVReplicationWorkflows(ctx, r)
}

func (s *tabletManagerServer) UpdateVReplicationWorkflow(ctx context.Context, r *tabletmanagerdatapb.UpdateVReplicationWorkflowRequest) (*tabletmanagerdatapb.UpdateVReplicationWorkflowResponse, error) {
	return s.tm.UpdateVReplicationWorkflow(ctx, r)
}

func (s *tabletManagerServer) UpdateVReplicationWorkflows(ctx context.Context, r *tabletmanagerdatapb.UpdateVReplicationWorkflowsRequest) (*tabletmanagerdatapb.UpdateVReplicationWorkflowsResponse, error) {
	return s.tm.UpdateVReplicationWorkflows(ctx, r)
}

func (s *tabletManagerServer) ValidateVReplicationPermissions(ctx context.Context, _ *tabletmanagerdatapb.ValidateVReplicationPermissionsRequest) (*tabletmanagerdatapb.ValidateVReplicationPermissionsResponse, error) {
	return s.tm.ValidateVReplicationPermissions(ctx)
}

func (s *tabletManagerServer) VReplicationExec(ctx context.Context, r *tabletmanagerdatapb.VReplicationExecRequest) (*tabletmanagerdatapb.VReplicationExecResponse, error) {
	qr, err := s.tm.VReplicationExec(ctx, r.Query)
	if err != nil {
		return nil, err
	}
	return &tabletmanagerdatapb.VReplicationExecResponse{Result: qr}, nil
}

func (s *tabletManagerServer) VReplicationWaitForPos(ctx context.Context, r *tabletmanagerdatapb.VReplicationWaitForPosRequest) (*tabletmanagerdatapb.VReplicationWaitForPosResponse, error) {
	if err := s.tm.VReplicationWaitForPos(ctx, r.Id, r.Position); err != nil {
		return nil, err
	}
	return &tabletmanagerdatapb.VReplicationWaitForPosResponse{}, nil
}
