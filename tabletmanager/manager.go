// Package tabletmanager owns the tablet's identity: it registers the tablet in the topology, changes its type, keeps the shard's primary record in sync and carries out the TabletManager RPCs.
package tabletmanager

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/proto/vttimepb"
	"github.com/tabletd/tabletd/tabletmanager/schema"
	"github.com/tabletd/tabletd/tabletserver"
)

// Config describes the tablet the manager registers.
type Config struct {
	Alias            *topodatapb.TabletAlias
	Hostname         string
	PortMap          map[string]int32 // "vt" (HTTP) and "grpc"
	Keyspace         string
	Shard            string // canonical shard name
	KeyRange         *topodatapb.KeyRange
	InitType         topodatapb.TabletType
	DBNameOverride   string
	Tags             map[string]string
	MySQLHostname    string
	MySQLPort        int32
	DefaultCollation uint32

	// RetryInterval is the first delay between topology retries; it doubles up to MaxRetryInterval.
	RetryInterval    time.Duration
	MaxRetryInterval time.Duration
	// SyncInterval is how often the shard record is reconciled and a failed publish retried.
	SyncInterval time.Duration
	// TopoTimeout bounds one topology operation.
	TopoTimeout time.Duration

	// ReplUser and ReplPassword are what replicas use to connect to their source
	// (--db-repl-user, --db-repl-password); they go into CHANGE MASTER / CHANGE REPLICATION SOURCE.
	ReplUser, ReplPassword string
	// ReplConnectRetry is the source reconnect interval of replication.
	ReplConnectRetry time.Duration
	// JournalPollInterval is how often InitReplica and SetReplicationSource look for the
	// reparent journal row they wait for.
	JournalPollInterval time.Duration
	// RepairReplication restarts replication that stopped by itself (vttablet's replication
	// reporter); replication stopped by an RPC is left stopped.
	RepairReplication bool
}

// DefaultConfig returns the timing defaults.
func DefaultConfig() Config {
	return Config{RetryInterval: 500 * time.Millisecond, MaxRetryInterval: 10 * time.Second,
		SyncInterval: 5 * time.Second, TopoTimeout: 10 * time.Second, ReplUser: "vt_repl",
		ReplConnectRetry: 10 * time.Second, JournalPollInterval: 100 * time.Millisecond, RepairReplication: true}
}

// Validate reports the first unusable setting, naming its flag.
func (c Config) Validate() error {
	switch {
	case c.Alias == nil || c.Alias.Cell == "":
		return errors.New("--tablet-path must be <cell>-<uid>")
	case c.Keyspace == "":
		return errors.New("--init-keyspace must be set")
	case c.Shard == "":
		return errors.New("--init-shard must be set")
	case c.Hostname == "":
		return errors.New("--tablet-hostname must not be empty")
	case c.PortMap["grpc"] <= 0:
		return errors.New("--grpc-port must be set: vtgate ignores tablets without a gRPC port")
	case c.RetryInterval <= 0 || c.MaxRetryInterval < c.RetryInterval || c.SyncInterval <= 0 || c.TopoTimeout <= 0 ||
		c.JournalPollInterval <= 0 || c.ReplConnectRetry <= 0:
		return errors.New("tablet manager retry, sync, poll and timeout intervals must be > 0")
	case c.ReplUser == "":
		return errors.New("--db-repl-user must not be empty: replicas connect to their source with it")
	}
	switch c.InitType {
	case topodatapb.TabletType_PRIMARY, topodatapb.TabletType_REPLICA, topodatapb.TabletType_RDONLY,
		topodatapb.TabletType_SPARE, topodatapb.TabletType_EXPERIMENTAL, topodatapb.TabletType_DRAINED:
	default:
		return fmt.Errorf("--init-tablet-type %v is not allowed: use PRIMARY, REPLICA, RDONLY, SPARE, EXPERIMENTAL or DRAINED", c.InitType)
	}
	return nil
}

// QueryService is what the manager needs of the query service.
type QueryService interface {
	// Transition is the query service's state manager: it returns once the new state holds
	// (leaving a serving PRIMARY, the old term's writes are over).
	Transition(ctx context.Context, w tabletserver.Want)
	RunHealthCheck()
	SetDeniedTables(tables []string)
	// TermChecks signals that a PRIMARY's MySQL came back; ConfirmTerm lets it serve again
	// once the shard record still names it (else it steps down).
	TermChecks() <-chan struct{}
	ConfirmTerm() bool
}

