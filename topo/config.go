package topo

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Config says where the topology lives and how patient to be with it.
// Zero durations and an empty LockHostname take the defaults of DefaultConfig
// when passed to Open.
type Config struct {
	// GlobalServerAddress is the comma-separated list of etcd endpoints of the
	// global topology (--topo-global-server-address).
	GlobalServerAddress string
	// GlobalRoot is the key prefix of the global topology, e.g. /vitess/global
	// (--topo-global-root).
	GlobalRoot string
	// Cell is the tablet's cell: the cell part of --tablet-path. Its etcd address
	// and root are read from the global record cells/<cell>/CellInfo.
	Cell string

	// DialTimeout bounds connecting to an etcd cluster (--topo-dial-timeout).
	DialTimeout time.Duration
	// RequestTimeout bounds each single etcd request (--topo-request-timeout).
	RequestTimeout time.Duration
	// LockTTL is the lease TTL of keyspace/shard locks; whole seconds
	// (--topo-etcd-lease-ttl, Vitess default 30s).
	LockTTL time.Duration
	// LockTimeout bounds waiting for a keyspace/shard lock (--lock-timeout,
	// Vitess default 45s).
	LockTimeout time.Duration
	// LockHostname is written into lock descriptions so vtctld operators can see
	// who holds a lock; defaults to the machine's hostname.
	LockHostname string
}

// DefaultConfig returns the defaults: 5s dial, 10s per request, 30s lock lease,
// 45s lock wait, and this machine's hostname in lock descriptions.
func DefaultConfig() Config {
	c := Config{
		DialTimeout:    5 * time.Second,
		RequestTimeout: 10 * time.Second,
		LockTTL:        30 * time.Second,
		LockTimeout:    45 * time.Second,
		LockHostname:   "unknown",
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		c.LockHostname = h
	}
	return c
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.DialTimeout == 0 {
		c.DialTimeout = d.DialTimeout
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = d.RequestTimeout
	}
	if c.LockTTL == 0 {
		c.LockTTL = d.LockTTL
	}
	if c.LockTimeout == 0 {
		c.LockTimeout = d.LockTimeout
	}
	if c.LockHostname == "" {
		c.LockHostname = d.LockHostname
	}
	return c
}

// Validate reports the first unusable setting, naming its flag and the fix.
// Zero durations are accepted (they mean "default").
func (c Config) Validate() error {
	if strings.TrimSpace(c.GlobalServerAddress) == "" {
		return errors.New("--topo-global-server-address is required: set it to the global etcd endpoints, e.g. --topo-global-server-address=etcd1:2379,etcd2:2379")
	}
	if _, err := splitEndpoints(c.GlobalServerAddress); err != nil {
		return fmt.Errorf("--topo-global-server-address %q: %v", c.GlobalServerAddress, err)
	}
	if c.GlobalRoot == "" {
		return errors.New("--topo-global-root is required: set it to the key prefix of the global topology, e.g. --topo-global-root=/vitess/global")
	}
	if err := ValidateCellName(c.Cell); err != nil {
		return fmt.Errorf("cell (the cell part of --tablet-path, e.g. zone1 in zone1-0000000100): %v", err)
	}
	switch {
	case c.DialTimeout < 0:
		return fmt.Errorf("--topo-dial-timeout must be > 0 (got %v)", c.DialTimeout)
	case c.RequestTimeout < 0:
		return fmt.Errorf("--topo-request-timeout must be > 0 (got %v)", c.RequestTimeout)
	case c.LockTTL < 0 || (c.LockTTL > 0 && c.LockTTL < time.Second):
		return fmt.Errorf("--topo-etcd-lease-ttl must be at least 1s (got %v)", c.LockTTL)
	case c.LockTimeout < 0:
		return fmt.Errorf("--lock-timeout must be > 0 (got %v)", c.LockTimeout)
	}
	return nil
}

// splitEndpoints turns "a:1, b:2" into ["a:1","b:2"], rejecting empty entries.
func splitEndpoints(addr string) ([]string, error) {
	parts := strings.Split(addr, ",")
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" {
			return nil, errors.New("contains an empty endpoint; list endpoints as host:port separated by single commas")
		}
		out = append(out, p)
	}
	return out, nil
}
