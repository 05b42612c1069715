package replication

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// SemiSync is a server's semi-synchronous replication state.
type SemiSync struct {
	// Available is true when semi-sync can be used: always on MariaDB
	// (built in since 10.3); on MySQL when a semi-sync plugin is loaded,
	// with either naming (semisync_source/semisync_replica or the older
	// semisync_master/semisync_slave).
	Available bool
	// PrimaryEnabled and ReplicaEnabled are the *_enabled variables
	// (rpl_semi_sync_master_enabled / rpl_semi_sync_source_enabled,
	// rpl_semi_sync_slave_enabled / rpl_semi_sync_replica_enabled).
	PrimaryEnabled, ReplicaEnabled bool
	// PrimaryActive is Rpl_semi_sync_master_status (source on MySQL): the
	// primary side is on and waiting for acknowledgements.
	PrimaryActive bool
	// ReplicaActive is Rpl_semi_sync_slave_status (replica on MySQL): the
	// receiver thread acknowledges. It lags ReplicaEnabled until the I/O
	// thread restarts (SetSemiSync does that restart).
	ReplicaActive bool
	// PrimaryClients is Rpl_semi_sync_master_clients: connected replicas
	// that acknowledge.
	PrimaryClients int
	// WaitingSessions is Rpl_semi_sync_master_wait_sessions: commits
	// currently blocked waiting for an acknowledgement.
	WaitingSessions int
	// Timeout is rpl_semi_sync_master_timeout (source on MySQL): how long a
	// commit waits for an acknowledgement before the primary falls back to
	// asynchronous replication.
	Timeout time.Duration
	// WaitForReplicaCount is MySQL's rpl_semi_sync_source_wait_for_replica_count
	// (master_wait_for_slave_count); always 1 on MariaDB, which has no such
	// setting.
	WaitForReplicaCount int
}

// semiSyncNames are the variable and status names of one server's
// semi-sync implementation; a side whose plugin is not loaded has empty
// names.
type semiSyncNames struct {
	primaryEnabled, replicaEnabled string // variables
	timeout, waitCount             string // variables ("" waitCount on MariaDB)
	primaryStatus, replicaStatus   string // status
	clients, waitSessions          string // status
}

// Semi-sync variable names per implementation.
var (
	// semiSyncMaster is MariaDB's built-in semi-sync and MySQL's older
	// semisync_master/semisync_slave plugins.
	semiSyncMasterPrimary = semiSyncNames{primaryEnabled: "rpl_semi_sync_master_enabled",
		timeout: "rpl_semi_sync_master_timeout", waitCount: "rpl_semi_sync_master_wait_for_slave_count",
		primaryStatus: "Rpl_semi_sync_master_status", clients: "Rpl_semi_sync_master_clients",
		waitSessions: "Rpl_semi_sync_master_wait_sessions"}
	semiSyncSlaveReplica = semiSyncNames{replicaEnabled: "rpl_semi_sync_slave_enabled",
		replicaStatus: "Rpl_semi_sync_slave_status"}
	// semiSyncSource is MySQL 8.0.26+'s semisync_source/semisync_replica
	// plugins (the only ones in 8.4).
	semiSyncSourcePrimary = semiSyncNames{primaryEnabled: "rpl_semi_sync_source_enabled",
		timeout: "rpl_semi_sync_source_timeout", waitCount: "rpl_semi_sync_source_wait_for_replica_count",
		primaryStatus: "Rpl_semi_sync_source_status", clients: "Rpl_semi_sync_source_clients",
		waitSessions: "Rpl_semi_sync_source_wait_sessions"}
	semiSyncReplicaReplica = semiSyncNames{replicaEnabled: "rpl_semi_sync_replica_enabled",
		replicaStatus: "Rpl_semi_sync_replica_status"}
)

// withReplica returns n with the replica-side names of r.
func (n semiSyncNames) withReplica(r semiSyncNames) semiSyncNames {
	n.replicaEnabled, n.replicaStatus = r.replicaEnabled, r.replicaStatus
	return n
}

// available reports whether either side is loaded.
func (n semiSyncNames) available() bool { return n.primaryEnabled != "" || n.replicaEnabled != "" }

// setStatement returns the SET GLOBAL for the loaded sides, or false when
// neither is loaded.
func (n semiSyncNames) setStatement(primary, replica bool) (statement, bool) {
	var parts []string
	if n.primaryEnabled != "" {
		parts = append(parts, "GLOBAL "+n.primaryEnabled+" = "+onOff(primary))
	}
	if n.replicaEnabled != "" {
		parts = append(parts, "GLOBAL "+n.replicaEnabled+" = "+onOff(replica))
	}
	if len(parts) == 0 {
		return statement{}, false
	}
	return statement{sql: "SET " + strings.Join(parts, ", ")}, true
}

