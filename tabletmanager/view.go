package tabletmanager

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/tabletd/tabletd/replication"
)

// ReplicationView is what /debug/status shows about this tablet's replication.
type ReplicationView struct {
	Err                       string // MySQL could not be read; the rest is empty
	Configured                bool
	Source                    string // host:port
	IOState, SQLState         string // Yes / No / Connecting
	LastIOError, LastSQLError string
	StoppedByRPC              bool // an RPC stopped it: the reporter leaves it stopped
	Demoted                   bool // DemotePrimary ran; waiting to be re-pointed
	SemiSync                  string
	Durability                string
	LastReparent              string // newest reparent journal row
	Repairs                   int
	LastRepair                time.Time
	LastError                 string
	LastErrorAt               time.Time
}

// ReplicationView reads the replication state for display; ctx bounds the MySQL reads.
func (m *Manager) ReplicationView(ctx context.Context) ReplicationView {
	m.mu.Lock()
	v := ReplicationView{StoppedByRPC: m.replStopped, Demoted: m.demoted, Durability: m.durability,
		Repairs: m.repl.repairs, LastRepair: m.repl.lastRepair, LastError: m.repl.lastErr, LastErrorAt: m.repl.lastErrAt}
	m.mu.Unlock()
	if v.Durability == "" {
		v.Durability = "none (not read yet, or unset)"
	}
	db, flavor, err := m.server(ctx)
	if err != nil {
		v.Err = err.Error()
		return v
	}
	if st, err := replication.ReplicaStatus(ctx, db, flavor); err != nil {
		v.Err = err.Error()
	} else if st.Configured {
		v.Configured = true
		v.Source = net.JoinHostPort(st.SourceHost, strconv.Itoa(st.SourcePort))
		v.IOState, v.SQLState = orNo(st.IOThreadState), "No"
		if st.SQLThreadRunning {
			v.SQLState = "Yes"
		}
		v.LastIOError, v.LastSQLError = st.LastIOError, st.LastSQLError
	}
	if ss, err := replication.ReadSemiSync(ctx, db, flavor); err == nil {
		v.SemiSync = semiSyncText(ss)
	}
	if j, err := m.lastJournal(ctx); err == nil {
		v.LastReparent = fmt.Sprintf("%s by %s at %s, position %s", j.Primary, j.Action, j.At.UTC().Format(time.RFC3339), j.Position)
	}
	return v
}

func semiSyncText(ss replication.SemiSync) string {
	if !ss.Available {
		return "not available"
	}
	s := fmt.Sprintf("primary side %s, replica side %s", onOff(ss.PrimaryEnabled, ss.PrimaryActive), onOff(ss.ReplicaEnabled, ss.ReplicaActive))
	if ss.PrimaryEnabled {
		s += fmt.Sprintf("; %d semi-sync replica(s), timeout %v, %d write(s) waiting for an ack", ss.PrimaryClients, ss.Timeout, ss.WaitingSessions)
	}
	return s
}

func onOff(enabled, active bool) string {
	switch {
	case enabled && active:
		return "on (active)"
	case enabled:
		return "on (not active)"
	}
	return "off"
}

func orNo(s string) string {
	if s == "" {
		return "No"
	}
	return s
}
