// Package tablet assembles one tabletd instance from its components and owns their lifecycle: it opens them in order and closes them in reverse.
package tablet

import (
	"errors"
	"fmt"
	"time"

	"github.com/tabletd/tabletd/dbconfig"
	"github.com/tabletd/tabletd/grpcserver"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/querylog"
	"github.com/tabletd/tabletd/tabletmanager"
	"github.com/tabletd/tabletd/tabletserver"
	"github.com/tabletd/tabletd/topo"
	"github.com/tabletd/tabletd/vreplication/engine"
	"github.com/tabletd/tabletd/vreplication/vdiff"
	"github.com/tabletd/tabletd/vreplication/vstreamer"
)

// Config is the whole configuration of one tabletd. cmd/tabletd fills it from flags and the
// YAML file; tests fill it directly.
type Config struct {
	Alias          *topodatapb.TabletAlias
	Hostname       string
	Keyspace       string
	Shard          string // as given; canonicalized by Validate's caller via Normalize
	InitType       topodatapb.TabletType
	DBNameOverride string
	Tags           map[string]string

	BindAddress string // listen address for both ports; "" = all interfaces
	HTTPPort    int    // --port; 0 picks a free port
	GRPCPort    int    // --grpc-port; 0 picks a free port
	ServiceMap  []string
	// GRPCMaxMessageSize bounds gRPC messages both ways (vttablet default 16 MiB).
	GRPCMaxMessageSize int
	// GRPCTuning is the gRPC server's transport: handler workers, flow-control windows.
	GRPCTuning grpcserver.Tuning

	// HTTPBindAddress (--bind-address) and GRPCBindAddress (--grpc-bind-address), when set,
	// replace BindAddress for their port, as vttablet binds the two separately.
	HTTPBindAddress, GRPCBindAddress string

	DB   dbconfig.Config
	Topo topo.Config

	Query tabletserver.Config // Keyspace/Shard/Alias are filled in from the fields above
	// LameduckPeriod (--lameduck-period, vttablet's default 50ms): after SIGTERM the tablet
	// advertises not serving but still serves for this long, so vtgate stops routing to it
	// (and buffers a primary's writes) before the drain refuses requests.
	LameduckPeriod time.Duration
	Manager        tabletmanager.Config // timing fields only; identity is filled in
	Unmanaged      bool

	// Table ACL: --table-acl-config, --enforce-tableacl-config,
	// --table-acl-config-reload-interval; enforcement settings are in Query.ACL.
	TableACLFile           string
	EnforceTableACL        bool
	TableACLReloadInterval time.Duration

	// Query rules: --filecustomrules and --filecustomrules-watch (re-read every second).
	QueryRulesFile  string
	QueryRulesWatch bool

	// Heartbeat: the primary writes <sidecar>.heartbeat every Interval, replicas measure
	// their lag as its age (--heartbeat-enable, --heartbeat-interval,
	// --heartbeat-on-demand-duration). Off: lag is Seconds_Behind_Master.
	Heartbeat HeartbeatConfig

	// VReplication configures the target-side VReplication engine (timing and parallelism;
	// identity and connections are filled in).
	VReplication engine.Config

	// VStream configures the source side of VReplication (--vstream-packet-size; identity
	// and connections are filled in by tablet/vstream.go).
	VStream vstreamer.Config

	// VDiff configures VDiff on the target primary (timings; identity and connections are
	// filled in by tablet/vdiff.go).
	VDiff vdiff.Config

	// Backup: storage, engine, restore on start (tablet/backup.go).
	Backup BackupConfig

	// Security guards the ports: HTTP policy and pprof, gRPC TLS and authentication
	// (tablet/security.go).
	Security SecurityConfig

	BuildVersion string

	// Notify is systemd's notification protocol (tablet/notify.go).
	Notify NotifyConfig

	// QueryLog is vttablet's query log (--log-queries-to-file, --querylog-*): a line per
	// query served; no Path, no log.
	QueryLog querylog.Config

	// NotImplementedFlags are the vttablet flags given that tabletd accepts without acting
	// on them (as --name: values are not kept, a password may be among them); /debug/status
	// lists them.
	NotImplementedFlags []string
}

// HeartbeatConfig configures the replication heartbeat.
type HeartbeatConfig struct {
	Enable   bool
	Interval time.Duration
	// OnDemand > 0 writes only for that long after a consumer asks (vttablet's throttler).
	OnDemand time.Duration
}

