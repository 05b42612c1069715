package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/topo/localetcd"
)

const (
	globalRoot = "/vitess/global"
	cell       = "zone1"
	// readyTimeout bounds a tablet's start until it answers select 1.
	readyTimeout = 2 * time.Minute
	// Keyspaces and aliases of the two tablets; both serve dbName.
	vttabletKeyspace = "bench"
	tabletdKeyspace  = "bench2"
	vttabletAlias    = cell + "-100"
	tabletdAlias     = cell + "-200"
	// vitessGOGC is the GC target of vttablet and vtgate: Vitess v23 never calls
	// debug.SetGCPercent, so with GOGC unset (the bench removes it from every
	// child's environment) the Go runtime's default applies.
	vitessGOGC = 100
)

// commonTabletFlags are vttablet v23's defaults, passed explicitly to both
// tablets so neither runs with a different pool, limit or background job by
// accident. Each is --name=value (pflag's form for booleans too). tabletd
// must list every one in its --help as implemented, or the run stops.
var commonTabletFlags = []string{
	"--queryserver-config-pool-size=16",
	"--queryserver-config-stream-pool-size=200",
	"--queryserver-config-transaction-cap=20",
	"--queryserver-config-query-timeout=30s",
	"--queryserver-config-max-result-size=10000",
	"--queryserver-config-stream-buffer-size=32768",
	"--health-check-interval=1s",
	// vttablet's default; tabletd's own default is on (a write per second on a primary).
	"--heartbeat-enable=false",
	// Not vttablet's defaults (0: grpc-go's 64 KiB windows with BDP probing) but tabletd's
	// (fixed 1 MiB windows, no BDP pings), given to both so the two transports match.
	// vttablet has no flag for grpc-go's stream workers, tabletd's other transport setting.
	"--grpc-server-initial-window-size=1048576",
	"--grpc-server-initial-conn-window-size=1048576",
}

// consolidatorFlags sets the consolidator alike on both PRIMARY tablets.
// With --enable-consolidator-replicas=false both programs read
// --enable-consolidator as "consolidate on a PRIMARY": vttablet v23 maps
// enable-consolidator to mode "enable" (every tablet type) unless
// enable-consolidator-replicas selects "notOnPrimary"; tabletd reads the two
// flags as "on PRIMARY" and "on REPLICA/RDONLY".
func consolidatorFlags(on bool) []string {
	return []string{"--enable-consolidator=" + strconv.FormatBool(on), "--enable-consolidator-replicas=false"}
}

// tablet is a running vttablet or tabletd.
type tablet struct {
	proc     *child
	client   *tabletTarget
	httpPort int
	flags    []string // the command line, for the report
	version  string
	gogc     string // the effective GC target, with where it comes from
}

// topology is the in-process etcd with the cell created.
type topology struct {
	etcd *localetcd.Server
}

func startTopology(ctx context.Context, e *env, vitessBin string) (*topology, error) {
	srv, err := localetcd.Start(ctx, localetcd.Config{Dir: filepath.Join(e.dir, "etcd"), Unsafe: true})
	if err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	e.onClose(srv.Close)
	t := &topology{etcd: srv}
	if _, err := t.vtctl(ctx, e, vitessBin, "AddCellInfo", "--root", "/vitess/"+cell,
		"--server-address", srv.Endpoint(), cell); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *topology) flags() []string {
	return []string{"--topo-implementation", "etcd2", "--topo-global-server-address", t.etcd.Endpoint(),
		"--topo-global-root", globalRoot}
}

// vtctl runs one vtctldclient command with an in-process vtctld
// (--server internal), as the vt user when we are root.
func (t *topology) vtctl(ctx context.Context, e *env, vitessBin string, args ...string) (string, error) {
	full := append(t.flags(), "--server", "internal")
	full = append(full, args...)
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, filepath.Join(vitessBin, "vtctldclient"), full...)
	cmd.SysProcAttr = vtSysProcAttr(e)
	cmd.Dir = e.dir
	cmd.Env = childEnv(e.vtCred != nil, e.dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("vtctldclient %s: %w\n%s", args[0], err, out)
	}
	return string(out), nil
}

// dbFlags are the MySQL connection flags for the given roles.
func dbFlags(m *mariadb, roles []string, useSSLFlag bool) []string {
	// The unix socket, as a sidecar beside its MySQL would connect; both tablets alike.
	f := []string{"--db-socket", m.socket, "--init-db-name-override", dbName}
	for _, r := range roles {
		f = append(f, "--db-"+r+"-user", "vt_"+r, "--db-"+r+"-password", dbPassword)
		if useSSLFlag {
			f = append(f, "--db-"+r+"-use-ssl=false")
		}
	}
	return f
}

