package grpcserver

import (
	"context"
	"time"

	"github.com/tabletd/tabletd/proto/replicationdatapb"
	tmpb "github.com/tabletd/tabletd/proto/tabletmanagerdatapb"
	"github.com/tabletd/tabletd/proto/topodatapb"
)

// ReplicationRPCs is the part of the tablet manager behind the TabletManager replication and
// reparent RPCs, plus the small actions (Sleep, ChangeTags, GetGlobalStatusVars).
type ReplicationRPCs interface {
	ReplicationStatus(ctx context.Context) (*replicationdatapb.Status, error)
	PrimaryStatus(ctx context.Context) (*replicationdatapb.PrimaryStatus, error)
	PrimaryPosition(ctx context.Context) (string, error)
	WaitForPosition(ctx context.Context, position string) error
	StopReplication(ctx context.Context) error
	StopReplicationMinimum(ctx context.Context, position string, waitTimeout time.Duration) (string, error)
	StartReplication(ctx context.Context, semiSync bool) error
	RestartReplication(ctx context.Context, semiSync bool) error
	StartReplicationUntilAfter(ctx context.Context, position string, waitTimeout time.Duration) error
	GetReplicas(ctx context.Context) ([]string, error)
	ResetReplication(ctx context.Context) error
	ResetReplicationParameters(ctx context.Context) error
	InitPrimary(ctx context.Context, semiSync bool) (string, error)
	PopulateReparentJournal(ctx context.Context, timeCreatedNS int64, action string, primary *topodatapb.TabletAlias, position string) error
	ReadReparentJournalInfo(ctx context.Context) (int32, error)
	InitReplica(ctx context.Context, parent *topodatapb.TabletAlias, position string, timeCreatedNS int64, semiSync bool) error
	DemotePrimary(ctx context.Context) (*replicationdatapb.PrimaryStatus, error)
	UndoDemotePrimary(ctx context.Context, semiSync bool) error
	PromoteReplica(ctx context.Context, semiSync bool) (string, error)
	ReplicaWasPromoted(ctx context.Context) error
	ReplicaWasRestarted(ctx context.Context, parent *topodatapb.TabletAlias) error
	SetReplicationSource(ctx context.Context, parent *topodatapb.TabletAlias, timeCreatedNS int64, waitPosition string,
		forceStart, semiSync bool, heartbeatInterval float64) error
	StopReplicationAndGetStatus(ctx context.Context, mode replicationdatapb.StopReplicationMode) (*replicationdatapb.StopReplicationStatus, error)
	FullStatus(ctx context.Context) (*replicationdatapb.FullStatus, error)
	GetGlobalStatusVars(ctx context.Context, names []string) (map[string]string, error)
	Sleep(ctx context.Context, d time.Duration) error
	ChangeTags(ctx context.Context, tags map[string]string, replace bool) (map[string]string, error)
}

func (s *tabletManagerServer) ReplicationStatus(ctx context.Context, _ *tmpb.ReplicationStatusRequest) (*tmpb.ReplicationStatusResponse, error) {
	st, err := s.tm.ReplicationStatus(ctx)
	if err != nil {
		return nil, err
	}
	return &tmpb.ReplicationStatusResponse{Status: st}, nil
}

func (s *tabletManagerServer) PrimaryStatus(ctx context.Context, _ *tmpb.PrimaryStatusRequest) (*tmpb.PrimaryStatusResponse, error) {
	st, err := s.tm.PrimaryStatus(ctx)
	if err != nil {
		return nil, err
	}
	return &tmpb.PrimaryStatusResponse{Status: st}, nil
}

func (s *tabletManagerServer) PrimaryPosition(ctx context.Context, _ *tmpb.PrimaryPositionRequest) (*tmpb.PrimaryPositionResponse, error) {
	pos, err := s.tm.PrimaryPosition(ctx)
	if err != nil {
		return nil, err
	}
	return &tmpb.PrimaryPositionResponse{Position: pos}, nil
}

func (s *tabletManagerServer) WaitForPosition(ctx context.Context, r *tmpb.WaitForPositionRequest) (*tmpb.WaitForPositionResponse, error) {
	return &tmpb.WaitForPositionResponse{}, s.tm.WaitForPosition(ctx, r.Position)
}

