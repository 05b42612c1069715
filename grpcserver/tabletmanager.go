package grpcserver

import (
	"context"

	"github.com/tabletd/tabletd/proto/tabletmanagerdatapb"
	"github.com/tabletd/tabletd/proto/tabletmanagerservicepb"
	"github.com/tabletd/tabletd/proto/topodatapb"
)

// TabletManager is the part of the tablet manager the gRPC API exposes.
type TabletManager interface {
	SchemaRPCs
	ReplicationRPCs
	BackupRPCs
	VReplicationRPCs
	VDiffRPCs
	Ping(payload string) string
	ChangeType(ctx context.Context, tt topodatapb.TabletType, semiSync bool) error
	RefreshState(ctx context.Context) error
	RunHealthCheck()
	SetReadOnly(ctx context.Context, on bool) error
}

type tabletManagerServer struct {
	tabletmanagerservicepb.UnimplementedTabletManagerServer
	tm TabletManager
}

// NewTabletManagerServer returns the tabletmanagerservice.TabletManager implementation for tm.
func NewTabletManagerServer(tm TabletManager) tabletmanagerservicepb.TabletManagerServer {
	return &tabletManagerServer{tm: tm}
}

func (s *tabletManagerServer) Ping(_ context.Context, r *tabletmanagerdatapb.PingRequest) (*tabletmanagerdatapb.PingResponse, error) {
	return &tabletmanagerdatapb.PingResponse{Payload: s.tm.Ping(r.Payload)}, nil
}

func (s *tabletManagerServer) ChangeType(ctx context.Context, r *tabletmanagerdatapb.ChangeTypeRequest) (*tabletmanagerdatapb.ChangeTypeResponse, error) {
	if err := s.tm.ChangeType(ctx, r.TabletType, r.SemiSync); err != nil {
		return nil, err
	}
	return &tabletmanagerdatapb.ChangeTypeResponse{}, nil
}

func (s *tabletManagerServer) RefreshState(ctx context.Context, _ *tabletmanagerdatapb.RefreshStateRequest) (*tabletmanagerdatapb.RefreshStateResponse, error) {
	if err := s.tm.RefreshState(ctx); err != nil {
		return nil, err
	}
	return &tabletmanagerdatapb.RefreshStateResponse{}, nil
}

func (s *tabletManagerServer) RunHealthCheck(context.Context, *tabletmanagerdatapb.RunHealthCheckRequest) (*tabletmanagerdatapb.RunHealthCheckResponse, error) {
	s.tm.RunHealthCheck()
	return &tabletmanagerdatapb.RunHealthCheckResponse{}, nil
}

func (s *tabletManagerServer) SetReadOnly(ctx context.Context, _ *tabletmanagerdatapb.SetReadOnlyRequest) (*tabletmanagerdatapb.SetReadOnlyResponse, error) {
	if err := s.tm.SetReadOnly(ctx, true); err != nil {
		return nil, err
	}
	return &tabletmanagerdatapb.SetReadOnlyResponse{}, nil
}

func (s *tabletManagerServer) SetReadWrite(ctx context.Context, _ *tabletmanagerdatapb.SetReadWriteRequest) (*tabletmanagerdatapb.SetReadWriteResponse, error) {
	if err := s.tm.SetReadOnly(ctx, false); err != nil {
		return nil, err
	}
	return &tabletmanagerdatapb.SetReadWriteResponse{}, nil
}
