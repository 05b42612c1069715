// Package httpserver serves tabletd's HTTP endpoints: the /debug/status page, health and liveness checks, Prometheus metrics and pprof.
package httpserver

import (
	"html/template"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// Page is everything /debug/status shows. Later issues add sections (pools, queries, ACLs).
type Page struct {
	Alias, Keyspace, Shard, TabletType string
	Hostname                           string
	GRPCPort, HTTPPort                 int32
	State                              string
	Serving                            bool
	Reason                             string // why not serving; empty while serving
	PrimaryTermStart                   time.Time

	MySQLAddress, MySQLFlavor, MySQLVersion string
	MySQLUp                                 bool
	MySQLError                              string
	MySQLCheckedAt                          time.Time
	ReadOnly                                bool
	Position                                string
	Lag                                     string // "n/a (primary)", "3s", "unknown: why"

	TopoAddress, TopoRoot, Cell string
	TopoRegistered, TopoInSync  bool
	TopoError                   string

	ACLFile     string // empty: no table ACL configured
	ACLLoadedAt time.Time
	ACLError    string // last failed reload (the previous ACL stayed in force)

	RulesFile     string // empty: no custom query rules
	RulesLoadedAt time.Time
	RulesError    string

	Consolidator Consolidator

	Replication Replication
	RPCErrors   []RPCError // recent failed TabletManager RPCs, newest first
	// VReplication lists the streams this tablet applies (open on a PRIMARY only).
	VReplication []VReplicationStream
	// VDiff lists the diffs running on this tablet (a workflow's target primary).
	VDiff []VDiffRun
	// Backup is the last backup and restore (nil: no backup storage configured).
	Backup *BackupView

	// Observed is the history: charts of the last minutes, health transitions, errors by
	// code, slow queries (charts.go, history.go).
	Observed Observed

	HealthSubscribers int
	LastBroadcast     time.Time
	InFlight          int

	// NotImplementedFlags are the vttablet flags given at start that tabletd accepts but
	// does not act on (cmd/tabletd's flag inventory), as --name.
	NotImplementedFlags []string

	BuildVersion string
	Started      time.Time
	Now          time.Time
}

// Consolidator is the consolidator's configuration and counters.
type Consolidator struct {
	OnPrimary, OnReplicas bool
	MaxWaiters            int   // 0: unlimited
	MaxBytes              int64 // 0: unlimited
	RejectOnFull          bool
	InFlight, Waiting     int
	BytesHeld             int64
	Executions, Served    int64
	Overflow, Rejected    int64
}

// Replication is the replication section: the source, threads, semi-sync, the last reparent.
type Replication struct {
	Err                       string
	Configured                bool
	Source                    string
	IOState, SQLState         string
	LastIOError, LastSQLError string
	StoppedByRPC, Demoted     bool
	SemiSync, Durability      string
	LastReparent              string
	Repairs                   int
	LastRepair                time.Time
	LastError                 string
	LastErrorAt               time.Time
}

// RPCError is one failed TabletManager RPC.
type RPCError struct {
	At                    time.Time
	Method, Code, Message string
}

// Uptime is Now - Started, rounded for people.
func (p Page) Uptime() time.Duration { return p.Now.Sub(p.Started).Round(time.Second) }

// Source provides the page, and the cheap serving verdict /debug/health needs (the page
// itself reads MySQL for its replication section).
type Source interface {
	StatusPage() Page
	Health() (serving bool, reason string)
}

// NewHandler returns the mux with every endpoint. gatherer serves /metrics; extra adds the
// components' own pages (e.g. /debug/acl), by path.
func NewHandler(src Source, gatherer prometheus.Gatherer, log *zap.Logger, extra map[string]http.HandlerFunc) http.Handler {
	mux := http.NewServeMux()
	for path, h := range extra {
		mux.HandleFunc(path, h)
	}
	mux.HandleFunc("/debug/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := statusTemplate.Execute(w, src.StatusPage()); err != nil {
			log.Warn("rendering /debug/status", zap.Error(err))
		}
	})
	// /debug/health answers 200 only while the tablet serves, like vttablet's; load
	// balancers and operators use it as readiness.
	mux.HandleFunc("/debug/health", func(w http.ResponseWriter, r *http.Request) {
		if serving, reason := src.Health(); !serving {
			http.Error(w, "not serving: "+reason, http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	// /healthz is liveness: the process answers. A tablet that is up but not serving (say,
	// mysqld is down) must not be restarted for it, or the restart hides the real problem.
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok"))
	})
	mux.Handle("/metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/debug/status", http.StatusFound)
	})
	return secure(mux, src, log) // security.go: policy, POST and same-origin for state changes, pprof gating
}

