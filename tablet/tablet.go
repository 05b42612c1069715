package tablet

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/tabletd/tabletd/dbconfig"
	"github.com/tabletd/tabletd/grpcserver"
	"github.com/tabletd/tabletd/httpserver"
	"github.com/tabletd/tabletd/mysqlconn"
	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/queryservicepb"
	"github.com/tabletd/tabletd/proto/tabletmanagerservicepb"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/replication/heartbeat"
	"github.com/tabletd/tabletd/tabletmanager"
	"github.com/tabletd/tabletd/tabletmanager/schema"
	"github.com/tabletd/tabletd/tabletserver"
	"github.com/tabletd/tabletd/topo"
	"github.com/tabletd/tabletd/vreplication/engine"
	"github.com/tabletd/tabletd/vreplication/vdiff"
	"github.com/tabletd/tabletd/vreplication/vstreamer"
)

// Deps are injected so that two tablets can live in one process. A nil Registry gets a
// private one; a nil Log discards.
type Deps struct {
	Log      *zap.Logger
	Registry *prometheus.Registry
	Clock    func() time.Time
}

// Tablet is one running tabletd.
type Tablet struct {
	cfg      Config
	keyRange *topodatapb.KeyRange
	log      *zap.Logger
	reg      *prometheus.Registry
	now      func() time.Time
	started  time.Time

	closers  []closer // opened components, closed in reverse order
	shutdown sync.Once

	mysql       *mysqlServer
	qs          *tabletserver.Server
	tm          *tabletmanager.Manager
	vre         *engine.Engine             // target-side VReplication; opened by tm while PRIMARY
	vs          *vstreamer.Engine          // source-side VReplication (VStream, VStreamRows …)
	vdiff       *vdiff.Engine              // VDiff on the target primary (tablet/vdiff.go)
	aclLoader   atomic.Pointer[fileLoader] // set by openTableACL; read by SIGHUP reloads
	rulesLoader atomic.Pointer[fileLoader] // set by openQueryRules
	rpcStats    *grpcserver.RPCStats       // TabletManager RPC counts and recent errors
	hbWriter    *heartbeat.Writer          // nil without --heartbeat-enable
	hbReader    *heartbeat.Reader
	backupDeps  *tabletmanager.BackupDeps // nil: no backup storage configured
	sec         atomic.Pointer[security]  // gRPC TLS and auth, reloaded on SIGHUP (tablet/security.go); set during Open while the log masker may read it
	obs         *observability            // vttablet's variables, log pages, history sampler
	notify      *notifier                 // systemd notifications; nil when not under systemd (tablet/notify.go)
	grpcLis     net.Listener
	httpLis     net.Listener
	served      chan error // a server's Serve failed
}

type closer struct {
	name  string
	close func(ctx context.Context)
}

// New validates cfg. Nothing is opened until Open.
func New(cfg Config, d Deps) (*Tablet, error) {
	kr, err := cfg.Normalize()
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
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
	return &Tablet{cfg: cfg, keyRange: kr, log: d.Log, reg: d.Registry, now: d.Clock,
		served: make(chan error, 2)}, nil
}

// Run opens the tablet, serves until ctx ends or a fatal error, then shuts down gracefully.
// It returns nil after a requested shutdown.
func (t *Tablet) Run(ctx context.Context) error {
	if err := t.Open(ctx); err != nil {
		return err
	}
	err := t.Wait(ctx)
	t.Shutdown(context.Background())
	return err
}

// Open starts every component in order. On failure, what was opened is closed again.
func (t *Tablet) Open(ctx context.Context) error {
	t.started = t.now()
	steps := []struct {
		name string
		open func(context.Context) error
	}{
		{"listeners", t.openListeners},
		{"mysql", t.openMySQL},
		{"query service", t.openQueryService},
		{"observability", t.openObservability}, // tablet/observability.go
		{"vstreamer", t.openVStreamer},
		{"table acl", t.openTableACL},
		{"query rules", t.openQueryRules},
		{"backup", t.openBackup},
		{"tablet manager", t.newManager},
		{"grpc server", t.openGRPC},
		{"http server", t.openHTTP},
		{"registration", t.startManager},
		{"restore on start", t.startRestore},
		{"systemd notify", t.startNotify}, // tablet/notify.go
	}
	for _, s := range steps {
		if err := s.open(ctx); err != nil {
			t.closeAll(context.Background())
			return fmt.Errorf("opening %s: %w", s.name, err)
		}
	}
	t.log.Info("tabletd started", zap.String("grpc", t.grpcLis.Addr().String()),
		zap.String("http", t.httpLis.Addr().String()))
	return nil
}