func onOff(b bool) string {
	if b {
		return "ON"
	}
	return "OFF"
}

const (
	semiSyncVarsQuery   = "SHOW GLOBAL VARIABLES LIKE 'rpl_semi_sync%'"
	semiSyncStatusQuery = "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync%'"
)

// readVariables runs a SHOW VARIABLES/STATUS query and returns its rows as
// a map from lower-cased Variable_name to Value.
func readVariables(ctx context.Context, q Querier, query string) (map[string]string, error) {
	rows, err := queryRows(ctx, q, query)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(rows))
	for _, r := range rows {
		name, ok := r.field("Variable_name", "VARIABLE_NAME")
		if !ok {
			return nil, fmt.Errorf("%w: %s: no Variable_name column", ErrUnexpectedResult, query)
		}
		value, _ := r.field("Value", "VARIABLE_VALUE")
		out[strings.ToLower(name)] = value
	}
	return out, nil
}

// namesFromVariables picks the implementation from the variables present.
func namesFromVariables(flavor Flavor, vars map[string]string) semiSyncNames {
	if flavor.IsMariaDB() {
		// Built in: the variables always exist on 10.3+.
		n := semiSyncMasterPrimary.withReplica(semiSyncSlaveReplica)
		n.waitCount = ""
		return n
	}
	var n semiSyncNames
	switch {
	case has(vars, semiSyncSourcePrimary.primaryEnabled):
		n = semiSyncSourcePrimary
	case has(vars, semiSyncMasterPrimary.primaryEnabled):
		n = semiSyncMasterPrimary
	}
	switch {
	case has(vars, semiSyncReplicaReplica.replicaEnabled):
		n = n.withReplica(semiSyncReplicaReplica)
	case has(vars, semiSyncSlaveReplica.replicaEnabled):
		n = n.withReplica(semiSyncSlaveReplica)
	}
	return n
}

func has(vars map[string]string, name string) bool {
	_, ok := vars[strings.ToLower(name)]
	return ok
}

// readSemiSyncNames finds the server's semi-sync implementation. MariaDB's
// is built in and needs no query.
func readSemiSyncNames(ctx context.Context, q Querier, flavor Flavor) (semiSyncNames, error) {
	if flavor.IsMariaDB() {
		return namesFromVariables(flavor, nil), nil
	}
	vars, err := readVariables(ctx, q, semiSyncVarsQuery)
	if err != nil {
		return semiSyncNames{}, err
	}
	return namesFromVariables(flavor, vars), nil
}

// ReadSemiSync reads the server's semi-sync settings and counters. A MySQL
// server without the plugins returns SemiSync{} (Available false).
func ReadSemiSync(ctx context.Context, q Querier, flavor Flavor) (SemiSync, error) {
	if err := flavor.check(); err != nil {
		return SemiSync{}, err
	}
	vars, err := readVariables(ctx, q, semiSyncVarsQuery)
	if err != nil {
		return SemiSync{}, err
	}
	names := namesFromVariables(flavor, vars)
	if !names.available() {
		return SemiSync{}, nil
	}
	status, err := readVariables(ctx, q, semiSyncStatusQuery)
	if err != nil {
		return SemiSync{}, err
	}
	return parseSemiSync(names, vars, status)
}

// parseSemiSync reads a SemiSync out of the variables and status values.
func parseSemiSync(names semiSyncNames, vars, status map[string]string) (SemiSync, error) {
	ss := SemiSync{Available: true, WaitForReplicaCount: 1}
	var err error
	flag := func(m map[string]string, name string) bool {
		v, ok := m[strings.ToLower(name)]
		if name == "" || !ok || err != nil {
			return false
		}
		var on bool
		on, err = parseSwitch(name, v)
		return on
	}
	number := func(m map[string]string, name string) int {
		v, ok := m[strings.ToLower(name)]
		if name == "" || !ok || err != nil {
			return 0
		}
		n, perr := strconv.Atoi(strings.TrimSpace(v))
		if perr != nil || n < 0 {
			err = fmt.Errorf("%w: %s = %q is not a count", ErrUnexpectedResult, name, v)
		}
		return n
	}
	ss.PrimaryEnabled = flag(vars, names.primaryEnabled)
	ss.ReplicaEnabled = flag(vars, names.replicaEnabled)
	ss.PrimaryActive = flag(status, names.primaryStatus)
	ss.ReplicaActive = flag(status, names.replicaStatus)
	ss.PrimaryClients = number(status, names.clients)
	ss.WaitingSessions = number(status, names.waitSessions)
	ss.Timeout = time.Duration(number(vars, names.timeout)) * time.Millisecond
	if names.waitCount != "" && has(vars, names.waitCount) {
		ss.WaitForReplicaCount = number(vars, names.waitCount)
	}
	if err != nil {
		return SemiSync{}, err
	}
	return ss, nil
}

