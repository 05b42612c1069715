package vstreamer

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tabletd/tabletd/mysqlconn"
	"github.com/tabletd/tabletd/proto/binlogdatapb"
	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/vschemapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	repl "github.com/tabletd/tabletd/replication"
	"github.com/tabletd/tabletd/rpcerr"
	"github.com/tabletd/tabletd/tabletserver"
)

// Config configures the streamer of one tablet.
type Config struct {
	Keyspace, Shard string
	DBName          string // the MySQL database streamed
	SidecarDB       string // "_vt": where resharding_journal and schema_version live
	// DB is how the binlog dump connects: the filtered user (--db-filtered-user), who needs
	// REPLICATION SLAVE. Its user is also the table ACL identity of streams that carry no
	// caller id (tablet-to-tablet VReplication).
	DB mysqlconn.Config
	// PacketSize bounds the row bytes of one VStream or VStreamRows message
	// (--vstream_packet_size, 250000 in Vitess).
	PacketSize int
	// HeartbeatInterval: an idle VStream sends a HEARTBEAT this often (Vitess: 900ms, just
	// under the receiver's 1s idle timeout).
	HeartbeatInterval time.Duration
	// RowHeartbeatInterval: VStreamRows sends {heartbeat: true} this often while it scans.
	RowHeartbeatInterval time.Duration
}

// DefaultConfig returns Vitess's defaults.
func DefaultConfig() Config {
	return Config{SidecarDB: "_vt", PacketSize: 250000, HeartbeatInterval: 900 * time.Millisecond,
		RowHeartbeatInterval: 10 * time.Second}
}

// Validate names the first unusable setting.
func (c Config) Validate() error {
	switch {
	case c.Keyspace == "" || c.Shard == "" || c.DBName == "":
		return errors.New("vstreamer: keyspace, shard and database name must be set")
	case c.DB.User == "" || c.DB.Address == "":
		return errors.New("vstreamer: the filtered user's connection (--db-filtered-user, --db-host/--db-socket) must be set")
	case c.PacketSize <= 0:
		return fmt.Errorf("vstreamer: --vstream_packet_size must be > 0 (got %d)", c.PacketSize)
	case c.HeartbeatInterval <= 0 || c.RowHeartbeatInterval <= 0:
		return errors.New("vstreamer: heartbeat intervals must be > 0")
	}
	return nil
}

// Source is the query service the streamer reads through (*tabletserver.Server): admission,
// table ACLs, the snapshot reader pool and the live schema.
type Source interface {
	AdmitStream(target *querypb.Target) error
	AuthorizeRead(caller string, groups []string, tables ...string) error
	OpenSnapshot(ctx context.Context, req tabletserver.ReadRequest) (*tabletserver.Snapshot, error)
	TableSchema(ctx context.Context, table string) (*tabletserver.TableSchema, error)
	BinlogPosition(ctx context.Context) (string, error)
	Tables(ctx context.Context) ([]string, error)
}

// Deps are the streamer's collaborators. VSchema returns the cell's SrvVSchema (vindexes for
// key range filters); nil, or an error, leaves key range filters unusable with a clear error.
type Deps struct {
	Log      *zap.Logger
	Registry prometheus.Registerer
	Clock    func() time.Time
	Source   Source
	VSchema  func(ctx context.Context) (*vschemapb.SrvVSchema, error)
	// Sidecar names the keyspace's sidecar database when it is known only later (nil or
	// "": Config.SidecarDB).
	Sidecar func() string
}

// Engine serves the source side of VReplication for one tablet: VStream, VStreamRows,
// VStreamTables and VStreamResults. Every call runs on the caller's goroutine; Close ends the
// calls in flight and refuses new ones.
type Engine struct {
	cfg     Config
	log     *zap.Logger
	now     func() time.Time
	src     Source
	vschema func(ctx context.Context) (*vschemapb.SrvVSchema, error)
	sidecar func() string
	metrics *metrics

	mu      sync.Mutex
	closed  bool
	nextID  int
	cancels map[int]context.CancelFunc
	wg      sync.WaitGroup
}

