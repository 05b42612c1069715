package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/tabletd/tabletd/dbconfig"
	"github.com/tabletd/tabletd/grpcserver"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/tablet"
	"github.com/tabletd/tabletd/tabletserver"
	"github.com/tabletd/tabletd/topo"
)

// options are the command line; bind fills them, toConfig turns them into a tablet.Config.
type options struct {
	configFile     string
	tabletPath     string
	hostname       string
	keyspace       string
	shard          string
	initType       string
	dbNameOverride string
	tags           map[string]string

	db       dbconfig.Config
	users    map[dbconfig.Role]*dbconfig.Credential
	useSSL   map[dbconfig.Role]*bool
	httpPort int
	grpcPort int
	bindAddr string // --grpc-bind-address
	httpBind string // --bind-address
	services []string
	grpcMax  int
	grpcTune grpcserver.Tuning

	// vttablet's conventions for a local MySQL (mysqlconf.go) and its credentials.
	mycnfSocket      string
	mycnfPort        int
	credsFile        string
	credsServer      string
	connectTimeoutMs int

	topoImpl     string
	topoAddr     string
	topoRoot     string
	embeddedTopo string

	query          tabletserver.QueryConfig
	healthInterval time.Duration
	unhealthy      time.Duration
	grace          time.Duration
	lameduck       time.Duration
	unmanaged      bool

	pidFile string
	backup  backupOptions

	aclFile    string
	aclEnforce bool
	aclReload  time.Duration
	aclStrict  bool
	aclDryRun  bool
	aclByUser  bool
	aclExempt  string
	rulesFile  string
	rulesWatch bool
	logFormat  string
	logLevel   string
	gcPercent  int

	heartbeat  tablet.HeartbeatConfig
	replRepair bool

	showHelp, showVersion bool
	queryLog              queryLogOptions
	vrepl                 vreplOptions
	vstream               vstreamOptions
	vdiff                 vdiffOptions
	logs                  logOptions // --log_dir, --logtostderr, --alsologtostderr (logging.go)
	security              securityOptions
	deploy                deployOptions // systemd notify (flags_deploy.go)

	fs       *pflag.FlagSet // the flag set bound to these options: which flags were given
	accepted []string       // vttablet v23 flags accepted, not implemented (inventory.go)
}

