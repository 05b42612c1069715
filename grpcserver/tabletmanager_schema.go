package grpcserver

import (
	"context"

	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/tabletmanagerdatapb"
)

// SchemaRPCs is the part of the tablet manager behind the TabletManager schema and query
// RPCs: GetSchema, ReloadSchema, PreflightSchema, ApplySchema, ExecuteFetchAsDba,
// ExecuteMultiFetchAsDba, ExecuteFetchAsAllPrivs, ExecuteFetchAsApp, ExecuteQuery,
// GetPermissions, LockTables and UnlockTables. The adapters live in this file; like
// vttablet's, a failed call returns no response message, only the error.
type SchemaRPCs interface {
	GetSchema(ctx context.Context, req *tabletmanagerdatapb.GetSchemaRequest) (*tabletmanagerdatapb.SchemaDefinition, error)
	ReloadSchema(ctx context.Context, waitPosition string) error
	PreflightSchema(ctx context.Context, changes []string) ([]*tabletmanagerdatapb.SchemaChangeResult, error)
	ApplySchema(ctx context.Context, req *tabletmanagerdatapb.ApplySchemaRequest) (*tabletmanagerdatapb.SchemaChangeResult, error)
	ExecuteFetchAsDba(ctx context.Context, req *tabletmanagerdatapb.ExecuteFetchAsDbaRequest) (*querypb.QueryResult, error)
	ExecuteMultiFetchAsDba(ctx context.Context, req *tabletmanagerdatapb.ExecuteMultiFetchAsDbaRequest) ([]*querypb.QueryResult, error)
	ExecuteFetchAsAllPrivs(ctx context.Context, req *tabletmanagerdatapb.ExecuteFetchAsAllPrivsRequest) (*querypb.QueryResult, error)
	ExecuteFetchAsApp(ctx context.Context, req *tabletmanagerdatapb.ExecuteFetchAsAppRequest) (*querypb.QueryResult, error)
	ExecuteQuery(ctx context.Context, req *tabletmanagerdatapb.ExecuteQueryRequest) (*querypb.QueryResult, error)
	GetPermissions(ctx context.Context) (*tabletmanagerdatapb.Permissions, error)
	LockTables(ctx context.Context) error
	UnlockTables(ctx context.Context) error
}

func (s *tabletManagerServer) GetSchema(ctx context.Context, r *tabletmanagerdatapb.GetSchemaRequest) (*tabletmanagerdatapb.GetSchemaResponse, error) {
	sd, err := s.tm.GetSchema(ctx, r)
	if err != nil {
		return nil, err
	}
	return &tabletmanagerdatapb.GetSchemaResponse{SchemaDefinition: sd}, nil
}

func (s *tabletManagerServer) ReloadSchema(ctx context.Context, r *tabletmanagerdatapb.ReloadSchemaRequest) (*tabletmanagerdatapb.ReloadSchemaResponse, error) {
	if err := s.tm.ReloadSchema(ctx, r.WaitPosition); err != nil {
		return nil, err
	}
	return &tabletmanagerdatapb.ReloadSchemaResponse{}, nil
}

func (s *tabletManagerServer) PreflightSchema(ctx context.Context, r *tabletmanagerdatapb.PreflightSchemaRequest) (*tabletmanagerdatapb.PreflightSchemaResponse, error) {
	res, err := s.tm.PreflightSchema(ctx, r.Changes)
	if err != nil {
		return nil, err
	}
	return &tabletmanagerdatapb.PreflightSchemaResponse{ChangeResults: res}, nil
}

func (s *tabletManagerServer) ApplySchema(ctx context.Context, r *tabletmanagerdatapb.ApplySchemaRequest) (*tabletmanagerdatapb.ApplySchemaResponse, error) {
	res, err := s.tm.ApplySchema(ctx, r)
	if err != nil {
		return nil, err
	}
	return &tabletmanagerdatapb.ApplySchemaResponse{BeforeSchema: res.BeforeSchema, AfterSchema: res.AfterSchema}, nil
}

func (s *tabletManagerServer) ExecuteFetchAsDba(ctx context.Context, r *tabletmanagerdatapb.ExecuteFetchAsDbaRequest) (*tabletmanagerdatapb.ExecuteFetchAsDbaResponse, error) {
	qr, err := s.tm.ExecuteFetchAsDba(ctx, r)
	if err != nil {
		return nil, err
	}
	return &tabletmanagerdatapb.ExecuteFetchAsDbaResponse{Result: qr}, nil
}

func (s *tabletManagerServer) ExecuteMultiFetchAsDba(ctx context.Context, r *tabletmanagerdatapb.ExecuteMultiFetchAsDbaRequest) (*tabletmanagerdatapb.ExecuteMultiFetchAsDbaResponse, error) {
	qrs, err := s.tm.ExecuteMultiFetchAsDba(ctx, r)
	if err != nil {
		return nil, err
	}
	return &tabletmanagerdatapb.ExecuteMultiFetchAsDbaResponse{Results: qrs}, nil
}

func (s *tabletManagerServer) ExecuteFetchAsAllPrivs(ctx context.Context, r *tabletmanagerdatapb.ExecuteFetchAsAllPrivsRequest) (*tabletmanagerdatapb.ExecuteFetchAsAllPrivsResponse, error) {
	qr, err := s.tm.ExecuteFetchAsAllPrivs(ctx, r)
	if err != nil {
		return nil, err
	}
	return &tabletmanagerdatapb.ExecuteFetchAsAllPrivsResponse{Result: qr}, nil
}

func (s *tabletManagerServer) ExecuteFetchAsApp(ctx context.Context, r *tabletmanagerdatapb.ExecuteFetchAsAppRequest) (*tabletmanagerdatapb.ExecuteFetchAsAppResponse, error) {
	qr, err := s.tm.ExecuteFetchAsApp(ctx, r)
	if err != nil {
		return nil, err
	}
	return &tabletmanagerdatapb.ExecuteFetchAsAppResponse{Result: qr}, nil
}

func (s *tabletManagerServer) ExecuteQuery(ctx context.Context, r *tabletmanagerdatapb.ExecuteQueryRequest) (*tabletmanagerdatapb.ExecuteQueryResponse, error) {
	qr, err := s.tm.ExecuteQuery(ctx, r)
	if err != nil {
		return nil, err
	}
	return &tabletmanagerdatapb.ExecuteQueryResponse{Result: qr}, nil
}

func (s *tabletManagerServer) GetPermissions(ctx context.Context, _ *tabletmanagerdatapb.GetPermissionsRequest) (*tabletmanagerdatapb.GetPermissionsResponse, error) {
	p, err := s.tm.GetPermissions(ctx)
	if err != nil {
		return nil, err
	}
	return &tabletmanagerdatapb.GetPermissionsResponse{Permissions: p}, nil
}

func (s *tabletManagerServer) LockTables(ctx context.Context, _ *tabletmanagerdatapb.LockTablesRequest) (*tabletmanagerdatapb.LockTablesResponse, error) {
	if err := s.tm.LockTables(ctx); err != nil {
		return nil, err
	}
	return &tabletmanagerdatapb.LockTablesResponse{}, nil
}

func (s *tabletManagerServer) UnlockTables(ctx context.Context, _ *tabletmanagerdatapb.UnlockTablesRequest) (*tabletmanagerdatapb.UnlockTablesResponse, error) {
	if err := s.tm.UnlockTables(ctx); err != nil {
		return nil, err
	}
	return &tabletmanagerdatapb.UnlockTablesResponse{}, nil
}
