package pool

import (
	"fmt"
	"time"
)

// Config is one pool's configuration. Field comments name the vttablet flags that set them.
type Config struct {
	// Name is the pool's name, the value of the pool label on its metrics: "ConnPool",
	// "StreamConnPool", "TransactionPool", "FoundRowsPool", "DbaPool".
	Name string
	// Capacity is the most connections open at once, counting those being dialed
	// (--queryserver-config-pool-size, --queryserver-config-stream-pool-size,
	// --queryserver-config-transaction-cap, --dba-pool-size). SetCapacity changes it.
	Capacity int
	// WaitTimeout bounds a Get: waiting for a connection plus dialing and preparing it
	// (--queryserver-config-query-pool-timeout, --queryserver-config-txpool-timeout, …).
	// 0: only the caller's context bounds it.
	WaitTimeout time.Duration
	// MaxWaiters caps the callers waiting at once; beyond it Get fails at once with
	// ErrPoolFull (--queryserver-config-query-pool-waiter-cap). 0: unlimited.
	MaxWaiters int
	// IdleTimeout closes connections idle for longer (--queryserver-config-idle-timeout).
	// 0: never.
	IdleTimeout time.Duration
	// MaxLifetime closes connections older than this when they come back or sit idle
	// (--queryserver-config-pool-conn-max-lifetime). 0: unlimited.
	MaxLifetime time.Duration
}

// DefaultConfig returns vttablet v23's defaults for the named pool (tabletenv/config.go and
// mysqlctl's DBA pool); unknown names get the query pool's.
func DefaultConfig(name string) Config {
	c := Config{Name: name, Capacity: 16, IdleTimeout: 30 * time.Minute}
	switch name {
	case "StreamConnPool":
		c.Capacity = 200
	case "TransactionPool", "FoundRowsPool":
		c.Capacity, c.WaitTimeout = 20, time.Second
	case "DbaPool":
		c.Capacity, c.IdleTimeout = 20, time.Minute
	}
	return c
}

// ConfigError reports an unusable Config field by the flag that sets it. It matches
// ErrInvalidConfig under errors.Is.
type ConfigError struct {
	Pool  string // Config.Name
	Flag  string // the vttablet flag (or, without one, the Config field) at fault
	Rule  string // what the value must be, e.g. "must be at least 1"
	Value any    // the value given
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("%s %s (got %v)", e.Flag, e.Rule, e.Value)
}

// Is makes errors.Is(err, ErrInvalidConfig) true.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// Validate reports the first unusable field, naming its flag.
func (c Config) Validate() error {
	f := flagsFor(c.Name)
	bad := func(flag, rule string, v any) error {
		return &ConfigError{Pool: c.Name, Flag: flag, Rule: rule, Value: v}
	}
	switch {
	case c.Name == "":
		return bad("Config.Name", "must be set (it is the pool metric label)", `""`)
	case c.Capacity < 1:
		return bad(f.size, "must be at least 1", c.Capacity)
	case c.WaitTimeout < 0:
		return bad(f.timeout, "must be >= 0", c.WaitTimeout)
	case c.MaxWaiters < 0:
		return bad(f.waiters, "must be >= 0", c.MaxWaiters)
	case c.IdleTimeout < 0:
		return bad("--queryserver-config-idle-timeout", "must be >= 0", c.IdleTimeout)
	case c.MaxLifetime < 0:
		return bad("--queryserver-config-pool-conn-max-lifetime", "must be >= 0", c.MaxLifetime)
	}
	return nil
}

// poolFlags are the vttablet flags behind one pool's Config.
type poolFlags struct{ size, timeout, waiters string }

func flagsFor(name string) poolFlags {
	const waiters = "--queryserver-config-query-pool-waiter-cap"
	switch name {
	case "ConnPool":
		return poolFlags{"--queryserver-config-pool-size", "--queryserver-config-query-pool-timeout", waiters}
	case "StreamConnPool":
		return poolFlags{"--queryserver-config-stream-pool-size", "--queryserver-config-stream-pool-timeout", waiters}
	case "TransactionPool", "FoundRowsPool":
		return poolFlags{"--queryserver-config-transaction-cap", "--queryserver-config-txpool-timeout", waiters}
	case "DbaPool":
		return poolFlags{"--dba-pool-size", "DbaPool Config.WaitTimeout", waiters}
	}
	return poolFlags{name + " Config.Capacity", name + " Config.WaitTimeout", name + " Config.MaxWaiters"}
}