// Deps are the manager's collaborators.
type Deps struct {
	Log *zap.Logger
	// OpenTopo connects to the topology. Errors for which Permanent returns true stop the
	// tablet (bad configuration); any other error is retried with backoff.
	OpenTopo func(ctx context.Context) (Topo, error)
	// Permanent classifies topology errors; nil: none is permanent.
	Permanent func(error) bool
	Query     QueryService
	MySQL     MySQL
	Clock     func() time.Time
	// EnsureSidecar creates what is missing of the sidecar schema dbName: with binary logging
	// on a primary (replicas get it by replication), or, with local, without binary logging on
	// a replica. nil: the tablet has no sidecar schema (unit tests).
	EnsureSidecar func(ctx context.Context, dbName string, local bool) error
	// Schema runs the schema and fetch RPCs (GetSchema, ApplySchema, ExecuteFetchAs*, …).
	// nil: those RPCs answer UNIMPLEMENTED (unit tests).
	Schema *schema.Engine
	// Registry receives the manager's metrics; nil: a private registry.
	Registry prometheus.Registerer
	// Backup runs Backup, RestoreFromBackup and restore on start; nil: they refuse.
	Backup *BackupDeps
	// SidecarDB, when set, is told the keyspace's sidecar database name once the keyspace
	// record has been read (the heartbeat follows it).
	SidecarDB func(name string)
	// VReplication is the target-side VReplication engine (open while PRIMARY); nil: the
	// VReplication RPCs answer UNIMPLEMENTED.
	VReplication VReplication
}

// Manager is the tablet manager of one tablet.
type Manager struct {
	cfg       Config
	log       *zap.Logger
	openTopo  func(ctx context.Context) (Topo, error)
	permanent func(error) bool
	qs        QueryService
	mysql     MySQL
	now       func() time.Time

	ensureSidecarHook func(ctx context.Context, dbName string, local bool) error
	sidecarDBHook     func(name string)
	metrics           *metrics
	schema            *schema.Engine // nil: no schema RPCs
	backup            *BackupDeps    // nil: no backup storage
	vre               VReplication   // nil: no VReplication RPCs

	action sync.Mutex // serializes state-changing actions (RPCs, registration steps, sync)

	// mu guards the fields below; held only briefly, never across I/O.
	mu         sync.Mutex
	tablet     *topodatapb.Tablet // the record as we want it published
	ts         Topo               // nil until connected
	registered bool
	dirty      bool     // the topo record lags behind tablet
	topoErr    string   // last topology error, for display
	roErr      string   // last failure to apply read-only, for display
	qsDisabled bool     // SrvKeyspace disables the query service for our type
	denied     []string // Shard.tablet_controls denied tables in force for our type and cell
	sidecarDB  string   // the keyspace's sidecar database (Keyspace.sidecar_db_name), "_vt" until read
	durability string   // the keyspace's durability policy, "" until read
	// demoted: DemotePrimary ran on this PRIMARY (read-only, not serving) and no later RPC
	// made it serve again or changed its type. Nothing may make it serve behind vtctld's back.
	demoted bool
	// replStopped: an RPC stopped replication on purpose; the reporter leaves it stopped.
	replStopped bool
	repl        replState // what the replication RPCs and the reporter last saw, for display

	fatal  chan error
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a manager; Start brings it to life.
func New(cfg Config, d Deps) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.OpenTopo == nil || d.Query == nil || d.MySQL == nil {
		return nil, errors.New("tabletmanager: OpenTopo, Query and MySQL are required")
	}
	if d.Log == nil {
		d.Log = zap.NewNop()
	}
	if d.Clock == nil {
		d.Clock = time.Now
	}
	if d.Permanent == nil {
		d.Permanent = func(error) bool { return false }
	}
	m := &Manager{cfg: cfg, log: d.Log, openTopo: d.OpenTopo, permanent: d.Permanent,
		qs: d.Query, mysql: d.MySQL, now: d.Clock, fatal: make(chan error, 1), sidecarDB: "_vt",
		ensureSidecarHook: d.EnsureSidecar, schema: d.Schema, backup: d.Backup, sidecarDBHook: d.SidecarDB,
		vre: d.VReplication}
	m.tablet = m.initialRecord()
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	var err error
	if m.metrics, err = newMetrics(d.Registry, prometheus.Labels{"keyspace": cfg.Keyspace, "shard": cfg.Shard}); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Manager) initialRecord() *topodatapb.Tablet {
	ports := make(map[string]int32, len(m.cfg.PortMap))
	for k, v := range m.cfg.PortMap {
		ports[k] = v
	}
	tags := make(map[string]string, len(m.cfg.Tags))
	for k, v := range m.cfg.Tags {
		tags[k] = v
	}
	t := &topodatapb.Tablet{
		Alias:                proto.Clone(m.cfg.Alias).(*topodatapb.TabletAlias),
		Hostname:             m.cfg.Hostname,
		PortMap:              ports,
		Keyspace:             m.cfg.Keyspace,
		Shard:                m.cfg.Shard,
		KeyRange:             m.cfg.KeyRange,
		Type:                 m.cfg.InitType,
		DbNameOverride:       m.cfg.DBNameOverride,
		Tags:                 tags,
		MysqlHostname:        m.cfg.MySQLHostname,
		MysqlPort:            m.cfg.MySQLPort,
		DefaultConnCollation: m.cfg.DefaultCollation,
	}
	if t.Type == topodatapb.TabletType_PRIMARY {
		t.PrimaryTermStartTime = timeToProto(m.now())
	}
	return t
}