// newFlagSet registers every flag: tabletd's own, each area's (flags_<area>.go), then the
// whole vttablet v23 inventory, whose flags nothing registered are accepted, not implemented.
func newFlagSet(o *options) *pflag.FlagSet {
	fs := pflag.NewFlagSet("tabletd", pflag.ContinueOnError)
	o.fs = fs
	// vttablet accepts --grpc_port as --grpc-port (its normalizer maps _ to -); so do we.
	fs.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		return pflag.NormalizedName(normalizeFlagName(name))
	})
	fs.SortFlags = false
	fs.BoolVarP(&o.showHelp, "help", "h", false, "print this help and exit")
	fs.BoolVarP(&o.showVersion, "version", "v", false, "print the version (Vitess's format: tabletd, compatible with vttablet v23) and exit")
	fs.StringVar(&o.configFile, "config", "", "YAML file with the same settings as the flags (keys = flag names); flags win")
	fs.StringVar(&o.tabletPath, "tablet-path", "", "tablet alias <cell>-<uid>, e.g. zone1-100")
	fs.StringVar(&o.hostname, "tablet-hostname", "", "hostname vtgate and vtctld use to reach this tablet (default: the machine's hostname)")
	fs.StringVar(&o.keyspace, "init-keyspace", "", "keyspace of this tablet")
	fs.StringVar(&o.shard, "init-shard", "", "shard of this tablet: 0, -80, 80-, …")
	fs.StringVar(&o.initType, "init-tablet-type", "REPLICA", "initial type: REPLICA, RDONLY, SPARE, or PRIMARY (tabletd only)")
	fs.StringVar(&o.dbNameOverride, "init-db-name-override", "", "MySQL database name (default vt_<keyspace>)")
	o.tags = map[string]string{}
	fs.Var(tagsValue(o.tags), "init-tags", "tablet tags, comma separated key:value pairs")

	o.db = dbconfig.Default()
	fs.StringVar(&o.db.Host, "db-host", "", "MySQL host")
	fs.IntVar(&o.db.Port, "db-port", 3306, "MySQL port")
	fs.StringVar(&o.db.Socket, "db-socket", "", "MySQL unix socket (preferred over host:port)")
	fs.StringVar(&o.db.Charset, "db-charset", "utf8mb4", "connection character set")
	fs.StringVar(&o.mycnfSocket, "mycnf-socket-file", "", "MySQL socket when neither --db-socket nor --db-host is given and $VTDATAROOT/vt_<uid>/my.cnf does not name one")
	fs.IntVar(&o.mycnfPort, "mycnf-mysql-port", 0, "MySQL port for the tablet record when MySQL is reached by socket and no my.cnf gives it")
	fs.StringVar(&o.credsFile, "db-credentials-file", "", "Vitess's JSON credentials file {\"user\": [\"password\"]}: a user listed there logs in with that password")
	fs.StringVar(&o.credsServer, "db-credentials-server", "file", "credentials server: only file (--db-credentials-file)")
	fs.IntVar(&o.connectTimeoutMs, "db-connect-timeout-ms", 0, "timeout connecting to MySQL in milliseconds (0: tabletd's default, 5s)")
	o.users, o.useSSL = map[dbconfig.Role]*dbconfig.Credential{}, map[dbconfig.Role]*bool{}
	for _, r := range dbconfig.Roles {
		c := o.db.Users[r]
		o.users[r] = &c
		fs.StringVar(&c.User, "db-"+string(r)+"-user", c.User, "MySQL user for the "+string(r)+" role")
		fs.StringVar(&c.Password, "db-"+string(r)+"-password", "", "password of the "+string(r)+" user")
		o.useSSL[r] = fs.Bool("db-"+string(r)+"-use-ssl", true, "false keeps the "+string(r)+" user's MySQL connections in plain text whatever --db-ssl-mode says")
	}
	fs.IntVar(&o.httpPort, "port", 15000, "HTTP port (status pages, metrics)")
	fs.IntVar(&o.grpcPort, "grpc-port", 16000, "gRPC port (queryservice, tabletmanager)")
	fs.StringVar(&o.bindAddr, "grpc-bind-address", "", "address the gRPC port listens on (default all interfaces)")
	fs.StringVar(&o.httpBind, "bind-address", "", "address the HTTP port listens on (default all interfaces)")
	fs.StringSliceVar(&o.services, "service-map", nil, "gRPC services: grpc-queryservice,grpc-tabletmanager")
	fs.IntVar(&o.grpcMax, "grpc-max-message-size", 16*1024*1024, "max gRPC message size in bytes")
	o.grpcTune = grpcserver.DefaultTuning()
	fs.IntVar(&o.grpcTune.StreamWorkers, "grpc-stream-workers", o.grpcTune.StreamWorkers, "long-lived goroutines that run gRPC handlers (a call beyond them gets its own goroutine); 0: a goroutine per call")
	fs.Int32Var(&o.grpcTune.InitialWindowSize, "grpc-server-initial-window-size", o.grpcTune.InitialWindowSize, "gRPC server's per-stream flow-control window in bytes; 0: gRPC's default (64 KiB sized by BDP estimation, vttablet's default)")
	fs.Int32Var(&o.grpcTune.InitialConnWindowSize, "grpc-server-initial-conn-window-size", o.grpcTune.InitialConnWindowSize, "gRPC server's per-connection flow-control window in bytes; 0: gRPC's default (64 KiB sized by BDP estimation, vttablet's default)")

	fs.StringVar(&o.topoImpl, "topo-implementation", "etcd2", "topology implementation (only etcd2)")
	fs.StringVar(&o.topoAddr, "topo-global-server-address", "", "global etcd endpoints, comma separated")
	fs.StringVar(&o.topoRoot, "topo-global-root", "/vitess/global", "global topology root")
	fs.StringVar(&o.embeddedTopo, "embedded-topo-dir", "", "removed: tabletctl topo-server --dir DIR runs the demo etcd")

	fs.DurationVar(&o.healthInterval, "health-check-interval", 20*time.Second, "interval between health broadcasts")
	fs.DurationVar(&o.unhealthy, "unhealthy-threshold", 2*time.Hour, "replication lag above which a replica stops serving")
	fs.DurationVar(&o.grace, "shutdown-grace-period", 3*time.Second, "how long in-flight requests may run after SIGTERM")
	fs.DurationVar(&o.lameduck, "lameduck-period", 50*time.Millisecond, "after SIGTERM, advertise not serving (vtgate moves away or buffers) but keep serving this long before the drain")
	o.query = tabletserver.DefaultQueryConfig()
	q := &o.query
	fs.IntVar(&q.PoolSize, "queryserver-config-pool-size", q.PoolSize, "query pool size (non-transactional reads)")
	fs.IntVar(&q.StreamPoolSize, "queryserver-config-stream-pool-size", q.StreamPoolSize, "stream pool size")
	fs.IntVar(&q.TxCap, "queryserver-config-transaction-cap", q.TxCap, "max concurrent transactions and reserved connections")
	fs.DurationVar(&q.QueryPoolTimeout, "queryserver-config-query-pool-timeout", q.QueryPoolTimeout, "max wait for a query pool connection (0: the query's deadline)")
	fs.DurationVar(&q.TxPoolTimeout, "queryserver-config-txpool-timeout", q.TxPoolTimeout, "max wait for a transaction pool connection")
	fs.IntVar(&q.MaxWaiters, "queryserver-config-query-pool-waiter-cap", q.MaxWaiters, "max callers waiting for a pool connection; more are refused at once (0: unlimited)")
	fs.DurationVar(&q.IdleTimeout, "queryserver-config-idle-timeout", q.IdleTimeout, "close pool connections idle this long")
	fs.DurationVar(&q.MaxLifetime, "queryserver-config-pool-conn-max-lifetime", q.MaxLifetime, "close pool connections older than this (0: never)")
	fs.DurationVar(&q.QueryTimeout, "queryserver-config-query-timeout", q.QueryTimeout, "max time a statement may run (0: no limit)")
	fs.DurationVar(&q.TxTimeout, "queryserver-config-transaction-timeout", q.TxTimeout, "max lifetime of an OLTP transaction or reserved connection")
	fs.DurationVar(&q.OLAPTxTimeout, "queryserver-config-olap-transaction-timeout", q.OLAPTxTimeout, "max lifetime of an OLAP transaction")
	fs.IntVar(&q.MaxResultSize, "queryserver-config-max-result-size", q.MaxResultSize, "max rows a non-streaming query may return")
	fs.IntVar(&q.StreamBufferSize, "queryserver-config-stream-buffer-size", q.StreamBufferSize, "bytes of rows per streamed message")
	fs.IntVar(&q.WarnResultSize, "queryserver-config-warn-result-size", q.WarnResultSize, "log and count results with more rows than this (0: off)")
	fs.IntVar(&q.MaxDMLRows, "queryserver-config-max-dml-rows", q.MaxDMLRows, "roll back and fail an INSERT, UPDATE or DELETE affecting more rows than this (0: no cap)")
	fs.BoolVar(&q.RejectDMLWithoutWhere, "queryserver-config-reject-dml-without-where", false, "refuse UPDATE and DELETE without a WHERE clause")
	cc := &q.Consolidator
	fs.BoolVar(&cc.OnPrimary, "enable-consolidator", cc.OnPrimary, "share identical concurrent reads on a PRIMARY too")
	fs.BoolVar(&cc.OnReplicas, "enable-consolidator-replicas", cc.OnReplicas, "share identical concurrent reads on REPLICA/RDONLY")
	fs.IntVar(&cc.MaxWaiters, "consolidator-query-waiter-cap", cc.MaxWaiters, "callers that may wait for one shared read; more run their own (0: unlimited)")
	fs.Int64Var(&cc.MaxBytes, "consolidator-total-bytes", cc.MaxBytes, "bytes of results held for waiters; a larger result is not shared (0: unlimited)")
	fs.BoolVar(&cc.RejectOnFull, "consolidator-reject-on-full", cc.RejectOnFull, "past a consolidator bound, refuse with RESOURCE_EXHAUSTED instead of running the caller's own query")
	o.heartbeat = tablet.DefaultConfig().Heartbeat
	fs.BoolVar(&o.heartbeat.Enable, "heartbeat-enable", o.heartbeat.Enable, "the primary writes a heartbeat every --heartbeat-interval; replicas report its age as their lag (tabletd's default: on)")
	fs.DurationVar(&o.heartbeat.Interval, "heartbeat-interval", o.heartbeat.Interval, "heartbeat period (at most 1s, as vttablet)")
	fs.DurationVar(&o.heartbeat.OnDemand, "heartbeat-on-demand-duration", 0, "write heartbeats only for this long after a consumer asks (0: always)")
	fs.BoolVar(&o.replRepair, "enable-replication-reporter", true, "restart replication that stopped by itself (never replication stopped by an RPC)")
	fs.BoolVar(&o.unmanaged, "unmanaged", false, "MySQL is managed outside tabletd (the only mode tabletd has)")
	fs.StringVar(&o.pidFile, "pid-file", "", "write the process id here")
	fs.StringVar(&o.aclFile, "table-acl-config", "", "table ACL file (Vitess tableacl JSON); reloaded on SIGHUP and every --table-acl-config-reload-interval")
	fs.BoolVar(&o.aclEnforce, "enforce-tableacl-config", false, "refuse to start without a valid --table-acl-config")
	fs.DurationVar(&o.aclReload, "table-acl-config-reload-interval", 0, "re-read the table ACL file this often (0: only on SIGHUP)")
	fs.BoolVar(&o.aclStrict, "queryserver-config-strict-table-acl", false, "refuse statements the table ACL does not allow (else they are only counted)")
	fs.BoolVar(&o.aclDryRun, "queryserver-config-enable-table-acl-dry-run", false, "count table ACL failures without refusing")
	fs.StringVar(&o.aclExempt, "queryserver-config-acl-exempt-acl", "", "a user or group exempt from table ACL checks")
	fs.BoolVar(&o.aclByUser, "table-acl-denied-metrics-by-user", false, "also count table ACL denials per user (tabletd_table_acl_denied_by_user_total; at most 1000 distinct users, then \"other\")")
	fs.StringVar(&o.rulesFile, "filecustomrules", "", "custom query rules file (Vitess JSON); a bad file stops the start, on reload it keeps the rules in force")
	fs.BoolVar(&o.rulesWatch, "filecustomrules-watch", false, "re-read --filecustomrules when it changes (checked every second; SIGHUP also reloads)")
	fs.IntVar(&o.gcPercent, "gc-percent", 100, "Go GC target percentage (GOGC); the environment's GOGC wins when set")
	fs.StringVar(&o.logFormat, "log-format", "json", "log format: json or console")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	o.logs.bind(fs)
	o.queryLog.bind(fs)
	o.backup.bind(fs)
	o.vrepl.bind(fs)
	o.security.bind(fs)
	o.vstream.bind(fs)
	o.deploy.bind(fs)
	o.vdiff.bind(fs)

	// Each area's flags (flags_<area>.go) are bound above this line, before the compat loop:
	// acceptInventory registers the vttablet v23 flags still unregistered as accepted, not
	// implemented — a flag someone implements leaves that set by itself.
	o.accepted = acceptInventory(fs, mustInventory())
	makeListsLastWins(fs)
	return fs
}

