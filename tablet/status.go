package tablet

import (
	"context"
	"fmt"
	"time"

	"github.com/tabletd/tabletd/httpserver"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/tabletserver"
	"github.com/tabletd/tabletd/topo"
)

// statusSource assembles /debug/status from the components' snapshots.
type statusSource struct{ t *Tablet }

// Health is the query service's serving verdict (/debug/health).
func (s statusSource) Health() (bool, string) {
	st := s.t.qs.Status()
	return st.Serving, st.HealthError
}

func (s statusSource) StatusPage() httpserver.Page {
	t := s.t
	st := t.qs.Status()
	rec := t.tm.Tablet()
	registered, inSync, topoErr := t.tm.TopoStatus()
	p := httpserver.Page{
		Alias: topo.AliasString(t.cfg.Alias), Keyspace: t.cfg.Keyspace, Shard: t.cfg.Shard,
		TabletType: rec.Type.String(), Hostname: rec.Hostname,
		GRPCPort: portOf(t.grpcLis), HTTPPort: portOf(t.httpLis),
		State: st.State.String(), Serving: st.Serving, Reason: st.HealthError, PrimaryTermStart: st.PrimaryTerm,
		MySQLAddress: t.cfg.DB.Address(), MySQLFlavor: st.MySQL.Flavor, MySQLVersion: st.MySQL.Version,
		MySQLUp: !st.MySQL.CheckedAt.IsZero() && st.MySQL.Err == nil, MySQLCheckedAt: st.MySQL.CheckedAt,
		ReadOnly: st.MySQL.ReadOnly, Position: st.MySQL.Position, Lag: lagText(st),
		TopoAddress: t.cfg.Topo.GlobalServerAddress, TopoRoot: t.cfg.Topo.GlobalRoot, Cell: t.cfg.Alias.Cell,
		TopoRegistered: registered, TopoInSync: inSync, TopoError: topoErr,
		HealthSubscribers: st.Subscribers, LastBroadcast: st.LastBroadcast, InFlight: st.InFlight,
		BuildVersion: t.cfg.BuildVersion, Started: t.started, Now: t.now(),
		NotImplementedFlags: t.cfg.NotImplementedFlags,
	}
	if st.MySQL.Err != nil {
		p.MySQLError = st.MySQL.Err.Error()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	rv := t.tm.ReplicationView(ctx)
	cancel()
	p.Replication = httpserver.Replication{Err: rv.Err, Configured: rv.Configured, Source: rv.Source,
		IOState: rv.IOState, SQLState: rv.SQLState, LastIOError: rv.LastIOError, LastSQLError: rv.LastSQLError,
		StoppedByRPC: rv.StoppedByRPC, Demoted: rv.Demoted, SemiSync: rv.SemiSync, Durability: rv.Durability,
		LastReparent: rv.LastReparent, Repairs: rv.Repairs, LastRepair: rv.LastRepair, LastError: rv.LastError, LastErrorAt: rv.LastErrorAt}
	if t.rpcStats != nil {
		for _, e := range t.rpcStats.RecentErrors() {
			p.RPCErrors = append(p.RPCErrors, httpserver.RPCError{At: e.At, Method: e.Method, Code: e.Code, Message: e.Message})
		}
	}
	p.Backup = backupView(t.tm.BackupStatus())
	p.ACLFile, p.ACLLoadedAt, p.ACLError = t.aclLoader.Load().status()
	p.RulesFile, p.RulesLoadedAt, p.RulesError = t.rulesLoader.Load().status()
	p.VReplication = t.vreplicationStatus()
	p.VDiff = t.vdiffStatus()
	p.Observed = t.observed() // observability.go
	cc, cs := t.qs.ConsolidatorStatus()
	p.Consolidator = httpserver.Consolidator{OnPrimary: cc.OnPrimary, OnReplicas: cc.OnReplicas,
		MaxWaiters: cc.MaxWaiters, MaxBytes: cc.MaxBytes, RejectOnFull: cc.RejectOnFull,
		InFlight: cs.InFlight, Waiting: cs.Waiting, BytesHeld: cs.BytesHeld,
		Executions: cs.Executions, Served: cs.Consolidated, Overflow: cs.Overflow, Rejected: cs.Rejected}
	return p
}

func lagText(st tabletserver.Status) string {
	switch {
	case st.TabletType == topodatapb.TabletType_PRIMARY:
		return "n/a (primary)"
	case st.MySQL.LagKnown:
		return st.MySQL.Lag.String()
	case !st.MySQL.ReplicationConfigured:
		return "unknown: replication is not configured"
	}
	return fmt.Sprintf("unknown: %s", st.MySQL.ReplicationProblem)
}

// collationID is the Tablet record's default_conn_collation for --db-charset, as vttablet
// derives it (the charset's default collation in MySQL 8's numbering).
func collationID(charset string) uint32 {
	switch charset {
	case "utf8mb4", "":
		return 255 // utf8mb4_0900_ai_ci
	case "utf8", "utf8mb3":
		return 33 // utf8mb3_general_ci
	case "latin1":
		return 8 // latin1_swedish_ci
	case "binary":
		return 63
	}
	return 255
}
