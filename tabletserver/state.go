package tabletserver

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
	"github.com/tabletd/tabletd/tabletserver/health"
)

// State is the query service's serving state, named as vttablet names them.
type State int32

// The serving states.
const (
	StateNotConnected State = iota // MySQL does not answer (or was not checked yet)
	StateNotServing                // MySQL answers but the tablet must not serve (type, replication)
	StateServing
	StateShuttingDown
)

func (s State) String() string {
	switch s {
	case StateNotConnected:
		return "NOT_CONNECTED"
	case StateNotServing:
		return "NOT_SERVING"
	case StateServing:
		return "SERVING"
	case StateShuttingDown:
		return "SHUTTING_DOWN"
	}
	return fmt.Sprintf("State(%d)", int32(s))
}

// LagUnknown is sent as replication_lag_seconds when the lag could not be measured: an
// honest "unknown", never a reassuring 0. Such a record also has serving=false and a
// health_error saying why.
const LagUnknown = math.MaxUint32

// ErrNoTarget is returned for a request without a Target.
var ErrNoTarget = rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "No target")

// MySQLHealth is what one probe of MySQL found.
type MySQLHealth struct {
	CheckedAt time.Time // zero: never checked
	Err       error     // nil: MySQL answered
	Flavor    string
	Version   string
	Position  string // Vitess-encoded, e.g. MariaDB/0-101-42
	ReadOnly  bool
	// StartedAt is when mysqld started (now - Uptime, to the second): a later value than the
	// previous probe's means mysqld restarted in between, however quickly.
	StartedAt time.Time
	// AppProblem says why the query service's user cannot use the tablet's database (it does
	// not exist, access denied); "" when it can. Such a tablet never serves.
	AppProblem string

	// Replication, measured on non-primary tablets only.
	ReplicationConfigured bool
	LagKnown              bool
	Lag                   time.Duration
	ReplicationProblem    string // why the lag is unknown, when it is
}

// Prober checks MySQL; it must return by the time ctx ends.
type Prober interface {
	Probe(ctx context.Context, primary bool) MySQLHealth
}

// Status is a snapshot of the query service for display.
type Status struct {
	State         State
	Serving       bool
	HealthError   string
	TabletType    topodatapb.TabletType
	PrimaryTerm   time.Time
	MySQL         MySQLHealth
	InFlight      int
	Subscribers   int
	LastBroadcast time.Time
}

// Server is the query service of one tablet.
type Server struct {
	cfg     Config
	log     *zap.Logger
	now     func() time.Time
	prober  Prober
	bc      *health.Broadcaster
	metrics *metrics
	kick    chan struct{}
	exec    *executor
	stats   queryStats // per-statement counters; the executor records into it

	termChecks chan struct{} // see TermChecks

	// mu guards the fields below. Never hold mu while probing MySQL or sending on a stream.
	mu           sync.Mutex
	tabletType   topodatapb.TabletType
	ptsTime      time.Time
	wantServing  bool
	wantReason   string // why the tablet manager does not want serving
	shuttingDown bool
	// lameduck: shutting down soon. The tablet advertises that it does not serve (health
	// stream, /debug/health) but still admits requests, so vtgate stops sending — and for a
	// primary starts buffering — before Drain refuses anything (vttablet's --lameduck-period).
	lameduck bool
	// draining is set while a transition out of a serving state winds down the old one: new
	// requests are refused, requests bound to open transactions still finish.
	draining bool
	// termCheck: a PRIMARY's MySQL came back; not serving until ConfirmTerm.
	termCheck bool
	mysql     MySQLHealth
	state     State
	serving   bool
	healthErr string
	idle      chan struct{} // closed when inflight drops to 0 during Drain
	lastSent  time.Time

	// adm is what StartRequest needs, republished by update under mu: admission takes no lock.
	adm      atomic.Pointer[admission]
	inflight atomic.Int64

	loopCancel  context.CancelFunc
	loopDone    chan struct{}
	closeEngine sync.Once

	// transition serializes Transition calls; never held by request paths.
	transition sync.Mutex
	// comps are the components that follow the serving state (heartbeat writer and reader);
	// guarded by transition.
	comps components
}