// Plugins SetSemiSync installs on MySQL when asked to enable a side whose
// plugin is not loaded. The source/replica plugins exist from 8.0.26 and
// are the only ones in 8.4; older 8.0 servers have only master/slave.
var (
	installSourcePlugin  = statement{sql: "INSTALL PLUGIN rpl_semi_sync_source SONAME 'semisync_source.so'"}
	installMasterPlugin  = statement{sql: "INSTALL PLUGIN rpl_semi_sync_master SONAME 'semisync_master.so'"}
	installReplicaPlugin = statement{sql: "INSTALL PLUGIN rpl_semi_sync_replica SONAME 'semisync_replica.so'"}
	installSlavePlugin   = statement{sql: "INSTALL PLUGIN rpl_semi_sync_slave SONAME 'semisync_slave.so'"}
)

// errCantOpenLibrary is ER_CANT_OPEN_LIBRARY, the answer to INSTALL PLUGIN
// of a library the server does not ship.
const errCantOpenLibrary = 1126

// installPlugins installs the plugins needed to enable the requested sides
// on MySQL, preferring the naming the other side already uses, and returns
// whether it installed anything.
func installPlugins(ctx context.Context, q Querier, flavor Flavor, names semiSyncNames, primary, replica bool) (bool, error) {
	installed := false
	legacy := names.primaryEnabled == semiSyncMasterPrimary.primaryEnabled ||
		names.replicaEnabled == semiSyncSlaveReplica.replicaEnabled
	try := func(modern, old statement) error {
		if legacy && flavor == FlavorMySQL80 {
			return execStatement(ctx, q, flavor, old)
		}
		err := execStatement(ctx, q, flavor, modern)
		var me *mysql.MySQLError
		if err != nil && flavor == FlavorMySQL80 && errors.As(err, &me) && me.Number == errCantOpenLibrary {
			err = execStatement(ctx, q, flavor, old)
		}
		return err
	}
	if primary && names.primaryEnabled == "" {
		if err := try(installSourcePlugin, installMasterPlugin); err != nil {
			return installed, err
		}
		installed = true
	}
	if replica && names.replicaEnabled == "" {
		if err := try(installReplicaPlugin, installSlavePlugin); err != nil {
			return installed, err
		}
		installed = true
	}
	return installed, nil
}

// SetSemiSync turns the primary and replica sides of semi-sync on or off.
//
// MariaDB uses its built-in variables. On MySQL, a side asked to be enabled
// whose plugin is not loaded gets it installed first (INSTALL PLUGIN, which
// needs SUPER or the plugin table privileges); disabling a side that is not
// loaded does nothing, so disabling on a server without semi-sync succeeds.
//
// A running replica's I/O thread only picks up a change of the replica side
// when it reconnects (checked on MariaDB 10.11: Rpl_semi_sync_slave_status
// keeps its old value, and the primary does not count the replica, until
// the thread restarts). So when the I/O thread is running and the replica
// status differs from what was asked, SetSemiSync restarts the I/O thread
// itself (STOP/START SLAVE IO_THREAD); the applier is not touched.
func SetSemiSync(ctx context.Context, q Querier, flavor Flavor, primary, replica bool) error {
	if err := flavor.check(); err != nil {
		return err
	}
	names, err := readSemiSyncNames(ctx, q, flavor)
	if err != nil {
		return err
	}
	if flavor.IsMySQL() && (primary || replica) {
		installed, err := installPlugins(ctx, q, flavor, names, primary, replica)
		if err != nil {
			return err
		}
		if installed {
			if names, err = readSemiSyncNames(ctx, q, flavor); err != nil {
				return err
			}
		}
	}
	set, ok := names.setStatement(primary, replica)
	if !ok {
		return nil
	}
	if err := execStatement(ctx, q, flavor, set); err != nil {
		return err
	}
	if names.replicaEnabled == "" {
		return nil
	}
	return restartIOForSemiSync(ctx, q, flavor, names, replica)
}

// restartIOForSemiSync restarts a running I/O thread whose semi-sync
// status is not the wanted one.
func restartIOForSemiSync(ctx context.Context, q Querier, flavor Flavor, names semiSyncNames, want bool) error {
	st, err := ReplicaStatus(ctx, q, flavor)
	if err != nil || !st.Configured || !st.IOThreadRunning {
		return err
	}
	status, err := readVariables(ctx, q, semiSyncStatusQuery)
	if err != nil {
		return err
	}
	active := false
	if v, ok := status[strings.ToLower(names.replicaStatus)]; ok {
		if active, err = parseSwitch(names.replicaStatus, v); err != nil {
			return err
		}
	}
	if active == want {
		return nil
	}
	return execStatements(ctx, q, flavor, []statement{stopIOStatement(flavor), startIOStatement(flavor)})
}
