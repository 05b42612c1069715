package tabletserver

import (
	"errors"
	"fmt"
	"time"

	"github.com/tabletd/tabletd/proto/topodatapb"
)

// Config is the query service's configuration. Zero durations take the defaults of
// DefaultConfig when passed through WithDefaults.
type Config struct {
	Keyspace string
	Shard    string
	Alias    *topodatapb.TabletAlias

	// HealthCheckInterval is how often the health record is re-sent even when nothing
	// changed (--health-check-interval, vttablet default 20s).
	HealthCheckInterval time.Duration
	// ProbeInterval is how often MySQL is checked; a change is broadcast at once, so vtgate
	// learns of a dead mysqld within about one probe interval.
	ProbeInterval time.Duration
	// ProbeTimeout bounds one MySQL check.
	ProbeTimeout time.Duration
	// UnhealthyThreshold: a replica lagging more than this does not serve (--unhealthy-threshold).
	UnhealthyThreshold time.Duration
	// ShutdownGracePeriod is how long Drain waits for in-flight requests, and how long a
	// transition out of a serving state (a demotion) waits for open transactions before it
	// rolls them back (--shutdown-grace-period).
	ShutdownGracePeriod time.Duration

	// DBName is the MySQL database the tablet serves (--init-db-name-override or vt_<keyspace>).
	DBName string
	Query  QueryConfig
	// Connectors says how to reach MySQL for queries and for kills.
	Connectors Connectors
	ACL        ACLConfig
}

// QueryConfig configures query execution; field comments name vttablet's flags.
type QueryConfig struct {
	PoolSize         int           // --queryserver-config-pool-size
	StreamPoolSize   int           // --queryserver-config-stream-pool-size
	ReaderPoolSize   int           // snapshot readers of VStreamRows/VStreamTables/VStreamResults (filtered user; tabletd's own)
	TxCap            int           // --queryserver-config-transaction-cap
	QueryPoolTimeout time.Duration // --queryserver-config-query-pool-timeout (0: the query's own deadline)
	TxPoolTimeout    time.Duration // --queryserver-config-txpool-timeout
	MaxWaiters       int           // --queryserver-config-query-pool-waiter-cap (0: unlimited)
	IdleTimeout      time.Duration // --queryserver-config-idle-timeout
	MaxLifetime      time.Duration // --queryserver-config-pool-conn-max-lifetime (0: unlimited)
	QueryTimeout     time.Duration // --queryserver-config-query-timeout
	TxTimeout        time.Duration // --queryserver-config-transaction-timeout (OLTP)
	OLAPTxTimeout    time.Duration // --queryserver-config-olap-transaction-timeout
	KillTimeout      time.Duration // bound on issuing KILL for a query past its deadline
	MaxResultSize    int           // --queryserver-config-max-result-size
	StreamBufferSize int           // --queryserver-config-stream-buffer-size (bytes per streamed batch)
	PlanCacheSize    int           // plans cached by SQL text
	WarnResultSize   int           // --queryserver-config-warn-result-size: log and count results above this many rows (0: off)
	// RejectDMLWithoutWhere refuses UPDATE and DELETE without a WHERE clause
	// (--queryserver-config-reject-dml-without-where; tabletd's own flag).
	RejectDMLWithoutWhere bool
	// MaxDMLRows: an INSERT, UPDATE or DELETE affecting more rows is rolled back and fails
	// (--queryserver-config-max-dml-rows; tabletd's own flag; 0: no cap).
	MaxDMLRows   int
	Consolidator ConsolidatorConfig
}

// ConsolidatorConfig configures the sharing of identical concurrent reads.
type ConsolidatorConfig struct {
	OnPrimary    bool  // --enable-consolidator: also consolidate on a PRIMARY
	OnReplicas   bool  // --enable-consolidator-replicas: consolidate on REPLICA/RDONLY
	MaxWaiters   int   // --consolidator-query-waiter-cap (0: unlimited)
	MaxBytes     int64 // --consolidator-total-bytes: results held for waiters (0: unlimited)
	RejectOnFull bool  // --consolidator-reject-on-full: RESOURCE_EXHAUSTED instead of running one's own query
}