// startVttablet starts Vitess v23's vttablet (unmanaged, keyspace "bench")
// as the vt user, makes it PRIMARY and waits until it answers select 1 as
// one. vttablet v23 refuses --init-tablet-type PRIMARY ("can only be
// REPLICA, RDONLY or SPARE", tm_init.go), so it starts as a REPLICA and
// vtctldclient TabletExternallyReparented turns it into the shard's PRIMARY
// (ChangeType PRIMARY on the tablet, as after an external failover).
func startVttablet(ctx context.Context, e *env, topo *topology, m *mariadb, vitessBin string, consolidate bool) (*tablet, error) {
	bin := filepath.Join(vitessBin, "vttablet")
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%w (build it with make vitess, or set VITESS_BIN)", err)
	}
	logDir, err := e.vtDir("vttablet-logs")
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	roles := []string{"app", "appdebug", "allprivs", "dba", "filtered", "repl", "erepl"}
	args := append(topo.flags(), "--log_dir", logDir,
		"--tablet-path", vttabletAlias, "--tablet-hostname", "127.0.0.1",
		"--init-keyspace", vttabletKeyspace, "--init-shard", "0", "--init-tablet-type", "REPLICA", "--unmanaged",
		"--port", strconv.Itoa(ports[0]), "--grpc-port", strconv.Itoa(ports[1]),
		"--service-map", "grpc-queryservice,grpc-tabletmanager")
	args = append(args, dbFlags(m, roles, true)...)
	args = append(args, commonTabletFlags...)
	args = append(args, consolidatorFlags(consolidate)...)
	t := &tablet{httpPort: ports[0], flags: args, version: programVersion(bin)}
	if t.proc, err = e.start("vttablet", e.vtCred, e.tabletEnv, bin, args...); err != nil {
		return nil, err
	}
	t.gogc = goGCOf(t.proc.pid(), strconv.Itoa(vitessGOGC)+" (Go's default: Vitess never sets it)")
	if err := promote(ctx, e, topo, vitessBin, t); err != nil {
		return nil, err
	}
	if err := t.connect(ctx, ports[1], vttabletKeyspace, topodatapb.TabletType_PRIMARY); err != nil {
		return nil, err
	}
	return t, nil
}

// promote retries TabletExternallyReparented until the tablet's
// TabletManager answers and the type change is done.
func promote(ctx context.Context, e *env, topo *topology, vitessBin string, t *tablet) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		_, err := topo.vtctl(ctx, e, vitessBin, "TabletExternallyReparented", vttabletAlias)
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case !t.proc.running():
			return fmt.Errorf("%s exited (%v) before it could be made PRIMARY; last log lines:\n%s", t.proc.name, t.proc.waitErr, t.proc.logTail())
		case time.Now().After(deadline):
			return fmt.Errorf("making vttablet PRIMARY: %w", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// buildTabletd builds cmd/tabletd from src into the env dir.
func buildTabletd(ctx context.Context, e *env, src string) (string, error) {
	out := filepath.Join(e.dir, "tabletd")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/tabletd")
	cmd.Dir = src
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/tabletd failed (the tree does not compile right now): %w\n%s",
			err, strings.TrimSpace(string(b)))
	}
	return out, nil
}

// tabletdOptions are the per-run settings of tabletd's command line.
type tabletdOptions struct {
	consolidate bool
	gogc        int  // --gc-percent; 0 keeps tabletd's default
	pprof       bool // --pprof-http (-profile): vttablet serves /debug/pprof/ by default, tabletd on this flag
}

// tabletdArgs is tabletd's command line (PRIMARY, keyspace "bench2", the
// same database and the same common flags as vttablet).
func tabletdArgs(topoFlags []string, m *mariadb, ports []int, o tabletdOptions) []string {
	args := append(slices.Clone(topoFlags),
		"--tablet-path", tabletdAlias, "--tablet-hostname", "127.0.0.1",
		"--init-keyspace", tabletdKeyspace, "--init-shard", "0", "--init-tablet-type", "PRIMARY", "--unmanaged",
		"--port", strconv.Itoa(ports[0]), "--grpc-port", strconv.Itoa(ports[1]),
		"--service-map", "grpc-queryservice,grpc-tabletmanager")
	args = append(args, dbFlags(m, []string{"app", "allprivs", "dba", "filtered", "repl"}, false)...)
	args = append(args, commonTabletFlags...)
	args = append(args, consolidatorFlags(o.consolidate)...)
	if o.gogc > 0 {
		args = append(args, "--gc-percent="+strconv.Itoa(o.gogc))
	}
	if o.pprof {
		args = append(args, "--pprof-http")
	}
	return args
}