// mustInventory parses the embedded inventory; TestFlagInventory keeps it well-formed, as
// template.Must keeps a template.
func mustInventory() []vtFlag {
	inv, err := parseInventory(vttabletV23Flags)
	if err != nil {
		panic(err)
	}
	return inv
}

// toConfig builds the tablet configuration; every error names the flag and the fix.
func (o *options) toConfig(env func(string) string) (tablet.Config, error) {
	c := tablet.DefaultConfig()
	alias, err := topo.ParseTabletAlias(o.tabletPath)
	if err != nil {
		return c, fmt.Errorf("--tablet-path %q: must be <cell>-<uid>, e.g. zone1-100 (%w)", o.tabletPath, err)
	}
	c.Alias = alias
	if c.Hostname = o.hostname; c.Hostname == "" {
		c.Hostname, _ = os.Hostname()
	}
	c.Keyspace, c.Shard, c.DBNameOverride = o.keyspace, o.shard, o.dbNameOverride
	if c.InitType, err = parseTabletType(o.initType); err != nil {
		return c, err
	}
	c.Tags = o.tags
	if o.topoImpl != "etcd2" {
		return c, fmt.Errorf("--topo-implementation %q is not supported: tabletd speaks etcd2 only", o.topoImpl)
	}
	if o.embeddedTopo != "" {
		return c, errors.New("--embedded-topo-dir is gone: tabletd no longer carries an etcd server; run `tabletctl topo-server --dir DIR` and give tabletd its --topo-global-server-address")
	}
	c.Topo.GlobalServerAddress, c.Topo.GlobalRoot = o.topoAddr, o.topoRoot
	c.HTTPPort, c.GRPCPort, c.ServiceMap, c.GRPCMaxMessageSize = o.httpPort, o.grpcPort, o.services, o.grpcMax
	c.GRPCTuning = o.grpcTune
	c.HTTPBindAddress, c.GRPCBindAddress = o.httpBind, o.bindAddr
	c.DB = o.db
	for r, cred := range o.users {
		cred.NoTLS = !*o.useSSL[r] // --db-<role>-use-ssl=false; TLS settings in flags_security.go
		c.DB.Users[r] = *cred
	}
	if err := o.dbConnection(&c, env); err != nil {
		return c, err
	}
	c.Query.HealthCheckInterval, c.Query.UnhealthyThreshold, c.Query.ShutdownGracePeriod = o.healthInterval, o.unhealthy, o.grace
	c.LameduckPeriod = o.lameduck
	c.Query.Query = o.query
	c.TableACLFile, c.EnforceTableACL, c.TableACLReloadInterval = o.aclFile, o.aclEnforce, o.aclReload
	c.QueryRulesFile, c.QueryRulesWatch = o.rulesFile, o.rulesWatch
	c.Query.ACL = tabletserver.ACLConfig{Strict: o.aclStrict, DryRun: o.aclDryRun, Exempt: o.aclExempt, MetricsByUser: o.aclByUser}
	c.Unmanaged = o.unmanaged
	c.Heartbeat, c.Manager.RepairReplication = o.heartbeat, o.replRepair
	c.Manager.ReplUser = c.DB.Users[dbconfig.Repl].User
	if err := o.queryLog.apply(&c); err != nil {
		return c, err
	}
	if err := o.backup.apply(&c); err != nil {
		return c, err
	}
	o.managedMycnf(&c, env) // after the backup flags: the my.cnf convention fills what they left
	if err := o.vrepl.apply(&c); err != nil {
		return c, err
	}
	if err := o.security.apply(&c, env, o.credsFile); err != nil {
		return c, err
	}
	if err := o.vstream.apply(&c); err != nil {
		return c, err
	}
	if err := o.deploy.apply(&c, env); err != nil {
		return c, err
	}
	if err := o.vdiff.apply(&c); err != nil {
		return c, err
	}
	return c, nil
}

