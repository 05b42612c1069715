package grpcserver

import (
	"context"

	"google.golang.org/grpc"

	"github.com/tabletd/tabletd/proto/logutilpb"
	"github.com/tabletd/tabletd/proto/tabletmanagerdatapb"
)

// BackupRPCs is the part of the tablet manager behind Backup and RestoreFromBackup: both
// stream logutil events (start, engine, progress, position, end) until the work is done;
// a failure is the stream's final status.
type BackupRPCs interface {
	Backup(ctx context.Context, req *tabletmanagerdatapb.BackupRequest, send func(*logutilpb.Event) error) error
	RestoreFromBackup(ctx context.Context, req *tabletmanagerdatapb.RestoreFromBackupRequest, send func(*logutilpb.Event) error) error
}

func (s *tabletManagerServer) Backup(r *tabletmanagerdatapb.BackupRequest, st grpc.ServerStreamingServer[tabletmanagerdatapb.BackupResponse]) error {
	return s.tm.Backup(st.Context(), r, func(ev *logutilpb.Event) error {
		return st.Send(&tabletmanagerdatapb.BackupResponse{Event: ev})
	})
}

func (s *tabletManagerServer) RestoreFromBackup(r *tabletmanagerdatapb.RestoreFromBackupRequest, st grpc.ServerStreamingServer[tabletmanagerdatapb.RestoreFromBackupResponse]) error {
	return s.tm.RestoreFromBackup(st.Context(), r, func(ev *logutilpb.Event) error {
		return st.Send(&tabletmanagerdatapb.RestoreFromBackupResponse{Event: ev})
	})
}