func (s *tabletManagerServer) StopReplication(ctx context.Context, _ *tmpb.StopReplicationRequest) (*tmpb.StopReplicationResponse, error) {
	return &tmpb.StopReplicationResponse{}, s.tm.StopReplication(ctx)
}

func (s *tabletManagerServer) StopReplicationMinimum(ctx context.Context, r *tmpb.StopReplicationMinimumRequest) (*tmpb.StopReplicationMinimumResponse, error) {
	pos, err := s.tm.StopReplicationMinimum(ctx, r.Position, time.Duration(r.WaitTimeout))
	if err != nil {
		return nil, err
	}
	return &tmpb.StopReplicationMinimumResponse{Position: pos}, nil
}

func (s *tabletManagerServer) StartReplication(ctx context.Context, r *tmpb.StartReplicationRequest) (*tmpb.StartReplicationResponse, error) {
	return &tmpb.StartReplicationResponse{}, s.tm.StartReplication(ctx, r.SemiSync)
}

func (s *tabletManagerServer) RestartReplication(ctx context.Context, r *tmpb.RestartReplicationRequest) (*tmpb.RestartReplicationResponse, error) {
	return &tmpb.RestartReplicationResponse{}, s.tm.RestartReplication(ctx, r.SemiSync)
}

func (s *tabletManagerServer) StartReplicationUntilAfter(ctx context.Context, r *tmpb.StartReplicationUntilAfterRequest) (*tmpb.StartReplicationUntilAfterResponse, error) {
	return &tmpb.StartReplicationUntilAfterResponse{}, s.tm.StartReplicationUntilAfter(ctx, r.Position, time.Duration(r.WaitTimeout))
}

func (s *tabletManagerServer) GetReplicas(ctx context.Context, _ *tmpb.GetReplicasRequest) (*tmpb.GetReplicasResponse, error) {
	addrs, err := s.tm.GetReplicas(ctx)
	if err != nil {
		return nil, err
	}
	return &tmpb.GetReplicasResponse{Addrs: addrs}, nil
}

func (s *tabletManagerServer) ResetReplication(ctx context.Context, _ *tmpb.ResetReplicationRequest) (*tmpb.ResetReplicationResponse, error) {
	return &tmpb.ResetReplicationResponse{}, s.tm.ResetReplication(ctx)
}

func (s *tabletManagerServer) ResetReplicationParameters(ctx context.Context, _ *tmpb.ResetReplicationParametersRequest) (*tmpb.ResetReplicationParametersResponse, error) {
	return &tmpb.ResetReplicationParametersResponse{}, s.tm.ResetReplicationParameters(ctx)
}

func (s *tabletManagerServer) InitPrimary(ctx context.Context, r *tmpb.InitPrimaryRequest) (*tmpb.InitPrimaryResponse, error) {
	pos, err := s.tm.InitPrimary(ctx, r.SemiSync)
	if err != nil {
		return nil, err
	}
	return &tmpb.InitPrimaryResponse{Position: pos}, nil
}

func (s *tabletManagerServer) PopulateReparentJournal(ctx context.Context, r *tmpb.PopulateReparentJournalRequest) (*tmpb.PopulateReparentJournalResponse, error) {
	return &tmpb.PopulateReparentJournalResponse{},
		s.tm.PopulateReparentJournal(ctx, r.TimeCreatedNs, r.ActionName, r.PrimaryAlias, r.ReplicationPosition)
}

func (s *tabletManagerServer) ReadReparentJournalInfo(ctx context.Context, _ *tmpb.ReadReparentJournalInfoRequest) (*tmpb.ReadReparentJournalInfoResponse, error) {
	n, err := s.tm.ReadReparentJournalInfo(ctx)
	if err != nil {
		return nil, err
	}
	return &tmpb.ReadReparentJournalInfoResponse{Length: n}, nil
}

func (s *tabletManagerServer) InitReplica(ctx context.Context, r *tmpb.InitReplicaRequest) (*tmpb.InitReplicaResponse, error) {
	return &tmpb.InitReplicaResponse{}, s.tm.InitReplica(ctx, r.Parent, r.ReplicationPosition, r.TimeCreatedNs, r.SemiSync)
}