type metrics struct {
	streams *prometheus.GaugeVec
	events  prometheus.Counter
	rows    prometheus.Counter
	errors  *prometheus.CounterVec
}

// New returns an engine; it needs no Open.
func New(cfg Config, d Deps) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Source == nil {
		return nil, errors.New("vstreamer: a Source is required")
	}
	if d.Log == nil {
		d.Log = zap.NewNop()
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	if d.Clock == nil {
		d.Clock = time.Now
	}
	m, err := newMetrics(d.Registry, prometheus.Labels{"keyspace": cfg.Keyspace, "shard": cfg.Shard})
	if err != nil {
		return nil, err
	}
	return &Engine{cfg: cfg, log: d.Log, now: d.Clock, src: d.Source, vschema: d.VSchema, sidecar: d.Sidecar, metrics: m,
		cancels: map[int]context.CancelFunc{}}, nil
}

func newMetrics(reg prometheus.Registerer, labels prometheus.Labels) (*metrics, error) {
	m := &metrics{
		streams: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tabletd_vstreamer_streams",
			Help: "VStream family calls in progress, by RPC.", ConstLabels: labels}, []string{"rpc"}),
		events: prometheus.NewCounter(prometheus.CounterOpts{Name: "tabletd_vstreamer_events_total",
			Help: "VEvents sent by VStream.", ConstLabels: labels}),
		rows: prometheus.NewCounter(prometheus.CounterOpts{Name: "tabletd_vstreamer_rows_total",
			Help: "Rows sent by VStreamRows, VStreamTables and VStreamResults.", ConstLabels: labels}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tabletd_vstreamer_errors_total",
			Help: "VStream family calls that ended with an error, by RPC.", ConstLabels: labels}, []string{"rpc"}),
	}
	for _, c := range []prometheus.Collector{m.streams, m.events, m.rows, m.errors} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Close cancels every call in progress, waits for them to return, and refuses new ones.
func (e *Engine) Close() {
	e.mu.Lock()
	e.closed = true
	for _, c := range e.cancels {
		c()
	}
	e.mu.Unlock()
	e.wg.Wait()
}

// begin registers a call; done must be called when it returns.
func (e *Engine) begin(ctx context.Context, rpc string) (context.Context, func(err error) error, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, nil, rpcerr.New(vtrpcpb.Code_UNAVAILABLE, "vstreamer is closed: the tablet is shutting down")
	}
	ctx, cancel := context.WithCancel(ctx)
	id := e.nextID
	e.nextID++
	e.cancels[id] = cancel
	e.wg.Add(1)
	e.metrics.streams.WithLabelValues(rpc).Inc()
	return ctx, func(err error) error {
		e.mu.Lock()
		closed := e.closed
		delete(e.cancels, id)
		e.mu.Unlock()
		cancel()
		e.metrics.streams.WithLabelValues(rpc).Dec()
		e.wg.Done()
		if err != nil && closed && errors.Is(err, context.Canceled) {
			err = rpcerr.New(vtrpcpb.Code_UNAVAILABLE, "vstreamer is closed: the tablet is shutting down")
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			e.metrics.errors.WithLabelValues(rpc).Inc()
			e.log.Info("vstreamer call ended", zap.String("rpc", rpc), zap.Error(err))
		}
		return err
	}, nil
}

// sidecarDB is where resharding_journal and schema_version are.
func (e *Engine) sidecarDB() string {
	if e.sidecar != nil {
		if s := e.sidecar(); s != "" {
			return s
		}
	}
	return e.cfg.SidecarDB
}

// caller is the table ACL identity of a stream.
type caller struct {
	name   string
	groups []string
}

// callerOf picks the immediate caller (vtgate's VStream), else the effective caller, else —
// a tablet-to-tablet VReplication call carries none — the filtered user the stream runs as.
func (e *Engine) callerOf(eff *vtrpcpb.CallerID, imm *querypb.VTGateCallerID) caller {
	switch {
	case imm.GetUsername() != "":
		return caller{imm.GetUsername(), imm.GetGroups()}
	case eff.GetPrincipal() != "":
		return caller{eff.GetPrincipal(), eff.GetGroups()}
	}
	return caller{name: e.cfg.DB.User}
}