// New returns a Server that is not serving until Open and SetServingType say so.
func New(cfg Config, d Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Prober == nil {
		return nil, errors.New("tabletserver: a MySQL prober is required")
	}
	d = d.withDefaults()
	s := &Server{
		cfg:        cfg,
		log:        d.Log,
		now:        d.Clock,
		prober:     d.Prober,
		kick:       make(chan struct{}, 1),
		termChecks: make(chan struct{}, 1),
		tabletType: topodatapb.TabletType_UNKNOWN,
		state:      StateNotConnected,
		healthErr:  "tablet is initializing",
		wantReason: "tablet type not set yet",
	}
	s.comps = components{writer: d.HeartbeatWriter, reader: d.HeartbeatReader}
	s.bc = health.New(s.recordLocked())
	s.publishAdmissionLocked()
	m, err := newMetrics(d.Registry, cfg, s)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	labels := prometheus.Labels{"keyspace": cfg.Keyspace, "shard": cfg.Shard}
	s.stats.init(cfg.Query.PlanCacheSize) // querystats.go
	if s.exec, err = newExecutor(cfg, d, labels, &s.stats); err != nil {
		return nil, err
	}
	return s, nil
}

// Open starts the probe and broadcast loop. Close stops it.
func (s *Server) Open() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loopCancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.loopCancel, s.loopDone = cancel, make(chan struct{})
	s.exec.tx.open()
	go s.loop(ctx, s.loopDone)
}

// Close stops the loop and ends every health stream. Idempotent.
func (s *Server) Close() {
	s.mu.Lock()
	cancel, done := s.loopCancel, s.loopDone
	s.loopCancel = nil
	s.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	s.bc.Close()
	s.transition.Lock()
	s.comps.closeAll()
	s.transition.Unlock()
	s.closeEngine.Do(s.exec.close)
}

// RunHealthCheck probes MySQL and broadcasts now instead of at the next tick.
func (s *Server) RunHealthCheck() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// StreamHealth sends the current health record at once and then every change and every
// health-check interval, until ctx ends.
func (s *Server) StreamHealth(ctx context.Context, send func(*querypb.StreamHealthResponse) error) error {
	return s.bc.Stream(ctx, send)
}

// admission is the immutable snapshot of the state a request is admitted against.
type admission struct {
	serving      bool
	shuttingDown bool
	// txOnly: only requests bound to an open transaction or reserved connection are admitted
	// (shutting down, or draining the old state during a transition).
	txOnly     bool
	tabletType topodatapb.TabletType
}

// StartRequest admits a request for target. On success the caller must call EndRequest
// exactly once when the request has finished. Requests bound to an open transaction pass
// allowOnShutdown so they can finish while the tablet drains.
//
// It takes no lock: every query passes here. Drain publishes shuttingDown and then reads
// inflight; a request adds to inflight and then re-reads the state, so (atomics being
// sequentially consistent) either Drain sees the request or the request sees the drain.
func (s *Server) StartRequest(target *querypb.Target, allowOnShutdown bool) (err error) {
	defer func() { s.stats.vars.requestFailed(err) }() // vttablet's Errors count refusals too
	if err := s.admit(s.adm.Load(), target, allowOnShutdown); err != nil {
		return err
	}
	s.inflight.Add(1)
	if a := s.adm.Load(); a.txOnly && !allowOnShutdown {
		s.EndRequest()
		if a.shuttingDown {
			return rpcerr.New(vtrpcpb.Code_CLUSTER_EVENT, rpcerr.ShuttingDown)
		}
		return rpcerr.New(vtrpcpb.Code_CLUSTER_EVENT, rpcerr.NotServing)
	}
	return nil
}

func (s *Server) admit(a *admission, target *querypb.Target, allowOnShutdown bool) error {
	if a.shuttingDown && !allowOnShutdown {
		return rpcerr.New(vtrpcpb.Code_CLUSTER_EVENT, rpcerr.ShuttingDown)
	}
	if !a.serving && !(a.txOnly && allowOnShutdown) {
		return rpcerr.New(vtrpcpb.Code_CLUSTER_EVENT, rpcerr.NotServing)
	}
	return s.verifyTarget(a, target)
}

// EndRequest marks a request admitted by StartRequest as finished.
func (s *Server) EndRequest() {
	if s.inflight.Add(-1) != 0 || !s.adm.Load().txOnly {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.idle != nil && s.inflight.Load() == 0 {
		close(s.idle)
		s.idle = nil
	}
}

// VerifyTarget checks target against the tablet without admitting a request.
func (s *Server) VerifyTarget(target *querypb.Target) error {
	return s.verifyTarget(s.adm.Load(), target)
}

func (s *Server) verifyTarget(a *admission, t *querypb.Target) error {
	switch {
	case t == nil:
		return ErrNoTarget
	case t.Keyspace != s.cfg.Keyspace:
		return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "invalid keyspace %v does not match expected %v", t.Keyspace, s.cfg.Keyspace)
	case t.Shard != s.cfg.Shard:
		return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "invalid shard %v does not match expected %v", t.Shard, s.cfg.Shard)
	case t.TabletType != a.tabletType:
		return rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION, "%s: %v, want: %v or []", rpcerr.WrongTablet, t.TabletType, a.tabletType)
	}
	return nil
}