// Wait blocks until ctx ends (nil) or the tablet cannot go on (the error).
func (t *Tablet) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-t.tm.Fatal():
		return err
	case err := <-t.served:
		return err
	}
}

// Shutdown drains and closes: for the lameduck period the tablet advertises not serving
// while it still serves (vtgate moves away first), then new requests are refused,
// in-flight requests get the grace period, the topology record's addresses
// are cleared, then the components close in reverse order.
// A second call returns once the first has finished.
func (t *Tablet) Shutdown(ctx context.Context) {
	t.shutdown.Do(func() { t.shutdownOnce(ctx) })
}

func (t *Tablet) shutdownOnce(ctx context.Context) {
	t.notifyStopping() // tablet/notify.go
	if t.qs != nil {
		t.lameduck(ctx)
		dctx, cancel := context.WithTimeout(ctx, t.cfg.grace())
		if err := t.qs.Drain(dctx); err != nil {
			t.log.Warn("shutdown grace period ended with requests still running", zap.Error(err))
		}
		cancel()
	}
	if t.vs != nil {
		t.vs.Close() // end the VStreams now (UNAVAILABLE: targets go elsewhere), not after the gRPC stop's wait
	}
	t.closeAll(ctx)
	t.log.Info("tabletd stopped")
}

// lameduck advertises not serving for LameduckPeriod (or until ctx ends) while the query
// service still serves.
func (t *Tablet) lameduck(ctx context.Context) {
	if t.cfg.LameduckPeriod <= 0 {
		return
	}
	t.qs.EnterLameduck()
	t.log.Info("lameduck: advertising not serving before the drain", zap.Duration("lameduck_period", t.cfg.LameduckPeriod))
	timer := time.NewTimer(t.cfg.LameduckPeriod)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
}

func (t *Tablet) closeAll(ctx context.Context) {
	for i := len(t.closers) - 1; i >= 0; i-- {
		c := t.closers[i]
		c.close(ctx)
		t.log.Debug("closed", zap.String("component", c.name))
	}
	t.closers = nil
}

func (t *Tablet) onClose(name string, f func(ctx context.Context)) {
	t.closers = append(t.closers, closer{name, f})
}

// GRPCAddr and HTTPAddr are the listening addresses (valid after Open).
func (t *Tablet) GRPCAddr() string { return t.grpcLis.Addr().String() }

// HTTPAddr is the HTTP listening address (valid after Open).
func (t *Tablet) HTTPAddr() string { return t.httpLis.Addr().String() }

// QueryService exposes the query service (tests, status).
func (t *Tablet) QueryService() *tabletserver.Server { return t.qs }

// Manager exposes the tablet manager (tests, status).
func (t *Tablet) Manager() *tabletmanager.Manager { return t.tm }

func (t *Tablet) openListeners(context.Context) error {
	var err error
	if t.grpcLis, err = net.Listen("tcp", net.JoinHostPort(orDefault(t.cfg.GRPCBindAddress, t.cfg.BindAddress), strconv.Itoa(t.cfg.GRPCPort))); err != nil {
		return fmt.Errorf("--grpc-port %d: %w", t.cfg.GRPCPort, err)
	}
	if t.httpLis, err = net.Listen("tcp", net.JoinHostPort(orDefault(t.cfg.HTTPBindAddress, t.cfg.BindAddress), strconv.Itoa(t.cfg.HTTPPort))); err != nil {
		_ = t.grpcLis.Close()
		return fmt.Errorf("--port %d: %w", t.cfg.HTTPPort, err)
	}
	return nil
}

func (t *Tablet) openMySQL(context.Context) error {
	m, err := openMySQL(t.cfg.DB, t.cfg.dbName())
	if err != nil {
		return err
	}
	t.mysql = m
	t.onClose("mysql", func(context.Context) { _ = m.Close() })
	return nil
}