// DefaultConfig returns defaults for everything but identity and addresses.
func DefaultConfig() Config {
	return Config{
		InitType:           topodatapb.TabletType_REPLICA,
		GRPCMaxMessageSize: 16 * 1024 * 1024,
		GRPCTuning:         grpcserver.DefaultTuning(),
		DB:                 dbconfig.Default(),
		Topo:               topo.DefaultConfig(),
		Query:              tabletserver.DefaultConfig(),
		Manager:            tabletmanager.DefaultConfig(),
		Heartbeat:          HeartbeatConfig{Enable: true, Interval: time.Second},
		VReplication:       engine.DefaultConfig(),
		VStream:            vstreamer.DefaultConfig(),
		VDiff:              vdiff.DefaultConfig(),
		QueryLog:           querylog.DefaultConfig(),
		Backup:             DefaultBackupConfig(),
		BuildVersion:       "dev",
	}
}

// Normalize validates the identity fields and canonicalizes the shard name, returning the
// key range it denotes. Every error names the flag and the fix.
func (c *Config) Normalize() (*topodatapb.KeyRange, error) {
	if c.Alias == nil {
		return nil, errors.New("--tablet-path is required (format <cell>-<uid>, e.g. zone1-100)")
	}
	if err := topo.ValidateKeyspaceName(c.Keyspace); err != nil {
		return nil, fmt.Errorf("--init-keyspace: %w", err)
	}
	shard, kr, err := topo.ValidateShardName(c.Shard)
	if err != nil {
		return nil, fmt.Errorf("--init-shard: %w", err)
	}
	c.Shard = shard
	c.Topo.Cell = c.Alias.Cell
	return kr, nil
}

// Validate reports the first unusable setting.
func (c Config) Validate() error {
	if c.Hostname == "" {
		return errors.New("--tablet-hostname is empty and the machine's hostname is unknown")
	}
	if c.HTTPPort < 0 || c.HTTPPort > 65535 || c.GRPCPort < 0 || c.GRPCPort > 65535 {
		return fmt.Errorf("--port and --grpc-port must be 0-65535 (got %d, %d)", c.HTTPPort, c.GRPCPort)
	}
	if c.GRPCMaxMessageSize <= 0 {
		return fmt.Errorf("--grpc-max-message-size must be > 0 (got %d)", c.GRPCMaxMessageSize)
	}
	if err := c.GRPCTuning.Validate(); err != nil {
		return err
	}
	switch c.InitType {
	case topodatapb.TabletType_PRIMARY, topodatapb.TabletType_REPLICA, topodatapb.TabletType_RDONLY, topodatapb.TabletType_SPARE:
	default:
		return fmt.Errorf("--init-tablet-type %v is not allowed: use REPLICA, RDONLY, SPARE or PRIMARY", c.InitType)
	}
	if _, _, err := grpcserver.ParseServiceMap(c.ServiceMap); err != nil {
		return err
	}
	if err := c.DB.Validate(); err != nil {
		return err
	}
	if c.Topo.GlobalServerAddress == "" {
		return errors.New("--topo-global-server-address is required (for a demo, `tabletctl topo-server --dir DIR` runs a local etcd with the cell registered)")
	}
	if c.Topo.GlobalRoot == "" {
		return errors.New("--topo-global-root is required (e.g. /vitess/global)")
	}
	if c.LameduckPeriod < 0 {
		return fmt.Errorf("--lameduck-period %v is negative", c.LameduckPeriod)
	}
	if err := c.Security.Validate(); err != nil {
		return err
	}
	if err := c.Backup.Validate(); err != nil {
		return err
	}
	if err := c.Notify.Validate(); err != nil {
		return err
	}
	if c.QueryLog.Path != "" {
		if err := c.QueryLog.Validate(); err != nil {
			return err
		}
	}
	q := c.Query
	q.Keyspace, q.Shard, q.Alias = c.Keyspace, c.Shard, c.Alias
	return q.Validate()
}

// graceOrDefault is the drain budget on shutdown.
func (c Config) grace() time.Duration { return c.Query.ShutdownGracePeriod }

// dbName is the MySQL database the tablet serves: --init-db-name-override, else vt_<keyspace>.
func (c Config) dbName() string {
	if c.DBNameOverride != "" {
		return c.DBNameOverride
	}
	return "vt_" + c.Keyspace
}