// EnterLameduck makes the tablet advertise not serving while it goes on serving: vtgate
// learns from the health stream that the tablet is going away and routes elsewhere (or
// buffers a primary's requests) before Drain refuses requests; Drain's SHUTTING_DOWN then
// supersedes it.
func (s *Server) EnterLameduck() {
	s.mu.Lock()
	s.lameduck = true
	s.mu.Unlock()
	s.update(true)
}

// Drain stops admitting new requests (they get SHUTTING_DOWN), tells subscribers the tablet
// no longer serves, and waits for in-flight requests until ctx ends. It returns ctx's error
// if requests were still running then.
func (s *Server) Drain(ctx context.Context) error {
	s.mu.Lock()
	s.shuttingDown = true
	s.publishAdmissionLocked()
	var idle chan struct{}
	if s.inflight.Load() > 0 {
		if s.idle == nil {
			s.idle = make(chan struct{})
		}
		idle = s.idle
	}
	s.mu.Unlock()
	s.update(true)
	if idle != nil {
		select {
		case <-idle:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// Open transactions get the rest of the grace period to commit or roll back (those
	// calls are still admitted); Close rolls back what is left.
	s.exec.tx.waitEmpty(ctx)
	return ctx.Err()
}

// Status returns a snapshot for the status page.
func (s *Server) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	serving, reason := s.advertisedLocked()
	return Status{
		State: s.state, Serving: serving, HealthError: reason, TabletType: s.tabletType,
		PrimaryTerm: s.ptsTime, MySQL: s.mysql, InFlight: int(s.inflight.Load()),
		Subscribers: s.bc.Subscribers(), LastBroadcast: s.lastSent,
	}
}

// publishAdmissionLocked republishes what StartRequest checks.
func (s *Server) publishAdmissionLocked() {
	s.adm.Store(&admission{serving: s.serving, shuttingDown: s.shuttingDown,
		txOnly: s.shuttingDown || s.draining, tabletType: s.tabletType})
}

func (s *Server) loop(ctx context.Context, done chan struct{}) {
	defer close(done)
	probe := time.NewTicker(s.cfg.ProbeInterval)
	defer probe.Stop()
	beat := time.NewTicker(s.cfg.HealthCheckInterval)
	defer beat.Stop()
	s.probeOnce(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-probe.C:
			s.probeOnce(ctx)
		case <-s.kick:
			s.probeOnce(ctx)
			s.update(true)
		case <-beat.C:
			s.update(true)
		}
	}
}

func (s *Server) probeOnce(ctx context.Context) {
	s.mu.Lock()
	primary := s.tabletType == topodatapb.TabletType_PRIMARY
	s.mu.Unlock()
	pctx, cancel := context.WithTimeout(ctx, s.cfg.ProbeTimeout)
	h := s.prober.Probe(pctx, primary)
	cancel()
	if ctx.Err() != nil {
		return // closing: the probe was cut short, its finding means nothing
	}
	if h.CheckedAt.IsZero() {
		h.CheckedAt = s.now()
	}
	if !primary {
		if lag, known, reason, ok := s.heartbeatLag(); ok && h.Err == nil {
			// The heartbeat's age is the lag; replication must also run for it to mean
			// anything (a stopped replica's heartbeat only ages).
			if h.LagKnown && !known {
				h.ReplicationProblem = reason
			}
			h.LagKnown, h.Lag = h.LagKnown && known, lag
		}
	}
	s.mu.Lock()
	restarted := h.Err == nil && !s.mysql.StartedAt.IsZero() && h.StartedAt.Sub(s.mysql.StartedAt) > 2*time.Second
	if h.Err == nil && (s.mysql.Err != nil || restarted) && s.tabletType == topodatapb.TabletType_PRIMARY && !s.termCheck {
		// mysqld came back (restarted, or a partition healed): another tablet may have taken
		// the shard meanwhile. Serve (and write heartbeats) only once the tablet manager
		// confirms the term in the topology — or steps this tablet down.
		s.termCheck = true
		select {
		case s.termChecks <- struct{}{}:
		default:
		}
	}
	if h.Err != nil && !s.mysql.StartedAt.IsZero() {
		h.StartedAt = s.mysql.StartedAt // keep the last known start across an outage
	}
	cameBack := h.Err == nil && (s.mysql.Err != nil || restarted)
	s.mysql = h
	s.mu.Unlock()
	if cameBack {
		// The pooled connections are to the mysqld that went away: drop them now rather
		// than fail one request per connection (faults_test: TestMySQLKilledMidFlight).
		s.exec.closeIdle()
	}
	s.update(false)
	s.followServing(ctx)
}

// TermChecks delivers a signal when a PRIMARY's MySQL came back after being unreachable; the
// tablet manager answers with ConfirmTerm or a step-down.
func (s *Server) TermChecks() <-chan struct{} { return s.termChecks }