func (t *Tablet) openQueryService(context.Context) error {
	q := t.cfg.Query
	q.Keyspace, q.Shard, q.Alias = t.cfg.Keyspace, t.cfg.Shard, t.cfg.Alias
	q.DBName = t.cfg.dbName()
	q.Connectors = tabletserver.Connectors{
		App:      connConfig(t.cfg.DB, dbconfig.App, q.DBName),
		Dba:      connConfig(t.cfg.DB, dbconfig.Dba, q.DBName),
		Filtered: connConfig(t.cfg.DB, dbconfig.Filtered, q.DBName),
	}
	deps := tabletserver.Deps{Log: t.log, Registry: t.reg, Clock: t.now, Prober: t.mysql}
	if err := t.heartbeat(&deps); err != nil {
		return err
	}
	qs, err := tabletserver.New(q, deps)
	if err != nil {
		return err
	}
	t.qs = qs
	qs.Open()
	t.onClose("query service", func(context.Context) { qs.Close() })
	return nil
}

// heartbeat adds the heartbeat writer and reader to deps when enabled. The writer logs in as
// the app user, which a read_only server refuses (a demoted primary never writes one).
func (t *Tablet) heartbeat(deps *tabletserver.Deps) error {
	hb := t.cfg.Heartbeat
	if !hb.Enable {
		return nil
	}
	hd := heartbeat.Deps{Log: t.log, Registry: t.reg, Clock: t.now,
		Labels: prometheus.Labels{"keyspace": t.cfg.Keyspace, "shard": t.cfg.Shard}}
	wc := heartbeat.DefaultWriterConfig()
	wc.Keyspace, wc.Shard, wc.TabletUID = t.cfg.Keyspace, t.cfg.Shard, t.cfg.Alias.Uid
	wc.Interval, wc.OnDemandDuration = hb.Interval, hb.OnDemand
	wc.DB = t.cfg.DB.DriverConfig(dbconfig.App, "")
	w, err := heartbeat.NewWriter(wc, hd)
	if err != nil {
		return fmt.Errorf("--heartbeat-*: %w", err)
	}
	rc := heartbeat.DefaultReaderConfig()
	rc.Keyspace, rc.Shard, rc.Interval = t.cfg.Keyspace, t.cfg.Shard, hb.Interval
	rc.DB = t.cfg.DB.DriverConfig(dbconfig.Dba, "")
	r, err := heartbeat.NewReader(rc, hd)
	if err != nil {
		return fmt.Errorf("--heartbeat-*: %w", err)
	}
	deps.HeartbeatWriter, deps.HeartbeatReader = w, r
	t.hbWriter, t.hbReader = w, r
	return nil
}

// useSidecarDB points the heartbeat at the keyspace's sidecar database.
func (t *Tablet) useSidecarDB(name string) {
	if t.hbWriter == nil {
		return
	}
	for _, err := range []error{t.hbWriter.SetSidecarDB(name), t.hbReader.SetSidecarDB(name)} {
		if err != nil {
			t.log.Warn("the keyspace's sidecar database name is unusable; the heartbeat keeps its default",
				zap.String("name", name), zap.Error(err))
			return
		}
	}
}