// DefaultQueryConfig returns vttablet's defaults.
func DefaultQueryConfig() QueryConfig {
	return QueryConfig{
		PoolSize: 16, StreamPoolSize: 200, ReaderPoolSize: 32, TxCap: 20, TxPoolTimeout: time.Second,
		IdleTimeout: 30 * time.Minute, QueryTimeout: 30 * time.Second, TxTimeout: 30 * time.Second,
		OLAPTxTimeout: 30 * time.Second, KillTimeout: time.Second, MaxResultSize: 10000,
		StreamBufferSize: 32 * 1024, PlanCacheSize: 5000,
		Consolidator: ConsolidatorConfig{OnReplicas: true, MaxBytes: 128 << 20},
	}
}

// Validate names the first unusable query setting by its flag.
func (q QueryConfig) Validate() error {
	switch {
	case q.PoolSize <= 0:
		return fmt.Errorf("--queryserver-config-pool-size must be > 0 (got %d)", q.PoolSize)
	case q.StreamPoolSize <= 0:
		return fmt.Errorf("--queryserver-config-stream-pool-size must be > 0 (got %d)", q.StreamPoolSize)
	case q.ReaderPoolSize <= 0:
		return fmt.Errorf("snapshot reader pool size must be > 0 (got %d)", q.ReaderPoolSize)
	case q.TxCap <= 0:
		return fmt.Errorf("--queryserver-config-transaction-cap must be > 0 (got %d)", q.TxCap)
	case q.QueryPoolTimeout < 0 || q.TxPoolTimeout <= 0:
		return fmt.Errorf("--queryserver-config-query-pool-timeout must be >= 0 and --queryserver-config-txpool-timeout > 0")
	case q.QueryTimeout < 0 || q.TxTimeout <= 0 || q.OLAPTxTimeout <= 0 || q.KillTimeout <= 0:
		return fmt.Errorf("query and transaction timeouts must be > 0")
	case q.MaxResultSize <= 0:
		return fmt.Errorf("--queryserver-config-max-result-size must be > 0 (got %d)", q.MaxResultSize)
	case q.MaxDMLRows < 0:
		return fmt.Errorf("--queryserver-config-max-dml-rows must be >= 0 (got %d)", q.MaxDMLRows)
	case q.WarnResultSize < 0:
		return fmt.Errorf("--queryserver-config-warn-result-size must be >= 0 (got %d)", q.WarnResultSize)
	case q.StreamBufferSize <= 0 || q.PlanCacheSize <= 0 || q.MaxWaiters < 0 || q.IdleTimeout < 0 || q.MaxLifetime < 0:
		return fmt.Errorf("stream buffer size and plan cache size must be > 0; waiter cap, idle timeout and lifetime >= 0")
	}
	return nil
}

// DefaultConfig returns vttablet's defaults.
func DefaultConfig() Config {
	return Config{
		HealthCheckInterval: 20 * time.Second,
		ProbeInterval:       time.Second,
		ProbeTimeout:        2 * time.Second,
		UnhealthyThreshold:  2 * time.Hour,
		ShutdownGracePeriod: 3 * time.Second,
		Query:               DefaultQueryConfig(),
	}
}

// Validate reports the first unusable setting, naming its flag.
func (c Config) Validate() error {
	switch {
	case c.Keyspace == "":
		return errors.New("--init-keyspace must be set")
	case c.Shard == "":
		return errors.New("--init-shard must be set")
	case c.Alias == nil:
		return errors.New("--tablet-path must be set")
	case c.HealthCheckInterval <= 0:
		return fmt.Errorf("--health-check-interval must be > 0 (got %v)", c.HealthCheckInterval)
	case c.ProbeInterval <= 0 || c.ProbeTimeout <= 0:
		return fmt.Errorf("mysql probe interval and timeout must be > 0 (got %v, %v)", c.ProbeInterval, c.ProbeTimeout)
	case c.UnhealthyThreshold <= 0:
		return fmt.Errorf("--unhealthy-threshold must be > 0 (got %v)", c.UnhealthyThreshold)
	case c.ShutdownGracePeriod < 0:
		return fmt.Errorf("--shutdown-grace-period must be >= 0 (got %v)", c.ShutdownGracePeriod)
	}
	return c.Query.Validate()
}