func (s *tabletManagerServer) DemotePrimary(ctx context.Context, _ *tmpb.DemotePrimaryRequest) (*tmpb.DemotePrimaryResponse, error) {
	st, err := s.tm.DemotePrimary(ctx)
	if err != nil {
		return nil, err
	}
	return &tmpb.DemotePrimaryResponse{PrimaryStatus: st}, nil
}

func (s *tabletManagerServer) UndoDemotePrimary(ctx context.Context, r *tmpb.UndoDemotePrimaryRequest) (*tmpb.UndoDemotePrimaryResponse, error) {
	return &tmpb.UndoDemotePrimaryResponse{}, s.tm.UndoDemotePrimary(ctx, r.SemiSync)
}

func (s *tabletManagerServer) PromoteReplica(ctx context.Context, r *tmpb.PromoteReplicaRequest) (*tmpb.PromoteReplicaResponse, error) {
	pos, err := s.tm.PromoteReplica(ctx, r.SemiSync)
	if err != nil {
		return nil, err
	}
	return &tmpb.PromoteReplicaResponse{Position: pos}, nil
}

func (s *tabletManagerServer) ReplicaWasPromoted(ctx context.Context, _ *tmpb.ReplicaWasPromotedRequest) (*tmpb.ReplicaWasPromotedResponse, error) {
	return &tmpb.ReplicaWasPromotedResponse{}, s.tm.ReplicaWasPromoted(ctx)
}

func (s *tabletManagerServer) ReplicaWasRestarted(ctx context.Context, r *tmpb.ReplicaWasRestartedRequest) (*tmpb.ReplicaWasRestartedResponse, error) {
	return &tmpb.ReplicaWasRestartedResponse{}, s.tm.ReplicaWasRestarted(ctx, r.Parent)
}

func (s *tabletManagerServer) SetReplicationSource(ctx context.Context, r *tmpb.SetReplicationSourceRequest) (*tmpb.SetReplicationSourceResponse, error) {
	return &tmpb.SetReplicationSourceResponse{}, s.tm.SetReplicationSource(ctx, r.Parent, r.TimeCreatedNs, r.WaitPosition,
		r.ForceStartReplication, r.SemiSync, r.HeartbeatInterval)
}

func (s *tabletManagerServer) StopReplicationAndGetStatus(ctx context.Context, r *tmpb.StopReplicationAndGetStatusRequest) (*tmpb.StopReplicationAndGetStatusResponse, error) {
	st, err := s.tm.StopReplicationAndGetStatus(ctx, r.StopReplicationMode)
	if err != nil {
		return nil, err
	}
	return &tmpb.StopReplicationAndGetStatusResponse{Status: st}, nil
}

func (s *tabletManagerServer) FullStatus(ctx context.Context, _ *tmpb.FullStatusRequest) (*tmpb.FullStatusResponse, error) {
	st, err := s.tm.FullStatus(ctx)
	if err != nil {
		return nil, err
	}
	return &tmpb.FullStatusResponse{Status: st}, nil
}

func (s *tabletManagerServer) GetGlobalStatusVars(ctx context.Context, r *tmpb.GetGlobalStatusVarsRequest) (*tmpb.GetGlobalStatusVarsResponse, error) {
	vars, err := s.tm.GetGlobalStatusVars(ctx, r.Variables)
	if err != nil {
		return nil, err
	}
	return &tmpb.GetGlobalStatusVarsResponse{StatusValues: vars}, nil
}

func (s *tabletManagerServer) Sleep(ctx context.Context, r *tmpb.SleepRequest) (*tmpb.SleepResponse, error) {
	return &tmpb.SleepResponse{}, s.tm.Sleep(ctx, time.Duration(r.Duration))
}

func (s *tabletManagerServer) ChangeTags(ctx context.Context, r *tmpb.ChangeTagsRequest) (*tmpb.ChangeTagsResponse, error) {
	tags, err := s.tm.ChangeTags(ctx, r.Tags, r.Replace)
	if err != nil {
		return nil, err
	}
	return &tmpb.ChangeTagsResponse{Tags: tags}, nil
}