func (t *Tablet) openGRPC(context.Context) error {
	serve, skipped, err := grpcserver.ParseServiceMap(t.cfg.ServiceMap)
	if err != nil {
		return err
	}
	if len(skipped) > 0 {
		t.log.Warn("--service-map names services tabletd does not provide yet", zap.Strings("services", skipped))
	}
	stats, err := grpcserver.NewRPCStats(t.reg, prometheus.Labels{"keyspace": t.cfg.Keyspace, "shard": t.cfg.Shard}, t.now)
	if err != nil {
		return err
	}
	t.rpcStats = stats
	opts := append(grpcserver.ServerOptions(t.log, stats.Interceptor(), t.cfg.GRPCTuning),
		grpc.MaxRecvMsgSize(t.cfg.GRPCMaxMessageSize), grpc.MaxSendMsgSize(t.cfg.GRPCMaxMessageSize))
	qlOpts, err := t.queryLogOptions() // tablet/querylog.go
	if err != nil {
		return err
	}
	secOpts, err := t.grpcSecurity() // tablet/security.go: TLS, authentication, masked errors
	if err != nil {
		return err
	}
	opts = append(opts, secOpts...)
	srv := grpc.NewServer(append(opts, qlOpts...)...)
	if serve[grpcserver.QueryServiceName] {
		queryservicepb.RegisterQueryServer(srv, grpcserver.WithVStream(grpcserver.NewQueryServer(t.qs), t.vs))
	}
	if serve[grpcserver.TabletManagerName] {
		tabletmanagerservicepb.RegisterTabletManagerServer(srv, grpcserver.NewTabletManagerServer(t.tm))
	}
	lis := t.grpcLis
	go func() {
		if err := srv.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			t.served <- fmt.Errorf("grpc server: %w", err)
		}
	}()
	t.onClose("grpc server", func(ctx context.Context) {
		done := make(chan struct{})
		go func() { srv.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			srv.Stop() // streams that would not end; the health streams already got UNAVAILABLE
			<-done
		}
	})
	return nil
}

func (t *Tablet) openHTTP(context.Context) error {
	extra := map[string]http.HandlerFunc{
		"/debug/acl":            func(w http.ResponseWriter, r *http.Request) { serveFile(t.aclLoader.Load(), "{}\n")(w, r) },
		"/debug/query_rules":    func(w http.ResponseWriter, r *http.Request) { serveFile(t.rulesLoader.Load(), "[]\n")(w, r) },
		"/debug/query_plans":    func(w http.ResponseWriter, r *http.Request) { t.qs.WriteQueryPlans(w) },
		"/debug/query_stats":    func(w http.ResponseWriter, r *http.Request) { t.qs.WriteQueryStats(w) },
		"/debug/consolidations": func(w http.ResponseWriter, r *http.Request) { t.qs.ServeConsolidations(w, r) },
		// vttablet serves /livequeryz/; the bare path is what people type.
		"/livequeryz":           t.qs.ServeLiveQueries,
		"/livequeryz/":          t.qs.ServeLiveQueries,
		"/livequeryz/terminate": t.qs.ServeTerminate,
		"/debug/vreplication":   t.serveVReplication,
	}
	maps.Copy(extra, t.observabilityPages()) // /debug/vars, /queryz, the logs … (tablet/observability.go)
	srv := &http.Server{Handler: httpserver.NewHandler(statusSource{t}, t.reg, t.log, extra), ReadHeaderTimeout: 10 * time.Second}
	srv.RegisterOnShutdown(t.stopLogStreams)
	lis := t.httpLis
	go func() {
		if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.served <- fmt.Errorf("http server: %w", err)
		}
	}()
	t.onClose("http server", func(ctx context.Context) {
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})
	return nil
}

func (t *Tablet) newManager(context.Context) error {
	mc := t.cfg.Manager
	mc.Alias, mc.Hostname = t.cfg.Alias, t.cfg.Hostname
	mc.PortMap = map[string]int32{"vt": portOf(t.httpLis), "grpc": portOf(t.grpcLis)}
	mc.Keyspace, mc.Shard, mc.KeyRange = t.cfg.Keyspace, t.cfg.Shard, t.keyRange
	mc.InitType, mc.DBNameOverride, mc.Tags = t.cfg.InitType, t.cfg.DBNameOverride, t.cfg.Tags
	mc.MySQLHostname, mc.MySQLPort = mysqlIdentity(t.cfg)
	mc.DefaultCollation = collationID(t.cfg.DB.Charset)
	repl := t.cfg.DB.Users[dbconfig.Repl]
	mc.ReplUser, mc.ReplPassword = repl.User, repl.Password
	sc := schema.DefaultConfig()
	sc.DBName = t.cfg.dbName()
	sc.Dba, sc.AllPrivs = connConfig(t.cfg.DB, dbconfig.Dba, ""), connConfig(t.cfg.DB, dbconfig.AllPrivs, "")
	sc.App = connConfig(t.cfg.DB, dbconfig.App, sc.DBName)
	eng, err := schema.New(sc, schema.Deps{Log: t.log, Execute: t.executeQuery,
		// t.tm is set below, before any RPC can arrive.
		WaitForPosition: func(ctx context.Context, pos string) error { return t.tm.WaitForPosition(ctx, pos) }})
	if err != nil {
		return err
	}
	t.onClose("schema engine", func(context.Context) { eng.Close() })
	vre, err := t.newVReplication()
	if err != nil {
		return err
	}
	vrd, err := t.newVDiff(vre) // tablet/vdiff.go: VDiff opens and closes with VReplication
	if err != nil {
		return err
	}
	tm, err := tabletmanager.New(mc, tabletmanager.Deps{VReplication: vrd,
		Log: t.log, Query: t.qs, MySQL: t.mysql, Clock: t.now, EnsureSidecar: t.ensureDatabaseAndSidecar, Registry: t.reg, Schema: eng, Backup: t.backupDeps,
		SidecarDB: t.useSidecarDB,
		OpenTopo: func(ctx context.Context) (tabletmanager.Topo, error) {
			ts, err := topo.Open(ctx, t.cfg.Topo, t.log)
			if err != nil {
				return nil, err
			}
			return topoAdapter{ts}, nil
		},
		Permanent: permanentTopoError,
	})
	if err != nil {
		return err
	}
	t.tm = tm
	return nil
}