// vschemaView reads the cell's SrvVSchema for this call (a missing one leaves key range
// filters to fail with a clear error when they need it).
func (e *Engine) vschemaView(ctx context.Context) vschemaView {
	vs := vschemaView{keyspace: e.cfg.Keyspace}
	if e.vschema != nil {
		srv, err := e.vschema(ctx)
		if err != nil {
			e.log.Info("vstreamer: no SrvVSchema", zap.Error(err))
		}
		vs.srv = srv
	}
	return vs
}

// Stream serves VStream: the binlog from req.position ("current": now) through the filter.
func (e *Engine) Stream(ctx context.Context, req *binlogdatapb.VStreamRequest, send func([]*binlogdatapb.VEvent) error) (err error) {
	if err := e.src.AdmitStream(req.GetTarget()); err != nil {
		return err
	}
	ctx, done, err := e.begin(ctx, "VStream")
	if err != nil {
		return err
	}
	defer func() { err = done(err) }()
	if len(req.TableLastPKs) > 0 {
		return rpcerr.New(vtrpcpb.Code_UNIMPLEMENTED, "VStream with table_last_p_ks (a copying VStream) is not supported by tabletd; use VStreamRows for the copy")
	}
	if err := validateFilter(req.GetFilter()); err != nil {
		return err
	}
	pos, err := e.startPosition(ctx, req.Position)
	if err != nil {
		return err
	}
	bc, err := e.openBinlog(pos)
	if err != nil {
		return err
	}
	defer bc.close()
	s := &binlogStream{e: e, filter: req.Filter, caller: e.callerOf(req.EffectiveCallerId, req.ImmediateCallerId),
		vs: e.vschemaView(ctx), send: send, pos: pos, plans: map[uint64]*tablePlan{},
		schemas: map[string]*tabletserver.TableSchema{}}
	return s.run(ctx, bc)
}

// startPosition decodes a VStream position, which must be of the server's flavor.
func (e *Engine) startPosition(ctx context.Context, want string) (repl.Position, error) {
	cur, err := e.src.BinlogPosition(ctx)
	if err != nil {
		return repl.Position{}, err
	}
	curPos, err := repl.ParsePosition(cur)
	if err != nil {
		return repl.Position{}, rpcerr.Wrap(vtrpcpb.Code_INTERNAL, err, "the server's position")
	}
	switch strings.TrimSpace(want) {
	case "current":
		return curPos, nil
	case "":
		return repl.Position{}, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "VStream needs a position (a GTID position such as %s, or \"current\")", cur)
	}
	pos, err := repl.ParsePosition(want)
	if err != nil {
		return repl.Position{}, rpcerr.Wrap(vtrpcpb.Code_INVALID_ARGUMENT, err, "VStream position")
	}
	if pos.Flavor() != curPos.Flavor() {
		return repl.Position{}, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT,
			"VStream position %s is a %s position, but this source is %s (its position is %s)", want, pos.Flavor(), curPos.Flavor(), cur)
	}
	return pos, nil
}

// validateFilter checks what can be checked without the tables: the rules' regular
// expressions, select syntax and key ranges.
func validateFilter(f *binlogdatapb.Filter) error {
	if len(f.GetRules()) == 0 {
		return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "VStream filter has no rules")
	}
	for _, r := range f.Rules {
		if strings.HasPrefix(r.Match, "/") {
			if _, err := regexp.Compile(strings.Trim(r.Match, "/")); err != nil {
				return invalid("filter rule %q: bad regular expression: %v", r.Match, err)
			}
			if r.Filter != "" && r.Filter != "exclude" {
				if _, err := parseKeyRange(r.Filter); err != nil {
					return invalid("filter rule %q: %v", r.Match, err)
				}
			}
			continue
		}
		switch r.Filter {
		case "", "exclude":
			continue
		}
		if _, err := parseKeyRange(r.Filter); err == nil {
			continue
		}
		if err := checkSelect(r.Filter); err != nil {
			return err
		}
	}
	return nil
}
