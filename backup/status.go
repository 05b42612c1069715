package backup

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Result is the outcome of the last backup or restore, for /debug/status.
type Result struct {
	Name     string // backup name ("" when it failed before one was chosen)
	Engine   string
	Position string
	Size     int64 // stored bytes
	Started  time.Time
	Duration time.Duration
	Err      string
	// Phases are the restore's phases with their durations, in order.
	Phases []Phase
}

// Phase is one timed step of a restore.
type Phase struct {
	Name     string
	Duration time.Duration
}

// Status is what /debug/status shows.
type Status struct {
	Storage     string
	Running     string
	LastBackup  Result
	LastRestore Result
}

// Status returns the last backup and restore and what is running now.
func (s *Service) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{Running: s.running, LastBackup: s.lastBackup, LastRestore: s.lastRestore}
	st.LastBackup.Phases = append([]Phase(nil), st.LastBackup.Phases...)
	st.LastRestore.Phases = append([]Phase(nil), st.LastRestore.Phases...)
	if s.storage != nil {
		st.Storage = s.storage.Describe()
	} else {
		st.Storage = "none configured"
	}
	return st
}

func (s *Service) finish(dst *Result, _ string, begin time.Time, m *Manifest, err error) {
	r := Result{Started: begin, Duration: s.now().Sub(begin)}
	if m != nil {
		r.Name, r.Engine, r.Position, r.Size = m.BackupName, m.BackupMethod, m.Position, storedSize(m)
	}
	if err != nil {
		r.Err = err.Error()
	}
	s.mu.Lock()
	if dst == &s.lastRestore {
		r.Phases = s.lastRestore.Phases
	}
	*dst = r
	s.mu.Unlock()
}

// AddRestorePhase appends a timed phase to the running (or last) restore.
func (s *Service) AddRestorePhase(name string, d time.Duration) {
	s.mu.Lock()
	s.lastRestore.Phases = append(s.lastRestore.Phases, Phase{Name: name, Duration: d})
	s.mu.Unlock()
	s.metrics.phase.WithLabelValues(name).Observe(d.Seconds())
}

// RestoreFailed records a failure after Restore returned (catch-up, replication setup).
func (s *Service) RestoreFailed(err error) {
	s.mu.Lock()
	s.lastRestore.Err = err.Error()
	s.mu.Unlock()
	s.metrics.failures.WithLabelValues("restore").Inc()
}

type metrics struct {
	bytes    *prometheus.CounterVec
	failures *prometheus.CounterVec
	duration *prometheus.HistogramVec
	phase    *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	buckets := prometheus.ExponentialBuckets(1, 2, 16)
	m := &metrics{
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tabletd_backup_bytes_total",
			Help: "Bytes stored by completed backups and read by completed restores."}, []string{"operation"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tabletd_backup_failures_total",
			Help: "Backups and restores that failed."}, []string{"operation"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tabletd_backup_duration_seconds",
			Help: "Duration of completed backups and restores.", Buckets: buckets}, []string{"operation"}),
		phase: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tabletd_restore_phase_seconds",
			Help: "Duration of each restore phase.", Buckets: buckets}, []string{"phase"}),
	}
	for _, c := range []prometheus.Collector{m.bytes, m.failures, m.duration, m.phase} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	// Failures start at 0 so "no failure yet" is visible, not absent.
	m.failures.WithLabelValues("backup")
	m.failures.WithLabelValues("restore")
	return m, nil
}