// Start tells the query service the initial type at once — the query path never waits for
// the topology — and registers the tablet in the background, retrying while etcd is
// unreachable. A permanent registration failure arrives on Fatal.
func (m *Manager) Start() {
	m.applyServing(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel, m.done = cancel, make(chan struct{})
	go m.run(ctx)
}

// Fatal delivers the error that makes the tablet unable to run (wrong cell, alias held by
// another tablet, …). At most one error is ever sent.
func (m *Manager) Fatal() <-chan error { return m.fatal }

// Tablet returns a copy of the tablet record as the manager wants it published.
func (m *Manager) Tablet() *topodatapb.Tablet {
	m.mu.Lock()
	defer m.mu.Unlock()
	return proto.Clone(m.tablet).(*topodatapb.Tablet)
}

// TopoStatus says whether the tablet is registered and the last topology error, for display.
func (m *Manager) TopoStatus() (registered, inSync bool, lastErr string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.registered, m.registered && !m.dirty, m.topoErr
}

// Close stops the background work and, when registered, clears the record's addresses so
// vtgate stops routing here (vttablet does the same). The tablet record itself stays.
func (m *Manager) Close(ctx context.Context) {
	if m.cancel != nil {
		m.cancel()
		<-m.done
		m.cancel = nil
	}
	m.action.Lock()
	defer m.action.Unlock()
	m.mu.Lock()
	ts, registered := m.ts, m.registered
	m.mu.Unlock()
	if ts == nil {
		return
	}
	if registered {
		cctx, cancel := context.WithTimeout(ctx, m.cfg.TopoTimeout)
		_, err := ts.UpdateTablet(cctx, m.cfg.Alias, func(t *topodatapb.Tablet) error {
			if !sameHolder(t, m.cfg.Hostname, m.cfg.PortMap["grpc"]) {
				return errNotOurs
			}
			t.Hostname, t.MysqlHostname, t.PortMap = "", "", nil
			return nil
		})
		cancel()
		if err != nil {
			m.log.Warn("could not clear the tablet record's addresses", zap.Error(err))
		}
	}
	ts.Close()
}

var errNotOurs = errors.New("tablet record is held by another tablet process")

func sameHolder(t *topodatapb.Tablet, host string, grpcPort int32) bool {
	return t.Hostname == host && t.PortMap["grpc"] == grpcPort
}

func timeToProto(t time.Time) *vttimepb.Time {
	return &vttimepb.Time{Seconds: t.Unix(), Nanoseconds: int32(t.Nanosecond())}
}

func timeFromProto(t *vttimepb.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return time.Unix(t.Seconds, int64(t.Nanoseconds))
}
