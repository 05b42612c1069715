package tabletmanager

import (
	"context"

	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/tabletmanagerdatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
	"github.com/tabletd/tabletd/tabletmanager/schema"
)

// The schema and fetch RPCs run on the schema engine. As in vttablet, only ApplySchema and
// PreflightSchema take the action lock: they change the schema in several steps that must
// not interleave with each other or with a type change. The fetches do not, so that a long
// DBA statement (a large ALTER, vtctld's copy-progress queries) never blocks reparenting;
// LockTables has its own bookkeeping in the engine.

// schemaEngine returns the engine with the keyspace's sidecar database in force.
func (m *Manager) schemaEngine() (*schema.Engine, error) {
	if m.schema == nil {
		return nil, rpcerr.New(vtrpcpb.Code_UNIMPLEMENTED, "this tablet does not serve the schema RPCs")
	}
	m.mu.Lock()
	sidecar := m.sidecarDB
	m.mu.Unlock()
	m.schema.SetSidecarDBName(sidecar)
	return m.schema, nil
}

// GetSchema returns the tablet database's schema definition.
func (m *Manager) GetSchema(ctx context.Context, req *tabletmanagerdatapb.GetSchemaRequest) (*tabletmanagerdatapb.SchemaDefinition, error) {
	e, err := m.schemaEngine()
	if err != nil {
		return nil, err
	}
	return e.GetSchema(ctx, req)
}

// ReloadSchema waits for waitPosition (when set), then refreshes the query service's view of
// the schema.
func (m *Manager) ReloadSchema(ctx context.Context, waitPosition string) error {
	e, err := m.schemaEngine()
	if err != nil {
		return err
	}
	return e.ReloadSchema(ctx, waitPosition)
}

// PreflightSchema tries schema changes on a scratch copy of the schema.
func (m *Manager) PreflightSchema(ctx context.Context, changes []string) ([]*tabletmanagerdatapb.SchemaChangeResult, error) {
	e, err := m.schemaEngine()
	if err != nil {
		return nil, err
	}
	m.action.Lock()
	defer m.action.Unlock()
	return e.PreflightSchema(ctx, changes)
}

// ApplySchema applies a schema change script with its before/after checks.
func (m *Manager) ApplySchema(ctx context.Context, req *tabletmanagerdatapb.ApplySchemaRequest) (*tabletmanagerdatapb.SchemaChangeResult, error) {
	e, err := m.schemaEngine()
	if err != nil {
		return nil, err
	}
	m.action.Lock()
	defer m.action.Unlock()
	return e.ApplySchema(ctx, req)
}

// ExecuteFetchAsDba runs one statement as the dba user.
func (m *Manager) ExecuteFetchAsDba(ctx context.Context, req *tabletmanagerdatapb.ExecuteFetchAsDbaRequest) (*querypb.QueryResult, error) {
	e, err := m.schemaEngine()
	if err != nil {
		return nil, err
	}
	return e.ExecuteFetchAsDba(ctx, req)
}

// ExecuteMultiFetchAsDba runs several statements as the dba user, one result each.
func (m *Manager) ExecuteMultiFetchAsDba(ctx context.Context, req *tabletmanagerdatapb.ExecuteMultiFetchAsDbaRequest) ([]*querypb.QueryResult, error) {
	e, err := m.schemaEngine()
	if err != nil {
		return nil, err
	}
	return e.ExecuteMultiFetchAsDba(ctx, req)
}

// ExecuteFetchAsAllPrivs runs one statement as the allprivs user.
func (m *Manager) ExecuteFetchAsAllPrivs(ctx context.Context, req *tabletmanagerdatapb.ExecuteFetchAsAllPrivsRequest) (*querypb.QueryResult, error) {
	e, err := m.schemaEngine()
	if err != nil {
		return nil, err
	}
	return e.ExecuteFetchAsAllPrivs(ctx, req)
}

// ExecuteFetchAsApp runs one statement as the app user.
func (m *Manager) ExecuteFetchAsApp(ctx context.Context, req *tabletmanagerdatapb.ExecuteFetchAsAppRequest) (*querypb.QueryResult, error) {
	e, err := m.schemaEngine()
	if err != nil {
		return nil, err
	}
	return e.ExecuteFetchAsApp(ctx, req)
}

// ExecuteQuery runs one statement through the query service as the request's caller.
func (m *Manager) ExecuteQuery(ctx context.Context, req *tabletmanagerdatapb.ExecuteQueryRequest) (*querypb.QueryResult, error) {
	e, err := m.schemaEngine()
	if err != nil {
		return nil, err
	}
	return e.ExecuteQuery(ctx, req)
}

// GetPermissions lists mysql.user and mysql.db, passwords as checksums.
func (m *Manager) GetPermissions(ctx context.Context) (*tabletmanagerdatapb.Permissions, error) {
	e, err := m.schemaEngine()
	if err != nil {
		return nil, err
	}
	return e.GetPermissions(ctx)
}

// LockTables takes a global read lock until UnlockTables or the lock timeout.
func (m *Manager) LockTables(ctx context.Context) error {
	e, err := m.schemaEngine()
	if err != nil {
		return err
	}
	return e.LockTables(ctx)
}

// UnlockTables releases the lock LockTables took.
func (m *Manager) UnlockTables(ctx context.Context) error {
	e, err := m.schemaEngine()
	if err != nil {
		return err
	}
	return e.UnlockTables(ctx)
}