// dbConnection completes the MySQL connection settings: vttablet's conventions for a local
// server, the credentials file, the connect timeout.
func (o *options) dbConnection(c *tablet.Config, env func(string) string) error {
	if err := o.localMySQL(c, env); err != nil {
		return err
	}
	if o.credsServer != "file" {
		return fmt.Errorf("--db-credentials-server %q is not supported: tabletd reads only file (--db-credentials-file)", o.credsServer)
	}
	if o.credsFile != "" {
		if err := applyCredentialsFile(&c.DB, o.credsFile); err != nil {
			return err
		}
	}
	switch {
	case o.connectTimeoutMs < 0:
		return fmt.Errorf("--db-connect-timeout-ms must be >= 0 (got %d)", o.connectTimeoutMs)
	case o.connectTimeoutMs > 0:
		c.DB.DialTimeout = time.Duration(o.connectTimeoutMs) * time.Millisecond
	}
	return nil
}

func parseTabletType(s string) (topodatapb.TabletType, error) {
	v, ok := topodatapb.TabletType_value[strings.ToUpper(s)]
	if !ok {
		if n, err := strconv.Atoi(s); err == nil {
			v, ok = int32(n), true
		}
	}
	tt := topodatapb.TabletType(v)
	switch tt {
	case topodatapb.TabletType_PRIMARY, topodatapb.TabletType_REPLICA, topodatapb.TabletType_RDONLY, topodatapb.TabletType_SPARE:
		if ok {
			return tt, nil
		}
	}
	return 0, fmt.Errorf("--init-tablet-type %q is not allowed: use REPLICA, RDONLY, SPARE or PRIMARY", s)
}

// tagsValue parses vttablet's --init-tags format, "k1:v1,k2:v2" (k=v is accepted too).
type tagsValue map[string]string

func (t tagsValue) String() string {
	parts := make([]string, 0, len(t))
	for k, v := range t {
		parts = append(parts, k+":"+v)
	}
	return strings.Join(parts, ",")
}

// Set replaces the tags: given twice, the last --init-tags wins, as for every flag.
func (t tagsValue) Set(s string) error {
	for k := range t {
		delete(t, k)
	}
	for _, kv := range strings.Split(s, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, ":")
		if !ok {
			k, v, ok = strings.Cut(kv, "=")
		}
		if !ok || k == "" {
			return fmt.Errorf("tag %q is not key:value", kv)
		}
		t[k] = v
	}
	return nil
}

func (t tagsValue) Type() string { return "key:value,…" }