var statusTemplate = template.Must(template.New("status").Funcs(template.FuncMap{
	"shortDuration": shortDuration,
	"clock":         func(t time.Time) string { return t.UTC().Format("15:04:05.000") },
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format(time.RFC3339)
	},
}).Parse(statusHTML))

const statusHTML = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>tabletd {{.Alias}}</title>
<style>
body{font-family:sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em} h2{font-size:1.1em;margin-top:1.4em;border-bottom:1px solid #ccc}
table{border-collapse:collapse} td{padding:.2em .8em .2em 0;vertical-align:top}
td:first-child{color:#555}
.ok{color:#fff;background:#2a7a2a;padding:.1em .5em;border-radius:3px}
.bad{color:#fff;background:#b22;padding:.1em .5em;border-radius:3px}
.warn{color:#222;background:#e8c547;padding:.1em .5em;border-radius:3px}
.charts{display:flex;flex-wrap:wrap;gap:1em} figure{margin:0}
figcaption{font-size:.9em;color:#333} figcaption b{font-weight:600}
.key{display:inline-block;width:.8em;height:.8em;margin:0 .3em 0 .8em;vertical-align:-.05em}
table.list td{border-top:1px solid #eee;white-space:nowrap} table.list td.wrap{white-space:normal}
code{font-size:.9em;word-break:break-all}
nav a{margin-right:.6em}
</style></head><body>
<h1>tabletd {{.Alias}} — {{.Keyspace}}/{{.Shard}} {{.TabletType}}</h1>
<p>{{if .Serving}}<span class="ok">SERVING</span>{{else}}<span class="bad">{{.State}}</span> {{.Reason}}{{end}}
{{with .Observed}} · {{printf "%.1f" .QPS}} queries/s{{end}} · {{.InFlight}} in flight · up {{.Uptime}}</p>
<nav><a href="/debug/vars">/debug/vars</a><a href="/debug/status_details">/debug/status_details</a><a href="/queryz">/queryz</a><a href="/querylogz">/querylogz</a><a href="/txlogz">/txlogz</a><a href="/debug/querylog">/debug/querylog</a><a href="/debug/txlog">/debug/txlog</a><a href="/debug/tablet_plans">/debug/tablet_plans</a><a href="/metrics">/metrics</a></nav>
{{with .Observed}}
<h2>Last {{shortDuration .Span}}</h2>
<div class="charts">{{range .Charts}}<figure>{{.SVG}}<figcaption><b>{{.Title}}</b>{{range .Legend}}<span class="key" style="background:{{.Color}}"></span>{{.Name}} {{.Last}}{{end}}</figcaption></figure>
{{end}}</div>

<h2>Health history</h2>
<table class="list">{{range .HealthHistory}}<tr><td>{{ts .At}}</td><td>{{if .Serving}}<span class="ok">{{.State}}</span>{{else}}<span class="bad">{{.State}}</span>{{end}}</td><td>{{.TabletType}}</td><td class="wrap">{{.Reason}}</td></tr>{{else}}<tr><td>no transition yet</td></tr>{{end}}
</table>

<h2>Errors by code</h2>
<table class="list">{{range .Errors}}<tr><td>{{.Code}}</td><td>{{.Count}}</td></tr>{{else}}<tr><td>no request failed since start</td></tr>{{end}}
</table>

<h2>Slow queries (the last {{len .SlowQueries}} over {{.SlowThreshold}})</h2>
<table class="list">{{range .SlowQueries}}<tr><td>{{clock .At}}</td><td>{{.Took}}</td><td>{{.Plan}}</td><td>{{.Caller}}</td><td>{{.Rows}} rows</td><td class="wrap"><code>{{.SQL}}</code>{{if .Err}} <span class="bad">{{.Err}}</span>{{end}}</td></tr>{{else}}<tr><td>none over {{.SlowThreshold}} since start</td></tr>{{end}}
</table>
{{end}}

<h2>Tablet</h2>
<table>
<tr><td>Alias</td><td>{{.Alias}}</td></tr>
<tr><td>Keyspace / shard</td><td>{{.Keyspace}} / {{.Shard}}</td></tr>
<tr><td>Type</td><td>{{.TabletType}}{{if not .PrimaryTermStart.IsZero}} (primary term since {{ts .PrimaryTermStart}}){{end}}</td></tr>
<tr><td>Serving state</td><td>{{.State}}{{if not .Serving}} — not serving: {{.Reason}}{{end}}</td></tr>
<tr><td>Addresses</td><td>{{.Hostname}} gRPC :{{.GRPCPort}} HTTP :{{.HTTPPort}}</td></tr>
<tr><td>In-flight requests</td><td>{{.InFlight}}</td></tr>
<tr><td>Health streams</td><td>{{.HealthSubscribers}} subscriber(s), last broadcast {{ts .LastBroadcast}}</td></tr>
</table>

<h2>MySQL</h2>
<table>
<tr><td>Address</td><td>{{.MySQLAddress}}</td></tr>
<tr><td>Answers</td><td>{{if .MySQLUp}}<span class="ok">yes</span>{{else}}<span class="bad">no</span> {{.MySQLError}}{{end}} (checked {{ts .MySQLCheckedAt}})</td></tr>
<tr><td>Flavor / version</td><td>{{.MySQLFlavor}} {{.MySQLVersion}}</td></tr>
<tr><td>Read-only</td><td>{{.ReadOnly}}</td></tr>
<tr><td>Replication position</td><td>{{.Position}}</td></tr>
<tr><td>Replication lag</td><td>{{.Lag}}</td></tr>
</table>

<h2>Replication</h2>
<table>{{with .Replication}}
{{if .Err}}<tr><td>Status</td><td><span class="bad">cannot read</span> {{.Err}}</td></tr>{{end}}
<tr><td>Source</td><td>{{if .Configured}}{{.Source}}{{else}}none (not replicating){{end}}{{if .Demoted}} — <span class="bad">demoted</span>, read-only, waiting to be re-pointed{{end}}</td></tr>
{{if .Configured}}<tr><td>I/O thread / SQL thread</td><td>{{.IOState}} / {{.SQLState}}{{if .StoppedByRPC}} (stopped by an RPC: left stopped){{end}}</td></tr>
<tr><td>Last I/O error</td><td>{{if .LastIOError}}<span class="bad">{{.LastIOError}}</span>{{else}}none{{end}}</td></tr>
<tr><td>Last SQL error</td><td>{{if .LastSQLError}}<span class="bad">{{.LastSQLError}}</span>{{else}}none{{end}}</td></tr>{{end}}
<tr><td>Semi-sync</td><td>{{.SemiSync}} (keyspace durability policy: {{.Durability}})</td></tr>
<tr><td>Last reparent</td><td>{{if .LastReparent}}{{.LastReparent}}{{else}}none recorded{{end}}</td></tr>
<tr><td>Replication repairs</td><td>{{.Repairs}}{{if .Repairs}}, last {{ts .LastRepair}}{{end}}</td></tr>
<tr><td>Last replication error</td><td>{{if .LastError}}{{.LastError}} ({{ts .LastErrorAt}}){{else}}none{{end}}</td></tr>
{{end}}</table>

<h2>VReplication</h2>
<table>{{range .VReplication}}<tr><td>stream {{.ID}} {{.Workflow}} from {{.Source}}{{if .SourceTablet}} ({{.SourceTablet}}){{end}}</td><td>{{.State}}{{if .Phase}} ({{.Phase}}){{end}}; lag {{.Lag}}; {{.RowsCopied}} rows copied{{if .RowsPerSecond}} ({{printf "%.0f" .RowsPerSecond}} rows/s){{end}}{{if .Copying}}, copying {{.Copying}}{{end}}; {{.Transactions}} transactions applied; position {{.Position}}{{if .Message}}; message: {{.Message}}{{end}}{{if .LastError}}; last error <span class="bad">{{.LastError}}</span> ({{ts .LastErrorAt}}){{end}}</td></tr>{{else}}<tr><td>no streams (the engine runs on a PRIMARY; see /debug/vreplication)</td></tr>{{end}}
</table>

<h2>VDiff</h2>
<table>{{range .VDiff}}<tr><td>{{.Workflow}} {{.UUID}}</td><td>table {{.Table}} ({{.Phase}}); {{.RowsCompared}} rows compared{{if .Mismatches}}, <span class="bad">{{.Mismatches}} rows differ</span>{{end}}; started {{ts .Started}}</td></tr>{{else}}<tr><td>no diff running (vtctldclient VDiff show)</td></tr>{{end}}
</table>

<h2>Backups</h2>
<table>{{with .Backup}}<tr><td>Storage</td><td>{{.Storage}}{{if .Running}}; running: {{.Running}}{{end}}</td></tr>
{{with .LastBackup}}<tr><td>Last backup</td><td>{{if .Started.IsZero}}none since start{{else}}{{ts .Started}} {{.Name}} engine {{.Engine}}, {{.Size}} bytes, {{.Duration}}, position {{.Position}}{{if .Err}}: <span class="bad">{{.Err}}</span>{{end}}{{end}}</td></tr>{{end}}
{{with .LastRestore}}<tr><td>Last restore</td><td>{{if .Started.IsZero}}none since start{{else}}{{ts .Started}} {{.Name}} engine {{.Engine}}, {{.Size}} bytes, {{.Duration}} ({{.Phases}}), position {{.Position}}{{if .Err}}: <span class="bad">{{.Err}}</span>{{end}}{{end}}</td></tr>{{end}}
{{else}}<tr><td>Last backup</td><td>no backup storage configured (--backup-storage-implementation)</td></tr>{{end}}
</table>

<h2>TabletManager RPC errors</h2>
<table>{{range .RPCErrors}}<tr><td>{{ts .At}}</td><td>{{.Method}}</td><td>{{.Code}}</td><td>{{.Message}}</td></tr>{{else}}<tr><td>none since start</td></tr>{{end}}
</table>

<h2>Topology</h2>
<table>
<tr><td>Global topo</td><td>{{.TopoAddress}} {{.TopoRoot}}</td></tr>
<tr><td>Cell</td><td>{{.Cell}}</td></tr>
<tr><td>Registered</td><td>{{if .TopoRegistered}}yes{{else}}<span class="bad">no</span>{{end}}{{if .TopoRegistered}}{{if .TopoInSync}}, record up to date{{else}}, <span class="bad">record not yet updated</span>{{end}}{{end}}</td></tr>
<tr><td>Last topology error</td><td>{{if .TopoError}}{{.TopoError}}{{else}}none{{end}}</td></tr>
</table>

<h2>Table ACL</h2>
<table>
<tr><td>File</td><td>{{if .ACLFile}}{{.ACLFile}}{{else}}none (no table ACL checks){{end}}</td></tr>
{{if .ACLFile}}<tr><td>Loaded</td><td>{{ts .ACLLoadedAt}}</td></tr>
<tr><td>Last reload error</td><td>{{if .ACLError}}<span class="bad">{{.ACLError}}</span> (the ACL loaded before stays in force){{else}}none{{end}}</td></tr>{{end}}
</table>

<h2>Query rules</h2>
<table>
<tr><td>File</td><td>{{if .RulesFile}}{{.RulesFile}}{{else}}none{{end}}</td></tr>
{{if .RulesFile}}<tr><td>Loaded</td><td>{{ts .RulesLoadedAt}}</td></tr>
<tr><td>Last reload error</td><td>{{if .RulesError}}<span class="bad">{{.RulesError}}</span> (the rules loaded before stay in force){{else}}none{{end}}</td></tr>{{end}}
</table>

<h2>Consolidator</h2>
<table>
{{with .Consolidator}}<tr><td>Enabled</td><td>on PRIMARY: {{.OnPrimary}}, on REPLICA/RDONLY: {{.OnReplicas}} (per query: ExecuteOptions.consolidator, /*vt+ CONSOLIDATOR=… */)</td></tr>
<tr><td>Bounds</td><td>waiters per query: {{if .MaxWaiters}}{{.MaxWaiters}}{{else}}unlimited{{end}}; result bytes held: {{if .MaxBytes}}{{.MaxBytes}}{{else}}unlimited{{end}}; past a bound: {{if .RejectOnFull}}RESOURCE_EXHAUSTED{{else}}the caller runs its own query{{end}}</td></tr>
<tr><td>Now</td><td>{{.InFlight}} shared executions running, {{.Waiting}} callers waiting, {{.BytesHeld}} bytes held</td></tr>
<tr><td>Totals</td><td>{{.Executions}} executions, {{.Served}} callers served another's result, {{.Overflow}} past a bound ran their own, {{.Rejected}} refused</td></tr>{{end}}
</table>
<p><a href="/debug/consolidations">/debug/consolidations</a> · <a href="/debug/acl">/debug/acl</a> · <a href="/debug/query_rules">/debug/query_rules</a> · <a href="/debug/query_plans">/debug/query_plans</a> · <a href="/debug/query_stats">/debug/query_stats</a></p>

<h2>Flags accepted, not implemented</h2>
<table>{{range .NotImplementedFlags}}<tr><td>{{.}}</td></tr>{{else}}<tr><td>none given: every flag on the command line acts</td></tr>{{end}}
</table>

<h2>Process</h2>
<table>
<tr><td>Build</td><td>{{.BuildVersion}}</td></tr>
<tr><td>Started</td><td>{{ts .Started}} (up {{.Uptime}})</td></tr>
</table>
<p><a href="/debug/health">/debug/health</a> · <a href="/livequeryz">/livequeryz</a> · <a href="/metrics">/metrics</a> · <a href="/debug/pprof/">/debug/pprof</a></p>
</body></html>
`
