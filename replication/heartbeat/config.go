package heartbeat

import (
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
	"github.com/tabletd/tabletd/sidecar"
)

const (
	// DefaultInterval is vttablet's --heartbeat-interval default.
	DefaultInterval = time.Second
	// MaxInterval is vttablet's cap on --heartbeat-interval: it silently lowers larger values
	// to 1s. Validate refuses them, so the flag layer clamps (and says so) as vttablet does.
	MaxInterval = time.Second
	// MinOnDemandDuration is the smallest --heartbeat-on-demand-duration vttablet uses: it
	// raises smaller positive values to 4s. Validate refuses them; the flag layer clamps.
	MinOnDemandDuration = 4 * time.Second
)

// WriterConfig configures the primary's heartbeat writer.
type WriterConfig struct {
	Keyspace, Shard string
	// TabletUID is written to the tabletUid column.
	TabletUID uint32
	// SidecarDB is the keyspace's sidecar database (default "_vt").
	SidecarDB string
	// Interval between writes (default 1s, at most 1s).
	Interval time.Duration
	// OnDemandDuration, when > 0, writes only for this long after each RequestHeartbeats
	// (and after Open); 0 writes all the time.
	OnDemandDuration time.Duration
	// DB are the connection settings, normally the application user's, so that a read_only
	// server refuses the writes. Never logged (it holds the password).
	DB *mysql.Config
}

// DefaultWriterConfig returns vttablet's defaults; the caller sets Keyspace, Shard, TabletUID
// and DB.
func DefaultWriterConfig() WriterConfig {
	return WriterConfig{SidecarDB: sidecar.DefaultName, Interval: DefaultInterval}
}

// Validate reports the first setting that cannot work, with code INVALID_ARGUMENT.
func (c WriterConfig) Validate() error {
	if err := validateCommon(c.Keyspace, c.Shard, c.SidecarDB, c.Interval, c.DB); err != nil {
		return err
	}
	if c.OnDemandDuration < 0 || (c.OnDemandDuration > 0 && c.OnDemandDuration < MinOnDemandDuration) {
		return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT,
			"heartbeat: on-demand duration must be 0 (always write) or at least %v (got %v)", MinOnDemandDuration, c.OnDemandDuration)
	}
	return nil
}

// ReaderConfig configures a replica's heartbeat reader.
type ReaderConfig struct {
	Keyspace, Shard string
	// SidecarDB is the keyspace's sidecar database (default "_vt").
	SidecarDB string
	// Interval between reads (default 1s, at most 1s). It should equal the primary's write
	// interval: Lag explains a heartbeat older than 3 intervals.
	Interval time.Duration
	// DB are the connection settings (any user that can read the sidecar database).
	DB *mysql.Config
}

// DefaultReaderConfig returns vttablet's defaults; the caller sets Keyspace, Shard and DB.
func DefaultReaderConfig() ReaderConfig {
	return ReaderConfig{SidecarDB: sidecar.DefaultName, Interval: DefaultInterval}
}

// Validate reports the first setting that cannot work, with code INVALID_ARGUMENT.
func (c ReaderConfig) Validate() error {
	return validateCommon(c.Keyspace, c.Shard, c.SidecarDB, c.Interval, c.DB)
}

func validateCommon(keyspace, shard, sidecarDB string, interval time.Duration, db *mysql.Config) error {
	switch {
	case keyspace == "":
		return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "heartbeat: keyspace must be set")
	case shard == "":
		return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "heartbeat: shard must be set")
	case interval <= 0 || interval > MaxInterval:
		return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT,
			"heartbeat: interval must be > 0 and at most %v, vttablet's cap (got %v)", MaxInterval, interval)
	case db == nil:
		return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "heartbeat: database connection settings (DB) must be set")
	}
	return sidecar.ValidateName(sidecarDB)
}

// Deps are the collaborators; nil fields get harmless defaults.
type Deps struct {
	Log      *zap.Logger           // nil: no logging
	Registry prometheus.Registerer // nil: metrics are not exported
	Clock    func() time.Time      // ts written, lag arithmetic; nil: time.Now
	// Labels are extra constant labels on every metric; keyspace and shard are always added
	// from the config.
	Labels prometheus.Labels
}

func (d Deps) withDefaults() Deps {
	if d.Log == nil {
		d.Log = zap.NewNop()
	}
	if d.Clock == nil {
		d.Clock = time.Now
	}
	return d
}

// keyspaceShard is the heartbeat row's key, as vttablet writes it.
func keyspaceShard(keyspace, shard string) string { return keyspace + ":" + shard }