// ConfirmTerm tells the query service that the topology still names this tablet primary of
// its current term: it may serve again. It reports whether a check was pending — the caller
// then makes MySQL writable again (a restarted mysqld comes up read-only under Vitess's
// my.cnf).
func (s *Server) ConfirmTerm() bool {
	s.mu.Lock()
	pending := s.termCheck
	s.termCheck = false
	s.mu.Unlock()
	if pending {
		s.update(true)
		s.followServing(context.Background())
	}
	return pending
}

// update recomputes the serving state and broadcasts the record when it changed or force is set.
func (s *Server) update(force bool) {
	s.mu.Lock()
	before := s.recordLocked()
	prevState := s.state
	s.state, s.serving, s.healthErr = s.decideLocked()
	s.publishAdmissionLocked()
	after := s.recordLocked()
	changed := !sameRecord(before, after)
	if changed || force {
		s.lastSent = s.now()
		s.bc.Publish(after)
	}
	st, reason := s.state, after.RealtimeStats.HealthError
	s.mu.Unlock()
	s.metrics.observe(s.Status())
	if prevState != st || changed {
		s.log.Info("serving state", zap.Stringer("from", prevState), zap.Stringer("to", st),
			zap.Bool("serving", after.Serving), zap.String("reason", reason),
			zap.Stringer("tablet_type", after.Target.TabletType))
		s.stats.healthChanged(s.now(), st, after.Serving, after.Target.TabletType.String(), reason) // history.go
	}
}

// decideLocked is the whole serving policy: conservative, every "no" carries its reason.
func (s *Server) decideLocked() (State, bool, string) {
	h := s.mysql
	switch {
	case s.shuttingDown:
		return StateShuttingDown, false, "tablet is shutting down"
	case h.CheckedAt.IsZero():
		return StateNotConnected, false, "MySQL has not been checked yet"
	case h.Err != nil:
		return StateNotConnected, false, "MySQL is unreachable: " + h.Err.Error()
	case h.AppProblem != "":
		return StateNotServing, false, h.AppProblem
	case s.termCheck && s.tabletType == topodatapb.TabletType_PRIMARY && s.wantServing:
		return StateNotServing, false, "MySQL came back: confirming in the topology that this tablet is still the primary"
	case !s.wantServing:
		return StateNotServing, false, s.wantReason
	case s.tabletType == topodatapb.TabletType_PRIMARY:
		return StateServing, true, ""
	case !h.ReplicationConfigured:
		return StateNotServing, false, "replication is not configured on this replica: lag unknown"
	case !h.LagKnown:
		return StateNotServing, false, "replication lag unknown: " + h.ReplicationProblem
	case h.Lag > s.cfg.UnhealthyThreshold:
		return StateNotServing, false, fmt.Sprintf("replication lag %v exceeds the unhealthy threshold %v", h.Lag.Truncate(time.Second), s.cfg.UnhealthyThreshold)
	}
	return StateServing, true, ""
}

// advertisedLocked is the serving state the tablet tells others: what decideLocked found,
// except that a tablet in lameduck says it does not serve (while still admitting requests).
func (s *Server) advertisedLocked() (bool, string) {
	if s.lameduck && s.serving {
		return false, "tablet is in lameduck: shutting down"
	}
	return s.serving, s.healthErr
}

func (s *Server) recordLocked() *querypb.StreamHealthResponse {
	serving, reason := s.advertisedLocked()
	r := &querypb.StreamHealthResponse{
		Target: &querypb.Target{
			Keyspace:   s.cfg.Keyspace,
			Shard:      s.cfg.Shard,
			TabletType: s.tabletType,
		},
		Serving:       serving,
		TabletAlias:   s.cfg.Alias,
		RealtimeStats: &querypb.RealtimeStats{HealthError: reason},
	}
	if s.tabletType == topodatapb.TabletType_PRIMARY {
		if !s.ptsTime.IsZero() {
			r.PrimaryTermStartTimestamp = s.ptsTime.Unix()
		}
	} else if s.mysql.LagKnown {
		r.RealtimeStats.ReplicationLagSeconds = uint32(s.mysql.Lag / time.Second)
	} else {
		r.RealtimeStats.ReplicationLagSeconds = LagUnknown
	}
	return r
}

func sameRecord(a, b *querypb.StreamHealthResponse) bool {
	return a.Serving == b.Serving && a.Target.TabletType == b.Target.TabletType &&
		a.PrimaryTermStartTimestamp == b.PrimaryTermStartTimestamp &&
		a.RealtimeStats.HealthError == b.RealtimeStats.HealthError &&
		a.RealtimeStats.ReplicationLagSeconds == b.RealtimeStats.ReplicationLagSeconds
}
