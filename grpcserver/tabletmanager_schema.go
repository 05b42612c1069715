package grpcserver

// SchemaRPCs is the part of the tablet manager behind the TabletManager schema and query
// RPCs (GetSchema, ReloadSchema, PreflightSchema, ApplySchema, ExecuteFetchAs*, ExecuteQuery,
// GetPermissions, LockTables, UnlockTables). The
// adapters live in this file.
type SchemaRPCs interface{}