// checkTabletdFlags fails when tabletd's --help lacks a flag the bench
// passes, or marks it as accepted but not implemented: passing it would
// silently leave tabletd on another setting than vttablet.
func checkTabletdFlags(help string, args []string) error {
	flags := parseHelpFlags(help)
	var missing, inert []string
	for _, a := range args {
		name, ok := flagName(a)
		if !ok {
			continue
		}
		implemented, listed := flags[name]
		switch {
		case !listed:
			missing = append(missing, name)
		case !implemented:
			inert = append(inert, name)
		}
	}
	var errs []error
	if len(missing) > 0 {
		errs = append(errs, fmt.Errorf("tabletd --help does not list %s", strings.Join(missing, ", ")))
	}
	if len(inert) > 0 {
		errs = append(errs, fmt.Errorf("tabletd accepts but does not implement %s", strings.Join(inert, ", ")))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: the bench gives both tablets the same settings and will not drop a flag", err)
	}
	return nil
}

// flagName is the --name of a command-line word, false for a value.
func flagName(arg string) (string, bool) {
	if !strings.HasPrefix(arg, "--") || len(arg) < 3 {
		return "", false
	}
	name, _, _ := strings.Cut(arg, "=")
	return name, true
}

// helpFlag matches a flag line of pflag's usage: "  -h, --help  text" or
// "      --name type   text".
var helpFlag = regexp.MustCompile(`^\s+(?:-\w, )?(--[A-Za-z0-9][A-Za-z0-9_.-]*)(?:\s+(.*))?$`)

// parseHelpFlags maps each flag in a --help text to whether it is
// implemented (false when its text says "accepted by tabletd but not
// implemented").
func parseHelpFlags(help string) map[string]bool {
	out := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(help))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if m := helpFlag.FindStringSubmatch(sc.Text()); m != nil {
			out[m[1]] = !strings.Contains(m[2], "not implemented")
		}
	}
	return out
}

// helpDefault is the "(default X)" of a flag in a --help text.
func helpDefault(help, name string) (string, bool) {
	re := regexp.MustCompile(`(?m)^\s+(?:-\w, )?` + regexp.QuoteMeta(name) + `\s.*\(default ([^)]*)\)\s*$`)
	m := re.FindStringSubmatch(help)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// startTabletd starts tabletd and waits until it answers select 1.
func startTabletd(ctx context.Context, e *env, topo *topology, m *mariadb, bin, version string, o tabletdOptions) (*tablet, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	help, _ := exec.CommandContext(hctx, bin, "--help").CombinedOutput()
	cancel()
	args := tabletdArgs(topo.flags(), m, ports, o)
	if err := checkTabletdFlags(string(help), args); err != nil {
		return nil, fmt.Errorf("%w: %w", errRefused, err)
	}
	gogc := strconv.Itoa(o.gogc) + " (--gc-percent)"
	if o.gogc == 0 {
		def, ok := helpDefault(string(help), "--gc-percent")
		if !ok {
			def = "?"
		}
		gogc = def + " (tabletd's default --gc-percent)"
	}
	t := &tablet{httpPort: ports[0], flags: args, version: version}
	if t.proc, err = e.start("tabletd", nil, e.tabletEnv, bin, args...); err != nil {
		return nil, err
	}
	if err := t.connect(ctx, ports[1], tabletdKeyspace, topodatapb.TabletType_PRIMARY); err != nil {
		return nil, err
	}
	t.gogc = goGCOf(t.proc.pid(), gogc)
	if v, ok := scrapeGOGC(ctx, t.httpPort); ok {
		t.gogc += ", /metrics go_gc_gogc_percent " + v
	}
	return t, nil
}

// errRefused marks a run that would not be fair (a tabletd that cannot be
// given vttablet's settings, a tree that is not a clean commit): the whole
// run stops.
var errRefused = errors.New("refused, the comparison would not be fair")

// errNotImplemented marks a tablet whose query service answers UNIMPLEMENTED.
var errNotImplemented = errors.New("query service not implemented")

// connect dials the tablet's gRPC port and polls select 1 until it works.
func (t *tablet) connect(ctx context.Context, grpcPort int, keyspace string, tt topodatapb.TabletType) error {
	c, err := dialTablet("127.0.0.1:"+strconv.Itoa(grpcPort), keyspace, tt, querypb.ExecuteOptions_ALL)
	if err != nil {
		return err
	}
	t.client = c
	deadline := time.Now().Add(readyTimeout)
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err = c.selectOne(pctx)
		cancel()
		switch {
		case err == nil:
			return nil
		case isUnimplemented(err):
			return fmt.Errorf("%w: Execute answered %v", errNotImplemented, err)
		case !t.proc.running():
			return fmt.Errorf("%s exited (%v) before serving; last log lines:\n%s", t.proc.name, t.proc.waitErr, t.proc.logTail())
		case ctx.Err() != nil:
			return ctx.Err()
		case time.Now().After(deadline):
			return fmt.Errorf("%s does not answer select 1 after %v (last error: %v); last log lines:\n%s",
				t.proc.name, readyTimeout, err, t.proc.logTail())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// vtSysProcAttr runs short Vitess commands as the vt user when we are root.
func vtSysProcAttr(e *env) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: e.vtCred}
}

// programVersion is the first line of `<bin> --version`.
func programVersion(bin string) string {
	out, _ := exec.Command(bin, "--version").CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}