// executeQuery runs TabletManager.ExecuteQuery's statement through the query service. As in
// vttablet the request's caller becomes the immediate caller (its principal, no groups),
// and the query service's own row limit applies.
func (t *Tablet) executeQuery(ctx context.Context, caller *vtrpcpb.CallerID, sql string, _ int) (*querypb.QueryResult, error) {
	rec := t.tm.Tablet()
	return t.qs.Execute(ctx, &tabletserver.Call{SQL: sql, Caller: caller.GetPrincipal(),
		Target: &querypb.Target{Keyspace: rec.Keyspace, Shard: rec.Shard, TabletType: rec.Type}})
}

// startManager comes last: registration makes vtgate route here, so everything it routes to
// must be up first. Its closer therefore runs first on shutdown and clears the addresses.
func (t *Tablet) startManager(context.Context) error {
	t.tm.Start()
	t.onClose("tablet manager", t.tm.Close)
	return nil
}

func portOf(l net.Listener) int32 { return int32(l.Addr().(*net.TCPAddr).Port) }

// mysqlIdentity is what the Tablet record says about MySQL's address (vtctld shows it and
// replication setup uses it).
func mysqlIdentity(c Config) (string, int32) {
	if c.DB.Socket != "" && c.DB.Host == "" {
		return c.Hostname, int32(c.DB.Port)
	}
	return c.DB.Host, int32(c.DB.Port)
}

// permanentTopoError tells configuration errors (stop the tablet) from outages (retry).
func permanentTopoError(err error) bool {
	var held *tabletmanager.HeldError
	return errors.As(err, &held) || errors.Is(err, topo.ErrCellNotFound) ||
		errors.Is(err, topo.ErrTabletHeld) || errors.Is(err, topo.ErrTabletMismatch) ||
		errors.Is(err, topo.ErrInvalidShard) || errors.Is(err, topo.ErrInvalidKeyspace) ||
		errors.Is(err, topo.ErrInvalidAlias) || errors.Is(err, topo.ErrInvalidTablet)
}

// topoAdapter adds what the tablet manager needs on top of *topo.Server.
type topoAdapter struct{ *topo.Server }

func (topoAdapter) IsNoNode(err error) bool { return errors.Is(err, topo.ErrNoNode) }

// IsConfigError reports whether err (from Run) means the configuration cannot work, as
// opposed to an outage: the daemon exits 2 for those.
func IsConfigError(err error) bool {
	var ce *ConfigError
	return errors.As(err, &ce) || permanentTopoError(err)
}

// connConfig is how the query service connects as role.
func connConfig(db dbconfig.Config, role dbconfig.Role, dbName string) mysqlconn.Config {
	c := mysqlconn.Config{Network: "tcp", Address: db.Address(), User: db.Users[role].User,
		Password: db.Password(role), DBName: dbName, Charset: db.Charset, ConnectTimeout: db.DialTimeout}
	if db.Socket != "" {
		c.Network = "unix"
	}
	secureConn(&c, db, role) // tablet/security.go: TLS, live password
	return c
}
