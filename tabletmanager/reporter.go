package tabletmanager

import (
	"context"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/replication"
)

// replState is what the replication RPCs and the reporter last did, for the status page.
type replState struct {
	lastErr    string
	lastErrAt  time.Time
	repairs    int
	lastRepair time.Time
}

func (m *Manager) setReplStopped(stopped bool) {
	m.mu.Lock()
	m.replStopped = stopped
	m.mu.Unlock()
}

func (m *Manager) setReplErr(msg string) {
	m.mu.Lock()
	m.repl.lastErr, m.repl.lastErrAt = msg, m.now()
	m.mu.Unlock()
}

// repairReplicationLocked restarts the replication of a replica whose replication stopped by
// itself (an I/O or SQL thread that died, mysqld restarted with skip_slave_start) — vttablet's
// replication reporter. Replication stopped by an RPC (StopReplication, ERS, a backup) is left
// stopped, and so is a thread stopped by an SQL error: restarting it would only fail again or,
// worse, skip nothing and loop; the error stays visible in the health record instead.
func (m *Manager) repairReplicationLocked(ctx context.Context) {
	if !m.cfg.RepairReplication {
		return
	}
	m.metrics.repairChecks.Inc()
	t := m.Tablet()
	m.mu.Lock()
	stopped, demoted := m.replStopped, m.demoted
	m.mu.Unlock()
	if stopped || demoted || t.Type == topodatapb.TabletType_PRIMARY || t.Type == topodatapb.TabletType_BACKUP ||
		t.Type == topodatapb.TabletType_RESTORE {
		return
	}
	db, flavor, err := m.server(ctx)
	if err != nil {
		return
	}
	st, err := replication.ReplicaStatus(ctx, db, flavor)
	ioUp := st.IOThreadRunning || strings.EqualFold(st.IOThreadState, "Connecting") // reconnecting by itself
	if err != nil || !st.Configured || (ioUp && st.SQLThreadRunning) || (st.LastSQLError != "" && !st.SQLThreadRunning) {
		return
	}
	if err := replication.StartReplication(ctx, db, flavor); err != nil {
		m.setReplErr("replication repair: " + err.Error())
		m.log.Warn("cannot restart replication that stopped by itself", zap.Error(err))
		return
	}
	m.metrics.repairs.Inc()
	m.mu.Lock()
	m.repl.repairs++
	m.repl.lastRepair = m.now()
	m.mu.Unlock()
	m.log.Info("restarted replication that had stopped by itself",
		zap.Bool("io_thread_was_running", st.IOThreadRunning), zap.Bool("sql_thread_was_running", st.SQLThreadRunning),
		zap.String("last_io_error", st.LastIOError))
	m.qs.RunHealthCheck()
}

// metrics are the manager's Prometheus metrics.
type metrics struct {
	repairChecks prometheus.Counter
	repairs      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, labels prometheus.Labels) (*metrics, error) {
	m := &metrics{
		repairChecks: prometheus.NewCounter(prometheus.CounterOpts{Name: "tabletd_replication_repair_checks_total",
			Help: "Times the replication reporter looked at a replica's replication.", ConstLabels: labels}),
		repairs: prometheus.NewCounter(prometheus.CounterOpts{Name: "tabletd_replication_repairs_total",
			Help: "Replication restarted after it stopped by itself.", ConstLabels: labels}),
	}
	for _, c := range []prometheus.Collector{m.repairChecks, m.repairs} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
